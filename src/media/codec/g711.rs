//! G.711 (ITU-T G.711) µ-law and A-law decoding to 16-bit linear PCM.
//!
//! Both laws expand every byte independently, so decoding is one lookup per sample in a
//! 256-entry table built at compile time.

/// µ-law byte → linear sample (ITU-T G.711 §3, the 14-bit value scaled to 16 bits).
const fn expand_ulaw(byte: u8) -> i16 {
    // µ-law bytes are transmitted inverted.
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    // 0x84 is the bias the encoder adds so that every segment starts on a power of two.
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law byte → linear sample (ITU-T G.711 §2, the 13-bit value scaled to 16 bits).
const fn expand_alaw(byte: u8) -> i16 {
    // Even bits are inverted on the wire (0x55) so that idle lines carry transitions.
    let a = byte ^ 0x55;
    let segment = ((a & 0x70) >> 4) as i32;
    let mut magnitude = ((a & 0x0F) as i32) << 4;
    magnitude += 8;
    if segment >= 1 {
        magnitude += 0x100;
    }
    if segment > 1 {
        magnitude <<= segment - 1;
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            expand_alaw(i as u8)
        } else {
            expand_ulaw(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW: [i16; 256] = build(false);
static ALAW: [i16; 256] = build(true);

/// Decodes µ-law (`PCMU`) bytes, appending one sample per byte to `out`.
pub fn decode_ulaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ULAW[usize::from(b)]));
}

/// Decodes A-law (`PCMA`) bytes, appending one sample per byte to `out`.
pub fn decode_alaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ALAW[usize::from(b)]));
}

/// The µ-law byte a silent line carries (decodes to 0).
pub const ULAW_SILENCE: u8 = 0xFF;
/// The A-law byte closest to zero (decodes to +8).
pub const ALAW_SILENCE: u8 = 0xD5;

#[cfg(test)]
mod tests {
    use super::*;

    fn ulaw(b: u8) -> i16 {
        let mut v = Vec::new();
        decode_ulaw(&[b], &mut v);
        v[0]
    }

    fn alaw(b: u8) -> i16 {
        let mut v = Vec::new();
        decode_alaw(&[b], &mut v);
        v[0]
    }

    #[test]
    fn ulaw_reference_points() {
        // Values from the G.711 tables (as used by every telephony stack).
        assert_eq!(ulaw(0xFF), 0);
        assert_eq!(ulaw(0x7F), 0);
        assert_eq!(ulaw(0x00), -32124);
        assert_eq!(ulaw(0x80), 32124);
        assert_eq!(ulaw(0xFE), 8);
        assert_eq!(ulaw(0x7E), -8);
        assert_eq!(ulaw(0xEF), 132);
    }

    #[test]
    fn alaw_reference_points() {
        assert_eq!(alaw(0xD5), 8);
        assert_eq!(alaw(0x55), -8);
        assert_eq!(alaw(0xAA), 32256);
        assert_eq!(alaw(0x2A), -32256);
        assert_eq!(alaw(ALAW_SILENCE), 8);
    }

    #[test]
    fn tables_are_symmetric_and_monotonic() {
        // Within one sign half, decreasing µ-law codes mean increasing magnitude.
        for b in 0x80u8..0xFF {
            assert!(ulaw(b) > ulaw(b + 1), "µ-law {b:#x}");
            assert_eq!(ulaw(b), -ulaw(b - 0x80));
        }
        for b in 0..=255u8 {
            assert_eq!(alaw(b), -alaw(b ^ 0x80), "A-law {b:#x}");
        }
        assert_eq!(ulaw(ULAW_SILENCE), 0);
    }

    #[test]
    fn decode_appends() {
        let mut out = vec![1, 2];
        decode_ulaw(&[0xFF, 0x80], &mut out);
        decode_alaw(&[0xD5], &mut out);
        assert_eq!(out, vec![1, 2, 0, 32124, 8]);
    }
}
