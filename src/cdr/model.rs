//! CDR records in the Cisco Meeting Server format (SPEC §6).
//!
//! A record is serialized once, as the *inner* XML of its `<record>` element; the envelope
//! (`type`, `time`, indexes) is added at send time because `recordIndex` differs per receiver
//! and `numPreceedingRecordsMissing` is only known when the record is about to be delivered.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// `2014-02-28T16:03:25Z`: RFC 3339, UTC, whole seconds, as the guide (§3) writes it.
const CDR_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

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
    /// Extension `<objectStorage>` when `[storage]` is configured.
    pub storage: Option<ObjectStorage>,
}

/// Extension `<objectStorage>` of `recordingEnd`: where the recording's objects are. The
/// location is given only once every object is uploaded and verified; until then the
/// record says `pending` and names the bucket only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectStorage {
    pub uploaded: bool,
    pub bucket: String,
    /// Empty while pending.
    pub key_prefix: String,
    pub objects: Vec<StoredObject>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    /// Hex SHA-256 the server verified (`None` when not known).
    pub sha256: Option<String>,
}

/// `callLegStart` for the recording SIP leg (guide §4.3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLegStart {
    pub call_leg: String,
    /// `remoteParty`: the SRC (From URI).
    pub remote_party: String,
    /// `remoteAddress`: for an incoming call the source URI (From URI).
    pub remote_address: String,
    /// The recorder address the SRC dialled (Request-URI).
    pub local_address: String,
    /// The From display name; `None` is written as an empty `<displayName/>` (the guide:
    /// "blank if the far end does not provide a friendly name").
    pub display_name: Option<String>,
    pub sip_call_id: String,
    /// The `<call>` this leg belongs to (same value as `recordingStart`'s `<call>`).
    pub call: Option<String>,
    /// Extension `<recorderKind>`: `genesys` | `cms` | `siprec` (in place of a `subType`
    /// value the guide does not define).
    pub recorder_kind: Option<String>,
}

/// `callLegUpdate` (guide §4.5): `connected` once set up, `deactivated` on pause/resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLegUpdate {
    pub call_leg: String,
    /// `<state>connected</state>`; absent before the leg is connected.
    pub connected: bool,
    pub deactivated: bool,
    pub remote_address: Option<String>,
    pub call: Option<String>,
    pub sip_call_id: Option<String>,
    pub display_name: Option<String>,
}

/// CMS call leg end reason codes that apply to a recording leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallLegEndReason {
    #[default]
    RemoteTeardown,
    LocalTeardown,
    /// The recording was stopped through the API (`POST …/stop`).
    ApiInitiatedTeardown,
    Timeout,
    Error,
}

impl CallLegEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemoteTeardown => "remoteTeardown",
            Self::ApiInitiatedTeardown => "apiInitiatedTeardown",
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

/// One received audio stream of the leg. The leg's single guide `rxAudio` summarises them
/// all; each also appears in the extension `<recorderStreams>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RxAudio {
    /// CMS codec name (`g711u`, `g711a`, `g722`, `g729`, `opus`, ...), see
    /// [`super::legs::cms_codec`].
    pub codec: String,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packet_loss_bursts: Option<BurstStats>,
    pub packet_gap: Option<BurstStats>,
    pub jitter_ms: Option<f64>,
}

/// `callLegEnd` for the recording SIP leg (guide §4.4).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLegEnd {
    pub call_leg: String,
    pub reason: CallLegEndReason,
    pub remote_teardown: bool,
    /// Media seen during the leg: `encryptedMedia` / `unencryptedMedia` are written `true`
    /// for the kinds present and left out for the others (guide §4.4).
    pub encrypted_media: bool,
    pub unencrypted_media: bool,
    pub duration_seconds: u64,
    /// `activatedDuration`: seconds not paused.
    pub activated_seconds: Option<u64>,
    pub sip_call_id: String,
    /// Per received stream; one summary `rxAudio` plus extension detail.
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
                if let Some(storage) = &r.storage {
                    object_storage(&mut x, storage);
                }
                x.push_str("</recording>");
            }
            Self::CallLegStart(r) => {
                open_with_id(&mut x, "callLeg", &r.call_leg);
                elem(
                    &mut x,
                    "displayName",
                    r.display_name.as_deref().unwrap_or(""),
                );
                elem(&mut x, "localAddress", &r.local_address);
                elem(&mut x, "remoteAddress", &r.remote_address);
                elem(&mut x, "remoteParty", &r.remote_party);
                // This leg is the connection recording the call (guide §4.3 `recording`).
                elem(&mut x, "recording", "true");
                elem(&mut x, "type", "sip");
                elem(&mut x, "direction", "incoming");
                opt_elem(&mut x, "call", r.call.as_deref());
                elem(&mut x, "sipCallId", &r.sip_call_id);
                opt_elem(&mut x, "recorderKind", r.recorder_kind.as_deref());
                x.push_str("</callLeg>");
            }
            Self::CallLegUpdate(r) => {
                open_with_id(&mut x, "callLeg", &r.call_leg);
                if r.connected {
                    elem(&mut x, "state", "connected");
                }
                elem(&mut x, "deactivated", bool_str(r.deactivated));
                opt_elem(&mut x, "remoteAddress", r.remote_address.as_deref());
                opt_elem(&mut x, "call", r.call.as_deref());
                opt_elem(&mut x, "sipCallId", r.sip_call_id.as_deref());
                opt_elem(&mut x, "displayName", r.display_name.as_deref());
                x.push_str("</callLeg>");
            }
            Self::CallLegEnd(r) => call_leg_end(&mut x, r),
        }
        x
    }
}

