//! RFC 7866 §6.2 metadata updates inside the dialog: answered 200, handed to the recording.

use super::*;

const DOC: &str = "<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>partial</datamode></recording>";

fn metadata_events(events: &[RecordingEvent]) -> Vec<(String, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            RecordingEvent::MetadataUpdated {
                recording_id,
                metadata,
            } => Some((recording_id.clone(), metadata.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn metadata_only_update_is_answered_and_applied() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let id = h.establish(&mut call);
    for (n, ctype) in ["application/rs-metadata+xml", "application/rs-metadata"]
        .into_iter()
        .enumerate()
    {
        call.cseq += 1;
        h.input(&call.request(
            "UPDATE",
            &format!("upd{n}"),
            "Content-Disposition: recording-session\r\n",
            Some((ctype, DOC)),
        ));
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        let text = String::from_utf8_lossy(&sent[0]);
        assert!(text.starts_with("SIP/2.0 200"), "{ctype}: {text}");
        assert!(!text.contains("m=audio"), "no SDP in, no SDP out: {text}");
        let events = h.take_events();
        assert_eq!(
            metadata_events(&events),
            vec![(id.clone(), Bytes::from(DOC))]
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, RecordingEvent::MediaChanged { .. })),
            "metadata alone changes no media"
        );
    }
}

#[test]
fn reinvite_with_metadata_and_no_sdp_gets_the_current_sdp_as_offer() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let id = h.establish(&mut call);
    call.cseq += 1;
    let body = format!(
        "--b\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{DOC}\r\n--b--\r\n"
    );
    h.input(&call.request(
        "INVITE",
        "reinv",
        "",
        Some(("multipart/mixed;boundary=b", &body)),
    ));
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let offer = String::from_utf8_lossy(&sent[0]);
    assert!(offer.starts_with("SIP/2.0 200"), "{offer}");
    assert!(
        offer.contains("Content-Type: application/sdp") && offer.contains("m=audio"),
        "our SDP goes as an offer: {offer}"
    );
    assert_eq!(
        metadata_events(&h.take_events()),
        vec![(id, Bytes::from(DOC))]
    );
    // The answer comes in the ACK.
    h.input(&call.request(
        "ACK",
        "ack2",
        "",
        Some(("application/sdp", &sdp(2, "sendonly"))),
    ));
    assert!(h.take_sent().is_empty());
}

#[test]
fn a_refused_request_applies_no_metadata() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    call.cseq += 1;
    let body = format!(
        "--b\r\nContent-Type: application/sdp\r\n\r\nnot sdp\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n\r\n{DOC}\r\n--b--\r\n"
    );
    h.input(&call.request(
        "UPDATE",
        "bad",
        "",
        Some(("multipart/mixed;boundary=b", &body)),
    ));
    assert_eq!(h.codes(), vec![488]);
    assert!(metadata_events(&h.take_events()).is_empty());
}
