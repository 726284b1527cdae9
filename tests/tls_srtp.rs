//! Secure recording, black-box: SIP over TLS (rustls on both ends, a throw-away PKI) and
//! SDES-SRTP media (SPEC §3 transports, §4 `RTP/SAVP`), with SRTP encrypted on the test
//! side by `webrtc-srtp` and the written WAV files checked for the tones.

mod common;

use common::rtp::{EDGE_S, Pacer};
use common::srtp::*;
use common::tls::*;
use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// A recorder with a `tls:` listener next to the harness's UDP/TCP ones.
struct TlsRecorder {
    rec: Recorder,
    tls_addr: SocketAddr,
    ca: TestCa,
    _pki: tempfile::TempDir,
}

/// `client_ca`: require client certificates issued by this CA.
fn start_tls(client_ca: Option<&TestCa>, extra_toml: &str) -> TlsRecorder {
    let ca = TestCa::new("sip-recorder test CA");
    let server = ca.server();
    let pki = tempfile::tempdir().expect("PKI dir");
    let cert = pki.path().join("server.pem");
    let key = pki.path().join("server.key");
    std::fs::write(&cert, &server.cert_pem).expect("write cert");
    std::fs::write(&key, &server.key_pem).expect("write key");
    let mut toml = format!(
        "[sip]\ntls_certificate = {:?}\ntls_private_key = {:?}\ntls_handshake_timeout_secs = 2\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    if let Some(client_ca) = client_ca {
        let path = pki.path().join("client-ca.pem");
        std::fs::write(&path, &client_ca.cert_pem).expect("write client CA");
        toml.push_str(&format!(
            "tls_client_ca = {:?}\n",
            path.display().to_string()
        ));
    }
    toml.push_str(extra_toml);
    let port = free_port();
    let listen = format!("tls:127.0.0.1:{port}");
    let rec = Recorder::with_toml_args(&toml, &["--sip-listen", &listen]);
    TlsRecorder {
        rec,
        tls_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        ca,
        _pki: pki,
    }
}

/// Checks an answer m= line against the offer: SAVP, PCMU, the same tag and suite, and a
/// key of the suite's length that is not the offerer's. Returns the recorder's key.
fn check_answer_crypto(what: &str, m: &sdp::Media, suite: Suite, offered: &[u8]) -> Vec<u8> {
    assert_eq!(m.proto, "RTP/SAVP", "{what}: {m:?}");
    assert_ne!(m.port, 0, "{what}: stream refused: {m:?}");
    assert_eq!(
        m.fmts.first().map(String::as_str),
        Some("0"),
        "{what}: {m:?}"
    );
    let (tag, name, key) = answer_crypto(m);
    assert_eq!(tag, "1", "{what}: answer tag must be the offer's: {m:?}");
    assert_eq!(name, suite.name(), "{what}: {m:?}");
    assert_eq!(
        key.len(),
        suite.key_salt_len(),
        "{what}: answer key||salt length"
    );
    assert_ne!(
        key, offered,
        "{what}: the recorder echoed the offerer's key"
    );
    key
}

/// Counters of an SRTP stream in recording.json.
fn check_stream(what: &str, s: &Value, sender: &SrtpSender, suite: Suite) {
    eprintln!("{what}: {s}");
    assert_eq!(s["encrypted"], true, "{what}: {s}");
    assert_eq!(s["srtp_suite"], suite.name(), "{what}: {s}");
    assert_eq!(
        s["packets_received"].as_u64(),
        Some(sender.legit_sent),
        "{what}: packets_received vs genuine packets sent; {s}"
    );
    assert_eq!(s["packets_lost"].as_u64(), Some(0), "{what}: {s}");
    assert_eq!(
        s["srtp_auth_failures"].as_u64(),
        Some(sender.tampered_sent),
        "{what}: {s}"
    );
    assert_eq!(
        s["srtp_replays"].as_u64(),
        Some(sender.replays_sent),
        "{what}: {s}"
    );
}

