//! G.729 / G.729A with Annex B, through the pure-Rust `g729-sys` decoder (a port of bcg729;
//! docs/ARCHITECTURE.md has the measurements that chose it).
//!
//! RFC 3551 §4.5.6: a payload is zero or more 10-byte frames (10 ms each) followed by at
//! most one 2-byte Annex B SID frame. A SID frame decodes to comfort noise for its 10 ms;
//! the untransmitted frames after it (DTX) are a gap on the timeline, which is silence.

/// Samples per 10 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 80;
/// Bytes of a voice frame.
pub const FRAME_BYTES: usize = 10;
/// Bytes of an Annex B SID frame.
pub const SID_BYTES: usize = 2;

/// A G.729 decoder keeping the codec's state across packets.
pub struct G729Decoder {
    inner: g729_sys::Decoder,
}

impl std::fmt::Debug for G729Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("G729Decoder")
    }
}

impl Default for G729Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G729Decoder {
    pub fn new() -> Self {
        G729Decoder {
            inner: g729_sys::Decoder::new(),
        }
    }

    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// 10 ms per voice frame, 10 ms per SID frame; a trailing fragment of another size is
    /// not a frame and decodes to nothing.
    pub fn samples_for(len: usize) -> usize {
        let frames = len / FRAME_BYTES + usize::from(len % FRAME_BYTES == SID_BYTES);
        frames * FRAME_SAMPLES
    }

    /// Decodes one packet's frames, appending 80 samples per frame to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let mut frames = payload.chunks_exact(FRAME_BYTES);
        for frame in frames.by_ref() {
            out.extend_from_slice(&self.inner.decode(frame, false, false, false));
        }
        let rest = frames.remainder();
        if rest.len() == SID_BYTES {
            out.extend_from_slice(&self.inner.decode(rest, false, true, false));
        }
    }

    /// Conceals `samples` of lost audio (G.729 §4.4 frame erasure), whole frames only.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        for _ in 0..samples / FRAME_SAMPLES {
            out.extend_from_slice(&self.inner.decode(&[], true, false, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts() {
        assert_eq!(G729Decoder::samples_for(20), 160);
        assert_eq!(G729Decoder::samples_for(22), 240);
        assert_eq!(G729Decoder::samples_for(2), 80);
        assert_eq!(G729Decoder::samples_for(7), 0);
        let mut d = G729Decoder::new();
        let mut out = Vec::new();
        d.decode(&[0u8; 22], &mut out);
        assert_eq!(out.len(), 240);
        d.conceal(160, &mut out);
        assert_eq!(out.len(), 400);
    }

    #[test]
    fn round_trip_through_the_crate_encoder_keeps_a_tone() {
        let mut enc = g729_sys::Encoder::new(false);
        let mut dec = G729Decoder::new();
        let mut out = Vec::new();
        for f in 0..50 {
            let frame: [i16; FRAME_SAMPLES] = std::array::from_fn(|i| {
                let t = (f * FRAME_SAMPLES + i) as f64 / 8000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * 500.0 * t).sin()) as i16
            });
            dec.decode(&enc.encode(&frame), &mut out);
        }
        let energy: f64 = out[2000..].iter().map(|&s| f64::from(s).powi(2)).sum();
        let rms = (energy / (out.len() - 2000) as f64).sqrt();
        assert!(rms > 2000.0, "rms {rms}");
    }
}
