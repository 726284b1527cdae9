//! Who took part in a SIPREC recording and when (recording.json `participants` and
//! `metadata_updates`): each metadata document received moves the history on. Pure: the
//! caller supplies the wall-clock time.

use crate::siprec::{DataMode, MetadataError, RecordingMetadata, parse_metadata};
use serde::Serialize;

/// One stay of a participant in the recorded session. A participant who leaves and comes
/// back has two entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantEntry {
    pub participant_id: String,
    pub aor: Option<String>,
    pub name: Option<String>,
    /// Stream ids the participant sends / receives (last known).
    pub send: Vec<String>,
    pub recv: Vec<String>,
    /// The metadata's `associate-time`, else when the document naming it arrived.
    pub joined_at: String,
    /// The metadata's `disassociate-time`, else when a document without it arrived, else
    /// the end of the recording. `None` while present.
    pub left_at: Option<String>,
}

/// One metadata document received inside the dialog (re-INVITE or UPDATE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataUpdate {
    pub received_at: String,
    /// The raw document, saved beside recording.json.
    pub file: String,
    pub data_mode: Option<DataMode>,
    /// Whether it could be read; an unreadable one changes nothing but is kept.
    pub applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Participant ids that joined / left with this document.
    pub joined: Vec<String>,
    pub left: Vec<String>,
    /// Participant ids still present whose stream associations changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams_changed: Vec<String>,
}

/// What one document changed, by participant id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryChanges {
    pub joined: Vec<String>,
    pub left: Vec<String>,
    pub streams_changed: Vec<String>,
}

/// The metadata as known now, and the history built from every document so far.
#[derive(Debug, Clone, Default)]
pub struct ParticipantHistory {
    current: Option<RecordingMetadata>,
    entries: Vec<ParticipantEntry>,
}

/// Parse a received document; an unreadable one is logged, never fatal.
pub fn read_metadata(recording_id: &str, raw: &[u8]) -> Result<RecordingMetadata, MetadataError> {
    parse_metadata(raw).inspect_err(|e| {
        // The call is still recorded; the raw text is kept beside recording.json.
        tracing::warn!(recording_id, error = %e, "unreadable SIPREC metadata");
    })
}

impl ParticipantHistory {
    pub fn current(&self) -> Option<&RecordingMetadata> {
        self.current.as_ref()
    }

    pub fn entries(&self) -> &[ParticipantEntry] {
        &self.entries
    }

    /// Take a readable document (the initial one or an update): complete replaces,
    /// partial merges.
    pub fn apply(&mut self, doc: RecordingMetadata, at: &str) -> HistoryChanges {
        match self.current.as_mut() {
            Some(current) => current.apply_update(doc),
            None => self.current = Some(doc),
        }
        let Some(current) = self.current.as_ref() else {
            return HistoryChanges::default();
        };
        let mut changes = HistoryChanges::default();
        for p in &current.participants {
            let open = self
                .entries
                .iter_mut()
                .find(|e| e.participant_id == p.participant_id && e.left_at.is_none());
            match (open, p.is_present()) {
                (Some(e), true) => {
                    if e.send != p.send || e.recv != p.recv {
                        changes.streams_changed.push(p.participant_id.clone());
                    }
                    e.aor.clone_from(&p.aor);
                    e.name.clone_from(&p.name);
                    e.send.clone_from(&p.send);
                    e.recv.clone_from(&p.recv);
                }
                (Some(e), false) => {
                    e.left_at = p.disassociate_time.clone().or_else(|| Some(at.to_string()));
                    changes.left.push(p.participant_id.clone());
                }
                (None, true) => {
                    self.entries.push(ParticipantEntry {
                        participant_id: p.participant_id.clone(),
                        aor: p.aor.clone(),
                        name: p.name.clone(),
                        send: p.send.clone(),
                        recv: p.recv.clone(),
                        joined_at: p.associate_time.clone().unwrap_or_else(|| at.to_string()),
                        left_at: None,
                    });
                    changes.joined.push(p.participant_id.clone());
                }
                (None, false) => {}
            }
        }
        // A complete document that no longer names a participant: it has left.
        for e in self.entries.iter_mut().filter(|e| e.left_at.is_none()) {
            if !current
                .participants
                .iter()
                .any(|p| p.participant_id == e.participant_id)
            {
                e.left_at = Some(at.to_string());
                changes.left.push(e.participant_id.clone());
            }
        }
        changes
    }

