//! Which decoder a packet goes to: one per payload type, chosen by the packet itself.
//!
//! A sender may switch payload type at any packet (RFC 3550 §5.1; a B2BUA relays whatever
//! the call's legs negotiated), so a stream holds a decoder for every payload type it was
//! answered with, plus the RFC 3551 static types even when they were not offered: an SRC
//! that sends PCMA on a PCMU answer still sent audio, and recording it as silence would be
//! the worst possible outcome. Each decoder's output is converted to the stream's one file
//! rate. Static decoders are made when their first packet arrives; a type nothing maps is
//! reported as undecodable so that the caller counts it instead of writing silence quietly.

use super::codec::{Decoder, RateConverter, UnsupportedRatio};

/// RFC 3551 Table 4 static audio types the recorder decodes (2 is RFC 1890's G721).
const STATIC: [(u8, &str); 5] = [
    (0, "PCMU"),
    (2, "G721"),
    (8, "PCMA"),
    (9, "G722"),
    (18, "G729"),
];

/// Comfort noise: RFC 3389 (13), and 19, reserved by RFC 3551 for the older CN.
pub const COMFORT_NOISE: [u8; 2] = [13, 19];

/// Bound on mapped payload types (the 7-bit space; an offer lists a handful).
const MAX_ENTRIES: usize = 128;

/// One payload type's decoder.
#[derive(Debug)]
pub(crate) struct PayloadDecoder {
    pub(crate) payload_type: u8,
    pub(crate) decoder: Decoder,
    pub(crate) converter: RateConverter,
    /// RTP clock of the payload type.
    pub(crate) clock_rate: u32,
    /// Segment whose state the decoder holds; another segment's packet resets it.
    pub(crate) epoch: u32,
}

impl PayloadDecoder {
    fn new(payload_type: u8, decoder: Decoder, rate: u32) -> Result<Self, UnsupportedRatio> {
        Ok(PayloadDecoder {
            payload_type,
            converter: RateConverter::new(decoder.sample_rate(), rate)?,
            clock_rate: decoder.clock_rate().max(1),
            decoder,
            epoch: 0,
        })
    }

    /// Output samples (at the file rate) of `payload`.
    pub(crate) fn output_len(&self, payload: &[u8]) -> usize {
        self.converter.output_len(self.decoder.samples_for(payload))
    }
}

/// Decoders by payload type for one stream, all producing `rate` Hz.
#[derive(Debug)]
pub struct PayloadDecoders {
    rate: u32,
    entries: Vec<PayloadDecoder>,
    /// Payload types the negotiation mapped; a static default never overrides them.
    negotiated: Vec<u8>,
}

impl PayloadDecoders {
    /// Decoders producing `rate` Hz, with no negotiated type yet (static types only).
    pub fn new(rate: u32) -> Self {
        PayloadDecoders {
            rate: rate.max(1),
            entries: Vec::new(),
            negotiated: Vec::new(),
        }
    }