/// No key (as base64, as sent in SDP) anywhere under the recordings and spool dirs or in
/// the log.
fn assert_no_keys(rec: &Recorder, keys: &[Vec<u8>]) {
    let needles: Vec<String> = keys
        .iter()
        .flat_map(|k| {
            let b = b64(k);
            // Also the unpadded form, and the first 20 characters alone.
            [b.trim_end_matches('=').to_string(), b[..20].to_string()]
        })
        .collect();
    let mut hits = files_containing(&rec.recordings_dir, &needles);
    hits.extend(files_containing(&rec.spool_dir, &needles));
    let log = rec.log();
    for n in &needles {
        if log.contains(n.as_str()) {
            hits.push((rec.log_path.clone(), n.clone()));
        }
    }
    assert!(hits.is_empty(), "SRTP key material written out: {hits:?}");
}

// ---------------------------------------------------------------------------------------
// TLS + SRTP, Genesys two-stream call

#[test]
fn tls_genesys_two_streams_srtp_aes_cm_80() {
    let tr = start_tls(None, "");
    let rec = &tr.rec;
    let mut c = TlsSipClient::connect(tr.tls_addr, &tr.ca.cert_pem, None)
        .unwrap_or_else(|e| panic!("TLS connect: {e}"));
    eprintln!("TLS connected: {}", c.protocol());
    let uri = genesys_uri(tr.tls_addr, &random_token(), &random_token());
    let mut call = tls_call(&c, &uri);
    let (k0, k1) = (Suite::Cm80.random_key(), Suite::Cm80.random_key());
    let offer = savp_sdp(1, &[(Suite::Cm80, &k0), (Suite::Cm80, &k1)], "sendonly");
    let invite = over_tls(&call.invite_sdp(&offer));
    c.send(&invite);
    let ok = c.expect_reply(&invite, 200, T);
    let contact = ok.header("contact").unwrap_or("").to_string();
    assert!(
        contact.contains("sips:") || contact.to_ascii_lowercase().contains("transport=tls"),
        "200 Contact over TLS should be sips: or ;transport=tls: {contact}"
    );
    let answer = sdp_of(&ok);
    let audio = answer.audio();
    assert_eq!(audio.len(), 2, "answer: {answer:?}");
    let a0 = check_answer_crypto("stream 0", audio[0], Suite::Cm80, &k0);
    let a1 = check_answer_crypto("stream 1", audio[1], Suite::Cm80, &k1);
    assert_ne!(a0, a1, "the same recorder key on both streams");
    let ports = [audio[0].port, audio[1].port];
    let ack = over_tls(&call.ack_2xx(&ok));
    c.send(&ack);
    let t0 = Instant::now();

    let dest = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let mut s0 = SrtpSender::new(dest(ports[0]), 440.0, Suite::Cm80, &k0);
    let mut s1 = SrtpSender::new(dest(ports[1]), 880.0, Suite::Cm80, &k1);
    let pacer = Pacer::new();
    let ticks = 100;
    for t in 0..ticks {
        pacer.wait(t);
        s0.send_tone(t);
        s1.send_tone(t);
    }
    std::thread::sleep(Duration::from_millis(100));
    let bye = over_tls(&call.bye());
    c.send(&bye);
    c.expect_reply(&bye, 200, T);

    let (dir, v) = rec.wait_ended(&call.call_id);
    assert_eq!(v["end_reason"], "bye", "{v}");
    let (from, to) = (
        pacer.secs_since(t0, 0) + EDGE_S,
        pacer.secs_since(t0, ticks) - EDGE_S,
    );
    for (i, s, hz, other) in [(0, &s0, 440.0, 880.0), (1, &s1, 880.0, 440.0)] {
        let what = format!("TLS/SRTP stream-{i}");
        check_stream(&what, &v["streams"][i], s, Suite::Cm80);
        let (_, wav) = stream_wav(&dir, &v, i);
        wav.assert_tone(&what, from, to, hz, other);
    }
    assert_no_keys(rec, &[k0, k1, a0, a1]);
}

// ---------------------------------------------------------------------------------------
// Each suite, one stream over UDP

