//! A small, strict-enough SIP message parser for reading what the recorder sends.

/// One parsed SIP message (request or response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The bytes exactly as received (used for byte-equality checks).
    pub raw: Vec<u8>,
    pub start_line: String,
    /// Header names normalised to lower-case long form (compact forms expanded).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// RFC 3261 §7.3.3 compact forms, plus the RFC 4028 one.
fn long_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "t" => "to",
        "v" => "via",
        "k" => "supported",
        "s" => "subject",
        "x" => "session-expires",
        "o" => "event",
        "r" => "refer-to",
        "u" => "allow-events",
        _ => return lower,
    };
    long.to_string()
}

/// Offset of the first byte after the blank line that ends the head, and the head length.
pub fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

/// Content-Length from a raw head, if present and numeric.
pub fn content_length_of_head(head: &str) -> Option<usize> {
    head.split('\n').skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if long_name(name) == "content-length" {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

impl Msg {
    /// Parses one whole message. The body is cut at Content-Length when present.
    pub fn parse(bytes: &[u8]) -> Option<Msg> {
        let (head_len, body_start) = find_head_end(bytes)?;
        let head = std::str::from_utf8(&bytes[..head_len]).ok()?;
        let mut lines: Vec<String> = Vec::new();
        for line in head.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // Header folding (RFC 3261 §7.3.1): a line starting with white space continues.
            if (line.starts_with(' ') || line.starts_with('\t')) && lines.len() > 1 {
                let last = lines.last_mut()?;
                last.push(' ');
                last.push_str(line.trim());
            } else {
                lines.push(line.to_string());
            }
        }
        let start_line = lines.first()?.clone();
        let mut headers = Vec::new();
        for line in &lines[1..] {
            let (name, value) = line.split_once(':')?;
            headers.push((long_name(name), value.trim().to_string()));
        }
        let mut body = bytes[body_start..].to_vec();
        let msg_len = match content_length_of_head(head) {
            Some(cl) if cl <= body.len() => {
                body.truncate(cl);
                body_start + cl
            }
            _ => bytes.len(),
        };
        Some(Msg {
            raw: bytes[..msg_len].to_vec(),
            start_line,
            headers,
            body,
        })
    }

    pub fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/2.0 ")
    }

    pub fn status(&self) -> Option<u16> {
        if !self.is_response() {
            return None;
        }
        self.start_line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The request method, `None` for responses.
    pub fn method(&self) -> Option<&str> {
        if self.is_response() {
            None
        } else {
            self.start_line.split_whitespace().next()
        }
    }

    pub fn request_uri(&self) -> Option<&str> {
        if self.is_response() {
            None
        } else {
            self.start_line.split_whitespace().nth(1)
        }
    }

    /// First value of a header (name case-insensitive, compact forms accepted).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = long_name(name);
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order; comma-separated lists are not split.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = long_name(name);
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// All comma-separated tokens of a list header (Allow, Supported, ...), trimmed.
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        self.header_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    pub fn call_id(&self) -> &str {
        self.header("call-id").unwrap_or("")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> (u32, String) {
        let v = self.header("cseq").unwrap_or("");
        let mut it = v.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let m = it.next().unwrap_or("").to_string();
        (n, m)
    }

    pub fn cseq_method(&self) -> String {
        self.cseq().1
    }

    pub fn tag_of_to(&self) -> Option<String> {
        self.header("to").and_then(tag_param)
    }

    pub fn tag_of_from(&self) -> Option<String> {
        self.header("from").and_then(tag_param)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The URI inside the first Contact header (`<...>` or bare).
    pub fn contact_uri(&self) -> Option<String> {
        let v = self.header("contact")?;
        Some(match (v.find('<'), v.find('>')) {
            (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
            _ => v.split(';').next().unwrap_or(v).trim().to_string(),
        })
    }
}

/// The `tag` parameter of a From/To value (parameters after the URI's `>` when present).
pub fn tag_param(value: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("tag") {
            Some(v.trim().to_string())
        } else {
            None
        }
    })
}

/// A header parameter value (`;name=value`), e.g. `refresher` of Session-Expires.
pub fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case(name) {
            Some(v.trim().to_string())
        } else {
            None
        }
    })
}

/// Frames one message from the front of a stream buffer: (keep-alive CRLFs consumed in
/// front of it, the message once it is all there).
pub fn frame_stream(rx: &mut Vec<u8>) -> (usize, Option<Msg>) {
    let mut crlfs = 0;
    while rx.starts_with(b"\r\n") {
        rx.drain(..2);
        crlfs += 1;
    }
    let Some((head_len, body_start)) = find_head_end(rx) else {
        return (crlfs, None);
    };
    let head = String::from_utf8_lossy(&rx[..head_len]).into_owned();
    let cl = content_length_of_head(&head).unwrap_or(0);
    if rx.len() < body_start + cl {
        return (crlfs, None);
    }
    let bytes: Vec<u8> = rx.drain(..body_start + cl).collect();
    (crlfs, Msg::parse(&bytes))
}