    /// The recording ended: whoever is still there leaves now.
    pub fn close(&mut self, at: &str) {
        for e in self.entries.iter_mut().filter(|e| e.left_at.is_none()) {
            e.left_at = Some(at.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = r#"<recording xmlns="urn:ietf:params:xml:ns:recording:1">
<participant participant_id="a"><nameID aor="sip:a@x"/></participant>
<participant participant_id="b"><nameID aor="sip:b@x"/></participant>
<participantsessionassoc participant_id="a"><associate-time>2026-01-01T10:00:00Z</associate-time></participantsessionassoc>
<participantstreamassoc participant_id="a"><send>s1</send></participantstreamassoc>
</recording>"#;

    fn doc(xml: &str) -> RecordingMetadata {
        parse_metadata(xml.as_bytes()).expect("test document parses")
    }

    #[test]
    fn joins_leaves_and_rejoins_are_a_history() {
        let mut h = ParticipantHistory::default();
        let c = h.apply(doc(INITIAL), "T0");
        assert_eq!((c.joined, c.left), (vec!["a".into(), "b".into()], vec![]));
        assert_eq!(
            h.entries()[0].joined_at,
            "2026-01-01T10:00:00Z",
            "metadata time wins"
        );
        assert_eq!(h.entries()[1].joined_at, "T0");
        assert_eq!(h.entries()[0].send, vec!["s1"]);

        // Partial: c joins, b leaves at a stated time.
        let partial = r#"<recording><datamode>partial</datamode>
<participant participant_id="c"><nameID aor="sip:c@x"/></participant>
<participantsessionassoc participant_id="b"><disassociate-time>T1-meta</disassociate-time></participantsessionassoc>
</recording>"#;
        let c = h.apply(doc(partial), "T1");
        assert_eq!((c.joined, c.left), (vec!["c".into()], vec!["b".into()]));
        assert!(c.streams_changed.is_empty());
        assert_eq!(h.entries()[0].send, vec!["s1"], "not restated: kept");

        // a now receives s2 as well.
        let assoc = r#"<recording><datamode>partial</datamode>
<participantstreamassoc participant_id="a"><send>s1</send><recv>s2</recv></participantstreamassoc>
</recording>"#;
        let c = h.apply(doc(assoc), "T1b");
        assert_eq!(c.streams_changed, vec!["a"]);
        assert_eq!(h.entries()[0].recv, vec!["s2"]);
        assert_eq!(h.entries()[1].left_at.as_deref(), Some("T1-meta"));

        // Complete without a: a leaves now; b comes back as a new stay.
        let complete = r#"<recording><datamode>complete</datamode>
<participant participant_id="b"/><participant participant_id="c"/></recording>"#;
        let c = h.apply(doc(complete), "T2");
        assert_eq!((c.joined, c.left), (vec!["b".into()], vec!["a".into()]));
        assert_eq!(h.entries()[0].left_at.as_deref(), Some("T2"));
        assert_eq!(h.entries().len(), 4);
        assert_eq!(h.entries()[3].participant_id, "b");
        assert_eq!(h.entries()[3].joined_at, "T2");

        h.close("T3");
        assert!(h.entries().iter().all(|e| e.left_at.is_some()));
        assert_eq!(h.entries()[2].left_at.as_deref(), Some("T3"));
    }

    #[test]
    fn unreadable_documents_are_errors_not_panics() {
        assert!(read_metadata("r", b"<recording><participant").is_err());
        assert!(read_metadata("r", b"\xff\xfe").is_err());
        assert!(read_metadata("r", INITIAL.as_bytes()).is_ok());
    }
}
