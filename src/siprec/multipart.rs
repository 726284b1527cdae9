//! multipart/mixed (RFC 2046) splitting for SIPREC INVITEs.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPart {
    /// Lower-cased media type without parameters (`application/sdp`).
    pub content_type: String,
    /// Part headers (names as written, values trimmed).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("multipart Content-Type without boundary")]
    NoBoundary,
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    #[error("more than {0} body parts")]
    TooManyParts(usize),
}

/// Split a multipart body. `content_type` is the full Content-Type header value
/// (with `boundary=`, quoted or not).
pub fn split_multipart(content_type: &str, body: &Bytes) -> Result<Vec<BodyPart>, MultipartError> {
    todo!("{content_type} {}", body.len())
}

/// True for `application/rs-metadata+xml` and legacy `application/rs-metadata`.
pub fn is_recording_metadata(content_type: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct == "application/rs-metadata+xml" || ct == "application/rs-metadata"
}