/// One SRTP stream of `suite` for `ticks` packets; returns the recording and the sender.
fn one_stream_call(
    rec: &Recorder,
    suite: Suite,
    first_seq: Option<u16>,
    ticks: u64,
    per_tick: impl Fn(&mut SrtpSender, u64),
) -> (PathBuf, Value, SrtpSender, f64, f64) {
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let key = suite.random_key();
    let invite = call.invite_sdp(&savp_sdp(1, &[(suite, &key)], "sendonly"));
    let ok = establish(&mut c, &mut call, &invite);
    let t0 = Instant::now();
    let answer = sdp_of(&ok);
    let m = answer.audio()[0];
    let answer_key = check_answer_crypto(suite.name(), m, suite, &key);
    let mut s = SrtpSender::new(
        SocketAddr::from(([127, 0, 0, 1], m.port)),
        440.0,
        suite,
        &key,
    );
    if let Some(seq) = first_seq {
        s.seq = seq;
    }
    let pacer = Pacer::new();
    for t in 0..ticks {
        pacer.wait(t);
        per_tick(&mut s, t);
    }
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c, &mut call);
    let (dir, v) = rec.wait_ended(&call.call_id);
    assert_eq!(v["end_reason"], "bye", "{v}");
    assert_no_keys(rec, &[key, answer_key]);
    let from = pacer.secs_since(t0, 0) + EDGE_S;
    let to = pacer.secs_since(t0, ticks) - EDGE_S;
    (dir, v, s, from, to)
}

#[test]
fn srtp_each_suite_decodes_to_the_tone() {
    let rec = Recorder::start(&[]);
    for suite in [Suite::Cm32, Suite::Gcm] {
        let (dir, v, s, from, to) = one_stream_call(&rec, suite, None, 75, |s, t| s.send_tone(t));
        let what = suite.name();
        check_stream(what, &v["streams"][0], &s, suite);
        let (_, wav) = stream_wav(&dir, &v, 0);
        wav.assert_tone(what, from, to, 440.0, 880.0);
    }
}

// ---------------------------------------------------------------------------------------
// Tampering, replay, rollover

#[test]
fn srtp_tampered_dropped_and_counted_replays_rejected() {
    let rec = Recorder::start(&[]);
    let (dir, v, s, from, to) = one_stream_call(&rec, Suite::Cm80, None, 100, |s, t| {
        if t % 10 == 3 {
            s.send_tampered_then_tone(t);
        } else {
            s.send_tone(t);
        }
        // An old packet again, well inside the replay window.
        if t % 10 == 7 {
            s.replay(4);
        }
    });
    eprintln!(
        "sent: genuine {}, tampered {}, replayed {}",
        s.legit_sent, s.tampered_sent, s.replays_sent
    );
    assert_eq!((s.tampered_sent, s.replays_sent), (10, 10));
    check_stream("tamper/replay", &v["streams"][0], &s, Suite::Cm80);
    assert_eq!(
        v["streams"][0]["packets_duplicate"].as_u64(),
        Some(0),
        "replays must be refused by SRTP, not reach the jitter buffer: {}",
        v["streams"][0]
    );
    let (_, wav) = stream_wav(&dir, &v, 0);
    // Garbage from a forged packet or a replay in the wrong place would break the tone.
    wav.assert_tone("tamper/replay", from, to, 440.0, 880.0);
}

#[test]
fn srtp_rollover_past_65535_has_no_gap() {
    let rec = Recorder::start(&[]);
    // 100 packets from 65500: the sequence wraps after the 36th, and the rollover counter
    // (part of the SRTP index) with it.
    let (dir, v, s, from, to) =
        one_stream_call(&rec, Suite::Cm80, Some(65_500), 100, |s, t| s.send_tone(t));
    assert!(
        s.seq < 65_500 && s.seq > 50,
        "sequence did not wrap: {}",
        s.seq
    );
    check_stream("rollover", &v["streams"][0], &s, Suite::Cm80);
    let (_, wav) = stream_wav(&dir, &v, 0);
    wav.assert_tone("rollover", from, to, 440.0, 880.0);
}

