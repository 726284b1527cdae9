//! RFC 7865 recording metadata (`application/rs-metadata+xml`).
//!
//! Both the RFC namespace `urn:ietf:params:xml:ns:recording:1` and the draft-era
//! `urn:ietf:params:xml:ns:siprec` (and its `id`/`session` attribute spellings) are read.
//! Elements and attributes are matched by local name only: senders differ in prefixes and
//! some get the namespace URI wrong, and the element names alone are unambiguous here.
//! Unknown elements and attributes are skipped.
//!
//! The input comes from the network, so it is bounded: size, depth, participant and stream
//! counts. No DTD is accepted and no entity beyond the five predefined ones and character
//! references is resolved, so entity expansion attacks have nothing to work with.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};

/// Largest metadata document accepted. Conference metadata is big, but not this big.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Most participants kept from one document.
pub const MAX_METADATA_PARTICIPANTS: usize = 64;
/// Most streams kept from one document (also bounds each participant's send/recv lists).
pub const MAX_METADATA_STREAMS: usize = 64;
/// Deepest element nesting accepted; real metadata is four levels deep.
pub const MAX_METADATA_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordingMetadata {
    /// `<session session_id="...">` (legacy: `id`) of the first session element.
    pub session_id: Option<String>,
    /// `<group group_id="...">` (legacy: `id`), else the session's `<group-ref>`.
    pub group_id: Option<String>,
    pub participants: Vec<Participant>,
    pub streams: Vec<MetadataStream>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Participant {
    pub participant_id: String,
    /// `<nameID aor="...">` (legacy: `<aor>` text).
    pub aor: Option<String>,
    /// `<name>` display name.
    pub name: Option<String>,
    /// Stream ids this participant sends (`<participantstreamassoc><send>`, legacy: `<send>`
    /// directly inside `<participant>`).
    pub send: Vec<String>,
    /// Stream ids this participant receives.
    pub recv: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetadataStream {
    pub stream_id: String,
    pub session_id: Option<String>,
    /// `<label>`: the SDP `a=label` of the media stream it describes.
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata is {0} bytes, above the {MAX_METADATA_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("metadata is not well-formed XML: {0}")]
    NotXml(String),
    #[error("metadata root element is not <recording>")]
    NotRecording,
    #[error("metadata has more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    #[error("metadata nests elements deeper than {MAX_METADATA_DEPTH}")]
    TooDeep,
    #[error("metadata uses undefined entity &{0};")]
    UnknownEntity(String),
    #[error("metadata carries a DOCTYPE, which is not accepted")]
    Doctype,
}

impl From<quick_xml::Error> for MetadataError {
    fn from(e: quick_xml::Error) -> Self {
        match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                _,
                name,
            )) => MetadataError::UnknownEntity(name),
            other => MetadataError::NotXml(other.to_string()),
        }
    }
}

impl From<quick_xml::events::attributes::AttrError> for MetadataError {
    fn from(e: quick_xml::events::attributes::AttrError) -> Self {
        MetadataError::NotXml(e.to_string())
    }
}

impl From<quick_xml::encoding::EncodingError> for MetadataError {
    fn from(e: quick_xml::encoding::EncodingError) -> Self {
        MetadataError::NotXml(e.to_string())
    }
}

impl RecordingMetadata {
    /// The participant that sends the stream with this SDP a=label, if any.
    pub fn participant_for_label(&self, label: &str) -> Option<&Participant> {
        let label = label.trim();
        self.streams
            .iter()
            .filter(|s| s.label.as_deref() == Some(label))
            .find_map(|s| {
                self.participants
                    .iter()
                    .find(|p| p.send.contains(&s.stream_id))
            })
    }
}

/// Where the text of the element being read goes.
#[derive(Debug, Clone, Copy)]
enum TextField {
    Name(usize),
    Aor(usize),
    Label(usize),
    Send(usize),
    Recv(usize),
    GroupRef,
}

