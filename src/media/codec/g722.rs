//! ITU-T G.722, 64 kbit/s mode (mode 1): the decoder the recorder uses, to 16 kHz 16-bit
//! PCM, and an encoder for the load generator, which shares the predictor (`Band`) and
//! tables — the same state in both is what keeps encoder and decoder in step.
//!
//! Sub-band ADPCM: each byte holds a 6-bit lower-band and a 2-bit upper-band code; both bands
//! are reconstructed by backward-adaptive predictors and recombined by the receive QMF into
//! two output samples. The predictor and QMF state carry across packets, so one decoder
//! instance must see a stream's packets in order and be reset when the source changes.
//! Block names in the comments are those of G.722 §3 / §4.
//!
//! No allocation: output is appended to the caller's buffer.

/// Lower-band log-scale factor adaptation, indexed through `RL42`.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Inverse-log table of the scale factor (Table 17/G.722, ILB).
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Upper-band log-scale factor adaptation, indexed through `RH2`.
const WH: [i32; 3] = [0, -214, 798];
const RH2: [usize; 4] = [2, 1, 2, 1];
/// Upper-band 2-bit inverse quantizer.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Lower-band 4-bit inverse quantizer (used for predictor adaptation in every mode).
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Lower-band 6-bit inverse quantizer (64 kbit/s reconstruction).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Encoder: lower-band quantizer decision levels (QUANTL) and the 6-bit codes for negative
/// and positive differences; upper-band codes (QUANTH).
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
/// Receive and transmit QMF coefficients (Table 11/G.722), one half; the filter is symmetric.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

