//! The on-disk framing shared by the segment files and the cursor log.
//!
//! A file starts with an 8-byte magic; then frames, each a header line of 8 hex digits of
//! payload length, a space, 8 hex digits of CRC-32 (IEEE 802.3, the zlib one) of the
//! payload, `\n`; the payload; a closing `\n`. A scan stops at the first frame that is
//! short, has a zero or oversized length, a malformed header or closing byte, or fails its
//! CRC: everything from there on is a torn tail (a crash between a write and its
//! fdatasync), never a record. The whole file is text (payloads are UTF-8) so that `grep`,
//! `less` and a plain `read_to_string` still find a record in the spool.

use std::fs::File;
use std::io::{self, Read};

/// Frame header bytes: `llllllll cccccccc\n`.
pub(super) const HEADER_LEN: usize = 18;

/// A record is a few KiB at most; anything larger than this is a corrupt length field.
const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// CRC-32 lookup table, built at compile time (reflected polynomial 0xEDB88320).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

pub(super) fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Appends one frame holding `payload` to `out`.
pub(super) fn encode(out: &mut Vec<u8>, payload: &[u8]) {
    let header = format!("{:08x} {:08x}\n", payload.len(), crc32(payload));
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out.push(b'\n');
}

fn hex(field: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(field).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Length and CRC from a frame header line.
fn header(h: &[u8]) -> Option<(usize, u32)> {
    if h[8] != b' ' || h[17] != b'\n' {
        return None;
    }
    Some((hex(&h[..8])? as usize, hex(&h[9..17])?))
}

/// A frame found by [`scan`]: where its payload starts in the file, and the payload.
pub(super) struct Frame<'a> {
    pub offset: u64,
    pub payload: &'a [u8],
}

/// The frames of a whole file, and the length of its valid prefix (`valid_len`): bytes past
/// it are a torn tail. `None` when the magic is wrong (not one of our files).
pub(super) struct Scan<'a> {
    pub frames: Vec<Frame<'a>>,
    pub valid_len: u64,
}

pub(super) fn scan<'a>(data: &'a [u8], magic: &[u8]) -> Option<Scan<'a>> {
    if data.len() < magic.len() {
        // A file created but whose magic never reached the disk: empty, nothing to lose.
        return magic.starts_with(data).then_some(Scan {
            frames: Vec::new(),
            valid_len: 0,
        });
    }
    if &data[..magic.len()] != magic {
        return None;
    }
    let mut pos = magic.len();
    let mut frames = Vec::new();
    while let Some(h) = data.get(pos..pos + HEADER_LEN) {
        let Some((len, crc)) = header(h) else {
            break;
        };
        let start = pos + HEADER_LEN;
        if len == 0 || len > MAX_PAYLOAD {
            break;
        }
        let (Some(payload), Some(b'\n')) = (data.get(start..start + len), data.get(start + len))
        else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        frames.push(Frame {
            offset: start as u64,
            payload,
        });
        pos = start + len + 1;
    }
    Some(Scan {
        frames,
        valid_len: pos as u64,
    })
}

pub(super) fn read_all(path: &std::path::Path) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8] = b"TESTMAG\n";

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn scan_stops_at_a_torn_or_corrupt_frame() {
        let mut file = MAGIC.to_vec();
        encode(&mut file, b"one");
        encode(&mut file, b"two");
        let good = file.len();
        encode(&mut file, b"three");
        // Every cut inside the third frame leaves exactly the first two.
        for cut in good..file.len() {
            let s = scan(&file[..cut], MAGIC).expect("magic");
            assert_eq!(s.frames.len(), 2, "cut at {cut}");
            assert_eq!(s.valid_len, good as u64);
        }
        let s = scan(&file, MAGIC).expect("magic");
        assert_eq!(s.frames.len(), 3);
        assert!(std::str::from_utf8(&file).is_ok(), "the file is text");
        assert_eq!(s.frames[2].payload, b"three");
        // A flipped bit in the second payload ends the scan there.
        let mut bad = file.clone();
        bad[MAGIC.len() + HEADER_LEN + 4 + HEADER_LEN] ^= 0x01;
        let s = scan(&bad, MAGIC).expect("magic");
        assert_eq!(s.frames.len(), 1);
        // Zeros where a frame should be (a tail the kernel allocated but never wrote).
        let mut zeros = file[..good].to_vec();
        zeros.extend_from_slice(&[0u8; 64]);
        assert_eq!(scan(&zeros, MAGIC).expect("magic").frames.len(), 2);
        assert!(scan(b"OTHERMAG", MAGIC).is_none());
        assert_eq!(scan(b"TEST", MAGIC).expect("prefix").valid_len, 0);
    }
}
