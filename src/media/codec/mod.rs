//! Audio decoders to 16-bit PCM, chosen by the codec name negotiated in SDP.
//!
//! [`Decoder`] is an enum rather than a trait object so that the per-packet call is a direct
//! match. Every decoder appends to the caller's buffer (no allocation per packet once the
//! buffer has grown), keeps whatever state its codec needs across packets, and returns to
//! its initial state on [`Decoder::reset`] (a new source: SSRC change, resume).

pub mod g711;
pub mod g722;
pub mod g726;
pub mod g729;
pub mod opus;
mod resample;

pub use g722::G722Decoder;
pub use g726::{G726Decoder, G726Packing};
pub use g729::G729Decoder;
pub use opus::OpusDecoder;
pub use resample::{RateConverter, UnsupportedRatio};

/// The codec name is not one the recorder can decode; the caller records silence and a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no decoder for codec {0:?}")]
pub struct UnsupportedCodec(pub String);

/// A stream's decoder for one payload type.
#[derive(Debug)]
pub enum Decoder {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// G.722 64 kbit/s, 16 kHz output on an 8 kHz RTP clock.
    G722(Box<G722Decoder>),
    /// G.729 / G.729A with Annex B, 8 kHz.
    G729(Box<G729Decoder>),
    /// G.726 32 kbit/s; the packing tells `G726-32`/`G721` from `AAL2-G726-32`.
    G726(Box<G726Decoder>),
    /// Opus on its 48 kHz RTP clock, decoded to the output rate it was made for.
    Opus(Box<OpusDecoder>),
}

impl Decoder {
    /// The decoder for an SDP encoding name (case-insensitive).
    pub fn for_codec(name: &str) -> Result<Decoder, UnsupportedCodec> {
        Self::for_codec_at(name, 48000)
    }

    /// The decoder for an SDP encoding name, for a file at `output_rate`. Opus decodes at
    /// 48 kHz whatever the file rate: there its output equals libopus' sample for sample,
    /// while the crate's own 8/16 kHz output dips for ~40 ms at a SILK→CELT mode switch
    /// (measured in tests/codecs_e2e.rs); the stream's converter takes it to the file rate.
    pub fn for_codec_at(name: &str, _output_rate: u32) -> Result<Decoder, UnsupportedCodec> {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        Ok(if is("PCMU") {
            Decoder::Pcmu
        } else if is("PCMA") {
            Decoder::Pcma
        } else if is("G722") {
            Decoder::G722(Box::default())
        } else if is("G729") || is("G729A") || is("G729B") {
            Decoder::G729(Box::default())
        } else if is("G726-32") || is("G721") {
            Decoder::G726(Box::new(G726Decoder::new(G726Packing::Rfc3551)))
        } else if is("AAL2-G726-32") {
            Decoder::G726(Box::new(G726Decoder::new(G726Packing::Aal2)))
        } else if is("opus") {
            Decoder::Opus(Box::new(OpusDecoder::new(48000)))
        } else {
            return Err(UnsupportedCodec(name.to_owned()));
        })
    }

