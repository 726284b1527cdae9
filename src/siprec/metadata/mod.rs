//! RFC 7865 recording metadata (`application/rs-metadata+xml`) in the dialects deployed SRCs
//! send, and how an update (RFC 7866 §6: complete or partial) changes what is known.
//!
//! Read: the RFC namespace `urn:ietf:params:xml:ns:recording:1`, the draft-era
//! `urn:ietf:params:xml:ns:siprec` with its `id`/`session` attributes, and BroadWorks'
//! `<recording_metadata>` root with `<send><id>…</id></send>` and its
//! `broadWorksRecordingMetadata` extension. Elements are matched by local name only: senders
//! differ in prefixes and some get the namespace URI wrong. Elements the parser does not
//! interpret are kept raw (bounded) instead of failing the document.
//!
//! The input comes from the network, so it is bounded: size, depth, participant and stream
//! counts. No DTD is accepted and no entity beyond the five predefined ones and character
//! references is resolved, so entity expansion attacks have nothing to work with.

mod merge;
mod parse;

pub use parse::parse_metadata;

/// Largest metadata document accepted. Conference metadata is big, but not this big.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Most participants kept from one document.
pub const MAX_METADATA_PARTICIPANTS: usize = 64;
/// Most streams kept from one document (also bounds each participant's send/recv lists).
pub const MAX_METADATA_STREAMS: usize = 64;
/// Deepest element nesting accepted; real metadata is four levels deep.
pub const MAX_METADATA_DEPTH: usize = 32;
/// Most uninterpreted elements kept raw from one document.
pub const MAX_METADATA_UNKNOWN: usize = 32;

/// RFC 7866 §6.2 `dataMode`: a complete document replaces what is known, a partial one
/// changes only what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataMode {
    Complete,
    Partial,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordingMetadata {
    /// `<dataMode>`; absent means complete.
    pub data_mode: Option<DataMode>,
    /// `<session session_id="...">` (legacy: `id`) of the first session element.
    pub session_id: Option<String>,
    /// `<group group_id="...">` (legacy: `id`), else the session's `<group-ref>`.
    pub group_id: Option<String>,
    pub participants: Vec<Participant>,
    pub streams: Vec<MetadataStream>,
    /// BroadWorks' `<extensiondata><broadWorksRecordingMetadata>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadworks: Option<BroadWorksMetadata>,
    /// Elements the parser does not interpret (vendor extensions, unknown namespaces), as
    /// received.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_elements: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Participant {
    pub participant_id: String,
    /// `<nameID aor="...">` (legacy and BroadWorks: `<aor>` text).
    pub aor: Option<String>,
    /// `<name>` display name.
    pub name: Option<String>,
    /// Stream ids this participant sends (`<participantstreamassoc><send>`, legacy: `<send>`
    /// directly inside `<participant>`, BroadWorks: `<send><id>`).
    pub send: Vec<String>,
    /// Stream ids this participant receives.
    pub recv: Vec<String>,
    /// `<associate-time>` (of `<participantsessionassoc>` or the participant itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub associate_time: Option<String>,
    /// `<disassociate-time>`: the participant has left the recorded session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disassociate_time: Option<String>,
    /// Whether this document stated the participant's stream associations (a partial
    /// update that does not keeps the old ones).
    #[serde(skip)]
    pub streams_stated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetadataStream {
    pub stream_id: String,
    pub session_id: Option<String>,
    /// `<label>`: the SDP `a=label` of the media stream it describes.
    pub label: Option<String>,
}

/// What BroadWorks puts in `broadWorksRecordingMetadata` (Call Recording Interface Guide).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BroadWorksMetadata {
    pub ext_tracking_id: Option<String>,
    pub service_provider_id: Option<String>,
    pub group_id: Option<String>,
    pub user_id: Option<String>,
    pub call_id: Option<String>,
    /// The `<callType>` child: `origCall`, `termCall`, … (or its text).
    pub call_type: Option<String>,
    pub calling_party_number: Option<String>,
    pub called_party_number: Option<String>,
    pub recording_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata is {0} bytes, above the {MAX_METADATA_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("metadata is not well-formed XML: {0}")]
    NotXml(String),
    #[error("metadata root element is neither <recording> nor <recording_metadata>")]
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

impl Participant {
    /// How the participant is named to people: AOR, else display name, else its id.
    pub fn identity(&self) -> &str {
        self.aor
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(&self.participant_id)
    }

    /// Still in the recorded session (no `disassociate-time`).
    pub fn is_present(&self) -> bool {
        self.disassociate_time.is_none()
    }
}

impl RecordingMetadata {
    /// The first present participant that sends the stream with this SDP a=label, if any.
    pub fn participant_for_label(&self, label: &str) -> Option<&Participant> {
        self.senders_for_label(label).into_iter().next()
    }

    /// Every present participant that sends the stream with this SDP a=label, in document
    /// order (BroadWorks describes a conference leg as one stream several parties send).
    pub fn senders_for_label(&self, label: &str) -> Vec<&Participant> {
        let label = label.trim();
        let ids: Vec<&str> = self
            .streams
            .iter()
            .filter(|s| s.label.as_deref() == Some(label))
            .map(|s| s.stream_id.as_str())
            .collect();
        self.participants
            .iter()
            .filter(|p| p.is_present() && p.send.iter().any(|s| ids.contains(&s.as_str())))
            .collect()
    }
}

#[cfg(test)]
mod tests;
