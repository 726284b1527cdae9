//! SIP message parsing (wrapping `ezk-sip-types`) into a small typed request, and
//! serialization of the responses and requests the recorder sends.

use bytes::Bytes;
use ezk_sip_types::msg::PullParser;
use headers::set_param;
use parse::{
    StartLine, build_request, build_response, canonical_name, collect_headers, extract_body,
    find_header, parse_start_line, reply_context, request_method_hint,
};
use std::net::{IpAddr, SocketAddr};

mod headers;
mod parse;
mod serialize;

/// A SIP method. Extension methods keep their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Update,
    Info,
    Prack,
    Register,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Extension(String),
}

impl Method {
    pub fn parse(token: &str) -> Method {
        // Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension method.
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(token) => token,
        }
    }
}

/// One Via header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The value as it will be echoed in responses (updated by `stamp_source`).
    pub raw: String,
    /// `UDP`, `TCP`, `TLS`, ... upper-cased.
    pub transport: String,
    /// sent-by host without brackets for IPv6.
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    pub received: Option<String>,
    /// `None`: no rport param; `Some(None)`: bare `;rport`; `Some(Some(p))`: `rport=p`.
    pub rport: Option<Option<u16>>,
    pub maddr: Option<String>,
}

impl Via {
    /// RFC 3261 §18.2.1 and RFC 3581: add `received` when the sent-by host differs from the
    /// packet's source IP (or `rport` is present), and fill a bare `rport` with the source port.
    pub fn stamp_source(&mut self, source: SocketAddr) {
        // A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`; compare and echo the
        // address the peer actually has.
        let ip = source.ip().to_canonical();
        let sent_by_is_source = self
            .host
            .parse::<IpAddr>()
            .map(|host| host.to_canonical() == ip)
            .unwrap_or(false);
        if !sent_by_is_source || self.rport.is_some() {
            let received = ip.to_string();
            self.raw = set_param(&self.raw, "received", Some(&received));
            self.received = Some(received);
        }
        if self.rport == Some(None) {
            let port = source.port();
            self.raw = set_param(&self.raw, "rport", Some(&port.to_string()));
            self.rport = Some(Some(port));
        }
    }
}

/// A From/To header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The whole header value as received.
    pub raw: String,
    /// The URI inside (without `<>`), as text; `tel:` and other schemes are kept as text.
    pub uri: String,
    pub tag: Option<String>,
}

/// The Request-URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestUri {
    Sip(SipUriParts),
    /// Any other scheme (`tel:`, `http:` ...): the UAS answers 416.
    Other {
        scheme: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUriParts {
    pub sips: bool,
    /// Percent-decoded user part.
    pub user: Option<String>,
    /// Host without brackets for IPv6.
    pub host: String,
    pub port: Option<u16>,
    /// URI parameters in order, names and values as written (not decoded).
    pub params: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical full name (`Via`, `Call-ID`, `Content-Type`...): compact forms expanded.
    pub name: String,
    /// Value with folding removed and surrounding whitespace trimmed.
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct SipRequest {
    pub method: Method,
    pub uri: RequestUri,
    pub uri_raw: String,
    pub vias: Vec<Via>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub max_forwards: Option<u32>,
    pub content_type: Option<String>,
    /// Every header, in order, including the ones above.
    pub headers: Vec<Header>,
    pub body: Bytes,
}

impl SipRequest {
    /// First value of a header (case-insensitive, compact names accepted).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, &canonical_name(name))
    }
    /// All values of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&name))
            .map(|h| h.value.as_str())
    }
    /// Comma-separated tokens of every instance of a header (Require, Supported, Allow),
    /// trimmed and lower-cased.
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        self.header_values(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }
    /// Branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        self.vias.first().and_then(|v| v.branch.as_deref())
    }
}

/// A response received (to a BYE or UPDATE the recorder sent).
#[derive(Debug, Clone)]
pub struct SipResponse {
    pub code: u16,
    pub vias: Vec<Via>,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub to_tag: Option<String>,
    pub headers: Vec<Header>,
}

// The request is the common case and the contract fixes this shape; boxing would add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SipMessage {
    Request(SipRequest),
    Response(SipResponse),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_content_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65536,
            max_headers: 128,
            max_content_length: 65536,
        }
    }
}

