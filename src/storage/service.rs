//! The runner: one task that owns the queue core, starts its steps (file I/O off the
//! reactor, requests through `s3::Bucket`), records each result in the job file, keeps
//! recording.json's `storage` and the API up to date, and wakes up for retries.

use super::jobs::{self, JobSpool, RECORDING_JSON};
use super::queue::{Failure, Step, UploadQueue, Work};
use super::record::{FailureKind, Job, ObjectRecord, StorageRecord, UploadState, Verified};
use super::s3::{self, Bucket, UploadError};
use super::{Command, StorageStats};
use crate::config::StorageConfig;
use crate::telemetry::Telemetry;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(super) struct RunnerSetup {
    pub config: StorageConfig,
    pub bucket: Bucket,
    pub spool: JobSpool,
    pub recordings_dir: PathBuf,
    pub stats: Arc<StorageStats>,
    pub telemetry: Arc<Telemetry>,
}

/// What a step came to.
enum Outcome {
    Listed(Vec<ObjectRecord>),
    Uploaded(usize, Verified),
    Finished,
    Failed(Failure),
}

/// What every step needs, shared with the spawned step tasks.
struct StepContext {
    bucket: Bucket,
    spool: JobSpool,
    keep_local: bool,
    recordings_dir: PathBuf,
}

pub(super) struct Runner {
    core: UploadQueue,
    ctx: Arc<StepContext>,
    stats: Arc<StorageStats>,
    telemetry: Arc<Telemetry>,
    waiters: HashMap<String, Vec<oneshot::Sender<StorageRecord>>>,
    /// The state last written to each job's recording.json (rewritten only on a change).
    written: HashMap<String, UploadState>,
    steps: JoinSet<(Step, Outcome)>,
    /// The step of each running task, so that a task that died still frees its job.
    running: HashMap<tokio::task::Id, Step>,
}

