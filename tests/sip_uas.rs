//! Black-box tests of the recorder as a SIP UAS (SPEC §3, §4 and the recording.json of §5):
//! the real binary on loopback ports, driven by a raw SIP client over UDP and TCP. This file:
//! OPTIONS, the calls of each kind, and the INVITE transaction (CANCEL, retransmission,
//! missing ACK); the dialog, refusals and robustness are in `sip_uas_*.rs`.

mod common;

use common::uas::*;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// OPTIONS

fn options_ok(transport: Transport) {
    let rec = Recorder::start(&[]);
    let mut c = rec.client(transport);
    let req = options_request(&c);
    c.send(&req);
    let ok = c.expect_reply(&req, 200, T);
    let allow = ok.header_tokens("allow");
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        assert!(allow.iter().any(|a| a == m), "Allow lacks {m}: {allow:?}");
    }
    assert!(!allow.iter().any(|a| a == "REGISTER"), "Allow: {allow:?}");
    let accept = ok.header("accept").expect("Accept header");
    assert!(accept.contains("application/sdp"), "Accept: {accept}");
    assert!(
        ok.header("supported").is_some(),
        "no Supported:\n{}",
        text(&ok)
    );
    if transport == Transport::Udp {
        // RFC 3581: the bare rport gets the source port filled in.
        let via = ok.header("via").expect("Via");
        assert!(
            via.contains(&format!("rport={}", c.local.port())),
            "rport not filled: {via}"
        );
    }
}

#[test]
fn options_udp_200_with_allow_accept_supported() {
    options_ok(Transport::Udp);
}

#[test]
fn options_tcp_200_with_allow_accept_supported() {
    options_ok(Transport::Tcp);
}

// ---------------------------------------------------------------------------------------
// Calls of each kind

fn genesys_call(transport: Transport) {
    let rec = Recorder::start(&[]);
    let mut c = rec.client(transport);
    let record_id = random_token();
    let calluuid = random_token();
    let uri = genesys_uri(rec.sip_addr, &record_id, &calluuid);
    let mut call = Call::new(&c, &uri);
    let invite = call.genesys_invite();
    let (provisional, ok) = invite_and_wait(&mut c, &call, &invite);
    assert!(
        provisional.iter().any(|m| m.status() == Some(100)),
        "no 100 Trying before the final response"
    );
    assert_eq!(ok.status(), Some(200), "{}", text(&ok));
    assert_eq!(ok.cseq(), (call.invite_cseq, "INVITE".to_string()));
    assert_genesys_answer(&rec, &ok, "recvonly");
    let ack = call.ack_2xx(&ok);
    c.send(&ack);

    let (dir, v) = rec.wait_recording(|v| v["sip_call_id"] == call.call_id.as_str(), T);
    assert_eq!(v["state"], "active");
    assert_eq!(v["kind"], "genesys");
    assert_eq!(v["record_id"], record_id.as_str());
    assert_eq!(v["calluuid"], calluuid.as_str());
    assert_eq!(v["dn"], "1001");
    assert_eq!(v["other_dn"], "1002");
    assert_eq!(v["record_dn"], "1001");
    assert_eq!(v["uri_params"]["calluuid"], calluuid.as_str());
    assert_eq!(v["uri_params"]["otherDN"], "1002");
    assert_eq!(v["uri_params"]["recordDN"], "1001");
    assert_eq!(v["request_uri"], uri.as_str());
    assert!(
        v["from"].as_str().unwrap_or("").contains("sip:client@"),
        "from: {}",
        v["from"]
    );
    assert!(v["to"].as_str().unwrap_or("").contains("record="));
    assert!(!v["sip_headers"].is_null(), "sip_headers missing");
    assert!(
        is_rfc3339(&v["started_at"]),
        "started_at: {}",
        v["started_at"]
    );
    assert!(is_null_or_absent(&v["ended_at"]));
    assert_eq!(v["pauses"], Value::Array(vec![]));
    let streams = v["streams"].as_array().expect("streams array");
    assert_eq!(streams.len(), 2, "{streams:?}");
    for s in streams {
        assert_eq!(
            s["codec"].as_str().map(str::to_ascii_uppercase).as_deref(),
            Some("PCMU")
        );
        assert_eq!(s["payload_type"], 0);
    }
    // Layout {yyyy}/{mm}/{dd}/{recording_id}.
    let rel = dir
        .strip_prefix(&rec.recordings_dir)
        .expect("under recordings dir");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 4, "layout {rel:?}");
    assert_eq!(parts[0].len(), 4);
    assert_eq!(parts[1].len(), 2);
    assert_eq!(parts[2].len(), 2);
    assert_eq!(v["recording_id"], parts[3].as_str());

    hang_up(&mut c, &mut call);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
    assert!(is_rfc3339(&v["ended_at"]), "ended_at: {}", v["ended_at"]);
    assert_eq!(rec.recordings().len(), 1);
}