    /// The canonical SDP encoding name.
    pub fn name(&self) -> &'static str {
        match self {
            Decoder::Pcmu => "PCMU",
            Decoder::Pcma => "PCMA",
            Decoder::G722(_) => "G722",
            Decoder::G729(_) => "G729",
            Decoder::G726(d) if d.packing() == G726Packing::Aal2 => "AAL2-G726-32",
            Decoder::G726(_) => "G726-32",
            Decoder::Opus(_) => "opus",
        }
    }

    /// The RTP timestamp clock (RFC 3551 §4.5: 8000 Hz, G.722 included; RFC 7587: 48 kHz).
    pub fn clock_rate(&self) -> u32 {
        match self {
            Decoder::Opus(_) => 48000,
            _ => 8000,
        }
    }

    /// The rate of the decoded PCM.
    pub fn sample_rate(&self) -> u32 {
        match self {
            Decoder::G722(_) => 16000,
            Decoder::Opus(d) => d.rate(),
            _ => 8000,
        }
    }

    /// How many samples `payload` decodes to.
    pub fn samples_for(&self, payload: &[u8]) -> usize {
        let len = payload.len();
        match self {
            Decoder::Pcmu | Decoder::Pcma => len,
            Decoder::G722(_) | Decoder::G726(_) => len * 2,
            Decoder::G729(_) => G729Decoder::samples_for(len),
            Decoder::Opus(d) => d.samples_for(payload),
        }
    }

    /// Decodes one packet's payload, appending samples to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Decoder::Pcmu => g711::decode_ulaw(payload, out),
            Decoder::Pcma => g711::decode_alaw(payload, out),
            Decoder::G722(d) => d.decode(payload, out),
            Decoder::G729(d) => d.decode(payload, out),
            Decoder::G726(d) => d.decode(payload, out),
            Decoder::Opus(d) => d.decode(payload, out),
        }
    }

    /// Whether [`Decoder::conceal`] does better than silence for lost packets.
    pub fn conceals_loss(&self) -> bool {
        matches!(self, Decoder::G729(_) | Decoder::Opus(_))
    }

    /// Fills `samples` of lost audio: concealment where the codec has it (G.729 frame
    /// erasure, Opus PLC, or Opus in-band FEC from `next`, the packet after the loss).
    /// Appends at most `samples`; what is missing the caller leaves silent.
    pub fn conceal(&mut self, samples: usize, next: Option<&[u8]>, out: &mut Vec<i16>) {
        match (self, next) {
            (Decoder::Opus(d), Some(next)) => d.recover(next, samples, out),
            (Decoder::Opus(d), None) => d.conceal(samples, out),
            (Decoder::G729(d), _) => d.conceal(samples, out),
            _ => {}
        }
    }

    /// Forgets state carried from earlier packets.
    pub fn reset(&mut self) {
        match self {
            Decoder::Pcmu | Decoder::Pcma => {}
            Decoder::G722(d) => d.reset(),
            Decoder::G729(d) => d.reset(),
            Decoder::G726(d) => d.reset(),
            Decoder::Opus(d) => d.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_by_name() {
        for (name, rate) in [("PCMU", 8000), ("pcma", 8000), ("G722", 16000)] {
            let d = Decoder::for_codec(name).expect("supported");
            assert_eq!(d.sample_rate(), rate);
            assert_eq!(d.clock_rate(), 8000);
            assert!(d.name().eq_ignore_ascii_case(name));
        }
        for (name, clock) in [
            ("opus", 48000),
            ("G729", 8000),
            ("g726-32", 8000),
            ("G721", 8000),
        ] {
            let d = Decoder::for_codec(name).expect("supported");
            assert_eq!(d.clock_rate(), clock);
            assert!(d.name().eq_ignore_ascii_case(name) || name == "G721");
        }
        assert_eq!(
            Decoder::for_codec_at("opus", 16000)
                .expect("opus")
                .sample_rate(),
            48000
        );
        for name in ["GSM", "telephone-event", ""] {
            assert_eq!(
                Decoder::for_codec(name).unwrap_err(),
                UnsupportedCodec(name.to_owned())
            );
        }
    }

    #[test]
    fn sample_counts() {
        let mut out = Vec::new();
        let mut pcmu = Decoder::for_codec("PCMU").expect("supported");
        pcmu.decode(&[0xFF; 160], &mut out);
        assert_eq!(out.len(), pcmu.samples_for(&[0xFF; 160]));
        out.clear();
        let mut g722 = Decoder::for_codec("G722").expect("supported");
        g722.decode(&[0x55; 160], &mut out);
        assert_eq!(out.len(), 320);
        assert_eq!(g722.samples_for(&[0x55; 160]), 320);
        g722.reset();
    }
}
