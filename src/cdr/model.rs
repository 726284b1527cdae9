//! CDR records in the Cisco Meeting Server format (SPEC §6).
//!
//! A record is serialized once, as the *inner* XML of its `<record>` element; the envelope
//! (`type`, `time`, indexes) is added at send time because `recordIndex` differs per receiver
//! and `numPreceedingRecordsMissing` is only known when the record is about to be delivered.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// `2026-11-21T10:00:00.123Z`: RFC 3339, UTC, millisecond precision as CMS sends it.
const CDR_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// What a caller reports; the sink stamps the time and the indexes.
#[derive(Debug, Clone, PartialEq)]
pub enum CdrEvent {
    RecordingStart(RecordingStart),
    RecordingEnd(RecordingEnd),
    CallLegStart(CallLegStart),
    CallLegUpdate(CallLegUpdate),
    CallLegEnd(CallLegEnd),
}

/// `recordingStart`: the recording is established (200 OK sent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingStart {
    /// The recorder's recording UUID (`<recording id>`).
    pub recording_id: String,
    /// Recording directory.
    pub path: String,
    /// The URI the recorder was reached at (Request-URI).
    pub recorder_uri: String,
    /// calluuid, else the SIPREC session id, else the SIP Call-ID.
    pub call: String,
    /// Id of the recording SIP leg (matches the `callLeg*` records).
    pub call_leg: String,
    pub calluuid: Option<String>,
    pub dn: Option<String>,
    pub other_dn: Option<String>,
    /// `genesys` | `cms` | `siprec`.
    pub kind: String,
    pub files: Vec<String>,
    /// Extension `<groupId>`: recordings of one call made as separate dialogs share it.
    pub group_id: Option<String>,
    /// Extension `<parties><party>`: who each stream carries, in stream order.
    pub parties: Vec<String>,
}

/// `recordingEnd`: the recording is finalized.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingEnd {
    pub recording_id: String,
    /// SPEC §5 `end_reason` (`bye`, `media_timeout`, ...).
    pub end_reason: String,
    pub files: Vec<String>,
    pub duration_seconds: u64,
}

/// `callLegStart` for the recording SIP leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLegStart {
    pub call_leg: String,
    /// The SRC (From URI).
    pub remote_party: String,
    /// The recorder address the SRC dialled (To / Request-URI).
    pub local_address: String,
    pub display_name: Option<String>,
    pub sip_call_id: String,
    /// The `<call>` this leg belongs to (same value as `recordingStart`'s `<call>`).
    pub call: Option<String>,
}

/// `callLegUpdate`: pause (`deactivated = true`) or resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLegUpdate {
    pub call_leg: String,
    pub deactivated: bool,
    pub sip_call_id: Option<String>,
}

/// CMS call leg end reason codes that apply to a recording leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallLegEndReason {
    #[default]
    RemoteTeardown,
    LocalTeardown,
    Timeout,
    Error,
}

impl CallLegEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemoteTeardown => "remoteTeardown",
            Self::LocalTeardown => "localTeardown",
            Self::Timeout => "timeout",
            Self::Error => "error",
        }
    }

    /// Maps a SPEC §5 `end_reason` to the CMS code.
    pub fn from_end_reason(end_reason: &str) -> Self {
        match end_reason {
            "bye" => Self::RemoteTeardown,
            "ack_timeout" | "session_timeout" | "media_timeout" => Self::Timeout,
            "shutdown" | "stopped" => Self::LocalTeardown,
            _ => Self::Error,
        }
    }
}

/// CMS `packetLossBursts` / `packetGap`: mean duration (s) and density (%).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BurstStats {
    pub duration_seconds: f64,
    pub density_percent: f64,
}

/// One received audio stream of the leg (`rxAudio`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RxAudio {
    /// CMS codec name, lower case (`pcmu`, `pcma`, `g722`, `opus`, ...).
    pub codec: String,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packet_loss_bursts: Option<BurstStats>,
    pub packet_gap: Option<BurstStats>,
    pub jitter_ms: Option<f64>,
}

