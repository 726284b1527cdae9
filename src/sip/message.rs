//! SIP message parsing (wrapping `ezk-sip-types`) into a small typed request, and
//! serialization of the responses and requests the recorder sends.
//!
//! CONTRACT — the rest of the crate codes against these names.

use bytes::{BufMut, Bytes, BytesMut};
use ezk_sip_types::Name;
use ezk_sip_types::header::HeaderParse;
use ezk_sip_types::header::typed::Via as EzkVia;
use ezk_sip_types::host::Host;
use ezk_sip_types::msg::{Line, PullParser};
use ezk_sip_types::uri::{SipUri, SipUriUserPart};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

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

impl OutgoingResponse {
    /// A response to `req` (RFC 3261 §8.2.6): Vias, From, To, Call-ID and CSeq copied;
    /// `to_tag` is added to To when To has no tag yet.
    pub fn to_request(req: &SipRequest, code: u16, to_tag: Option<&str>) -> Self {
        let to = match (to_tag, &req.to.tag) {
            (Some(tag), None) => format!("{};tag={tag}", req.to.raw),
            _ => req.to.raw.clone(),
        };
        OutgoingResponse {
            code,
            reason: reason_phrase(code).to_string(),
            vias: req.vias.iter().map(|v| v.raw.clone()).collect(),
            from: req.from.raw.clone(),
            to,
            call_id: req.call_id.clone(),
            cseq: format!("{} {}", req.cseq, req.cseq_method.as_str()),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn from_context(ctx: &ReplyContext, code: u16, to_tag: Option<&str>) -> Self {
        // Only tag a To that could be read: appending to a broken value helps nobody.
        let untagged = parse_name_addr(&ctx.to).is_some_and(|to| to.tag.is_none());
        let to = match to_tag {
            Some(tag) if untagged => format!("{};tag={tag}", ctx.to),
            _ => ctx.to.clone(),
        };
        OutgoingResponse {
            code,
            reason: reason_phrase(code).to_string(),
            vias: ctx.vias.iter().map(|v| v.raw.clone()).collect(),
            from: ctx.from.clone(),
            to,
            call_id: ctx.call_id.clone(),
            cseq: ctx.cseq.clone(),
            headers: Vec::new(),
            body: None,
        }
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
        let body_len = self.body.as_ref().map_or(0, |(_, b)| b.len());
        let mut out = BytesMut::with_capacity(512 + body_len);
        out.put_slice(b"SIP/2.0 ");
        out.put_slice(self.code.to_string().as_bytes());
        out.put_u8(b' ');
        put_sanitized(&mut out, &self.reason);
        out.put_slice(b"\r\n");
        for via in &self.vias {
            put_header(&mut out, "Via", via);
        }
        // A reply built from a damaged request may lack these; an empty line would be invalid.
        for (name, value) in [
            ("From", &self.from),
            ("To", &self.to),
            ("Call-ID", &self.call_id),
            ("CSeq", &self.cseq),
        ] {
            if !value.is_empty() {
                put_header(&mut out, name, value);
            }
        }
        put_tail(&mut out, &self.headers, self.body.as_ref());
        out.freeze()
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
        let body_len = self.body.as_ref().map_or(0, |(_, b)| b.len());
        let mut out = BytesMut::with_capacity(512 + body_len);
        put_sanitized(&mut out, self.method.as_str());
        out.put_u8(b' ');
        put_sanitized(&mut out, &self.uri);
        out.put_slice(b" SIP/2.0\r\n");
        put_header(&mut out, "Via", &self.via);
        for route in &self.route {
            put_header(&mut out, "Route", route);
        }
        put_header(&mut out, "Max-Forwards", "70");
        put_header(&mut out, "From", &self.from);
        put_header(&mut out, "To", &self.to);
        put_header(&mut out, "Call-ID", &self.call_id);
        put_header(
            &mut out,
            "CSeq",
            &format!("{} {}", self.cseq, self.method.as_str()),
        );
        put_tail(&mut out, &self.headers, self.body.as_ref());
        out.freeze()
    }
}

/// Standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    known_reason_phrase(code).unwrap_or(match code / 100 {
        1 => "Provisional",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        6 => "Global Failure",
        _ => "Unknown",
    })
}

fn known_reason_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => return None,
    })
}

// ---- parsing internals ----

enum StartLine {
    Request {
        method: Method,
        uri: RequestUri,
        uri_raw: String,
    },
    Response {
        code: u16,
    },
}

/// RFC 3261 `token` characters (methods, header names).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotSip)?;
    if !line.contains("SIP/") && !line.contains("sip/") {
        return Err(ParseError::NotSip);
    }
    if let Some(rest) = strip_prefix_ignore_case(line, "SIP/2.0 ") {
        // Status-Code is exactly three digits; the reason phrase may be empty or UTF-8.
        let code_text = rest.split(' ').next().unwrap_or_default();
        if code_text.len() != 3 || !code_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStartLine);
        }
        let code: u16 = code_text.parse().map_err(|_| ParseError::BadStartLine)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStartLine);
        }
        return Ok(StartLine::Response { code });
    }
    // Exactly single spaces (RFC 3261 §7.1); RFC 4475 lwsstart/trws/lwsruri are invalid.
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    if !is_token(method) || !version.eq_ignore_ascii_case("SIP/2.0") || uri.is_empty() {
        return Err(ParseError::BadStartLine);
    }
    let uri_parsed = parse_request_uri(uri).ok_or(ParseError::BadStartLine)?;
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: uri_parsed,
        uri_raw: uri.to_string(),
    })
}

