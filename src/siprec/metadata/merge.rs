//! RFC 7866 §6.2 metadata updates: a complete document replaces what is known, a partial
//! one adds and changes only what it names.

use super::{
    DataMode, MAX_METADATA_PARTICIPANTS, MAX_METADATA_STREAMS, MAX_METADATA_UNKNOWN,
    MetadataStream, Participant, RecordingMetadata,
};

impl RecordingMetadata {
    /// Apply a document received later in the dialog to this one.
    pub fn apply_update(&mut self, update: RecordingMetadata) {
        if update.data_mode == Some(DataMode::Partial) {
            self.merge(update);
        } else {
            *self = update;
        }
    }

    fn merge(&mut self, update: RecordingMetadata) {
        if update.session_id.is_some() {
            self.session_id = update.session_id;
        }
        if update.group_id.is_some() {
            self.group_id = update.group_id;
        }
        for p in update.participants {
            let full = self.participants.len() >= MAX_METADATA_PARTICIPANTS;
            match self
                .participants
                .iter_mut()
                .find(|old| old.participant_id == p.participant_id)
            {
                Some(old) => merge_participant(old, p),
                None if !full => self.participants.push(p),
                None => {}
            }
        }
        for s in update.streams {
            let full = self.streams.len() >= MAX_METADATA_STREAMS;
            match self
                .streams
                .iter_mut()
                .find(|old| old.stream_id == s.stream_id)
            {
                Some(old) => merge_stream(old, s),
                None if !full => self.streams.push(s),
                None => {}
            }
        }
        if update.broadworks.is_some() {
            self.broadworks = update.broadworks;
        }
        let room = MAX_METADATA_UNKNOWN.saturating_sub(self.unknown_elements.len());
        self.unknown_elements
            .extend(update.unknown_elements.into_iter().take(room));
    }
}

fn merge_participant(old: &mut Participant, new: Participant) {
    if new.aor.is_some() {
        old.aor = new.aor;
    }
    if new.name.is_some() {
        old.name = new.name;
    }
    if new.streams_stated {
        old.send = new.send;
        old.recv = new.recv;
        old.streams_stated = true;
    }
    if new.associate_time.is_some() {
        old.associate_time = new.associate_time;
        // Associated again after having left: present from now on.
        if new.disassociate_time.is_none() {
            old.disassociate_time = None;
        }
    }
    if new.disassociate_time.is_some() {
        old.disassociate_time = new.disassociate_time;
    }
}

fn merge_stream(old: &mut MetadataStream, new: MetadataStream) {
    if new.session_id.is_some() {
        old.session_id = new.session_id;
    }
    if new.label.is_some() {
        old.label = new.label;
    }
}
