//! Header value parsing: Via, parameters and quoting, From/To name-addr, CSeq, single-valued headers.

use super::parse::{host_text, is_token, uri_scheme};
use super::{Header, Method, NameAddr, ParseError, Via};
use bytes::Bytes;
use ezk_sip_types::header::HeaderParse;
use ezk_sip_types::header::typed::Via as EzkVia;

/// Non-negative decimal without sign; `None` on anything else or overflow.
pub(super) fn parse_decimal(value: &str) -> Option<usize> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Every Via value of every Via header, in order; comma-separated values split.
pub(super) fn parse_vias(headers: &[Header]) -> Result<Vec<Via>, ParseError> {
    let mut vias = Vec::new();
    for header in headers.iter().filter(|h| h.name == "Via") {
        parse_via_line(&header.value, &mut vias)?;
    }
    Ok(vias)
}

pub(super) fn parse_via_line(value: &str, vias: &mut Vec<Via>) -> Result<(), ParseError> {
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
pub(super) fn set_param(raw: &str, name: &str, value: Option<&str>) -> String {
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
            // RFC 4475 baddn: an unquoted display name is tokens and LWS only.
            let display = s[..lt].trim();
            if !display.starts_with('"') && !display.split_whitespace().all(is_token) {
                return None;
            }
            let inner = &s[lt + 1..];
            let gt = inner.find('>')?;
            let uri = &inner[..gt];
            // RFC 4475 badaspec: no LWS inside the angle brackets.
            if uri.trim() != uri {
                return None;
            }
            (uri, &inner[gt + 1..])
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
pub(super) fn split_cseq(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split_ascii_whitespace();
    let (Some(number), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && is_token(method))
        .then_some((number, method))
}

pub(super) fn parse_cseq(value: &str) -> Result<(u32, Method), ParseError> {
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
pub(super) fn single<'a>(headers: &'a [Header], name: &'static str) -> Result<&'a str, ParseError> {
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
