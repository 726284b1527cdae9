//! Requests the recorder refuses, each with the status SPEC §3 names, and the drain on
//! SIGTERM.

mod common;

use common::uas::*;
use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

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
    let req = call.request("FOO", &call.request_uri).build();
    refused(&mut c, &call, &req, 501);
}

#[test]
fn register_and_subscribe_get_405_with_allow() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let call = Call::genesys(&c);
    let register = call
        .request("REGISTER", &format!("sip:{}", rec.sip_addr))
        .headers("Expires: 3600\r\n")
        .build();
    let subscribe = call
        .request("SUBSCRIBE", &call.request_uri)
        .cseq(2)
        .headers("Event: presence\r\nExpires: 600\r\n")
        .build();
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
    let mut first = genesys_call_active(&rec, &mut c);

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
    let mut third = genesys_call_active(&rec, &mut c);
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
    let call = genesys_call_active(&rec, &mut c);

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
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "shutdown");
    assert!(rec.recordings_of_call(&late.call_id).is_empty());
}
