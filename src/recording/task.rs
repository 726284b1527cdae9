//! One task per recording: it owns the recording's state, its stream tasks and files, and
//! follows the events the SIP layer emits for it, in order.

use super::EndReason;
use super::group::{GroupMembership, RecordingGroups};
use super::layout::{LayoutValues, recording_dir};
use super::prepare::PrepareFailure;
use super::session::{DtmfEntry, RecordingDocument, RecordingSession};
use super::stream::{StreamBlock, StreamControl, answered_codecs};
use super::wav::{StereoInterleaver, WavFormat};
use super::writer::{FileId, WriterCommand, WriterHandle};
use crate::cdr::{CdrEvent, RecordingEnd, RecordingStart};
use crate::config::{FileSampleRate, MediaSource, PausePolicy};
use crate::error::Chain;
use crate::sdp::{Direction, MediaKind, MediaSession};
use crate::sip::Flow;
use crate::sip::classify::RecordingRequest;
use crate::sip::uas::{PrepareError, RecordingEvent};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

mod streams;

pub const STEREO_FILE: &str = "stereo.wav";

/// Settings every recording task shares.
#[derive(Clone)]
pub struct RecordingSettings {
    pub recordings_dir: PathBuf,
    pub layout: String,
    /// Address RTP sockets bind to (the unspecified address of the media IP's family).
    pub media_bind_ip: IpAddr,
    pub media_source: MediaSource,
    pub pause_policy: PausePolicy,
    /// `media.file_sample_rate`.
    pub file_sample_rate: FileSampleRate,
    pub media_timeout: Duration,
    pub writer: WriterHandle,
    /// The media worker threads every stream's sockets are polled on.
    pub media: super::workers::MediaWorkers,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    pub cdr: crate::cdr::CdrSink,
    /// `[storage]`: finished recordings go to the upload queue.
    pub storage: Option<crate::storage::StorageHandle>,
}

/// A recording task's report back to the SIP layer.
#[derive(Debug)]
pub enum RecordingReport {
    /// Answer the INVITE (or refuse it).
    Prepared {
        recording_id: String,
        result: Result<(), PrepareError>,
    },
    /// End the recording from our side (media timeout).
    Stop {
        recording_id: String,
        reason: EndReason,
    },
}

/// Routes SIP-side events to the recording tasks and keeps track of them.
pub struct RecordingTasks {
    settings: Arc<RecordingSettings>,
    /// Boxed: a channel holds its first block of 32 slots from the start, and a
    /// `RecordingEvent` is a few hundred bytes (the request and media of `Prepare`).
    senders: HashMap<String, mpsc::UnboundedSender<Box<RecordingEvent>>>,
    tasks: JoinSet<()>,
    reports: mpsc::UnboundedSender<RecordingReport>,
    /// Recordings of one call made as separate dialogs (BiB, Genesys per party).
    groups: RecordingGroups,
}

impl RecordingTasks {
    pub fn new(
        settings: RecordingSettings,
        reports: mpsc::UnboundedSender<RecordingReport>,
    ) -> Self {
        RecordingTasks {
            settings: Arc::new(settings),
            senders: HashMap::new(),
            tasks: JoinSet::new(),
            reports,
            groups: RecordingGroups::default(),
        }
    }

