//! Audio decoders to 16-bit PCM, chosen by the codec name negotiated in SDP.
//!
//! [`Decoder`] is an enum rather than a trait object so that a stream owns its decoder without
//! a heap allocation and the per-packet call is a direct match. Every decoder appends to the
//! caller's buffer, keeps whatever state its codec needs across packets, and returns to its
//! initial state on [`Decoder::reset`] (a new source: SSRC change, resume).

pub mod g711;
pub mod g722;
mod resample;

pub use g722::G722Decoder;
pub use resample::{RateConverter, UnsupportedRatio};

/// The codec name is not one the recorder can decode; the caller records silence and a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no decoder for codec {0:?}")]
pub struct UnsupportedCodec(pub String);

/// A stream's decoder.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// G.722 64 kbit/s, 16 kHz output on an 8 kHz RTP clock.
    G722(Box<G722Decoder>),
}

impl Decoder {
    /// The decoder for an SDP encoding name (`PCMU`, `PCMA`, `G722`; case-insensitive).
    pub fn for_codec(name: &str) -> Result<Decoder, UnsupportedCodec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Ok(Decoder::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Ok(Decoder::Pcma)
        } else if name.eq_ignore_ascii_case("G722") {
            Ok(Decoder::G722(Box::default()))
        } else {
            Err(UnsupportedCodec(name.to_owned()))
        }
    }

    /// The SDP encoding name.
    pub fn name(&self) -> &'static str {
        match self {
            Decoder::Pcmu => "PCMU",
            Decoder::Pcma => "PCMA",
            Decoder::G722(_) => "G722",
        }
    }

    /// The RTP timestamp clock (RFC 3551 §4.5: 8000 Hz for all three, G.722 included).
    pub fn clock_rate(&self) -> u32 {
        8000
    }

    /// The rate of the decoded PCM.
    pub fn sample_rate(&self) -> u32 {
        match self {
            Decoder::Pcmu | Decoder::Pcma => 8000,
            Decoder::G722(_) => 16000,
        }
    }

    /// How many samples a payload of `len` bytes decodes to.
    pub fn samples_for(&self, len: usize) -> usize {
        match self {
            Decoder::Pcmu | Decoder::Pcma => len,
            Decoder::G722(_) => len * 2,
        }
    }

    /// Decodes one packet's payload, appending samples to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Decoder::Pcmu => g711::decode_ulaw(payload, out),
            Decoder::Pcma => g711::decode_alaw(payload, out),
            Decoder::G722(d) => d.decode(payload, out),
        }
    }

    /// Forgets state carried from earlier packets.
    pub fn reset(&mut self) {
        match self {
            Decoder::Pcmu | Decoder::Pcma => {}
            Decoder::G722(d) => d.reset(),
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
        for name in ["opus", "G729", "telephone-event", ""] {
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
        assert_eq!(out.len(), pcmu.samples_for(160));
        out.clear();
        let mut g722 = Decoder::for_codec("G722").expect("supported");
        g722.decode(&[0x55; 160], &mut out);
        assert_eq!(out.len(), 320);
        assert_eq!(g722.samples_for(160), 320);
        g722.reset();
    }
}
