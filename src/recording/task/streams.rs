//! Streams that come and go (SPEC §5): opening a stream for an m= line a re-INVITE adds,
//! closing one whose line is set to port 0, finalizing files, `mixed.wav` and the verdict.

use super::{RecordingTask, StreamHandle, round_ms};
use crate::error::Chain;
use crate::media::accounting::StreamAccounting;
use crate::recording::mix::{MIXED_FILE, interleave_files, mix_files};
use crate::recording::prepare::PrepareFailure;
use crate::recording::stream::{
    MediaStream, PcmOutput, StreamBlock, StreamControl, answered_codecs, bind_stream, srtp_for,
    timeline_for,
};
use crate::recording::wav::WavFormat;
use crate::recording::writer::WriterCommand;
use crate::sdp::{Direction, MediaKind, MediaSession, NegotiatedStream};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

impl RecordingTask {
    /// Sockets, timeline and file of recording.json stream `index`, assigned to a media
    /// worker but not yet receiving ([`RecordingTask::start_stream`]). Everything that can
    /// fail happens before the file is created: its `Open` goes to `opens`, for the caller
    /// to send once the directory exists.
    pub(super) fn open_stream(
        &mut self,
        index: usize,
        stream: &NegotiatedStream,
        opens: &mut Vec<WriterCommand>,
    ) -> Result<MediaStream, PrepareFailure> {
        let sockets = bind_stream(self.settings.media_bind_ip, stream).map_err(|source| {
            PrepareFailure::RtpPort {
                port: stream.local_port,
                source,
            }
        })?;
        // Every timeline starts at the recording's start: a late party's file is silent
        // up to its join, on the same timeline as the others.
        let timeline = timeline_for(
            stream,
            self.settings.pause_policy,
            self.settings.file_sample_rate,
            self.started,
        )?;
        let srtp = srtp_for(stream)?;
        let sample_rate = timeline.sample_rate();
        let name = format!("stream-{index}.wav");
        let path = self.dir.join(&name);
        let format = WavFormat::mono(sample_rate);
        // The second file sits on the first's writer thread: the stereo file is built there.
        let writer = &self.settings.writer;
        let file = match self.streams.first() {
            Some(first) if index == 1 => writer.new_file_id_beside(first.file),
            _ => writer.new_file_id(),
        };
        opens.push(WriterCommand::Open {
            file_id: file,
            path,
            format,
        });
        if let Some(entry) = self.session.document_mut().streams.get_mut(index) {
            entry.file = Some(name);
            entry.sample_rate = Some(sample_rate);
        }
        let control = self.settings.media.assign();
        let receiving = stream.answered_direction == Direction::RecvOnly;
        self.streams.push(StreamHandle {
            index,
            sdp_index: stream.index,
            control,
            file,
            sample_rate,
            direction: stream.answered_direction,
            codecs: answered_codecs(stream),
            remote: stream.remote_addr,
            srtp_key: stream.srtp.as_ref().map(|k| k.remote.clone()),
            last_activity: std::time::Instant::now(),
            finished: false,
            closed: false,
        });
        Ok(MediaStream {
            index,
            sockets,
            timeline,
            remote: stream.remote_addr,
            media_source: self.settings.media_source,
            paused: !receiving,
            srtp,
            accounting: StreamAccounting::new(sample_rate),
            output: PcmOutput::new(self.settings.writer.clone(), file),
        })
    }

    /// Hands an opened stream to its media worker: from here on it receives.
    pub(super) fn start_stream(
        &mut self,
        stream: MediaStream,
        blocks: &mpsc::UnboundedSender<Box<StreamBlock>>,
    ) {
        let index = stream.index;
        let Some(handle) = self.streams.iter().find(|h| h.index == index) else {
            return;
        };
        if handle.control.start(stream, blocks.clone()).is_err() {
            // Only at shutdown: the workers end after every recording.
            tracing::error!(
                recording_id = self.recording_id,
                stream = index,
                "media workers gone: stream not recorded"
            );
        }
    }

