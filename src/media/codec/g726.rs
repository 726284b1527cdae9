//! ITU-T G.726 32 kbit/s ADPCM decoder (the former G.721), 4-bit code words → 8 kHz PCM.
//!
//! The arithmetic follows the recommendation's fixed-point blocks (ADDA, ANTILOG, FLOATA/B,
//! FMULT, UPA1/UPA2/UPB, TRANS, adaptation speed control) with the integer widths the
//! recommendation gives, so it is bit-exact: the decoded samples equal those of the
//! independent spandsp decoder (tests/codecs_e2e.rs compares them).
//!
//! Two packings exist: RFC 3551 §4.5.4 (`G726-32`, and the legacy `G721`) puts the first
//! code word of each octet in the low nibble; ITU-T I.366.2 (`AAL2-G726-32`) in the high one.

/// Nibble order in an octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G726Packing {
    /// RFC 3551: first code word in the least significant bits.
    Rfc3551,
    /// ITU-T I.366.2 (AAL2): first code word in the most significant bits.
    Aal2,
}

/// Quantizer tables for 4-bit code words (G.726 Table 7 / 11 scaled as in the blocks).
const DQLN: [i16; 16] = [
    -2048, 4, 135, 213, 273, 323, 373, 425, 425, 373, 323, 273, 213, 135, 4, -2048,
];
const WI: [i16; 16] = [
    -12, 18, 41, 64, 112, 198, 355, 1122, 1122, 355, 198, 112, 64, 41, 18, -12,
];
const FI: [i16; 16] = [
    0, 0, 0, 0x200, 0x200, 0x200, 0x600, 0xE00, 0xE00, 0x600, 0x200, 0x200, 0x200, 0, 0, 0,
];

/// Decoder state (G.726 §4).
#[derive(Debug, Clone)]
pub struct G726Decoder {
    packing: G726Packing,
    /// Locked (slow) scale factor, 19 bits.
    yl: i32,
    /// Unlocked (fast) scale factor.
    yu: i16,
    dms: i16,
    dml: i16,
    /// Speed control.
    ap: i16,
    /// Pole and zero predictor coefficients.
    a: [i16; 2],
    b: [i16; 6],
    /// Signs of the partial reconstructed signal.
    pk: [i16; 2],
    /// Quantized differences and reconstructed signal in the 4.6 floating format.
    dq: [i16; 6],
    sr: [i16; 2],
    /// Tone detected.
    td: bool,
}

/// QUAN over the powers of two: how many of `1 << 0 .. 1 << 14` are ≤ `val`, i.e. its bit
/// length capped at 15 (0 for 0 and negatives).
fn quan(val: i32) -> i16 {
    if val <= 0 {
        return 0;
    }
    // Bit length of a positive i32 is at most 31.
    (32 - val.leading_zeros()).min(15) as i16
}

/// FMULT: a coefficient (two's complement) times a 4.6 floating value.
fn fmult(an: i16, srn: i16) -> i16 {
    let an = i32::from(an);
    let srn = i32::from(srn);
    let anmag = if an > 0 { an } else { (-an) & 0x1FFF };
    let anexp = i32::from(quan(anmag)) - 6;
    let anmant = if anmag == 0 {
        32
    } else if anexp >= 0 {
        anmag >> anexp
    } else {
        anmag << -anexp
    };
    let wanexp = anexp + ((srn >> 6) & 0xF) - 13;
    let wanmant = (anmant * (srn & 0x3F) + 0x30) >> 4;
    let retval = if wanexp >= 0 {
        (wanmant << wanexp) & 0x7FFF
    } else {
        wanmant >> -wanexp
    };
    // 15 bits plus sign: fits.
    (if (an ^ srn) < 0 { -retval } else { retval }) as i16
}

/// FLOATA/FLOATB: a 16-bit value to the 4.6 floating format with a sign bit at 0x400.
fn to_float(v: i32) -> i16 {
    if v == 0 {
        return 0x20;
    }
    let mag = v.unsigned_abs().min(0x7FFF) as i32;
    let exp = quan(mag);
    let f = (i32::from(exp) << 6) + ((mag << 6) >> exp);
    // Exponent ≤ 15 and a 6-bit mantissa: at most 0x3FF, minus 0x400 for negatives.
    (if v < 0 { f - 0x400 } else { f }) as i16
}

