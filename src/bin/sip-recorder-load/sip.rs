//! The few SIP message operations a recording UAC needs: parse what the recorder sends,
//! build requests and responses. Parsing never panics: anything malformed is `None`.

use std::fmt::Write as _;

/// One SIP message (request or response).
#[derive(Debug, Clone)]
pub struct Msg {
    pub start_line: String,
    /// Header names lower-cased, compact forms expanded.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

fn long_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "t" => "to",
        "v" => "via",
        _ => return lower,
    };
    long.to_string()
}

/// End of the head (index of the blank line) and start of the body.
pub fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
}

/// Content-Length of a head; `None` when absent or not a number.
pub fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (long_name(name) == "content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

impl Msg {
    pub fn parse(bytes: &[u8]) -> Option<Msg> {
        let (head_len, body_start) = head_end(bytes)?;
        let head = std::str::from_utf8(&bytes[..head_len]).ok()?;
        let mut lines = head.split("\r\n");
        let start_line = lines.next()?.to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                // Folded continuation of the previous header.
                let (_, last) = headers.last_mut()?;
                last.push(' ');
                last.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((long_name(name), value.trim().to_string()));
        }
        let rest = &bytes[body_start..];
        let body = match content_length(&bytes[..head_len]) {
            Some(n) => rest.get(..n)?,
            None => rest,
        };
        Some(Msg {
            start_line,
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        })
    }

    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line.strip_prefix("SIP/2.0 ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    pub fn method(&self) -> Option<&str> {
        if self.start_line.starts_with("SIP/2.0 ") {
            None
        } else {
            self.start_line.split_whitespace().next()
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut it = self.header("cseq")?.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next()?))
    }

    pub fn to_tag(&self) -> Option<&str> {
        tag_param(self.header("to")?)
    }

    /// The URI inside the first Contact.
    pub fn contact_uri(&self) -> Option<&str> {
        let v = self.header("contact")?;
        match (v.find('<'), v.find('>')) {
            (Some(a), Some(b)) if a < b => Some(&v[a + 1..b]),
            _ => v.split(';').next().map(str::trim),
        }
    }

    /// A response to this request: Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6).
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> String {
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for (name, value) in &self.headers {
            let value = match name.as_str() {
                "to" if to_tag.is_some() && tag_param(value).is_none() => {
                    format!("{value};tag={}", to_tag.unwrap_or_default())
                }
                "via" | "from" | "to" | "call-id" | "cseq" => value.clone(),
                _ => continue,
            };
            let _ = write!(out, "{}: {value}\r\n", display_name(name));
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out
    }
}

fn display_name(lower: &str) -> &str {
    match lower {
        "via" => "Via",
        "from" => "From",
        "to" => "To",
        "call-id" => "Call-ID",
        "cseq" => "CSeq",
        other => other,
    }
}

fn tag_param(value: &str) -> Option<&str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

/// Where one answered audio stream must be sent.
pub fn answer_destinations(sdp: &str) -> Vec<Option<std::net::SocketAddr>> {
    let mut session_ip: Option<std::net::IpAddr> = None;
    // (port, media-level address) per audio m= line.
    let mut media: Vec<(u16, Option<std::net::IpAddr>)> = Vec::new();
    let mut in_audio = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            in_audio = parts.next() == Some("audio");
            if in_audio {
                let port = parts
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                media.push((port, None));
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let ip = c.split_whitespace().nth(2).and_then(|a| a.parse().ok());
            match media.last_mut() {
                Some(m) if in_audio => m.1 = ip,
                None => session_ip = ip,
                _ => {}
            }
        }
    }
    media
        .into_iter()
        .map(|(port, ip)| {
            let ip = ip.or(session_ip)?;
            (port != 0).then(|| std::net::SocketAddr::new(ip, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_and_its_answer() {
        let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\nTo: <sip:r@c>;tag=abc\r\ni: x@y\r\nCSeq: 1 INVITE\r\nContact: <sip:rec@127.0.0.1:5060>\r\nContent-Length: 99\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20000 RTP/AVP 0\r\nm=audio 20002 RTP/AVP 0\r\nc=IN IP4 10.0.0.1\r\nm=video 0 RTP/AVP 96\r\n";
        let m = Msg::parse(raw.as_bytes()).expect("parse");
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.to_tag(), Some("abc"));
        assert_eq!(m.call_id(), Some("x@y"));
        assert_eq!(m.cseq(), Some((1, "INVITE")));
        assert_eq!(m.contact_uri(), Some("sip:rec@127.0.0.1:5060"));
        let d = answer_destinations(&m.body);
        assert_eq!(
            d,
            vec![
                Some("127.0.0.1:20000".parse().unwrap()),
                Some("10.0.0.1:20002".parse().unwrap())
            ]
        );
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"SIP/2.0\r\n\r\n",
            b"INVITE x\r\nbad\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nab",
            b"\xff\xfe\r\n\r\n",
        ] {
            if let Some(m) = Msg::parse(raw) {
                let _ = (m.status(), m.cseq(), m.to_tag(), m.contact_uri());
            }
        }
    }

    #[test]
    fn response_copies_the_transaction_headers() {
        let req = "BYE sip:c@1.2.3.4 SIP/2.0\r\nVia: SIP/2.0/UDP 1.1.1.1;branch=z9hG4bK1\r\nFrom: <sip:r@x>;tag=r\r\nTo: <sip:c@y>;tag=c\r\nCall-ID: k\r\nCSeq: 7 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let m = Msg::parse(req.as_bytes()).expect("parse");
        let r = m.response(200, "OK", None);
        assert!(r.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.1.1.1;branch=z9hG4bK1\r\n"));
        assert!(r.contains("CSeq: 7 BYE\r\n") && !r.contains("Max-Forwards"));
    }
}
