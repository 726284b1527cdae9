//! The CDR XML the real recorder emits, checked against every element the CMS CDR guide
//! (seed `000_…`) defines for the records we send: names, nesting and value formats. The
//! table below is the guide's text transcribed (§3 envelope, §4.3 callLegStart, §4.4
//! callLegEnd, §4.5 callLegUpdate, §4.7 recordingStart, §4.8 recordingEnd); anything not in
//! it must be one of the extension elements docs/CDR.md lists.

mod common;

use common::*;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// Value formats the guide uses in its "Type" column.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// "ID": a non-empty identifier.
    Id,
    /// "String": any text, may be blank (displayName).
    Str,
    /// "Number": a non-negative integer.
    Number,
    /// "true|false".
    Bool,
    /// One of a fixed set.
    OneOf(&'static [&'static str]),
    /// `packetLossBursts`/`packetGap` `duration`: seconds with 3 decimals (`9.701`).
    Seconds3,
    /// `density`: percent with 2 decimals (`0.00`).
    Percent2,
    /// Holds only child elements.
    Parent,
}

use Format::*;

/// (path below the record's main element, format). Transcribed from the guide.
type Table = &'static [(&'static str, Format)];

const CALL_LEG_START: Table = &[
    ("displayName", Str),
    ("localAddress", Str),
    ("remoteAddress", Str),
    ("remoteParty", Str),
    ("cdrTag", Str),
    ("guestConnection", Bool),
    ("recording", Bool),
    ("streaming", Bool),
    ("type", OneOf(&["sip", "acano"])),
    (
        "subType",
        OneOf(&["lync", "avaya", "lyncdistribution", "webApp"]),
    ),
    (
        "lyncSubType",
        OneOf(&["audioVideo", "applicationSharing", "instantMessaging"]),
    ),
    ("direction", OneOf(&["incoming", "outgoing"])),
    ("call", Id),
    ("ownerId", Id),
    ("sipCallId", Str),
    ("groupId", Id),
    ("replacesSipCallId", Str),
    ("canMove", Bool),
    ("movedCallLeg", Id),
    ("movedCallLegCallBridge", Id),
    (
        "confirmationStatus",
        OneOf(&["required", "notRequired", "confirmed"]),
    ),
];

const CODECS: &[&str] = &[
    "g711u", "g711a", "g722", "g728", "g729", "g722_1", "g722_1c", "aac", "speexNb", "speexWb",
    "speexUwb", "isacWb", "isacSwb", "opus",
];

/// §5: the reason codes.
const REASONS: &[&str] = &[
    "apiInitiatedTeardown",
    "callDeactivated",
    "callEnded",
    "callMoved",
    "clientInitiatedTeardown",
    "confirmationTimeOut",
    "dnsFailure",
    "encryptionRequired",
    "error",
    "incorrectPasscode",
    "ivrTimeout",
    "ivrUnknownCall",
    "localTeardown",
    "participantLimitReached",
    "remoteBusy",
    "remoteRejected",
    "remoteTeardown",
    "ringingTimeout",
    "tenantParticipantLimitReached",
    "timeout",
    "unknownDestination",
];

const CALL_LEG_END: Table = &[
    ("cdrTag", Str),
    ("reason", OneOf(REASONS)),
    ("remoteTeardown", Bool),
    ("reasonDetails", Str),
    ("encryptedMedia", Bool),
    ("unencryptedMedia", Bool),
    ("durationSeconds", Number),
    ("activatedDuration", Number),
    ("mediaUsagePercentages", Parent),
    ("multistreamVideo", Parent),
    ("alarm", Parent),
    ("rxAudio", Parent),
    ("rxAudio/codec", OneOf(CODECS)),
    ("rxAudio/packetStatistics", Parent),
    ("rxAudio/packetStatistics/packetLossBursts", Parent),
    (
        "rxAudio/packetStatistics/packetLossBursts/duration",
        Seconds3,
    ),
    (
        "rxAudio/packetStatistics/packetLossBursts/density",
        Percent2,
    ),
    ("rxAudio/packetStatistics/packetGap", Parent),
    ("rxAudio/packetStatistics/packetGap/duration", Seconds3),
    ("rxAudio/packetStatistics/packetGap/density", Percent2),
    ("txAudio", Parent),
    ("txAudio/codec", OneOf(CODECS)),
    ("rxVideo", Parent),
    ("txVideo", Parent),
    ("ownerId", Id),
    ("sipCallId", Str),
    (
        "confirmationStatus",
        OneOf(&["required", "notRequired", "confirmed"]),
    ),
];

