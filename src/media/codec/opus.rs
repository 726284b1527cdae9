//! Opus (RFC 6716, RTP per RFC 7587) through the pure-Rust `opus-pure` decoder, to mono (a
//! stereo stream is mixed down by the decoder). The recorder runs it at 48 kHz (see
//! [`super::Decoder::for_codec_at`]); other native rates are available.
//!
//! The RTP clock is always 48 kHz. A packet's duration is in its TOC byte; DTX leaves gaps
//! in the timestamps (silence on the timeline). A lost packet is concealed (PLC) or, when
//! the packet after it carries in-band FEC, reconstructed from that.

use opus_pure::OpusDecoder as Inner;

/// Longest Opus packet: 120 ms.
const MAX_PACKET_MS: usize = 120;

/// An Opus decoder at a fixed output rate.
pub struct OpusDecoder {
    inner: Inner,
    rate: u32,
    /// Decode scratch of the longest packet, allocated once.
    pcm: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpusDecoder({} Hz)", self.rate)
    }
}

/// Output rates the decoder produces natively.
pub const NATIVE_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

impl OpusDecoder {
    /// A decoder producing `rate` Hz mono; a rate Opus cannot produce natively gets 48 kHz.
    pub fn new(rate: u32) -> Self {
        let rate = if NATIVE_RATES.contains(&rate) {
            rate
        } else {
            48000
        };
        // Both arguments are among the values `new` accepts.
        let inner = Inner::new(rate as i32, 1).expect("native rate, mono");
        OpusDecoder {
            inner,
            rate,
            pcm: vec![0; rate as usize * MAX_PACKET_MS / 1000],
        }
    }

    /// The output rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn reset(&mut self) {
        let _ = self.inner.reset_state();
    }

    /// Samples `payload` decodes to (0 for a packet whose TOC is malformed).
    pub fn samples_for(&self, payload: &[u8]) -> usize {
        opus_pure::packet::samples(payload, self.rate as i32).map_or(0, |n| n.min(self.pcm.len()))
    }

    /// Decodes one packet, appending to `out`; a corrupt packet is concealed instead.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let n = self.samples_for(payload);
        if n == 0 {
            return;
        }
        match self.inner.decode_s16(payload, n, &mut self.pcm[..n]) {
            Ok(got) => out.extend_from_slice(&self.pcm[..got.min(n)]),
            Err(_) => self.conceal(n, out),
        }
    }

    /// Packet-loss concealment for `samples` (rounded down to 2.5 ms steps, at most 120 ms).
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let step = self.rate as usize / 400;
        let n = (samples.min(self.pcm.len()) / step) * step;
        if n == 0 {
            return;
        }
        match self.inner.decode_s16(&[], n, &mut self.pcm[..n]) {
            Ok(got) => out.extend_from_slice(&self.pcm[..got.min(n)]),
            Err(_) => out.resize(out.len() + n, 0),
        }
    }

    /// Reconstructs the `samples` lost just before `next` from `next`'s in-band FEC (or
    /// conceals them when it carries none).
    pub fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) {
        let step = self.rate as usize / 400;
        let n = (samples.min(self.pcm.len()) / step) * step;
        if n == 0 {
            return;
        }
        match self.inner.decode_fec_s16(next, n, &mut self.pcm[..n]) {
            Ok(got) => out.extend_from_slice(&self.pcm[..got.min(n)]),
            Err(_) => self.conceal(n, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_packets(rate: i32, channels: usize, count: usize) -> Vec<Vec<u8>> {
        use opus_pure::{Application, OpusEncoder};
        let mut enc = OpusEncoder::new(rate, channels, Application::Voip).expect("encoder");
        let frame = rate as usize / 50;
        (0..count)
            .map(|p| {
                let pcm: Vec<i16> = (0..frame * channels)
                    .map(|i| {
                        let t = (p * frame + i / channels) as f64 / f64::from(rate);
                        (8000.0 * (2.0 * std::f64::consts::PI * 700.0 * t).sin()) as i16
                    })
                    .collect();
                let mut out = vec![0u8; 1500];
                let n = enc.encode_s16(&pcm, frame, &mut out).expect("encode");
                out.truncate(n);
                out
            })
            .collect()
    }

    #[test]
    fn decodes_to_the_requested_rate_mono_from_stereo() {
        for rate in [8000, 16000, 48000] {
            let mut d = OpusDecoder::new(rate);
            let mut out = Vec::new();
            for p in tone_packets(48000, 2, 25) {
                assert_eq!(d.samples_for(&p), rate as usize / 50);
                d.decode(&p, &mut out);
            }
            assert_eq!(out.len(), rate as usize / 2);
            let tail = &out[out.len() / 2..];
            let rms = (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64)
                .sqrt();
            assert!(rms > 2000.0, "{rate}: rms {rms}");
        }
        assert_eq!(OpusDecoder::new(44100).rate(), 48000);
    }

    #[test]
    fn loss_is_concealed_and_garbage_is_harmless() {
        let mut d = OpusDecoder::new(16000);
        let mut out = Vec::new();
        let packets = tone_packets(48000, 1, 5);
        d.decode(&packets[0], &mut out);
        d.conceal(320, &mut out);
        d.recover(&packets[2], 320, &mut out);
        assert_eq!(out.len(), 960);
        d.decode(&[], &mut out);
        d.decode(&[0xFF, 0xFF, 0xFF], &mut out);
        d.reset();
    }
}
