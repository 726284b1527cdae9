//! SIPREC metadata, vendor parties and their effect on recording.json.

use super::*;
use crate::sdp::{Codec, NegotiatedStream};
use crate::sip::message::Header;
use time::macros::datetime;

fn pcmu() -> Codec {
    Codec {
        name: "PCMU".into(),
        payload_type: 0,
        clock_rate: 8000,
        channels: 1,
    }
}

fn media(labels: &[Option<&str>]) -> MediaSession {
    let streams = labels
        .iter()
        .enumerate()
        .map(|(index, label)| NegotiatedStream {
            index,
            kind: MediaKind::Audio,
            accepted: true,
            local_port: 20000 + 2 * index as u16,
            rtcp_mux: false,
            remote_addr: Some("192.0.2.10".parse().expect("literal address")),
            remote_port: 30000,
            codec: Some(pcmu()),
            codecs: vec![pcmu()],
            telephone_event: None,
            offered_direction: Direction::SendOnly,
            answered_direction: Direction::RecvOnly,
            label: label.map(str::to_string),
            srtp: None,
        })
        .collect();
    MediaSession {
        session_id: 1,
        version: 1,
        remote_origin: ("SRC".into(), "1".into(), "1".into()),
        streams,
        answer_sdp: String::new(),
    }
}

fn request(kind: RecordingKind, from: &str, metadata: Option<&str>) -> RecordingRequest {
    RecordingRequest {
        kind,
        genesys: None,
        uri_params: BTreeMap::new(),
        sip_call_id: "c1".into(),
        from: from.into(),
        from_uri: "sip:src@x".into(),
        to: "<sip:srs@x>".into(),
        request_uri: "sip:srs@x".into(),
        sip_headers: vec![],
        siprec_metadata: metadata.map(|m| bytes::Bytes::from(m.to_string())),
    }
}

const BW: &str = include_str!("../../../tests/data/siprec/broadworks_initial.xml");
const BW_3WAY: &str = include_str!("../../../tests/data/siprec/broadworks_3way.xml");
const T0: OffsetDateTime = datetime!(2026-01-01 10:00:00 UTC);
const T1: OffsetDateTime = datetime!(2026-01-01 10:00:05 UTC);

fn parties(s: &RecordingSession) -> Vec<Option<String>> {
    s.document()
        .streams
        .iter()
        .map(|s| s.party.clone())
        .collect()
}

#[test]
fn metadata_updates_move_parties_and_history_on() {
    let req = request(RecordingKind::Siprec, "<sip:src@x>;tag=1", Some(BW));
    let mut s = RecordingSession::new(
        "id",
        "leg".into(),
        &req,
        &media(&[Some("1"), Some("2")]),
        T0,
    );
    assert_eq!(
        parties(&s),
        vec![
            Some("sip:agent1@as.example.net".into()),
            Some("sip:+12025550143@as.example.net;user=phone".into())
        ]
    );
    let bw = s.document().broadworks.clone().expect("kept");
    assert_eq!(bw.ext_tracking_id.as_deref(), Some("152463:1"));

    // The supervisor joins (three-way call): complete document, saved as metadata-1.xml.
    assert_eq!(s.next_metadata_file().as_deref(), Some("metadata-1.xml"));
    assert_eq!(
        s.apply_metadata_update(BW_3WAY.as_bytes(), s.next_metadata_file(), T1),
        MetadataOutcome::Applied
    );
    assert_eq!(
        parties(&s)[1].as_deref(),
        Some("sip:+12025550143@as.example.net;user=phone, sip:supervisor@as.example.net")
    );
    let doc = s.document();
    let update = &doc.metadata_updates[0];
    assert_eq!(update.file, "metadata-1.xml");
    assert_eq!(
        update.joined,
        vec!["urn:uuid:3d1b6a0e-5b7e-4c51-9a40-1f2f8f0c0012"]
    );
    assert!(update.left.is_empty());
    let people = doc.participants.as_ref().expect("siprec participants");
    assert_eq!(people.len(), 3);
    assert_eq!(people[2].joined_at, "2026-01-01T10:00:05Z");

    // An unreadable update is listed and counted, and changes nothing.
    assert_eq!(
        s.apply_metadata_update(b"<recording_metadata><oops", s.next_metadata_file(), T1),
        MetadataOutcome::Unreadable
    );
    let doc = s.document();
    assert_eq!(doc.metadata_updates[1].file, "metadata-2.xml");
    assert!(!doc.metadata_updates[1].applied);
    assert!(doc.metadata_updates[1].error.is_some());
    assert_eq!(doc.participants.as_ref().map(Vec::len), Some(3));

    // Back to two parties: the supervisor leaves; at the end everyone has left.
    assert_eq!(
        s.apply_metadata_update(BW.as_bytes(), s.next_metadata_file(), T1),
        MetadataOutcome::Applied
    );
    assert_eq!(s.document().metadata_updates[2].left.len(), 1);
    s.end(EndReason::Bye, datetime!(2026-01-01 10:01:00 UTC));
    let json = serde_json::to_value(s.document()).expect("serializes");
    assert_eq!(json["participants"][2]["left_at"], "2026-01-01T10:00:05Z");
    assert_eq!(json["participants"][0]["left_at"], "2026-01-01T10:01:00Z");
    assert_eq!(json["metadata_updates"][0]["data_mode"], "complete");
    assert_eq!(json["broadworks"]["call_id"], "callhalf-177056759:5");
}

