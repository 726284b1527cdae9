//! Checks shared by the SIP UAS tests (`tests/sip_uas*.rs`): the answer's SDP, refusals,
//! and what a refused call must not leave behind.

use super::sdp::{Media, Sdp, sdp_of};
use super::{Call, Msg, Recorder, SipClient};
use serde_json::Value;
use std::time::{Duration, Instant};

pub fn text(m: &Msg) -> String {
    String::from_utf8_lossy(&m.raw).into_owned()
}

/// Audio m= line of an answer: a real, even port from the configured range.
pub fn assert_rtp_port(rec: &Recorder, m: &Media) {
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
pub fn assert_genesys_answer(rec: &Recorder, ok: &Msg, direction: &str) -> Sdp {
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

pub fn assert_no_recording_left(rec: &Recorder) {
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

pub fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T'))
}

pub fn is_null_or_absent(v: &Value) -> bool {
    v.is_null()
}

/// Sends a request that must be refused with `code` and, for INVITE, ACKs the refusal.
pub fn refused(client: &mut SipClient, call: &Call, req: &str, code: u16) -> Msg {
    client.send(req);
    let resp = client.expect_reply(req, code, Duration::from_secs(5));
    if req.starts_with("INVITE ") {
        let ack = call.ack_non2xx(&resp);
        client.send(&ack);
    }
    resp
}
