//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3): check that a whole message is
//! buffered, then hand it out. "Incomplete" is a normal result, not an error.
//!
//! CONTRACT — the rest of the crate codes against these names.

use bytes::Bytes;

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
    _private: (),
}

impl StreamFramer {
    pub fn new(max_message_size: usize) -> Self {
        todo!("{max_message_size}")
    }
    pub fn push(&mut self, data: &[u8]) {
        todo!("{}", data.len())
    }
    /// Next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        todo!()
    }
    /// Bytes buffered but not yet framed.
    pub fn buffered(&self) -> usize {
        todo!()
    }
}