// ---------------------------------------------------------------------------------------
// Re-key on re-INVITE

#[test]
fn srtp_rekey_on_reinvite_keeps_audio() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let k1 = Suite::Cm80.random_key();
    let invite = call.invite_sdp(&savp_sdp(1, &[(Suite::Cm80, &k1)], "sendonly"));
    let ok = establish(&mut c, &mut call, &invite);
    let t0 = Instant::now();
    let m = sdp_of(&ok).audio()[0].clone();
    let a1 = check_answer_crypto("initial", &m, Suite::Cm80, &k1);
    let mut s = SrtpSender::new(
        SocketAddr::from(([127, 0, 0, 1], m.port)),
        440.0,
        Suite::Cm80,
        &k1,
    );
    let pacer = Pacer::new();
    let (switch_tick, ticks) = (50, 100);
    for t in 0..switch_tick {
        pacer.wait(t);
        s.send_tone(t);
    }
    let k2 = Suite::Cm80.random_key();
    let re = call.reinvite(&savp_sdp(2, &[(Suite::Cm80, &k2)], "sendonly"), "");
    c.send(&re);
    let ok2 = c.expect_reply(&re, 200, T);
    let m2 = sdp_of(&ok2).audio()[0].clone();
    assert_eq!(m2.port, m.port, "re-INVITE moved the stream: {m2:?}");
    let a2 = check_answer_crypto("re-INVITE", &m2, Suite::Cm80, &k2);
    let ack = call.ack_2xx(&ok2);
    c.send(&ack);
    // From the 200 on, only the new key.
    s.rekey(Suite::Cm80, &k2);
    let resumed = pacer.next_tick().max(switch_tick);
    for t in resumed..resumed + (ticks - switch_tick) {
        pacer.wait(t);
        s.send_tone(t);
    }
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c, &mut call);
    let (dir, v) = rec.wait_ended(&call.call_id);
    check_stream("re-key", &v["streams"][0], &s, Suite::Cm80);
    let (_, wav) = stream_wav(&dir, &v, 0);
    let end = resumed + (ticks - switch_tick);
    eprintln!(
        "re-key: key switched at tick {resumed} ({:.3} s), last tick {end}",
        pacer.secs_since(t0, resumed)
    );
    wav.assert_tone(
        "re-key, before the switch",
        pacer.secs_since(t0, 0) + EDGE_S,
        pacer.secs_since(t0, switch_tick) - EDGE_S,
        440.0,
        880.0,
    );
    wav.assert_tone(
        "re-key, after the switch",
        pacer.secs_since(t0, resumed) + EDGE_S,
        pacer.secs_since(t0, end) - EDGE_S,
        440.0,
        880.0,
    );
    assert_no_keys(&rec, &[k1, k2, a1, a2]);
}

// ---------------------------------------------------------------------------------------
// Policy

/// Sends an INVITE with `sdp` and returns the final response (ACKed when not 2xx, hung
/// up when 2xx).
fn offer_status(rec: &Recorder, sdp: &str) -> Msg {
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.invite_sdp(sdp);
    let (_, resp) = invite_and_wait(&mut c, &call, &invite);
    if resp.status() == Some(200) {
        let ack = call.ack_2xx(&resp);
        c.send(&ack);
        hang_up(&mut c, &mut call);
    } else {
        c.send(&call.ack_non2xx(&resp));
    }
    resp
}

fn assert_488_with_warning(what: &str, resp: &Msg) {
    assert_eq!(
        resp.status(),
        Some(488),
        "{what}: {}",
        String::from_utf8_lossy(&resp.raw)
    );
    assert!(
        resp.header("warning").is_some(),
        "{what}: 488 without Warning:\n{}",
        String::from_utf8_lossy(&resp.raw)
    );
}

