//! Integer-ratio rate conversion into a stream's one file rate.
//!
//! A stream's file keeps one sample rate for its whole life; a packet of a codec at another
//! rate (PCMU at 8 kHz in a 16 kHz file because G.722 was answered too, Opus decoded at
//! 48 kHz) is converted to it. Telephony rates are integer multiples of each other (8, 16,
//! 48 kHz). Decimation is a windowed-sinc low-pass (Blackman, cut at 90 % of the output's
//! Nyquist frequency, 24 taps per unit of ratio) so that the band above the new Nyquist
//! frequency does not fold into speech; interpolation is linear (its images lie above the
//! band that was there to begin with, where the file's codec never had content).

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

/// Filter taps per unit of decimation ratio.
const TAPS_PER_RATIO: usize = 24;

/// Streaming converter between two rates with an integer ratio.
#[derive(Debug, Clone)]
pub struct RateConverter {
    mode: Mode,
    /// Decimation: low-pass taps (Q15) and a ring of the last `taps.len()` inputs.
    taps: Vec<i32>,
    history: Vec<i16>,
    head: usize,
    /// Inputs since the last output sample.
    phase: u32,
    /// Interpolation: the previous input sample.
    prev: i16,
}

/// Windowed-sinc low-pass for decimation by `k`, in Q15, summing to 1.
fn lowpass(k: u32) -> Vec<i32> {
    let n = TAPS_PER_RATIO * k as usize + 1;
    let cutoff = 0.45 / f64::from(k); // cycles per input sample
    let mid = (n - 1) as f64 / 2.0;
    let raw: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - mid;
            let sinc = if x == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x)
            };
            let w = 2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64;
            sinc * (0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos())
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter()
        .map(|h| (h / sum * 32768.0).round() as i32)
        .collect()
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
        let taps = match mode {
            Mode::Down(k) => lowpass(k),
            _ => Vec::new(),
        };
        Ok(RateConverter {
            mode,
            history: vec![0; 2 * taps.len()],
            taps,
            head: 0,
            phase: 0,
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
                let n = self.taps.len();
                for &s in input {
                    // Each sample is stored twice, `n` apart, so that the last `n` samples
                    // are always one contiguous slice (oldest first) for the dot product.
                    self.history[self.head] = s;
                    self.history[self.head + n] = s;
                    self.head = if self.head + 1 == n { 0 } else { self.head + 1 };
                    self.phase += 1;
                    if self.phase == k {
                        self.phase = 0;
                        let window = &self.history[self.head..self.head + n];
                        // |tap| < 2^15 and Σ|tap| < 2^16 (Q15, unit gain), so the sum of
                        // i16 × tap products stays inside i32.
                        let acc: i32 = window
                            .iter()
                            .zip(&self.taps)
                            .map(|(&x, &h)| i32::from(x) * h)
                            .sum();
                        let y = (acc + (1 << 14)) >> 15;
                        // Clamped: the filter's overshoot may leave the i16 range.
                        out.push(y.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
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
        self.history.fill(0);
        self.head = 0;
        self.phase = 0;
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
        down.process(&[1000; 90], &mut out);
        down.process(&[1000; 2], &mut out);
        assert_eq!(out.len(), 46);
        assert!((out[45] - 1000).abs() <= 2, "DC passes: {out:?}");
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

    fn tone(hz: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn decimation_passes_the_band_and_stops_what_would_fold() {
        for (from, to) in [(48000, 16000), (48000, 8000), (16000, 8000)] {
            let mut pass = RateConverter::new(from, to).expect("ratio");
            let mut out = Vec::new();
            for chunk in tone(1000.0, from, from as usize).chunks(from as usize / 50) {
                pass.process(chunk, &mut out);
            }
            let kept = rms(&out[out.len() / 2..]);
            assert!(
                (kept - 5657.0).abs() < 300.0,
                "{from}->{to}: 1 kHz kept at {kept:.0}"
            );
            // A tone above the output's Nyquist frequency would alias into the band.
            let mut stop = RateConverter::new(from, to).expect("ratio");
            out.clear();
            stop.process(&tone(f64::from(to) * 0.6, from, from as usize), &mut out);
            let folded = rms(&out[out.len() / 2..]);
            assert!(folded < 60.0, "{from}->{to}: {folded:.0} folded back");
        }
    }
}
