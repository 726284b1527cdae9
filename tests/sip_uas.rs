//! Black-box tests of the recorder as a SIP UAS (SPEC §3, §4 and the recording.json of §5):
//! the real binary on loopback ports, driven by a raw SIP client over UDP and TCP.

mod common;

use common::*;
use serde_json::Value;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

fn text(m: &Msg) -> String {
    String::from_utf8_lossy(&m.raw).into_owned()
}

/// Audio m= line of an answer: a real, even port from the configured range.
fn assert_rtp_port(rec: &Recorder, m: &Media) {
    assert!(
        m.port >= rec.rtp_min && m.port <= rec.rtp_max,
        "port {} outside {}-{}",
        m.port,
        rec.rtp_min,
        rec.rtp_max
    );
    assert_eq!(m.port % 2, 0, "RTP port {} is odd", m.port);
}

/// SPEC §4 for the Genesys offer: two recvonly PCMU audio lines with telephone-event.
fn assert_genesys_answer(rec: &Recorder, ok: &Msg, direction: &str) -> Sdp {
    assert!(
        ok.tag_of_to().is_some(),
        "200 without To tag:\n{}",
        text(ok)
    );
    assert!(
        ok.contact_uri().is_some(),
        "200 without Contact:\n{}",
        text(ok)
    );
    let sdp = sdp_of(ok);
    assert_eq!(sdp.media.len(), 2, "one answer m= line per offered one");
    for (i, m) in sdp.media.iter().enumerate() {
        assert_eq!(m.kind, "audio");
        assert_eq!(m.proto, "RTP/AVP");
        assert_rtp_port(rec, m);
        assert_eq!(m.fmts[0], "0", "PCMU must be the chosen codec");
        assert!(
            m.fmts.contains(&"101".to_string()),
            "telephone-event dropped"
        );
        assert_eq!(
            m.encoding("101").as_deref().map(str::to_ascii_lowercase),
            Some("telephone-event".to_string())
        );
        assert_eq!(m.direction(), direction, "m= line {i}");
        assert_eq!(sdp.connection_of(i).as_deref(), Some("127.0.0.1"));
    }
    assert_ne!(sdp.media[0].port, sdp.media[1].port);
    sdp
}

fn assert_no_recording_left(rec: &Recorder) {
    // Cleanup may trail the final response: poll before judging.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if rec.recording_files().is_empty() && rec.recording_dirs().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "recording files left behind: files {:?} dirs {:?}",
        rec.recording_files(),
        rec.recording_dirs()
    );
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T'))
}

fn is_null_or_absent(v: &Value) -> bool {
    v.is_null()
}

/// Sends a request that must be refused with `code` and, for INVITE, ACKs the refusal.
fn refused(client: &mut SipClient, call: &Call, req: &str, code: u16) -> Msg {
    client.send(req);
    let resp = client.expect_reply(req, code, T);
    if req.starts_with("INVITE ") {
        let ack = call.ack_non2xx(&resp);
        client.send(&ack);
    }
    resp
}

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
    let v = rec.wait_call_state(&call.call_id, "ended", T);
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

    let v = rec.wait_call_state(&call.call_id, "active", T);
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
    let v = rec.wait_call_state(&call.call_id, "ended", T);
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
    let v = rec.wait_call_state(&call.call_id, "active", T);
    assert_eq!(v["kind"], "siprec");
    assert_eq!(v["streams"].as_array().map(Vec::len), Some(2));
    assert!(!v["participants"].is_null(), "participants missing: {v}");
    if let Some(p) = v["participants"].as_array() {
        assert_eq!(p.len(), 2, "{p:?}");
    }
    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
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
    let v = rec.wait_call_state(&call.call_id, "ended", T);
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
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "ack_timeout");
}

// ---------------------------------------------------------------------------------------
// re-INVITE: pause, resume, refresh, glare, ordering

