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

/// At most this many parts: a SIPREC body has two (SDP + metadata); a few more are tolerated.
pub const MAX_PARTS: usize = 16;
/// Header lines per part; parts carry two or three.
const MAX_PART_HEADERS: usize = 32;
/// RFC 2046 §5.1.1 allows 70 characters; a little slack for sloppy senders.
const MAX_BOUNDARY_LEN: usize = 200;

/// Split a multipart body. `content_type` is the full Content-Type header value
/// (with `boundary=`, quoted or not).
pub fn split_multipart(content_type: &str, body: &Bytes) -> Result<Vec<BodyPart>, MultipartError> {
    let boundary =
        content_type_param(content_type, "boundary").ok_or(MultipartError::NoBoundary)?;
    if boundary.is_empty() {
        return Err(MultipartError::NoBoundary);
    }
    if boundary.len() > MAX_BOUNDARY_LEN {
        return Err(MultipartError::Malformed("boundary too long"));
    }
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary.as_bytes());

    let data: &[u8] = body;
    // The preamble ends at the first delimiter line; it is ignored.
    let first = find_delimiter(data, &delimiter, 0)
        .ok_or(MultipartError::Malformed("no boundary delimiter"))?;
    let mut cursor = match first.kind {
        Delim::Close => return Err(MultipartError::Malformed("no body parts")),
        Delim::Open { next_line } => next_line,
    };

    let mut parts = Vec::new();
    loop {
        let delim = find_delimiter(data, &delimiter, cursor)
            .ok_or(MultipartError::Malformed("missing close delimiter"))?;
        if parts.len() == MAX_PARTS {
            return Err(MultipartError::TooManyParts(MAX_PARTS));
        }
        // `line_start` excludes the line break before the delimiter: it belongs to it.
        parts.push(parse_part(body, cursor, delim.line_start)?);
        match delim.kind {
            // The epilogue after the close delimiter is ignored.
            Delim::Close => return Ok(parts),
            Delim::Open { next_line } => cursor = next_line,
        }
    }
}

/// A parameter of a header value like `multipart/mixed;boundary="x y";charset=utf-8`.
/// Parameter names are case-insensitive (RFC 2045 §5.1); values may be quoted strings.
pub fn content_type_param(value: &str, name: &str) -> Option<String> {
    let mut rest = value.split_once(';')?.1;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return None;
        }
        let (key, after) = match rest.find(['=', ';']) {
            Some(i) if rest.as_bytes()[i] == b'=' => (&rest[..i], &rest[i + 1..]),
            // A parameter without a value: skip it.
            Some(i) => {
                rest = &rest[i..];
                continue;
            }
            None => return None,
        };
        let after = after.trim_start_matches([' ', '\t']);
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            unquote(quoted)
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim_end().to_owned(), &after[end..])
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(val);
        }
        rest = remaining;
    }
}

/// The content of a quoted string (after its opening quote) and what follows it.
fn unquote(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    out.push(escaped);
                }
            }
            _ => out.push(c),
        }
    }
    // Unterminated: take what is there.
    (out, "")
}

#[derive(Debug, Clone, Copy)]
enum Delim {
    /// `--boundary`; the next part starts at `next_line`.
    Open { next_line: usize },
    /// `--boundary--`.
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Found {
    /// Where the line break before the delimiter starts (or the delimiter itself at offset 0).
    line_start: usize,
    kind: Delim,
}

/// The next delimiter line at or after `from`. Each byte is looked at a bounded number of
/// times, so hostile input costs linear time.
fn find_delimiter(data: &[u8], delimiter: &[u8], from: usize) -> Option<Found> {
    // `from` is always the start of a line (offset 0 or just after a line break).
    let mut pos = from;
    let mut at_from = true;
    loop {
        let (line_start, at) =
            if std::mem::take(&mut at_from) && data.get(from..)?.starts_with(delimiter) {
                (from, from)
            } else {
                let lf = pos + data.get(pos..)?.iter().position(|&b| b == b'\n')?;
                pos = lf + 1;
                if !data[pos..].starts_with(delimiter) {
                    continue;
                }
                // The line break before the delimiter belongs to it (RFC 2046 §5.1.1).
                let start = if lf > from && data[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                (start, pos)
            };
        let after = at + delimiter.len();
        let tail = &data[after..];
        if tail.starts_with(b"--") {
            return Some(Found {
                line_start,
                kind: Delim::Close,
            });
        }
        // Transport padding (RFC 2046 §5.1.1) may follow before the line break.
        let pad = tail
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let next_line = match (tail.get(pad), tail.get(pad + 1)) {
            (Some(b'\n'), _) => after + pad + 1,
            (Some(b'\r'), Some(b'\n')) => after + pad + 2,
            // `--boundaryX...` is content, not a delimiter; so is a delimiter at the very
            // end without a line break (no part could follow it).
            _ => continue,
        };
        return Some(Found {
            line_start,
            kind: Delim::Open { next_line },
        });
    }
}

/// Headers, blank line, body: `data[start..end]`.
fn parse_part(body: &Bytes, start: usize, end: usize) -> Result<BodyPart, MultipartError> {
    let data = &body[start..end.max(start)];
    // No headers: the part starts with its blank line (RFC 2046 §5.1.1 default type).
    let (header_end, body_start) = if data.starts_with(b"\r\n") {
        (0, 2)
    } else if data.starts_with(b"\n") {
        (0, 1)
    } else {
        blank_line(data).ok_or(MultipartError::Malformed(
            "part without blank line after headers",
        ))?
    };
    let head = std::str::from_utf8(&data[..header_end])
        .map_err(|_| MultipartError::Malformed("part headers are not UTF-8"))?;

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 5322 §2.2.3).
            let last = headers.last_mut().ok_or(MultipartError::Malformed(
                "part header continuation without header",
            ))?;
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(MultipartError::Malformed("part header without colon"))?;
        if headers.len() == MAX_PART_HEADERS {
            return Err(MultipartError::Malformed("too many part headers"));
        }
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }

    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type") || n.eq_ignore_ascii_case("c"))
        .map_or_else(
            || "text/plain".to_owned(),
            |(_, v)| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            },
        );
    Ok(BodyPart {
        content_type,
        headers,
        body: body.slice(start + body_start..end.max(start + body_start)),
    })
}

