//! The recording session state machine (active / paused / ended) and the recording.json
//! document it maintains. Pure: the caller supplies wall-clock times.

use crate::media::accounting::{AccountingReport, MediaGaps, PeriodStats};
use crate::recording::EndReason;
use crate::recording::group::GroupMembership;
use crate::recording::participants::{
    MetadataUpdate, ParticipantEntry, ParticipantHistory, read_metadata,
};
use crate::recording::stream::StreamCounters;
use crate::sdp::{Direction, MediaKind, MediaSession};
use crate::sip::classify::{RecordingKind, RecordingRequest};
use crate::sip::correlation::{BibLeg, cisco_recording_participants, request_bib};
use crate::siprec::BroadWorksMetadata;
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
    /// Why `file` lacks audio the stream carried: it could not be created or written, or
    /// reached the 4 GiB WAV limit. `None` when every sample reached it.
    pub file_error: Option<String>,
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
    /// Where on the recording's timeline the stream opened (0 for the initial streams; a
    /// party added by re-INVITE later: its file is silent up to here).
    pub joined_at_seconds: f64,
    /// Where its m= line was removed (port 0) and its file finalized; `None` while open.
    pub closed_at_seconds: Option<f64>,
    /// Packets (and payload octets) the SRC says it sent: its last RTCP SR per SSRC, summed.
    pub packets_sent: Option<u64>,
    pub octets_sent: Option<u64>,
    pub rtcp_packets: u64,
    /// RTCP datagrams that did not parse or failed SRTCP authentication (not believed).
    pub rtcp_errors: u64,
    /// The SRC ended the stream with an RTCP BYE.
    pub rtcp_bye: bool,
    /// RFC 3611 §4.7.2 loss bursts and the gaps between them (CMS `packetLossBursts` /
    /// `packetGap`: mean duration in seconds, loss density in percent).
    pub packet_loss_bursts: PeriodStats,
    pub packet_gap: PeriodStats,
    /// Stretches of at least 1 s without any packet while receiving.
    pub media_gaps: MediaGaps,
    /// Level of the loudest 10 ms of the stream's audio (robust RMS estimate: 1.4826 × the
    /// median absolute deviation; digital-silence gap fill left out; sampled on every 8th
    /// window once the stream proved sound).
    pub peak_level: f64,
    /// No sound in the whole stream (one-way or silent audio), or no RTP at all.
    pub silent: bool,
    /// Everything the SRC sent arrived (SR count, no sequence loss) without a media gap.
    pub complete: bool,
    /// Why the stream is not complete, or silent.
    pub warnings: Vec<String>,
}

impl StreamEntry {
    fn new(index: usize, sdp_index: usize, joined_at_seconds: f64) -> Self {
        StreamEntry {
            index,
            sdp_index,
            label: None,
            party: None,
            codec: None,
            payload_type: None,
            clock_rate: None,
            sample_rate: None,
            direction: Direction::Inactive,
            local_port: 0,
            remote: None,
            file: None,
            duration_seconds: None,
            file_error: None,
            packets_received: 0,
            packets_lost: 0,
            packets_duplicate: 0,
            packets_late: 0,
            jitter_ms: 0.0,
            ssrcs: vec![],
            packets_undecodable: BTreeMap::new(),
            codecs_received: BTreeMap::new(),
            encrypted: false,
            srtp_suite: None,
            srtp_auth_failures: 0,
            srtp_replays: 0,
            joined_at_seconds,
            closed_at_seconds: None,
            packets_sent: None,
            octets_sent: None,
            rtcp_packets: 0,
            rtcp_errors: 0,
            rtcp_bye: false,
            packet_loss_bursts: PeriodStats::default(),
            packet_gap: PeriodStats::default(),
            media_gaps: MediaGaps::default(),
            peak_level: 0.0,
            silent: false,
            complete: true,
            warnings: vec![],
        }
    }

