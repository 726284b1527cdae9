//! The metadata parser: one pass over quick-xml events with a stack of open elements.

use super::{
    BroadWorksMetadata, DataMode, MAX_METADATA_BYTES, MAX_METADATA_DEPTH,
    MAX_METADATA_PARTICIPANTS, MAX_METADATA_STREAMS, MAX_METADATA_UNKNOWN, MetadataError,
    MetadataStream, Participant, RecordingMetadata,
};
use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, BytesText, Event};

/// A field of BroadWorks' `broadWorksRecordingMetadata`.
#[derive(Debug, Clone, Copy)]
enum BwField {
    ExtTrackingId,
    ServiceProviderId,
    GroupId,
    UserId,
    CallId,
    CallingPartyNumber,
    CalledPartyNumber,
    RecordingType,
    /// `<callType>` text (its child element names the type otherwise).
    CallType,
}

/// Where the text of the element being read goes.
#[derive(Debug, Clone, Copy)]
enum TextField {
    Name(usize),
    Aor(usize),
    Label(usize),
    Send(usize),
    Recv(usize),
    AssociateTime(usize),
    DisassociateTime(usize),
    GroupRef,
    DataMode,
    BroadWorks(BwField),
}

/// One open element. Indices point into the participant and stream lists.
#[derive(Debug, Clone, Copy)]
enum Frame {
    Root,
    Session,
    Participant(usize),
    NameId(usize),
    Stream(usize),
    /// `<participantstreamassoc>`; the index is the participant it names.
    StreamAssoc(usize),
    /// `<participantsessionassoc>`; the index is the participant it names.
    SessionAssoc(usize),
    /// `<extensiondata>`.
    Extension,
    BroadWorks,
    /// `<origCall>` / `<termCall>` inside BroadWorks' `<callType>`.
    BroadWorksCall,
    Text(TextField),
    /// An element the parser does not interpret, kept raw; the byte offset where it starts.
    Raw(usize),
    /// Ignored element: its whole subtree is skipped.
    Other,
}

#[derive(Default)]
struct Builder {
    data_mode: Option<DataMode>,
    session_id: Option<String>,
    group_id: Option<String>,
    group_ref: Option<String>,
    participants: Vec<Participant>,
    streams: Vec<MetadataStream>,
    broadworks: Option<BroadWorksMetadata>,
    unknown: Vec<String>,
    /// Prefix of the root element: child elements with another prefix are vendor data.
    root_prefix: Vec<u8>,
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
            ..Participant::default()
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

    fn keep_raw(&mut self, xml: &[u8]) {
        // Beyond the bound the document still parses; only the copy is dropped.
        if self.unknown.len() < MAX_METADATA_UNKNOWN {
            self.unknown.push(String::from_utf8_lossy(xml).into_owned());
        }
    }

