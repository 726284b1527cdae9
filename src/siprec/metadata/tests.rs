use super::*;
use crate::siprec::metadata::parse::parse_metadata;

/// Shaped after RFC 7865 §A.1: one group, one session, two participants, two streams.
const RFC_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <group group_id="7+OTCyoxTmqmqyA/1weDAg==">
<associate-time>2010-12-16T23:41:07Z</associate-time>
  </group>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
<sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
<group-ref>7+OTCyoxTmqmqyA/1weDAg==</group-ref>
<!-- comments are ignored -->
  </session>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
<nameID aor="sip:alice@example.com">
  <name xml:lang="en">Alice</name>
</nameID>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
<nameID aor="sip:bob@example.net">
  <name xml:lang="it">Bob</name>
</nameID>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
<label>1</label>
  </stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
<label>2</label>
  </stream>
  <sessionrecordingassoc session_id="hVpd7YQgRW2nD22h7q60JQ==">
<associate-time>2010-12-16T23:41:07Z</associate-time>
  </sessionrecordingassoc>
  <participantsessionassoc participant_id="srfBElmCRp2QB23b7Mpk0w==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
<associate-time>2010-12-16T23:41:07Z</associate-time>
  </participantsessionassoc>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
<send>UAAMm5GRQKSCMVvLyl4rFw==</send>
<recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
<send>i1Pz3to5hGk8fuXl+PbwCw==</send>
<recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
</recording>
"#;

/// Draft-era namespace and attribute spellings, as older SBCs send them.
const LEGACY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:siprec" vendor:x="1" xmlns:vendor="urn:example:vendor">
  <dataMode>complete</dataMode>
  <session id="0000-1111-2222">
<start-time>2014-01-01T00:00:00Z</start-time>
  </session>
  <participant id="p-caller" session="0000-1111-2222">
<aor>sip:+15551230001@cube.example.com</aor>
<name>Caller &amp; Co</name>
<send>s-1</send>
<recv>s-2</recv>
<vendor:extension>ignored</vendor:extension>
  </participant>
  <participant id="p-callee" session="0000-1111-2222">
<aor>sip:+15551230002@cube.example.com</aor>
<send>s-2</send>
<recv>s-1</recv>
  </participant>
  <stream id="s-1" session="0000-1111-2222"><label>10</label></stream>
  <stream id="s-2" session="0000-1111-2222"><label>11</label><mode>separate</mode></stream>
</recording>"#;

fn ok(xml: &str) -> RecordingMetadata {
    match parse_metadata(xml.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}\n{xml}"),
    }
}

#[test]
fn rfc7865_example() {
    let m = ok(RFC_EXAMPLE);
    assert_eq!(m.session_id.as_deref(), Some("hVpd7YQgRW2nD22h7q60JQ=="));
    assert_eq!(m.group_id.as_deref(), Some("7+OTCyoxTmqmqyA/1weDAg=="));
    assert_eq!(
        m.participants,
        vec![
            Participant {
                participant_id: "srfBElmCRp2QB23b7Mpk0w==".into(),
                aor: Some("sip:alice@example.com".into()),
                name: Some("Alice".into()),
                send: vec!["UAAMm5GRQKSCMVvLyl4rFw==".into()],
                recv: vec!["i1Pz3to5hGk8fuXl+PbwCw==".into()],
                associate_time: Some("2010-12-16T23:41:07Z".into()),
                streams_stated: true,
                ..Participant::default()
            },
            Participant {
                participant_id: "zSfPoSvdSDCmU3A3TRDxAw==".into(),
                aor: Some("sip:bob@example.net".into()),
                name: Some("Bob".into()),
                send: vec!["i1Pz3to5hGk8fuXl+PbwCw==".into()],
                recv: vec!["UAAMm5GRQKSCMVvLyl4rFw==".into()],
                streams_stated: true,
                ..Participant::default()
            },
        ]
    );
    assert_eq!(
        m.streams,
        vec![
            MetadataStream {
                stream_id: "UAAMm5GRQKSCMVvLyl4rFw==".into(),
                session_id: Some("hVpd7YQgRW2nD22h7q60JQ==".into()),
                label: Some("1".into()),
            },
            MetadataStream {
                stream_id: "i1Pz3to5hGk8fuXl+PbwCw==".into(),
                session_id: Some("hVpd7YQgRW2nD22h7q60JQ==".into()),
                label: Some("2".into()),
            },
        ]
    );
    // recording.json carries this as-is.
    let json = serde_json::to_value(&m).expect("plain data serializes");
    assert_eq!(json["participants"][0]["aor"], "sip:alice@example.com");
    assert_eq!(json["streams"][1]["label"], "2");
}

