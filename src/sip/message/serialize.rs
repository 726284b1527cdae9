//! Serialization of the responses and requests the recorder sends.

use super::headers::parse_name_addr;
use super::{OutgoingRequest, OutgoingResponse, ReplyContext, SipRequest, reason_phrase};
use bytes::{BufMut, Bytes, BytesMut};

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