/// `callLegEnd` for the recording SIP leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLegEnd {
    pub call_leg: String,
    pub reason: CallLegEndReason,
    pub remote_teardown: bool,
    pub duration_seconds: u64,
    pub sip_call_id: String,
    pub rx_audio: Vec<RxAudio>,
}

impl CdrEvent {
    /// The CMS record `type` attribute.
    pub fn record_type(&self) -> &'static str {
        match self {
            Self::RecordingStart(_) => "recordingStart",
            Self::RecordingEnd(_) => "recordingEnd",
            Self::CallLegStart(_) => "callLegStart",
            Self::CallLegUpdate(_) => "callLegUpdate",
            Self::CallLegEnd(_) => "callLegEnd",
        }
    }

    /// The inner XML of the `<record>` element.
    pub fn inner_xml(&self) -> String {
        let mut x = String::with_capacity(512);
        match self {
            Self::RecordingStart(r) => {
                open_with_id(&mut x, "recording", &r.recording_id);
                elem(&mut x, "path", &r.path);
                elem(&mut x, "recorderUri", &r.recorder_uri);
                elem(&mut x, "call", &r.call);
                elem(&mut x, "callLeg", &r.call_leg);
                opt_elem(&mut x, "calluuid", r.calluuid.as_deref());
                opt_elem(&mut x, "dn", r.dn.as_deref());
                opt_elem(&mut x, "otherDN", r.other_dn.as_deref());
                elem(&mut x, "kind", &r.kind);
                files(&mut x, &r.files);
                opt_elem(&mut x, "groupId", r.group_id.as_deref());
                if !r.parties.is_empty() {
                    x.push_str("<parties>");
                    for party in &r.parties {
                        elem(&mut x, "party", party);
                    }
                    x.push_str("</parties>");
                }
                x.push_str("</recording>");
            }
            Self::RecordingEnd(r) => {
                open_with_id(&mut x, "recording", &r.recording_id);
                elem(&mut x, "endReason", &r.end_reason);
                files(&mut x, &r.files);
                elem(&mut x, "durationSeconds", &r.duration_seconds.to_string());
                x.push_str("</recording>");
            }
            Self::CallLegStart(r) => {
                open_with_id(&mut x, "callLeg", &r.call_leg);
                opt_elem(&mut x, "displayName", r.display_name.as_deref());
                elem(&mut x, "remoteParty", &r.remote_party);
                elem(&mut x, "localAddress", &r.local_address);
                elem(&mut x, "type", "sip");
                elem(&mut x, "subType", "recorder");
                elem(&mut x, "direction", "incoming");
                opt_elem(&mut x, "call", r.call.as_deref());
                elem(&mut x, "sipCallId", &r.sip_call_id);
                x.push_str("</callLeg>");
            }
            Self::CallLegUpdate(r) => {
                open_with_id(&mut x, "callLeg", &r.call_leg);
                elem(&mut x, "state", "connected");
                elem(&mut x, "deactivated", bool_str(r.deactivated));
                opt_elem(&mut x, "sipCallId", r.sip_call_id.as_deref());
                x.push_str("</callLeg>");
            }
            Self::CallLegEnd(r) => {
                open_with_id(&mut x, "callLeg", &r.call_leg);
                elem(&mut x, "reason", r.reason.as_str());
                elem(&mut x, "remoteTeardown", bool_str(r.remote_teardown));
                elem(&mut x, "durationSeconds", &r.duration_seconds.to_string());
                elem(&mut x, "sipCallId", &r.sip_call_id);
                for a in &r.rx_audio {
                    rx_audio(&mut x, a);
                }
                x.push_str("</callLeg>");
            }
        }
        x
    }
}

