//! What an upload job is on disk and what recording.json says about it: plain data.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where a recording's upload stands (recording.json `storage.state`, the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Waiting for its turn.
    Queued,
    /// Objects are being uploaded.
    Uploading,
    /// The last attempt failed; it is retried after a backoff.
    FailedRetrying,
    /// Every object is in the bucket and verified.
    Uploaded,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Queued => "queued",
            UploadState::Uploading => "uploading",
            UploadState::FailedRetrying => "failed_retrying",
            UploadState::Uploaded => "uploaded",
        }
    }
}

/// Why a step failed, by who is at fault; the label of
/// `sip_recorder_storage_upload_failures_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// The server refused our credentials or their rights (401/403, bad signature).
    Auth,
    /// The bucket does not exist (404).
    NotFound,
    /// No answer: connection refused, DNS, timeout.
    Unreachable,
    /// The server answered with another error.
    Server,
    /// The object in the bucket is not what we sent (size or ETag differ).
    Verify,
    /// Our side: a file cannot be read, a job file or recording.json cannot be written.
    Local,
}

impl FailureKind {
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Auth,
        FailureKind::NotFound,
        FailureKind::Unreachable,
        FailureKind::Server,
        FailureKind::Verify,
        FailureKind::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Auth => "auth",
            FailureKind::NotFound => "bucket_not_found",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Server => "server_error",
            FailureKind::Verify => "verify_mismatch",
            FailureKind::Local => "local_io",
        }
    }
}

/// One file of a recording and its object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// File name in the recording directory.
    pub file: String,
    /// Object key in the bucket.
    pub key: String,
    /// Bytes (the local size when listed, the verified size once uploaded).
    pub size: u64,
    /// Hex SHA-256 of what was uploaded (the server checked it: `x-amz-checksum-sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The object's ETag as HEAD returned it: the hex MD5 of a single-part upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub uploaded: bool,
}

/// What a verified upload established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub size: u64,
    pub sha256: String,
    pub etag: String,
}

/// A job file in `<spool>/storage/jobs/<recording_id>.json`: one recording's upload and how
/// far it got. Rewritten (tmp + fsync + rename) after every step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub recording_id: String,
    /// The recording's directory.
    pub dir: PathBuf,
    pub bucket: String,
    /// Every object key starts with this and a `/`.
    pub key_prefix: String,
    /// Unix seconds when the job was made.
    pub created_unix: u64,
    /// `None` until the (final) directory was listed.
    #[serde(default)]
    pub objects: Option<Vec<ObjectRecord>>,
    #[serde(default)]
    pub attempts: u64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// recording.json `storage`: where the recording's objects are and how far the upload is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageRecord {
    pub state: UploadState,
    pub bucket: String,
    pub key_prefix: String,
    /// Listed once the upload began. In the uploaded recording.json itself its own entry
    /// is left out (a document cannot hold its own digest); the API and the CDR have it.
    #[serde(default)]
    pub objects: Vec<ObjectRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl StorageRecord {
    pub fn of(job: &Job, state: UploadState) -> StorageRecord {
        StorageRecord {
            state,
            bucket: job.bucket.clone(),
            key_prefix: job.key_prefix.clone(),
            objects: job.objects.clone().unwrap_or_default(),
            uploaded_at: None,
            last_error: match state {
                UploadState::FailedRetrying => job.last_error.clone(),
                _ => None,
            },
        }
    }
}
