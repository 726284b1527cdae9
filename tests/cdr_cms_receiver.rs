//! CDR delivery to the receiver printed in the CMS CDR guide itself (Appendix A, ported to
//! Python 3 in `tests/cms_cdr_receiver.py`): HTTP/1.1, a 200 with no Content-Length, one
//! connection at a time. Two real recorders share it, and every record of 50 calls must
//! arrive within seconds of each BYE; in HTTPS mode (`-c/-k`, a self-signed certificate)
//! the recorder trusts it through `cdr.receiver_options.ca_file`.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);
/// Longest a call's last record may take to reach the receiver after the BYE's 200.
const MAX_LATENCY: Duration = Duration::from_secs(3);

/// The guide's receiver script, running; killed on drop.
struct GuideReceiver {
    child: Child,
    out: Arc<Mutex<String>>,
    port: u16,
}

impl GuideReceiver {
    fn start(tls: Option<(&Path, &Path)>) -> GuideReceiver {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cms_cdr_receiver.py");
        let mut cmd = Command::new("python3");
        cmd.arg("-u").arg(script).arg("-p").arg(port.to_string());
        if let Some((cert, key)) = tls {
            cmd.arg("-c").arg(cert).arg("-k").arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the guide's receiver (scripts/test installs python3)");
        let out = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut o = sink.lock().expect("lock");
                o.push_str(&line);
                o.push('\n');
            }
        });
        let deadline = Instant::now() + T;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "guide receiver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        GuideReceiver { child, out, port }
    }

    fn url(&self, scheme: &str) -> String {
        format!(
            "{scheme}://localhost:{}/cdr_receiver1?system_id=test",
            self.port
        )
    }

    /// Every `<record>` the script printed so far.
    fn records(&self) -> Vec<Rec> {
        parse_records(&self.out.lock().expect("lock"))
    }
}

impl Drop for GuideReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
struct Rec {
    call_bridge: String,
    session: String,
    record_type: String,
    record_index: u64,
    correlator: u64,
    text: String,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].to_string())
}

/// The records of every `<records>` document in the script's output.
fn parse_records(out: &str) -> Vec<Rec> {
    let mut recs = Vec::new();
    for doc in out.split("<records ").skip(1) {
        let Some(doc) = doc.split("</records>").next() else {
            continue;
        };
        let head = doc.split('>').next().unwrap_or("");
        let head = format!(" {head}");
        for part in doc.split("<record ").skip(1) {
            let tag = format!(" {}", part.split('>').next().unwrap_or(""));
            recs.push(Rec {
                call_bridge: attr(&head, "callBridge").unwrap_or_default(),
                session: attr(&head, "session").unwrap_or_default(),
                record_type: attr(&tag, "type").unwrap_or_default(),
                record_index: attr(&tag, "recordIndex").map_or(0, |v| v.parse().expect("n")),
                correlator: attr(&tag, "correlatorIndex").map_or(0, |v| v.parse().expect("n")),
                text: part.to_string(),
            });
        }
    }
    recs
}

fn recorder_for(url: &str, extra_toml: String) -> Recorder {
    Recorder::with_toml_args(&extra_toml, &["--cdr-receiver", url])
}

/// One call on `rec`; returns (recording id, call leg id) once the BYE got its 200.
fn one_call(rec: &Recorder) -> (String, String) {
    let mut c = rec.udp();
    let mut call = genesys_call_active(rec, &mut c);
    let (_, doc) = rec.wait_call_state(&call.call_id, "active", T);
    hang_up(&mut c, &mut call);
    (
        doc["recording_id"].as_str().expect("recording_id").into(),
        doc["call_leg_id"].as_str().expect("call_leg_id").into(),
    )
}

