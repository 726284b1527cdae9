//! The bucket, through `object_store` (SigV4 signing, the S3 wire protocol): a single-part
//! PUT that carries `x-amz-checksum-sha256` — the server recomputes it over what it
//! received and refuses the PUT when it differs — then a HEAD whose size and ETag (the
//! hex MD5 of a single-part upload) must match what we hold locally. Only then is an
//! object marked uploaded.

use super::record::{FailureKind, Verified};
use crate::config::{ServerSideEncryption, StorageConfig};
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig,
};
use sha2::Digest as _;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The secret access key: shown as `***` by `Debug`, so no log line or dump can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    access_key_id: String,
    secret_access_key: String,
}

/// Why the storage client could not be set up; names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StorageSetupError {
    #[error("storage.credentials_file {}: {source}", path.display())]
    CredentialsRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "storage.credentials_file {}: {message} (expected access_key_id = \"…\" and secret_access_key = \"…\")",
        path.display()
    )]
    CredentialsFormat { path: PathBuf, message: String },
    #[error(
        "storage: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set when storage.credentials_file is not"
    )]
    CredentialsMissing,
    #[error("storage: cannot set up the S3 client: {0}")]
    Client(#[source] object_store::Error),
    #[error(transparent)]
    Jobs(#[from] super::jobs::JobFileError),
}

impl Credentials {
    /// From `storage.credentials_file`, else from the environment.
    pub fn load(config: &StorageConfig) -> Result<Credentials, StorageSetupError> {
        match &config.credentials_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    StorageSetupError::CredentialsRead {
                        path: path.clone(),
                        source,
                    }
                })?;
                let file: CredentialsFile = toml::from_str(&text).map_err(|e| {
                    StorageSetupError::CredentialsFormat {
                        path: path.clone(),
                        // toml's message may quote the file: never the secret's line.
                        message: e.message().to_string(),
                    }
                })?;
                Ok(Credentials {
                    access_key_id: file.access_key_id,
                    secret_access_key: Secret(file.secret_access_key),
                })
            }
            None => match (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Ok(Credentials {
                    access_key_id: id,
                    secret_access_key: Secret(secret),
                }),
                _ => Err(StorageSetupError::CredentialsMissing),
            },
        }
    }
}

/// An upload or verification that did not succeed, by who is at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct UploadError {
    pub kind: FailureKind,
    pub message: String,
}

impl UploadError {
    fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        UploadError {
            kind,
            message: message.into(),
        }
    }
}

/// A file read into memory with the digests the upload is checked against.
pub struct LocalObject {
    pub data: Bytes,
    pub sha256_hex: String,
    pub md5_hex: String,
}

