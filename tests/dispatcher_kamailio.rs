//! Two real recorders behind the shipped Kamailio dispatcher configuration
//! (`deploy/kamailio/kamailio.cfg`, Debian package `kamailio`): a SIPp load of Genesys
//! pause/resume/refresh calls goes through the proxy, one recorder is drained by SIGTERM
//! midway, and every call must still succeed and be recorded by exactly one recorder, with
//! both recorders' CDRs at one receiver told apart by their `<records session>` GUID.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CALLS: usize = 40;
/// Longer than any call of the scenario (about 1 s), so a drained recorder's calls end by
/// the client's BYE, never by the grace period.
const GRACE_SECS: u64 = 15;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `kamailio` from PATH, else where Debian installs it (/usr/sbin, not in a user's PATH).
fn kamailio_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kamailio"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/kamailio")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("kamailio"))
}

/// Kamailio running the shipped configuration in the foreground, in its own process
/// group so that its forked workers end with it.
struct Kamailio {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    fn start(recorders: &[SocketAddr]) -> Kamailio {
        let dir = tempfile::Builder::new()
            .prefix("kamailio-test")
            .tempdir()
            .expect("tempdir");
        let list = dir.path().join("dispatcher.list");
        let lines: String = recorders
            .iter()
            .enumerate()
            .map(|(i, a)| format!("1 sip:{a} 0 0 duid=rec-{i}\n"))
            .collect();
        fs::write(&list, lines).expect("write dispatcher list");
        let port = free_port();
        let log_path = dir.path().join("kamailio.log");
        let log = fs::File::create(&log_path).expect("log file");
        let log2 = log.try_clone().expect("clone log");
        let mut cmd = Command::new(kamailio_binary());
        cmd.arg("-f")
            .arg(repo_path("deploy/kamailio/kamailio.cfg"))
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .args(["-A", "LISTEN_IP=127.0.0.1"])
            .args(["-A", &format!("SIP_PORT={port}")])
            .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
            .args(["-A", "DS_PING_INTERVAL=1", "-A", "CHILDREN=2"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!(
                    "`kamailio` is not installed: install the Debian package kamailio (scripts/test does)"
                )
            }
            Err(e) => panic!("cannot run kamailio: {e}"),
        };
        let mut k = Kamailio {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log_path,
            _dir: dir,
        };
        k.wait_ready();
        k
    }

    /// Ready = the proxy itself answers an OPTIONS without user part with 200.
    fn wait_ready(&mut self) {
        let mut client = SipClient::udp(self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kamailio exited during startup with {status}\n{}",
                    self.log()
                );
            }
            client.send(&options_request(&client));
            if let Some(m) = client.recv(Duration::from_millis(100))
                && m.status() == Some(200)
            {
                return;
            }
        }
        panic!(
            "kamailio did not answer OPTIONS within 10 s\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn attr(text: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = text.find(&key)? + key.len();
    Some(text[start..].split('"').next()?.to_string())
}

/// Recording ids of every `recordingEnd` received, by the `<records callBridge>` instance
/// GUID of the document that carried it — persistent per recorder, across its restarts (a
/// repeat delivery is the same id again: sets absorb it).
fn recording_ends_by_instance(got: &Arc<Mutex<Vec<String>>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for doc in got.lock().expect("lock").iter() {
        let session = attr(doc, "callBridge").unwrap_or_else(|| panic!("no callBridge in {doc}"));
        for record in doc.split("<record ").skip(1) {
            if attr(record, "type").as_deref() != Some("recordingEnd") {
                continue;
            }
            let inner = record
                .split("<recording ")
                .nth(1)
                .unwrap_or_else(|| panic!("recordingEnd without <recording>: {record}"));
            let id = attr(inner, "id").unwrap_or_else(|| panic!("no recording id: {record}"));
            out.entry(session.clone()).or_default().insert(id);
        }
    }
    out
}