/// The method of a request line that is otherwise broken, so a 400 can still be sent.
fn request_method_hint(line: &[u8]) -> Option<Method> {
    let line = std::str::from_utf8(line).ok()?;
    let (method, rest) = line.split_once(' ')?;
    // Any SIP version: a request for SIP/7.0 (RFC 4475 badvers) is still answered.
    let version = rest.trim_end().rsplit(' ').next()?;
    let is_sip = strip_prefix_ignore_case(version, "SIP/").is_some();
    (is_token(method) && is_sip).then(|| Method::parse(method))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `scheme ":"` with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986).
fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok && !rest.is_empty()).then_some(scheme)
}

fn parse_request_uri(uri: &str) -> Option<RequestUri> {
    let scheme = uri_scheme(uri)?;
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return Some(RequestUri::Other {
            scheme: scheme.to_ascii_lowercase(),
        });
    }
    parse_sip_uri(uri).map(RequestUri::Sip)
}

/// A `sip:`/`sips:` URI. ezk-sip-types validates it and decodes the user part; the
/// parameters are taken from the text because ezk decodes them and `SipUriParts` keeps
/// them as written.
pub(crate) fn parse_sip_uri(uri: &str) -> Option<SipUriParts> {
    let parsed = SipUri::from_str(uri).ok()?;
    let user = match &parsed.user_part {
        SipUriUserPart::Empty => None,
        SipUriUserPart::User(user) => Some(user.to_string()),
        SipUriUserPart::UserPw(user_pw) => Some(user_pw.user.to_string()),
    };
    Some(SipUriParts {
        sips: parsed.sips,
        user,
        host: host_text(&parsed.host_port.host),
        port: parsed.host_port.port,
        params: raw_uri_params(uri),
    })
}

fn host_text(host: &Host) -> String {
    match host {
        Host::IP6(ip) => ip.to_string(),
        Host::IP4(ip) => ip.to_string(),
        Host::Name(name) => name.to_string(),
    }
}

/// `;name[=value]` parameters of a SIP URI, as written.
fn raw_uri_params(uri: &str) -> Vec<(String, Option<String>)> {
    // The user part may contain `;` and `?` (RFC 4475 semiuri, intmeth) but never an
    // unescaped `@`, and neither do host, params or headers: the last `@` ends userinfo.
    let after_scheme = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let host_on = after_scheme
        .rfind('@')
        .map_or(after_scheme, |at| &after_scheme[at + 1..]);
    let host_on = host_on.split('?').next().unwrap_or_default();
    // Skip an IPv6 reference so its colons and the brackets do not matter.
    let after_host = match host_on.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_on,
    };
    let Some((_, params)) = after_host.split_once(';') else {
        return Vec::new();
    };
    params
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (p.to_string(), None),
        })
        .collect()
}

/// Header lines up to the blank line; returns where the body starts. Headers read before
/// an error stay in `headers` so that a reply can still be built.
fn collect_headers(
    data: &Bytes,
    lines: &mut PullParser<'_>,
    limits: &Limits,
    headers: &mut Vec<Header>,
) -> Result<usize, ParseError> {
    loop {
        let line = match lines.next() {
            None => return Ok(lines.head_end()),
            Some(Err(_)) => return Err(ParseError::BadHeader("end of header section".into())),
            Some(Ok(line)) => line,
        };
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let text = std::str::from_utf8(line).map_err(|_| bad_header_bytes(line))?;
        let parsed = match Line::parse(data, text) {
            Ok((_, parsed)) => parsed,
            Err(_) => return Err(bad_header_text(text)),
        };
        let name = canonical_from_name(&parsed.name);
        if name.is_empty() {
            return Err(bad_header_text(text));
        }
        headers.push(Header {
            name,
            value: unfold(&parsed.value),
        });
    }
}

fn bad_header_text(line: &str) -> ParseError {
    let name = line.split(':').next().unwrap_or_default().trim();
    ParseError::BadHeader(name.chars().take(64).collect())
}

fn bad_header_bytes(line: &[u8]) -> ParseError {
    let name = line.split(|b| *b == b':').next().unwrap_or_default();
    bad_header_text(&String::from_utf8_lossy(&name[..name.len().min(64)]))
}

/// Compact forms ezk-sip-types does not know (RFC 3841, RFC 3892, RFC 4474).
fn extra_compact_form(name: &str) -> Option<&'static str> {
    match name {
        "a" | "A" => Some("Accept-Contact"),
        "b" | "B" => Some("Referred-By"),
        "d" | "D" => Some("Request-Disposition"),
        "j" | "J" => Some("Reject-Contact"),
        "n" | "N" => Some("Identity-Info"),
        "y" | "Y" => Some("Identity"),
        _ => None,
    }
}

fn canonical_from_name(name: &Name) -> String {
    let printed = name.as_print_str();
    extra_compact_form(printed).unwrap_or(printed).to_string()
}

/// Full canonical name for a header name as written (compact forms expanded).
fn canonical_name(name: &str) -> String {
    if let Some(full) = extra_compact_form(name) {
        return full.to_string();
    }
    Name::from(name.to_string()).as_print_str().to_string()
}

fn find_header<'a>(headers: &'a [Header], canonical: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(canonical))
        .map(|h| h.value.as_str())
}

