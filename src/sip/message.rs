//! SIP message parsing (wrapping `ezk-sip-types`) into a small typed request, and
//! serialization of the responses and requests the recorder sends.
//!
//! CONTRACT — the rest of the crate codes against these names.

use bytes::Bytes;
use std::net::SocketAddr;

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
        todo!("{token}")
    }
    pub fn as_str(&self) -> &str {
        todo!()
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
        todo!("{source}")
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
    Other { scheme: String },
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
        todo!("{name}")
    }
    /// All values of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        todo!("{name}");
        #[allow(unreachable_code)]
        std::iter::empty()
    }
    /// Comma-separated tokens of every instance of a header (Require, Supported, Allow),
    /// trimmed and lower-cased.
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        todo!("{name}")
    }
    /// Branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        todo!()
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
        Limits { max_message_size: 65536, max_headers: 128, max_content_length: 65536 }
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
        todo!()
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
pub fn parse_message(data: Bytes, limits: &Limits) -> Result<SipMessage, ParseFailure> {
    todo!("{:?} {limits:?}", data.len())
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

impl OutgoingResponse {
    /// A response to `req` (RFC 3261 §8.2.6): Vias, From, To, Call-ID and CSeq copied;
    /// `to_tag` is added to To when To has no tag yet.
    pub fn to_request(req: &SipRequest, code: u16, to_tag: Option<&str>) -> Self {
        todo!("{req:?} {code} {to_tag:?}")
    }
    pub fn from_context(ctx: &ReplyContext, code: u16, to_tag: Option<&str>) -> Self {
        todo!("{ctx:?} {code} {to_tag:?}")
    }
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn with_body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_string(), body));
        self
    }
    /// Serialize with Content-Length.
    pub fn to_bytes(&self) -> Bytes {
        todo!()
    }
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

impl OutgoingRequest {
    /// Serialize with Max-Forwards: 70 and Content-Length.
    pub fn to_bytes(&self) -> Bytes {
        todo!()
    }
}

/// Standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    todo!("{code}")
}
