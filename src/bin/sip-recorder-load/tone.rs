//! Precomputed encoded tones: the RTP pacer copies these bytes, so sending costs no
//! encoding. One second of tone holds a whole number of cycles of both 440 and 880 Hz, so
//! 50 frames of 20 ms loop without a click.

use crate::cli::Codec;
use sip_recorder::media::codec::g722::G722Encoder;

/// Frames of 20 ms in one loop of the tone.
pub const FRAMES: usize = 50;
/// RTP timestamp units per 20 ms frame (8 kHz clock for all three codecs).
pub const TS_PER_FRAME: u32 = 160;
/// Encoded bytes per 20 ms frame (64 kbit/s for all three codecs).
pub const FRAME_BYTES: usize = 160;

/// One second of a tone, encoded, as 50 consecutive 20 ms payloads.
#[derive(Debug)]
pub struct ToneFrames {
    bytes: Vec<u8>,
}

impl ToneFrames {
    pub fn new(codec: Codec, freq_hz: f64) -> ToneFrames {
        let rate = match codec {
            Codec::G722 => 16_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        };
        let pcm = sine(freq_hz, rate, rate as usize);
        let bytes = match codec {
            Codec::Pcmu => pcm.iter().map(|&s| linear_to_ulaw(s)).collect(),
            Codec::Pcma => pcm.iter().map(|&s| linear_to_alaw(s)).collect(),
            Codec::G722 => G722Encoder::new().encode(&pcm),
        };
        ToneFrames { bytes }
    }

    /// Payload of frame `n` (taken modulo the loop).
    pub fn frame(&self, n: u64) -> &[u8] {
        let start = (n % FRAMES as u64) as usize * FRAME_BYTES;
        &self.bytes[start..start + FRAME_BYTES]
    }
}

/// A sine at about -10 dBFS.
fn sine(freq_hz: f64, rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            // |value| <= 10000, so the cast cannot overflow.
            (10_000.0 * (2.0 * std::f64::consts::PI * freq_hz * t).sin()) as i16
        })
        .collect()
}

/// G.711 mu-law (ITU-T G.711 with the usual bias-and-segment formulation).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let mag = s.abs().min(CLIP) + BIAS;
    let exponent = (31 - (mag as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (mag >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, mag) = if s >= 0 {
        (0x80, s)
    } else {
        (0x00, (-s - 1).max(0))
    };
    let mag = mag.min(32767) >> 3;
    let code = if mag < 32 {
        mag >> 1
    } else {
        let exponent = 31 - (mag as u32).leading_zeros() as i32 - 4;
        (exponent << 4) | ((mag >> exponent) & 0x0F)
    };
    ((sign | code) ^ 0x55) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_recorder::media::codec::g711::{decode_alaw, decode_ulaw};
    use sip_recorder::media::codec::g722::G722Decoder;

    /// Power of `freq` in `x` relative to total power (Goertzel), 0..=1.
    fn tone_share(x: &[i16], rate: f64, freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / rate;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let total: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum();
        2.0 * power / (total * x.len() as f64)
    }

    #[test]
    fn g711_tones_decode_to_their_frequency() {
        for (codec, freq) in [(Codec::Pcmu, 440.0), (Codec::Pcma, 880.0)] {
            let t = ToneFrames::new(codec, freq);
            let mut pcm = Vec::new();
            for n in 0..FRAMES as u64 {
                match codec {
                    Codec::Pcmu => decode_ulaw(t.frame(n), &mut pcm),
                    _ => decode_alaw(t.frame(n), &mut pcm),
                }
            }
            assert!(tone_share(&pcm, 8000.0, freq) > 0.9, "{codec:?}");
            let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!((9000..=11000).contains(&peak), "{codec:?} peak {peak}");
        }
    }

    #[test]
    fn g722_tone_decodes_to_its_frequency() {
        let t = ToneFrames::new(Codec::G722, 440.0);
        let mut dec = G722Decoder::new();
        let mut pcm = Vec::new();
        for n in 0..FRAMES as u64 {
            dec.decode(t.frame(n), &mut pcm);
        }
        assert_eq!(pcm.len(), 16_000);
        // Skip the codec's start-up transient.
        assert!(tone_share(&pcm[1600..], 16000.0, 440.0) > 0.9);
    }

    #[test]
    fn frames_wrap_around() {
        let t = ToneFrames::new(Codec::Pcmu, 440.0);
        assert_eq!(t.frame(0), t.frame(FRAMES as u64));
        assert_eq!(t.frame(3).len(), FRAME_BYTES);
    }
}