fn call_leg_end(x: &mut String, r: &CallLegEnd) {
    open_with_id(x, "callLeg", &r.call_leg);
    elem(x, "reason", r.reason.as_str());
    elem(x, "remoteTeardown", bool_str(r.remote_teardown));
    if r.encrypted_media {
        elem(x, "encryptedMedia", "true");
    }
    if r.unencrypted_media {
        elem(x, "unencryptedMedia", "true");
    }
    elem(x, "durationSeconds", &r.duration_seconds.to_string());
    if let Some(a) = r.activated_seconds {
        elem(x, "activatedDuration", &a.to_string());
    }
    if let Some(summary) = summarize(&r.rx_audio) {
        x.push_str("<rxAudio>");
        elem(x, "codec", &summary.codec);
        packet_statistics(x, &summary, false);
        x.push_str("</rxAudio>");
    }
    elem(x, "sipCallId", &r.sip_call_id);
    // Extension: every received stream with its own counters (receivers ignore unknown
    // elements, guide §1.1).
    if !r.rx_audio.is_empty() {
        x.push_str("<recorderStreams>");
        for (i, a) in r.rx_audio.iter().enumerate() {
            let _ = write!(x, "<stream index=\"{i}\">");
            elem(x, "codec", &a.codec);
            packet_statistics(x, a, true);
            x.push_str("</stream>");
        }
        x.push_str("</recorderStreams>");
    }
    x.push_str("</callLeg>");
}

/// The leg's one `rxAudio`: the first stream's codec; counters summed; loss burst and gap
/// figures the worst of the streams (a receiver alarms on the worst direction).
fn summarize(streams: &[RxAudio]) -> Option<RxAudio> {
    let first = streams.first()?;
    let worst = |pick: fn(&RxAudio) -> Option<BurstStats>| {
        streams.iter().filter_map(pick).reduce(|a, b| BurstStats {
            duration_seconds: a.duration_seconds.max(b.duration_seconds),
            density_percent: a.density_percent.max(b.density_percent),
        })
    };
    Some(RxAudio {
        codec: first.codec.clone(),
        packets_received: streams.iter().map(|s| s.packets_received).sum(),
        packets_lost: streams.iter().map(|s| s.packets_lost).sum(),
        packet_loss_bursts: worst(|s| s.packet_loss_bursts),
        packet_gap: worst(|s| s.packet_gap),
        jitter_ms: streams.iter().filter_map(|s| s.jitter_ms).reduce(f64::max),
    })
}

