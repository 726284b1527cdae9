//! SIPREC bodies: multipart/mixed splitting and RFC 7865 recording metadata.
//!
//! Input: the first line is the Content-Type header value, the rest the body, so the
//! fuzzer reaches quoted, odd and missing boundaries as well as hostile bodies.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_recorder::sdp::parse_offer;
use sip_recorder::siprec::{
    MAX_METADATA_PARTICIPANTS, MAX_METADATA_STREAMS, MAX_METADATA_UNKNOWN, MAX_PARTS,
    RecordingMetadata,
    content_type_param, is_recording_metadata, parse_metadata, split_multipart,
};

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (
            String::from_utf8_lossy(&data[..at]).into_owned(),
            &data[at + 1..],
        ),
        None => (String::new(), data),
    };
    let content_type = content_type.trim_end_matches('\r');
    let body = Bytes::copy_from_slice(body);

    let _ = content_type_param(content_type, "boundary");
    if let Ok(parts) = split_multipart(content_type, &body) {
        assert!(!parts.is_empty() && parts.len() <= MAX_PARTS);
        for part in &parts {
            assert!(part.body.len() <= body.len(), "a part larger than its body");
            if is_recording_metadata(&part.content_type) {
                metadata(&part.body);
            } else if part.content_type == "application/sdp" {
                let _ = parse_offer(&part.body);
            }
        }
    }
    // Bodies that are metadata on their own (a re-INVITE may carry only the XML).
    metadata(&body);
});

fn metadata(xml: &[u8]) {
    if let Ok(meta) = parse_metadata(xml) {
        check(&meta);
        // An update applied to itself (partial merges, complete replaces) stays in bounds.
        let mut merged = meta.clone();
        merged.apply_update(meta);
        check(&merged);
    }
}

fn check(meta: &RecordingMetadata) {
    assert!(meta.participants.len() <= MAX_METADATA_PARTICIPANTS);
    assert!(meta.streams.len() <= MAX_METADATA_STREAMS);
    assert!(meta.unknown_elements.len() <= MAX_METADATA_UNKNOWN);
    for raw in &meta.unknown_elements {
        assert!(raw.starts_with('<'), "a raw element starts with its tag: {raw}");
    }
    for s in &meta.streams {
        if let Some(label) = &s.label {
            let _ = meta.participant_for_label(label);
        }
    }
}