fn sat16(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// State of one sub-band's adaptive predictor.
#[derive(Debug, Clone, Default)]
struct Band {
    /// Predicted signal.
    s: i32,
    /// Zero-section prediction.
    sz: i32,
    /// Reconstructed signal, delayed by 1 and 2.
    r: [i32; 2],
    /// Pole coefficients a1, a2.
    a: [i32; 2],
    /// Partially reconstructed signal, delayed by 1 and 2.
    p: [i32; 2],
    /// Quantized difference signal, delayed by 1..=6.
    d: [i32; 6],
    /// Zero coefficients b1..=b6.
    b: [i32; 6],
    /// Log scale factor.
    nb: i32,
    /// Scale factor.
    det: i32,
}

impl Band {
    fn with_det(det: i32) -> Self {
        Band {
            det,
            ..Band::default()
        }
    }

    /// Block 4: reconstruction, pole/zero predictor adaptation and prediction.
    fn update(&mut self, d: i32) {
        // RECONS, PARREC
        let r0 = sat16(self.s + d);
        let p0 = sat16(self.sz + d);
        // Signs as 0 / -1, as the reference compares them.
        let (sg0, sg1, sg2) = (p0 >> 15, self.p[0] >> 15, self.p[1] >> 15);

        // UPPOL2
        let wd1 = sat16(self.a[0] << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 };
        wd3 += (self.a[1] * 32512) >> 15;
        let a2 = wd3.clamp(-12288, 12288);

        // UPPOL1
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[0] * 32640) >> 15;
        let limit = sat16(15360 - a2);
        let a1 = sat16(wd1 + wd2).clamp(-limit, limit);

        // UPZERO: each b_i moves toward the sign agreement of d and its delayed d_i.
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for (b, &di) in self.b.iter_mut().zip(&self.d) {
            let wd2 = if di >> 15 == sgd { step } else { -step };
            *b = sat16(wd2 + ((*b * 32640) >> 15));
        }

        // DELAYZ, DELAYL, DELAYA
        self.d.copy_within(..5, 1);
        self.d[0] = d;
        self.r = [r0, self.r[0]];
        self.p = [p0, self.p[0]];
        self.a = [a1, a2];

        // FILTEP
        let wd1 = (self.a[0] * sat16(self.r[0] + self.r[0])) >> 15;
        let wd2 = (self.a[1] * sat16(self.r[1] + self.r[1])) >> 15;
        let sp = sat16(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for (&b, &di) in self.b.iter().zip(&self.d) {
            sz += (b * sat16(di + di)) >> 15;
        }
        self.sz = sat16(sz);

        // PREDIC
        self.s = sat16(sp + self.sz);
    }

    /// Blocks 3L/3H: log-domain scale factor adaptation (LOGSCL) and conversion (SCALEL).
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

/// Stateful G.722 decoder producing 16 kHz samples, two per input byte.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    /// Receive QMF delay line.
    x: [i32; 24],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A decoder in the G.722 reset state.
    pub fn new() -> Self {
        // Reset values of the scale factors (G.722 §3.6: DETL = 32, DETH = 8).
        G722Decoder {
            low: Band::with_det(32),
            high: Band::with_det(8),
            x: [0; 24],
        }
    }

    /// Returns to the reset state (new source: the old predictor state is meaningless).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Decodes 64 kbit/s G.722 bytes, appending two 16 kHz samples per byte to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.reserve(payload.len() * 2);
        for &code in payload {
            let (a, b) = self.decode_byte(code);
            out.push(a);
            out.push(b);
        }
    }

    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        let ilow = usize::from(code & 0x3F);
        let ihigh = usize::from(code >> 6);

        // Lower band. 5L INVQBL + RECONS + 6L LIMIT: the 6-bit reconstruction.
        let dlow = (self.low.det * QM6[ilow]) >> 15;
        let rlow = (self.low.s + dlow).clamp(-16384, 16383);
        // 2L INVQAL: predictor adaptation uses the 4-bit (truncated) code in every mode.
        let ilow4 = ilow >> 2;
        let dlowt = (self.low.det * QM4[ilow4]) >> 15;
        self.low.adapt_scale(WL[RL42[ilow4]], 18432, 8);
        self.low.update(dlowt);

        // Upper band. 2H INVQAH, 5H RECONS, 6H LIMIT.
        let dhigh = (self.high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        self.high.adapt_scale(WH[RH2[ihigh]], 22528, 10);
        self.high.update(dhigh);

        // Receive QMF: shift in the sum and difference, filter into two output samples.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let mut xout1 = 0;
        let mut xout2 = 0;
        for i in 0..12 {
            xout2 += self.x[2 * i] * QMF[i];
            xout1 += self.x[2 * i + 1] * QMF[11 - i];
        }
        // sat16 keeps the value in i16 range, so the casts are lossless.
        (sat16(xout1 >> 11) as i16, sat16(xout2 >> 11) as i16)
    }
}

/// Stateful G.722 encoder: 16 kHz samples in, one byte per two samples out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    low: Band,
    high: Band,
    x: [i32; 24],
}

impl G722Encoder {
    /// An encoder in the G.722 reset state.
    pub fn new() -> Self {
        G722Encoder {
            low: Band::with_det(32),
            high: Band::with_det(8),
            x: [0; 24],
        }
    }

