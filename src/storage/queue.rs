//! The upload queue's core, sans-IO: which job's next step runs now, what a result changes,
//! when to wake up. The runner (`storage::service`) does the I/O and reports back; every
//! method takes `now` and nothing here reads a clock, a file or a socket.
//!
//! A job is one recording. Its steps run one at a time, in order: list the directory's
//! files, upload and verify each object (`recording.json` last), finish locally (rewrite
//! or delete the local copy). A failed step is retried after a capped exponential backoff,
//! forever; other jobs go on meanwhile. At most `concurrency` steps run at once.

use super::record::{FailureKind, Job, ObjectRecord, UploadState, Verified};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// First retry delay; doubles per consecutive failure up to the configured cap.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// One step of one job, for the runner to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub recording_id: String,
    pub work: Work,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// List the recording's files (it is final): `handle_listed`.
    List,
    /// Upload and verify `objects[i]`: `handle_uploaded`.
    Upload(usize),
    /// Every object is verified: rewrite or delete the local copy, drop the job file:
    /// `handle_finished`.
    Finish,
}

/// A job's last failure, for the log, recording.json and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

struct Entry {
    job: Job,
    busy: bool,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    last_failure: Option<Failure>,
}

impl Entry {
    fn next_work(&self) -> Work {
        match &self.job.objects {
            None => Work::List,
            Some(objects) => match objects.iter().position(|o| !o.uploaded) {
                Some(i) => Work::Upload(i),
                None => Work::Finish,
            },
        }
    }

    fn ready(&self, now: Instant) -> bool {
        !self.busy && self.retry_at.is_none_or(|t| t <= now)
    }
}

pub struct UploadQueue {
    concurrency: usize,
    max_backoff: Duration,
    /// Jobs in arrival order (FIFO); `order` maps a recording id to its sequence number.
    entries: BTreeMap<u64, Entry>,
    order: HashMap<String, u64>,
    next_seq: u64,
    running: usize,
}

impl UploadQueue {
    pub fn new(concurrency: usize, max_backoff: Duration) -> Self {
        UploadQueue {
            concurrency: concurrency.max(1),
            max_backoff: max_backoff.max(FIRST_BACKOFF),
            entries: BTreeMap::new(),
            order: HashMap::new(),
            next_seq: 0,
            running: 0,
        }
    }

    /// Takes a job; a second push of the same recording is ignored (`false`).
    pub fn push(&mut self, job: Job) -> bool {
        if self.order.contains_key(&job.recording_id) {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(job.recording_id.clone(), seq);
        self.entries.insert(
            seq,
            Entry {
                job,
                busy: false,
                consecutive_failures: 0,
                retry_at: None,
                last_failure: None,
            },
        );
        true
    }

    /// The next step to run now, oldest job first; `None` when all are busy, waiting for
    /// a retry, or the concurrency limit is reached.
    pub fn poll_step(&mut self, now: Instant) -> Option<Step> {
        if self.running >= self.concurrency {
            return None;
        }
        let entry = self.entries.values_mut().find(|e| e.ready(now))?;
        entry.busy = true;
        entry.retry_at = None;
        self.running += 1;
        Some(Step {
            recording_id: entry.job.recording_id.clone(),
            work: entry.next_work(),
        })
    }

    /// When the next retry falls due (if a step could start then).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.running >= self.concurrency {
            return None; // a finishing step wakes the runner anyway
        }
        self.entries
            .values()
            .filter(|e| !e.busy)
            .filter_map(|e| e.retry_at)
            .min()
    }

    fn step_done(&mut self, recording_id: &str) -> Option<&mut Entry> {
        let seq = *self.order.get(recording_id)?;
        let entry = self.entries.get_mut(&seq)?;
        if entry.busy {
            entry.busy = false;
            self.running -= 1;
        }
        Some(entry)
    }

    /// The recording's files, recording.json last.
    pub fn handle_listed(&mut self, recording_id: &str, objects: Vec<ObjectRecord>) {
        if let Some(e) = self.step_done(recording_id) {
            e.job.objects = Some(objects);
            e.consecutive_failures = 0;
            e.last_failure = None;
        }
    }

    pub fn handle_uploaded(&mut self, recording_id: &str, index: usize, verified: Verified) {
        if let Some(e) = self.step_done(recording_id) {
            if let Some(o) = e.job.objects.as_mut().and_then(|o| o.get_mut(index)) {
                o.size = verified.size;
                o.sha256 = Some(verified.sha256);
                o.etag = Some(verified.etag);
                o.uploaded = true;
            }
            e.consecutive_failures = 0;
            e.last_failure = None;
        }
    }

    /// A step failed: retry it after the backoff. Returns the delay.
    pub fn handle_failed(
        &mut self,
        now: Instant,
        recording_id: &str,
        failure: Failure,
    ) -> Option<Duration> {
        let max = self.max_backoff;
        let e = self.step_done(recording_id)?;
        e.consecutive_failures = e.consecutive_failures.saturating_add(1);
        let delay = backoff(e.consecutive_failures, max);
        e.retry_at = Some(now + delay);
        e.job.attempts += 1;
        e.job.last_error = Some(format!("{}: {}", failure.kind.as_str(), failure.message));
        e.last_failure = Some(failure);
        Some(delay)
    }

    /// The job is done: forget it. Returns it (every object verified).
    pub fn handle_finished(&mut self, recording_id: &str) -> Option<Job> {
        self.step_done(recording_id)?;
        let seq = self.order.remove(recording_id)?;
        self.entries.remove(&seq).map(|e| e.job)
    }

    pub fn job(&self, recording_id: &str) -> Option<&Job> {
        let seq = self.order.get(recording_id)?;
        self.entries.get(seq).map(|e| &e.job)
    }

    pub fn contains(&self, recording_id: &str) -> bool {
        self.order.contains_key(recording_id)
    }

    /// What recording.json and the API say about a job still in the queue.
    pub fn state(&self, recording_id: &str) -> Option<UploadState> {
        let e = self.entries.get(self.order.get(recording_id)?)?;
        Some(if e.last_failure.is_some() {
            UploadState::FailedRetrying
        } else if e
            .job
            .objects
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.uploaded))
            || e.busy
        {
            UploadState::Uploading
        } else {
            UploadState::Queued
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the oldest job still queued was made (its job file's `created_unix`).
    pub fn oldest_created_unix(&self) -> Option<u64> {
        self.entries.values().map(|e| e.job.created_unix).min()
    }
}

/// 1 s, 2 s, 4 s, … up to `max`.
pub fn backoff(consecutive_failures: u32, max: Duration) -> Duration {
    let doublings = consecutive_failures.saturating_sub(1).min(20);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
