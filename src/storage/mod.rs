//! Finished recordings to S3-compatible object storage (SPEC §8), through a durable queue.
//!
//! * `record.rs` — the job file and recording.json `storage` shapes (plain data);
//! * `queue.rs` — the sans-IO queue core: next step, results, backoff, on a given `now`;
//! * `jobs.rs` — job files in `<spool_dir>/storage/jobs/` (tmp + fsync + rename), keys,
//!   the file list;
//! * `s3.rs` — the bucket through `object_store`: checksummed PUT, verifying HEAD;
//! * `service.rs` — the runner task that carries the core's steps out.
//!
//! A recording task hands its recording over when it ends ([`StorageHandle::prepare`]
//! before its final recording.json, [`StorageHandle::submit_and_wait`] after it), so a
//! crash at any point leaves either a job file or an unfinished recording that startup
//! recovery finalizes and enqueues.

pub mod jobs;
pub mod queue;
pub mod record;
pub mod s3;
mod service;

use crate::config::StorageConfig;
use crate::telemetry::Telemetry;
use jobs::{JobFileError, JobSpool};
pub use record::{FailureKind, Job, ObjectRecord, StorageRecord, UploadState};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Upload counters for `/metrics`.
#[derive(Debug, Default)]
pub struct StorageStats {
    /// Objects uploaded and verified.
    pub objects_uploaded: AtomicU64,
    /// Recordings whose every object is uploaded and verified.
    pub recordings_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    /// Recordings in the queue.
    pub queued: AtomicU64,
    /// Unix seconds when the oldest queued job was made; 0 = none queued.
    pub oldest_queued_unix: AtomicU64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
}

impl StorageStats {
    pub fn count_failure(&self, kind: FailureKind) {
        if let Ok(mut f) = self.failures.lock() {
            *f.entry(kind.as_str()).or_default() += 1;
        }
    }

    /// Failed steps by reason, every reason listed (0 included) so that alerts can rate() it.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        let f = self.failures.lock().map(|f| f.clone()).unwrap_or_default();
        FailureKind::ALL
            .iter()
            .map(|k| (k.as_str(), f.get(k.as_str()).copied().unwrap_or(0)))
            .collect()
    }

    /// Seconds the oldest queued job has waited.
    pub fn oldest_queued_age_secs(&self) -> u64 {
        match self.oldest_queued_unix.load(Ordering::Relaxed) {
            0 => 0,
            t => unix_now().saturating_sub(t),
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

enum Command {
    Submit {
        job: Job,
        done: Option<oneshot::Sender<StorageRecord>>,
    },
}

/// What recording tasks and startup use to hand recordings over. Cheap to clone.
#[derive(Clone)]
pub struct StorageHandle {
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<StorageStats>,
    spool: JobSpool,
    config: Arc<StorageConfig>,
    recordings_dir: PathBuf,
}

impl std::fmt::Debug for StorageHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageHandle")
            .field("bucket", &self.config.bucket)
            .finish_non_exhaustive()
    }
}

impl StorageHandle {
    /// The recording's job, its file written (durably) before the final recording.json, so
    /// that a crash in between still uploads it. `doc` is its document.
    pub async fn prepare(&self, dir: &Path, doc: &Value) -> (Job, Result<(), JobFileError>) {
        let job = jobs::new_job(&self.config, &self.recordings_dir, dir, doc);
        let spool = self.spool.clone();
        let saved = job.clone();
        let result = tokio::task::spawn_blocking(move || spool.save(&saved))
            .await
            .unwrap_or_else(|e| {
                Err(JobFileError::Write {
                    path: dir.to_path_buf(),
                    source: std::io::Error::other(e),
                })
            });
        (job, result)
    }

    /// Queues a prepared job and waits up to `storage.cdr_wait_secs` for it to be
    /// uploaded. Returns the verified record, or `None` while the upload is still going.
    pub async fn submit_and_wait(&self, job: Job) -> Option<StorageRecord> {
        let (tx, rx) = oneshot::channel();
        let wait = self.config.cdr_wait;
        let _ = self.commands.send(Command::Submit {
            job,
            done: (!wait.is_zero()).then_some(tx),
        });
        if wait.is_zero() {
            return None;
        }
        tokio::time::timeout(wait, rx).await.ok()?.ok()
    }

    /// A recording startup recovery finalized: job file (unless one exists already), its
    /// recording.json marked queued, and into the queue. Blocking.
    pub fn enqueue_recovered(
        &self,
        dir: &Path,
        doc: &Value,
    ) -> Result<StorageRecord, JobFileError> {
        let job = jobs::new_job(&self.config, &self.recordings_dir, dir, doc);
        let record = StorageRecord::of(&job, UploadState::Queued);
        if self.spool.exists(&job.recording_id) {
            return Ok(record); // handed over before the crash: loaded at start already
        }
        self.spool.save(&job)?;
        // Before the queue may touch it: the runner writes this file from now on.
        service::write_storage_record(dir, &record);
        let _ = self.commands.send(Command::Submit { job, done: None });
        Ok(record)
    }

    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }
}

/// The upload service: loads the jobs an earlier run left, then runs until `shutdown`.
pub struct StorageService {
    pub handle: StorageHandle,
    pub stats: Arc<StorageStats>,
}

