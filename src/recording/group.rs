//! Recording groups: recordings of one call that arrive as separate dialogs (Cisco BiB near
//! and far end, Genesys one session per party) share a `group_id`. The table is keyed by
//! the vendor correlation id (`sip::correlation::correlation_id`); a group exists while at
//! least one of its recordings runs. Pure: the caller supplies new group ids.

use std::collections::HashMap;

/// A recording's place in its group, as recording.json, the API and the CDRs show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    pub group_id: String,
    /// The vendor value that correlated it (`cisco-bib:…`, `genesys:<calluuid>`).
    pub correlation_id: String,
}

#[derive(Debug)]
struct Group {
    group_id: String,
    members: Vec<String>,
}

#[derive(Debug, Default)]
pub struct RecordingGroups {
    by_correlation: HashMap<String, Group>,
    /// recording id → correlation id, so that leaving needs only the recording id.
    by_recording: HashMap<String, String>,
}

impl RecordingGroups {
    /// Put a recording into the group of its correlation id, creating the group (with the
    /// id `new_group_id` makes) when none runs.
    pub fn join(
        &mut self,
        correlation_id: &str,
        recording_id: &str,
        new_group_id: impl FnOnce() -> String,
    ) -> GroupMembership {
        let group = self
            .by_correlation
            .entry(correlation_id.to_string())
            .or_insert_with(|| Group {
                group_id: new_group_id(),
                members: Vec::new(),
            });
        if !group.members.iter().any(|m| m == recording_id) {
            group.members.push(recording_id.to_string());
        }
        self.by_recording
            .insert(recording_id.to_string(), correlation_id.to_string());
        GroupMembership {
            group_id: group.group_id.clone(),
            correlation_id: correlation_id.to_string(),
        }
    }

    /// The recording ended or was discarded; the group goes with its last member.
    pub fn leave(&mut self, recording_id: &str) {
        let Some(correlation_id) = self.by_recording.remove(recording_id) else {
            return;
        };
        if let Some(group) = self.by_correlation.get_mut(&correlation_id) {
            group.members.retain(|m| m != recording_id);
            if group.members.is_empty() {
                self.by_correlation.remove(&correlation_id);
            }
        }
    }

    /// Recordings running in the group of this correlation id.
    pub fn members(&self, correlation_id: &str) -> &[String] {
        self.by_correlation
            .get(correlation_id)
            .map_or(&[], |g| g.members.as_slice())
    }

    pub fn len(&self) -> usize {
        self.by_correlation.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_correlation.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_share_a_group_until_the_last_leaves() {
        let mut groups = RecordingGroups::default();
        let mut made = 0;
        let mut next = || {
            made += 1;
            format!("g{made}")
        };
        let a = groups.join("cisco-bib::ci2:ci1", "rec-a", &mut next);
        let b = groups.join("cisco-bib::ci2:ci1", "rec-b", &mut next);
        let other = groups.join("genesys:CU", "rec-c", &mut next);
        assert_eq!(a.group_id, "g1");
        assert_eq!(b.group_id, "g1");
        assert_eq!(other.group_id, "g2");
        assert_eq!(groups.members("cisco-bib::ci2:ci1"), ["rec-a", "rec-b"]);
        assert_eq!(groups.len(), 2);

        groups.leave("rec-a");
        assert_eq!(groups.members("cisco-bib::ci2:ci1"), ["rec-b"]);
        // A late member still finds the running group.
        assert_eq!(
            groups
                .join("cisco-bib::ci2:ci1", "rec-d", &mut next)
                .group_id,
            "g1"
        );
        groups.leave("rec-b");
        groups.leave("rec-d");
        groups.leave("rec-d"); // twice: nothing happens
        groups.leave("unknown");
        assert!(groups.members("cisco-bib::ci2:ci1").is_empty());
        groups.leave("rec-c");
        assert!(groups.is_empty(), "entries leave with the last recording");
        // The same call recorded again later is a new group.
        assert_eq!(groups.join("genesys:CU", "rec-e", &mut next).group_id, "g3");
    }
}