#[test]
fn reinvite_inactive_pauses_and_sendonly_resumes() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    let ok = establish(&mut c, &mut call, &invite);
    let v0 = sdp_of(&ok).origin_version;
    rec.wait_call_state(&call.call_id, "active", T);

    let pause = call.reinvite(&genesys_sdp(2, "inactive"), "");
    c.send(&pause);
    let ok = c.expect_reply(&pause, 200, T);
    let sdp = assert_genesys_answer(&rec, &ok, "inactive");
    assert!(
        sdp.origin_version > v0,
        "answer changed but o= version did not"
    );
    let v1 = sdp.origin_version;
    let ack = call.ack_2xx(&ok);
    c.send(&ack);
    let v = rec.wait_call_state(&call.call_id, "paused", T);
    let pauses = v["pauses"].as_array().expect("pauses");
    assert_eq!(pauses.len(), 1, "{pauses:?}");
    assert!(is_rfc3339(&pauses[0]["started_at"]));
    assert!(is_null_or_absent(&pauses[0]["ended_at"]), "{pauses:?}");

    let resume = call.reinvite(&genesys_sdp(3, "sendonly"), "");
    c.send(&resume);
    let ok = c.expect_reply(&resume, 200, T);
    let sdp = assert_genesys_answer(&rec, &ok, "recvonly");
    assert!(
        sdp.origin_version > v1,
        "answer changed but o= version did not"
    );
    let ack = call.ack_2xx(&ok);
    c.send(&ack);
    let (_, v) = rec.wait_recording(
        |v| {
            v["sip_call_id"] == call.call_id.as_str()
                && v["state"] == "active"
                && is_rfc3339(&v["pauses"][0]["ended_at"])
        },
        T,
    );
    assert_eq!(v["pauses"].as_array().map(Vec::len), Some(1));

    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
    assert_eq!(v["pauses"].as_array().map(Vec::len), Some(1));
    assert!(is_rfc3339(&v["pauses"][0]["ended_at"]));
}

