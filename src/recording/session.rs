//! The recording session state machine (active / paused / ended) and the recording.json
//! document it maintains. Pure: the caller supplies wall-clock times.

use crate::recording::EndReason;
use crate::sdp::{Direction, MediaKind, MediaSession};
use crate::sip::classify::{RecordingKind, RecordingRequest};
use crate::siprec::{Participant, RecordingMetadata, parse_metadata};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    Active,
    Paused,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    pub started_at: String,
    pub ended_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderEntry {
    pub name: String,
    pub value: String,
}

/// One negotiated audio stream as recording.json shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEntry {
    /// Position among the recording's audio streams (0 = first m= audio line).
    pub index: usize,
    /// Index of the m= line in the offer.
    pub sdp_index: usize,
    pub label: Option<String>,
    /// Who this stream carries: `dn`/`otherDN` value for Genesys, SIPREC label otherwise.
    pub party: Option<String>,
    pub codec: Option<String>,
    pub payload_type: Option<u8>,
    pub clock_rate: Option<u32>,
    /// Sample rate of the decoded audio (G.722: 16 kHz although its RTP clock is 8 kHz).
    pub sample_rate: Option<u32>,
    pub direction: Direction,
    pub local_port: u16,
    pub remote: Option<String>,
    /// The mono WAV file of this stream, relative to the recording directory.
    pub file: Option<String>,
    /// Audio duration of `file` (set when the file is final).
    pub duration_seconds: Option<f64>,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packets_duplicate: u64,
    pub packets_late: u64,
    pub jitter_ms: f64,
    pub ssrcs: Vec<u32>,
    /// Packets of payload types the recorder cannot decode, by payload type: their time is
    /// silence in the file. Empty when every packet was decoded.
    pub packets_undecodable: BTreeMap<String, u64>,
    /// Audio packets received per codec. `codec`/`payload_type` name the one most of the
    /// audio came in once packets arrived (an SRC may send another codec of the answer than
    /// the first, or switch), the first answered one before.
    pub codecs_received: BTreeMap<String, u64>,
    /// Whether the stream arrives as SRTP, and with which suite (never the key).
    pub encrypted: bool,
    pub srtp_suite: Option<String>,
    /// SRTP packets dropped because they failed authentication, and replays rejected.
    pub srtp_auth_failures: u64,
    pub srtp_replays: u64,
}

/// One RFC 4733 key press.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DtmfEntry {
    pub stream: usize,
    pub digit: String,
    pub at_seconds: f64,
    pub duration_ms: u32,
}

/// recording.json (SPEC §5), keys in snake_case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingDocument {
    pub recording_id: String,
    /// Id of the recording SIP leg in the CDRs (`callLeg*` records).
    pub call_leg_id: String,
    pub kind: RecordingKind,
    pub record_id: Option<String>,
    pub calluuid: Option<String>,
    pub dn: Option<String>,
    pub other_dn: Option<String>,
    pub record_dn: Option<String>,
    pub uri_params: BTreeMap<String, String>,
    pub sip_call_id: String,
    pub from: String,
    pub to: String,
    pub request_uri: String,
    pub sip_headers: Vec<HeaderEntry>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub state: RecordingState,
    pub end_reason: Option<EndReason>,
    pub pauses: Vec<Pause>,
    pub streams: Vec<StreamEntry>,
    /// The stereo WAV (left = first stream, right = second) when there are two streams.
    pub mixed_file: Option<String>,
    pub mixed_duration_seconds: Option<f64>,
    pub dtmf: Vec<DtmfEntry>,
    /// SIPREC: the participants of the recorded session (RFC 7865 metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<Participant>>,
    /// SIPREC: the recorded session's id from the metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siprec_session_id: Option<String>,
    /// SIPREC: the raw metadata as received, saved beside recording.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_file: Option<String>,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    // Millisecond precision, UTC, `Z` suffix.
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub struct RecordingSession {
    doc: RecordingDocument,
    metadata: Option<RecordingMetadata>,
}

/// The file name the raw SIPREC metadata is saved under.
pub const METADATA_FILE: &str = "metadata.xml";

fn decoded_rate(codec: &str, clock_rate: u32) -> u32 {
    match codec.to_ascii_uppercase().as_str() {
        "G722" => 16000,
        "OPUS" => 48000,
        _ => clock_rate,
    }
}