/// Removes line folding: each line break with the whitespace around it becomes one space.
fn unfold(raw: &str) -> String {
    if !raw.contains(['\r', '\n']) {
        return raw.trim().to_string();
    }
    let mut out = String::with_capacity(raw.len());
    for piece in raw.split('\n') {
        let piece = piece.trim_matches([' ', '\t', '\r']);
        if piece.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

fn extract_body(
    data: &Bytes,
    body_start: usize,
    headers: &[Header],
    limits: &Limits,
) -> Result<Bytes, ParseError> {
    let body = data.slice(body_start.min(data.len())..);
    let mut declared: Option<usize> = None;
    for value in headers
        .iter()
        .filter(|h| h.name == "Content-Length")
        .map(|h| &h.value)
    {
        let len = parse_decimal(value).ok_or(ParseError::BadContentLength)?;
        // Two different lengths (RFC 4475 mcl01): no way to know which one frames the body.
        if declared.is_some_and(|d| d != len) {
            return Err(ParseError::BadContentLength);
        }
        declared = Some(len);
    }
    match declared {
        // A datagram without Content-Length ends where the datagram ends (RFC 3261 §18.3).
        None => Ok(body),
        Some(len) if len > limits.max_content_length => Err(ParseError::TooLarge {
            limit: limits.max_content_length,
        }),
        Some(len) if len > body.len() => Err(ParseError::BadContentLength),
        // Extra octets after the declared body are discarded (RFC 3261 §18.3, RFC 4475 dblreq).
        Some(len) => Ok(body.slice(..len)),
    }
}

/// Non-negative decimal without sign; `None` on anything else or overflow.
fn parse_decimal(value: &str) -> Option<usize> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Every Via value of every Via header, in order; comma-separated values split.
fn parse_vias(headers: &[Header]) -> Result<Vec<Via>, ParseError> {
    let mut vias = Vec::new();
    for header in headers.iter().filter(|h| h.name == "Via") {
        parse_via_line(&header.value, &mut vias)?;
    }
    Ok(vias)
}

fn parse_via_line(value: &str, vias: &mut Vec<Via>) -> Result<(), ParseError> {
    let bad = || ParseError::BadHeader("Via".into());
    // ezk parses from a buffer it can reference.
    let src = Bytes::copy_from_slice(value.as_bytes());
    let mut rest = std::str::from_utf8(&src).map_err(|_| bad())?;
    loop {
        let (remaining, via) = match <EzkVia as HeaderParse>::parse(&src, rest) {
            Ok(parsed) => parsed,
            Err(_) => return Err(bad()),
        };
        let raw = rest[..rest.len() - remaining.len()].trim();
        vias.push(via_from_parts(raw, &via).ok_or_else(bad)?);
        let remaining = remaining.trim_start();
        if remaining.is_empty() {
            return Ok(());
        }
        rest = remaining.strip_prefix(',').ok_or_else(bad)?;
    }
}

fn via_from_parts(raw: &str, via: &EzkVia) -> Option<Via> {
    let mut out = Via {
        raw: raw.to_string(),
        transport: via.transport.to_ascii_uppercase(),
        host: host_text(&via.sent_by.host),
        port: via.sent_by.port,
        branch: None,
        received: None,
        rport: None,
        maddr: None,
    };
    // Params as written: ezk percent-decodes values, but a branch must match byte for byte.
    let params = raw.split_once(';').map_or("", |(_, p)| p);
    for (name, value) in split_params(params)? {
        if name.is_empty() {
            // `;;` (RFC 4475 badinv01)
            return None;
        }
        let first = |slot: &mut Option<String>| {
            if slot.is_none() {
                *slot = value.clone();
            }
        };
        if name.eq_ignore_ascii_case("branch") {
            first(&mut out.branch);
        } else if name.eq_ignore_ascii_case("received") {
            first(&mut out.received);
        } else if name.eq_ignore_ascii_case("maddr") {
            first(&mut out.maddr);
        } else if name.eq_ignore_ascii_case("rport") && out.rport.is_none() {
            out.rport = Some(value.as_deref().and_then(|v| v.parse().ok()));
        }
    }
    Some(out)
}

/// Splits `a=1;b; c = "x;y"` into trimmed `(name, value)` pairs; `;` inside quotes is
/// not a separator. `None` on an unterminated quoted string.
fn split_params(params: &str) -> Option<Vec<(String, Option<String>)>> {
    let params = params.trim();
    if params.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for piece in split_outside_quotes(params, ';')? {
        let (name, value) = match piece.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (piece.trim(), None),
        };
        out.push((name.to_string(), value));
    }
    Some(out)
}

/// Splits on `sep` outside quoted strings (with `\` escapes); `None` if a quote is open.
fn split_outside_quotes(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut pieces = Vec::new();
    let (mut in_quote, mut escaped, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        if in_quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quote = false,
                _ => {}
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == sep {
            pieces.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if in_quote {
        return None;
    }
    pieces.push(&s[start..]);
    Some(pieces)
}

/// Replaces (or appends) one `;name=value` parameter of a Via value, keeping the rest as
/// written.
fn set_param(raw: &str, name: &str, value: Option<&str>) -> String {
    let (base, params) = match raw.split_once(';') {
        Some((base, params)) => (base.trim_end(), Some(params)),
        None => (raw.trim_end(), None),
    };
    let pieces: Vec<&str> = params
        .map(|p| split_outside_quotes(p, ';').unwrap_or_else(|| vec![p]))
        .unwrap_or_default();
    let new_param = match value {
        Some(v) => format!("{name}={v}"),
        None => name.to_string(),
    };
    let mut out = String::with_capacity(raw.len() + new_param.len() + 1);
    out.push_str(base);
    let mut replaced = false;
    for piece in pieces {
        let piece_name = piece.split('=').next().unwrap_or_default().trim();
        out.push(';');
        if !replaced && piece_name.eq_ignore_ascii_case(name) {
            out.push_str(&new_param);
            replaced = true;
        } else {
            out.push_str(piece.trim());
        }
    }
    if !replaced {
        out.push(';');
        out.push_str(&new_param);
    }
    out
}

/// From/To: `[display-name] <uri> *(;param)` or `uri *(;param)`. Parsed here rather than by
/// ezk-sip-types because ezk rejects non-SIP URIs such as `tel:`.
pub(crate) fn parse_name_addr(raw: &str) -> Option<NameAddr> {
    let s = raw.trim();
    let mut in_quote = false;
    let mut escaped = false;
    let mut angle = None;
    for (i, c) in s.char_indices() {
        if in_quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quote = false,
                _ => {}
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == '<' {
            angle = Some(i);
            break;
        }
    }
    if in_quote {
        // RFC 4475 quotbal: unterminated display name.
        return None;
    }
    let (uri, params) = match angle {
        Some(lt) => {
            let inner = &s[lt + 1..];
            let gt = inner.find('>')?;
            (inner[..gt].trim(), &inner[gt + 1..])
        }
        None => {
            if s.contains('"') {
                return None;
            }
            let end = s.find(';').unwrap_or(s.len());
            (s[..end].trim(), &s[end..])
        }
    };
    if uri_scheme(uri).is_none() || uri.contains(char::is_whitespace) {
        return None;
    }
    let params = params.trim();
    let tag = if params.is_empty() {
        None
    } else {
        let rest = params.strip_prefix(';')?;
        split_params(rest)?
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("tag"))
            .and_then(|(_, value)| value)
            .filter(|v| !v.is_empty())
    };
    Some(NameAddr {
        raw: s.to_string(),
        uri: uri.to_string(),
        tag,
    })
}

/// `CSeq: <number> <method>`; the number as text so that out-of-range values can still be
/// echoed in a 400.
fn split_cseq(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split_ascii_whitespace();
    let (Some(number), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && is_token(method))
        .then_some((number, method))
}

fn parse_cseq(value: &str) -> Result<(u32, Method), ParseError> {
    let bad = || ParseError::BadHeader("CSeq".into());
    let (number, method) = split_cseq(value).ok_or_else(bad)?;
    let number: u32 = number.parse().map_err(|_| bad())?;
    // RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31.
    if number >= 1 << 31 {
        return Err(bad());
    }
    Ok((number, Method::parse(method)))
}

/// The single value of a header that must appear once; differing duplicates are an error
/// (RFC 4475 multi01).
fn single<'a>(headers: &'a [Header], name: &'static str) -> Result<&'a str, ParseError> {
    let mut values = headers
        .iter()
        .filter(|h| h.name == name)
        .map(|h| h.value.as_str());
    let first = values.next().ok_or(ParseError::MissingHeader(name))?;
    if values.any(|v| v != first) {
        return Err(ParseError::BadHeader(name.to_string()));
    }
    Ok(first)
}

/// The typed fields of a request, read from its headers.
struct RequestFields {
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: u32,
    cseq_method: Method,
    max_forwards: Option<u32>,
    content_type: Option<String>,
}

fn request_fields(method: &Method, headers: &[Header]) -> Result<RequestFields, ParseError> {
    let vias = parse_vias(headers)?;
    if vias.is_empty() {
        return Err(ParseError::MissingHeader("Via"));
    }
    let from = single(headers, "From")?;
    let from = parse_name_addr(from).ok_or_else(|| ParseError::BadHeader("From".into()))?;
    let to = single(headers, "To")?;
    let to = parse_name_addr(to).ok_or_else(|| ParseError::BadHeader("To".into()))?;
    let call_id = single(headers, "Call-ID")?;
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        return Err(ParseError::BadHeader("Call-ID".into()));
    }
    let (cseq, cseq_method) = parse_cseq(single(headers, "CSeq")?)?;
    // RFC 4475 mismatch01/02: the CSeq method must be the request's method.
    if cseq_method != *method {
        return Err(ParseError::BadHeader("CSeq".into()));
    }
    let max_forwards = match find_header(headers, "Max-Forwards") {
        None => None,
        Some(v) => {
            // RFC 3261 §20.22 limits it to 0..=255 (RFC 4475 scalar02 sends 300).
            let hops = parse_decimal(v)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= 255);
            Some(hops.ok_or_else(|| ParseError::BadHeader("Max-Forwards".into()))?)
        }
    };
    Ok(RequestFields {
        vias,
        from,
        to,
        call_id: call_id.to_string(),
        cseq,
        cseq_method,
        max_forwards,
        content_type: find_header(headers, "Content-Type").map(str::to_string),
    })
}