#[test]
fn refresh_reinvite_same_sdp_changes_nothing() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let timer = "Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n";
    let offer = genesys_sdp(1, "sendonly");
    let invite = call.invite(timer, Some("application/sdp"), &offer);
    let ok1 = establish(&mut c, &mut call, &invite);
    let before = rec.wait_call_state(&call.call_id, "active", T);

    let refresh = call.reinvite(&offer, timer);
    c.send(&refresh);
    let ok2 = c.expect_reply(&refresh, 200, T);
    assert_eq!(
        ok2.body_str(),
        ok1.body_str(),
        "a refresh must get the very same answer"
    );
    let ack = call.ack_2xx(&ok2);
    c.send(&ack);
    // A wrong reaction (pause, new stream, new recording) would be written right away.
    std::thread::sleep(Duration::from_millis(300));
    let after = rec.recordings_of_call(&call.call_id);
    assert_eq!(after.len(), 1);
    let after = &after[0];
    for key in ["recording_id", "state", "started_at", "ended_at", "pauses"] {
        assert_eq!(before[key], after[key], "{key} changed");
    }
    let streams = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| {
                (
                    s["codec"].clone(),
                    s["payload_type"].clone(),
                    s["file"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(streams(&before), streams(after));
    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn reinvite_while_previous_unacknowledged_gets_491() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    rec.wait_call_state(&call.call_id, "active", T);

    let first = call.reinvite(&genesys_sdp(2, "inactive"), "");
    c.send(&first);
    let ok_first = c.expect_reply(&first, 200, T);
    // No ACK yet: the first re-INVITE is still pending.
    let second = call.reinvite(&genesys_sdp(3, "sendonly"), "");
    let resp = refused(&mut c, &call, &second, 491);
    assert_eq!(resp.cseq().0, call.invite_cseq);
    let ack = call.ack_2xx(&ok_first);
    c.send(&ack);
    // The first re-INVITE took effect, the refused one did not.
    rec.wait_call_state(&call.call_id, "paused", T);
    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn reinvite_with_lower_cseq_gets_500() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    call.cseq = 20;
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    rec.wait_call_state(&call.call_id, "active", T);
    let stale = call.reinvite_with_cseq(5, &genesys_sdp(2, "inactive"));
    refused(&mut c, &call, &stale, 500);
    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
    assert_eq!(
        v["pauses"],
        Value::Array(vec![]),
        "the refused pause was applied"
    );
}

#[test]
fn bye_and_reinvite_for_unknown_dialog_get_481() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    call.to_tag = Some(random_token());
    let bye = call.bye();
    c.send(&bye);
    c.expect_reply(&bye, 481, T);
    let re = call.reinvite(&genesys_sdp(2, "inactive"), "");
    refused(&mut c, &call, &re, 481);
    assert_no_recording_left(&rec);
}

// ---------------------------------------------------------------------------------------
// Session timers (RFC 4028)

#[test]
fn session_expires_below_minimum_gets_422_with_min_se() {
    let rec = Recorder::start_with(
        RecorderConfig {
            min_session_expires_secs: 90,
            ..RecorderConfig::default()
        },
        &[],
    );
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let sdp = genesys_sdp(1, "sendonly");
    let invite = call.invite(
        "Session-Expires: 30\r\nSupported: timer\r\n",
        Some("application/sdp"),
        &sdp,
    );
    let resp = refused(&mut c, &call, &invite, 422);
    let min_se = resp.header("min-se").expect("422 without Min-SE");
    let min_se: u32 = min_se
        .split(';')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .expect("numeric Min-SE");
    assert_eq!(min_se, 90);
    assert_no_recording_left(&rec);

    // The retry with an acceptable interval succeeds and gets a Session-Expires.
    let invite = call.invite(
        "Session-Expires: 90\r\nMin-SE: 90\r\nSupported: timer\r\n",
        Some("application/sdp"),
        &sdp,
    );
    let ok = establish(&mut c, &mut call, &invite);
    let se = ok
        .header("session-expires")
        .expect("200 without Session-Expires");
    let delta: u32 = se
        .split(';')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .expect("numeric Session-Expires");
    assert_eq!(delta, 90);
    let refresher = header_param(se, "refresher").expect("refresher param");
    assert!(refresher == "uac" || refresher == "uas", "{se}");
    hang_up(&mut c, &mut call);
}

#[test]
fn session_not_refreshed_ends_with_session_timeout() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.invite(
        "Session-Expires: 2;refresher=uac\r\nMin-SE: 1\r\nSupported: timer\r\n",
        Some("application/sdp"),
        &genesys_sdp(1, "sendonly"),
    );
    let ok = establish(&mut c, &mut call, &invite);
    let t0 = Instant::now();
    let se = ok
        .header("session-expires")
        .expect("200 without Session-Expires");
    assert_eq!(
        header_param(se, "refresher").as_deref(),
        Some("uac"),
        "{se}"
    );
    let bye = c.expect_request("BYE", Duration::from_secs(10));
    assert!(
        t0.elapsed() <= Duration::from_secs(5),
        "BYE late: {:?}",
        t0.elapsed()
    );
    assert_eq!(bye.call_id(), call.call_id);
    c.respond(&bye, 200, "OK");
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "session_timeout");
}

#[test]
fn refreshed_session_stays_up() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let timer = "Session-Expires: 2;refresher=uac\r\nMin-SE: 1\r\nSupported: timer\r\n";
    let offer = genesys_sdp(1, "sendonly");
    let invite = call.invite(timer, Some("application/sdp"), &offer);
    establish(&mut c, &mut call, &invite);
    // Refresh well inside the interval for twice its length.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(500));
        let refresh = call.reinvite(&offer, timer);
        c.send(&refresh);
        let ok = c.expect_reply(&refresh, 200, T);
        let ack = call.ack_2xx(&ok);
        c.send(&ack);
    }
    assert!(
        c.wait_request("BYE", Duration::from_millis(100)).is_none(),
        "refreshed session was ended"
    );
    let v = rec.wait_call_state(&call.call_id, "active", T);
    assert!(is_null_or_absent(&v["end_reason"]));
    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

