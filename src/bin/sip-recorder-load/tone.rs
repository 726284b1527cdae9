//! Precomputed encoded tones: the RTP pacer copies these bytes, so sending costs no
//! encoding. One second of tone holds a whole number of cycles of both 440 and 880 Hz, so
//! 50 frames of 20 ms loop without a click.

use crate::cli::Codec;

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

// ---- G.722 encoder, 64 kbit/s (ITU-T G.722 §3; block names as in the recommendation) ----

const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
/// QUANTL decision levels.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [usize; 4] = [2, 1, 2, 1];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

fn sat16(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// One sub-band's adaptive predictor; identical in encoder and decoder, which is what keeps
/// them in step.
#[derive(Debug, Clone, Default)]
struct Band {
    s: i32,
    sz: i32,
    r: [i32; 2],
    a: [i32; 2],
    p: [i32; 2],
    d: [i32; 6],
    b: [i32; 6],
    nb: i32,
    det: i32,
}

impl Band {
    /// Block 4: reconstruction, predictor adaptation and prediction.
    fn update(&mut self, d: i32) {
        let r0 = sat16(self.s + d);
        let p0 = sat16(self.sz + d);
        let (sg0, sg1, sg2) = (p0 >> 15, self.p[0] >> 15, self.p[1] >> 15);

        let wd1 = sat16(self.a[0] << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 };
        wd3 += (self.a[1] * 32512) >> 15;
        let a2 = wd3.clamp(-12288, 12288);

        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[0] * 32640) >> 15;
        let limit = sat16(15360 - a2);
        let a1 = sat16(wd1 + wd2).clamp(-limit, limit);

        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for (b, &di) in self.b.iter_mut().zip(&self.d) {
            let wd2 = if di >> 15 == sgd { step } else { -step };
            *b = sat16(wd2 + ((*b * 32640) >> 15));
        }

        self.d.copy_within(..5, 1);
        self.d[0] = d;
        self.r = [r0, self.r[0]];
        self.p = [p0, self.p[0]];
        self.a = [a1, a2];

        let wd1 = (self.a[0] * sat16(self.r[0] + self.r[0])) >> 15;
        let wd2 = (self.a[1] * sat16(self.r[1] + self.r[1])) >> 15;
        let sp = sat16(wd1 + wd2);
        let mut sz = 0;
        for (&b, &di) in self.b.iter().zip(&self.d) {
            sz += (b * sat16(di + di)) >> 15;
        }
        self.sz = sat16(sz);
        self.s = sat16(sp + self.sz);
    }

    /// Blocks 3L/3H: LOGSCL and SCALEL.
    fn adapt_scale(&mut self, weight: i32, nb_max: i32, shift_base: i32) {
        let nb = ((self.nb * 127) >> 7) + weight;
        self.nb = nb.clamp(0, nb_max);
        let idx = ((self.nb >> 6) & 31) as usize;
        let shift = shift_base - (self.nb >> 11);
        let det = if shift < 0 {
            ILB[idx] << -shift
        } else {
            ILB[idx] >> shift
        };
        self.det = det << 2;
    }
}

struct G722Encoder {
    low: Band,
    high: Band,
    x: [i32; 24],
}

impl G722Encoder {
    fn new() -> Self {
        G722Encoder {
            low: Band {
                det: 32,
                ..Band::default()
            },
            high: Band {
                det: 8,
                ..Band::default()
            },
            x: [0; 24],
        }
    }

    /// 16 kHz samples in, one byte per two samples out.
    fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        pcm.chunks_exact(2)
            .map(|pair| self.encode_pair(i32::from(pair[0]), i32::from(pair[1])))
            .collect()
    }

    fn encode_pair(&mut self, s0: i32, s1: i32) -> u8 {
        // Transmit QMF.
        self.x.copy_within(2.., 0);
        self.x[22] = s0;
        self.x[23] = s1;
        let mut sumodd = 0;
        let mut sumeven = 0;
        for i in 0..12 {
            sumodd += self.x[2 * i] * QMF[i];
            sumeven += self.x[2 * i + 1] * QMF[11 - i];
        }
        let xlow = (sumeven + sumodd) >> 14;
        let xhigh = (sumeven - sumodd) >> 14;

        // Lower band: SUBTRA, QUANTL, INVQAL, LOGSCL/SCALEL, block 4.
        let el = sat16(xlow - self.low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && wd >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        let ril = (ilow >> 2) as usize;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril]], 18432, 8);
        self.low.update(dlow);

        // Upper band.
        let eh = sat16(xhigh - self.high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * self.high.det) >> 12 {
            2
        } else {
            1
        };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        self.high.adapt_scale(WH[RH2[ihigh as usize]], 22528, 10);
        self.high.update(dhigh);

        ((ihigh << 6) | ilow) as u8
    }
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