/// `[storage]` of the whole configuration: the started service's handle (its counters go
/// to `/metrics`), or `None` without the table.
pub fn start_configured(
    config: &crate::config::Config,
    telemetry: &Arc<Telemetry>,
    shutdown: &CancellationToken,
) -> Result<Option<StorageHandle>, s3::StorageSetupError> {
    let Some(storage) = &config.storage else {
        return Ok(None);
    };
    let service = start(
        storage,
        &config.recording.dir,
        &config.spool.dir,
        telemetry.clone(),
        shutdown.clone(),
    )?;
    let _ = telemetry.storage.set(service.stats);
    Ok(Some(service.handle))
}

/// Recordings startup recovery finalized go to the queue; returns, per recording, what its
/// `recordingEnd` says (`pending`), `None` without storage.
pub async fn queue_recovered(
    storage: Option<&StorageHandle>,
    recovered: &[crate::recording::startup::Recovered],
) -> Vec<Option<crate::cdr::ObjectStorage>> {
    let Some(storage) = storage.cloned() else {
        return vec![None; recovered.len()];
    };
    let recovered: Vec<(PathBuf, String)> = recovered
        .iter()
        .map(|r| (r.dir.clone(), r.document.recording_id.clone()))
        .collect();
    let pending = cdr_location(storage.bucket(), None);
    let n = recovered.len();
    let queued = tokio::task::spawn_blocking(move || {
        for (dir, recording_id) in &recovered {
            // The key template may name any field: read the whole document recovery finalized.
            let doc = std::fs::read(dir.join("recording.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .unwrap_or_else(|| serde_json::json!({ "recording_id": recording_id }));
            if let Err(e) = storage.enqueue_recovered(dir, &doc) {
                tracing::error!(dir = %dir.display(), error = %crate::error::Chain(&e), "cannot queue the recovered recording for upload; it stays local only");
            }
        }
    })
    .await;
    if let Err(e) = queued {
        tracing::error!(error = %e, "queueing recovered recordings for upload failed");
    }
    vec![Some(pending); n]
}

/// Sets up the client (credentials, bucket) and starts the runner.
pub fn start(
    config: &StorageConfig,
    recordings_dir: &Path,
    spool_dir: &Path,
    telemetry: Arc<Telemetry>,
    shutdown: CancellationToken,
) -> Result<StorageService, s3::StorageSetupError> {
    let credentials = s3::Credentials::load(config)?;
    let bucket = s3::Bucket::new(config, &credentials)?;
    let spool = JobSpool::open(spool_dir)?;
    let stats = Arc::new(StorageStats::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let earlier = spool.load_all();
    if !earlier.is_empty() {
        tracing::info!(
            jobs = earlier.len(),
            "resuming uploads left by the previous run"
        );
    }
    for job in earlier {
        let _ = tx.send(Command::Submit { job, done: None });
    }
    let runner = service::Runner::new(service::RunnerSetup {
        config: config.clone(),
        bucket,
        spool: spool.clone(),
        recordings_dir: recordings_dir.to_path_buf(),
        stats: stats.clone(),
        telemetry,
    });
    tokio::spawn(runner.run(rx, shutdown));
    tracing::info!(
        bucket = config.bucket,
        endpoint = config.endpoint.as_deref().unwrap_or("AWS"),
        keep_local = config.keep_local,
        "uploading finished recordings to object storage"
    );
    Ok(StorageService {
        handle: StorageHandle {
            commands: tx,
            stats: stats.clone(),
            spool,
            config: Arc::new(config.clone()),
            recordings_dir: recordings_dir.to_path_buf(),
        },
        stats,
    })
}

impl StorageHandle {
    /// For a recording task at its end, before its final recording.json: the job file,
    /// and `storage` (queued) in the document. A job file that cannot be written (a full
    /// disk) is logged and counted; the job is still queued from memory, and the runner
    /// writes its file again after every step.
    pub async fn prepare_document(
        &self,
        dir: &Path,
        doc: &mut crate::recording::session::RecordingDocument,
    ) -> Option<Job> {
        let value = serde_json::to_value(&*doc).ok()?;
        let (job, saved) = self.prepare(dir, &value).await;
        if let Err(e) = saved {
            self.stats.count_failure(FailureKind::Local);
            tracing::error!(recording_id = doc.recording_id, error = %crate::error::Chain(&e), "cannot write the upload job file; uploading from memory until it can be written");
        }
        doc.storage = Some(StorageRecord::of(&job, UploadState::Queued));
        Some(job)
    }
}

/// The `recordingEnd` CDR's `<objectStorage>`: the verified location, or pending.
pub fn cdr_location(bucket: &str, uploaded: Option<&StorageRecord>) -> crate::cdr::ObjectStorage {
    match uploaded {
        Some(r) if r.state == UploadState::Uploaded => crate::cdr::ObjectStorage {
            uploaded: true,
            bucket: r.bucket.clone(),
            key_prefix: r.key_prefix.clone(),
            objects: r
                .objects
                .iter()
                .map(|o| crate::cdr::StoredObject {
                    key: o.key.clone(),
                    size: o.size,
                    sha256: o.sha256.clone(),
                })
                .collect(),
        },
        _ => crate::cdr::ObjectStorage {
            uploaded: false,
            bucket: bucket.to_string(),
            ..crate::cdr::ObjectStorage::default()
        },
    }
}
