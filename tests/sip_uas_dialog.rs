//! The recorder as a SIP UAS inside a dialog (SPEC §3): re-INVITEs that pause, resume,
//! refresh, collide or come out of order, and RFC 4028 session timers.

mod common;

use common::uas::*;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

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
    let (_, v) = rec.wait_call_state(&call.call_id, "paused", T);
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
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
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
    let (_, before) = rec.wait_call_state(&call.call_id, "active", T);

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
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn reinvite_while_previous_unacknowledged_gets_491() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = genesys_call_active(&rec, &mut c);

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
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
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
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
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
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
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
    let (_, v) = rec.wait_call_state(&call.call_id, "active", T);
    assert!(is_null_or_absent(&v["end_reason"]));
    hang_up(&mut c, &mut call);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}