fn build_request(
    method: Method,
    uri: RequestUri,
    uri_raw: String,
    headers: Vec<Header>,
    body: Bytes,
) -> Result<SipRequest, (ParseError, Vec<Header>)> {
    match request_fields(&method, &headers) {
        Ok(f) => Ok(SipRequest {
            method,
            uri,
            uri_raw,
            vias: f.vias,
            from: f.from,
            to: f.to,
            call_id: f.call_id,
            cseq: f.cseq,
            cseq_method: f.cseq_method,
            max_forwards: f.max_forwards,
            content_type: f.content_type,
            headers,
            body,
        }),
        Err(e) => Err((e, headers)),
    }
}

fn build_response(code: u16, headers: Vec<Header>) -> Result<SipResponse, ParseError> {
    let vias = parse_vias(&headers)?;
    if vias.is_empty() {
        return Err(ParseError::MissingHeader("Via"));
    }
    single(&headers, "From")?;
    let to = single(&headers, "To")?;
    let to = parse_name_addr(to).ok_or_else(|| ParseError::BadHeader("To".into()))?;
    let call_id = single(&headers, "Call-ID")?.to_string();
    let (cseq, cseq_method) = parse_cseq(single(&headers, "CSeq")?)?;
    Ok(SipResponse {
        code,
        vias,
        call_id,
        cseq,
        cseq_method,
        to_tag: to.tag,
        headers,
    })
}