impl RecordingSession {
    pub fn new(
        recording_id: &str,
        req: &RecordingRequest,
        media: &MediaSession,
        at: OffsetDateTime,
    ) -> Self {
        let g = req.genesys.as_ref();
        let metadata = req
            .siprec_metadata
            .as_ref()
            .and_then(|raw| match parse_metadata(raw) {
                Ok(m) => Some(m),
                Err(e) => {
                    // The call is still recorded; only the participant mapping is lost.
                    tracing::warn!(recording_id, error = %e, "unreadable SIPREC metadata");
                    None
                }
            });
        let mut session = RecordingSession {
            metadata: metadata.clone(),
            doc: RecordingDocument {
                recording_id: recording_id.to_string(),
                call_leg_id: uuid::Uuid::new_v4().to_string(),
                kind: req.kind,
                record_id: g.map(|g| g.record_id.clone()),
                calluuid: g.and_then(|g| g.calluuid.clone()),
                dn: g.and_then(|g| g.dn.clone()),
                other_dn: g.and_then(|g| g.other_dn.clone()),
                record_dn: g.and_then(|g| g.record_dn.clone()),
                uri_params: req.uri_params.clone(),
                sip_call_id: req.sip_call_id.clone(),
                from: req.from.clone(),
                to: req.to.clone(),
                request_uri: req.request_uri.clone(),
                sip_headers: req
                    .sip_headers
                    .iter()
                    .map(|h| HeaderEntry {
                        name: h.name.clone(),
                        value: h.value.clone(),
                    })
                    .collect(),
                started_at: rfc3339(at),
                ended_at: None,
                state: RecordingState::Active,
                end_reason: None,
                pauses: vec![],
                streams: vec![],
                mixed_file: None,
                mixed_duration_seconds: None,
                dtmf: vec![],
                participants: metadata.as_ref().map(|m| m.participants.clone()),
                siprec_session_id: metadata.as_ref().and_then(|m| m.session_id.clone()),
                metadata_file: req
                    .siprec_metadata
                    .as_ref()
                    .map(|_| METADATA_FILE.to_string()),
            },
        };
        session.apply_media(media, at);
        session
    }

    pub fn document(&self) -> &RecordingDocument {
        &self.doc
    }

    pub fn state(&self) -> RecordingState {
        self.doc.state
    }

    fn party_for(&self, audio_index: usize, label: Option<&str>) -> Option<String> {
        match self.doc.kind {
            RecordingKind::Genesys => match audio_index {
                0 => self.doc.dn.clone(),
                1 => self.doc.other_dn.clone(),
                _ => None,
            },
            _ => {
                let label = label?;
                let participant = self
                    .metadata
                    .as_ref()
                    .and_then(|m| m.participant_for_label(label));
                match participant {
                    Some(p) => p
                        .aor
                        .clone()
                        .or_else(|| p.name.clone())
                        .or_else(|| Some(p.participant_id.clone())),
                    None => Some(label.to_string()),
                }
            }
        }
    }