/// One open element. Indices point into the participant and stream lists.
#[derive(Debug, Clone, Copy)]
enum Frame {
    Recording,
    Session,
    Participant(usize),
    NameId(usize),
    Stream(usize),
    /// `<participantstreamassoc>`; the index is the participant it names.
    StreamAssoc(usize),
    Text(TextField),
    /// Unknown or ignored element: its whole subtree is skipped.
    Other,
}

#[derive(Default)]
struct Builder {
    session_id: Option<String>,
    group_id: Option<String>,
    group_ref: Option<String>,
    participants: Vec<Participant>,
    streams: Vec<MetadataStream>,
}

impl Builder {
    fn participant(&mut self, id: String) -> Result<usize, MetadataError> {
        // Partial updates may repeat a participant; merge into the first one.
        if let Some(i) = self
            .participants
            .iter()
            .position(|p| p.participant_id == id)
        {
            return Ok(i);
        }
        if self.participants.len() >= MAX_METADATA_PARTICIPANTS {
            return Err(MetadataError::TooMany {
                what: "participants",
                limit: MAX_METADATA_PARTICIPANTS,
            });
        }
        self.participants.push(Participant {
            participant_id: id,
            aor: None,
            name: None,
            send: Vec::new(),
            recv: Vec::new(),
        });
        Ok(self.participants.len() - 1)
    }

    fn stream(&mut self, id: String) -> Result<usize, MetadataError> {
        if let Some(i) = self.streams.iter().position(|s| s.stream_id == id) {
            return Ok(i);
        }
        if self.streams.len() >= MAX_METADATA_STREAMS {
            return Err(MetadataError::TooMany {
                what: "streams",
                limit: MAX_METADATA_STREAMS,
            });
        }
        self.streams.push(MetadataStream {
            stream_id: id,
            session_id: None,
            label: None,
        });
        Ok(self.streams.len() - 1)
    }

    fn set_text(&mut self, field: TextField, text: &str) -> Result<(), MetadataError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        // Indices were handed out by `participant`/`stream`, so `get_mut` always finds them;
        // it is used anyway so that a mistake here cannot become a panic.
        match field {
            TextField::Name(i) => {
                if let Some(p) = self.participants.get_mut(i) {
                    p.name.get_or_insert_with(|| text.to_owned());
                }
            }
            TextField::Aor(i) => {
                if let Some(p) = self.participants.get_mut(i) {
                    p.aor.get_or_insert_with(|| text.to_owned());
                }
            }
            TextField::Label(i) => {
                if let Some(s) = self.streams.get_mut(i) {
                    s.label.get_or_insert_with(|| text.to_owned());
                }
            }
            TextField::Send(i) => {
                if let Some(p) = self.participants.get_mut(i) {
                    push_stream_ref(&mut p.send, text)?;
                }
            }
            TextField::Recv(i) => {
                if let Some(p) = self.participants.get_mut(i) {
                    push_stream_ref(&mut p.recv, text)?;
                }
            }
            TextField::GroupRef => {
                self.group_ref.get_or_insert_with(|| text.to_owned());
            }
        }
        Ok(())
    }

    fn finish(self) -> RecordingMetadata {
        RecordingMetadata {
            session_id: self.session_id,
            group_id: self.group_id.or(self.group_ref),
            participants: self.participants,
            streams: self.streams,
        }
    }
}

fn push_stream_ref(list: &mut Vec<String>, id: &str) -> Result<(), MetadataError> {
    if list.iter().any(|s| s == id) {
        return Ok(());
    }
    // A participant cannot send or receive more streams than a document may describe.
    if list.len() >= MAX_METADATA_STREAMS {
        return Err(MetadataError::TooMany {
            what: "stream associations for one participant",
            limit: MAX_METADATA_STREAMS,
        });
    }
    list.push(id.to_owned());
    Ok(())
}

/// Value of the first attribute whose local name is one of `names` (in order of preference),
/// unescaped and trimmed; empty values count as absent.
fn attr(e: &BytesStart<'_>, names: &[&str]) -> Result<Option<String>, MetadataError> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for a in e.attributes() {
        let a = a?;
        let key = a.key.local_name();
        if let Some(rank) = names.iter().position(|n| n.as_bytes() == key.as_ref()) {
            let v = a.normalized_value(XmlVersion::Implicit1_0)?;
            let v = v.trim();
            if !v.is_empty() {
                found.push((rank, v.to_owned()));
            }
        }
    }
    Ok(found
        .into_iter()
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, v)| v))
}