    /// What the latest offer/answer says about the stream; files and counters stay.
    fn update_negotiation(&mut self, s: &crate::sdp::NegotiatedStream, party: Option<String>) {
        self.label = s.label.clone();
        self.party = party;
        self.codec = s.codec.as_ref().map(|c| c.name.clone());
        self.payload_type = s.codec.as_ref().map(|c| c.payload_type);
        self.clock_rate = s.codec.as_ref().map(|c| c.clock_rate);
        // The file's rate, fixed when the stream opened; before that a guess.
        self.sample_rate = self.sample_rate.or_else(|| {
            s.codec
                .as_ref()
                .map(|c| decoded_rate(&c.name, c.clock_rate))
        });
        self.direction = s.answered_direction;
        self.local_port = s.local_port;
        self.remote = s
            .remote_addr
            .map(|a| std::net::SocketAddr::new(a, s.remote_port).to_string());
        self.encrypted = s.srtp.is_some();
        self.srtp_suite = s
            .srtp
            .as_ref()
            .map(|k| k.remote.suite.sdp_name().to_string());
    }

    /// Take a stream's counters from its media worker and judge the stream.
    pub fn apply_counters(&mut self, c: &StreamCounters) {
        let stats = &c.stats;
        self.packets_received = stats.packets_received;
        self.packets_lost = stats.packets_lost;
        self.packets_duplicate = stats.packets_duplicate;
        self.packets_late = stats.packets_late;
        self.jitter_ms = (stats.jitter_ms * 100.0).round() / 100.0;
        self.ssrcs.clone_from(&stats.ssrcs);
        self.packets_undecodable = stats
            .packets_undecodable
            .iter()
            .map(|(pt, n)| (pt.to_string(), *n))
            .collect();
        self.codecs_received.clear();
        for (_, name, n) in &stats.audio_by_payload_type {
            *self.codecs_received.entry((*name).to_owned()).or_default() += n;
        }
        if let Some((pt, name)) = stats.dominant_codec() {
            self.codec = Some(name.to_owned());
            self.payload_type = Some(pt);
        }
        self.srtp_auth_failures = c.srtp_auth_failures;
        self.srtp_replays = c.srtp_replays;
        self.apply_accounting(&c.accounting);
    }

    /// Take the stream's accounting and judge the stream.
    pub fn apply_accounting(&mut self, a: &AccountingReport) {
        self.packets_sent = a.packets_sent;
        self.octets_sent = a.octets_sent;
        self.rtcp_packets = a.rtcp_packets;
        self.rtcp_errors = a.rtcp_errors;
        self.rtcp_bye = a.rtcp_bye;
        self.packet_loss_bursts = a.loss_bursts;
        self.packet_gap = a.loss_gaps;
        self.media_gaps = a.media_gaps;
        self.peak_level = a.peak_level;
        self.silent = self.packets_received == 0 || a.silent();
        self.judge();
    }

    /// The stream's file is missing audio (`why`): the stream is not complete.
    pub fn file_failed(&mut self, why: String) {
        self.file_error = Some(why);
        self.judge();
    }