    pub fn dispatch(&mut self, event: RecordingEvent) {
        // Reap finished tasks so the set does not grow with the number of calls ever made.
        while self.tasks.try_join_next().is_some() {}
        match event {
            RecordingEvent::Prepare {
                recording_id,
                call_leg_id,
                new_group_id,
                request,
                media,
                flow,
            } => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.senders.insert(recording_id.clone(), tx);
                let group = crate::sip::correlation::correlation_id(&request)
                    .map(|c| self.groups.join(&c, &recording_id, || new_group_id));
                let settings = self.settings.clone();
                let mut task =
                    RecordingTask::new(settings, recording_id, call_leg_id, *request, media, flow);
                if let Some(group) = group {
                    task.join_group(&group);
                }
                self.tasks.spawn(task.run(rx, self.reports.clone()));
            }
            RecordingEvent::Ended {
                ref recording_id, ..
            }
            | RecordingEvent::Discarded { ref recording_id } => {
                self.groups.leave(recording_id);
                if let Some(tx) = self.senders.remove(recording_id) {
                    let _ = tx.send(Box::new(event));
                }
            }
            RecordingEvent::Established { ref recording_id }
            | RecordingEvent::MediaChanged {
                ref recording_id, ..
            }
            | RecordingEvent::MetadataUpdated {
                ref recording_id, ..
            } => {
                if let Some(tx) = self.senders.get(recording_id) {
                    let _ = tx.send(Box::new(event));
                }
            }
        }
    }

    /// A recording that failed to prepare: its task is gone and no Ended will follow.
    pub fn forget(&mut self, recording_id: &str) {
        self.senders.remove(recording_id);
        self.groups.leave(recording_id);
    }

    /// Wait until every recording task has finished (after all were told to end).
    pub async fn join_all(&mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// A running stream as the recording task sees it.
struct StreamHandle {
    /// Its entry in recording.json `streams` (and its file name).
    index: usize,
    sdp_index: usize,
    /// The stream on its media worker; dropping it stops the stream.
    control: super::workers::StreamLink,
    file: FileId,
    sample_rate: u32,
    direction: Direction,
    /// Every answered `(payload type, name)`, first codec first.
    codecs: Vec<(u8, String)>,
    remote: Option<IpAddr>,
    srtp_key: Option<crate::sdp::crypto::CryptoAttribute>,
    /// Last RTP packet, or when the stream (re)started receiving.
    last_activity: Instant,
    finished: bool,
    /// Its m= line was removed (port 0): the stream ended and the file is final.
    closed: bool,
}

struct RecordingTask {
    settings: Arc<RecordingSettings>,
    recording_id: String,
    request: RecordingRequest,
    session: RecordingSession,
    dir: PathBuf,
    /// The accepted audio streams of the initial negotiation, in order.
    initial_media: Vec<crate::sdp::NegotiatedStream>,
    /// Sample 0 of every stream's timeline (a stream added later starts with silence).
    started: Instant,
    streams: Vec<StreamHandle>,
    /// Where the streams send their news (counters, DTMF, the end); kept for streams a
    /// re-INVITE adds.
    blocks_tx: Option<mpsc::UnboundedSender<Box<StreamBlock>>>,
    /// `stereo.wav` on the writer, interleaved there from the first two streams' files.
    stereo: Option<FileId>,
    /// When the 200 OK went out; `None` until then (and no CDRs before it).
    established_at: Option<Instant>,
    /// Where the API and `/metrics` ask for the current document when they are read.
    snapshots: crate::telemetry::SnapshotRequests,
}

impl RecordingTask {
    fn new(
        settings: Arc<RecordingSettings>,
        recording_id: String,
        call_leg_id: String,
        request: RecordingRequest,
        media: MediaSession,
        _flow: Flow,
    ) -> Self {
        let started = OffsetDateTime::now_utc();
        let session = RecordingSession::new(&recording_id, call_leg_id, &request, &media, started);
        if session.document().metadata_error.is_some() {
            settings
                .telemetry
                .metadata_unreadable
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let g = request.genesys.as_ref();
        let kind = serde_json::to_value(request.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        let dir = recording_dir(
            &settings.recordings_dir,
            &settings.layout,
            &LayoutValues {
                started_at: started,
                recording_id: &recording_id,
                record_id: g.map(|g| g.record_id.as_str()),
                calluuid: g.and_then(|g| g.calluuid.as_deref()),
                kind: kind.as_deref().unwrap_or("unknown"),
            },
        );
        let initial_media = media
            .streams
            .into_iter()
            .filter(|s| s.kind == MediaKind::Audio && s.accepted)
            .collect();
        RecordingTask {
            settings,
            recording_id,
            request,
            session,
            dir,
            initial_media,
            started: Instant::now(),
            streams: vec![],
            blocks_tx: None,
            stereo: None,
            established_at: None,
            snapshots: mpsc::unbounded_channel().0,
        }
    }

    /// The task's life. Its rarer steps (prepare, a media change, the end) are boxed
    /// futures: the task's resident state is then what the loop needs, not the largest
    /// step's (kilobytes per call).
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Box<RecordingEvent>>,
        reports: mpsc::UnboundedSender<RecordingReport>,
    ) {
        // Blocks travel boxed, as events do: the channel's first block of 32 slots is
        // allocated with it, 2 KiB per call for 64-byte `StreamBlock`s.
        let (blocks_tx, mut blocks) = mpsc::unbounded_channel();
        self.blocks_tx = Some(blocks_tx.clone());
        let (snapshots_tx, mut snapshots) = mpsc::unbounded_channel();
        self.snapshots = snapshots_tx;
        let prepared = Box::pin(self.prepare(blocks_tx)).await;
        let recording_id = self.recording_id.clone();
        if let Err(e) = &prepared {
            // Directory, file, RTP port, codec or key: the error says which.
            tracing::error!(recording_id, dir = %self.dir.display(), error = %Chain(e), status = e.status(), "cannot prepare recording");
            Box::pin(self.discard()).await;
        }
        let failed = prepared.is_err();
        let result = prepared.map_err(|e| e.verdict());
        let _ = reports.send(RecordingReport::Prepared {
            recording_id: recording_id.clone(),
            result,
        });
        if failed {
            return;
        }
        let media_check = tokio::time::sleep_until(self.next_media_check(Instant::now()));
        tokio::pin!(media_check);
        let mut timeout_reported = false;
        loop {
            tokio::select! {
                event = events.recv() => match event.map(|e| *e) {
                    None => {
                        // The SIP side is gone without an end: finalize what we have.
                        Box::pin(self.finish(EndReason::Error, &mut blocks)).await;
                        return;
                    }
                    Some(RecordingEvent::Prepare { .. }) => {}
                    Some(RecordingEvent::Established { .. }) => {
                        tracing::info!(recording_id, dir = %self.dir.display(), kind = ?self.request.kind, "recording started");
                        self.established_at = Some(Instant::now());
                        self.cdr_start();
                        self.publish();
                    }
                    Some(RecordingEvent::Discarded { .. }) => {
                        Box::pin(self.stop_streams(&mut blocks)).await;
                        Box::pin(self.discard()).await;
                        return;
                    }
                    Some(RecordingEvent::MediaChanged { media, .. }) => Box::pin(self.media_changed(&media, &mut blocks)).await,
                    Some(RecordingEvent::MetadataUpdated { metadata, .. }) => Box::pin(self.metadata_updated(&metadata)).await,
                    Some(RecordingEvent::Ended { reason, .. }) => {
                        Box::pin(self.finish(reason, &mut blocks)).await;
                        tracing::info!(recording_id, end_reason = reason.as_str(), "recording ended");
                        return;
                    }
                },
                Some(block) = blocks.recv() => self.take_block(*block),
                Some(reply) = snapshots.recv() => {
                    if let Ok(doc) = serde_json::to_value(self.session.document()) {
                        let _ = reply.send(doc);
                    }
                }
                () = &mut media_check, if !timeout_reported => {
                    let now = Instant::now();
                    if self.media_timed_out(now) {
                        timeout_reported = true;
                        tracing::warn!(recording_id, timeout_secs = self.settings.media_timeout.as_secs(), "no RTP: ending recording");
                        let _ = reports.send(RecordingReport::Stop { recording_id: recording_id.clone(), reason: EndReason::MediaTimeout });
                    } else {
                        media_check.as_mut().reset(self.next_media_check(now));
                    }
                }
            }
        }
    }

    /// Directory, sockets, files and recording.json, before the INVITE is answered.
    async fn prepare(
        &mut self,
        blocks: mpsc::UnboundedSender<Box<StreamBlock>>,
    ) -> Result<(), PrepareFailure> {
        self.started = Instant::now();
        let media = self.initial_media.clone();
        let mut opened = Vec::new();
        let mut opens = Vec::new();
        for (index, stream) in media.iter().enumerate() {
            opened.push(self.open_stream(index, stream, &mut opens)?);
        }
        if let [left, right, ..] = self.streams.as_slice() {
            let interleaver = StereoInterleaver::new(left.sample_rate, right.sample_rate)
                .map_err(PrepareFailure::Stereo)?;
            let file_id = self.settings.writer.new_file_id_beside(left.file);
            opens.push(WriterCommand::Open {
                file_id,
                path: self.dir.join(STEREO_FILE),
                format: WavFormat::stereo(interleaver.output_rate()),
            });
            opens.push(WriterCommand::Interleave {
                file_id,
                left: left.file,
                right: right.file,
                interleaver: Box::new(interleaver),
            });
            self.stereo = Some(file_id);
            let doc = self.session.document_mut();
            doc.mixed_file = Some(STEREO_FILE.to_string());
            doc.stereo_file = Some(STEREO_FILE.to_string());
        }
        let json =
            serde_json::to_vec_pretty(self.session.document()).map_err(std::io::Error::other)?;
        let metadata = self.request.siprec_metadata.clone();
        create_recording(&self.dir, json, metadata).await?;
        // The files and receiving start only once everything else exists: a failure above
        // leaves no file open and no stream on a worker.
        for open in opens {
            self.settings.writer.send(open)?;
        }
        for stream in opened {
            self.start_stream(stream, &blocks);
        }
        Ok(())
    }

    fn take_block(&mut self, block: StreamBlock) {
        let index = block.index;
        let Some(stream) = self.streams.iter_mut().find(|s| s.index == index) else {
            return;
        };
        if let Some(at) = block.last_packet {
            stream.last_activity = stream.last_activity.max(at);
        }
        stream.finished |= block.last;
        let doc = self.session.document_mut();
        if let Some(counters) = block.counters
            && let Some(entry) = doc.streams.iter_mut().find(|e| e.index == index)
        {
            entry.apply_counters(&counters);
        }
        doc.dtmf.extend(block.dtmf.into_iter().map(|d| DtmfEntry {
            stream: index,
            digit: d.digit.to_string(),
            at_seconds: (d.at_seconds * 1000.0).round() / 1000.0,
            duration_ms: d.duration_ms,
        }));
        self.session.judge();
    }

    async fn media_changed(
        &mut self,
        media: &MediaSession,
        blocks: &mut mpsc::UnboundedReceiver<Box<StreamBlock>>,
    ) {
        let changed = self.session.apply_media(media, OffsetDateTime::now_utc());
        if changed {
            tracing::info!(recording_id = self.recording_id, state = ?self.session.state(), "recording state changed");
            if self.established_at.is_some() {
                let paused = self.session.state() == super::session::RecordingState::Paused;
                let update = crate::cdr::legs::call_leg_paused(self.session.document(), paused);
                self.settings.cdr.record(update);
            }
        }
        self.close_removed_streams(blocks).await;
        let now = Instant::now();
        for stream in self.streams.iter_mut().filter(|s| !s.closed) {
            let Some(n) = media
                .streams
                .iter()
                .find(|s| s.index == stream.sdp_index && s.kind == MediaKind::Audio)
            else {
                continue;
            };
            let direction = if n.accepted {
                n.answered_direction
            } else {
                Direction::Inactive
            };
            let was_receiving = stream.direction == Direction::RecvOnly;
            let receiving = direction == Direction::RecvOnly;
            if was_receiving && !receiving {
                let _ = stream.control.send(StreamControl::Pause);
            } else if !was_receiving && receiving {
                let _ = stream.control.send(StreamControl::Resume);
                stream.last_activity = now;
            }
            stream.direction = direction;
            let codecs = answered_codecs(n);
            let srtp_key = n.srtp.as_ref().map(|k| k.remote.clone());
            if n.accepted
                && (codecs != stream.codecs
                    || n.remote_addr != stream.remote
                    || srtp_key != stream.srtp_key)
            {
                if !codecs.is_empty() {
                    let _ = stream.control.send(StreamControl::Renegotiated {
                        codecs: codecs.clone(),
                        remote: n.remote_addr,
                        telephone_event: n.telephone_event,
                        srtp: srtp_key.clone(),
                    });
                }
                stream.codecs = codecs;
                stream.remote = n.remote_addr;
                stream.srtp_key = srtp_key;
            }
        }
        self.open_added_streams(media);
        self.write_and_publish().await;
    }

    fn join_group(&mut self, group: &GroupMembership) {
        tracing::info!(
            recording_id = self.recording_id,
            group_id = group.group_id,
            correlation_id = group.correlation_id,
            "recording joins group"
        );
        self.session.set_group(group);
    }

    /// SIPREC metadata from a re-INVITE/UPDATE: saved raw beside recording.json (numbered),
    /// then applied. Neither an unreadable document nor a failed write ends the recording.
    async fn metadata_updated(&mut self, raw: &bytes::Bytes) {
        let file = self.session.next_metadata_file();
        if let Some(name) = &file
            && let Err(e) = tokio::fs::write(self.dir.join(name), raw).await
        {
            tracing::error!(recording_id = self.recording_id, file = name, error = %e, "cannot save SIPREC metadata");
        }
        let outcome =
            self.session
                .apply_metadata_update(raw, file.clone(), OffsetDateTime::now_utc());
        if outcome == super::session::MetadataOutcome::Unreadable {
            self.settings
                .telemetry
                .metadata_unreadable
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::info!(recording_id = self.recording_id, file = ?file, outcome = ?outcome, "SIPREC metadata update");
        self.write_and_publish().await;
    }

    async fn write_and_publish(&self) {
        write_document(&self.dir, self.session.document()).await;
        self.publish();
    }

    fn publish(&self) {
        self.settings.telemetry.publish_active(
            &self.recording_id,
            self.session.document(),
            &self.snapshots,
        );
    }

    /// SPEC §5: no RTP on any receiving stream for `media_timeout`; paused streams exempt.
    fn media_timed_out(&self, now: Instant) -> bool {
        let mut receiving = self.receiving_streams().peekable();
        receiving.peek().is_some()
            && receiving.all(|s| {
                now.saturating_duration_since(s.last_activity) >= self.settings.media_timeout
            })
    }

    /// The earliest moment [`media_timed_out`](Self::media_timed_out) can turn true: the
    /// timeout after the latest activity of a receiving stream, or after `now` while none
    /// receives (paused, or no stream). Checking then, instead of every second, costs a
    /// recording one timer wake-up per timeout period (≈ 400 wake-ups a second fewer at
    /// 400 calls).
    fn next_media_check(&self, now: Instant) -> tokio::time::Instant {
        let latest = self.receiving_streams().map(|s| s.last_activity).max();
        // Any `media_timeout_secs` is valid, up to u64::MAX: no overflow, and at least one
        // check a day.
        let at = latest
            .unwrap_or(now)
            .checked_add(self.settings.media_timeout)
            .map_or(now + MEDIA_CHECK_CEILING, |at| {
                at.clamp(now + MEDIA_CHECK_FLOOR, now + MEDIA_CHECK_CEILING)
            });
        tokio::time::Instant::from_std(at)
    }

    fn receiving_streams(&self) -> impl Iterator<Item = &StreamHandle> {
        self.streams
            .iter()
            .filter(|s| !s.closed && s.direction == Direction::RecvOnly)
    }

    async fn stop_streams(&mut self, blocks: &mut mpsc::UnboundedReceiver<Box<StreamBlock>>) {
        for stream in self.streams.iter().filter(|s| !s.finished) {
            let _ = stream.control.send(StreamControl::Stop);
        }
        // Every stream answers Stop with its last block; a bound keeps a stuck task from
        // holding the recording open forever.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.streams.iter().any(|s| !s.finished) {
            match tokio::time::timeout_at(deadline, blocks.recv()).await {
                Ok(Some(block)) => self.take_block(*block),
                Ok(None) | Err(_) => break,
            }
        }
    }

    async fn finish(
        &mut self,
        reason: EndReason,
        blocks: &mut mpsc::UnboundedReceiver<Box<StreamBlock>>,
    ) {
        // The recording ends now, on the files' timeline: closing and syncing them below can
        // take a while on a busy disk, and must not lengthen `ended_at − started_at`.
        let ended_at = OffsetDateTime::now_utc();
        self.stop_streams(blocks).await;
        // Every stream's last PCM reached the writer before its last block came here: the
        // writer's interleaver has both sides whole.
        if let Some(stereo) = self.stereo.take() {
            if let Ok(reply) = self.settings.writer.close(stereo)
                && let Ok(Ok(summary)) = reply.await
            {
                let doc = self.session.document_mut();
                doc.stereo_duration_seconds = Some(round_ms(summary.duration_seconds));
                doc.mixed_duration_seconds = doc.stereo_duration_seconds;
            }
        }
        let open: Vec<usize> = self
            .streams
            .iter()
            .filter(|s| !s.closed)
            .map(|s| s.index)
            .collect();
        for index in open {
            self.close_file(index).await;
        }
        self.write_late_stereo().await;
        self.write_mixed().await;
        self.session.judge();
        self.report_verdict();
        self.session.end(reason, ended_at);
        // The job file goes first: a crash after it still uploads the recording.
        let storage = self.settings.storage.clone();
        let upload = match &storage {
            Some(s) => {
                s.prepare_document(&self.dir, self.session.document_mut())
                    .await
            }
            None => None,
        };
        write_document(&self.dir, self.session.document()).await;
        self.settings
            .telemetry
            .publish_ended(&self.recording_id, self.session.document());
        let location = match (storage, upload) {
            (Some(s), Some(job)) => {
                let uploaded = s.submit_and_wait(job).await;
                Some(crate::storage::cdr_location(s.bucket(), uploaded.as_ref()))
            }
            (Some(s), None) => Some(crate::storage::cdr_location(s.bucket(), None)),
            (None, _) => None,
        };
        self.cdr_end(reason, location);
    }

    /// Cancelled before it was answered: nothing of it is kept.
    async fn discard(&mut self) {
        for stream in self.streams.iter().filter(|s| !s.closed) {
            if let Ok(reply) = self.settings.writer.close(stream.file) {
                let _ = reply.await;
            }
        }
        if let Some(stereo) = self.stereo
            && let Ok(reply) = self.settings.writer.close(stereo)
        {
            let _ = reply.await;
        }
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(recording_id = self.recording_id, error = %e, "cannot remove discarded recording");
        }
        remove_empty_parents(&self.dir, &self.settings.recordings_dir).await;
        self.settings
            .telemetry
            .publish_discarded(&self.recording_id);
    }
}

impl RecordingTask {
    /// What the CDRs call this recording's `<call>`: calluuid, else the SIPREC session id,
    /// else the SIP Call-ID (SPEC §6).
    fn cdr_call(&self) -> String {
        let doc = self.session.document();
        doc.calluuid
            .clone()
            .or_else(|| doc.siprec_session_id.clone())
            .unwrap_or_else(|| doc.sip_call_id.clone())
    }

    fn files(&self) -> Vec<String> {
        let doc = self.session.document();
        let mixed = doc
            .mixed_file
            .clone()
            .filter(|m| doc.stereo_file.as_ref() != Some(m));
        doc.streams
            .iter()
            .filter_map(|s| s.file.clone())
            .chain(doc.stereo_file.clone())
            .chain(mixed)
            .collect()
    }

    fn cdr_start(&self) {
        let doc = self.session.document();
        let call = self.cdr_call();
        let from_uri = &self.request.from_uri;
        let start = crate::cdr::legs::call_leg_start(doc, from_uri, &call);
        self.settings.cdr.record(start);
        self.settings
            .cdr
            .record(CdrEvent::RecordingStart(RecordingStart {
                recording_id: doc.recording_id.clone(),
                path: self.dir.display().to_string(),
                recorder_uri: doc.request_uri.clone(),
                call: call.clone(),
                call_leg: doc.call_leg_id.clone(),
                calluuid: doc.calluuid.clone(),
                dn: doc.dn.clone(),
                other_dn: doc.other_dn.clone(),
                kind: serde_json::to_value(doc.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                files: self.files(),
                group_id: doc.group_id.clone(),
                parties: doc
                    .streams
                    .iter()
                    .map(|s| s.party.clone().unwrap_or_default())
                    .collect(),
            }));
        let connected = crate::cdr::legs::call_leg_connected(doc, from_uri, &call);
        self.settings.cdr.record(connected);
    }

    fn cdr_end(&self, reason: EndReason, storage: Option<crate::cdr::ObjectStorage>) {
        let Some(established) = self.established_at else {
            return; // never answered: no recordingStart, so no recordingEnd either
        };
        let doc = self.session.document();
        let duration_seconds = established.elapsed().as_secs();
        let api_stopped = self.settings.cdr.take_api_stop(&doc.recording_id);
        let end = crate::cdr::legs::call_leg_end(doc, reason, api_stopped, duration_seconds);
        self.settings.cdr.record(end);
        self.settings
            .cdr
            .record(CdrEvent::RecordingEnd(RecordingEnd {
                recording_id: doc.recording_id.clone(),
                end_reason: reason.as_str().to_string(),
                files: self.files(),
                duration_seconds,
                storage,
            }));
    }
}

/// Shortest wait between two media timeout checks, so a check can never spin.
const MEDIA_CHECK_FLOOR: Duration = Duration::from_millis(100);
/// Longest wait between two media timeout checks.
const MEDIA_CHECK_CEILING: Duration = Duration::from_secs(86_400);

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// A new recording's directory, first recording.json and SIPREC metadata, in one hop to
/// the blocking pool. The document is not synced before the INVITE is answered (an fsync
/// costs milliseconds the 200 OK would wait for): the same blocking thread syncs it and the
/// directory right after handing back, and startup recovery covers a crash in between.
async fn create_recording(
    dir: &Path,
    json: Vec<u8>,
    metadata: Option<bytes::Bytes>,
) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    let (created_tx, created) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let result = std::fs::create_dir_all(&dir)
            .and_then(|()| write_first(&dir.join("recording.json"), &json))
            .and_then(|()| match &metadata {
                Some(raw) => std::fs::write(dir.join(super::session::METADATA_FILE), raw),
                None => Ok(()),
            });
        let created = result.is_ok();
        let _ = created_tx.send(result);
        if !created {
            return;
        }
        let synced = std::fs::File::open(dir.join("recording.json"))
            .and_then(|f| f.sync_data())
            .and_then(|()| std::fs::File::open(&dir)?.sync_all());
        if let Err(e) = synced {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot sync new recording");
        }
    });
    created
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("blocking pool gone")))
}

