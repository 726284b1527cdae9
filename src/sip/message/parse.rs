//! Parsing internals: start line, Request-URI, header collection and body, typed request fields.

use super::headers::{parse_cseq, parse_decimal, parse_name_addr, parse_vias, single, split_cseq};
use super::{
    Header, Limits, Method, NameAddr, ParseError, ReplyContext, RequestUri, SipRequest,
    SipResponse, SipUriParts, Via,
};
use bytes::Bytes;
use ezk_sip_types::Name;
use ezk_sip_types::host::Host;
use ezk_sip_types::msg::{Line, PullParser};
use ezk_sip_types::uri::{SipUri, SipUriUserPart};
use std::str::FromStr;

// ---- parsing internals ----

pub(super) enum StartLine {
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

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

pub(super) fn parse_start_line(line: &[u8]) -> Result<StartLine, ParseError> {
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
pub(super) fn request_method_hint(line: &[u8]) -> Option<Method> {
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
pub(super) fn uri_scheme(uri: &str) -> Option<&str> {
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

pub(super) fn host_text(host: &Host) -> String {
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
pub(super) fn collect_headers(
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
pub(super) fn canonical_name(name: &str) -> String {
    if let Some(full) = extra_compact_form(name) {
        return full.to_string();
    }
    Name::from(name.to_string()).as_print_str().to_string()
}

pub(super) fn find_header<'a>(headers: &'a [Header], canonical: &str) -> Option<&'a str> {
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

pub(super) fn extract_body(
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
    // An ACK with the INVITE's CSeq method (BroadWorks) is let through: the UAS decides
    // whether it acknowledges the one outstanding 2xx.
    let ack_of_invite = *method == Method::Ack && cseq_method == Method::Invite;
    if cseq_method != *method && !ack_of_invite {
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

pub(super) fn build_request(
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

pub(super) fn build_response(code: u16, headers: Vec<Header>) -> Result<SipResponse, ParseError> {
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
pub(super) fn reply_context(method: &Method, headers: &[Header]) -> Option<ReplyContext> {
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