    fn set_text(&mut self, field: TextField, text: &str) -> Result<(), MetadataError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let first = |slot: &mut Option<String>| {
            slot.get_or_insert_with(|| text.to_owned());
        };
        // Indices were handed out by `participant`/`stream`, so `get_mut` always finds them;
        // it is used anyway so that a mistake here cannot become a panic.
        let participant = self.participants.get_mut(match field {
            TextField::Name(i)
            | TextField::Aor(i)
            | TextField::Send(i)
            | TextField::Recv(i)
            | TextField::AssociateTime(i)
            | TextField::DisassociateTime(i) => i,
            _ => usize::MAX,
        });
        match (field, participant) {
            (TextField::Name(_), Some(p)) => first(&mut p.name),
            (TextField::Aor(_), Some(p)) => first(&mut p.aor),
            (TextField::AssociateTime(_), Some(p)) => first(&mut p.associate_time),
            (TextField::DisassociateTime(_), Some(p)) => first(&mut p.disassociate_time),
            (TextField::Send(_), Some(p)) => {
                p.streams_stated = true;
                push_stream_ref(&mut p.send, text)?;
            }
            (TextField::Recv(_), Some(p)) => {
                p.streams_stated = true;
                push_stream_ref(&mut p.recv, text)?;
            }
            (TextField::Label(i), _) => {
                if let Some(s) = self.streams.get_mut(i) {
                    first(&mut s.label);
                }
            }
            (TextField::GroupRef, _) => first(&mut self.group_ref),
            (TextField::DataMode, _) => {
                self.data_mode = match text.to_ascii_lowercase().as_str() {
                    "partial" => Some(DataMode::Partial),
                    "complete" => Some(DataMode::Complete),
                    _ => self.data_mode,
                };
            }
            (TextField::BroadWorks(f), _) => self.set_broadworks(f, text),
            _ => {}
        }
        Ok(())
    }

    fn set_broadworks(&mut self, field: BwField, text: &str) {
        let bw = self.broadworks.get_or_insert_with(Default::default);
        let slot = match field {
            BwField::ExtTrackingId => &mut bw.ext_tracking_id,
            BwField::ServiceProviderId => &mut bw.service_provider_id,
            BwField::GroupId => &mut bw.group_id,
            BwField::UserId => &mut bw.user_id,
            BwField::CallId => &mut bw.call_id,
            BwField::CallingPartyNumber => &mut bw.calling_party_number,
            BwField::CalledPartyNumber => &mut bw.called_party_number,
            BwField::RecordingType => &mut bw.recording_type,
            BwField::CallType => &mut bw.call_type,
        };
        slot.get_or_insert_with(|| text.to_owned());
    }

    fn finish(self) -> RecordingMetadata {
        RecordingMetadata {
            data_mode: self.data_mode,
            session_id: self.session_id,
            group_id: self.group_id.or(self.group_ref),
            participants: self.participants,
            streams: self.streams,
            broadworks: self.broadworks,
            unknown_elements: self.unknown,
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

/// Top-level elements that are understood but carry nothing the recording keeps.
const IGNORED_TOP_LEVEL: &[&str] = &["recording", "sessionrecordingassoc"];

fn prefix_of<'a>(e: &'a BytesStart<'_>) -> &'a [u8] {
    e.name().prefix().map(|p| p.into_inner()).unwrap_or(b"")
}

/// A child of a known element in another namespace prefix than the root: vendor data.
fn foreign(b: &Builder, e: &BytesStart<'_>) -> bool {
    prefix_of(e) != b.root_prefix.as_slice() && prefix_of(e) != b"xml"
}

fn open_root_child(b: &mut Builder, e: &BytesStart<'_>) -> Result<Frame, MetadataError> {
    let frame = if local_is(e, "group") {
        if let Some(id) = attr(e, &["group_id", "id"])? {
            b.group_id.get_or_insert(id);
        }
        Frame::Other
    } else if local_is(e, "session") {
        if let Some(id) = attr(e, &["session_id", "id"])? {
            b.session_id.get_or_insert(id);
        }
        if let Some(g) = attr(e, &["group", "group_id"])? {
            b.group_ref.get_or_insert(g);
        }
        Frame::Session
    } else if local_is(e, "participant") {
        match attr(e, &["participant_id", "id"])? {
            Some(id) => Frame::Participant(b.participant(id)?),
            // Without an id nothing can refer to it; skip rather than fail the call.
            None => Frame::Other,
        }
    } else if local_is(e, "stream") {
        open_stream(b, e)?
    } else if local_is(e, "participantstreamassoc") {
        match attr(e, &["participant_id", "id", "participant"])? {
            Some(id) => {
                let i = b.participant(id)?;
                if let Some(p) = b.participants.get_mut(i) {
                    // An association element states the streams, even an empty one.
                    p.streams_stated = true;
                }
                Frame::StreamAssoc(i)
            }
            None => Frame::Other,
        }
    } else if local_is(e, "participantsessionassoc") {
        match attr(e, &["participant_id", "participant", "id"])? {
            Some(id) => Frame::SessionAssoc(b.participant(id)?),
            None => Frame::Other,
        }
    } else if local_is(e, "dataMode") {
        Frame::Text(TextField::DataMode)
    } else if local_is(e, "extensiondata") {
        Frame::Extension
    } else if IGNORED_TOP_LEVEL.iter().any(|n| local_is(e, n)) {
        Frame::Other
    } else {
        Frame::Raw(0)
    };
    Ok(frame)
}

fn open_stream(b: &mut Builder, e: &BytesStart<'_>) -> Result<Frame, MetadataError> {
    let Some(id) = attr(e, &["stream_id", "id", "streamid"])? else {
        return Ok(Frame::Other);
    };
    let i = b.stream(id)?;
    let session = attr(e, &["session_id", "session"])?;
    let label = attr(e, &["label"])?;
    if let Some(s) = b.streams.get_mut(i) {
        if let Some(sid) = session {
            s.session_id.get_or_insert(sid);
        }
        if let Some(l) = label {
            s.label.get_or_insert(l);
        }
    }
    Ok(Frame::Stream(i))
}

fn open_participant_child(
    b: &mut Builder,
    i: usize,
    e: &BytesStart<'_>,
) -> Result<Frame, MetadataError> {
    let frame = if local_is(e, "nameID") {
        if let Some(aor) = attr(e, &["aor"])?
            && let Some(p) = b.participants.get_mut(i)
        {
            p.aor.get_or_insert(aor);
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
    } else if local_is(e, "associate-time") {
        Frame::Text(TextField::AssociateTime(i))
    } else if local_is(e, "disassociate-time") {
        Frame::Text(TextField::DisassociateTime(i))
    } else if local_is(e, "extensiondata") {
        Frame::Extension
    } else if foreign(b, e) {
        Frame::Raw(0)
    } else {
        Frame::Other
    };
    Ok(frame)
}

fn open_broadworks_child(e: &BytesStart<'_>) -> Frame {
    const FIELDS: &[(&str, BwField)] = &[
        ("extTrackingID", BwField::ExtTrackingId),
        ("serviceProviderID", BwField::ServiceProviderId),
        ("groupID", BwField::GroupId),
        ("userID", BwField::UserId),
        ("callID", BwField::CallId),
        ("callType", BwField::CallType),
        ("recordingType", BwField::RecordingType),
        // Older releases put the numbers directly inside the extension.
        ("callingPartyNumber", BwField::CallingPartyNumber),
        ("calledPartyNumber", BwField::CalledPartyNumber),
    ];
    FIELDS
        .iter()
        .find(|(name, _)| local_is(e, name))
        .map_or(Frame::Other, |(_, f)| {
            Frame::Text(TextField::BroadWorks(*f))
        })
}

/// Decide what a newly opened element is, given its parent.
fn open(
    b: &mut Builder,
    parent: Option<Frame>,
    e: &BytesStart<'_>,
) -> Result<Frame, MetadataError> {
    let frame = match parent {
        None => {
            if !(local_is(e, "recording") || local_is(e, "recording_metadata")) {
                return Err(MetadataError::NotRecording);
            }
            b.root_prefix = prefix_of(e).to_vec();
            Frame::Root
        }
        Some(Frame::Root) => open_root_child(b, e)?,
        Some(Frame::Session) if local_is(e, "group-ref") => Frame::Text(TextField::GroupRef),
        Some(Frame::Session) if local_is(e, "extensiondata") => Frame::Extension,
        Some(Frame::Session | Frame::Stream(_)) if foreign(b, e) => Frame::Raw(0),
        Some(Frame::Participant(i)) => open_participant_child(b, i, e)?,
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
        Some(Frame::SessionAssoc(i)) => {
            if local_is(e, "associate-time") {
                Frame::Text(TextField::AssociateTime(i))
            } else if local_is(e, "disassociate-time") {
                Frame::Text(TextField::DisassociateTime(i))
            } else {
                Frame::Other
            }
        }
        Some(Frame::Extension) if local_is(e, "broadWorksRecordingMetadata") => Frame::BroadWorks,
        Some(Frame::Extension) => Frame::Raw(0),
        Some(Frame::BroadWorks) => open_broadworks_child(e),
        // BroadWorks: `<send><id>STREAM</id></send>`.
        Some(Frame::Text(field @ (TextField::Send(_) | TextField::Recv(_))))
            if local_is(e, "id") =>
        {
            Frame::Text(field)
        }
        Some(Frame::Text(TextField::BroadWorks(BwField::CallType))) => {
            let kind = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            b.set_broadworks(BwField::CallType, &kind);
            Frame::BroadWorksCall
        }
        Some(Frame::BroadWorksCall) => {
            if local_is(e, "callingPartyNumber") {
                Frame::Text(TextField::BroadWorks(BwField::CallingPartyNumber))
            } else if local_is(e, "calledPartyNumber") {
                Frame::Text(TextField::BroadWorks(BwField::CalledPartyNumber))
            } else {
                Frame::Other
            }
        }
        Some(_) => Frame::Other,
    };
    Ok(frame)
}

/// Parse a recording metadata document (RFC 7865 and the dialects in the module comment).
pub fn parse_metadata(xml: &[u8]) -> Result<RecordingMetadata, MetadataError> {
    let xml = checked_input(xml)?;
    let mut reader = Reader::from_reader(xml);
    let cfg = reader.config_mut();
    // One code path for `<x/>` and `<x></x>`.
    cfg.expand_empty_elements = true;
    cfg.check_end_names = true;
    cfg.allow_dangling_amp = false;

    let mut walk = Walk::default();
    loop {
        // Where the next event starts: the first byte of a raw-kept element.
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match reader.read_event()? {
            Event::Start(e) => walk.start(at, &e)?,
            Event::End(_) => {
                let end = usize::try_from(reader.buffer_position()).unwrap_or(xml.len());
                walk.end(xml, end)?;
            }
            Event::Text(t) => walk.text(&t)?,
            Event::GeneralRef(r) => walk.general_ref(&r)?,
            Event::CData(c) => {
                if walk.in_text_field() {
                    walk.text.push_str(&c.xml10_content()?);
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
    walk.finish()
}

/// The size and encoding checks made before any parsing; returns the document without a BOM.
fn checked_input(xml: &[u8]) -> Result<&[u8], MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge(xml.len()));
    }
    // RFC 7865 metadata is UTF-8; checking it all up front also covers text in skipped
    // elements, which is never decoded below.
    if let Err(e) = std::str::from_utf8(xml) {
        return Err(MetadataError::NotXml(e.to_string()));
    }
    // quick-xml skips a byte order mark without counting it in its positions; without it
    // here, the offsets of raw-kept elements would be three bytes off.
    Ok(xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml))
}

/// One document's walk: the metadata built so far, the open elements, the text of the
/// innermost text field, and whether the root element has closed.
#[derive(Default)]
struct Walk {
    b: Builder,
    stack: Vec<Frame>,
    text: String,
    root_done: bool,
}

impl Walk {
    fn in_text_field(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Text(_)))
    }

    /// A start tag at byte `at`.
    fn start(&mut self, at: usize, e: &BytesStart<'_>) -> Result<(), MetadataError> {
        if self.root_done {
            return Err(MetadataError::NotXml(
                "content after the root element".into(),
            ));
        }
        if self.stack.len() >= MAX_METADATA_DEPTH {
            return Err(MetadataError::TooDeep);
        }
        let frame = match open(&mut self.b, self.stack.last().copied(), e)? {
            Frame::Raw(_) => Frame::Raw(at),
            Frame::Text(f) => {
                self.text.clear();
                Frame::Text(f)
            }
            other => other,
        };
        self.stack.push(frame);
        Ok(())
    }

    /// An end tag that ends at byte `end` of `xml`.
    fn end(&mut self, xml: &[u8], end: usize) -> Result<(), MetadataError> {
        // check_end_names guarantees a matching Start, so the stack is not empty;
        // an empty one is still reported rather than trusted.
        let Some(frame) = self.stack.pop() else {
            return Err(MetadataError::NotXml("unmatched end tag".into()));
        };
        match frame {
            Frame::Text(field) => {
                self.b.set_text(field, &self.text)?;
                self.text.clear();
            }
            Frame::Raw(start) => self.b.keep_raw(xml.get(start..end).unwrap_or_default()),
            _ => {}
        }
        if self.stack.is_empty() {
            self.root_done = true;
        }
        Ok(())
    }

    fn text(&mut self, t: &BytesText<'_>) -> Result<(), MetadataError> {
        if self.in_text_field() {
            self.text.push_str(&t.xml10_content()?);
        } else if self.stack.is_empty() && !t.iter().all(u8::is_ascii_whitespace) {
            return Err(MetadataError::NotXml(
                "text outside the root element".into(),
            ));
        }
        Ok(())
    }

    fn general_ref(&mut self, r: &BytesRef<'_>) -> Result<(), MetadataError> {
        // Resolve even where the text is unused, so a bad entity is always an error.
        let mut s = String::new();
        resolve_ref(r, &mut s)?;
        if self.stack.is_empty() {
            return Err(MetadataError::NotXml(
                "text outside the root element".into(),
            ));
        }
        if self.in_text_field() {
            self.text.push_str(&s);
        }
        Ok(())
    }

    fn finish(self) -> Result<RecordingMetadata, MetadataError> {
        if !self.stack.is_empty() {
            return Err(MetadataError::NotXml(
                "document ends inside an element".into(),
            ));
        }
        if !self.root_done {
            return Err(MetadataError::NotXml("no root element".into()));
        }
        Ok(self.b.finish())
    }
}
