//! `[storage]`: finished recordings uploaded to an S3-compatible bucket (SPEC §8).
//!
//! Without the table nothing is uploaded. Credentials are never in this file: they come
//! from `credentials_file` or from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, and are
//! read at startup (`storage::s3::Credentials`), so no configuration dump can show them.

use super::{ConfigError, LAYOUT_PLACEHOLDERS, invalid};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The placeholder that stands for the recording's directory relative to `recording.dir`.
pub const PATH_PLACEHOLDER: &str = "path";

/// Server-side encryption the recorder asks for on every PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ServerSideEncryption {
    /// Send no encryption header: the bucket's default applies.
    #[default]
    #[serde(rename = "none")]
    None,
    /// SSE-S3 (`x-amz-server-side-encryption: AES256`).
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS with `sse_kms_key_id`.
    #[serde(rename = "aws:kms")]
    Kms,
    /// Dual-layer SSE-KMS with `sse_kms_key_id`.
    #[serde(rename = "aws:kms:dsse")]
    KmsDsse,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `http(s)://host:port` of the S3 API. Empty = AWS S3 of `region`.
    pub endpoint: Option<String>,
    /// Default `us-east-1`.
    pub region: String,
    pub bucket: String,
    /// A TOML file with `access_key_id` and `secret_access_key`; without it the
    /// environment's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub credentials_file: Option<PathBuf>,
    /// `bucket.host/key` instead of `host/bucket/key`. Default false (path style: Garage,
    /// MinIO, Ceph).
    pub virtual_hosted_style: bool,
    /// Put before every key, e.g. `recordings/`. Default empty.
    pub prefix: String,
    /// Each recording's key below `prefix`: `/`-separated pieces with the
    /// `recording.layout` placeholders, plus `{path}` = the recording's directory relative
    /// to `recording.dir`. Default `{path}`.
    pub key_template: String,
    /// `x-amz-storage-class` on every PUT (e.g. `STANDARD_IA`); `None` = the bucket default.
    pub storage_class: Option<String>,
    pub server_side_encryption: ServerSideEncryption,
    pub sse_kms_key_id: Option<String>,
    /// Keep the local copy after a verified upload. Default true.
    pub keep_local: bool,
    /// Objects uploaded at once over all recordings. Default 4.
    pub upload_concurrency: usize,
    /// Retry backoff cap (`storage.max_backoff_secs`); retries never stop. Default 300 s.
    pub max_backoff: Duration,
    /// Per request (PUT, HEAD) (`storage.request_timeout_secs`). Default 120 s.
    pub request_timeout: Duration,
    /// How long a recording's end waits for its upload before the `recordingEnd` CDR goes
    /// out saying `pending` (`storage.cdr_wait_secs`). Default 10 s; 0 never waits.
    pub cdr_wait: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            endpoint: None,
            region: "us-east-1".to_owned(),
            bucket: String::new(),
            credentials_file: None,
            virtual_hosted_style: false,
            prefix: String::new(),
            key_template: format!("{{{PATH_PLACEHOLDER}}}"),
            storage_class: None,
            server_side_encryption: ServerSideEncryption::None,
            sse_kms_key_id: None,
            keep_local: true,
            upload_concurrency: 4,
            max_backoff: Duration::from_secs(300),
            request_timeout: Duration::from_secs(120),
            cdr_wait: Duration::from_secs(10),
        }
    }
}

/// The `[storage]` table as written; every key optional except `bucket`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StorageFile {
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    credentials_file: Option<PathBuf>,
    virtual_hosted_style: Option<bool>,
    prefix: Option<String>,
    key_template: Option<String>,
    storage_class: Option<String>,
    server_side_encryption: Option<ServerSideEncryption>,
    sse_kms_key_id: Option<String>,
    keep_local: Option<bool>,
    upload_concurrency: Option<usize>,
    max_backoff_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    cdr_wait_secs: Option<u64>,
}

impl StorageFile {
    pub(super) fn into_config(self) -> StorageConfig {
        let mut c = StorageConfig::default();
        let text = |s: String| (!s.is_empty()).then_some(s);
        c.endpoint = self.endpoint.and_then(text);
        merge!(c.region, self.region);
        merge!(c.bucket, self.bucket);
        c.credentials_file = self.credentials_file.filter(|p| !p.as_os_str().is_empty());
        merge!(c.virtual_hosted_style, self.virtual_hosted_style);
        merge!(c.prefix, self.prefix);
        merge!(c.key_template, self.key_template);
        c.storage_class = self.storage_class.and_then(text);
        merge!(c.server_side_encryption, self.server_side_encryption);
        c.sse_kms_key_id = self.sse_kms_key_id.and_then(text);
        merge!(c.keep_local, self.keep_local);
        merge!(c.upload_concurrency, self.upload_concurrency);
        merge!(
            c.max_backoff,
            self.max_backoff_secs.map(Duration::from_secs)
        );
        merge!(
            c.request_timeout,
            self.request_timeout_secs.map(Duration::from_secs)
        );
        merge!(c.cdr_wait, self.cdr_wait_secs.map(Duration::from_secs));
        c
    }
}

impl StorageConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(invalid("storage.bucket", "must be set in [storage]"));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(invalid(
                "storage.endpoint",
                format!("\"{e}\" is not an http:// or https:// URL"),
            ));
        }
        if self.region.is_empty() {
            return Err(invalid("storage.region", "must not be empty"));
        }
        check_key_template(&self.key_template).map_err(|m| invalid("storage.key_template", m))?;
        if self.prefix.starts_with('/') || self.prefix.split('/').any(|p| p == "..") {
            return Err(invalid(
                "storage.prefix",
                "must not start with / or contain a .. piece",
            ));
        }
        let kms = matches!(
            self.server_side_encryption,
            ServerSideEncryption::Kms | ServerSideEncryption::KmsDsse
        );
        if self.sse_kms_key_id.is_some() && !kms {
            return Err(invalid(
                "storage.sse_kms_key_id",
                "only with server_side_encryption = \"aws:kms\" or \"aws:kms:dsse\"",
            ));
        }
        if self.upload_concurrency == 0 || self.upload_concurrency > 64 {
            return Err(invalid("storage.upload_concurrency", "must be 1 to 64"));
        }
        if self.max_backoff.is_zero() {
            return Err(invalid("storage.max_backoff_secs", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid(
                "storage.request_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.cdr_wait > Duration::from_secs(300) {
            return Err(invalid("storage.cdr_wait_secs", "must be at most 300"));
        }
        if self.credentials_file.is_none()
            && (std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
                || std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none())
        {
            return Err(invalid(
                "storage.credentials_file",
                "not set, and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not both in the environment",
            ));
        }
        Ok(())
    }
}

/// Every `{name}` must be a layout placeholder or `{path}`, and `{path}` a whole piece
/// (it expands to several).
fn check_key_template(template: &str) -> Result<(), String> {
    if template.split('/').all(|p| p.is_empty()) {
        return Err("must not be empty".into());
    }
    for piece in template.split('/') {
        let mut rest = piece;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed {{ in \"{piece}\""));
            };
            let name = &rest[open + 1..open + close];
            if name == PATH_PLACEHOLDER {
                if piece != format!("{{{PATH_PLACEHOLDER}}}") {
                    return Err("{path} must be a whole /-separated piece".into());
                }
            } else if !LAYOUT_PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "unknown placeholder {{{name}}} (known: path, {})",
                    LAYOUT_PLACEHOLDERS.join(", ")
                ));
            }
            rest = &rest[open + close + 1..];
        }
    }
    Ok(())
}