#[test]
fn participant_for_label() {
    let m = ok(RFC_EXAMPLE);
    let who = |l: &str| m.participant_for_label(l).and_then(|p| p.name.as_deref());
    assert_eq!(who("1"), Some("Alice"));
    assert_eq!(who("2"), Some("Bob"));
    assert_eq!(who(" 2 "), Some("Bob"));
    assert_eq!(who("3"), None);
    assert_eq!(who(""), None);

    // A stream nobody sends has no participant.
    let m = ok(r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1">
        <participant participant_id="a"/><stream stream_id="s"><label>7</label></stream>
        </recording>"#);
    assert!(m.participant_for_label("7").is_none());
}

#[test]
fn legacy_siprec_namespace() {
    let m = ok(LEGACY);
    assert_eq!(m.session_id.as_deref(), Some("0000-1111-2222"));
    assert_eq!(m.group_id, None);
    assert_eq!(m.participants.len(), 2);
    let caller = &m.participants[0];
    assert_eq!(caller.participant_id, "p-caller");
    assert_eq!(
        caller.aor.as_deref(),
        Some("sip:+15551230001@cube.example.com")
    );
    assert_eq!(caller.name.as_deref(), Some("Caller & Co"));
    assert_eq!(caller.send, vec!["s-1"]);
    assert_eq!(caller.recv, vec!["s-2"]);
    assert_eq!(m.participants[1].name, None);
    assert_eq!(m.streams[0].stream_id, "s-1");
    assert_eq!(m.streams[0].session_id.as_deref(), Some("0000-1111-2222"));
    assert_eq!(m.streams[1].label.as_deref(), Some("11"));
    assert_eq!(
        m.participant_for_label("11")
            .map(|p| p.participant_id.as_str()),
        Some("p-callee")
    );
}

#[test]
fn prefixed_elements() {
    let m = ok(r#"<?xml version="1.0"?>
<rs:recording xmlns:rs="urn:ietf:params:xml:ns:recording:1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <rs:datamode>complete</rs:datamode>
  <rs:group group_id="g1"/>
  <rs:session session_id="s1"/>
  <rs:participant participant_id="p1" xsi:type="x">
<rs:nameID aor="sip:carol@example.org"><rs:name xml:lang="en">Carol</rs:name></rs:nameID>
  </rs:participant>
  <rs:stream stream_id="st1" session_id="s1"><rs:label>1</rs:label></rs:stream>
  <rs:participantstreamassoc participant_id="p1"><rs:send>st1</rs:send></rs:participantstreamassoc>
</rs:recording>"#);
    assert_eq!(m.group_id.as_deref(), Some("g1"));
    assert_eq!(m.session_id.as_deref(), Some("s1"));
    assert_eq!(
        m.participants[0].aor.as_deref(),
        Some("sip:carol@example.org")
    );
    assert_eq!(
        m.participant_for_label("1").and_then(|p| p.name.as_deref()),
        Some("Carol")
    );
}

#[test]
fn association_before_participant_and_group_ref_fallback() {
    let m = ok(r#"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <session session_id="s"><group-ref> g-ref </group-ref></session>
  <participantstreamassoc participant_id="p"><send>a</send><send>a</send><send>b</send></participantstreamassoc>
  <participant participant_id="p"><nameID aor="sip:p@example.com"/></participant>
  <participant participant_id="p"><nameID><name>Late Name</name></nameID></participant>
  <participant><nameID aor="sip:noid@example.com"/></participant>
  <stream stream_id="a"/>
</recording>"#);
    assert_eq!(m.group_id.as_deref(), Some("g-ref"));
    assert_eq!(
        m.participants.len(),
        1,
        "duplicates merge, id-less ones are skipped"
    );
    let p = &m.participants[0];
    assert_eq!(p.send, vec!["a", "b"]);
    assert_eq!(p.aor.as_deref(), Some("sip:p@example.com"));
    assert_eq!(p.name.as_deref(), Some("Late Name"));
    assert_eq!(m.streams[0].label, None);
}

#[test]
fn escaped_values_are_unescaped_and_trimmed() {
    let m = ok(r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id=" a&amp;b ">
<nameID aor="sip:x@example.com;tag=&quot;q&quot;">
  <name>
    Smith &amp; Sons &lt;Sales&gt; &#x41;&#66; <![CDATA[<raw>]]>
  </name>
</nameID>
  </participant>
  <stream stream_id="s&lt;1"><label> 3 </label></stream>
</recording>"#);
    let p = &m.participants[0];
    assert_eq!(p.participant_id, "a&b");
    assert_eq!(p.aor.as_deref(), Some("sip:x@example.com;tag=\"q\""));
    assert_eq!(p.name.as_deref(), Some("Smith & Sons <Sales> AB <raw>"));
    assert_eq!(m.streams[0].stream_id, "s<1");
    assert_eq!(m.streams[0].label.as_deref(), Some("3"));
}

#[test]
fn unknown_entities_are_errors() {
    let text = r#"<recording><participant participant_id="a"><name>&bogus;</name></participant></recording>"#;
    assert_eq!(
        parse_metadata(text.as_bytes()),
        Err(MetadataError::UnknownEntity("bogus".into()))
    );
    // In an ignored element too, and in attributes.
    let ignored = r#"<recording><datamode>&xxe;</datamode></recording>"#;
    assert!(parse_metadata(ignored.as_bytes()).is_err());
    let attr = r#"<recording><session session_id="&xxe;"/></recording>"#;
    assert!(parse_metadata(attr.as_bytes()).is_err());
    let dangling = r#"<recording><session session_id="a&b"/></recording>"#;
    assert!(parse_metadata(dangling.as_bytes()).is_err());
}

#[test]
fn doctype_and_entity_bombs_are_refused() {
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE recording [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<recording><participant participant_id="a"><name>&xxe;</name></participant></recording>"#;
    assert_eq!(parse_metadata(xxe.as_bytes()), Err(MetadataError::Doctype));
    let laughs = r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>
<recording>&b;</recording>"#;
    assert_eq!(
        parse_metadata(laughs.as_bytes()),
        Err(MetadataError::Doctype)
    );
}

#[test]
fn garbage_and_truncation_are_errors() {
    let bad: &[&[u8]] = &[
        b"",
        b"   ",
        b"not xml at all",
        b"<recording",
        b"<recording>",
        b"<recording><participant participant_id='a'>",
        b"<recording></participant></recording>",
        b"<recording></recording><recording></recording>",
        b"<recording></recording>trailing",
        b"<recording><session session_id='a' session_id='b'/></recording>",
        b"<recording><session session_id=a/></recording>",
        b"<?xml version='1.0'?>",
        b"\xff\xfe<\x00r\x00",
        b"<recording><name>\xff\xfe</name></recording>",
        b"<!-- only a comment -->",
    ];
    for input in bad {
        assert!(
            parse_metadata(input).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // Every proper prefix of the example is truncated, so none may parse.
    let full = RFC_EXAMPLE.trim_end().as_bytes();
    for cut in 0..full.len() {
        assert!(
            parse_metadata(&full[..cut]).is_err(),
            "prefix of {cut} bytes parsed"
        );
    }
    assert_eq!(
        parse_metadata(b"<html><body/></html>"),
        Err(MetadataError::NotRecording)
    );
}

#[test]
fn tolerates_unknown_elements_and_empty_documents() {
    let m = ok(
        r#"<recording xmlns="urn:example:wrong"><x:foo xmlns:x="u"><participant participant_id="hidden"/></x:foo><extra a="1">t</extra></recording>"#,
    );
    assert!(
        m.participants.is_empty(),
        "participants only count at top level"
    );
    // A UTF-8 byte order mark is allowed.
    let bom = ok("\u{feff}<?xml version='1.0'?><recording><session session_id='b'/></recording>");
    assert_eq!(bom.session_id.as_deref(), Some("b"));
    assert_eq!(
        ok("<recording/>"),
        RecordingMetadata {
            session_id: None,
            group_id: None,
            participants: vec![],
            streams: vec![],
            ..RecordingMetadata::default()
        }
    );
}

fn many(tag: &str, id_attr: &str, n: usize) -> String {
    let mut s = String::from("<recording xmlns='urn:ietf:params:xml:ns:recording:1'>");
    for i in 0..n {
        s.push_str(&format!("<{tag} {id_attr}=\"id{i}\"/>"));
    }
    s.push_str("</recording>");
    s
}

#[test]
fn limits() {
    assert_eq!(
        ok(&many(
            "participant",
            "participant_id",
            MAX_METADATA_PARTICIPANTS
        ))
        .participants
        .len(),
        MAX_METADATA_PARTICIPANTS
    );
    assert!(matches!(
        parse_metadata(
            many(
                "participant",
                "participant_id",
                MAX_METADATA_PARTICIPANTS + 1
            )
            .as_bytes()
        ),
        Err(MetadataError::TooMany {
            what: "participants",
            ..
        })
    ));
    assert_eq!(
        ok(&many("stream", "stream_id", MAX_METADATA_STREAMS))
            .streams
            .len(),
        MAX_METADATA_STREAMS
    );
    assert!(matches!(
        parse_metadata(many("stream", "stream_id", MAX_METADATA_STREAMS + 1).as_bytes()),
        Err(MetadataError::TooMany {
            what: "streams",
            ..
        })
    ));

    let mut sends = String::from("<recording><participantstreamassoc participant_id='p'>");
    for i in 0..=MAX_METADATA_STREAMS {
        sends.push_str(&format!("<send>s{i}</send>"));
    }
    sends.push_str("</participantstreamassoc></recording>");
    assert!(matches!(
        parse_metadata(sends.as_bytes()),
        Err(MetadataError::TooMany { .. })
    ));

    let nested = |depth: usize| {
        let mut s = String::from("<recording>");
        s.push_str(&"<x>".repeat(depth - 1));
        s.push_str(&"</x>".repeat(depth - 1));
        s.push_str("</recording>");
        s
    };
    assert!(parse_metadata(nested(MAX_METADATA_DEPTH).as_bytes()).is_ok());
    assert_eq!(
        parse_metadata(nested(MAX_METADATA_DEPTH + 1).as_bytes()),
        Err(MetadataError::TooDeep)
    );
    // Deep nesting of unclosed tags stops at the bound, not at the end of the input.
    assert_eq!(
        parse_metadata("<recording>".repeat(10_000).as_bytes()),
        Err(MetadataError::TooDeep)
    );
    assert_eq!(
        parse_metadata(format!("<recording>{}", "<x>".repeat(10_000)).as_bytes()),
        Err(MetadataError::TooDeep)
    );

    let mut big = String::from("<recording><!--");
    big.push_str(&"x".repeat(MAX_METADATA_BYTES));
    big.push_str("--></recording>");
    assert_eq!(
        parse_metadata(big.as_bytes()),
        Err(MetadataError::TooLarge(big.len()))
    );
    let mut fits = String::from("<recording><!--");
    fits.push_str(&"x".repeat(MAX_METADATA_BYTES - fits.len() - "--></recording>".len()));
    fits.push_str("--></recording>");
    assert_eq!(fits.len(), MAX_METADATA_BYTES);
    assert!(parse_metadata(fits.as_bytes()).is_ok());
}

/// xorshift64*: deterministic, so a failure reproduces from the iteration number.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        // n is at most a few KiB, so the cast loses nothing that matters here.
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutations_never_panic() {
    const TOKENS: &[&[u8]] = &[
        b"<",
        b">",
        b"/",
        b"&",
        b";",
        b"\"",
        b"'",
        b"=",
        b"&amp;",
        b"&#x0;",
        b"&#xFFFFFFFF;",
        b"<!DOCTYPE",
        b"<![CDATA[",
        b"]]>",
        b"<!--",
        b"-->",
        b"<?",
        b"?>",
        b"\xff",
        b"\0",
        b"<participant participant_id='z'>",
        b"<send>",
        b"</send>",
        b"<label>",
        b":",
        b"xmlns:a='b'",
    ];
    let seeds = [
        RFC_EXAMPLE.as_bytes(),
        LEGACY.as_bytes(),
        BROADWORKS.as_bytes(),
        ORACLE.as_bytes(),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for round in 0..4000 {
        let mut doc = seeds[round % seeds.len()].to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(doc.len());
            match rng.below(6) {
                0 => doc[at] = rng.next() as u8, // `at` < len: below() bounds it
                1 => {
                    let end = (at + rng.below(64)).min(doc.len());
                    doc.drain(at..end);
                }
                2 => {
                    let tok = TOKENS[rng.below(TOKENS.len())];
                    doc.splice(at..at, tok.iter().copied());
                }
                3 => doc.truncate(at),
                4 => {
                    let end = (at + rng.below(200)).min(doc.len());
                    let copy = doc[at..end].to_vec();
                    let to = rng.below(doc.len());
                    doc.splice(to..to, copy);
                }
                _ => {
                    if let Some(b) = doc.get_mut(at) {
                        *b ^= 1 << rng.below(8);
                    }
                }
            }
            if doc.is_empty() {
                break;
            }
        }
        if let Ok(m) = parse_metadata(&doc) {
            parsed += 1;
            assert!(m.participants.len() <= MAX_METADATA_PARTICIPANTS);
            assert!(m.streams.len() <= MAX_METADATA_STREAMS);
            assert!(m.unknown_elements.iter().all(|r| r.starts_with('<')));
            let _ = m.participant_for_label("1");
            let mut merged = m.clone();
            merged.apply_update(m);
        }
    }
    // The loop should explore both sides: many mutants stay valid, many break.
    assert!(parsed > 100 && parsed < 3900, "parsed {parsed} of 4000");
}

const BROADWORKS: &str = include_str!("../../../tests/data/siprec/broadworks_initial.xml");
const BROADWORKS_3WAY: &str = include_str!("../../../tests/data/siprec/broadworks_3way.xml");
const ORACLE: &str = include_str!("../../../tests/data/siprec/oracle_sbc.xml");
const AVAYA_PARTIAL: &str = include_str!("../../../tests/data/siprec/avaya_sbce_partial_join.xml");

/// Avaya SBCE's initial document for the call `AVAYA_PARTIAL` updates.
const AVAYA_INITIAL: &str = include_str!("../../../tests/data/siprec/avaya_sbce_initial.xml");

fn identities(m: &RecordingMetadata, label: &str) -> Vec<String> {
    m.senders_for_label(label)
        .iter()
        .map(|p| p.identity().to_string())
        .collect()
}

#[test]
fn broadworks_recording_metadata() {
    let m = ok(BROADWORKS);
    assert_eq!(m.data_mode, Some(DataMode::Complete));
    assert_eq!(
        m.session_id.as_deref(),
        Some("urn:uuid:3d1b6a0e-5b7e-4c51-9a40-1f2f8f0c0003")
    );
    assert_eq!(
        m.group_id.as_deref(),
        Some("urn:uuid:3d1b6a0e-5b7e-4c51-9a40-1f2f8f0c0002")
    );
    assert_eq!(m.participants.len(), 2);
    assert_eq!(
        m.participants[0].send,
        vec!["urn:uuid:3d1b6a0e-5b7e-4c51-9a40-1f2f8f0c0020"],
        "<send><id>…</id></send>"
    );
    assert_eq!(identities(&m, "1"), vec!["sip:agent1@as.example.net"]);
    assert_eq!(
        identities(&m, "2"),
        vec!["sip:+12025550143@as.example.net;user=phone"]
    );
    let bw = m.broadworks.expect("extension parsed");
    assert_eq!(bw.ext_tracking_id.as_deref(), Some("152463:1"));
    assert_eq!(bw.user_id.as_deref(), Some("agent1@as.example.net"));
    assert_eq!(bw.call_id.as_deref(), Some("callhalf-177056759:5"));
    assert_eq!(bw.call_type.as_deref(), Some("origCall"));
    assert_eq!(bw.service_provider_id.as_deref(), Some("Interop"));
    assert_eq!(bw.recording_type.as_deref(), Some("on"));
    assert_eq!(
        bw.calling_party_number.as_deref(),
        Some("sip:agent1@as.example.net")
    );
    assert_eq!(
        bw.called_party_number.as_deref(),
        Some("sip:+12025550143@as.example.net;user=phone")
    );
    assert!(m.unknown_elements.is_empty(), "{:?}", m.unknown_elements);
}

#[test]
fn broadworks_three_way_call_sends_one_stream_from_two_parties() {
    let m = ok(BROADWORKS_3WAY);
    assert_eq!(m.participants.len(), 3);
    assert_eq!(
        identities(&m, "2"),
        vec![
            "sip:+12025550143@as.example.net;user=phone",
            "sip:supervisor@as.example.net"
        ]
    );
    // termCall and text-only callType spellings.
    let term = BROADWORKS.replace("origCall>", "termCall>");
    assert_eq!(
        ok(&term).broadworks.and_then(|b| b.call_type).as_deref(),
        Some("termCall")
    );
    let text = r#"<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec"><extensiondata><broadWorksRecordingMetadata><callType>Network</callType><callingPartyNumber>1001</callingPartyNumber></broadWorksRecordingMetadata></extensiondata></recording_metadata>"#;
    let bw = ok(text).broadworks.expect("parsed");
    assert_eq!(bw.call_type.as_deref(), Some("Network"));
    assert_eq!(bw.calling_party_number.as_deref(), Some("1001"));
}

#[test]
fn oracle_sbc_attribute_forms_and_vendor_extensions_kept_raw() {
    let m = ok(ORACLE);
    assert_eq!(m.session_id.as_deref(), Some("sPvHw3NwR0uQaMK4Tf9Vgw=="));
    assert_eq!(
        identities(&m, "33554433"),
        vec!["sip:+15551230100@sbc.example.com"]
    );
    assert_eq!(
        identities(&m, "33554434"),
        vec!["sip:+15551230200@sbc.example.com"]
    );
    let caller = &m.participants[0];
    assert_eq!(caller.name.as_deref(), Some("Caller One"));
    assert_eq!(
        caller.associate_time.as_deref(),
        Some("2026-02-11T15:25:48")
    );
    assert_eq!(
        m.unknown_elements,
        vec![
            "<apkt:callingParty>true</apkt:callingParty>",
            "<apkt:ucid>00FA080018803B69810C1A;encoding=hex</apkt:ucid>",
            "<apkt:callerOrig>true</apkt:callerOrig>"
        ]
    );
}

#[test]
fn unknown_top_level_and_foreign_elements_are_kept_raw() {
    let m = ok(
        r#"<rs:recording xmlns:rs="urn:ietf:params:xml:ns:recording:1" xmlns:v="urn:vendor">
<rs:participant participant_id="p"><v:tag a="1">x<v:in/></v:tag><rs:unknown>skipped</rs:unknown></rs:participant>
<v:top/><rs:future-element>y</rs:future-element></rs:recording>"#,
    );
    assert_eq!(
        m.unknown_elements,
        vec![
            r#"<v:tag a="1">x<v:in/></v:tag>"#,
            "<v:top/>",
            "<rs:future-element>y</rs:future-element>"
        ]
    );
    // After a byte order mark the raw copy still starts at the element (found by fuzzing).
    let bom = ok("\u{feff}<recording>\n\t<v:x xmlns:v='u'>1</v:x></recording>");
    assert_eq!(bom.unknown_elements, vec!["<v:x xmlns:v='u'>1</v:x>"]);
    let mut many = String::from("<recording>");
    for i in 0..MAX_METADATA_UNKNOWN + 5 {
        many.push_str(&format!("<x{i}/>"));
    }
    many.push_str("</recording>");
    assert_eq!(ok(&many).unknown_elements.len(), MAX_METADATA_UNKNOWN);
}

#[test]
fn complete_update_replaces() {
    let mut m = ok(BROADWORKS);
    m.apply_update(ok(BROADWORKS_3WAY));
    assert_eq!(m.participants.len(), 3);
    let mut back = m.clone();
    back.apply_update(ok(BROADWORKS));
    assert_eq!(
        back,
        ok(BROADWORKS),
        "complete means: exactly the new document"
    );
    // A document without dataMode counts as complete.
    let mut m = ok(BROADWORKS);
    m.apply_update(ok(
        r#"<recording><participant participant_id="only"/></recording>"#,
    ));
    assert_eq!(m.participants.len(), 1);
    assert!(m.broadworks.is_none());
}

#[test]
fn partial_update_merges_joins_and_leaves() {
    let mut m = ok(AVAYA_INITIAL);
    let update = ok(AVAYA_PARTIAL);
    assert_eq!(update.data_mode, Some(DataMode::Partial));
    m.apply_update(update);
    assert_eq!(
        m.data_mode,
        Some(DataMode::Complete),
        "the merged view stays complete"
    );
    assert_eq!(m.participants.len(), 3);
    let customer = &m.participants[0];
    assert_eq!(
        customer.aor.as_deref(),
        Some("sip:+15557770001@avaya.example.com")
    );
    assert_eq!(
        customer.disassociate_time.as_deref(),
        Some("2026-02-11T15:27:30Z")
    );
    assert_eq!(
        customer.send,
        vec!["c3RyZWFtLWE="],
        "associations not restated are kept"
    );
    let agent = &m.participants[1];
    assert_eq!(
        agent.name.as_deref(),
        Some("Agent"),
        "untouched participant unchanged"
    );
    let specialist = &m.participants[2];
    assert_eq!(
        specialist.associate_time.as_deref(),
        Some("2026-02-11T15:27:02Z")
    );
    // The customer left: stream 1 has no present sender; stream 2 is agent + specialist.
    assert!(identities(&m, "1").is_empty());
    assert_eq!(
        identities(&m, "2"),
        vec!["sip:2002@avaya.example.com", "sip:3003@avaya.example.com"]
    );
    assert_eq!(
        m.streams.len(),
        2,
        "streams the update does not name are kept"
    );
    assert_eq!(
        m.unknown_elements,
        vec!["<avaya:ucid>00001043671507642511</avaya:ucid>"]
    );

    // A partial update restating associations replaces them; rejoining clears the leave.
    m.apply_update(ok(r#"<recording><datamode>partial</datamode>
<participantsessionassoc participant_id="Y3VzdG9tZXItMQ=="><associate-time>2026-02-11T15:28:00Z</associate-time></participantsessionassoc>
<participantstreamassoc participant_id="YWdlbnQtMg=="><send>c3RyZWFtLWE=</send></participantstreamassoc>
</recording>"#));
    assert!(m.participants[0].is_present());
    assert_eq!(m.participants[1].send, vec!["c3RyZWFtLWE="]);
    assert!(m.participants[1].recv.is_empty());
}

/// Shaped after the SIPREC INVITE in Cisco's CUBE Media Proxy guide: participants, their
/// session associations and streams interleaved, associations last.
const CUBE: &str = include_str!("../../../tests/data/siprec/cisco_cube_siprec.xml");

#[test]
fn cisco_cube_interleaved_elements() {
    let m = ok(CUBE);
    assert_eq!(m.session_id.as_deref(), Some("cUBEs01IEeqC3dJj6Y+AJA=="));
    assert_eq!(identities(&m, "1"), vec!["sip:3478@192.0.2.71"]);
    assert_eq!(identities(&m, "2"), vec!["sip:98765@192.0.2.71"]);
    assert!(
        m.participants
            .iter()
            .all(|p| p.associate_time.as_deref() == Some("2026-02-13T03:35:19.008Z"))
    );
    assert!(m.unknown_elements.is_empty(), "{:?}", m.unknown_elements);
}
