//! Which kind of recording INVITE this is (SPEC §1), and what the recording needs to know
//! about it.

use super::message::{Header, RequestUri, SipRequest};
use super::uri::{GenesysTarget, genesys_target, uri_params};
use crate::siprec::{BodyPart, MultipartError, is_recording_metadata, split_multipart};
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingKind {
    Genesys,
    Cms,
    Siprec,
}

/// Everything about the initial INVITE that the recording keeps (recording.json, CDRs).
#[derive(Debug, Clone)]
pub struct RecordingRequest {
    pub kind: RecordingKind,
    pub genesys: Option<GenesysTarget>,
    pub uri_params: BTreeMap<String, String>,
    pub sip_call_id: String,
    pub from: String,
    /// The URI inside From (the SRC).
    pub from_uri: String,
    pub to: String,
    pub request_uri: String,
    pub sip_headers: Vec<Header>,
    /// The raw SIPREC recording metadata part, kept for the SIPREC layer.
    pub siprec_metadata: Option<Bytes>,
}

/// The SDP offer and the classification of a request body.
#[derive(Debug, Clone)]
pub struct ClassifiedBody {
    pub sdp: Option<Bytes>,
    pub siprec_metadata: Option<Bytes>,
}

/// Body problems, mapped onto status codes by the UAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// 415: a body type the recorder does not take.
    Unsupported(String),
    /// 400: a multipart body that cannot be split.
    BadMultipart(MultipartError),
}

pub const ACCEPTED_BODY_TYPES: &str =
    "application/sdp, multipart/mixed, application/rs-metadata+xml, application/rs-metadata";

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Take the SDP (and the SIPREC metadata) out of a request body.
pub fn classify_body(req: &SipRequest) -> Result<ClassifiedBody, BodyError> {
    if req.body.is_empty() {
        return Ok(ClassifiedBody {
            sdp: None,
            siprec_metadata: None,
        });
    }
    let content_type = req.content_type.as_deref().unwrap_or("application/sdp");
    match media_type(content_type).as_str() {
        "application/sdp" => Ok(ClassifiedBody {
            sdp: Some(req.body.clone()),
            siprec_metadata: None,
        }),
        "multipart/mixed" => {
            let parts =
                split_multipart(content_type, &req.body).map_err(BodyError::BadMultipart)?;
            let find = |pred: &dyn Fn(&BodyPart) -> bool| {
                parts.iter().find(|p| pred(p)).map(|p| p.body.clone())
            };
            let sdp = find(&|p| p.content_type == "application/sdp");
            let siprec_metadata = find(&|p| is_recording_metadata(&p.content_type));
            if sdp.is_none() && siprec_metadata.is_none() {
                return Err(BodyError::Unsupported(content_type.to_string()));
            }
            Ok(ClassifiedBody {
                sdp,
                siprec_metadata,
            })
        }
        // RFC 7866 §6.2: a metadata update alone (re-INVITE or UPDATE, legacy type too).
        // `Content-Disposition: recording-session` is expected but not required: the type
        // alone is unambiguous.
        ct if is_recording_metadata(ct) => Ok(ClassifiedBody {
            sdp: None,
            siprec_metadata: Some(req.body.clone()),
        }),
        other => Err(BodyError::Unsupported(other.to_string())),
    }
}

/// SPEC §1: `genesys` when the user part is `record=<id>`; `siprec` when `Require: siprec`
/// or a recording metadata part is present; otherwise `cms`.
pub fn classify(req: &SipRequest, body: &ClassifiedBody) -> RecordingRequest {
    let (genesys, params) = match &req.uri {
        RequestUri::Sip(uri) => (genesys_target(uri), uri_params(uri)),
        RequestUri::Other { .. } => (None, BTreeMap::new()),
    };
    let siprec = req.header_tokens("Require").iter().any(|t| t == "siprec")
        || body.siprec_metadata.is_some();
    let kind = if genesys.is_some() {
        RecordingKind::Genesys
    } else if siprec {
        RecordingKind::Siprec
    } else {
        RecordingKind::Cms
    };
    RecordingRequest {
        kind,
        genesys,
        uri_params: params,
        sip_call_id: req.call_id.clone(),
        from: req.from.raw.clone(),
        from_uri: req.from.uri.clone(),
        to: req.to.raw.clone(),
        request_uri: req.uri_raw.clone(),
        sip_headers: req.headers.clone(),
        siprec_metadata: body.siprec_metadata.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, SipMessage, parse_message};

    fn request(content_type: &str, body: &str) -> SipRequest {
        let text = format!(
            "UPDATE sip:srs@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n\
             From: <sip:src@192.0.2.9>;tag=a\r\nTo: <sip:srs@192.0.2.1>;tag=b\r\nCall-ID: c\r\n\
             CSeq: 2 UPDATE\r\nContent-Type: {content_type}\r\n\
             Content-Disposition: recording-session\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match parse_message(Bytes::from(text), &Limits::default()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("test request did not parse: {other:?}"),
        }
    }

    const DOC: &str = "<recording xmlns='urn:ietf:params:xml:ns:recording:1'/>";

    #[test]
    fn metadata_only_bodies_are_accepted() {
        for ct in [
            "application/rs-metadata+xml",
            "application/rs-metadata",
            "Application/RS-Metadata+XML; charset=UTF-8",
        ] {
            let body = classify_body(&request(ct, DOC)).expect("metadata body accepted");
            assert_eq!(body.sdp, None, "{ct}");
            assert_eq!(
                body.siprec_metadata.as_deref(),
                Some(DOC.as_bytes()),
                "{ct}"
            );
        }
        let multipart = format!(
            "--b\r\nContent-Type: application/rs-metadata+xml\r\n\
             Content-Disposition: recording-session\r\n\r\n{DOC}\r\n--b--\r\n"
        );
        let body = classify_body(&request("multipart/mixed;boundary=b", &multipart))
            .expect("multipart without SDP accepted");
        assert_eq!(body.sdp, None);
        assert_eq!(body.siprec_metadata.as_deref(), Some(DOC.as_bytes()));
    }

    #[test]
    fn other_bodies_are_still_refused() {
        assert!(matches!(
            classify_body(&request("text/plain", "hello")),
            Err(BodyError::Unsupported(_))
        ));
        let only_text = "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
        assert!(matches!(
            classify_body(&request("multipart/mixed;boundary=b", only_text)),
            Err(BodyError::Unsupported(_))
        ));
    }
}