/// The proxied Genesys pause/resume scenario through `proxy`, 8 calls a second.
fn spawn_sipp(proxy: SocketAddr, transport: Transport, calls: usize, work: &Path) -> Child {
    // Over TCP: one connection to the proxy, as CMS keeps; the proxy reaches the recorders
    // over UDP and record-routes twice.
    SippRun::new(proxy, "uac_genesys_pause_resume_proxied.xml", calls)
        .rate(8, 10)
        .timeout("45s")
        .transport(transport)
        .args(&["-s", "rec", "-fd", "1"])
        .spawn(work)
}

/// Every recording of a recorder, once none is still active.
fn ended_recordings(rec: &Recorder, name: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all: Vec<Value> = rec.recordings().into_iter().map(|(_, v)| v).collect();
        if all.iter().all(|v| v["state"] == "ended") {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "recorder {name}: recordings not all ended: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rfc3339(t: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("timestamp {t}: {e}"))
}

/// When the recorder began draining: the timestamp of its "SIGTERM: draining" log line.
fn drain_logged_at(log: &str) -> time::OffsetDateTime {
    let line = log
        .lines()
        .find(|l| l.contains("SIGTERM: draining"))
        .unwrap_or_else(|| panic!("no \"SIGTERM: draining\" in the recorder log\n{log}"));
    rfc3339(line.split_whitespace().next().unwrap_or_default())
}

fn record_id(v: &Value) -> String {
    v["record_id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn kamailio_dispatcher_drains_one_recorder_without_losing_a_call_udp() {
    drain_one_recorder_behind_kamailio(Transport::Udp);
}

#[test]
fn kamailio_dispatcher_drains_one_recorder_without_losing_a_call_tcp_clients() {
    drain_one_recorder_behind_kamailio(Transport::Tcp);
}

fn drain_one_recorder_behind_kamailio(transport: Transport) {
    let (cdr_url, cdrs) = cdr_receiver();
    let config = RecorderConfig {
        grace_period_secs: GRACE_SECS,
        ..RecorderConfig::default()
    };
    let args = ["--cdr-receiver", cdr_url.as_str()];
    let mut drained = Recorder::start_with(config.clone(), &args);
    let survivor = Recorder::start_with(config, &args);
    let kamailio = Kamailio::start(&[drained.sip_addr, survivor.sip_addr]);

    let work = tempfile::tempdir().expect("tempdir");
    let sipp = spawn_sipp(kamailio.addr, transport, CALLS, work.path());
    // About a third of the calls have started when the drain begins.
    std::thread::sleep(Duration::from_millis(1500));
    drained.sigterm();

    let context = format!(
        "--- kamailio ---\n{}\n--- drained recorder ---\n{}",
        kamailio.log(),
        drained.log()
    );
    SippOutcome::of(sipp, work.path()).assert_all_succeeded(CALLS, &context);

    // Its calls finished, so the drained recorder exits long before its grace period ends.
    let status = drained.wait_exit(Duration::from_secs(GRACE_SECS + 5));
    assert!(
        status.is_some_and(|s| s.success()),
        "drained recorder exit: {status:?}\n{}",
        drained.log()
    );

    let on_drained = ended_recordings(&drained, "drained");
    let on_survivor = ended_recordings(&survivor, "survivor");
    assert!(
        !on_drained.is_empty(),
        "the drained recorder got no call before SIGTERM"
    );
    assert!(
        !on_survivor.is_empty(),
        "the surviving recorder got no call"
    );
    eprintln!(
        "calls recorded: {} by the drained recorder, {} by the other",
        on_drained.len(),
        on_survivor.len()
    );

    // Every call exactly once, over both recorders, ended by the client's BYE with its
    // pause closed.
    let mut ids: Vec<String> = on_drained
        .iter()
        .chain(&on_survivor)
        .map(record_id)
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (1..=CALLS).map(|n| format!("rec-{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "each call recorded by exactly one recorder");
    for v in on_drained.iter().chain(&on_survivor) {
        assert_eq!(v["kind"], "genesys", "{v}");
        assert_eq!(v["end_reason"], "bye", "{v}");
        let pauses = v["pauses"].as_array().expect("pauses");
        assert_eq!(pauses.len(), 1, "{v}");
        assert!(pauses[0]["ended_at"].is_string(), "pause not closed: {v}");
    }
    // No new call reached the recorder once it was draining. The drain begins when the
    // recorder handles the signal (its "SIGTERM: draining" log line), not when `kill` was
    // run; an INVITE already in its core at that instant may still be taken, so 100 ms of
    // slack (less than the 125 ms between two calls of the load).
    let drain_at = drain_logged_at(&drained.log());
    let slack = time::Duration::milliseconds(100);
    for v in &on_drained {
        let started = rfc3339(v["started_at"].as_str().expect("started_at"));
        assert!(
            started <= drain_at + slack,
            "call started on the draining recorder (drain at {drain_at}): {v}"
        );
    }

    // The drain kept calls that were up at SIGTERM until their own BYE.
    let ended_after_sigterm = on_drained.iter().any(|v| {
        v["ended_at"]
            .as_str()
            .is_some_and(|t| rfc3339(t) > drain_at)
    });
    assert!(
        ended_after_sigterm,
        "no call was still up on the drained recorder at SIGTERM: {on_drained:#?}"
    );

    // The upgrade step after the drain: start it again. A drained recorder exits as soon as
    // its last call ended, leaving CDRs not yet delivered in its spool; the next process
    // delivers them under the session GUID they were recorded with.
    drained.restart();

    // Both recorders' CDRs at the one receiver, told apart by their instance GUID (the
    // drained one was restarted in between: its GUID survived).
    let dir_ids = |recs: &[Value]| -> BTreeSet<String> {
        recs.iter()
            .map(|v| {
                v["recording_id"]
                    .as_str()
                    .expect("recording_id")
                    .to_string()
            })
            .collect()
    };
    let (want_drained, want_survivor) = (dir_ids(&on_drained), dir_ids(&on_survivor));
    let deadline = Instant::now() + Duration::from_secs(10);
    let by_session = loop {
        let by_session = recording_ends_by_instance(&cdrs);
        let total: usize = by_session.values().map(BTreeSet::len).sum();
        if total >= CALLS || Instant::now() >= deadline {
            break by_session;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        by_session.len(),
        2,
        "two CDR instance GUIDs expected: {by_session:#?}"
    );
    let sessions: Vec<&BTreeSet<String>> = by_session.values().collect();
    assert!(
        (sessions[0] == &want_drained && sessions[1] == &want_survivor)
            || (sessions[0] == &want_survivor && sessions[1] == &want_drained),
        "recordingEnd ids per instance {by_session:#?}\ndrained: {want_drained:?}\nsurvivor: {want_survivor:?}"
    );
}

/// A recorder that died without a word (SIGKILL) answers nothing: each INVITE the proxy
/// still sends it times out after FR_TIMER and hunts to the other recorder, and the dead
/// one leaves the rotation.
#[test]
fn kamailio_dispatcher_hunts_past_a_dead_recorder_on_timeout() {
    const N: usize = 12;
    let mut dead = Recorder::start(&[]);
    let alive = Recorder::start(&[]);
    let kamailio = Kamailio::start(&[dead.sip_addr, alive.sip_addr]);
    let killed = Command::new("kill")
        .args(["-KILL", &dead.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -KILL failed");
    assert!(
        dead.wait_exit(Duration::from_secs(5)).is_some(),
        "SIGKILL did not end it"
    );

    let work = tempfile::tempdir().expect("tempdir");
    let sipp = spawn_sipp(kamailio.addr, Transport::Udp, N, work.path());
    let context = format!("--- kamailio ---\n{}", kamailio.log());
    SippOutcome::of(sipp, work.path()).assert_all_succeeded(N, &context);
    // At least one INVITE went to the dead recorder and was hunted on after the timeout
    // (tm's local 408), not only skipped after a failed probe.
    let log = kamailio.log();
    let dead_uri = format!("sip:{}", dead.sip_addr);
    assert!(
        log.lines()
            .any(|l| l.contains(&dead_uri) && l.contains("failed (408), hunting")),
        "no INVITE timed out towards {dead_uri} and hunted on\n{log}"
    );
    let mut ids: Vec<String> = ended_recordings(&alive, "alive")
        .iter()
        .map(|v| {
            assert_eq!(v["end_reason"], "bye", "{v}");
            record_id(v)
        })
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (1..=N).map(|n| format!("rec-{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "every call recorded by the live recorder");
}