#[test]
fn srtp_policy_required_and_off() {
    let key = Suite::Cm80.random_key();
    let savp = savp_sdp(1, &[(Suite::Cm80, &key)], "sendonly");
    let plain = single_audio_sdp(1, "sendonly");

    let required = Recorder::with_toml("[media]\nsrtp = \"required\"\n");
    let r = offer_status(&required, &plain);
    assert_488_with_warning("srtp = required, plain RTP offer", &r);
    eprintln!("required/plain: Warning: {:?}", r.header("warning"));
    let r = offer_status(&required, &savp);
    assert_eq!(r.status(), Some(200), "srtp = required, SRTP offer");
    assert_eq!(sdp_of(&r).audio()[0].proto, "RTP/SAVP");

    let off = Recorder::with_toml("[media]\nsrtp = \"off\"\n");
    let r = offer_status(&off, &savp);
    assert_488_with_warning("srtp = off, SRTP-only offer", &r);
    eprintln!("off/SAVP: Warning: {:?}", r.header("warning"));
    let r = offer_status(&off, &plain);
    assert_eq!(r.status(), Some(200), "srtp = off, plain offer");
    assert_eq!(sdp_of(&r).audio()[0].proto, "RTP/AVP");
    assert!(!sdp_of(&r).audio()[0].has_attr("crypto:"));
}

// ---------------------------------------------------------------------------------------
// Client certificates

/// A client whose TLS session the server refused: no SIP answer, and the connection ends.
fn assert_refused(what: &str, result: Result<TlsSipClient, String>) {
    let mut c = match result {
        // TLS 1.2 fails in the handshake itself.
        Err(e) => {
            eprintln!("{what}: handshake failed: {e}");
            return;
        }
        Ok(c) => c,
    };
    let probe = options_request_tls(&c);
    // TLS 1.3: the client finishes first; the server's alert arrives on the next read.
    let _ = c.try_send(&probe);
    let got = c.recv(Duration::from_secs(3));
    assert!(
        got.is_none(),
        "{what}: the recorder answered SIP without a valid client certificate:\n{}",
        got.map(|m| String::from_utf8_lossy(&m.raw).into_owned())
            .unwrap_or_default()
    );
    assert!(
        c.closed,
        "{what}: the connection stayed open without a valid client certificate"
    );
    eprintln!("{what}: refused: {:?}", c.close_reason);
}

fn options_request_tls(c: &TlsSipClient) -> String {
    let call = tls_call(c, &format!("sip:recorder@{}", c.server));
    over_tls(&call.request("OPTIONS", &call.request_uri).build())
}

#[test]
fn tls_client_certificate_required_when_client_ca_set() {
    let client_ca = TestCa::new("SRC client CA");
    let tr = start_tls(Some(&client_ca), "");
    let server_ca = tr.ca.cert_pem.clone();

    assert_refused(
        "no client certificate",
        TlsSipClient::connect(tr.tls_addr, &server_ca, None),
    );
    let stranger = TestCa::new("someone else").client("src.example.net");
    assert_refused(
        "certificate from another CA",
        TlsSipClient::connect(tr.tls_addr, &server_ca, Some(&stranger)),
    );

    let id = client_ca.client("src.example.net");
    let mut c = TlsSipClient::connect(tr.tls_addr, &server_ca, Some(&id))
        .unwrap_or_else(|e| panic!("TLS with a valid client certificate: {e}"));
    let uri = genesys_uri(tr.tls_addr, &random_token(), &random_token());
    let mut call = tls_call(&c, &uri);
    let invite = over_tls(&call.invite_sdp(&genesys_sdp(1, "sendonly")));
    c.send(&invite);
    let ok = c.expect_reply(&invite, 200, T);
    c.send(&over_tls(&call.ack_2xx(&ok)));
    let bye = over_tls(&call.bye());
    c.send(&bye);
    c.expect_reply(&bye, 200, T);
    let (_, v) = tr.rec.wait_ended(&call.call_id);
    assert_eq!(v["end_reason"], "bye", "{v}");
    // Only the accepted client's call was recorded.
    assert_eq!(
        tr.rec.recording_dirs().len(),
        1,
        "{:?}",
        tr.rec.recordings()
    );
}