/// What a 4xx to a broken request needs. Via and CSeq are required because the client
/// matches responses on the top Via branch and the CSeq method (RFC 3261 §17.1.3); From,
/// To and Call-ID are echoed when present and left empty otherwise.
fn reply_context(method: &Method, headers: &[Header]) -> Option<ReplyContext> {
    let vias = parse_vias(headers).ok().filter(|v| !v.is_empty())?;
    let cseq = find_header(headers, "CSeq").filter(|v| split_cseq(v).is_some())?;
    let text = |name| find_header(headers, name).unwrap_or_default().to_string();
    Some(ReplyContext {
        method: method.clone(),
        vias,
        from: text("From"),
        to: text("To"),
        call_id: text("Call-ID"),
        cseq: cseq.to_string(),
    })
}

// ---- serialization internals ----

/// Header values come partly from the network: a stray CR or LF must not start a new line.
fn put_sanitized(out: &mut BytesMut, text: &str) {
    if text.contains(['\r', '\n']) {
        out.put_slice(text.replace(['\r', '\n'], " ").as_bytes());
    } else {
        out.put_slice(text.as_bytes());
    }
}

fn put_header(out: &mut BytesMut, name: &str, value: &str) {
    put_sanitized(out, name);
    out.put_slice(b": ");
    put_sanitized(out, value);
    out.put_slice(b"\r\n");
}