// ---------------------------------------------------------------------------------------
// Requests the recorder refuses

#[test]
fn max_forwards_zero_gets_483() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call
        .genesys_invite()
        .replace("Max-Forwards: 70\r\n", "Max-Forwards: 0\r\n");
    refused(&mut c, &call, &invite, 483);
    assert_no_recording_left(&rec);
}

#[test]
fn unsupported_require_gets_420_with_unsupported() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.invite(
        "Require: foo\r\n",
        Some("application/sdp"),
        &genesys_sdp(1, "sendonly"),
    );
    let resp = refused(&mut c, &call, &invite, 420);
    assert_eq!(resp.header_tokens("unsupported"), vec!["foo".to_string()]);
    assert_no_recording_left(&rec);
}

#[test]
fn text_plain_body_gets_415() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.invite("", Some("text/plain"), "hello recorder\r\n");
    let resp = refused(&mut c, &call, &invite, 415);
    let accept = resp.header("accept").expect("415 without Accept");
    assert!(accept.contains("application/sdp"), "Accept: {accept}");
    assert_no_recording_left(&rec);
}

#[test]
fn tel_request_uri_gets_416() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::new(&c, "tel:+123");
    let invite = call.genesys_invite();
    assert!(invite.starts_with("INVITE tel:+123 SIP/2.0\r\n"));
    refused(&mut c, &call, &invite, 416);
    assert_no_recording_left(&rec);
}

#[test]
fn unknown_method_gets_501() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let call = Call::genesys(&c);
    let req = call.build(
        "FOO",
        &call.request_uri,
        &new_branch(),
        1,
        false,
        "",
        None,
        "",
    );
    refused(&mut c, &call, &req, 501);
}

#[test]
fn register_and_subscribe_get_405_with_allow() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let call = Call::genesys(&c);
    let register = call.build(
        "REGISTER",
        &format!("sip:{}", rec.sip_addr),
        &new_branch(),
        1,
        false,
        "Expires: 3600\r\n",
        None,
        "",
    );
    let subscribe = call.build(
        "SUBSCRIBE",
        &call.request_uri,
        &new_branch(),
        2,
        false,
        "Event: presence\r\nExpires: 600\r\n",
        None,
        "",
    );
    for req in [register, subscribe] {
        let resp = refused(&mut c, &call, &req, 405);
        let allow = resp.header_tokens("allow");
        assert!(allow.iter().any(|a| a == "INVITE"), "Allow: {allow:?}");
        assert!(!allow.iter().any(|a| a == "REGISTER" || a == "SUBSCRIBE"));
    }
}

#[test]
fn offer_without_storable_codec_gets_488_with_warning() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.invite_sdp(&unsupported_codec_sdp(1));
    let resp = refused(&mut c, &call, &invite, 488);
    assert!(
        resp.header("warning").is_some(),
        "488 without Warning:\n{}",
        text(&resp)
    );
    assert_no_recording_left(&rec);
}