/// Waits until the recordingEnd of `recording_id` arrived; returns how long that took.
fn wait_recording_end(rx: &GuideReceiver, recording_id: &str, since: Instant) -> Duration {
    let needle = format!("<recording id=\"{recording_id}\"");
    loop {
        if rx
            .records()
            .iter()
            .any(|r| r.record_type == "recordingEnd" && r.text.contains(&needle))
        {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < MAX_LATENCY,
            "recordingEnd of {recording_id} not received {MAX_LATENCY:?} after the BYE; got:\n{}",
            rx.out.lock().expect("lock")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Per sender (`callBridge`), recordIndex runs 1..=n without gap or repeat.
fn assert_indexes_continuous(recs: &[Rec]) {
    let mut by_sender: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    for r in recs {
        by_sender.entry(&r.call_bridge).or_default().push(r);
    }
    for (sender, rs) in by_sender {
        assert!(uuid_like(sender), "callBridge {sender:?}");
        let idx: Vec<u64> = rs.iter().map(|r| r.record_index).collect();
        let want: Vec<u64> = (1..=rs.len() as u64).collect();
        assert_eq!(idx, want, "recordIndex of {sender}");
        let corr: Vec<u64> = rs.iter().map(|r| r.correlator).collect();
        assert_eq!(corr, (0..rs.len() as u64).collect::<Vec<_>>());
        let sessions: BTreeSet<&str> = rs.iter().map(|r| r.session.as_str()).collect();
        assert_eq!(sessions.len(), 1, "one session per running recorder");
    }
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4
}

#[test]
fn the_guides_receiver_gets_every_record_of_50_calls_from_two_recorders() {
    let rx = GuideReceiver::start(None);
    let url = rx.url("http");
    let recorders = [
        recorder_for(&url, String::new()),
        recorder_for(&url, String::new()),
    ];
    let mut calls = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..50 {
        let rec = &recorders[i % 2];
        let (recording_id, leg) = one_call(rec);
        let latency = wait_recording_end(&rx, &recording_id, Instant::now());
        worst = worst.max(latency);
        calls.push((recording_id, leg));
    }
    eprintln!("50 calls, 2 recorders, guide receiver: worst BYE→recordingEnd {worst:?}");
    let recs = rx.records();
    for (recording_id, leg) in &calls {
        let of_leg = |kind: &str| {
            recs.iter()
                .filter(|r| r.record_type == kind && r.text.contains(&format!("\"{leg}\"")))
                .count()
        };
        assert_eq!(of_leg("callLegStart"), 1, "callLegStart of {leg}");
        assert_eq!(of_leg("callLegEnd"), 1, "callLegEnd of {leg}");
        assert!(of_leg("callLegUpdate") >= 1, "callLegUpdate of {leg}");
        let of_rec = |kind: &str| {
            recs.iter()
                .filter(|r| {
                    r.record_type == kind
                        && r.text
                            .contains(&format!("<recording id=\"{recording_id}\""))
                })
                .count()
        };
        assert_eq!(
            of_rec("recordingStart"),
            1,
            "recordingStart of {recording_id}"
        );
        assert_eq!(of_rec("recordingEnd"), 1, "recordingEnd of {recording_id}");
    }
    let senders: BTreeSet<&str> = recs.iter().map(|r| r.call_bridge.as_str()).collect();
    assert_eq!(senders.len(), 2, "two recorders told apart by callBridge");
    assert_indexes_continuous(&recs);
}

#[test]
fn the_guides_receiver_in_https_mode_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let rx = GuideReceiver::start(Some((&cert_path, &key_path)));
    let url = rx.url("https");
    let toml = format!(
        "[cdr]\nmax_backoff_secs = 1\n[[cdr.receiver_options]]\nurl = \"{url}\"\nca_file = \"{}\"\n",
        cert_path.display()
    );
    let rec = recorder_for(&url, toml);
    for _ in 0..3 {
        let (recording_id, _) = one_call(&rec);
        wait_recording_end(&rx, &recording_id, Instant::now());
    }
    assert_indexes_continuous(&rx.records());

    // Without the CA the same receiver is not trusted: nothing arrives, the log says why.
    let rx2 = GuideReceiver::start(Some((&cert_path, &key_path)));
    let untrusted = recorder_for(&rx2.url("https"), "[cdr]\nmax_backoff_secs = 1\n".into());
    one_call(&untrusted);
    std::thread::sleep(Duration::from_secs(2));
    assert!(rx2.records().is_empty());
    assert!(
        untrusted.log().contains("CDR delivery failed"),
        "{}",
        untrusted.log()
    );
}