#[test]
fn genesys_call_udp_invite_ack_bye() {
    genesys_call(Transport::Udp);
}

#[test]
fn genesys_call_tcp_invite_ack_bye() {
    genesys_call(Transport::Tcp);
}

#[test]
fn cms_call_tcp_audio_recorded_video_and_bfcp_refused() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    let mut call = Call::new(&c, &cms_uri(rec.sip_addr));
    let invite = call.cms_invite();
    let (provisional, ok) = invite_and_wait(&mut c, &call, &invite);
    assert!(provisional.iter().any(|m| m.status() == Some(100)));
    assert_eq!(ok.status(), Some(200), "{}", text(&ok));
    let sdp = sdp_of(&ok);
    assert_eq!(sdp.media.len(), 3, "one answer m= line per offered one");
    let audio = &sdp.media[0];
    assert_eq!(audio.kind, "audio");
    assert_rtp_port(&rec, audio);
    assert_eq!(audio.fmts[0], "9", "first offered storable codec is G722");
    assert_eq!(audio.encoding("9").as_deref(), Some("G722"));
    assert!(
        audio.fmts.contains(&"101".to_string()),
        "telephone-event dropped"
    );
    assert_eq!(audio.direction(), "recvonly");
    assert_eq!(sdp.media[1].kind, "video");
    assert_eq!(sdp.media[1].port, 0, "video must be refused");
    assert_eq!(sdp.media[2].kind, "application");
    assert_eq!(sdp.media[2].port, 0, "BFCP must be refused");
    let ack = call.ack_2xx(&ok);
    c.send(&ack);

    let (_, v) = rec.wait_call_state(&call.call_id, "active", T);
    assert_eq!(v["kind"], "cms");
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "only audio is recorded: {streams:?}");
    assert_eq!(
        streams[0]["codec"]
            .as_str()
            .map(str::to_ascii_uppercase)
            .as_deref(),
        Some("G722")
    );
    hang_up(&mut c, &mut call);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn siprec_call_udp_multipart_offer() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::new(&c, &siprec_uri(rec.sip_addr));
    let invite = call.siprec_invite();
    let ok = establish(&mut c, &mut call, &invite);
    let contact = ok.header("contact").expect("Contact");
    assert!(
        contact.contains("+sip.srs"),
        "SRS Contact lacks +sip.srs: {contact}"
    );
    let sdp = sdp_of(&ok);
    assert_eq!(sdp.media.len(), 2);
    for m in &sdp.media {
        assert_eq!(m.kind, "audio");
        assert_rtp_port(&rec, m);
        assert_eq!(m.direction(), "recvonly");
    }
    let (_, v) = rec.wait_call_state(&call.call_id, "active", T);
    assert_eq!(v["kind"], "siprec");
    assert_eq!(v["streams"].as_array().map(Vec::len), Some(2));
    assert!(!v["participants"].is_null(), "participants missing: {v}");
    if let Some(p) = v["participants"].as_array() {
        assert_eq!(p.len(), 2, "{p:?}");
    }
    hang_up(&mut c, &mut call);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