#[test]
fn at_max_sessions_invite_and_options_get_503_with_retry_after() {
    let rec = Recorder::start(&["--max-sessions", "1"]);
    let mut c = rec.udp();
    let mut first = Call::genesys(&c);
    let invite = first.genesys_invite();
    establish(&mut c, &mut first, &invite);
    rec.wait_call_state(&first.call_id, "active", T);

    let mut second = Call::genesys(&c);
    let invite = second.genesys_invite();
    let resp = refused(&mut c, &second, &invite, 503);
    let retry: u32 = resp
        .header("retry-after")
        .expect("503 without Retry-After")
        .split(|ch: char| !ch.is_ascii_digit())
        .next()
        .and_then(|v| v.parse().ok())
        .expect("numeric Retry-After");
    assert!(retry > 0);
    assert_eq!(
        options_status(rec.sip_addr).status(),
        Some(503),
        "OPTIONS at capacity"
    );

    hang_up(&mut c, &mut first);
    wait_options_status(rec.sip_addr, 200, T);
    let mut third = Call::genesys(&c);
    let invite = third.genesys_invite();
    establish(&mut c, &mut third, &invite);
    rec.wait_call_state(&third.call_id, "active", T);
    hang_up(&mut c, &mut third);
    rec.wait_call_state(&third.call_id, "ended", T);
    assert!(rec.recordings_of_call(&second.call_id).is_empty());
    assert_eq!(rec.recordings().len(), 2);
}

#[test]
fn sigterm_drains_then_byes_active_call_and_exits_0() {
    let mut rec = Recorder::start(&[]);
    let grace = rec.config.grace_period_secs as f64;
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    rec.wait_call_state(&call.call_id, "active", T);

    let t0 = Instant::now();
    rec.sigterm();
    wait_options_status(rec.sip_addr, 503, Duration::from_secs(3));
    let mut late_client = rec.udp();
    let mut late = Call::genesys(&late_client);
    let invite = late.genesys_invite();
    refused(&mut late_client, &late, &invite, 503);

    let bye = c.expect_request("BYE", secs(grace + 8.0));
    assert!(
        t0.elapsed() >= secs(grace - 0.5),
        "BYE after {:?}, before the {grace}s grace period",
        t0.elapsed()
    );
    assert_eq!(bye.call_id(), call.call_id);
    c.respond(&bye, 200, "OK");
    let status = rec
        .wait_exit(Duration::from_secs(10))
        .expect("recorder still running 10 s after its BYE");
    assert!(status.success(), "exit status {status}");
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "shutdown");
    assert!(rec.recordings_of_call(&late.call_id).is_empty());
}

// ---------------------------------------------------------------------------------------
// TCP framing

#[test]
fn tcp_messages_split_into_tiny_segments() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    let opts = options_request(&c);
    c.send_split(&opts, 1, Duration::from_millis(2));
    c.expect_reply(&opts, 200, T);

    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    c.send_split(&invite, 7, Duration::from_millis(1));
    let ok = c.expect_reply(&invite, 200, T);
    assert_genesys_answer(&rec, &ok, "recvonly");
    let ack = call.ack_2xx(&ok);
    c.send_split(&ack, 5, Duration::from_millis(1));
    rec.wait_call_state(&call.call_id, "active", T);
    let bye = call.bye();
    c.send_split(&bye, 3, Duration::from_millis(1));
    c.expect_reply(&bye, 200, T);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn tcp_several_messages_in_one_segment() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    let o1 = options_request(&c);
    let o2 = options_request(&c);
    c.send(&format!("{o1}{o2}"));
    c.expect_reply(&o1, 200, T);
    c.expect_reply(&o2, 200, T);

    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    c.send(&invite);
    let ok = c.expect_reply(&invite, 200, T);
    let ack = call.ack_2xx(&ok);
    let bye = call.bye();
    c.send(&format!("{ack}{bye}"));
    c.expect_reply(&bye, 200, T);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn tcp_crlfcrlf_keepalive_answered_with_crlf() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    c.send("\r\n\r\n");
    assert!(c.wait_pong(Duration::from_secs(2)), "no CRLF pong");
    assert!(!c.closed, "connection closed after a keep-alive");
    let opts = options_request(&c);
    c.send(&opts);
    c.expect_reply(&opts, 200, T);
}

// ---------------------------------------------------------------------------------------
// Bad input while a call is up: nothing crashes, nothing is recorded, the call goes on.