    /// 16 kHz samples in, one byte per two samples out.
    pub fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
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

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (LCG), so the reference hash is reproducible.
    fn lcg_bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    }

    fn fnv1a(samples: &[i16]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for s in samples {
            for b in s.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// 40 ms of a 1 kHz sine (amplitude 10000) encoded by an independent G.722 encoder.
    const SINE_1K: [u8; 320] = [
        160, 154, 47, 141, 35, 147, 160, 160, 32, 240, 202, 200, 206, 220, 237, 105, 236, 250, 210,
        206, 209, 223, 238, 235, 238, 252, 211, 143, 210, 223, 176, 236, 111, 253, 147, 208, 211,
        190, 241, 237, 240, 124, 213, 144, 212, 190, 241, 237, 241, 253, 214, 146, 214, 255, 242,
        111, 243, 191, 214, 148, 214, 253, 178, 239, 116, 252, 151, 212, 213, 191, 242, 111, 244,
        253, 216, 146, 216, 255, 242, 239, 244, 251, 214, 149, 215, 250, 179, 240, 242, 253, 215,
        149, 215, 251, 245, 239, 244, 251, 214, 148, 215, 187, 244, 239, 244, 251, 214, 149, 215,
        251, 181, 111, 180, 250, 215, 149, 215, 252, 243, 114, 243, 255, 153, 212, 150, 251, 244,
        238, 242, 252, 219, 149, 214, 253, 243, 241, 240, 250, 216, 147, 219, 255, 245, 111, 180,
        182, 214, 150, 216, 157, 114, 241, 240, 249, 216, 148, 214, 251, 246, 111, 242, 184, 221,
        148, 215, 185, 116, 237, 113, 184, 222, 212, 150, 122, 245, 237, 240, 246, 219, 151, 91,
        254, 246, 110, 240, 181, 154, 215, 219, 254, 118, 110, 176, 244, 219, 152, 214, 251, 246,
        109, 239, 187, 255, 215, 158, 127, 243, 236, 236, 244, 223, 155, 220, 223, 238, 111, 239,
        181, 249, 156, 219, 179, 116, 232, 237, 244, 245, 154, 249, 250, 239, 237, 236, 239, 220,
        186, 255, 247, 177, 108, 170, 251, 248, 188, 95, 184, 114, 237, 238, 249, 248, 219, 156,
        254, 243, 111, 242, 181, 255, 151, 126, 154, 111, 244, 238, 249, 221, 217, 215, 247, 189,
        237, 241, 250, 220, 212, 155, 250, 251, 238, 242, 249, 221, 148, 217, 188, 243, 243, 241,
        246, 217, 150, 220, 222, 177, 113, 176, 249, 217, 151, 219, 252, 245, 240, 239, 218, 253,
        148, 213, 249, 246, 239, 249, 245, 218, 148, 217, 252, 240, 113,
    ];

    #[test]
    fn decodes_a_sine_at_16k() {
        let mut dec = G722Decoder::new();
        let mut out = Vec::new();
        dec.decode(&SINE_1K, &mut out);
        assert_eq!(out.len(), 640);
        // After the predictors settle: 1 kHz at 16 kHz is 16 samples per period, so 20 ms
        // (320 samples) hold 40 sign changes; the peak is close to the encoded 10000.
        let tail = &out[320..];
        let crossings = tail.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((39..=41).contains(&crossings), "crossings {crossings}");
        let peak = tail.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((9000..=11000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn matches_reference_output() {
        // Hash of this decoder's output, cross-checked bit-exactly against an independent
        // implementation of the same ITU algorithm on random input when it was written.
        let data = lcg_bytes(4000, 7);
        let mut dec = G722Decoder::new();
        let mut out = Vec::new();
        dec.decode(&data, &mut out);
        assert_eq!(out.len(), 8000);
        assert_eq!(&out[..8], &[0, 0, 0, -1, -1, 0, 0, -2]);
        assert_eq!(fnv1a(&out), 0x9a5a_804a_2c17_5dbe);
    }

    #[test]
    fn state_carries_across_packets_and_reset_restores_it() {
        let data = lcg_bytes(1600, 3);
        let mut whole = Vec::new();
        G722Decoder::new().decode(&data, &mut whole);

        let mut dec = G722Decoder::new();
        let mut chunked = Vec::new();
        for packet in data.chunks(160) {
            dec.decode(packet, &mut chunked);
        }
        assert_eq!(whole, chunked);

        dec.reset();
        let mut again = Vec::new();
        dec.decode(&data, &mut again);
        assert_eq!(whole, again);
    }

    #[test]
    fn every_code_is_safe() {
        // Worst-case inputs (all extremes) must neither overflow nor panic.
        let mut dec = G722Decoder::new();
        let mut out = Vec::new();
        for b in 0..=255u8 {
            dec.decode(&[b; 400], &mut out);
        }
        assert_eq!(out.len(), 256 * 800);
    }
}