/// Reads and hashes a file (blocking: call it off the reactor).
pub fn read_local(path: &Path) -> Result<LocalObject, UploadError> {
    let data = std::fs::read(path).map_err(|e| {
        UploadError::new(
            FailureKind::Local,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Ok(local_object(Bytes::from(data)))
}

pub fn local_object(data: Bytes) -> LocalObject {
    let sha256_hex = hex(&sha2::Sha256::digest(&data));
    let md5_hex = hex(&<md5::Md5 as md5::Digest>::digest(&data));
    LocalObject {
        data,
        sha256_hex,
        md5_hex,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone)]
pub struct Bucket {
    store: AmazonS3,
    put_attributes: Attributes,
}

impl Bucket {
    pub fn new(
        config: &StorageConfig,
        credentials: &Credentials,
    ) -> Result<Bucket, StorageSetupError> {
        let timeout = config.request_timeout;
        let client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(Duration::from_secs(5).min(timeout))
            .with_allow_http(
                config
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            );
        // The queue retries with its own backoff, forever; the client's retries would only
        // hide a failing server for minutes.
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: timeout,
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key.0)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let sse = match config.server_side_encryption {
            ServerSideEncryption::None => None,
            ServerSideEncryption::Aes256 => Some("AES256"),
            ServerSideEncryption::Kms => Some("aws:kms"),
            ServerSideEncryption::KmsDsse => Some("aws:kms:dsse"),
        };
        if let Some(sse) = sse {
            builder = builder.with_config(config_key("aws_server_side_encryption")?, sse);
        }
        if let Some(key) = &config.sse_kms_key_id {
            builder = builder.with_config(config_key("aws_sse_kms_key_id")?, key);
        }
        let store = builder.build().map_err(StorageSetupError::Client)?;
        let mut put_attributes = Attributes::new();
        if let Some(class) = &config.storage_class {
            put_attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        Ok(Bucket {
            store,
            put_attributes,
        })
    }

    /// PUT (checksummed) then HEAD (size + ETag = MD5): `Ok` only when the bucket holds
    /// exactly these bytes.
    pub async fn put_verified(
        &self,
        key: &str,
        local: &LocalObject,
    ) -> Result<Verified, UploadError> {
        let path = ObjectPath::from(key);
        let size = local.data.len() as u64;
        let options = PutOptions {
            attributes: self.put_attributes.clone(),
            ..PutOptions::default()
        };
        self.store
            .put_opts(&path, PutPayload::from(local.data.clone()), options)
            .await
            .map_err(|e| classify(&e, "PUT", key))?;
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| classify(&e, "HEAD", key))?;
        let etag = meta
            .e_tag
            .as_deref()
            .unwrap_or_default()
            .trim_matches('"')
            .to_ascii_lowercase();
        if meta.size != size {
            return Err(UploadError::new(
                FailureKind::Verify,
                format!(
                    "{key}: the bucket holds {} bytes, we sent {size}",
                    meta.size
                ),
            ));
        }
        if etag != local.md5_hex {
            return Err(UploadError::new(
                FailureKind::Verify,
                format!(
                    "{key}: ETag {etag:?} is not the MD5 {} of what we sent",
                    local.md5_hex
                ),
            ));
        }
        Ok(Verified {
            size,
            sha256: local.sha256_hex.clone(),
            etag,
        })
    }
}

fn config_key(name: &str) -> Result<AmazonS3ConfigKey, StorageSetupError> {
    name.parse().map_err(StorageSetupError::Client)
}

/// Maps a client error onto who is at fault, with a message an operator can act on.
fn classify(e: &object_store::Error, op: &str, key: &str) -> UploadError {
    use object_store::Error as E;
    let text = e.to_string();
    let kind = match e {
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => FailureKind::Auth,
        E::NotFound { .. } => FailureKind::NotFound,
        _ if [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "AuthorizationHeaderMalformed",
        ]
        .iter()
        .any(|m| text.contains(m)) =>
        {
            FailureKind::Auth
        }
        // The server recomputed x-amz-checksum-sha256 and the body differed: corrupted on
        // the way.
        _ if text.contains("InvalidDigest") || text.contains("BadDigest") => FailureKind::Verify,
        _ if text.contains("status code") || text.contains("error response") => FailureKind::Server,
        _ => FailureKind::Unreachable,
    };
    let hint = match kind {
        FailureKind::Auth => {
            "the server refused the credentials (check storage.credentials_file or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the key's rights on the bucket): "
        }
        FailureKind::NotFound => "no such bucket or object (check storage.bucket): ",
        FailureKind::Unreachable => "the server did not answer (check storage.endpoint): ",
        _ => "",
    };
    UploadError::new(kind, format!("{op} {key}: {hint}{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let c = Credentials {
            access_key_id: "GK123".into(),
            secret_access_key: Secret("very-secret-value".into()),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("GK123"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn credentials_come_from_the_file_with_its_keys_checked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("creds");
        std::fs::write(
            &path,
            "access_key_id = \"GK1\"\nsecret_access_key = \"s3cr3t\"\n",
        )
        .expect("write");
        let config = StorageConfig {
            credentials_file: Some(path.clone()),
            ..StorageConfig::default()
        };
        let c = Credentials::load(&config).expect("load");
        assert_eq!(c.access_key_id, "GK1");
        assert_eq!(c.secret_access_key, Secret("s3cr3t".into()));
        std::fs::write(
            &path,
            "access_key = \"GK1\"\nsecret_access_key = \"s3cr3t\"\n",
        )
        .expect("write");
        let e = Credentials::load(&config)
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("storage.credentials_file"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn client_errors_are_classified_by_who_is_at_fault() {
        use object_store::Error as E;
        let generic = |text: &str| E::Generic {
            store: "S3",
            source: text.to_string().into(),
        };
        let cases = [
            (
                E::PermissionDenied {
                    path: "k".into(),
                    source: "403".into(),
                },
                FailureKind::Auth,
            ),
            (
                E::NotFound {
                    path: "k".into(),
                    source: "NoSuchBucket".into(),
                },
                FailureKind::NotFound,
            ),
            (
                generic("400 Bad Request: <Code>InvalidDigest</Code>"),
                FailureKind::Verify,
            ),
            (
                generic("<Code>SignatureDoesNotMatch</Code>"),
                FailureKind::Auth,
            ),
            (
                generic("Server returned non-2xx status code: 500"),
                FailureKind::Server,
            ),
            (
                generic("error sending request: Connection refused"),
                FailureKind::Unreachable,
            ),
        ];
        for (e, kind) in cases {
            let u = classify(&e, "PUT", "a/b.wav");
            assert_eq!(u.kind, kind, "{e}");
            assert!(u.message.starts_with("PUT a/b.wav: "), "{}", u.message);
        }
    }

    #[test]
    fn digests_are_the_standard_ones() {
        let o = local_object(Bytes::from_static(b"abc"));
        assert_eq!(
            o.sha256_hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(o.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
    }
}