fn rx_audio(x: &mut String, a: &RxAudio) {
    x.push_str("<rxAudio>");
    elem(x, "codec", &a.codec);
    x.push_str("<packetStatistics>");
    if let Some(b) = a.packet_loss_bursts {
        burst(x, "packetLossBursts", b);
    }
    if let Some(b) = a.packet_gap {
        burst(x, "packetGap", b);
    }
    // Extension children (receivers ignore unknown ones): raw counters are what
    // operators actually graph.
    elem(x, "packetsReceived", &a.packets_received.to_string());
    elem(x, "packetsLost", &a.packets_lost.to_string());
    if let Some(j) = a.jitter_ms {
        elem(x, "jitterMs", &finite(j, 1));
    }
    x.push_str("</packetStatistics></rxAudio>");
}

fn burst(x: &mut String, name: &str, b: BurstStats) {
    let _ = write!(
        x,
        "<{name}><duration>{}</duration><density>{}</density></{name}>",
        finite(b.duration_seconds, 3),
        finite(b.density_percent, 2)
    );
}

/// NaN/inf have no place in a CDR; they come from divisions by zero upstream.
fn finite(v: f64, decimals: usize) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    format!("{v:.decimals$}")
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn files(x: &mut String, files: &[String]) {
    if files.is_empty() {
        return;
    }
    x.push_str("<files>");
    for f in files {
        elem(x, "file", f);
    }
    x.push_str("</files>");
}

fn open_with_id(x: &mut String, name: &str, id: &str) {
    let _ = write!(x, "<{name} id=\"");
    escape_into(x, id, true);
    x.push_str("\">");
}

fn elem(x: &mut String, name: &str, value: &str) {
    let _ = write!(x, "<{name}>");
    escape_into(x, value, false);
    let _ = write!(x, "</{name}>");
}

fn opt_elem(x: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        elem(x, name, v);
    }
}

/// Escapes `s` for XML 1.0 text or attribute content. Characters XML 1.0 cannot carry at all
/// (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF) become U+FFFD, so the document stays
/// well-formed whatever arrived from the network. CR (and, in attributes, TAB/LF) are written
/// as character references so that parsers' whitespace normalization keeps the value intact.
pub fn escape_into(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Formats a record time as CMS does.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    // Formatting a UTC date with a fixed numeric description cannot fail for years 0..=9999;
    // fall back to the RFC 3339 formatter rather than panic on anything else.
    t.format(CDR_TIME)
        .or_else(|_| t.format(&time::format_description::well_known::Rfc3339))
        .unwrap_or_default()
}

/// One record as it goes into a `<records>` document.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEnvelope<'a> {
    pub record_type: &'a str,
    pub time: &'a str,
    pub record_index: u64,
    pub correlator_index: u64,
    pub missing: u64,
    pub inner_xml: &'a str,
}