    /// Open a stream for every recording.json stream the re-offer added.
    pub(super) fn open_added_streams(&mut self, media: &MediaSession) {
        let Some(blocks) = self.blocks_tx.clone() else {
            return;
        };
        let added: Vec<(usize, NegotiatedStream)> =
            self.session
                .document()
                .streams
                .iter()
                .filter(|e| e.closed_at_seconds.is_none())
                .filter(|e| !self.streams.iter().any(|h| h.index == e.index))
                .filter_map(|e| {
                    let n = media.streams.iter().find(|n| {
                        n.index == e.sdp_index && n.accepted && n.kind == MediaKind::Audio
                    })?;
                    Some((e.index, n.clone()))
                })
                .collect();
        for (index, stream) in added {
            let mut opens = Vec::new();
            let opened = self
                .open_stream(index, &stream, &mut opens)
                .and_then(|opened| {
                    for open in opens {
                        self.settings.writer.send(open)?;
                    }
                    Ok(opened)
                });
            match opened {
                Ok(opened) => {
                    tracing::info!(
                        recording_id = self.recording_id,
                        stream = index,
                        port = stream.local_port,
                        "stream added"
                    );
                    self.start_stream(opened, &blocks);
                }
                Err(e) => {
                    // The answer already went out; the rest of the recording goes on.
                    let e = Chain(&e);
                    tracing::error!(recording_id = self.recording_id, stream = index, error = %e, "cannot open added stream");
                    if let Some(entry) = self.session.document_mut().streams.get_mut(index) {
                        entry.complete = false;
                        entry.warnings.push(format!("not recorded: {e}"));
                    }
                }
            }
        }
    }

