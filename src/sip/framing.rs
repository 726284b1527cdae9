//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3): check that a whole message is
//! buffered, then hand it out. "Incomplete" is a normal result, not an error.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete SIP message (head + body of Content-Length bytes).
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §4.4.1); answer with CRLF.
    KeepAlivePing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("missing or invalid Content-Length")]
    BadContentLength,
}

/// Accumulates bytes from a stream and yields complete frames. After an error the
/// connection must be closed: framing is lost.
pub struct StreamFramer {
    buf: BytesMut,
    max_message_size: usize,
    /// How far the current head has been searched for its blank line, so that a message
    /// arriving byte by byte is scanned once, not once per byte.
    scanned: usize,
    /// `(head length, body length)` once the blank line of the current message was found.
    pending: Option<(usize, usize)>,
}

impl StreamFramer {
    pub fn new(max_message_size: usize) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            max_message_size,
            scanned: 0,
            pending: None,
        }
    }
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// Next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.pending.is_none() && self.scanned == 0 {
            match self.skip_leading_crlf() {
                Leading::Ping => return Ok(Some(Frame::KeepAlivePing)),
                Leading::NeedMore => return Ok(None),
                Leading::Message => {}
            }
        }
        let (head_len, body_len) = match self.pending {
            Some(lengths) => lengths,
            None => {
                let Some(head_len) = self.find_head_end() else {
                    if self.buf.len() > self.max_message_size {
                        return Err(FrameError::TooLarge {
                            limit: self.max_message_size,
                        });
                    }
                    return Ok(None);
                };
                let body_len = content_length(&self.buf[..head_len])?;
                if head_len.saturating_add(body_len) > self.max_message_size {
                    return Err(FrameError::TooLarge {
                        limit: self.max_message_size,
                    });
                }
                self.pending = Some((head_len, body_len));
                (head_len, body_len)
            }
        };
        let total = head_len + body_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        self.scanned = 0;
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }
    /// Bytes buffered but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Between messages: CRLFCRLF is a keep-alive ping, a lone CRLF (a pong, or padding)
    /// is dropped.
    fn skip_leading_crlf(&mut self) -> Leading {
        loop {
            match self.buf[..] {
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    self.buf.advance(4);
                    return Leading::Ping;
                }
                // Could still become a ping: wait for the next bytes.
                [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Leading::NeedMore,
                [b'\r', b'\n', ..] => self.buf.advance(2),
                [b'\n', ..] => self.buf.advance(1),
                [] => return Leading::NeedMore,
                _ => return Leading::Message,
            }
        }
    }

    /// Length of the head including its blank line (`\r\n\r\n`, or `\n\n` from lenient
    /// senders), searching only bytes not searched before.
    fn find_head_end(&mut self) -> Option<usize> {
        // Back up so that a terminator split across two pushes is still seen.
        let from = self.scanned.saturating_sub(3);
        let buf = &self.buf[..];
        for i in from..buf.len() {
            if buf[i] != b'\n' {
                continue;
            }
            match buf.get(i + 1..) {
                Some([b'\n', ..]) => return Some(i + 2),
                Some([b'\r', b'\n', ..]) => return Some(i + 3),
                _ => {}
            }
        }
        self.scanned = buf.len();
        None
    }
}

enum Leading {
    Ping,
    NeedMore,
    Message,
}