/// What went wrong, typed by who is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("more than {limit} headers")]
    TooManyHeaders { limit: usize },
    #[error("malformed start line")]
    BadStartLine,
    #[error("malformed header {0}")]
    BadHeader(String),
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    #[error("Content-Length does not match the body")]
    BadContentLength,
    #[error("not a SIP message")]
    NotSip,
}

impl ParseError {
    /// The status code to answer a request with, when it can be answered at all.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::TooLarge { .. } => 413,
            ParseError::TooManyHeaders { .. }
            | ParseError::BadStartLine
            | ParseError::BadHeader(_)
            | ParseError::MissingHeader(_)
            | ParseError::BadContentLength
            | ParseError::NotSip => 400,
        }
    }
}

/// Enough of an unparseable request to send an error response back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyContext {
    pub method: Method,
    pub vias: Vec<Via>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    /// Raw CSeq value (`"1 INVITE"`).
    pub cseq: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub error: ParseError,
    /// `Some` when the request can be answered (Via, From, To, Call-ID, CSeq were readable).
    pub reply: Option<ReplyContext>,
}

/// Parse one complete datagram / framed message.
// The contract fixes the error type; failures are rare next to successes.
#[allow(clippy::result_large_err)]
pub fn parse_message(data: Bytes, limits: &Limits) -> Result<SipMessage, ParseFailure> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let start = data
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(data.len());
    if start == data.len() {
        return Err(ParseFailure {
            error: ParseError::NotSip,
            reply: None,
        });
    }
    let mut lines = PullParser::new(&data, start);
    let first = match lines.next() {
        Some(Ok(line)) => line,
        _ => {
            return Err(ParseFailure {
                error: ParseError::NotSip,
                reply: None,
            });
        }
    };
    let start_line = parse_start_line(first);
    // Known even when the rest of the request line is broken, so that a 400 can be sent.
    let method_hint = match &start_line {
        Ok(StartLine::Request { method, .. }) => Some(method.clone()),
        Ok(StartLine::Response { .. }) => None,
        Err(_) => request_method_hint(first),
    };

    let mut headers = Vec::new();
    let head = collect_headers(&data, &mut lines, limits, &mut headers);
    let fail = |error: ParseError, headers: &[Header]| ParseFailure {
        error,
        reply: method_hint.as_ref().and_then(|m| reply_context(m, headers)),
    };

    if data.len() > limits.max_message_size {
        return Err(fail(
            ParseError::TooLarge {
                limit: limits.max_message_size,
            },
            &headers,
        ));
    }
    let start_line = start_line.map_err(|e| fail(e, &headers))?;
    let body_start = head.map_err(|e| fail(e, &headers))?;
    let body = extract_body(&data, body_start, &headers, limits).map_err(|e| fail(e, &headers))?;

    match start_line {
        StartLine::Request {
            method,
            uri,
            uri_raw,
        } => build_request(method, uri, uri_raw, headers, body)
            .map(SipMessage::Request)
            .map_err(|(e, headers)| fail(e, &headers)),
        StartLine::Response { code } => build_response(code, headers)
            .map(SipMessage::Response)
            .map_err(|error| ParseFailure { error, reply: None }),
    }
}

/// A response the recorder sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingResponse {
    pub code: u16,
    pub reason: String,
    pub vias: Vec<String>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: String,
    /// Extra headers in order (Contact, Allow, Session-Expires, Retry-After, Warning ...).
    pub headers: Vec<(String, String)>,
    /// `(content type, body)`.
    pub body: Option<(String, Bytes)>,
}

/// A request the recorder sends (BYE, UPDATE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub method: Method,
    pub uri: String,
    pub via: String,
    pub route: Vec<String>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    pub headers: Vec<(String, String)>,
    pub body: Option<(String, Bytes)>,
}

/// Standard reason phrase for a status code (the IANA registry as `ezk-sip-types` holds it),
/// or the class name for codes it does not know.
pub fn reason_phrase(code: u16) -> &'static str {
    ezk_sip_types::StatusCode::from(code)
        .text()
        .unwrap_or(match code / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            6 => "Global Failure",
            _ => "Unknown",
        })
}

#[cfg(test)]
mod tests;
