//! One task per recording: it owns the recording's state and files, and follows the
//! events the SIP layer emits for it, in order.

use super::layout::{LayoutValues, recording_dir};
use super::session::{RecordingDocument, RecordingSession};
use crate::sdp::MediaSession;
use crate::sip::Flow;
use crate::sip::classify::RecordingRequest;
use crate::sip::uas::{PrepareError, RecordingEvent};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Settings every recording task shares.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    pub recordings_dir: PathBuf,
    pub layout: String,
}

/// A recording task's report back to the SIP layer.
#[derive(Debug)]
pub struct Prepared {
    pub recording_id: String,
    pub result: Result<(), PrepareError>,
}

/// Routes SIP-side events to the recording tasks and keeps track of them.
pub struct RecordingTasks {
    settings: Arc<RecordingSettings>,
    senders: HashMap<String, mpsc::UnboundedSender<RecordingEvent>>,
    tasks: JoinSet<()>,
    prepared: mpsc::UnboundedSender<Prepared>,
}

impl RecordingTasks {
    pub fn new(settings: RecordingSettings, prepared: mpsc::UnboundedSender<Prepared>) -> Self {
        RecordingTasks {
            settings: Arc::new(settings),
            senders: HashMap::new(),
            tasks: JoinSet::new(),
            prepared,
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
                let settings = self.settings.clone();
                let prepared = self.prepared.clone();
                self.tasks.spawn(run(
                    settings,
                    recording_id,
                    *request,
                    media,
                    flow,
                    rx,
                    prepared,
                ));
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

async fn run(
    settings: Arc<RecordingSettings>,
    recording_id: String,
    request: RecordingRequest,
    media: MediaSession,
    _flow: Flow,
    mut events: mpsc::UnboundedReceiver<RecordingEvent>,
    prepared: mpsc::UnboundedSender<Prepared>,
) {
    let started = OffsetDateTime::now_utc();
    let mut session = RecordingSession::new(&recording_id, &request, &media, started);
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
    let mut result = create(&dir, session.document()).await;
    if let (Ok(()), Some(raw)) = (&result, request.siprec_metadata.clone()) {
        result = tokio::fs::write(dir.join(super::session::METADATA_FILE), raw).await;
    }
    if let Err(e) = &result {
        tracing::error!(recording_id, dir = %dir.display(), error = %e, "cannot create recording");
    }
    let failed = result.is_err();
    let _ = prepared.send(Prepared {
        recording_id: recording_id.clone(),
        result: result.map_err(|e| {
            if e.raw_os_error() == Some(28) {
                PrepareError::Unavailable
            } else {
                PrepareError::Failed
            }
        }),
    });
    if failed {
        return;
    }
    sync_in_background(&dir);
    while let Some(event) = events.recv().await {
        match event {
            RecordingEvent::Prepare { .. } => {}
            RecordingEvent::Established { .. } => {
                tracing::info!(recording_id, dir = %dir.display(), kind = ?request.kind, "recording started");
            }
            RecordingEvent::Discarded { .. } => {
                // Cancelled before it was answered: nothing of it is kept.
                if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                    tracing::warn!(recording_id, error = %e, "cannot remove discarded recording");
                }
                remove_empty_parents(&dir, &settings.recordings_dir).await;
                return;
            }
            RecordingEvent::MediaChanged { media, .. } => {
                let changed = session.apply_media(&media, OffsetDateTime::now_utc());
                if changed {
                    tracing::info!(recording_id, state = ?session.state(), "recording state changed");
                }
                write_document(&dir, session.document()).await;
            }
            RecordingEvent::Ended { reason, .. } => {
                session.end(reason, OffsetDateTime::now_utc());
                write_document(&dir, session.document()).await;
                tracing::info!(
                    recording_id,
                    end_reason = reason.as_str(),
                    "recording ended"
                );
                return;
            }
        }
    }
}

/// Create the directory and the first recording.json. Not synced here: an fsync costs
/// milliseconds that the caller's 200 OK would wait for; the first sync happens right after
/// (see [`sync_in_background`]) and startup recovery handles a crash in between.
async fn create(dir: &Path, doc: &RecordingDocument) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let json = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || write_replace(&dir.join("recording.json"), &json, false))
        .await
        .map_err(std::io::Error::other)?
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
