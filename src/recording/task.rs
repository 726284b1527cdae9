//! One task per recording: it owns the recording's state, its stream tasks and files, and
//! follows the events the SIP layer emits for it, in order.

use super::EndReason;
use super::layout::{LayoutValues, recording_dir};
use super::session::{DtmfEntry, RecordingDocument, RecordingSession};
use super::stream::{
    StreamBlock, StreamControl, StreamTask, answered_codecs, bind_stream, timeline_for,
};
use super::wav::{StereoInterleaver, WavFormat};
use super::writer::{FileId, WriterHandle};
use crate::cdr::{
    CallLegEnd, CallLegEndReason, CallLegStart, CallLegUpdate, CdrEvent, RecordingEnd,
    RecordingStart, RxAudio,
};
use crate::config::{FileSampleRate, MediaSource, PausePolicy};
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
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    pub cdr: crate::cdr::CdrSink,
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
    senders: HashMap<String, mpsc::UnboundedSender<RecordingEvent>>,
    tasks: JoinSet<()>,
    reports: mpsc::UnboundedSender<RecordingReport>,
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
        }
    }

    pub fn dispatch(&mut self, event: RecordingEvent) {
        // Reap finished tasks so the set does not grow with the number of calls ever made.
        while self.tasks.try_join_next().is_some() {}
        match event {
            RecordingEvent::Prepare {
                recording_id,
                request,
                media,
                flow,
            } => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.senders.insert(recording_id.clone(), tx);
                let task =
                    RecordingTask::new(self.settings.clone(), recording_id, *request, media, flow);
                self.tasks.spawn(task.run(rx, self.reports.clone()));
            }
            RecordingEvent::Ended {
                ref recording_id, ..
            }
            | RecordingEvent::Discarded { ref recording_id } => {
                if let Some(tx) = self.senders.remove(recording_id) {
                    let _ = tx.send(event);
                }
            }
            RecordingEvent::Established { ref recording_id }
            | RecordingEvent::MediaChanged {
                ref recording_id, ..
            } => {
                if let Some(tx) = self.senders.get(recording_id) {
                    let _ = tx.send(event);
                }
            }
        }
    }

    pub fn active(&self) -> usize {
        self.senders.len()
    }

    /// Wait until every recording task has finished (after all were told to end).
    pub async fn join_all(&mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// A running stream as the recording task sees it.
struct StreamHandle {
    sdp_index: usize,
    control: mpsc::UnboundedSender<StreamControl>,
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
}

struct Stereo {
    interleaver: StereoInterleaver,
    file: FileId,
    out: Vec<i16>,
}

struct RecordingTask {
    settings: Arc<RecordingSettings>,
    recording_id: String,
    request: RecordingRequest,
    session: RecordingSession,
    dir: PathBuf,
    /// The accepted audio streams of the initial negotiation, in order.
    initial_media: Vec<crate::sdp::NegotiatedStream>,
    streams: Vec<StreamHandle>,
    stereo: Option<Stereo>,
    /// When the 200 OK went out; `None` until then (and no CDRs before it).
    established_at: Option<Instant>,
}

impl RecordingTask {
    fn new(
        settings: Arc<RecordingSettings>,
        recording_id: String,
        request: RecordingRequest,
        media: MediaSession,
        _flow: Flow,
    ) -> Self {
        let started = OffsetDateTime::now_utc();
        let session = RecordingSession::new(&recording_id, &request, &media, started);
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
            streams: vec![],
            stereo: None,
            established_at: None,
        }
    }

    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<RecordingEvent>,
        reports: mpsc::UnboundedSender<RecordingReport>,
    ) {
        let (blocks_tx, mut blocks) = mpsc::unbounded_channel();
        let prepared = self.prepare(blocks_tx).await;
        let recording_id = self.recording_id.clone();
        if let Err(e) = &prepared {
            // Directory, file or RTP socket: the error says which.
            tracing::error!(recording_id, dir = %self.dir.display(), error = %e, "cannot prepare recording");
            self.discard().await;
        }
        let failed = prepared.is_err();
        let result = prepared.map_err(|e| {
            // ENOSPC: the disk is full; let the SRC hunt to another recorder.
            if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::AddrInUse {
                PrepareError::Unavailable
            } else {
                PrepareError::Failed
            }
        });
        let _ = reports.send(RecordingReport::Prepared {
            recording_id: recording_id.clone(),
            result,
        });
        if failed {
            return;
        }
        sync_in_background(&self.dir);
        let mut media_check = tokio::time::interval(Duration::from_secs(1));
        let mut timeout_reported = false;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    None => {
                        // The SIP side is gone without an end: finalize what we have.
                        self.finish(EndReason::Error, &mut blocks).await;
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
                        self.stop_streams(&mut blocks).await;
                        self.discard().await;
                        return;
                    }
                    Some(RecordingEvent::MediaChanged { media, .. }) => self.media_changed(&media).await,
                    Some(RecordingEvent::Ended { reason, .. }) => {
                        self.finish(reason, &mut blocks).await;
                        tracing::info!(recording_id, end_reason = reason.as_str(), "recording ended");
                        return;
                    }
                },
                Some(block) = blocks.recv() => self.take_block(block),
                _ = media_check.tick() => {
                    self.publish();
                    if !timeout_reported && self.media_timed_out(Instant::now()) {
                        timeout_reported = true;
                        tracing::warn!(recording_id, timeout_secs = self.settings.media_timeout.as_secs(), "no RTP: ending recording");
                        let _ = reports.send(RecordingReport::Stop { recording_id: recording_id.clone(), reason: EndReason::MediaTimeout });
                    }
                }
            }
        }
    }

    /// Directory, sockets, files and recording.json, before the INVITE is answered.
    async fn prepare(&mut self, blocks: mpsc::UnboundedSender<StreamBlock>) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let start = Instant::now();
        let media = self.initial_media.clone();
        let mut tasks = Vec::new();
        for (index, stream) in media.iter().enumerate() {
            let sockets = bind_stream(self.settings.media_bind_ip, stream).map_err(|e| {
                std::io::Error::new(e.kind(), format!("RTP port {}: {e}", stream.local_port))
            })?;
            let timeline = timeline_for(
                stream,
                self.settings.pause_policy,
                self.settings.file_sample_rate,
                start,
            )
            .map_err(std::io::Error::other)?;
            let sample_rate = timeline.sample_rate();
            let name = format!("stream-{index}.wav");
            let file = self
                .settings
                .writer
                .open(self.dir.join(&name), WavFormat::mono(sample_rate))
                .map_err(std::io::Error::other)?;
            if let Some(entry) = self.session.document_mut().streams.get_mut(index) {
                entry.file = Some(name);
                entry.sample_rate = Some(sample_rate);
            }
            let (control, control_rx) = mpsc::unbounded_channel();
            let receiving = stream.answered_direction == Direction::RecvOnly;
            self.streams.push(StreamHandle {
                sdp_index: stream.index,
                control,
                file,
                sample_rate,
                direction: stream.answered_direction,
                codecs: answered_codecs(stream),
                remote: stream.remote_addr,
                srtp_key: stream.srtp.as_ref().map(|k| k.remote.clone()),
                last_activity: start,
                finished: false,
            });
            tasks.push((
                StreamTask {
                    index,
                    sockets,
                    timeline,
                    remote: stream.remote_addr,
                    media_source: self.settings.media_source,
                    paused: !receiving,
                    srtp: super::stream::srtp_for(stream)?,
                    warned_undecodable: false,
                },
                control_rx,
            ));
        }
        if let [left, right, ..] = self.streams.as_slice() {
            let interleaver = StereoInterleaver::new(left.sample_rate, right.sample_rate)?;
            let format = WavFormat::stereo(interleaver.output_rate());
            let file = self
                .settings
                .writer
                .open(self.dir.join(STEREO_FILE), format)
                .map_err(std::io::Error::other)?;
            self.stereo = Some(Stereo {
                interleaver,
                file,
                out: Vec::new(),
            });
            self.session.document_mut().mixed_file = Some(STEREO_FILE.to_string());
        }
        let json =
            serde_json::to_vec_pretty(self.session.document()).map_err(std::io::Error::other)?;
        let path = self.dir.join("recording.json");
        tokio::task::spawn_blocking(move || write_replace(&path, &json, false))
            .await
            .map_err(std::io::Error::other)??;
        if let Some(raw) = self.request.siprec_metadata.clone() {
            tokio::fs::write(self.dir.join(super::session::METADATA_FILE), raw).await?;
        }
        // Receiving starts only once everything exists: a failure above leaves no task behind.
        for (task, control_rx) in tasks {
            tokio::spawn(task.run(control_rx, blocks.clone()));
        }
        Ok(())
    }

    fn take_block(&mut self, block: StreamBlock) {
        let index = block.index;
        let Some(stream) = self.streams.get_mut(index) else {
            return;
        };
        if let Some(at) = block.last_packet {
            stream.last_activity = stream.last_activity.max(at);
        }
        stream.finished |= block.last;
        if let Some(stereo) = self.stereo.as_mut() {
            match index {
                0 => stereo
                    .interleaver
                    .push_left(&block.samples, &mut stereo.out),
                1 => stereo
                    .interleaver
                    .push_right(&block.samples, &mut stereo.out),
                _ => 0,
            };
            if !stereo.out.is_empty() {
                let _ = self
                    .settings
                    .writer
                    .append(stereo.file, std::mem::take(&mut stereo.out));
            }
        }
        if !block.samples.is_empty() {
            let _ = self.settings.writer.append(stream.file, block.samples);
        }
        let dominant = block.stats.dominant_codec();
        let doc = self.session.document_mut();
        if let Some(entry) = doc.streams.iter_mut().find(|e| e.index == index) {
            entry.packets_received = block.stats.packets_received;
            entry.packets_lost = block.stats.packets_lost;
            entry.packets_duplicate = block.stats.packets_duplicate;
            entry.packets_late = block.stats.packets_late;
            entry.jitter_ms = (block.stats.jitter_ms * 100.0).round() / 100.0;
            entry.ssrcs = block.stats.ssrcs;
            entry.packets_undecodable = block
                .stats
                .packets_undecodable
                .iter()
                .map(|(pt, n)| (pt.to_string(), *n))
                .collect();
            entry.codecs_received.clear();
            for (_, name, n) in &block.stats.audio_by_payload_type {
                *entry.codecs_received.entry((*name).to_owned()).or_default() += n;
            }
            if let Some((pt, name)) = dominant {
                entry.codec = Some(name.to_owned());
                entry.payload_type = Some(pt);
            }
            entry.srtp_auth_failures = block.srtp_auth_failures;
            entry.srtp_replays = block.srtp_replays;
        }
        doc.dtmf.extend(block.dtmf.into_iter().map(|d| DtmfEntry {
            stream: index,
            digit: d.digit.to_string(),
            at_seconds: (d.at_seconds * 1000.0).round() / 1000.0,
            duration_ms: d.duration_ms,
        }));
    }

    async fn media_changed(&mut self, media: &MediaSession) {
        let changed = self.session.apply_media(media, OffsetDateTime::now_utc());
        if changed {
            tracing::info!(recording_id = self.recording_id, state = ?self.session.state(), "recording state changed");
            if self.established_at.is_some() {
                let doc = self.session.document();
                self.settings
                    .cdr
                    .record(CdrEvent::CallLegUpdate(CallLegUpdate {
                        call_leg: doc.call_leg_id.clone(),
                        deactivated: self.session.state() == super::session::RecordingState::Paused,
                        sip_call_id: Some(doc.sip_call_id.clone()),
                    }));
            }
        }
        let now = Instant::now();
        for stream in &mut self.streams {
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
        self.write_and_publish().await;
    }

    async fn write_and_publish(&self) {
        write_document(&self.dir, self.session.document()).await;
        self.publish();
    }

    fn publish(&self) {
        if let Ok(doc) = serde_json::to_value(self.session.document()) {
            self.settings
                .telemetry
                .publish_active(&self.recording_id, doc);
        }
    }

    /// SPEC §5: no RTP on any receiving stream for `media_timeout`; paused streams exempt.
    fn media_timed_out(&self, now: Instant) -> bool {
        let mut receiving = self
            .streams
            .iter()
            .filter(|s| s.direction == Direction::RecvOnly)
            .peekable();
        receiving.peek().is_some()
            && receiving.all(|s| {
                now.saturating_duration_since(s.last_activity) >= self.settings.media_timeout
            })
    }

    async fn stop_streams(&mut self, blocks: &mut mpsc::UnboundedReceiver<StreamBlock>) {
        for stream in &self.streams {
            let _ = stream.control.send(StreamControl::Stop);
        }
        // Every stream answers Stop with its last block; a bound keeps a stuck task from
        // holding the recording open forever.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.streams.iter().any(|s| !s.finished) {
            match tokio::time::timeout_at(deadline, blocks.recv()).await {
                Ok(Some(block)) => self.take_block(block),
                Ok(None) | Err(_) => break,
            }
        }
    }

    async fn finish(
        &mut self,
        reason: EndReason,
        blocks: &mut mpsc::UnboundedReceiver<StreamBlock>,
    ) {
        self.stop_streams(blocks).await;
        if let Some(mut stereo) = self.stereo.take() {
            let mut out = std::mem::take(&mut stereo.out);
            stereo.interleaver.finish(&mut out);
            if !out.is_empty() {
                let _ = self.settings.writer.append(stereo.file, out);
            }
            if let Ok(reply) = self.settings.writer.close(stereo.file)
                && let Ok(Ok(summary)) = reply.await
            {
                self.session.document_mut().mixed_duration_seconds =
                    Some(round_ms(summary.duration_seconds));
            }
        }
        for (index, stream) in self.streams.iter().enumerate() {
            let Ok(reply) = self.settings.writer.close(stream.file) else {
                continue;
            };
            match reply.await {
                Ok(Ok(summary)) => {
                    if let Some(entry) = self
                        .session
                        .document_mut()
                        .streams
                        .iter_mut()
                        .find(|e| e.index == index)
                    {
                        entry.duration_seconds = Some(round_ms(summary.duration_seconds));
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(recording_id = self.recording_id, error = %e, "cannot finalize WAV")
                }
                Err(_) => tracing::error!(
                    recording_id = self.recording_id,
                    "writer gone before the WAV was final"
                ),
            }
        }
        self.session.end(reason, OffsetDateTime::now_utc());
        write_document(&self.dir, self.session.document()).await;
        self.cdr_end(reason);
        self.settings.telemetry.publish_ended(
            &self.recording_id,
            serde_json::to_value(self.session.document()).ok(),
        );
    }

    /// Cancelled before it was answered: nothing of it is kept.
    async fn discard(&mut self) {
        for stream in &self.streams {
            if let Ok(reply) = self.settings.writer.close(stream.file) {
                let _ = reply.await;
            }
        }
        if let Some(stereo) = &self.stereo
            && let Ok(reply) = self.settings.writer.close(stereo.file)
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
            .publish_ended(&self.recording_id, None);
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
        doc.streams
            .iter()
            .filter_map(|s| s.file.clone())
            .chain(doc.mixed_file.clone())
            .collect()
    }

    fn cdr_start(&self) {
        let doc = self.session.document();
        let call = self.cdr_call();
        self.settings
            .cdr
            .record(CdrEvent::CallLegStart(CallLegStart {
                call_leg: doc.call_leg_id.clone(),
                remote_party: self.request.from_uri.clone(),
                local_address: doc.request_uri.clone(),
                display_name: None,
                sip_call_id: doc.sip_call_id.clone(),
                call: Some(call.clone()),
            }));
        self.settings
            .cdr
            .record(CdrEvent::RecordingStart(RecordingStart {
                recording_id: doc.recording_id.clone(),
                path: self.dir.display().to_string(),
                recorder_uri: doc.request_uri.clone(),
                call,
                call_leg: doc.call_leg_id.clone(),
                calluuid: doc.calluuid.clone(),
                dn: doc.dn.clone(),
                other_dn: doc.other_dn.clone(),
                kind: serde_json::to_value(doc.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                files: self.files(),
            }));
    }

    fn cdr_end(&self, reason: EndReason) {
        let Some(established) = self.established_at else {
            return; // never answered: no recordingStart, so no recordingEnd either
        };
        let doc = self.session.document();
        let duration_seconds = established.elapsed().as_secs();
        self.settings.cdr.record(CdrEvent::CallLegEnd(CallLegEnd {
            call_leg: doc.call_leg_id.clone(),
            reason: CallLegEndReason::from_end_reason(reason.as_str()),
            remote_teardown: reason == EndReason::Bye,
            duration_seconds,
            sip_call_id: doc.sip_call_id.clone(),
            rx_audio: doc
                .streams
                .iter()
                .map(|s| RxAudio {
                    codec: s.codec.clone().unwrap_or_default().to_ascii_lowercase(),
                    packets_received: s.packets_received,
                    packets_lost: s.packets_lost,
                    packet_loss_bursts: None,
                    packet_gap: None,
                    jitter_ms: Some(s.jitter_ms),
                })
                .collect(),
        }));
        self.settings
            .cdr
            .record(CdrEvent::RecordingEnd(RecordingEnd {
                recording_id: doc.recording_id.clone(),
                end_reason: reason.as_str().to_string(),
                files: self.files(),
                duration_seconds,
            }));
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

fn sync_in_background(dir: &Path) {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let synced = std::fs::File::open(dir.join("recording.json"))
            .and_then(|f| f.sync_data())
            .and_then(|()| std::fs::File::open(&dir)?.sync_all());
        if let Err(e) = synced {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot sync new recording");
        }
    });
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