const CALL_LEG_UPDATE: Table = &[
    ("cdrTag", Str),
    ("state", OneOf(&["connected"])),
    ("deactivated", Bool),
    ("remoteAddress", Str),
    ("call", Id),
    ("ivr", Str),
    ("ownerId", Id),
    ("sipCallId", Str),
    ("groupId", Id),
    ("displayName", Str),
    ("canMove", Bool),
    (
        "confirmationStatus",
        OneOf(&["required", "notRequired", "confirmed"]),
    ),
];

const RECORDING_START: Table = &[
    ("path", Str),
    ("recorderUri", Str),
    ("call", Id),
    ("callLeg", Id),
];

const RECORDING_END: Table = &[];

/// Our extension elements (docs/CDR.md), per record type.
const EXTENSIONS: &[(&str, &[(&str, Format)])] = &[
    (
        "recordingStart",
        &[
            ("calluuid", Id),
            ("dn", Str),
            ("otherDN", Str),
            ("kind", OneOf(&["genesys", "cms", "siprec"])),
            ("files", Parent),
            ("files/file", Str),
            ("groupId", Id),
            ("parties", Parent),
            ("parties/party", Str),
        ],
    ),
    (
        "recordingEnd",
        &[
            ("endReason", Str),
            ("files", Parent),
            ("files/file", Str),
            ("durationSeconds", Number),
            ("objectStorage", Parent),
            ("objectStorage/state", OneOf(&["uploaded", "pending"])),
            ("objectStorage/bucket", Str),
            ("objectStorage/keyPrefix", Str),
            ("objectStorage/objects", Parent),
            ("objectStorage/objects/object", Parent),
            ("objectStorage/objects/object/key", Str),
            ("objectStorage/objects/object/size", Number),
            ("objectStorage/objects/object/sha256", Str),
        ],
    ),
    (
        "callLegStart",
        &[("recorderKind", OneOf(&["genesys", "cms", "siprec"]))],
    ),
    (
        "callLegEnd",
        &[
            ("recorderStreams", Parent),
            ("recorderStreams/stream", Parent),
            ("recorderStreams/stream/codec", Str),
            ("recorderStreams/stream/packetStatistics", Parent),
            (
                "recorderStreams/stream/packetStatistics/packetLossBursts",
                Parent,
            ),
            (
                "recorderStreams/stream/packetStatistics/packetLossBursts/duration",
                Seconds3,
            ),
            (
                "recorderStreams/stream/packetStatistics/packetLossBursts/density",
                Percent2,
            ),
            ("recorderStreams/stream/packetStatistics/packetGap", Parent),
            (
                "recorderStreams/stream/packetStatistics/packetGap/duration",
                Seconds3,
            ),
            (
                "recorderStreams/stream/packetStatistics/packetGap/density",
                Percent2,
            ),
            (
                "recorderStreams/stream/packetStatistics/packetsReceived",
                Number,
            ),
            (
                "recorderStreams/stream/packetStatistics/packetsLost",
                Number,
            ),
            ("recorderStreams/stream/packetStatistics/jitterMs", Str),
        ],
    ),
];

