//! Just enough SDP parsing to check the recorder's answers.

use super::msg::{Msg, header_param};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub fmts: Vec<String>,
    pub attrs: Vec<String>,
    /// Media-level c= address.
    pub connection: Option<String>,
    /// Session-level direction, used when the m= section has none.
    session_direction: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub origin_version: u64,
    pub connection: Option<String>,
    pub media: Vec<Media>,
}

const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];

impl Media {
    pub fn direction(&self) -> String {
        self.attrs
            .iter()
            .find(|a| DIRECTIONS.contains(&a.as_str()))
            .cloned()
            .or_else(|| self.session_direction.clone())
            .unwrap_or_else(|| "sendrecv".to_string())
    }

    /// Encoding name of a payload type from `a=rtpmap` (static types by number).
    pub fn encoding(&self, pt: &str) -> Option<String> {
        let prefix = format!("rtpmap:{pt} ");
        if let Some(a) = self.attrs.iter().find(|a| a.starts_with(&prefix)) {
            return a[prefix.len()..].split('/').next().map(str::to_string);
        }
        match pt {
            "0" => Some("PCMU".into()),
            "8" => Some("PCMA".into()),
            "9" => Some("G722".into()),
            _ => None,
        }
    }

    pub fn has_attr(&self, prefix: &str) -> bool {
        self.attrs.iter().any(|a| a.starts_with(prefix))
    }
}

impl Sdp {
    pub fn parse(text: &str) -> Sdp {
        let mut sdp = Sdp {
            origin_version: 0,
            connection: None,
            media: Vec::new(),
        };
        let mut session_direction = None;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            let Some((kind, value)) = line.split_once('=') else {
                continue;
            };
            match kind {
                "o" => {
                    sdp.origin_version = value
                        .split_whitespace()
                        .nth(2)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("bad o= line: {line}"));
                }
                "c" => {
                    let addr = value.split_whitespace().nth(2).map(str::to_string);
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = addr,
                        None => sdp.connection = addr,
                    }
                }
                "m" => {
                    let parts: Vec<&str> = value.split_whitespace().collect();
                    assert!(parts.len() >= 3, "bad m= line: {line}");
                    sdp.media.push(Media {
                        kind: parts[0].to_string(),
                        port: parts[1]
                            .split('/')
                            .next()
                            .and_then(|p| p.parse().ok())
                            .unwrap_or_else(|| panic!("bad m= port: {line}")),
                        proto: parts[2].to_string(),
                        fmts: parts[3..].iter().map(|s| s.to_string()).collect(),
                        attrs: Vec::new(),
                        connection: None,
                        session_direction: session_direction.clone(),
                    });
                }
                "a" => match sdp.media.last_mut() {
                    Some(m) => m.attrs.push(value.to_string()),
                    None if DIRECTIONS.contains(&value) => {
                        session_direction = Some(value.to_string())
                    }
                    None => {}
                },
                _ => {}
            }
        }
        sdp
    }

    /// The address media of m= line `i` is sent to (media-level c= over session-level).
    pub fn connection_of(&self, i: usize) -> Option<String> {
        self.media[i]
            .connection
            .clone()
            .or_else(|| self.connection.clone())
    }

    pub fn audio(&self) -> Vec<&Media> {
        self.media.iter().filter(|m| m.kind == "audio").collect()
    }
}

/// The SDP carried by a message: the body itself, or the `application/sdp` part of a
/// multipart body.
pub fn sdp_text(msg: &Msg) -> String {
    let ct = msg
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = msg.body_str();
    if !ct.starts_with("multipart/") {
        assert!(
            ct.starts_with("application/sdp"),
            "expected an SDP body, Content-Type {ct:?}"
        );
        return body;
    }
    let boundary = header_param(msg.header("content-type").unwrap_or(""), "boundary")
        .expect("multipart without boundary")
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}");
    for part in body.split(&delim) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        if head.to_ascii_lowercase().contains("application/sdp") {
            return content.trim_end_matches("\r\n").to_string();
        }
    }
    panic!("no application/sdp part in:\n{body}");
}

pub fn sdp_of(msg: &Msg) -> Sdp {
    Sdp::parse(&sdp_text(msg))
}