    /// Stop and finalize every stream whose m= line the re-offer removed or declined.
    pub(super) async fn close_removed_streams(
        &mut self,
        blocks: &mut mpsc::UnboundedReceiver<Box<StreamBlock>>,
    ) {
        let doc = self.session.document();
        let removed: Vec<usize> = self
            .streams
            .iter()
            .filter(|h| !h.closed)
            .filter(|h| {
                doc.streams
                    .get(h.index)
                    .is_some_and(|e| e.closed_at_seconds.is_some())
            })
            .map(|h| h.index)
            .collect();
        for index in removed {
            if let Some(h) = self.streams.iter().find(|h| h.index == index) {
                let _ = h.control.send(StreamControl::Stop);
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while self.streams.iter().any(|h| h.index == index && !h.finished) {
                match tokio::time::timeout_at(deadline, blocks.recv()).await {
                    Ok(Some(block)) => self.take_block(*block),
                    Ok(None) | Err(_) => break,
                }
            }
            self.close_file(index).await;
            tracing::info!(
                recording_id = self.recording_id,
                stream = index,
                "stream closed by re-offer"
            );
        }
    }

    /// Finalize stream `index`'s file; its duration goes to recording.json.
    pub(super) async fn close_file(&mut self, index: usize) {
        let Some(h) = self.streams.iter_mut().find(|h| h.index == index) else {
            return;
        };
        h.closed = true;
        h.direction = Direction::Inactive;
        let Ok(reply) = self.settings.writer.close(h.file) else {
            return;
        };
        let failure = match reply.await {
            Ok(Ok(summary)) => {
                if let Some(entry) = self.session.document_mut().streams.get_mut(index) {
                    entry.duration_seconds = Some(round_ms(summary.duration_seconds));
                }
                file_shortfall(summary.samples_dropped, summary.samples_shed)
            }
            Ok(Err(e)) => {
                tracing::error!(recording_id = self.recording_id, error = %e, "cannot finalize WAV");
                Some(format!("not final: {e}"))
            }
            Err(_) => {
                tracing::error!(
                    recording_id = self.recording_id,
                    "writer gone before the WAV was final"
                );
                Some("not final: the writer stopped".to_string())
            }
        };
        // Audio the stream carried is not all in its file: the recording must not look
        // complete.
        if let Some(why) = failure
            && let Some(entry) = self.session.document_mut().streams.get_mut(index)
        {
            entry.file_failed(why);
        }
    }

    /// A second stream added by re-INVITE had no live stereo file: it is made from the two
    /// final files (same timeline, so sample i of both is the same instant).
    pub(super) async fn write_late_stereo(&mut self) {
        let doc = self.session.document();
        let (Some(left), Some(right)) = (
            doc.streams.first().and_then(|s| s.file.clone()),
            doc.streams.get(1).and_then(|s| s.file.clone()),
        ) else {
            return;
        };
        if doc.stereo_file.is_some() {
            return;
        }
        let (left, right) = (self.dir.join(left), self.dir.join(right));
        let out = self.dir.join(super::STEREO_FILE);
        match tokio::task::spawn_blocking(move || interleave_files(&left, &right, &out)).await {
            Ok(Ok(summary)) => {
                let doc = self.session.document_mut();
                doc.stereo_file = Some(super::STEREO_FILE.to_string());
                doc.stereo_duration_seconds = Some(round_ms(summary.duration_seconds));
                doc.mixed_file = doc.stereo_file.clone();
                doc.mixed_duration_seconds = doc.stereo_duration_seconds;
            }
            Ok(Err(e)) => {
                tracing::error!(recording_id = self.recording_id, error = %e, "cannot write stereo.wav")
            }
            Err(e) => {
                tracing::error!(recording_id = self.recording_id, error = %e, "stereo task failed")
            }
        }
    }

    /// With more than two streams, every party summed into `mixed.wav` (files final).
    pub(super) async fn write_mixed(&mut self) {
        let doc = self.session.document();
        if doc.streams.len() <= 2 {
            return;
        }
        let inputs: Vec<_> = doc
            .streams
            .iter()
            .filter_map(|s| s.file.as_ref().map(|f| self.dir.join(f)))
            .collect();
        let out = self.dir.join(MIXED_FILE);
        match tokio::task::spawn_blocking(move || mix_files(&inputs, &out)).await {
            Ok(Ok(summary)) => {
                let doc = self.session.document_mut();
                doc.mixed_file = Some(MIXED_FILE.to_string());
                doc.mixed_duration_seconds = Some(round_ms(summary.duration_seconds));
            }
            Ok(Err(e)) => {
                tracing::error!(recording_id = self.recording_id, error = %e, "cannot write mixed.wav")
            }
            Err(e) => {
                tracing::error!(recording_id = self.recording_id, error = %e, "mixing task failed")
            }
        }
    }

    /// Log and count what the final verdict says (SPEC: an incomplete or silent recording
    /// says so in recording.json, metrics and the log).
    pub(super) fn report_verdict(&self) {
        let doc = self.session.document();
        for s in doc.streams.iter().filter(|s| s.silent) {
            self.settings
                .telemetry
                .silent_streams
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                recording_id = self.recording_id,
                stream = s.index,
                packets_received = s.packets_received,
                peak_level = s.peak_level,
                "stream is silent throughout"
            );
        }
        if !doc.complete {
            self.settings
                .telemetry
                .incomplete_recordings
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(recording_id = self.recording_id, warnings = ?doc.warnings, "recording incomplete");
        }
    }
}

/// Why a file holds less of its stream's audio than the stream carried, if it does.
fn file_shortfall(dropped: u64, shed: u64) -> Option<String> {
    let mut why = Vec::new();
    if dropped > 0 {
        why.push(format!("{dropped} samples not written (see the log)"));
    }
    if shed > 0 {
        why.push(format!(
            "{shed} samples replaced by silence: the disk fell behind (recording.max_pending_audio_mib)"
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}
