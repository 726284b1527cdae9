//! Every random value the UAS hands out (recording, call-leg and group ids, tags, SRTP keys) comes
//! from its one seeded generator: the same seed replays the same call byte for byte.

use super::RecordingEvent;
use super::test_harness::{Call, Harness, config};
use crate::sdp::PortPool;

const SRTP_OFFER: &str = "v=0\r\no=GMS 1000 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
     m=audio 30000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
     a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendonly\r\n";

/// One SRTP INVITE answered: (recording id, call-leg id, new group id, the 200 OK's bytes).
fn answer_with_seed(seed: [u8; 32]) -> (String, String, String, String) {
    let mut h = Harness::seeded(config(), PortPool::new(20000, 20099), seed);
    let call = Call::new(1);
    h.input(&call.request("INVITE", "inv1", "", Some(("application/sdp", SRTP_OFFER))));
    assert_eq!(h.codes(), vec![100]);
    let (recording_id, call_leg_id, group_id) = match h.take_events().as_slice() {
        [
            RecordingEvent::Prepare {
                recording_id,
                call_leg_id,
                new_group_id,
                ..
            },
        ] => (
            recording_id.clone(),
            call_leg_id.clone(),
            new_group_id.clone(),
        ),
        other => panic!("expected Prepare, got {other:?}"),
    };
    h.uas.recording_prepared(h.now, &recording_id, Ok(()));
    h.collect();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1, "one 200 OK");
    let ok = String::from_utf8(sent[0].to_vec()).expect("UTF-8 response");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    (recording_id, call_leg_id, group_id, ok)
}

fn our_key(ok: &str) -> &str {
    ok.lines()
        .find(|l| l.starts_with("a=crypto:"))
        .unwrap_or_else(|| panic!("no a=crypto in the answer: {ok}"))
}

#[test]
fn same_seed_same_ids_tags_and_srtp_key() {
    let first = answer_with_seed([3; 32]);
    let again = answer_with_seed([3; 32]);
    assert_eq!(first, again, "same seed, same answer byte for byte");
    assert_ne!(
        first.0, first.1,
        "call-leg id is drawn apart from the recording id"
    );
    let other = answer_with_seed([4; 32]);
    assert_ne!(
        our_key(&first.3),
        our_key(&other.3),
        "the key follows the seed"
    );
    assert_ne!(first.1, other.1, "the call-leg id follows the seed");
    assert_ne!(first.2, other.2, "the group id follows the seed");
    assert!(
        first.2 != first.0 && first.2 != first.1,
        "the group id is drawn apart from the recording and call-leg ids"
    );
    assert!(
        uuid::Uuid::parse_str(&first.2).is_ok(),
        "a UUID: {}",
        first.2
    );
    assert_ne!(
        our_key(&first.3),
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "our key is ours, not the offer's"
    );
}