    /// The output rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Maps `payload_type` to `decoder`. The same type with the same codec keeps its state
    /// (a session refresh); another codec replaces it.
    pub fn insert(&mut self, payload_type: u8, decoder: Decoder) -> Result<(), UnsupportedRatio> {
        if !self.negotiated.contains(&payload_type) {
            self.negotiated.push(payload_type);
        }
        if let Some(e) = self.find_mut(payload_type) {
            if e.decoder.name() == decoder.name() {
                return Ok(());
            }
        }
        let entry = PayloadDecoder::new(payload_type, decoder, self.rate)?;
        self.entries.retain(|e| e.payload_type != payload_type);
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(entry);
        }
        Ok(())
    }

    /// Maps every `(payload type, encoding name)` of a negotiation. Types of an earlier
    /// negotiation that this one does not mention stay mapped, so packets still in flight
    /// decode; a name without a decoder is returned for the caller's warning.
    pub fn insert_all<'a>(
        &mut self,
        codecs: impl IntoIterator<Item = (u8, &'a str)>,
    ) -> Vec<String> {
        let mut refused = Vec::new();
        for (pt, name) in codecs {
            let inserted = Decoder::for_codec_at(name, self.rate)
                .map_err(|e| e.to_string())
                .and_then(|d| self.insert(pt, d).map_err(|e| e.to_string()));
            if let Err(e) = inserted {
                // The type means something else here: its static meaning must not apply.
                self.entries.retain(|e| e.payload_type != pt);
                if !self.negotiated.contains(&pt) {
                    self.negotiated.push(pt);
                }
                refused.push(format!("{pt} {name}: {e}"));
            }
        }
        refused
    }

    fn find_mut(&mut self, payload_type: u8) -> Option<&mut PayloadDecoder> {
        self.entries
            .iter_mut()
            .find(|e| e.payload_type == payload_type)
    }

    /// The decoder of `payload_type`, making a static type's on first use; `None` when the
    /// type is not decodable.
    pub(crate) fn get(&mut self, payload_type: u8) -> Option<&mut PayloadDecoder> {
        let known = self.entries.iter().any(|e| e.payload_type == payload_type);
        if !known && !self.negotiated.contains(&payload_type) {
            let (_, name) = STATIC.iter().find(|(pt, _)| *pt == payload_type)?;
            let decoder = Decoder::for_codec_at(name, self.rate).ok()?;
            let entry = PayloadDecoder::new(payload_type, decoder, self.rate).ok()?;
            self.entries.push(entry);
        }
        self.find_mut(payload_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_types_decode_unoffered_and_dynamic_ones_by_negotiation() {
        let mut d = PayloadDecoders::new(16000);
        assert!(d.insert_all([(0, "PCMU"), (96, "opus")]).is_empty());
        assert_eq!(d.get(8).map(|e| e.decoder.name()), Some("PCMA"));
        assert_eq!(d.get(9).map(|e| e.decoder.name()), Some("G722"));
        assert_eq!(d.get(18).map(|e| e.decoder.name()), Some("G729"));
        assert_eq!(d.get(2).map(|e| e.decoder.name()), Some("G726-32"));
        let opus = d.get(96).expect("negotiated");
        assert_eq!(
            (opus.clock_rate, opus.decoder.sample_rate()),
            (48000, 48000)
        );
        assert_eq!(
            opus.output_len(&[0x78, 0]),
            320,
            "20 ms at the 16 kHz file rate"
        );
        assert!(d.get(97).is_none(), "dynamic type nobody mapped");
        assert!(d.get(3).is_none(), "GSM");
        assert!(d.get(13).is_none(), "comfort noise is not audio");
        // PCMU at 8 kHz is doubled to the 16 kHz file rate.
        assert_eq!(d.get(0).map(|e| e.output_len(&[0; 160])), Some(320));
    }

    #[test]
    fn a_remapped_static_type_follows_the_rtpmap() {
        let mut d = PayloadDecoders::new(8000);
        assert!(d.insert_all([(8, "PCMU")]).is_empty());
        assert_eq!(d.get(8).map(|e| e.decoder.name()), Some("PCMU"));
        let refused = d.insert_all([(0, "L16")]);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(d.get(0).is_none(), "0 was mapped to something undecodable");
    }

    #[test]
    fn refresh_keeps_state_and_change_replaces() {
        let mut d = PayloadDecoders::new(8000);
        d.insert(97, Decoder::for_codec("G726-32").expect("g726"))
            .expect("same rate");
        d.get(97).expect("mapped").epoch = 5;
        d.insert(97, Decoder::for_codec("G726-32").expect("g726"))
            .expect("same rate");
        assert_eq!(d.get(97).map(|e| e.epoch), Some(5));
        d.insert(97, Decoder::for_codec("AAL2-G726-32").expect("g726"))
            .expect("same rate");
        assert_eq!(d.get(97).map(|e| e.epoch), Some(0));
    }
}