impl Default for G726Decoder {
    fn default() -> Self {
        Self::new(G726Packing::Rfc3551)
    }
}

impl G726Decoder {
    pub fn new(packing: G726Packing) -> Self {
        G726Decoder {
            packing,
            yl: 34816,
            yu: 544,
            dms: 0,
            dml: 0,
            ap: 0,
            a: [0; 2],
            b: [0; 6],
            pk: [0; 2],
            dq: [32; 6],
            sr: [32; 2],
            td: false,
        }
    }

    pub fn packing(&self) -> G726Packing {
        self.packing
    }

    /// Back to the initial state (G.726 §4.2, reset values), keeping the packing.
    pub fn reset(&mut self) {
        *self = Self::new(self.packing);
    }

    /// Decodes a payload: two samples per octet.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.reserve(payload.len() * 2);
        for &byte in payload {
            let (first, second) = match self.packing {
                G726Packing::Rfc3551 => (byte & 0x0F, byte >> 4),
                G726Packing::Aal2 => (byte >> 4, byte & 0x0F),
            };
            out.push(self.decode_word(first));
            out.push(self.decode_word(second));
        }
    }

    fn step_size(&self) -> i32 {
        if self.ap >= 256 {
            return i32::from(self.yu);
        }
        let mut y = self.yl >> 6;
        let dif = i32::from(self.yu) - y;
        let al = i32::from(self.ap) >> 2;
        if dif > 0 {
            y += (dif * al) >> 6;
        } else if dif < 0 {
            y += (dif * al + 0x3F) >> 6;
        }
        y
    }

    /// One 4-bit code word → one 16-bit sample.
    fn decode_word(&mut self, code: u8) -> i16 {
        let i = usize::from(code & 0x0F);
        let mut sezi = 0i32;
        for k in 0..6 {
            sezi += i32::from(fmult(self.b[k] >> 2, self.dq[k]));
        }
        let sez = sezi >> 1;
        let sei = sezi
            + i32::from(fmult(self.a[1] >> 2, self.sr[1]))
            + i32::from(fmult(self.a[0] >> 2, self.sr[0]));
        let se = sei >> 1;
        let y = self.step_size();

        // ADDA + ANTILOG: the signed quantized difference (sign-magnitude, 15-bit magnitude).
        let dql = i32::from(DQLN[i]) + (y >> 2);
        let negative = i & 0x08 != 0;
        let dq_mag = if dql < 0 {
            0
        } else {
            let dex = (dql >> 7) & 15;
            let dqt = 128 + (dql & 127);
            (dqt << 7) >> (14 - dex)
        };
        let dq = if negative { -dq_mag } else { dq_mag };
        let sr = se + dq;
        let dqsez = sr - se + sez;
        self.update(
            y,
            i32::from(WI[i]) << 5,
            i32::from(FI[i]),
            (dq, negative),
            sr,
            dqsez,
        );
        // sr has a 14-bit range (the clamps of the predictor keep it there); << 2 to 16 bits.
        (sr.clamp(-8192, 8191) << 2) as i16
    }

    /// `dq` is the signed difference with its sign kept apart, since a negative zero (a code
    /// word whose log magnitude underflows) still sets the sign of the stored difference.
    /// One function on purpose: it follows the ITU-T G.726 reference's `update` step by step.
    fn update(&mut self, y: i32, wi: i32, fi: i32, dq: (i32, bool), sr: i32, dqsez: i32) {
        let (dq, negative) = dq;
        let pk0: i16 = i16::from(dqsez < 0);
        let mag = dq.abs() & 0x7FFF;

        // TRANS: a transition from a tone (modem signal) resets the predictor.
        let ylint = self.yl >> 15;
        let ylfrac = (self.yl >> 10) & 0x1F;
        let thr1 = (32 + ylfrac) << ylint;
        let thr2 = if ylint > 9 { 31 << 10 } else { thr1 };
        let dqthr = (thr2 + (thr2 >> 1)) >> 1;
        let tr = self.td && mag > dqthr;

        // FUNCTW, FILTD, LIMB, FILTE: scale factor adaptation.
        let yu = (y + ((wi - y) >> 5)).clamp(544, 5120);
        self.yu = yu as i16;
        self.yl += yu + ((-self.yl) >> 6);

        let mut a2p: i32 = 0;
        if tr {
            self.a = [0; 2];
            self.b = [0; 6];
        } else {
            let pks1 = pk0 ^ self.pk[0];
            // UPA2
            let a1 = i32::from(self.a[0]);
            a2p = i32::from(self.a[1]) - (i32::from(self.a[1]) >> 7);
            if dqsez != 0 {
                let fa1 = if pks1 != 0 { a1 } else { -a1 };
                if fa1 < -8191 {
                    a2p -= 0x100;
                } else if fa1 > 8191 {
                    a2p += 0xFF;
                } else {
                    a2p += fa1 >> 5;
                }
                if pk0 ^ self.pk[1] != 0 {
                    a2p = if a2p <= -12160 {
                        -12288
                    } else if a2p >= 12416 {
                        12288
                    } else {
                        a2p - 0x80
                    };
                } else {
                    a2p = if a2p <= -12416 {
                        -12288
                    } else if a2p >= 12160 {
                        12288
                    } else {
                        a2p + 0x80
                    };
                }
            }
            self.a[1] = a2p as i16;
            // UPA1 + LIMD
            let mut a0 = a1 - (a1 >> 8);
            if dqsez != 0 {
                a0 += if pks1 == 0 { 192 } else { -192 };
            }
            let a1ul = 15360 - a2p;
            self.a[0] = a0.clamp(-a1ul, a1ul) as i16;
            // UPB: zero predictor, sign-sign adaptation.
            for k in 0..6 {
                let b = i32::from(self.b[k]);
                let mut nb = b - (b >> 8);
                if mag != 0 {
                    let same_sign = negative == (self.dq[k] < 0);
                    nb += if same_sign { 128 } else { -128 };
                }
                self.b[k] = nb as i16;
            }
        }

        self.dq.copy_within(0..5, 1);
        self.dq[0] = if mag == 0 {
            if negative { 0x20 - 0x400 } else { 0x20 }
        } else {
            to_float(dq)
        };
        self.sr[1] = self.sr[0];
        self.sr[0] = if sr <= -32768 {
            0x20 - 0x400
        } else {
            to_float(sr)
        };
        self.pk[1] = self.pk[0];
        self.pk[0] = pk0;

        // TONE
        self.td = !tr && a2p < -11776;

        // FILTA, FILTB, SUBTC: adaptation speed control.
        let dms = i32::from(self.dms);
        let dml = i32::from(self.dml);
        self.dms = (dms + ((fi - dms) >> 5)) as i16;
        self.dml = (dml + (((fi << 2) - dml) >> 7)) as i16;
        let ap = i32::from(self.ap);
        let speed_up = (ap + ((0x200 - ap) >> 4)) as i16;
        self.ap = if tr {
            256
        } else if y < 1536
            || self.td
            || ((i32::from(self.dms) << 2) - i32::from(self.dml)).abs()
                >= (i32::from(self.dml) >> 3)
        {
            speed_up
        } else {
            (ap + ((-ap) >> 4)) as i16
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_code_words_decode_quietly() {
        // Alternating ±smallest steps (0x0 / 0xF code words) are what an encoder emits for
        // digital silence; the output stays near zero.
        let mut d = G726Decoder::default();
        let mut out = Vec::new();
        d.decode(&[0xF0; 80], &mut out);
        assert_eq!(out.len(), 160);
        assert!(out.iter().all(|s| s.abs() < 64), "{:?}", &out[..16]);
    }

    #[test]
    fn packing_orders_differ_and_reset_restores() {
        let payload: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(37)).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        G726Decoder::new(G726Packing::Rfc3551).decode(&payload, &mut a);
        G726Decoder::new(G726Packing::Aal2).decode(&payload, &mut b);
        assert_ne!(a, b);
        let swapped: Vec<u8> = payload.iter().map(|x| x.rotate_left(4)).collect();
        let mut c = Vec::new();
        let mut d = G726Decoder::new(G726Packing::Aal2);
        d.decode(&swapped, &mut c);
        assert_eq!(a, c, "AAL2 is the RFC 3551 packing with nibbles swapped");
        d.reset();
        let mut again = Vec::new();
        d.decode(&swapped, &mut again);
        assert_eq!(c, again);
    }

    #[test]
    fn float_format() {
        assert_eq!(to_float(0), 0x20);
        assert_eq!(to_float(1), (1 << 6) + (1 << 6 >> 1));
        assert!(to_float(-5) < 0);
        assert_eq!(fmult(0, 0x20), 0);
    }
}