async fn write_document(dir: &Path, doc: &RecordingDocument) {
    let Ok(json) = serde_json::to_vec_pretty(doc) else {
        return;
    };
    let path = dir.join("recording.json");
    let result = tokio::task::spawn_blocking(move || write_atomic(&path, &json)).await;
    if let Ok(Err(e)) | Err(e) = result.map_err(std::io::Error::other) {
        tracing::error!(dir = %dir.display(), error = %e, "cannot write recording.json");
    }
}

/// Write to a temporary file, sync it, rename it over the old one: readers and a crash
/// see either the old or the new document, never half of one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_replace(path, data, true)
}

/// The first recording.json is not synced inline: an fsync costs milliseconds the 200 OK
/// would wait for. It is synced right after (`sync_in_background`); startup recovery
/// handles a crash in between.
fn write_replace(path: &Path, data: &[u8], sync: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    if sync {
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)
}

/// The first recording.json of a new directory: there is no old document a reader or a
/// crash could need instead, so it is written in place — no temporary file, no rename (a
/// file creation is the costly part on this path). Not synced inline either, like
/// [`write_replace`] with `sync` false. An existing file (a reused directory) is replaced
/// atomically as usual.
fn write_first(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f.write_all(data),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => write_replace(path, data, false),
        Err(e) => Err(e),
    }
}

/// Remove date directories a discarded recording leaves empty (never `root` itself).
async fn remove_empty_parents(dir: &Path, root: &Path) {
    let mut current = dir.parent();
    while let Some(d) = current {
        if d == root || !d.starts_with(root) {
            break;
        }
        if tokio::fs::remove_dir(d).await.is_err() {
            break; // not empty: another recording lives there
        }
        current = d.parent();
    }
}