/// Record type → (main element, guide table, elements we promise to send).
fn guide(record_type: &str) -> (&'static str, Table, &'static [&'static str]) {
    match record_type {
        "callLegStart" => (
            "callLeg",
            CALL_LEG_START,
            &[
                "displayName",
                "localAddress",
                "remoteAddress",
                "remoteParty",
                "recording",
                "type",
                "direction",
                "call",
                "sipCallId",
            ],
        ),
        "callLegEnd" => (
            "callLeg",
            CALL_LEG_END,
            &[
                "reason",
                "remoteTeardown",
                "durationSeconds",
                "rxAudio/codec",
                "rxAudio/packetStatistics/packetLossBursts/duration",
                "rxAudio/packetStatistics/packetGap/density",
                "sipCallId",
            ],
        ),
        "callLegUpdate" => ("callLeg", CALL_LEG_UPDATE, &["deactivated", "sipCallId"]),
        "recordingStart" => (
            "recording",
            RECORDING_START,
            &["path", "recorderUri", "call", "callLeg"],
        ),
        "recordingEnd" => ("recording", RECORDING_END, &[]),
        other => panic!("record type {other:?} is not one we document"),
    }
}

/// A parsed element: name, attributes, text, children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

fn node(e: &BytesStart) -> Node {
    Node {
        name: String::from_utf8(e.name().as_ref().to_vec()).expect("utf8 name"),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).expect("utf8"),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("value")
                        .into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    }
}