/// Resolve `&name;` / `&#N;` without any DTD: only the predefined entities exist.
fn resolve_ref(r: &BytesRef<'_>, out: &mut String) -> Result<(), MetadataError> {
    if let Some(c) = r.resolve_char_ref()? {
        out.push(c);
        return Ok(());
    }
    let name = r.decode()?;
    match resolve_predefined_entity(&name) {
        Some(s) => {
            out.push_str(s);
            Ok(())
        }
        None => Err(MetadataError::UnknownEntity(name.into_owned())),
    }
}

fn local_is(e: &BytesStart<'_>, name: &str) -> bool {
    // Case-insensitive: some SRCs write `nameId` or `nameid`.
    e.local_name()
        .as_ref()
        .eq_ignore_ascii_case(name.as_bytes())
}

/// Decide what a newly opened element is, given its parent.
fn open(
    b: &mut Builder,
    parent: Option<Frame>,
    e: &BytesStart<'_>,
) -> Result<Frame, MetadataError> {
    let frame = match parent {
        None => {
            if !local_is(e, "recording") {
                return Err(MetadataError::NotRecording);
            }
            Frame::Recording
        }
        Some(Frame::Recording) => {
            if local_is(e, "group") {
                if let Some(id) = attr(e, &["group_id", "id"])? {
                    b.group_id.get_or_insert(id);
                }
                Frame::Other
            } else if local_is(e, "session") {
                if let Some(id) = attr(e, &["session_id", "id"])? {
                    b.session_id.get_or_insert(id);
                }
                Frame::Session
            } else if local_is(e, "participant") {
                match attr(e, &["participant_id", "id"])? {
                    Some(id) => Frame::Participant(b.participant(id)?),
                    // Without an id nothing can refer to it; skip rather than fail the call.
                    None => Frame::Other,
                }
            } else if local_is(e, "stream") {
                match attr(e, &["stream_id", "id"])? {
                    Some(id) => {
                        let i = b.stream(id)?;
                        if let Some(sid) = attr(e, &["session_id", "session"])? {
                            if let Some(s) = b.streams.get_mut(i) {
                                s.session_id.get_or_insert(sid);
                            }
                        }
                        Frame::Stream(i)
                    }
                    None => Frame::Other,
                }
            } else if local_is(e, "participantstreamassoc") {
                match attr(e, &["participant_id", "id", "participant"])? {
                    Some(id) => Frame::StreamAssoc(b.participant(id)?),
                    None => Frame::Other,
                }
            } else {
                Frame::Other
            }
        }
        Some(Frame::Session) if local_is(e, "group-ref") => Frame::Text(TextField::GroupRef),
        Some(Frame::Participant(i)) => {
            if local_is(e, "nameID") {
                if let Some(aor) = attr(e, &["aor"])? {
                    if let Some(p) = b.participants.get_mut(i) {
                        p.aor.get_or_insert(aor);
                    }
                }
                Frame::NameId(i)
            } else if local_is(e, "name") {
                Frame::Text(TextField::Name(i))
            } else if local_is(e, "aor") {
                Frame::Text(TextField::Aor(i))
            } else if local_is(e, "send") {
                Frame::Text(TextField::Send(i))
            } else if local_is(e, "recv") {
                Frame::Text(TextField::Recv(i))
            } else {
                Frame::Other
            }
        }
        Some(Frame::NameId(i)) if local_is(e, "name") => Frame::Text(TextField::Name(i)),
        Some(Frame::Stream(i)) if local_is(e, "label") => Frame::Text(TextField::Label(i)),
        Some(Frame::StreamAssoc(i)) => {
            if local_is(e, "send") {
                Frame::Text(TextField::Send(i))
            } else if local_is(e, "recv") {
                Frame::Text(TextField::Recv(i))
            } else {
                Frame::Other
            }
        }
        Some(_) => Frame::Other,
    };
    Ok(frame)
}