/// Sets up a Genesys call over UDP, runs `abuse`, then checks that the recorder still
/// answers, that the call can still be paused and hung up, and that nothing else was
/// recorded. `abuse` returns whatever must stay alive (connections) during those checks.
fn with_active_call<K>(abuse: impl FnOnce(&mut Recorder) -> K) {
    let mut rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    establish(&mut c, &mut call, &invite);
    rec.wait_call_state(&call.call_id, "active", T);

    let keep = abuse(&mut rec);

    rec.assert_alive();
    assert_eq!(options_status(rec.sip_addr).status(), Some(200));
    let pause = call.reinvite(&genesys_sdp(2, "inactive"), "");
    c.send(&pause);
    let ok = c.expect_reply(&pause, 200, T);
    let ack = call.ack_2xx(&ok);
    c.send(&ack);
    rec.wait_call_state(&call.call_id, "paused", T);
    hang_up(&mut c, &mut call);
    let v = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
    assert_eq!(rec.recordings().len(), 1, "{:#?}", rec.recordings());
    rec.assert_alive();
    drop(keep);
}

/// Deterministic pseudo-random bytes (xorshift), so a failure replays exactly.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_datagram_burst_is_survived() {
    with_active_call(|rec| {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let crafted: [&[u8]; 12] = [
            b"",
            b"\r\n",
            b"\r\n\r\n",
            b"\0\0\0\0",
            b"INVITE\r\n\r\n",
            b"INVITE sip:x SIP/2.0\r\n\r\n",
            b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nContent-Length: -5\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia SIP/2.0/UDP no-colon\r\n\r\n",
            b"BYE sip:x SIP/2.0\r\nCall-ID: \xff\xfe\r\nCSeq: 99999999999999 BYE\r\n\r\n",
            b"ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP [::1\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 4294967296\r\n\r\n",
        ];
        for d in crafted {
            sock.send_to(d, rec.sip_addr).expect("send");
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..300 {
            let len = 1 + (i * 37) % 1400;
            let mut d = noise(&mut seed, len);
            if i % 3 == 0 {
                // Mostly-SIP noise reaches deeper into the parser.
                let mut sip = b"INVITE sip:record=x@127.0.0.1 SIP/2.0\r\n".to_vec();
                sip.append(&mut d);
                d = sip;
            }
            sock.send_to(&d, rec.sip_addr).expect("send");
        }
    });
}

#[test]
fn truncated_messages_get_400_or_nothing() {
    with_active_call(|rec| {
        let mut c = rec.udp();
        let mut call = Call::genesys(&c);
        let invite = call.genesys_invite();
        let cut = invite.find("Call-ID").expect("Call-ID") + 10;
        c.send(&invite[..cut]);
        // Whole head, body shorter than Content-Length: RFC 3261 §18.3 says discard or 400.
        let mut call2 = Call::genesys(&c);
        let invite2 = call2.genesys_invite();
        c.send(&invite2[..invite2.len() - 40]);
        let opts = options_request(&c);
        c.send(&opts);
        // Read until the OPTIONS answer, then until 300 ms of silence for late answers.
        let mut options_seen = false;
        loop {
            let wait = if options_seen {
                Duration::from_millis(300)
            } else {
                T
            };
            let Some(m) = c.recv(wait) else { break };
            if m.cseq_method() == "OPTIONS" {
                assert_eq!(m.status(), Some(200), "{}", text(&m));
                options_seen = true;
            } else if let Some(s) = m.status() {
                assert!(
                    s == 100 || s == 400,
                    "truncated INVITE answered:\n{}",
                    text(&m)
                );
            }
        }
        assert!(
            options_seen,
            "no answer to OPTIONS after truncated messages"
        );
    });
}