    fn judge(&mut self) {
        let mut warnings = Vec::new();
        if let Some(why) = &self.file_error {
            warnings.push(format!("file: {why}"));
        }
        let unique = self.packets_received.saturating_sub(self.packets_duplicate);
        if let Some(sent) = self.packets_sent.filter(|&sent| unique < sent) {
            warnings.push(format!(
                "received {unique} of the {sent} packets the sender reports"
            ));
        }
        if self.packets_lost > 0 {
            warnings.push(format!("{} packets lost", self.packets_lost));
        }
        let undecodable: u64 = self.packets_undecodable.values().sum();
        if undecodable > 0 {
            let types: Vec<&str> = self
                .packets_undecodable
                .keys()
                .map(String::as_str)
                .collect();
            warnings.push(format!(
                "{undecodable} packets of payload type {} not decoded: their time is silence",
                types.join(", ")
            ));
        }
        if self.media_gaps.count > 0 {
            warnings.push(format!(
                "{} media gaps, longest {} ms",
                self.media_gaps.count, self.media_gaps.longest_ms
            ));
        }
        if self.packets_received == 0 {
            warnings.push("no RTP received".to_string());
        } else if self.silent {
            warnings.push(format!("silent audio (peak level {})", self.peak_level));
        }
        self.complete = warnings.is_empty();
        self.warnings = warnings;
    }
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
    /// The one file holding every party: the stereo WAV (left = first stream, right =
    /// second) while there are at most two streams; `mixed.wav` (all streams summed) once a
    /// recording that had more than two is final.
    pub mixed_file: Option<String>,
    pub mixed_duration_seconds: Option<f64>,
    /// The stereo WAV of the first two streams, whenever there is one.
    pub stereo_file: Option<String>,
    pub stereo_duration_seconds: Option<f64>,
    /// Every stream complete and none silent; `warnings` says what is not.
    pub complete: bool,
    pub warnings: Vec<String>,
    pub dtmf: Vec<DtmfEntry>,
    /// SIPREC: the participants of the recorded session (RFC 7865 metadata), one entry
    /// per stay with `joined_at`/`left_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<ParticipantEntry>>,
    /// SIPREC: the recorded session's id from the metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub siprec_session_id: Option<String>,
    /// SIPREC: the raw metadata as received, saved beside recording.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_file: Option<String>,
    /// SIPREC: why the initial metadata could not be read (the raw file is still kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_error: Option<String>,
    /// SIPREC: metadata documents received in re-INVITEs and UPDATEs, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata_updates: Vec<MetadataUpdate>,
    /// Updates beyond `MAX_METADATA_UPDATES`: applied, neither listed nor saved.
    #[serde(skip_serializing_if = "is_zero")]
    pub metadata_updates_unlisted: u64,
    /// SIPREC: BroadWorks' extension data (extTrackingID, userID, callID, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadworks: Option<BroadWorksMetadata>,
    /// SIPREC: metadata elements the recorder does not interpret, as received.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata_extensions: Vec<String>,
    /// The recording group: recordings of one call made as separate dialogs (Cisco BiB,
    /// Genesys one session per party) share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The vendor value that put the recording into its group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Cisco BiB: which party's voice this dialog carries (`near_end` | `far_end`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cisco_bib_leg: Option<BibLeg>,
    /// Object storage upload (`[storage]`): set when the recording is handed to the queue;
    /// the queue keeps it up to date afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<crate::storage::StorageRecord>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
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
    started: OffsetDateTime,
    history: ParticipantHistory,
    /// Cisco CUBE: the party of each m= line, from `X-Cisco-Recording-Participant`.
    cisco_parties: Vec<(usize, String)>,
    /// Cisco BiB: the one party this dialog's streams carry.
    bib_party: Option<String>,
}

/// The file name the raw initial SIPREC metadata is saved under.
pub const METADATA_FILE: &str = "metadata.xml";

/// Most metadata updates listed in recording.json and saved beside it: a long conference
/// sends many, a misbehaving SRC could send without end.
pub const MAX_METADATA_UPDATES: usize = 1000;

/// What became of a metadata update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataOutcome {
    Applied,
    /// Not readable: listed with its error, nothing changed.
    Unreadable,
    /// The recording had ended.
    Ignored,
}

/// The file name of the `n`-th (from 1) metadata update.
pub fn metadata_update_file(n: usize) -> String {
    format!("metadata-{n}.xml")
}

fn decoded_rate(codec: &str, clock_rate: u32) -> u32 {
    match codec.to_ascii_uppercase().as_str() {
        "G722" => 16000,
        "OPUS" => 48000,
        _ => clock_rate,
    }
}

/// The document as the call starts: who called whom, the request as received, no streams yet.
fn initial_document(
    recording_id: &str,
    call_leg_id: String,
    req: &RecordingRequest,
    at: OffsetDateTime,
    cisco_bib_leg: Option<BibLeg>,
) -> RecordingDocument {
    let g = req.genesys.as_ref();
    RecordingDocument {
        recording_id: recording_id.to_string(),
        call_leg_id,
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
        stereo_file: None,
        stereo_duration_seconds: None,
        complete: true,
        warnings: vec![],
        dtmf: vec![],
        participants: None,
        siprec_session_id: None,
        metadata_file: req
            .siprec_metadata
            .as_ref()
            .map(|_| METADATA_FILE.to_string()),
        metadata_error: None,
        metadata_updates: vec![],
        metadata_updates_unlisted: 0,
        broadworks: None,
        metadata_extensions: vec![],
        group_id: None,
        correlation_id: None,
        cisco_bib_leg,
        storage: None,
    }
}