/// End of the header block and start of the body: the first empty line (CRLF or LF).
fn blank_line(data: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 0;
    while let Some(i) = data.get(pos..)?.iter().position(|&b| b == b'\n') {
        let lf = pos + i;
        match data.get(lf + 1..) {
            Some([b'\n', ..]) => return Some((lf + 1, lf + 2)),
            Some([b'\r', b'\n', ..]) => return Some((lf + 1, lf + 3)),
            _ => pos = lf + 1,
        }
    }
    None
}

/// True for `application/rs-metadata+xml` and legacy `application/rs-metadata`.
pub fn is_recording_metadata(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct == "application/rs-metadata+xml" || ct == "application/rs-metadata"
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=SRC 2890844526 2890844526 IN IP4 198.51.100.1\r\ns=-\r\n\
        c=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 36000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
        a=label:96634\r\na=sendonly\r\nm=audio 36002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
        a=label:96665\r\na=sendonly\r\n";

    const METADATA: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
        <recording xmlns='urn:ietf:params:xml:ns:recording:1'>\r\n\
        <datamode>complete</datamode>\r\n\
        <session session_id=\"hVpd7YQgRW2nD22h7q60JQ==\"><sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000</sipSessionID></session>\r\n\
        <participant participant_id=\"srfBElmCRp2QB23b7Mpk0w==\"><nameID aor=\"sip:alice@example.com\"/></participant>\r\n\
        <stream stream_id=\"UAAMm5GRQKSCMVvLyl4rFw==\" session_id=\"hVpd7YQgRW2nD22h7q60JQ==\"><label>96634</label></stream>\r\n\
        </recording>";

    fn siprec_body(boundary: &str, eol: &str) -> Bytes {
        let body = format!(
            "This is a preamble.{eol}--{boundary}{eol}Content-Type: application/sdp{eol}{eol}{SDP}{eol}\
             --{boundary}{eol}Content-Type: application/rs-metadata+xml{eol}\
             Content-Disposition: recording-session{eol}{eol}{METADATA}{eol}--{boundary}--{eol}epilogue"
        );
        Bytes::from(body.replace("\r\n", eol))
    }

    #[test]
    fn siprec_sdp_and_metadata() {
        let body = siprec_body("OSS-unique-boundary-42", "\r\n");
        let parts =
            split_multipart("multipart/mixed;boundary=OSS-unique-boundary-42", &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type, "application/sdp");
        assert_eq!(parts[0].body, Bytes::from_static(SDP.as_bytes()));
        assert_eq!(parts[1].content_type, "application/rs-metadata+xml");
        assert!(is_recording_metadata(&parts[1].content_type));
        assert_eq!(parts[1].body, Bytes::from_static(METADATA.as_bytes()));
        assert_eq!(
            parts[1].headers,
            vec![
                (
                    "Content-Type".to_owned(),
                    "application/rs-metadata+xml".to_owned()
                ),
                (
                    "Content-Disposition".to_owned(),
                    "recording-session".to_owned()
                ),
            ]
        );
        // The SDP part is usable as it is.
        let offer = crate::sdp::parse_offer(&parts[0].body).unwrap();
        assert_eq!(offer.media.len(), 2);
        assert_eq!(offer.media[1].label.as_deref(), Some("96665"));
    }

    #[test]
    fn quoted_boundary_case_insensitive_param_and_lf() {
        let body = siprec_body("a b:c", "\n");
        let parts = split_multipart(
            "Multipart/Mixed; charset=x; BOUNDARY=\"a b:c\" ; x=y",
            &body,
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, Bytes::from(SDP.replace("\r\n", "\n")));
        assert!(parts[1].body.ends_with(b"</recording>"));
    }

    #[test]
    fn boundary_param_parsing() {
        assert_eq!(
            content_type_param("multipart/mixed;boundary=\"q\\\"x\"", "boundary").as_deref(),
            Some("q\"x")
        );
        assert_eq!(content_type_param("multipart/mixed", "boundary"), None);
        assert_eq!(
            content_type_param("multipart/mixed;flag;boundary=z", "boundary").as_deref(),
            Some("z")
        );
        assert_eq!(
            split_multipart("multipart/mixed", &Bytes::new()),
            Err(MultipartError::NoBoundary)
        );
        assert_eq!(
            split_multipart("multipart/mixed;boundary=\"\"", &Bytes::new()),
            Err(MultipartError::NoBoundary)
        );
    }

    #[test]
    fn padding_lookalikes_and_headerless_parts() {
        let body = Bytes::from_static(
            b"--xx \t\r\n\r\nplain\r\n--xxnot a delimiter\r\n--xx\r\nc: Text/Plain; q=1\r\n\r\n\r\n--xx--",
        );
        let parts = split_multipart("multipart/mixed;boundary=xx", &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type, "text/plain");
        assert!(parts[0].headers.is_empty());
        assert_eq!(&parts[0].body[..], b"plain\r\n--xxnot a delimiter");
        assert_eq!(parts[1].content_type, "text/plain");
        assert!(parts[1].body.is_empty());
    }

    #[test]
    fn folded_part_header() {
        let body = Bytes::from_static(
            b"--b\r\nContent-Type: application/sdp\r\nX-Long: one\r\n  two\r\n\r\nv=0\r\n--b--\r\n",
        );
        let parts = split_multipart("multipart/mixed;boundary=b", &body).unwrap();
        assert_eq!(
            parts[0].headers[1],
            ("X-Long".to_owned(), "one two".to_owned())
        );
        assert_eq!(&parts[0].body[..], b"v=0");
    }

    #[test]
    fn malformed_bodies() {
        let split = |b: &'static [u8]| {
            split_multipart("multipart/mixed;boundary=b", &Bytes::from_static(b))
        };
        let m = MultipartError::Malformed;
        assert_eq!(split(b""), Err(m("no boundary delimiter")));
        assert_eq!(split(b"v=0\r\n"), Err(m("no boundary delimiter")));
        assert_eq!(split(b"--b--\r\n"), Err(m("no body parts")));
        assert_eq!(
            split(b"--b\r\nContent-Type: a/b\r\n\r\nx\r\n"),
            Err(m("missing close delimiter"))
        );
        assert_eq!(
            split(b"--b\r\nContent-Type: a/b\r\n\r\nx\r\n--b"),
            Err(m("missing close delimiter"))
        );
        assert_eq!(
            split(b"--b\r\nContent-Type a/b\r\n\r\nx\r\n--b--"),
            Err(m("part header without colon"))
        );
        assert_eq!(
            split(b"--b\r\nContent-Type: a/b\r\n--b--"),
            Err(m("part without blank line after headers"))
        );
        assert_eq!(
            split(b"--b\r\n continued\r\n\r\nx\r\n--b--"),
            Err(m("part header continuation without header"))
        );
    }

    #[test]
    fn too_many_parts() {
        let mut body = String::new();
        for _ in 0..=MAX_PARTS {
            body.push_str("--b\r\n\r\nx\r\n");
        }
        body.push_str("--b--\r\n");
        assert_eq!(
            split_multipart("multipart/mixed;boundary=b", &Bytes::from(body.clone())),
            Err(MultipartError::TooManyParts(MAX_PARTS))
        );
        // Exactly the limit is fine.
        let ok = body.replacen("--b\r\n\r\nx\r\n", "", 1);
        assert_eq!(
            split_multipart("multipart/mixed;boundary=b", &Bytes::from(ok))
                .unwrap()
                .len(),
            MAX_PARTS
        );
    }

    #[test]
    fn hostile_input_is_linear_and_panic_free() {
        // Many near-delimiters and line breaks: must stay fast.
        let body = Bytes::from(format!("--b\r\n\r\n{}", "\r\n--bx".repeat(200_000)));
        let started = std::time::Instant::now();
        assert!(split_multipart("multipart/mixed;boundary=b", &body).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));

        // Truncations and byte flips of a real body never panic.
        let base = siprec_body("bnd", "\r\n").to_vec();
        let mut seed: u32 = 0xdead_beef;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        for _ in 0..3000 {
            let mut b = base.clone();
            b.truncate(next() % (b.len() + 1));
            for _ in 0..(next() % 6) {
                if !b.is_empty() {
                    let i = next() % b.len();
                    b[i] = [b'\r', b'\n', b'-', b'b', b':', 0xff][next() % 6];
                }
            }
            let _ = split_multipart("multipart/mixed;boundary=bnd", &Bytes::from(b));
        }
    }
}
