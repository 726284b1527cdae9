//! Integer-ratio rate conversion, for a stream whose codec is re-negotiated to another rate.
//!
//! A stream's file keeps one sample rate for its whole life; when a re-INVITE moves it from,
//! say, PCMU (8 kHz) to G.722 (16 kHz) the new decoder's output is converted to the file's
//! rate. Telephony rates are integer multiples of each other (8, 16, 48 kHz), so decimation
//! averages `k` samples (a box filter, enough to keep the upper band from folding audibly
//! into speech) and interpolation is linear.

/// The two rates are not integer multiples of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert {from} Hz to {to} Hz")]
pub struct UnsupportedRatio {
    /// Decoder rate.
    pub from: u32,
    /// Output rate.
    pub to: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Same,
    Down(u32),
    Up(u32),
}

/// Streaming converter between two rates with an integer ratio.
#[derive(Debug, Clone)]
pub struct RateConverter {
    mode: Mode,
    /// Decimation: running sum and count of the current output sample's inputs.
    acc: i32,
    acc_n: u32,
    /// Interpolation: the previous input sample.
    prev: i16,
}

impl RateConverter {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, UnsupportedRatio> {
        let err = UnsupportedRatio { from, to };
        let mode = if from == 0 || to == 0 {
            return Err(err);
        } else if from == to {
            Mode::Same
        } else if from % to == 0 {
            Mode::Down(from / to)
        } else if to % from == 0 {
            Mode::Up(to / from)
        } else {
            return Err(err);
        };
        Ok(RateConverter {
            mode,
            acc: 0,
            acc_n: 0,
            prev: 0,
        })
    }

    /// Whether samples pass through unchanged.
    pub fn is_identity(&self) -> bool {
        self.mode == Mode::Same
    }

    /// Output samples `n` input samples become (ignoring the carry of a partial block).
    pub fn output_len(&self, n: usize) -> usize {
        match self.mode {
            Mode::Same => n,
            Mode::Down(k) => n / k as usize,
            Mode::Up(k) => n * k as usize,
        }
    }

    /// Converts `input`, appending to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self.mode {
            Mode::Same => out.extend_from_slice(input),
            Mode::Down(k) => {
                for &s in input {
                    self.acc += i32::from(s);
                    self.acc_n += 1;
                    if self.acc_n == k {
                        // The mean of i16 values is an i16.
                        out.push((self.acc / k as i32) as i16);
                        self.acc = 0;
                        self.acc_n = 0;
                    }
                }
            }
            Mode::Up(k) => {
                for &s in input {
                    let (a, b) = (i32::from(self.prev), i32::from(s));
                    for j in 1..=k as i32 {
                        // Between two i16 values, so the result fits.
                        out.push((a + (b - a) * j / k as i32) as i16);
                    }
                    self.prev = s;
                }
            }
        }
    }

    /// Forgets carried state (a new source).
    pub fn reset(&mut self) {
        self.acc = 0;
        self.acc_n = 0;
        self.prev = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert!(RateConverter::new(8000, 8000).expect("same").is_identity());
        assert!(RateConverter::new(16000, 8000).is_ok());
        assert!(RateConverter::new(8000, 48000).is_ok());
        assert_eq!(
            RateConverter::new(44100, 8000).unwrap_err(),
            UnsupportedRatio {
                from: 44100,
                to: 8000
            }
        );
        assert!(RateConverter::new(0, 8000).is_err());
    }

    #[test]
    fn down_and_up() {
        let mut down = RateConverter::new(16000, 8000).expect("integer ratio");
        let mut out = Vec::new();
        down.process(&[10, 20, 30], &mut out);
        down.process(&[40], &mut out);
        assert_eq!(out, vec![15, 35]);
        assert_eq!(down.output_len(320), 160);

        let mut up = RateConverter::new(8000, 16000).expect("integer ratio");
        out.clear();
        up.process(&[100, 200], &mut out);
        assert_eq!(out, vec![50, 100, 150, 200]);
        assert_eq!(up.output_len(160), 320);
        up.reset();
        out.clear();
        up.process(&[i16::MIN, i16::MAX], &mut out);
        assert_eq!(out.len(), 4);
    }
}