/// Parse an RFC 7865 recording metadata document.
pub fn parse_metadata(xml: &[u8]) -> Result<RecordingMetadata, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge(xml.len()));
    }
    // RFC 7865 metadata is UTF-8; checking it all up front also covers text in skipped
    // elements, which is never decoded below.
    if let Err(e) = std::str::from_utf8(xml) {
        return Err(MetadataError::NotXml(e.to_string()));
    }
    let mut reader = Reader::from_reader(xml);
    let cfg = reader.config_mut();
    // One code path for `<x/>` and `<x></x>`.
    cfg.expand_empty_elements = true;
    cfg.check_end_names = true;
    cfg.allow_dangling_amp = false;

    let mut b = Builder::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut text = String::new();
    let mut root_done = false;

    loop {
        match reader.read_event()? {
            Event::Start(e) => {
                if root_done {
                    return Err(MetadataError::NotXml(
                        "content after the root element".into(),
                    ));
                }
                if stack.len() >= MAX_METADATA_DEPTH {
                    return Err(MetadataError::TooDeep);
                }
                let frame = open(&mut b, stack.last().copied(), &e)?;
                if matches!(frame, Frame::Text(_)) {
                    text.clear();
                }
                stack.push(frame);
            }
            Event::End(_) => {
                // check_end_names guarantees a matching Start, so the stack is not empty;
                // an empty one is still reported rather than trusted.
                let Some(frame) = stack.pop() else {
                    return Err(MetadataError::NotXml("unmatched end tag".into()));
                };
                if let Frame::Text(field) = frame {
                    b.set_text(field, &text)?;
                    text.clear();
                }
                if stack.is_empty() {
                    root_done = true;
                }
            }
            Event::Text(t) => {
                if let Some(Frame::Text(_)) = stack.last() {
                    text.push_str(&t.xml10_content()?);
                } else if stack.is_empty() && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(MetadataError::NotXml(
                        "text outside the root element".into(),
                    ));
                }
            }
            Event::GeneralRef(r) => {
                // Resolve even where the text is unused, so a bad entity is always an error.
                let mut s = String::new();
                resolve_ref(&r, &mut s)?;
                if stack.is_empty() {
                    return Err(MetadataError::NotXml(
                        "text outside the root element".into(),
                    ));
                }
                if let Some(Frame::Text(_)) = stack.last() {
                    text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(Frame::Text(_)) = stack.last() {
                    text.push_str(&c.xml10_content()?);
                }
            }
            Event::DocType(_) => return Err(MetadataError::Doctype),
            Event::Empty(_) => {
                // expand_empty_elements turns these into Start + End.
                return Err(MetadataError::NotXml("unexpected empty element".into()));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(MetadataError::NotXml(
            "document ends inside an element".into(),
        ));
    }
    if !root_done {
        return Err(MetadataError::NotXml("no root element".into()));
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

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
                },
                Participant {
                    participant_id: "zSfPoSvdSDCmU3A3TRDxAw==".into(),
                    aor: Some("sip:bob@example.net".into()),
                    name: Some("Bob".into()),
                    send: vec!["i1Pz3to5hGk8fuXl+PbwCw==".into()],
                    recv: vec!["UAAMm5GRQKSCMVvLyl4rFw==".into()],
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
        let bom =
            ok("\u{feff}<?xml version='1.0'?><recording><session session_id='b'/></recording>");
        assert_eq!(bom.session_id.as_deref(), Some("b"));
        assert_eq!(
            ok("<recording/>"),
            RecordingMetadata {
                session_id: None,
                group_id: None,
                participants: vec![],
                streams: vec![],
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
        let seeds = [RFC_EXAMPLE.as_bytes(), LEGACY.as_bytes()];
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
                let _ = m.participant_for_label("1");
            }
        }
        // The loop should explore both sides: many mutants stay valid, many break.
        assert!(parsed > 100 && parsed < 3900, "parsed {parsed} of 4000");
    }
}