// ---------------------------------------------------------------------------------------
// INVITE transaction: CANCEL, retransmission, missing ACK

fn cancel_before_answer(transport: Transport) {
    let rec = Recorder::start(&[]);
    let mut c = rec.client(transport);
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    let cancel = call.cancel();
    // The recorder answers only after preparing the recording, so a CANCEL already queued
    // behind the INVITE is seen before the 200.
    match transport {
        Transport::Tcp => c.send(&format!("{invite}{cancel}")),
        Transport::Udp => {
            c.send(&invite);
            c.send(&cancel);
        }
    }
    c.expect_reply(&cancel, 200, T);
    let (_, fin) = c
        .wait_reply(&invite, 487, T)
        .expect("final response to INVITE");
    assert_eq!(fin.status(), Some(487), "{}", text(&fin));
    let ack = call.ack_non2xx(&fin);
    c.send(&ack);
    assert_no_recording_left(&rec);
    // The session slot was released.
    assert_eq!(options_status(rec.sip_addr).status(), Some(200));
}

#[test]
fn cancel_before_200_udp_gives_487_and_leaves_nothing() {
    cancel_before_answer(Transport::Udp);
}

#[test]
fn cancel_before_200_tcp_gives_487_and_leaves_nothing() {
    cancel_before_answer(Transport::Tcp);
}

#[test]
fn retransmitted_invite_gets_same_200_and_one_recording() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    c.send(&invite);
    c.send(&invite);
    let first = c.expect_reply(&invite, 200, T);
    c.send(&invite);
    let second = c.expect_reply(&invite, 200, T);
    assert_eq!(
        first.tag_of_to(),
        second.tag_of_to(),
        "a second dialog was created"
    );
    assert_eq!(first.body, second.body, "a second answer was made");
    let ack = call.ack_2xx(&first);
    c.send(&ack);
    rec.wait_call_state(&call.call_id, "active", T);
    // Give a wrongly processed duplicate the time to show up as a directory.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rec.recordings().len(), 1, "{:#?}", rec.recordings());
    assert_eq!(rec.recording_dirs().len(), 1);
    hang_up(&mut c, &mut call);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
    assert_eq!(rec.recordings().len(), 1);
}

#[test]
fn missing_ack_gives_bye_after_64_t1() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    c.send(&invite);
    let ok = c.expect_reply(&invite, 200, T);
    let t0 = Instant::now();
    let our_tag = call.from_tag.clone();
    call.learn(&ok);
    // Count the 200 retransmissions (T1 doubling up to T2) until the recorder gives up.
    let mut retransmissions = 0;
    let bye = loop {
        let m = c
            .recv(Duration::from_secs(10).saturating_sub(t0.elapsed()))
            .expect("no BYE after the missing ACK");
        if m.status() == Some(200) && m.call_id() == call.call_id {
            retransmissions += 1;
        } else if m.method() == Some("BYE") {
            break m;
        }
    };
    let elapsed = t0.elapsed();
    let t1 = rec.config.t1_ms as f64 / 1000.0;
    assert!(
        elapsed >= secs(64.0 * t1 * 0.9) && elapsed <= secs(64.0 * t1 + 3.0),
        "BYE after {elapsed:?}, expected about 64*T1 = {}s",
        64.0 * t1
    );
    assert!(
        retransmissions >= 3,
        "only {retransmissions} 200 retransmissions"
    );
    assert_eq!(bye.call_id(), call.call_id);
    assert_eq!(bye.tag_of_to().as_deref(), Some(our_tag.as_str()));
    assert_eq!(bye.tag_of_from(), ok.tag_of_to());
    c.respond(&bye, 200, "OK");
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "ack_timeout");
}