impl RecordingSession {
    /// `call_leg_id` comes from the UAS's seeded generator with the recording id, so this
    /// core draws nothing itself.
    pub fn new(
        recording_id: &str,
        call_leg_id: String,
        req: &RecordingRequest,
        media: &MediaSession,
        at: OffsetDateTime,
    ) -> Self {
        let initial = req
            .siprec_metadata
            .as_ref()
            .map(|raw| read_metadata(recording_id, raw));
        let bib = request_bib(req);
        let mut session = RecordingSession {
            started: at,
            history: ParticipantHistory::default(),
            cisco_parties: cisco_recording_participants(&req.sip_headers),
            bib_party: bib.as_ref().and_then(|b| b.party()),
            doc: initial_document(recording_id, call_leg_id, req, at, bib.map(|b| b.leg)),
        };
        match initial {
            Some(Ok(m)) => {
                session.history.apply(m, &rfc3339(at));
                session.sync_metadata();
            }
            Some(Err(e)) => session.doc.metadata_error = Some(e.to_string()),
            None => {}
        }
        session.apply_media(media, at);
        session
    }

    pub fn set_group(&mut self, group: &GroupMembership) {
        self.doc.group_id = Some(group.group_id.clone());
        self.doc.correlation_id = Some(group.correlation_id.clone());
    }

    /// The file name the next metadata update is saved under; `None` once
    /// [`MAX_METADATA_UPDATES`] are listed (later ones are applied, not saved).
    pub fn next_metadata_file(&self) -> Option<String> {
        let n = self.doc.metadata_updates.len();
        (n < MAX_METADATA_UPDATES).then(|| metadata_update_file(n + 1))
    }

    /// A metadata document arrived in a re-INVITE or UPDATE (saved as `file`). An
    /// unreadable one changes nothing but is listed.
    pub fn apply_metadata_update(
        &mut self,
        raw: &[u8],
        file: Option<String>,
        at: OffsetDateTime,
    ) -> MetadataOutcome {
        if self.doc.state == RecordingState::Ended {
            return MetadataOutcome::Ignored;
        }
        let now = rfc3339(at);
        let mut entry = MetadataUpdate {
            received_at: now.clone(),
            file: file.clone().unwrap_or_default(),
            data_mode: None,
            applied: false,
            error: None,
            joined: vec![],
            left: vec![],
            streams_changed: vec![],
        };
        let outcome = match read_metadata(&self.doc.recording_id, raw) {
            Ok(m) => {
                entry.data_mode = m.data_mode;
                let changes = self.history.apply(m, &now);
                entry.joined = changes.joined;
                entry.left = changes.left;
                entry.streams_changed = changes.streams_changed;
                entry.applied = true;
                self.sync_metadata();
                self.refresh_parties();
                MetadataOutcome::Applied
            }
            Err(e) => {
                entry.error = Some(e.to_string());
                MetadataOutcome::Unreadable
            }
        };
        match file {
            Some(_) => self.doc.metadata_updates.push(entry),
            None => self.doc.metadata_updates_unlisted += 1,
        }
        outcome
    }

    /// Copy what the metadata says now into the document.
    fn sync_metadata(&mut self) {
        self.doc.participants = Some(self.history.entries().to_vec());
        if let Some(m) = self.history.current() {
            if m.session_id.is_some() {
                self.doc.siprec_session_id.clone_from(&m.session_id);
            }
            self.doc.broadworks.clone_from(&m.broadworks);
            self.doc.metadata_extensions.clone_from(&m.unknown_elements);
        }
    }

    fn refresh_parties(&mut self) {
        let parties: Vec<Option<String>> = self
            .doc
            .streams
            .iter()
            .map(|s| self.party_for(s.index, s.sdp_index, s.label.as_deref()))
            .collect();
        for (stream, party) in self.doc.streams.iter_mut().zip(parties) {
            stream.party = party;
        }
    }

    pub fn document(&self) -> &RecordingDocument {
        &self.doc
    }