    /// Apply a (re)negotiated media session. Paused when no accepted audio stream is
    /// receiving (Genesys pause: `a=inactive` on every stream). Returns whether the
    /// active/paused state changed.
    pub fn apply_media(&mut self, media: &MediaSession, at: OffsetDateTime) -> bool {
        if self.doc.state == RecordingState::Ended {
            return false;
        }
        let audio: Vec<_> = media
            .streams
            .iter()
            .filter(|s| s.kind == MediaKind::Audio && s.accepted)
            .collect();
        let previous = std::mem::take(&mut self.doc.streams);
        self.doc.streams = audio
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Files and counters belong to the stream, not to one negotiation.
                let old = previous.iter().find(|p| p.sdp_index == s.index);
                StreamEntry {
                    index: i,
                    sdp_index: s.index,
                    label: s.label.clone(),
                    party: self.party_for(i, s.label.as_deref()),
                    codec: s.codec.as_ref().map(|c| c.name.clone()),
                    payload_type: s.codec.as_ref().map(|c| c.payload_type),
                    clock_rate: s.codec.as_ref().map(|c| c.clock_rate),
                    // The file's rate, fixed when the stream opened; before that a guess.
                    sample_rate: old.and_then(|o| o.sample_rate).or_else(|| {
                        s.codec
                            .as_ref()
                            .map(|c| decoded_rate(&c.name, c.clock_rate))
                    }),
                    direction: s.answered_direction,
                    local_port: s.local_port,
                    remote: s
                        .remote_addr
                        .map(|a| std::net::SocketAddr::new(a, s.remote_port).to_string()),
                    file: old.and_then(|o| o.file.clone()),
                    duration_seconds: old.and_then(|o| o.duration_seconds),
                    packets_received: old.map_or(0, |o| o.packets_received),
                    packets_lost: old.map_or(0, |o| o.packets_lost),
                    packets_duplicate: old.map_or(0, |o| o.packets_duplicate),
                    packets_late: old.map_or(0, |o| o.packets_late),
                    jitter_ms: old.map_or(0.0, |o| o.jitter_ms),
                    ssrcs: old.map(|o| o.ssrcs.clone()).unwrap_or_default(),
                    packets_undecodable: old
                        .map(|o| o.packets_undecodable.clone())
                        .unwrap_or_default(),
                    codecs_received: old.map(|o| o.codecs_received.clone()).unwrap_or_default(),
                    encrypted: s.srtp.is_some(),
                    srtp_suite: s
                        .srtp
                        .as_ref()
                        .map(|k| k.remote.suite.sdp_name().to_string()),
                    srtp_auth_failures: old.map_or(0, |o| o.srtp_auth_failures),
                    srtp_replays: old.map_or(0, |o| o.srtp_replays),
                }
            })
            .collect();
        let receiving = audio
            .iter()
            .any(|s| s.answered_direction == Direction::RecvOnly);
        let now = rfc3339(at);
        match (self.doc.state, receiving) {
            (RecordingState::Active, false) => {
                self.doc.state = RecordingState::Paused;
                self.doc.pauses.push(Pause {
                    started_at: now,
                    ended_at: None,
                });
                true
            }
            (RecordingState::Paused, true) => {
                self.doc.state = RecordingState::Active;
                if let Some(p) = self.doc.pauses.last_mut() {
                    p.ended_at = Some(now);
                }
                true
            }
            _ => false,
        }
    }

    /// Mutable access for the recording task's media bookkeeping (files, counters, DTMF).
    pub fn document_mut(&mut self) -> &mut RecordingDocument {
        &mut self.doc
    }

    pub fn end(&mut self, reason: EndReason, at: OffsetDateTime) {
        if self.doc.state == RecordingState::Ended {
            return;
        }
        let now = rfc3339(at);
        if let Some(p) = self.doc.pauses.last_mut().filter(|p| p.ended_at.is_none()) {
            p.ended_at = Some(now.clone());
        }
        self.doc.state = RecordingState::Ended;
        self.doc.end_reason = Some(reason);
        self.doc.ended_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{Codec, NegotiatedStream};
    use crate::sip::uri::GenesysTarget;
    use time::macros::datetime;

    fn media(direction: Direction) -> MediaSession {
        let stream = |index: usize, port: u16| NegotiatedStream {
            index,
            kind: MediaKind::Audio,
            accepted: true,
            local_port: port,
            rtcp_mux: false,
            remote_addr: Some("192.0.2.10".parse().unwrap()),
            remote_port: 30000 + port,
            codec: Some(Codec {
                name: "PCMU".into(),
                payload_type: 0,
                clock_rate: 8000,
                channels: 1,
            }),
            codecs: Vec::new(),
            telephone_event: Some((101, 8000)),
            offered_direction: Direction::SendOnly,
            answered_direction: direction,
            label: None,
            srtp: None,
        };
        MediaSession {
            session_id: 1,
            version: 1,
            remote_origin: ("GMS".into(), "1".into(), "1".into()),
            streams: vec![stream(0, 20000), stream(1, 20002)],
            answer_sdp: String::new(),
        }
    }

    fn request() -> RecordingRequest {
        RecordingRequest {
            kind: RecordingKind::Genesys,
            genesys: Some(GenesysTarget {
                record_id: "R1".into(),
                calluuid: Some("CU".into()),
                dn: Some("1001".into()),
                other_dn: Some("1002".into()),
                record_dn: Some("1001".into()),
            }),
            uri_params: BTreeMap::new(),
            sip_call_id: "c1".into(),
            from: "<sip:a@b>;tag=1".into(),
            from_uri: "sip:a@b".into(),
            to: "<sip:r@b>".into(),
            request_uri: "sip:record=R1@b".into(),
            sip_headers: vec![],
            siprec_metadata: None,
        }
    }

    #[test]
    fn pause_resume_and_end_are_recorded() {
        let t0 = datetime!(2026-01-01 10:00:00 UTC);
        let mut s = RecordingSession::new("id", &request(), &media(Direction::RecvOnly), t0);
        assert_eq!(s.state(), RecordingState::Active);
        assert_eq!(s.document().streams[0].party.as_deref(), Some("1001"));
        assert_eq!(s.document().streams[1].party.as_deref(), Some("1002"));
        assert!(s.apply_media(
            &media(Direction::Inactive),
            datetime!(2026-01-01 10:00:10 UTC)
        ));
        assert_eq!(s.state(), RecordingState::Paused);
        assert!(
            !s.apply_media(
                &media(Direction::Inactive),
                datetime!(2026-01-01 10:00:11 UTC)
            ),
            "refresh: no change"
        );
        assert!(s.apply_media(
            &media(Direction::RecvOnly),
            datetime!(2026-01-01 10:00:20 UTC)
        ));
        assert_eq!(
            s.document().pauses,
            vec![Pause {
                started_at: "2026-01-01T10:00:10Z".into(),
                ended_at: Some("2026-01-01T10:00:20Z".into())
            }]
        );
        s.apply_media(
            &media(Direction::Inactive),
            datetime!(2026-01-01 10:00:30 UTC),
        );
        s.end(EndReason::Bye, datetime!(2026-01-01 10:00:40.250 UTC));
        let doc = s.document();
        assert_eq!(doc.state, RecordingState::Ended);
        assert_eq!(doc.end_reason, Some(EndReason::Bye));
        assert_eq!(doc.ended_at.as_deref(), Some("2026-01-01T10:00:40.25Z"));
        assert_eq!(
            doc.pauses[1].ended_at.as_deref(),
            Some("2026-01-01T10:00:40.25Z"),
            "open pause closed at the end"
        );
        let json = serde_json::to_value(doc).unwrap();
        assert_eq!(json["kind"], "genesys");
        assert_eq!(json["other_dn"], "1002");
        assert_eq!(json["end_reason"], "bye");
        assert_eq!(json["state"], "ended");
    }
}
