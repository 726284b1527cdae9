//! The SIP parser and the TCP/TLS framer on the same bytes.
//!
//! Properties: parsing never panics; whatever parses can be answered (the reply builders
//! are where duplicated-header crashes hide), and the answer parses again; the framer yields
//! the same frames whether the bytes arrive at once or in arbitrary chunks.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_recorder::sip::framing::{Frame, StreamFramer};
use sip_recorder::sip::message::{Limits, OutgoingResponse, SipMessage, SipRequest, parse_message};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    check_message(Bytes::copy_from_slice(data), &limits);

    // A small limit as well, so that the TooLarge paths are reached with short inputs.
    let max = if data.len() % 3 == 0 {
        512
    } else {
        limits.max_message_size
    };
    let whole = frames(data, max, &[data.len()]);
    let chunked = frames(data, max, &split_points(data));
    assert_eq!(
        whole, chunked,
        "framing depends on how the bytes were chunked"
    );
    for frame in whole.frames {
        if let Frame::Message(msg) = frame {
            check_message(msg, &limits);
        }
    }
});

fn check_message(data: Bytes, limits: &Limits) {
    match parse_message(data, limits) {
        Ok(SipMessage::Request(req)) => answer(&req, limits),
        Ok(SipMessage::Response(_)) => {}
        Err(failure) => {
            let _ = failure.error.status_code();
            // What the UAS does for a request it could not parse but can route back.
            if let Some(ctx) = failure.reply {
                let resp =
                    OutgoingResponse::from_context(&ctx, failure.error.status_code(), Some("t1"));
                let _ = resp.to_bytes();
            }
        }
    }
}

/// Every request the recorder parses gets a response built from it; that response must be
/// a well-formed SIP message, or the peer can never match it to its transaction.
fn answer(req: &SipRequest, limits: &Limits) {
    for code in [100, 200, 488] {
        let tag = (code != 100).then_some("fuzz-tag");
        let bytes = OutgoingResponse::to_request(req, code, tag)
            .with_header("Warning", "399 fuzz \"x\"")
            .to_bytes();
        match parse_message(bytes.clone(), limits) {
            Ok(SipMessage::Response(resp)) => {
                assert_eq!(resp.code, code);
                assert_eq!(resp.call_id, req.call_id);
                assert_eq!(resp.cseq, req.cseq);
            }
            other => panic!(
                "our {code} to a parsed request does not parse: {other:?}\n{}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Framed {
    frames: Vec<Frame>,
    /// Whether framing ended in an error; the kind may differ with chunking (a head that is
    /// too long is either found too late or never found), but not whether it fails.
    failed: bool,
    buffered: usize,
}

/// Chunk lengths derived from the input itself, so the fuzzer explores splits too.
fn split_points(data: &[u8]) -> Vec<usize> {
    let seed = data.first().copied().unwrap_or(0);
    let mut cuts = Vec::new();
    let mut at = 0;
    let mut k = 0usize;
    while at < data.len() {
        let b = data.get(k % data.len().max(1)).copied().unwrap_or(0) ^ seed;
        let len = 1 + usize::from(b % 37);
        cuts.push(len);
        at += len;
        k += 7;
    }
    cuts
}

fn frames(data: &[u8], max: usize, chunks: &[usize]) -> Framed {
    let mut framer = StreamFramer::new(max);
    let mut out = Framed {
        frames: Vec::new(),
        failed: false,
        buffered: 0,
    };
    let mut rest = data;
    for &len in chunks {
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => out.frames.push(frame),
                Ok(None) => break,
                Err(_) => {
                    out.failed = true;
                    return out;
                }
            }
        }
    }
    out.buffered = framer.buffered();
    out
}