fn parse(doc: &str) -> Node {
    let mut r = Reader::from_str(doc);
    let mut stack = vec![Node::default()];
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(node(&e)),
            Event::Empty(e) => {
                let n = node(&e);
                stack.last_mut().expect("parent").children.push(n);
            }
            Event::Text(t) => stack
                .last_mut()
                .expect("node")
                .text
                .push_str(&t.xml10_content().expect("text")),
            Event::GeneralRef(g) => {
                let c = g.resolve_char_ref().expect("ref").unwrap_or('&');
                stack.last_mut().expect("node").text.push(c);
            }
            Event::End(_) => {
                let n = stack.pop().expect("open element");
                stack.last_mut().expect("parent").children.push(n);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().expect("root");
    assert_eq!(root.children.len(), 1, "one document element");
    root.children.pop().expect("records")
}

fn attr<'a>(n: &'a Node, k: &str) -> Option<&'a str> {
    n.attrs
        .iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn decimals(s: &str, n: usize) -> bool {
    s.split_once('.').is_some_and(|(i, f)| {
        !i.is_empty()
            && i.bytes().all(|b| b.is_ascii_digit())
            && f.len() == n
            && f.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_value(path: &str, f: Format, n: &Node) {
    let v = n.text.as_str();
    let ok = match f {
        Id => !v.trim().is_empty(),
        Str => true,
        Number => !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
        Bool => v == "true" || v == "false",
        OneOf(set) => set.contains(&v),
        Seconds3 => decimals(v, 3),
        Percent2 => decimals(v, 2),
        Parent => v.trim().is_empty() && !n.children.is_empty(),
    };
    assert!(ok, "{path}: {v:?} is not {f:?}");
    if !matches!(f, Parent) {
        assert!(n.children.is_empty(), "{path} has children");
    }
}

/// Walks every element below `n`, which must each be in `table` (or `ext`).
fn check_tree(
    record_type: &str,
    prefix: &str,
    n: &Node,
    table: Table,
    ext: Table,
    seen: &mut Vec<String>,
) {
    for c in &n.children {
        let path = if prefix.is_empty() {
            c.name.clone()
        } else {
            format!("{prefix}/{}", c.name)
        };
        let f = table
            .iter()
            .chain(ext)
            .find(|(p, _)| *p == path)
            .map(|(_, f)| *f)
            .unwrap_or_else(|| {
                panic!("{record_type}: <{path}> is neither in the guide nor a documented extension")
            });
        check_value(&path, f, c);
        seen.push(path.clone());
        check_tree(record_type, &path, c, table, ext, seen);
    }
}

/// Checks one `<records>` document; returns the record types in it.
fn check_document(doc: &str) -> Vec<String> {
    assert!(doc.starts_with("<?xml version=\"1.0\"?>"), "{doc}");
    let records = parse(doc);
    assert_eq!(records.name, "records");
    assert!(is_guid(attr(&records, "session").expect("session")));
    assert!(is_guid(attr(&records, "callBridge").expect("callBridge")));
    let mut types = Vec::new();
    for rec in &records.children {
        assert_eq!(rec.name, "record");
        let t = attr(rec, "type").expect("type").to_string();
        let time = attr(rec, "time").expect("time");
        assert!(
            time::PrimitiveDateTime::parse(
                time,
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")
            )
            .is_ok(),
            "time {time:?} is not like 2014-02-28T16:03:25Z"
        );
        for k in ["recordIndex", "correlatorIndex"] {
            assert!(attr(rec, k).expect(k).parse::<u64>().is_ok(), "{k}");
        }
        if let Some(m) = attr(rec, "numPreceedingRecordsMissing") {
            assert!(m.parse::<u64>().is_ok_and(|m| m > 0));
        }
        for (k, _) in &rec.attrs {
            assert!(
                [
                    "type",
                    "time",
                    "recordIndex",
                    "correlatorIndex",
                    "numPreceedingRecordsMissing"
                ]
                .contains(&k.as_str()),
                "record attribute {k}"
            );
        }
        let (main, table, promised) = guide(&t);
        assert_eq!(rec.children.len(), 1, "{t}: one main element");
        let m = &rec.children[0];
        assert_eq!(m.name, main, "{t}");
        assert!(
            attr(m, "id").is_some_and(|id| !id.is_empty()),
            "{t}: id attribute"
        );
        let ext = EXTENSIONS
            .iter()
            .find(|(r, _)| *r == t)
            .map_or(&[][..], |(_, e)| *e);
        let mut seen = Vec::new();
        check_tree(&t, "", m, table, ext, &mut seen);
        for p in promised {
            assert!(seen.iter().any(|s| s == p), "{t}: <{p}> missing");
        }
        // The guide's rxAudio appears once per leg.
        assert!(seen.iter().filter(|s| *s == "rxAudio").count() <= 1);
        types.push(t);
    }
    types
}

#[test]
fn every_emitted_cdr_matches_the_guides_elements() {
    let (url, got) = cdr_receiver();
    let rec = Recorder::start(&["--cdr-receiver", &url]);
    let mut c = rec.udp();
    let mut call = genesys_call_active(&rec, &mut c);
    pause(&rec, &mut c, &mut call, 2);
    resume(&rec, &mut c, &mut call, 3);
    hang_up(&mut c, &mut call);
    rec.wait_call_state(&call.call_id, "ended", T);
    // A Cisco Meeting Server call and a SIPREC call: other values, same elements.
    for kind in ["cms", "siprec"] {
        let mut call = Call::new(
            &c,
            &if kind == "cms" {
                cms_uri(rec.sip_addr)
            } else {
                siprec_uri(rec.sip_addr)
            },
        );
        let invite = if kind == "cms" {
            call.cms_invite()
        } else {
            call.siprec_invite()
        };
        establish(&mut c, &mut call, &invite);
        rec.wait_call_state(&call.call_id, "active", T);
        hang_up(&mut c, &mut call);
        rec.wait_call_state(&call.call_id, "ended", T);
    }

    let deadline = Instant::now() + T;
    let types = loop {
        let docs = got.lock().expect("lock").clone();
        let types: Vec<String> = docs.iter().flat_map(|d| check_document(d)).collect();
        if types.len() >= 17 || Instant::now() > deadline {
            break types;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let one_call = ["callLegStart", "recordingStart", "callLegUpdate"];
    let end = ["callLegEnd", "recordingEnd"];
    let mut expected: Vec<&str> = one_call.to_vec();
    expected.extend(["callLegUpdate", "callLegUpdate"]);
    expected.extend(end);
    for _ in 0..2 {
        expected.extend(one_call);
        expected.extend(end);
    }
    assert_eq!(types, expected);
    let all = got.lock().expect("lock").concat();
    for kind in ["genesys", "cms", "siprec"] {
        assert!(
            all.contains(&format!("<recorderKind>{kind}</recorderKind>")),
            "{kind}"
        );
    }
}

#[test]
fn the_checker_refuses_what_the_guide_does_not_define() {
    let base = "<?xml version=\"1.0\"?>\n<records session=\"a865433a-4926-4549-a701-9bb5b93c75e6\" callBridge=\"158ba4f7-70eb-4a35-982c-71d4f1674277\"><record type=\"callLegUpdate\" time=\"2015-07-23T07:32:55Z\" recordIndex=\"3\" correlatorIndex=\"2\"><callLeg id=\"fc9c85ca\">BODY</callLeg></record></records>";
    let ok = base.replace(
        "BODY",
        "<state>connected</state><deactivated>false</deactivated><sipCallId>x</sipCallId>",
    );
    check_document(&ok);
    for bad in [
        "<subType>recorder</subType><deactivated>false</deactivated><sipCallId>x</sipCallId>",
        "<state>active</state><deactivated>false</deactivated><sipCallId>x</sipCallId>",
        "<deactivated>yes</deactivated><sipCallId>x</sipCallId>",
        "<deactivated>false</deactivated>",
    ] {
        let doc = base.replace("BODY", bad);
        assert!(
            std::panic::catch_unwind(|| check_document(&doc)).is_err(),
            "accepted {bad}"
        );
    }
    let millis = ok.replace("07:32:55Z", "07:32:55.123Z");
    assert!(std::panic::catch_unwind(|| check_document(&millis)).is_err());
}

/// The `<objectStorage>` extension of recordingEnd (`[storage]`), as the recorder's own
/// serializer writes it, uploaded and pending, against the documented extension table.
#[test]
fn the_object_storage_extension_matches_its_documented_shape() {
    use sip_recorder::cdr::{CdrEvent, ObjectStorage, RecordingEnd, StoredObject};
    let end = |storage: ObjectStorage| {
        let inner = CdrEvent::RecordingEnd(RecordingEnd {
            recording_id: "5b0e0c4e-1111-4222-8333-944455556666".into(),
            end_reason: "bye".into(),
            files: vec!["stream-0.wav".into()],
            duration_seconds: 3,
            storage: Some(storage),
        })
        .inner_xml();
        format!(
            "<?xml version=\"1.0\"?>\n<records session=\"a865433a-4926-4549-a701-9bb5b93c75e6\" callBridge=\"158ba4f7-70eb-4a35-982c-71d4f1674277\"><record type=\"recordingEnd\" time=\"2015-07-23T07:32:55Z\" recordIndex=\"3\" correlatorIndex=\"2\">{inner}</record></records>"
        )
    };
    let uploaded = end(ObjectStorage {
        uploaded: true,
        bucket: "recordings".into(),
        key_prefix: "2026/12/01/r".into(),
        objects: vec![
            StoredObject {
                key: "2026/12/01/r/stream-0.wav".into(),
                size: 3244,
                sha256: Some("9f".repeat(32)),
            },
            StoredObject {
                key: "2026/12/01/r/recording.json".into(),
                size: 900,
                sha256: None,
            },
        ],
    });
    assert_eq!(check_document(&uploaded), ["recordingEnd"]);
    let pending = end(ObjectStorage {
        uploaded: false,
        bucket: "recordings".into(),
        ..ObjectStorage::default()
    });
    assert_eq!(check_document(&pending), ["recordingEnd"]);
    assert!(!pending.contains("keyPrefix"), "{pending}");
}