/// Content-Length (or compact `l`) of a message head; absent means 0 (RFC 3261 §18.3
/// makes it mandatory on streams, but an absent header can only mean an empty body here).
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<usize> = None;
    // The text before the start line's first colon (`INVITE sip`, `SIP/2.0 200 OK` ...)
    // is never a bare header name, so the start line cannot match.
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let len = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or(FrameError::BadContentLength)?;
        if found.is_some_and(|f| f != len) {
            return Err(FrameError::BadContentLength);
        }
        found = Some(len);
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:record=1@srs.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
Content-Length: 5\r\n\r\nhello";
    const OPTIONS: &[u8] = b"OPTIONS sip:srs.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK2\r\n\
l: 0\r\n\r\n";

    fn drain(framer: &mut StreamFramer) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = framer.next_frame().expect("framing error") {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut framer = StreamFramer::new(65536);
        let mut frames = Vec::new();
        for byte in INVITE.iter().chain(OPTIONS) {
            framer.push(&[*byte]);
            frames.extend(drain(&mut framer));
        }
        assert_eq!(
            frames,
            vec![
                Frame::Message(Bytes::from_static(INVITE)),
                Frame::Message(Bytes::from_static(OPTIONS))
            ]
        );
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn pipelined_messages_in_one_push() {
        let mut framer = StreamFramer::new(65536);
        let mut data = INVITE.to_vec();
        data.extend_from_slice(OPTIONS);
        data.extend_from_slice(&INVITE[..10]);
        framer.push(&data);
        let frames = drain(&mut framer);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], Frame::Message(Bytes::from_static(OPTIONS)));
        assert_eq!(framer.buffered(), 10);
    }

    #[test]
    fn keep_alive_ping_and_lone_crlf() {
        let mut framer = StreamFramer::new(65536);
        framer.push(b"\r\n\r\n");
        assert_eq!(framer.next_frame(), Ok(Some(Frame::KeepAlivePing)));
        assert_eq!(framer.next_frame(), Ok(None));
        // A lone CRLF (a pong) before a message is skipped.
        framer.push(b"\r\n");
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(OPTIONS);
        assert_eq!(
            framer.next_frame(),
            Ok(Some(Frame::Message(Bytes::from_static(OPTIONS))))
        );
        // A ping split across pushes.
        framer.push(b"\r\n\r");
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b"\n");
        assert_eq!(framer.next_frame(), Ok(Some(Frame::KeepAlivePing)));
    }

    #[test]
    fn ping_after_a_message() {
        let mut framer = StreamFramer::new(65536);
        let mut data = OPTIONS.to_vec();
        data.extend_from_slice(b"\r\n\r\n");
        framer.push(&data);
        assert_eq!(
            drain(&mut framer),
            vec![
                Frame::Message(Bytes::from_static(OPTIONS)),
                Frame::KeepAlivePing
            ]
        );
    }

    #[test]
    fn lf_only_head() {
        let mut framer = StreamFramer::new(65536);
        framer.push(b"OPTIONS sip:a SIP/2.0\nContent-Length: 2\n\nokrest");
        assert_eq!(
            framer.next_frame(),
            Ok(Some(Frame::Message(Bytes::from_static(
                b"OPTIONS sip:a SIP/2.0\nContent-Length: 2\n\nok"
            ))))
        );
    }

    #[test]
    fn missing_content_length_is_empty_body() {
        let mut framer = StreamFramer::new(65536);
        framer.push(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\nOPTIONS");
        assert_eq!(
            framer.next_frame(),
            Ok(Some(Frame::Message(Bytes::from_static(
                b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n"
            ))))
        );
        assert_eq!(framer.buffered(), 7);
    }

    #[test]
    fn bad_content_length() {
        for value in ["-1", "abc", "", "1 2"] {
            let mut framer = StreamFramer::new(65536);
            framer.push(
                format!("OPTIONS sip:a SIP/2.0\r\nCONTENT-LENGTH: {value}\r\n\r\n").as_bytes(),
            );
            assert_eq!(
                framer.next_frame(),
                Err(FrameError::BadContentLength),
                "{value:?}"
            );
        }
    }

    #[test]
    fn oversize_head_without_terminator() {
        let mut framer = StreamFramer::new(100);
        framer.push(b"INVITE sip:a SIP/2.0\r\n");
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(&[b'X'; 100]);
        assert_eq!(
            framer.next_frame(),
            Err(FrameError::TooLarge { limit: 100 })
        );
    }

    #[test]
    fn oversize_declared_body() {
        let mut framer = StreamFramer::new(100);
        framer.push(b"INVITE sip:a SIP/2.0\r\nContent-Length: 90\r\n\r\n");
        assert_eq!(
            framer.next_frame(),
            Err(FrameError::TooLarge { limit: 100 })
        );
    }

    #[test]
    fn terminator_split_across_pushes() {
        let mut framer = StreamFramer::new(65536);
        let (a, b) = OPTIONS.split_at(OPTIONS.len() - 2);
        framer.push(a);
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(b);
        assert_eq!(
            framer.next_frame(),
            Ok(Some(Frame::Message(Bytes::from_static(OPTIONS))))
        );
    }

    #[test]
    fn random_chunking_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500 {
            let mut framer = StreamFramer::new(4096);
            for _ in 0..20 {
                let len = (next() % 64) as usize;
                let chunk: Vec<u8> = (0..len)
                    .map(|_| match next() % 6 {
                        0 => b'\r',
                        1 => b'\n',
                        2 => b':',
                        _ => (next() % 256) as u8,
                    })
                    .collect();
                framer.push(&chunk);
                while let Ok(Some(_)) = framer.next_frame() {}
            }
        }
    }
}