impl Runner {
    pub fn new(s: RunnerSetup) -> Runner {
        Runner {
            core: UploadQueue::new(s.config.upload_concurrency, s.config.max_backoff),
            ctx: Arc::new(StepContext {
                bucket: s.bucket,
                spool: s.spool,
                keep_local: s.config.keep_local,
                recordings_dir: s.recordings_dir,
            }),
            stats: s.stats,
            telemetry: s.telemetry,
            waiters: HashMap::new(),
            written: HashMap::new(),
            steps: JoinSet::new(),
            running: HashMap::new(),
        }
    }

    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        stop: CancellationToken,
    ) {
        loop {
            self.start_steps();
            self.publish_stats();
            let wake = self.core.poll_timeout();
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(command) = commands.recv() => self.command(command),
                Some(done) = self.steps.join_next_with_id(), if !self.steps.is_empty() => match done {
                    Ok((id, (step, outcome))) => {
                        self.running.remove(&id);
                        self.apply(step, outcome).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "storage step task failed");
                        if let Some(step) = self.running.remove(&e.id()) {
                            let failure = Failure { kind: FailureKind::Local, message: format!("step task failed: {e}") };
                            self.apply(step, Outcome::Failed(failure)).await;
                        }
                    }
                },
                _ = sleep_until(wake), if wake.is_some() => {}
            }
        }
        // In-flight steps are dropped here; their job files say what is left, and the next
        // start resumes them.
        self.steps.abort_all();
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Submit { job, done } => {
                let id = job.recording_id.clone();
                if let Some(done) = done {
                    self.waiters.entry(id.clone()).or_default().push(done);
                }
                let state = if job.last_error.is_some() {
                    UploadState::FailedRetrying
                } else {
                    UploadState::Queued
                };
                self.publish(&id, &StorageRecord::of(&job, state), false);
                self.core.push(job);
            }
        }
    }

    fn start_steps(&mut self) {
        while let Some(step) = self.core.poll_step(Instant::now()) {
            let Some(job) = self.core.job(&step.recording_id).cloned() else {
                continue;
            };
            let ctx = self.ctx.clone();
            let running = step.clone();
            let handle = self.steps.spawn(async move {
                let outcome = run_step(&ctx, &job, step.work).await;
                (step, outcome)
            });
            self.running.insert(handle.id(), running);
        }
    }

    async fn apply(&mut self, step: Step, outcome: Outcome) {
        let id = step.recording_id.as_str();
        match outcome {
            Outcome::Listed(objects) => self.core.handle_listed(id, objects),
            Outcome::Uploaded(index, verified) => {
                self.stats.objects_uploaded.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_uploaded
                    .fetch_add(verified.size, Ordering::Relaxed);
                self.core.handle_uploaded(id, index, verified);
            }
            Outcome::Finished => {
                if let Some(job) = self.core.handle_finished(id) {
                    self.finished(job);
                }
                return;
            }
            Outcome::Failed(failure) => {
                self.stats.count_failure(failure.kind);
                let (kind, message) = (failure.kind, failure.message.clone());
                if let Some(delay) = self.core.handle_failed(Instant::now(), id, failure) {
                    tracing::warn!(
                        recording_id = id,
                        reason = kind.as_str(),
                        error = message,
                        retry_in_secs = delay.as_secs(),
                        "recording upload failed, will retry"
                    );
                }
            }
        }
        self.progress(id).await;
    }

    /// After a step: the job file (durable progress), recording.json on a state change,
    /// the API.
    async fn progress(&mut self, id: &str) {
        let (Some(job), Some(state)) = (self.core.job(id).cloned(), self.core.state(id)) else {
            return;
        };
        let spool = self.ctx.spool.clone();
        let saved = job.clone();
        let record = StorageRecord::of(&job, state);
        // Once every object is verified, the local recording.json is the uploaded final
        // document (written by its own step): never overwrite it with an earlier state.
        let complete = job
            .objects
            .as_ref()
            .is_some_and(|o| o.iter().all(|o| o.uploaded));
        let changed = self.written.get(id) != Some(&state) && job.objects.is_some() && !complete;
        if changed {
            self.written.insert(id.to_string(), state);
        }
        let doc_record = record.clone();
        let result = tokio::task::spawn_blocking(move || {
            let r = spool.save(&saved);
            if changed {
                write_storage_record(&saved.dir, &doc_record);
            }
            r
        })
        .await;
        if let Ok(Err(e)) = result {
            self.stats.count_failure(FailureKind::Local);
            tracing::error!(recording_id = id, error = %e, "cannot record upload progress (the step is redone after a restart)");
        }
        self.publish(id, &record, false);
    }

    fn finished(&mut self, job: Job) {
        self.written.remove(&job.recording_id);
        // The queue gauge first: whoever sees the upload counted sees it dequeued.
        self.publish_stats();
        self.stats
            .recordings_uploaded
            .fetch_add(1, Ordering::Relaxed);
        let record = uploaded_record(&job);
        tracing::info!(
            recording_id = job.recording_id,
            bucket = job.bucket,
            key_prefix = job.key_prefix,
            objects = record.objects.len(),
            kept_local = self.ctx.keep_local,
            "recording uploaded and verified"
        );
        self.publish(&job.recording_id, &record, true);
        for waiter in self.waiters.remove(&job.recording_id).unwrap_or_default() {
            let _ = waiter.send(record.clone());
        }
    }

    fn publish(&self, recording_id: &str, record: &StorageRecord, done: bool) {
        if let Ok(v) = serde_json::to_value(record) {
            self.telemetry.publish_storage(recording_id, v, done);
        }
    }

    fn publish_stats(&self) {
        self.stats
            .queued
            .store(self.core.len() as u64, Ordering::Relaxed);
        self.stats.oldest_queued_unix.store(
            self.core.oldest_created_unix().unwrap_or(0),
            Ordering::Relaxed,
        );
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

async fn run_step(ctx: &StepContext, job: &Job, work: Work) -> Outcome {
    let result = match work {
        Work::List => {
            let job = job.clone();
            blocking(move || {
                jobs::list_objects(&job)
                    .map_err(|e| local(format!("cannot list {}: {e}", job.dir.display())))
            })
            .await
            .map(Outcome::Listed)
        }
        Work::Upload(index) => upload(ctx, job, index)
            .await
            .map(|v| Outcome::Uploaded(index, v)),
        Work::Finish => {
            let (job, keep, root, spool) = (
                job.clone(),
                ctx.keep_local,
                ctx.recordings_dir.clone(),
                ctx.spool.clone(),
            );
            blocking(move || finish_locally(&job, keep, &root, &spool))
                .await
                .map(|()| Outcome::Finished)
        }
    };
    result.unwrap_or_else(|e| {
        Outcome::Failed(Failure {
            kind: e.kind,
            message: e.message,
        })
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, UploadError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(local(format!("worker thread failed: {e}"))))
}

fn local(message: String) -> UploadError {
    UploadError {
        kind: FailureKind::Local,
        message,
    }
}

/// One object: the file as it is on disk, or for recording.json the final document that
/// names every object as uploaded; after verification that document also replaces the
/// local one, so both copies are the same bytes.
async fn upload(ctx: &StepContext, job: &Job, index: usize) -> Result<Verified, UploadError> {
    let object = job
        .objects
        .as_ref()
        .and_then(|o| o.get(index))
        .cloned()
        .ok_or_else(|| local(format!("job {} has no object {index}", job.recording_id)))?;
    let path = job.dir.join(&object.file);
    if object.file != RECORDING_JSON {
        let local_object = blocking(move || s3::read_local(&path)).await?;
        return ctx.bucket.put_verified(&object.key, &local_object).await;
    }
    let final_doc = {
        let job = job.clone();
        blocking(move || final_document(&job)).await?
    };
    let local_object = s3::local_object(final_doc.clone().into());
    let verified = ctx.bucket.put_verified(&object.key, &local_object).await?;
    if ctx.keep_local {
        blocking(move || {
            crate::recording::task::write_atomic(&path, &final_doc)
                .map_err(|e| local(format!("cannot write {}: {e}", path.display())))
        })
        .await?;
    }
    Ok(verified)
}

/// recording.json with `storage.state = "uploaded"`, every other object verified.
fn final_document(job: &Job) -> Result<Vec<u8>, UploadError> {
    let path = job.dir.join(RECORDING_JSON);
    let text =
        std::fs::read(&path).map_err(|e| local(format!("cannot read {}: {e}", path.display())))?;
    let mut doc: Value = serde_json::from_slice(&text)
        .map_err(|e| local(format!("{} is not JSON: {e}", path.display())))?;
    let record = document_record(job);
    doc["storage"] = serde_json::to_value(&record).map_err(|e| local(e.to_string()))?;
    serde_json::to_vec_pretty(&doc).map_err(|e| local(e.to_string()))
}

/// The finished upload as the CDR and the API give it: every object with its verified
/// size and digest.
fn uploaded_record(job: &Job) -> StorageRecord {
    let mut record = StorageRecord::of(job, UploadState::Uploaded);
    record.uploaded_at = Some(crate::recording::session::rfc3339(
        time::OffsetDateTime::now_utc(),
    ));
    record
}

/// The same for the uploaded recording.json itself, which cannot describe its own bytes:
/// its entry is left out (its key is `key_prefix/recording.json`).
fn document_record(job: &Job) -> StorageRecord {
    let mut record = uploaded_record(job);
    record.objects.retain(|o| o.file != RECORDING_JSON);
    record
}

/// Every object is verified: delete the local copy unless it is kept, then the job file.
fn finish_locally(
    job: &Job,
    keep_local: bool,
    root: &Path,
    spool: &JobSpool,
) -> Result<(), UploadError> {
    if !keep_local && job.dir.exists() {
        for o in job.objects.iter().flatten() {
            match std::fs::remove_file(job.dir.join(&o.file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(local(format!(
                        "cannot delete {}: {e}",
                        job.dir.join(&o.file).display()
                    )));
                }
                _ => {}
            }
        }
        // Files that appeared after the listing stay, and so does the directory then.
        if std::fs::remove_dir(&job.dir).is_ok() {
            remove_empty_parents(&job.dir, root);
        }
    }
    spool.remove(&job.recording_id).map_err(|e| {
        local(format!(
            "cannot remove the job file of {}: {e}",
            job.recording_id
        ))
    })
}

fn remove_empty_parents(dir: &Path, root: &Path) {
    let mut current = dir.parent();
    while let Some(d) = current {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        current = d.parent();
    }
}

/// Sets recording.json `storage` (atomic rewrite). A missing or unreadable document is
/// logged; the upload goes on.
pub(super) fn write_storage_record(dir: &Path, record: &StorageRecord) {
    let path = dir.join(RECORDING_JSON);
    let result = std::fs::read(&path)
        .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(std::io::Error::other))
        .and_then(|mut doc| {
            doc["storage"] = serde_json::to_value(record).map_err(std::io::Error::other)?;
            let bytes = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
            crate::recording::task::write_atomic(&path, &bytes)
        });
    if let Err(e) = result {
        tracing::warn!(file = %path.display(), error = %e, "cannot note the upload state in recording.json");
    }
}