    pub fn state(&self) -> RecordingState {
        self.doc.state
    }

    fn party_for(
        &self,
        audio_index: usize,
        sdp_index: usize,
        label: Option<&str>,
    ) -> Option<String> {
        if self.doc.kind == RecordingKind::Genesys {
            return match audio_index {
                0 => self.doc.dn.clone(),
                1 => self.doc.other_dn.clone(),
                _ => None,
            };
        }
        if let Some((_, uri)) = self.cisco_parties.iter().find(|(i, _)| *i == sdp_index) {
            return Some(uri.clone());
        }
        if self.bib_party.is_some() {
            return self.bib_party.clone();
        }
        let label = label?;
        let senders = self
            .history
            .current()
            .map(|m| m.senders_for_label(label))
            .unwrap_or_default();
        if senders.is_empty() {
            return Some(label.to_string());
        }
        // A conference leg several parties send (BroadWorks three-way call) names them all.
        let names: Vec<&str> = senders.iter().map(|p| p.identity()).collect();
        Some(names.join(", "))
    }

    /// Apply a (re)negotiated media session. Paused when no accepted audio stream is
    /// receiving (Genesys pause: `a=inactive` on every stream). Returns whether the
    /// active/paused state changed.
    ///
    /// Streams are kept by m= line: an accepted line without an open stream opens one
    /// (appended, with the next `index`), an open stream whose line is gone or declined
    /// (port 0) is closed and stays in the list with its counters.
    pub fn apply_media(&mut self, media: &MediaSession, at: OffsetDateTime) -> bool {
        if self.doc.state == RecordingState::Ended {
            return false;
        }
        let audio: Vec<_> = media
            .streams
            .iter()
            .filter(|s| s.kind == MediaKind::Audio && s.accepted)
            .collect();
        let position = round_ms((at - self.started).as_seconds_f64().max(0.0));
        for entry in self.doc.streams.iter_mut() {
            if entry.closed_at_seconds.is_none()
                && !audio.iter().any(|s| s.index == entry.sdp_index)
            {
                entry.closed_at_seconds = Some(position);
                entry.direction = Direction::Inactive;
            }
        }
        for s in &audio {
            let open = self
                .doc
                .streams
                .iter()
                .position(|e| e.sdp_index == s.index && e.closed_at_seconds.is_none());
            let index = open.unwrap_or(self.doc.streams.len());
            let party = self.party_for(index, s.index, s.label.as_deref());
            let entry = match open {
                Some(i) => &mut self.doc.streams[i],
                None => {
                    let joined = if self.doc.streams.is_empty() {
                        0.0
                    } else {
                        position
                    };
                    self.doc
                        .streams
                        .push(StreamEntry::new(index, s.index, joined));
                    let last = self.doc.streams.len() - 1;
                    &mut self.doc.streams[last]
                }
            };
            entry.update_negotiation(s, party);
        }
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

    /// Recording-level verdict from the streams' (SPEC §5: an incomplete or silent
    /// recording says so).
    pub fn judge(&mut self) {
        let doc = &mut self.doc;
        doc.warnings = doc
            .streams
            .iter()
            .flat_map(|s| {
                s.warnings
                    .iter()
                    .map(move |w| format!("stream {}: {w}", s.index))
            })
            .collect();
        doc.complete = doc.streams.iter().all(|s| s.complete);
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
        if self.doc.participants.is_some() {
            self.history.close(&now);
            self.doc.participants = Some(self.history.entries().to_vec());
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
    fn streams_are_added_and_closed_by_m_line() {
        let t0 = datetime!(2026-01-01 10:00:00 UTC);
        let two = media(Direction::RecvOnly);
        let mut s = RecordingSession::new("id", "leg".into(), &request(), &two, t0);
        let mut three = two.clone();
        let mut added = three.streams[1].clone();
        added.index = 2;
        added.local_port = 20004;
        three.streams.push(added);
        s.apply_media(&three, datetime!(2026-01-01 10:00:02.5 UTC));
        let doc = s.document();
        assert_eq!(doc.streams.len(), 3);
        assert_eq!((doc.streams[2].index, doc.streams[2].sdp_index), (2, 2));
        assert_eq!(doc.streams[2].joined_at_seconds, 2.5);
        assert_eq!(doc.streams[0].joined_at_seconds, 0.0);
        // The third line set to port 0: its stream closes and stays listed.
        let mut removed = three.clone();
        removed.streams[2].accepted = false;
        removed.streams[2].local_port = 0;
        s.document_mut().streams[2].packets_received = 77;
        assert!(!s.apply_media(&removed, datetime!(2026-01-01 10:00:04 UTC)));
        let doc = s.document();
        assert_eq!(doc.streams.len(), 3);
        assert_eq!(doc.streams[2].closed_at_seconds, Some(4.0));
        assert_eq!(doc.streams[2].packets_received, 77);
        assert_eq!(doc.streams[2].local_port, 20004, "the port it had");
        assert_eq!(doc.streams[1].closed_at_seconds, None);
        // The line reused later: a new stream, a new entry.
        s.apply_media(&three, datetime!(2026-01-01 10:00:06 UTC));
        let doc = s.document();
        assert_eq!(doc.streams.len(), 4);
        assert_eq!((doc.streams[3].index, doc.streams[3].sdp_index), (3, 2));
        assert_eq!(doc.streams[3].packets_received, 0);
    }

    /// A two-stream recording whose first stream received all 300 packets its SRC sent,
    /// with sound; and that stream's accounting.
    fn one_complete_stream() -> (RecordingSession, AccountingReport) {
        let t0 = datetime!(2026-01-01 10:00:00 UTC);
        let mut s = RecordingSession::new(
            "id",
            "leg".into(),
            &request(),
            &media(Direction::RecvOnly),
            t0,
        );
        let loud = AccountingReport {
            packets_sent: Some(300),
            peak_level: 5000.0,
            ..Default::default()
        };
        let entry = &mut s.document_mut().streams[0];
        entry.packets_received = 300;
        entry.apply_accounting(&loud);
        (s, loud)
    }

    #[test]
    fn stream_verdicts_roll_up() {
        let (mut s, loud) = one_complete_stream();
        let entry = &s.document().streams[0];
        assert!(entry.complete && !entry.silent, "{entry:?}");
        let entry = &mut s.document_mut().streams[1];
        entry.packets_received = 200;
        entry.packets_lost = 100;
        entry.apply_accounting(&AccountingReport {
            media_gaps: MediaGaps {
                count: 1,
                longest_ms: 2000,
                total_ms: 2000,
            },
            ..loud
        });
        assert!(!entry.complete);
        s.judge();
        let doc = s.document();
        assert!(!doc.complete);
        assert_eq!(
            doc.warnings,
            vec![
                "stream 1: received 200 of the 300 packets the sender reports",
                "stream 1: 100 packets lost",
                "stream 1: 1 media gaps, longest 2000 ms"
            ]
        );
        let entry = &mut s.document_mut().streams[0];
        entry.apply_accounting(&AccountingReport {
            peak_level: 3.0,
            ..loud
        });
        assert!(entry.silent && !entry.complete);
    }

    #[test]
    fn a_file_missing_audio_makes_its_stream_incomplete_for_good() {
        let (mut s, loud) = one_complete_stream();
        let entry = &mut s.document_mut().streams[0];
        assert!(entry.complete);
        entry.file_failed("800 samples not written (see the log)".into());
        // Later counters, perfect as they are, do not make the file whole again.
        entry.apply_accounting(&loud);
        assert!(!entry.complete);
        s.judge();
        assert!(!s.document().complete);
        assert_eq!(
            s.document().warnings,
            ["stream 0: file: 800 samples not written (see the log)"]
        );
        let json = serde_json::to_value(s.document()).unwrap();
        assert_eq!(
            json["streams"][0]["file_error"],
            "800 samples not written (see the log)"
        );
    }

    #[test]
    fn pause_resume_and_end_are_recorded() {
        let t0 = datetime!(2026-01-01 10:00:00 UTC);
        let mut s = RecordingSession::new(
            "id",
            "leg".into(),
            &request(),
            &media(Direction::RecvOnly),
            t0,
        );
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

#[cfg(test)]
mod metadata_tests;