/// Builds a complete `<records session="...">` document. All records must share `session`.
pub fn document<'a>(
    session: &str,
    records: impl IntoIterator<Item = RecordEnvelope<'a>>,
) -> String {
    let mut x = String::with_capacity(1024);
    x.push_str("<?xml version=\"1.0\"?>\n<records session=\"");
    escape_into(&mut x, session, true);
    x.push_str("\">");
    for r in records {
        x.push_str("<record type=\"");
        escape_into(&mut x, r.record_type, true);
        x.push_str("\" time=\"");
        escape_into(&mut x, r.time, true);
        let _ = write!(
            x,
            "\" recordIndex=\"{}\" correlatorIndex=\"{}\"",
            r.record_index, r.correlator_index
        );
        if r.missing > 0 {
            // CMS's own spelling, typo included: receivers match on it.
            let _ = write!(x, " numPreceedingRecordsMissing=\"{}\"", r.missing);
        }
        x.push('>');
        x.push_str(r.inner_xml);
        x.push_str("</record>");
    }
    x.push_str("</records>");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;

    /// Parses the whole document and returns the unescaped text of every element named `name`.
    pub(crate) fn texts(doc: &str, name: &str) -> Vec<String> {
        let mut r = Reader::from_str(doc);
        let mut out = Vec::new();
        let mut cur: Option<String> = None;
        loop {
            match r.read_event().expect("well-formed") {
                Event::Start(e) => {
                    cur = (e.name().as_ref() == name.as_bytes()).then(String::new);
                }
                Event::Text(t) => {
                    if let Some(c) = cur.as_mut() {
                        c.push_str(&t.xml10_content().expect("text"));
                    }
                }
                Event::GeneralRef(g) => {
                    if let Some(c) = cur.as_mut() {
                        match g.resolve_char_ref().expect("char ref") {
                            Some(ch) => c.push(ch),
                            None => c.push_str(match &*g.decode().expect("utf8") {
                                "amp" => "&",
                                "lt" => "<",
                                "gt" => ">",
                                "quot" => "\"",
                                "apos" => "'",
                                other => panic!("unknown entity {other}"),
                            }),
                        }
                    }
                }
                Event::End(_) => {
                    if let Some(c) = cur.take() {
                        out.push(c);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn hostile() -> String {
        let mut s = String::from("a\"b'c<d>e&f&amp;]]>\u{0}\u{1}\u{7}\u{1b}\r\n\t\u{FFFE}é😀");
        while s.len() < 4096 {
            s.push_str("<&\"x");
        }
        s
    }

    fn sample_start(v: &str) -> CdrEvent {
        CdrEvent::RecordingStart(RecordingStart {
            recording_id: v.into(),
            path: v.into(),
            recorder_uri: v.into(),
            call: v.into(),
            call_leg: v.into(),
            calluuid: Some(v.into()),
            dn: Some(v.into()),
            other_dn: Some(v.into()),
            kind: "genesys".into(),
            files: vec![v.into(), "b.wav".into()],
            ..RecordingStart::default()
        })
    }

    fn wrap(e: &CdrEvent, session: &str) -> String {
        let inner = e.inner_xml();
        document(
            session,
            [RecordEnvelope {
                record_type: e.record_type(),
                time: "2026-11-21T10:00:00.123Z",
                record_index: 1,
                correlator_index: 0,
                missing: 3,
                inner_xml: &inner,
            }],
        )
    }

    #[test]
    fn hostile_values_stay_well_formed_and_round_trip() {
        let v = hostile();
        let doc = wrap(&sample_start(&v), &v);
        let dns = texts(&doc, "dn");
        assert_eq!(dns.len(), 1);
        // What cannot be carried is replaced, everything else survives exactly.
        let expected: String = v
            .chars()
            .map(|c| match c {
                '\t' | '\n' | '\r' => c,
                c if (c as u32) < 0x20 || c == '\u{FFFE}' => '\u{FFFD}',
                c => c,
            })
            .collect();
        assert_eq!(dns[0], expected);
        // Attributes parse back too.
        let mut r = Reader::from_str(&doc);
        loop {
            match r.read_event().expect("well-formed") {
                Event::Start(e) | Event::Empty(e) => {
                    for a in e.attributes() {
                        let a = a.expect("attribute");
                        let v = a
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .expect("attribute value");
                        if a.key.as_ref() == b"session" {
                            assert_eq!(v, expected);
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(doc.contains("numPreceedingRecordsMissing=\"3\""));
    }

    #[test]
    fn every_record_type_is_well_formed_with_hostile_values() {
        let v = hostile();
        let events = [
            sample_start(&v),
            CdrEvent::RecordingEnd(RecordingEnd {
                recording_id: v.clone(),
                end_reason: v.clone(),
                files: vec![v.clone()],
                duration_seconds: 7,
            }),
            CdrEvent::CallLegStart(CallLegStart {
                call_leg: v.clone(),
                remote_party: v.clone(),
                local_address: v.clone(),
                display_name: Some(v.clone()),
                sip_call_id: v.clone(),
                call: Some(v.clone()),
            }),
            CdrEvent::CallLegUpdate(CallLegUpdate {
                call_leg: v.clone(),
                deactivated: true,
                sip_call_id: Some(v.clone()),
            }),
            CdrEvent::CallLegEnd(CallLegEnd {
                call_leg: v.clone(),
                reason: CallLegEndReason::Timeout,
                remote_teardown: false,
                duration_seconds: 12,
                sip_call_id: v.clone(),
                rx_audio: vec![RxAudio {
                    codec: v.clone(),
                    packets_received: 100,
                    packets_lost: 2,
                    packet_loss_bursts: Some(BurstStats {
                        duration_seconds: f64::NAN,
                        density_percent: 1.5,
                    }),
                    packet_gap: Some(BurstStats::default()),
                    jitter_ms: Some(f64::INFINITY),
                }],
            }),
        ];
        for e in &events {
            let doc = wrap(e, "s");
            // Parsing the whole document is the check; the id element must round-trip.
            let _ = texts(&doc, "record");
            assert!(doc.ends_with("</record></records>"));
        }
    }

    #[test]
    fn call_leg_end_layout() {
        let e = CdrEvent::CallLegEnd(CallLegEnd {
            call_leg: "leg-1".into(),
            reason: CallLegEndReason::RemoteTeardown,
            remote_teardown: true,
            duration_seconds: 10,
            sip_call_id: "abc@h".into(),
            rx_audio: vec![RxAudio {
                codec: "pcmu".into(),
                packets_received: 500,
                packets_lost: 3,
                packet_loss_bursts: Some(BurstStats {
                    duration_seconds: 0.06,
                    density_percent: 0.6,
                }),
                packet_gap: None,
                jitter_ms: None,
            }],
        });
        assert_eq!(
            e.inner_xml(),
            "<callLeg id=\"leg-1\"><reason>remoteTeardown</reason><remoteTeardown>true</remoteTeardown>\
             <durationSeconds>10</durationSeconds><sipCallId>abc@h</sipCallId><rxAudio><codec>pcmu</codec>\
             <packetStatistics><packetLossBursts><duration>0.060</duration><density>0.60</density>\
             </packetLossBursts><packetsReceived>500</packetsReceived><packetsLost>3</packetsLost>\
             </packetStatistics></rxAudio></callLeg>"
        );
    }

    #[test]
    fn recording_start_group_and_parties_extensions() {
        let e = CdrEvent::RecordingStart(RecordingStart {
            recording_id: "r".into(),
            group_id: Some("g-1".into()),
            parties: vec!["sip:a@x".into(), "1000".into()],
            ..RecordingStart::default()
        });
        let xml = e.inner_xml();
        assert!(
            xml.contains("<groupId>g-1</groupId><parties><party>sip:a@x</party><party>1000</party></parties></recording>"),
            "{xml}"
        );
        let bare = CdrEvent::RecordingStart(RecordingStart::default()).inner_xml();
        assert!(
            !bare.contains("groupId") && !bare.contains("parties"),
            "{bare}"
        );
    }

    #[test]
    fn time_format_is_rfc3339_millis_utc() {
        let t = time::macros::datetime!(2026-11-21 10:00:00.123456 +01:00);
        assert_eq!(format_time(t), "2026-11-21T09:00:00.123Z");
    }

    #[test]
    fn end_reason_mapping() {
        assert_eq!(
            CallLegEndReason::from_end_reason("bye"),
            CallLegEndReason::RemoteTeardown
        );
        assert_eq!(
            CallLegEndReason::from_end_reason("media_timeout"),
            CallLegEndReason::Timeout
        );
        assert_eq!(
            CallLegEndReason::from_end_reason("shutdown"),
            CallLegEndReason::LocalTeardown
        );
        assert_eq!(
            CallLegEndReason::from_end_reason("recovered"),
            CallLegEndReason::Error
        );
    }
}