#[test]
fn unreadable_initial_metadata_is_recorded_not_fatal() {
    let req = request(RecordingKind::Siprec, "<sip:src@x>", Some("<html/>"));
    let s = RecordingSession::new("id", "leg".into(), &req, &media(&[Some("1")]), T0);
    assert!(s.document().metadata_error.is_some());
    assert_eq!(s.document().metadata_file.as_deref(), Some(METADATA_FILE));
    assert_eq!(
        parties(&s),
        vec![Some("1".into())],
        "label stands in for the party"
    );
}

#[test]
fn cisco_parties_from_headers_and_bib_from() {
    let mut req = request(RecordingKind::Cms, "<sip:cube@x>;tag=1", None);
    req.sip_headers = vec![
        Header {
            name: "X-Cisco-Recording-Participant".into(),
            value: "sip:708090@10.42.30.5;media-index=\"1\"".into(),
        },
        Header {
            name: "X-Cisco-Recording-Participant".into(),
            value: "sip:10000@10.42.30.32;media-index=\"0\"".into(),
        },
    ];
    let s = RecordingSession::new("id", "leg".into(), &req, &media(&[None, None]), T0);
    assert_eq!(
        parties(&s),
        vec![
            Some("sip:10000@10.42.30.32".into()),
            Some("sip:708090@10.42.30.5".into())
        ]
    );
    let far = request(
        RecordingKind::Cms,
        "<sip:2000@ucm1;x-farend;x-refci=ci2;x-farendrefci=ci1;x-farendaddr=1000>;tag=2",
        None,
    );
    let s = RecordingSession::new("id", "leg".into(), &far, &media(&[None]), T0);
    assert_eq!(parties(&s), vec![Some("1000".into())]);
    let json = serde_json::to_value(s.document()).expect("serializes");
    assert_eq!(json["cisco_bib_leg"], "far_end");
}

#[test]
fn updates_beyond_the_bound_are_applied_but_not_listed() {
    let req = request(RecordingKind::Siprec, "<sip:src@x>", Some(BW));
    let mut s = RecordingSession::new(
        "id",
        "leg".into(),
        &req,
        &media(&[Some("1"), Some("2")]),
        T0,
    );
    for _ in 0..MAX_METADATA_UPDATES {
        let file = s.next_metadata_file();
        assert!(file.is_some());
        s.apply_metadata_update(BW.as_bytes(), file, T1);
    }
    assert_eq!(s.next_metadata_file(), None);
    let outcome = s.apply_metadata_update(BW_3WAY.as_bytes(), None, T1);
    assert_eq!(outcome, MetadataOutcome::Applied);
    assert_eq!(s.document().metadata_updates.len(), MAX_METADATA_UPDATES);
    assert_eq!(s.document().metadata_updates_unlisted, 1);
    assert!(
        s.document().streams[1]
            .party
            .as_deref()
            .unwrap_or("")
            .contains("supervisor")
    );
    s.end(EndReason::Bye, T1);
    assert_eq!(
        s.apply_metadata_update(BW.as_bytes(), None, T1),
        MetadataOutcome::Ignored,
        "nothing changes after the end"
    );
}