// ---------------------------------------------------------------------------------------
// A real SIP client: baresip (Debian baresip-core) with mandatory SDES-SRTP

/// baresip places a call with `mediaenc=srtp-mand`, playing a 440 Hz WAV through its
/// `aufile` source; the recording must decode to the tone. Over UDP: baresip 1.0 ends the
/// call by itself right after the recorder's 200 OK over TLS ("session closed: Function not
/// implemented"), so TLS is covered by the rustls client tests above.
#[test]
fn baresip_srtp_call_decodes_to_the_tone() {
    let rec = Recorder::start(&[]);
    let target = |record_id: &str| format!("sip:record={record_id}@{}", rec.sip_addr);
    baresip_call(&rec, &target, "");
}

#[test]
fn baresip_over_tls_with_srtp_decodes_to_the_tone() {
    let tls = start_tls(None, "");
    let dir = tempfile::tempdir().expect("CA dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca.cert_pem).expect("write CA");
    let addr = tls.tls_addr;
    let target = move |record_id: &str| format!("sip:record={record_id}@{addr};transport=tls");
    let v = baresip_call(&tls.rec, &target, &format!("sip_cafile {}\n", ca.display()));
    let via = v["sip_headers"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == "Via"))
        .map(|h| h["value"].to_string())
        .unwrap_or_default();
    assert!(
        via.contains("SIP/2.0/TLS"),
        "the call did not come over TLS: {via}"
    );
}

/// A real SIP client (Debian baresip) plays a 440 Hz WAV over mandatory SRTP to the
/// recorder; the recording must decode to the tone.
fn baresip_call(rec: &Recorder, target: &dyn Fn(&str) -> String, extra_config: &str) -> Value {
    let dir = tempfile::tempdir().expect("baresip dir");
    let wav = dir.path().join("tone.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).expect("create WAV");
    for i in 0..8000 * 4 {
        let x = 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin();
        w.write_sample(x as i16).expect("write WAV");
    }
    w.finalize().expect("finalize WAV");
    let sip_port = free_port();
    // baresip picks its RTP ports at random from 1024-49152 unless told: keep it out of the
    // blocks the tests' recorders lease (10000-29999), where it could take another test's port.
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
         rtp_ports 30000-32000\n\
         audio_source aufile,{}\naudio_player aubridge,nil\naudio_alert aubridge,nil\n\
         module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
         module aubridge.so\nmodule srtp.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n\
         module_app menu.so\n{extra_config}",
        wav.display()
    );
    std::fs::write(dir.path().join("config"), config).expect("baresip config");
    std::fs::write(
        dir.path().join("accounts"),
        "<sip:src@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n",
    )
    .expect("baresip accounts");
    let record_id = random_token();
    let target = target(&record_id);
    let out = std::process::Command::new("timeout")
        .args(["30", "baresip", "-f"])
        .arg(dir.path())
        .args(["-e", &format!("/dial {target}"), "-t", "4"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run baresip (Debian baresip-core): {e}"));
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let (rdir, v) = rec.wait_recording(
        |v| v["record_id"] == record_id.as_str() && v["state"] == "ended",
        Duration::from_secs(10),
    );
    let s = &v["streams"][0];
    eprintln!("baresip: {s}");
    assert_eq!(
        v["end_reason"], "bye",
        "baresip did not hang up: {v}\n{log}"
    );
    assert_eq!(s["encrypted"], true, "{s}\n{log}");
    assert_eq!(s["srtp_suite"], Suite::Cm80.name(), "{s}");
    assert_eq!(s["srtp_auth_failures"].as_u64(), Some(0), "{s}");
    let received = s["packets_received"].as_u64().unwrap_or(0);
    assert!(
        received >= 150,
        "baresip sent 4 s at 50 pps, recorded {received}: {s}\n{log}"
    );
    let (_, wav) = stream_wav(&rdir, &v, 0);
    // The middle of the call: baresip starts and stops sending at its own moments.
    let d = wav.duration_secs();
    wav.assert_tone("baresip", 1.0, d - 1.0, 440.0, 880.0);
    v
}