#[test]
fn oversize_messages_over_udp_and_tcp_are_refused() {
    with_active_call(|rec| {
        let ok_codes = [400, 413, 513];
        // UDP cannot carry more than 65507 bytes: this datagram is nearly that, and its
        // Content-Length declares a message over the 64 KiB limit.
        let mut c = rec.udp();
        let mut call = Call::genesys(&c);
        let head_only = call.invite("", Some("application/sdp"), "");
        let head = head_only.replace("Content-Length: 0\r\n", "Content-Length: 70000\r\n");
        let mut dgram = head.into_bytes();
        dgram.resize(65_000, b'a');
        c.send_bytes(&dgram);
        if let Some((_, m)) = c.wait_response(&call.call_id, "INVITE", 200, Duration::from_secs(1))
        {
            assert!(
                ok_codes.contains(&m.status().unwrap_or(0)),
                "oversize UDP message answered:\n{}",
                text(&m)
            );
        }

        // TCP: a complete message of 70 000 + bytes.
        let mut t = rec.tcp();
        let mut call = Call::genesys(&t);
        let mut body = genesys_sdp(1, "sendonly");
        while body.len() < 70_000 {
            body.push_str("a=x-padding:0123456789012345678901234567890123456789\r\n");
        }
        let invite = call.invite_sdp(&body);
        let _ = t.try_send_bytes(invite.as_bytes());
        // Refused (413/513/400), or dropped: the connection closed, or the message
        // discarded without an answer. Never accepted.
        if let Some((_, m)) = t.wait_reply(&invite, 200, Duration::from_secs(2)) {
            assert!(
                ok_codes.contains(&m.status().unwrap_or(0)),
                "oversize TCP message answered:\n{}",
                text(&m)
            );
        }
        // A fresh connection is served as usual.
        let mut fresh = rec.tcp();
        let opts = options_request(&fresh);
        fresh.send(&opts);
        fresh.expect_reply(&opts, 200, T);
    });
}

#[test]
fn half_open_tcp_connections_do_not_block_anything() {
    with_active_call(|rec| {
        let mut held = Vec::new();
        for _ in 0..20 {
            let mut t = rec.tcp();
            let mut call = Call::genesys(&t);
            let invite = call.genesys_invite();
            t.send(&invite[..invite.len() / 2]);
            held.push(t);
        }
        // Another TCP client is served while those wait for the rest of their message.
        let mut fresh = rec.tcp();
        let opts = options_request(&fresh);
        fresh.send(&opts);
        fresh.expect_reply(&opts, 200, T);
        held
    });
}

/// RFC 3261 §17.2.3 / §18.2.2: an INVITE retransmitted on a new TCP connection (the first one
/// broke) gets its 2xx on that connection, and is still one call and one recording.
#[test]
fn invite_retransmitted_on_a_new_tcp_connection_is_answered_there() {
    let rec = Recorder::start(&[]);
    let mut first = rec.tcp();
    let mut call = Call::new(&first, &cms_uri(rec.sip_addr));
    let invite = call.cms_invite();
    first.send(&invite);
    let ok = first.expect_reply(&invite, 200, T);
    let mut second = rec.tcp();
    second.send(&invite);
    let again = second.expect_reply(&invite, 200, T);
    assert_eq!(again.tag_of_to(), ok.tag_of_to(), "the same dialog");
    let ack = call.ack_2xx(&again);
    second.send(&ack);
    let bye = call.bye();
    second.send(&bye);
    second.expect_reply(&bye, 200, T);
    let doc = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(doc["end_reason"], "bye", "{doc}");
    assert_eq!(rec.recordings_of_call(&call.call_id).len(), 1);
}

/// The same branch and sent-by from another request (RFC 4475 reuses them): not a
/// retransmission, each gets its own answer.
#[test]
fn a_reused_branch_in_another_request_gets_its_own_answer() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let options = |call_id: &str| {
        format!(
            "OPTIONS sip:rec@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreused;rport\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:rec@example.com>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            server = rec.sip_addr,
            local = c.local
        )
    };
    let first = options("reused-1");
    let second = options("reused-2");
    c.send(&first);
    c.expect_reply(&first, 200, T);
    c.send(&second);
    let answer = c.expect_reply(&second, 200, T);
    assert_eq!(answer.call_id(), "reused-2");
}