fn put_tail(out: &mut BytesMut, headers: &[(String, String)], body: Option<&(String, Bytes)>) {
    for (name, value) in headers {
        put_header(out, name, value);
    }
    let body_len = match body {
        Some((content_type, body)) => {
            put_header(out, "Content-Type", content_type);
            body.len()
        }
        None => 0,
    };
    put_header(out, "Content-Length", &body_len.to_string());
    out.put_slice(b"\r\n");
    if let Some((_, body)) = body {
        out.put_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:record=42@srs.example.com;calluuid=abc SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Media Server\" <sip:gvp@example.com>;tag=f1\r\n\
To: <sip:srs@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 7 INVITE\r\n\
Supported: timer, 100rel\r\n\
Supported: Replaces\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

    // Mirrors `parse_message`, whose error type the contract fixes.
    #[allow(clippy::result_large_err)]
    fn parse(text: &str) -> Result<SipMessage, ParseFailure> {
        parse_message(Bytes::copy_from_slice(text.as_bytes()), &Limits::default())
    }

    fn request(text: &str) -> SipRequest {
        match parse(text) {
            Ok(SipMessage::Request(req)) => req,
            other => panic!("request expected, got {other:?}"),
        }
    }

    fn failure(text: &str) -> ParseFailure {
        match parse(text) {
            Err(failure) => failure,
            Ok(msg) => panic!("error expected, got {msg:?}"),
        }
    }

    #[test]
    fn parses_a_basic_invite() {
        let req = request(INVITE);
        assert_eq!(req.method, Method::Invite);
        assert_eq!(req.uri_raw, "sip:record=42@srs.example.com;calluuid=abc");
        let RequestUri::Sip(uri) = &req.uri else {
            panic!("sip uri")
        };
        assert_eq!(uri.user.as_deref(), Some("record=42"));
        assert_eq!(uri.host, "srs.example.com");
        assert_eq!(
            uri.params,
            vec![("calluuid".to_string(), Some("abc".to_string()))]
        );
        assert_eq!(req.vias.len(), 1);
        let via = &req.vias[0];
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.host, "192.0.2.10");
        assert_eq!(via.port, Some(5060));
        assert_eq!(via.rport, Some(None));
        assert_eq!(req.branch(), Some("z9hG4bKa1"));
        assert_eq!(req.from.uri, "sip:gvp@example.com");
        assert_eq!(req.from.tag.as_deref(), Some("f1"));
        assert_eq!(req.to.tag, None);
        assert_eq!(req.call_id, "call-1@192.0.2.10");
        assert_eq!((req.cseq, &req.cseq_method), (7, &Method::Invite));
        assert_eq!(req.max_forwards, Some(70));
        assert_eq!(req.content_type.as_deref(), Some("application/sdp"));
        assert_eq!(&req.body[..], b"v=0\r");
        assert_eq!(req.header_tokens("k"), vec!["timer", "100rel", "replaces"]);
        assert_eq!(req.header_values("SUPPORTED").count(), 2);
        assert_eq!(req.header("i"), Some("call-1@192.0.2.10"));
        assert_eq!(req.header("X-Missing"), None);
    }

    #[test]
    fn compact_headers_are_canonicalized() {
        let req = request(
            "OPTIONS sip:srs.example.com SIP/2.0\r\n\
v: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n\
f: <sip:a@example.com>;tag=1\r\nt: <sip:b@example.com>\r\ni: cid\r\n\
CSeq: 1 OPTIONS\r\nm: <sip:a@h.example.com>\r\nk: timer\r\nx: 1800;refresher=uac\r\n\
c: text/plain\r\ne: gzip\r\ns: hi\r\no: dialog\r\nu: talk\r\nr: <sip:c@example.com>\r\n\
b: <sip:d@example.com>\r\ny: abc\r\nX-Custom: 1\r\nl: 2\r\n\r\nok",
        );
        let names: Vec<&str> = req.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "Via",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Contact",
                "Supported",
                "Session-Expires",
                "Content-Type",
                "Content-Encoding",
                "Subject",
                "Event",
                "Allow-Events",
                "Refer-To",
                "Referred-By",
                "Identity",
                "X-Custom",
                "Content-Length",
            ]
        );
        assert_eq!(req.header("Session-Expires"), Some("1800;refresher=uac"));
        assert_eq!(req.header("x"), Some("1800;refresher=uac"));
        assert_eq!(req.header("x-custom"), Some("1"));
        assert_eq!(&req.body[..], b"ok");
    }

    #[test]
    fn folded_headers_are_unfolded() {
        let req = request(
            "OPTIONS sip:srs.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP\r\n  192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>\r\n  ;tag=1\r\n\
To: <sip:b@example.com>\r\nCall-ID: c\r\n\
CSeq: 1\r\n\tOPTIONS\r\n\
Subject: one\r\n two \r\n\t three\r\n\
Content-Length: 0\r\n\r\n",
        );
        assert_eq!(req.vias[0].host, "192.0.2.1");
        assert_eq!(req.from.tag.as_deref(), Some("1"));
        assert_eq!(req.cseq, 1);
        assert_eq!(req.header("Subject"), Some("one two three"));
    }

    #[test]
    fn ipv6_via_and_uri_hosts() {
        let req = request(
            "INVITE sip:rec@[2001:db8::1]:5060;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/TCP [2001:db8::2]:5070;branch=z9hG4bK6\r\n\
From: <sip:a@[2001:db8::2]>;tag=1\r\nTo: <sip:rec@[2001:db8::1]>\r\n\
Call-ID: v6\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let RequestUri::Sip(uri) = &req.uri else {
            panic!("sip uri")
        };
        assert_eq!(uri.host, "2001:db8::1");
        assert_eq!(uri.port, Some(5060));
        assert_eq!(uri.params, vec![("transport".into(), Some("tcp".into()))]);
        assert_eq!(req.vias[0].host, "2001:db8::2");
        assert_eq!(req.vias[0].port, Some(5070));
        assert_eq!(req.to.uri, "sip:rec@[2001:db8::1]");
    }

    #[test]
    fn extension_methods_and_sips() {
        let req = request(
            "FOOBAR sips:srs.example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 3 FOOBAR\r\n\r\n",
        );
        assert_eq!(req.method, Method::Extension("FOOBAR".into()));
        assert_eq!(req.method.as_str(), "FOOBAR");
        let RequestUri::Sip(uri) = &req.uri else {
            panic!("sip uri")
        };
        assert!(uri.sips);
        // Methods are case-sensitive.
        assert_eq!(Method::parse("invite"), Method::Extension("invite".into()));
        for m in [
            "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "PRACK",
        ] {
            assert_eq!(Method::parse(m).as_str(), m);
        }
    }

    #[test]
    fn multiple_vias_per_line() {
        let req = request(
            "BYE sip:srs.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/TCP p2.example.com:5080;branch=z9hG4bKp2;received=192.0.2.2\r\n\
Via: SIP/2.0/UDP uac.example.com;branch=z9hG4bKu;maddr=239.1.1.1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n",
        );
        let hosts: Vec<&str> = req.vias.iter().map(|v| v.host.as_str()).collect();
        assert_eq!(
            hosts,
            vec!["p1.example.com", "p2.example.com", "uac.example.com"]
        );
        assert_eq!(
            req.vias[0].raw,
            "SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1"
        );
        assert_eq!(req.vias[1].received.as_deref(), Some("192.0.2.2"));
        assert_eq!(req.vias[1].transport, "TCP");
        assert_eq!(req.vias[2].maddr.as_deref(), Some("239.1.1.1"));
        assert_eq!(req.branch(), Some("z9hG4bKp1"));
    }

    #[test]
    fn tel_request_uri_is_other() {
        let req = request(
            "INVITE tel:+15551234567 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <tel:+15550000000>;tag=1\r\nTo: tel:+15551234567\r\nCall-ID: c\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            req.uri,
            RequestUri::Other {
                scheme: "tel".into()
            }
        );
        assert_eq!(req.from.uri, "tel:+15550000000");
        assert_eq!(req.to.uri, "tel:+15551234567");
        let other =
            request(&INVITE.replace("sip:record=42@srs.example.com;calluuid=abc", "HTTP://x/y"));
        assert_eq!(
            other.uri,
            RequestUri::Other {
                scheme: "http".into()
            }
        );
    }

    #[test]
    fn missing_headers_with_and_without_reply_context() {
        // Missing From: Via and CSeq are readable, so a 400 can be sent.
        let f = failure(
            "INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(f.error, ParseError::MissingHeader("From"));
        assert_eq!(f.error.status_code(), 400);
        let ctx = f.reply.expect("reply context");
        assert_eq!(ctx.method, Method::Invite);
        assert_eq!(ctx.cseq, "1 INVITE");
        assert_eq!(ctx.from, "");
        let bytes = OutgoingResponse::from_context(&ctx, 400, Some("t1")).to_bytes();
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
        assert!(text.contains("\r\nTo: <sip:b@h>;tag=t1\r\n"));
        assert!(!text.contains("From:"));

        // Missing Via: nowhere to send a response.
        let f = failure(
            "INVITE sip:a@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        );
        assert_eq!(f.error, ParseError::MissingHeader("Via"));
        assert_eq!(f.reply, None);

        // Missing CSeq: the client could not match a response.
        let f = failure(
            "INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\n\r\n",
        );
        assert_eq!(f.error, ParseError::MissingHeader("CSeq"));
        assert_eq!(f.reply, None);
    }

    #[test]
    fn bad_request_line_can_still_be_answered() {
        let f = failure(&INVITE.replace("sip:record=42@srs.example.com;calluuid=abc", "<sip:x@h>"));
        assert_eq!(f.error, ParseError::BadStartLine);
        assert_eq!(f.reply.map(|c| c.method), Some(Method::Invite));
        let f = failure(&INVITE.replace(" SIP/2.0\r\nVia", " SIP/3.0\r\nVia"));
        assert_eq!(f.error, ParseError::BadStartLine);
    }

    #[test]
    fn oversize_message_and_content_length() {
        let limits = Limits {
            max_message_size: 200,
            ..Limits::default()
        };
        let f = parse_message(Bytes::from(INVITE.to_string() + &"x".repeat(200)), &limits)
            .expect_err("too large");
        assert_eq!(f.error, ParseError::TooLarge { limit: 200 });
        assert_eq!(f.error.status_code(), 413);
        assert!(f.reply.is_some());

        let limits = Limits {
            max_content_length: 3,
            ..Limits::default()
        };
        let f = parse_message(Bytes::from(INVITE), &limits).expect_err("body too large");
        assert_eq!(f.error, ParseError::TooLarge { limit: 3 });
    }

    #[test]
    fn too_many_headers() {
        let limits = Limits {
            max_headers: 5,
            ..Limits::default()
        };
        let f = parse_message(Bytes::from(INVITE), &limits).expect_err("too many");
        assert_eq!(f.error, ParseError::TooManyHeaders { limit: 5 });
        assert_eq!(f.error.status_code(), 400);
    }

    #[test]
    fn content_length_mismatch() {
        // Declared longer than what arrived.
        let f = failure(&INVITE.replace("Content-Length: 4", "Content-Length: 40"));
        assert_eq!(f.error, ParseError::BadContentLength);
        assert!(f.reply.is_some());
        // Extra octets after the declared body are dropped (UDP).
        let req = request(&INVITE.replace("Content-Length: 4", "Content-Length: 2"));
        assert_eq!(&req.body[..], b"v=");
        // No Content-Length on a datagram: the rest is the body.
        let req = request(&INVITE.replace("Content-Length: 4\r\n", ""));
        assert_eq!(&req.body[..], b"v=0\r\n");
        for bad in ["-4", "four", "4 4"] {
            let f =
                failure(&INVITE.replace("Content-Length: 4", &format!("Content-Length: {bad}")));
            assert_eq!(f.error, ParseError::BadContentLength, "{bad}");
        }
    }

    #[test]
    fn garbage_is_rejected() {
        for input in [
            &b""[..],
            b"\r\n\r\n",
            b"\x00\x01\x02\xff\xfe",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"INVITE",
            b"SIP/2.0 99 Low\r\n\r\n",
            b"SIP/2.0 4294967301 big\r\nVia: SIP/2.0/UDP h\r\n\r\n",
            b"INVITE sip:a@h SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n",
            b"INVITE sip:a@h SIP/2.0\r\n\xff\xfe: x\r\n\r\n",
            b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n",
        ] {
            let result = parse_message(Bytes::copy_from_slice(input), &Limits::default());
            assert!(result.is_err(), "{input:?}");
        }
        assert_eq!(failure("").error, ParseError::NotSip);
        assert_eq!(failure("hello world\r\n\r\n").error, ParseError::NotSip);
    }

    #[test]
    fn pseudo_random_inputs_never_panic() {
        // xorshift64: deterministic, so a failure reproduces.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[u8] =
            b"\r\n :;,=<>\"\\@[]/SIP2.0%abcINVITEViaFromToCall-IDCSeqtagbranch\t\x00\xff";
        let seed = INVITE.as_bytes();
        for round in 0..4000 {
            let input: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 300) as usize;
                (0..len)
                    .map(|_| alphabet[(next() as usize) % alphabet.len()])
                    .collect()
            } else {
                // Mutate a valid message so that parsing goes deep.
                let mut bytes = seed.to_vec();
                for _ in 0..(next() % 8) + 1 {
                    let at = (next() as usize) % bytes.len();
                    match next() % 3 {
                        0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                        1 => {
                            bytes.remove(at);
                        }
                        _ => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    }
                }
                bytes
            };
            let _ = parse_message(Bytes::from(input), &Limits::default());
        }
    }

    #[test]
    fn stamp_source_cases() {
        let via = |raw: &str| {
            let mut vias = Vec::new();
            parse_via_line(raw, &mut vias).expect("via");
            vias.remove(0)
        };
        // Same IP, no rport: nothing added.
        let mut v = via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
        v.stamp_source("192.0.2.1:5060".parse().expect("addr"));
        assert_eq!(v.received, None);
        assert_eq!(v.raw, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");

        // Different IP: received added.
        let mut v = via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
        v.stamp_source("198.51.100.7:5060".parse().expect("addr"));
        assert_eq!(v.received.as_deref(), Some("198.51.100.7"));
        assert_eq!(
            v.raw,
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;received=198.51.100.7"
        );

        // Host name: received always added.
        let mut v = via("SIP/2.0/TCP pc.example.com;branch=z9hG4bK1");
        v.stamp_source("192.0.2.9:40000".parse().expect("addr"));
        assert_eq!(v.received.as_deref(), Some("192.0.2.9"));

        // Bare rport: filled, and received added even for the same IP (RFC 3581 §4).
        let mut v = via("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1");
        v.stamp_source("192.0.2.1:61000".parse().expect("addr"));
        assert_eq!(v.rport, Some(Some(61000)));
        assert_eq!(v.received.as_deref(), Some("192.0.2.1"));
        assert_eq!(
            v.raw,
            "SIP/2.0/UDP 192.0.2.1:5060;rport=61000;branch=z9hG4bK1;received=192.0.2.1"
        );

        // IPv6 and an IPv4 peer seen through a dual-stack socket.
        let mut v = via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1");
        v.stamp_source("[2001:db8::1]:5060".parse().expect("addr"));
        assert_eq!(v.received, None);
        v.stamp_source("[2001:db8::2]:5060".parse().expect("addr"));
        assert_eq!(v.received.as_deref(), Some("2001:db8::2"));
        let mut v = via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
        v.stamp_source("[::ffff:192.0.2.1]:5060".parse().expect("addr"));
        assert_eq!(v.received, None);

        // An existing received is replaced, not duplicated.
        let mut v = via("SIP/2.0/UDP h.example.com;received=10.0.0.1;branch=z9hG4bK1");
        v.stamp_source("192.0.2.3:5060".parse().expect("addr"));
        assert_eq!(
            v.raw,
            "SIP/2.0/UDP h.example.com;received=192.0.2.3;branch=z9hG4bK1"
        );
    }

    #[test]
    fn response_round_trip() {
        let mut req = request(INVITE);
        req.vias[0].stamp_source("203.0.113.5:5062".parse().expect("addr"));
        let resp = OutgoingResponse::to_request(&req, 200, Some("srs-1"))
            .with_header("Contact", "<sip:srs@192.0.2.50>")
            .with_header("Session-Expires", "1800;refresher=uac")
            .with_body("application/sdp", Bytes::from_static(b"v=0\r\n"));
        assert_eq!(resp.reason, "OK");
        assert_eq!(resp.cseq, "7 INVITE");
        assert_eq!(resp.to, "<sip:srs@example.com>;tag=srs-1");
        let bytes = resp.to_bytes();
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        assert!(text.starts_with(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa1;rport=5062;received=203.0.113.5\r\n"
        ));
        assert!(
            text.ends_with("Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
        );

        let Ok(SipMessage::Response(parsed)) = parse_message(bytes, &Limits::default()) else {
            panic!("response expected");
        };
        assert_eq!(parsed.code, 200);
        assert_eq!(parsed.call_id, req.call_id);
        assert_eq!((parsed.cseq, parsed.cseq_method), (7, Method::Invite));
        assert_eq!(parsed.to_tag.as_deref(), Some("srs-1"));
        assert_eq!(parsed.vias[0].rport, Some(Some(5062)));
        assert_eq!(parsed.vias[0].received.as_deref(), Some("203.0.113.5"));

        // An existing To tag is kept.
        let mut tagged = req.clone();
        tagged.to = parse_name_addr("<sip:srs@example.com>;tag=old").expect("to");
        let resp = OutgoingResponse::to_request(&tagged, 481, Some("new"));
        assert_eq!(resp.to, "<sip:srs@example.com>;tag=old");
        assert_eq!(resp.reason, "Call/Transaction Does Not Exist");
    }

    #[test]
    fn request_serialization_round_trip() {
        let bye = OutgoingRequest {
            method: Method::Bye,
            uri: "sip:gvp@192.0.2.10:5060".into(),
            via: "SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKsrs1;rport".into(),
            route: vec![
                "<sip:p1.example.com;lr>".into(),
                "<sip:p2.example.com;lr>".into(),
            ],
            from: "<sip:srs@example.com>;tag=srs-1".into(),
            to: "\"Media Server\" <sip:gvp@example.com>;tag=f1".into(),
            call_id: "call-1@192.0.2.10".into(),
            cseq: 1,
            headers: vec![(
                "Reason".into(),
                "SIP;cause=200;text=\"session timeout\"".into(),
            )],
            body: None,
        };
        let bytes = bye.to_bytes();
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        assert!(text.starts_with(
            "BYE sip:gvp@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKsrs1;rport\r\n\
Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\nMax-Forwards: 70\r\n"
        ));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let req = request(text);
        assert_eq!(req.method, Method::Bye);
        assert_eq!(req.cseq_method, Method::Bye);
        assert_eq!(req.to.tag.as_deref(), Some("f1"));
        assert_eq!(req.header_values("Route").count(), 2);
        assert_eq!(req.max_forwards, Some(70));
    }

    #[test]
    fn serialization_never_splits_lines() {
        let resp = OutgoingResponse::from_context(
            &ReplyContext {
                method: Method::Options,
                vias: Vec::new(),
                from: "a".into(),
                to: "b".into(),
                call_id: "c".into(),
                cseq: "1 OPTIONS".into(),
            },
            500,
            None,
        )
        .with_header("Warning", "399 srs \"bad\r\nInjected: yes\"");
        let bytes = resp.to_bytes();
        assert!(
            !std::str::from_utf8(&bytes)
                .expect("utf-8")
                .contains("\r\nInjected")
        );
    }

    #[test]
    fn reason_phrases() {
        for (code, phrase) in [
            (100, "Trying"),
            (183, "Session Progress"),
            (413, "Request Entity Too Large"),
            (416, "Unsupported URI Scheme"),
            (420, "Bad Extension"),
            (422, "Session Interval Too Small"),
            (491, "Request Pending"),
            (505, "Version Not Supported"),
            (513, "Message Too Large"),
            (299, "Success"),
            (499, "Client Error"),
            (999, "Unknown"),
        ] {
            assert_eq!(reason_phrase(code), phrase);
        }
    }

    #[test]
    fn name_addr_forms() {
        let na =
            parse_name_addr("\"A \\\"quoted\\\" <name>\" <sip:a@h;lr>;tag=x;other").expect("na");
        assert_eq!(na.uri, "sip:a@h;lr");
        assert_eq!(na.tag.as_deref(), Some("x"));
        let na = parse_name_addr("sip:a@h ; TAG = y").expect("na");
        assert_eq!((na.uri.as_str(), na.tag.as_deref()), ("sip:a@h", Some("y")));
        assert!(parse_name_addr("\"unterminated <sip:a@h>").is_none());
        assert!(parse_name_addr("<sip:a@h").is_none());
        assert!(parse_name_addr("no-scheme@h").is_none());
    }
}