fn packet_statistics(x: &mut String, a: &RxAudio, counters: bool) {
    x.push_str("<packetStatistics>");
    if let Some(b) = a.packet_loss_bursts {
        burst(x, "packetLossBursts", b);
    }
    if let Some(b) = a.packet_gap {
        burst(x, "packetGap", b);
    }
    if counters {
        // Extension children: raw counters are what operators actually graph.
        elem(x, "packetsReceived", &a.packets_received.to_string());
        elem(x, "packetsLost", &a.packets_lost.to_string());
        if let Some(j) = a.jitter_ms {
            elem(x, "jitterMs", &finite(j, 1));
        }
    }
    x.push_str("</packetStatistics>");
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

fn object_storage(x: &mut String, s: &ObjectStorage) {
    x.push_str("<objectStorage>");
    elem(x, "state", if s.uploaded { "uploaded" } else { "pending" });
    elem(x, "bucket", &s.bucket);
    if s.uploaded {
        elem(x, "keyPrefix", &s.key_prefix);
        x.push_str("<objects>");
        for o in &s.objects {
            x.push_str("<object>");
            elem(x, "key", &o.key);
            elem(x, "size", &o.size.to_string());
            opt_elem(x, "sha256", o.sha256.as_deref());
            x.push_str("</object>");
        }
        x.push_str("</objects>");
    }
    x.push_str("</objectStorage>");
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

/// Builds a complete `<records session="..." callBridge="...">` document. All records must
/// share `session`; `call_bridge` is the persistent instance GUID (guide §3: the GUID that
/// tells apart the senders of a cluster and survives restarts).
pub fn document<'a>(
    session: &str,
    call_bridge: Option<&str>,
    records: impl IntoIterator<Item = RecordEnvelope<'a>>,
) -> String {
    let mut x = String::with_capacity(1024);
    x.push_str("<?xml version=\"1.0\"?>\n<records session=\"");
    escape_into(&mut x, session, true);
    if let Some(cb) = call_bridge {
        x.push_str("\" callBridge=\"");
        escape_into(&mut x, cb, true);
    }
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
            Some("158ba4f7-70eb-4a35-982c-71d4f1674277"),
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
                storage: Some(ObjectStorage {
                    uploaded: true,
                    bucket: v.clone(),
                    key_prefix: v.clone(),
                    objects: vec![StoredObject {
                        key: v.clone(),
                        size: 1,
                        sha256: Some(v.clone()),
                    }],
                }),
            }),
            CdrEvent::CallLegStart(CallLegStart {
                call_leg: v.clone(),
                remote_party: v.clone(),
                remote_address: v.clone(),
                local_address: v.clone(),
                display_name: Some(v.clone()),
                sip_call_id: v.clone(),
                call: Some(v.clone()),
                recorder_kind: Some(v.clone()),
            }),
            CdrEvent::CallLegUpdate(CallLegUpdate {
                call_leg: v.clone(),
                connected: true,
                deactivated: true,
                remote_address: Some(v.clone()),
                call: Some(v.clone()),
                sip_call_id: Some(v.clone()),
                display_name: Some(v.clone()),
            }),
            CdrEvent::CallLegEnd(CallLegEnd {
                call_leg: v.clone(),
                reason: CallLegEndReason::Timeout,
                remote_teardown: false,
                encrypted_media: true,
                unencrypted_media: true,
                duration_seconds: 12,
                activated_seconds: Some(3),
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
            encrypted_media: false,
            unencrypted_media: true,
            duration_seconds: 10,
            activated_seconds: Some(8),
            sip_call_id: "abc@h".into(),
            rx_audio: vec![
                RxAudio {
                    codec: "g711u".into(),
                    packets_received: 500,
                    packets_lost: 3,
                    packet_loss_bursts: Some(BurstStats {
                        duration_seconds: 0.06,
                        density_percent: 0.6,
                    }),
                    packet_gap: None,
                    jitter_ms: None,
                },
                RxAudio {
                    codec: "g711u".into(),
                    packets_received: 400,
                    packets_lost: 0,
                    packet_loss_bursts: Some(BurstStats {
                        duration_seconds: 0.02,
                        density_percent: 1.0,
                    }),
                    packet_gap: None,
                    jitter_ms: Some(1.25),
                },
            ],
        });
        assert_eq!(
            e.inner_xml(),
            "<callLeg id=\"leg-1\"><reason>remoteTeardown</reason><remoteTeardown>true</remoteTeardown>\
             <unencryptedMedia>true</unencryptedMedia>\
             <durationSeconds>10</durationSeconds><activatedDuration>8</activatedDuration>\
             <rxAudio><codec>g711u</codec><packetStatistics><packetLossBursts><duration>0.060</duration>\
             <density>1.00</density></packetLossBursts></packetStatistics></rxAudio>\
             <sipCallId>abc@h</sipCallId><recorderStreams>\
             <stream index=\"0\"><codec>g711u</codec><packetStatistics><packetLossBursts>\
             <duration>0.060</duration><density>0.60</density></packetLossBursts>\
             <packetsReceived>500</packetsReceived><packetsLost>3</packetsLost></packetStatistics></stream>\
             <stream index=\"1\"><codec>g711u</codec><packetStatistics><packetLossBursts>\
             <duration>0.020</duration><density>1.00</density></packetLossBursts>\
             <packetsReceived>400</packetsReceived><packetsLost>0</packetsLost><jitterMs>1.2</jitterMs>\
             </packetStatistics></stream></recorderStreams></callLeg>"
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
    fn time_format_is_the_guides_whole_seconds_utc() {
        let t = time::macros::datetime!(2014-02-28 17:03:25.923456 +01:00);
        assert_eq!(format_time(t), "2014-02-28T16:03:25Z");
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
