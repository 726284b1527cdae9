//! Which offered payload formats the recorder can store: the one table of storable codecs.
//!
//! [`STORABLE`] lists every encoding the media path decodes. The answerer accepts each
//! offered payload type that maps onto it (offer order kept), and an offer the recorder
//! makes itself lists the same entries ([`offer_codecs`]), so what is answered, offered and
//! decoded cannot drift apart.

use super::answer::Codec;

/// One `a=rtpmap` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtpMapEntry {
    pub(crate) payload_type: u8,
    pub(crate) encoding: String,
    pub(crate) clock_rate: u32,
    /// `None` when the channel field is not a number.
    pub(crate) channels: Option<u8>,
}

/// `96 opus/48000/2` → entry; `None` for a line that is not an rtpmap.
pub(crate) fn parse_rtpmap(value: &str) -> Option<RtpMapEntry> {
    let mut f = value.split_ascii_whitespace();
    let payload_type = f.next()?.parse().ok()?;
    let mut enc = f.next()?.split('/');
    let encoding = enc.next()?.to_owned();
    let clock_rate = enc.next()?.parse().ok()?;
    let channels = enc.next().map_or(Some(1), |c| c.parse().ok());
    Some(RtpMapEntry {
        payload_type,
        encoding,
        clock_rate,
        channels,
    })
}

/// An encoding the recorder decodes and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorableCodec {
    /// Canonical SDP encoding name, as answered.
    pub name: &'static str,
    /// RFC 3551 static payload type, if it has one.
    pub static_pt: Option<u8>,
    /// RTP clock rate as written in the rtpmap.
    pub clock_rate: u32,
    /// Channel count as written in the rtpmap (opus is always `/2`, RFC 7587 §7).
    pub channels: u8,
    /// Rate of the decoded audio at its widest.
    pub audio_rate: u32,
    /// `a=fmtp` value the recorder answers/offers with, if any.
    pub fmtp: Option<&'static str>,
}

const fn entry(
    name: &'static str,
    static_pt: Option<u8>,
    clock_rate: u32,
    channels: u8,
    audio_rate: u32,
    fmtp: Option<&'static str>,
) -> StorableCodec {
    StorableCodec {
        name,
        static_pt,
        clock_rate,
        channels,
        audio_rate,
        fmtp,
    }
}

/// Every storable encoding, in the recorder's order of preference for an offer it makes.
pub const STORABLE: &[StorableCodec] = &[
    // RFC 7587: asking for in-band FEC lets the decoder repair a single lost packet.
    entry("opus", None, 48000, 2, 48000, Some("useinbandfec=1")),
    // RFC 3551 §4.5.2: G.722's RTP clock is 8000 Hz although it samples at 16 kHz.
    entry("G722", Some(9), 8000, 1, 16000, None),
    entry("PCMU", Some(0), 8000, 1, 8000, None),
    entry("PCMA", Some(8), 8000, 1, 8000, None),
    entry("G729", Some(18), 8000, 1, 8000, None),
    entry("G726-32", None, 8000, 1, 8000, None),
    // ITU-T I.366.2 bit order (first code word in the high nibble), RFC 3551 §4.5.4.
    entry("AAL2-G726-32", None, 8000, 1, 8000, None),
    // Payload type 2 of RFC 1890, withdrawn by RFC 3551 but still sent by older SRCs.
    entry("G721", Some(2), 8000, 1, 8000, None),
];

/// Names of [`STORABLE`], for messages.
pub fn storable_names() -> String {
    STORABLE
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table entry for an encoding name (case-insensitive, RFC 4855 §3).
pub fn storable_by_name(name: &str) -> Option<&'static StorableCodec> {
    STORABLE.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The table entry of an RFC 3551 static payload type.
pub fn storable_by_static_pt(pt: u8) -> Option<&'static StorableCodec> {
    STORABLE.iter().find(|c| c.static_pt == Some(pt))
}

/// The codecs an offer made by the recorder lists: static payload types where they exist,
/// dynamic ones from 96 upwards (never 101, which offers use for `telephone-event`).
pub fn offer_codecs() -> Vec<Codec> {
    let mut dynamic = (96u8..).filter(|pt| *pt != 101);
    STORABLE
        .iter()
        .filter_map(|c| {
            let payload_type = c.static_pt.or_else(|| dynamic.next())?;
            Some(Codec {
                name: c.name.to_owned(),
                payload_type,
                clock_rate: c.clock_rate,
                channels: c.channels,
            })
        })
        .collect()
}

/// The canonical name, RTP clock and channels of a storable encoding, given an rtpmap's values.
fn storable(encoding: &str, clock_rate: u32, channels: u8) -> Option<(&'static str, u32, u8)> {
    let c = storable_by_name(encoding)?;
    match (c.name, clock_rate, channels) {
        // RFC 7587: opus is always written as opus/48000/2, whatever is actually sent.
        ("opus", 48000, 1 | 2) => Some((c.name, 48000, 2)),
        // Some endpoints write G722/16000; the RTP clock is still 8000 (RFC 3551 §4.5.2).
        ("G722", 8000 | 16000, 1) => Some((c.name, 8000, 1)),
        (_, rate, 1) if rate == c.clock_rate && c.name != "opus" && c.name != "G722" => {
            Some((c.name, rate, 1))
        }
        _ => None,
    }
}

fn rtpmap_for(pt: u8, rtpmaps: &[RtpMapEntry]) -> Option<&RtpMapEntry> {
    rtpmaps.iter().find(|r| r.payload_type == pt)
}

/// What payload type `pt` of an m= line means, when it is storable.
fn storable_pt(pt: u8, rtpmaps: &[RtpMapEntry]) -> Option<Codec> {
    let (name, clock_rate, channels) = match rtpmap_for(pt, rtpmaps) {
        Some(r) => storable(&r.encoding, r.clock_rate, r.channels?)?,
        None => {
            let c = storable_by_static_pt(pt)?;
            (c.name, c.clock_rate, c.channels)
        }
    };
    Some(Codec {
        name: name.to_owned(),
        payload_type: pt,
        clock_rate,
        channels,
    })
}

/// Every storable payload type of an m= line, in offer order (a payload type listed twice
/// counts once).
pub(crate) fn choose_all(payload_types: &[u8], rtpmaps: &[RtpMapEntry]) -> Vec<Codec> {
    let mut out: Vec<Codec> = Vec::new();
    for &pt in payload_types {
        if out.iter().any(|c| c.payload_type == pt) {
            continue;
        }
        if let Some(c) = storable_pt(pt, rtpmaps) {
            out.push(c);
        }
    }
    out
}

/// The first payload type in offer order that the recorder can store.
#[cfg(test)]
pub(crate) fn choose(payload_types: &[u8], rtpmaps: &[RtpMapEntry]) -> Option<Codec> {
    choose_all(payload_types, rtpmaps).into_iter().next()
}

/// `telephone-event` (RFC 4733) payload type and clock: the one at the codec's clock if
/// several are offered (as with opus at 48 kHz), else the first.
pub(crate) fn telephone_event(
    payload_types: &[u8],
    rtpmaps: &[RtpMapEntry],
    codec_clock: Option<u32>,
) -> Option<(u8, u32)> {
    let offered: Vec<(u8, u32)> = payload_types
        .iter()
        .filter_map(|&pt| rtpmap_for(pt, rtpmaps))
        .filter(|r| r.encoding.eq_ignore_ascii_case("telephone-event"))
        .map(|r| (r.payload_type, r.clock_rate))
        .collect();
    offered
        .iter()
        .find(|(_, rate)| Some(*rate) == codec_clock)
        .or(offered.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(lines: &[&str]) -> Vec<RtpMapEntry> {
        lines.iter().filter_map(|l| parse_rtpmap(l)).collect()
    }

    #[test]
    fn static_types_without_rtpmap() {
        let c = choose(&[9, 0], &[]).unwrap();
        assert_eq!(
            (c.name.as_str(), c.payload_type, c.clock_rate),
            ("G722", 9, 8000)
        );
        assert_eq!(choose(&[18], &[]).unwrap().name, "G729");
        assert_eq!(choose(&[2], &[]).unwrap().name, "G721");
        assert_eq!(choose(&[3, 4, 34], &[]), None);
    }

    #[test]
    fn dynamic_types_by_name_case_insensitive() {
        let m = maps(&["96 H264/90000", "97 OPUS/48000/2", "98 pcma/8000"]);
        let all = choose_all(&[96, 97, 98], &m);
        let names: Vec<_> = all
            .iter()
            .map(|c| (c.name.as_str(), c.payload_type))
            .collect();
        assert_eq!(names, [("opus", 97), ("PCMA", 98)]);
        assert_eq!((all[0].clock_rate, all[0].channels), (48000, 2));
        let c = choose(&[96, 98], &m).unwrap();
        assert_eq!((c.name.as_str(), c.payload_type), ("PCMA", 98));
    }

    #[test]
    fn rtpmap_overrides_static_meaning() {
        // A PT below 96 remapped by rtpmap is taken by its rtpmap.
        let m = maps(&["0 L16/8000"]);
        assert_eq!(choose(&[0], &m), None);
        let m = maps(&["9 G722/16000"]);
        assert_eq!(choose(&[9], &m).unwrap().clock_rate, 8000);
        let m = maps(&["0 PCMU/8000/2"]);
        assert_eq!(choose(&[0], &m), None);
    }

    #[test]
    fn every_storable_type_in_offer_order() {
        let m = maps(&[
            "101 telephone-event/8000",
            "97 g726-32/8000",
            "98 AAL2-G726-32/8000",
        ]);
        let all = choose_all(&[0, 8, 18, 101, 97, 98, 8, 3], &m);
        let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["PCMU", "PCMA", "G729", "G726-32", "AAL2-G726-32"]);
    }

    #[test]
    fn offer_lists_every_storable_codec() {
        let offer = offer_codecs();
        assert_eq!(offer.len(), STORABLE.len());
        let pts: Vec<u8> = offer.iter().map(|c| c.payload_type).collect();
        assert!(!pts.contains(&101));
        let mut unique = pts.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), pts.len(), "{pts:?}");
        assert!(storable_names().contains("G729"));
    }

    #[test]
    fn telephone_event_prefers_codec_clock() {
        let m = maps(&["101 telephone-event/8000", "110 Telephone-Event/48000"]);
        assert_eq!(
            telephone_event(&[101, 110], &m, Some(48000)),
            Some((110, 48000))
        );
        assert_eq!(
            telephone_event(&[101, 110], &m, Some(8000)),
            Some((101, 8000))
        );
        assert_eq!(telephone_event(&[110, 101], &m, None), Some((110, 48000)));
        // Not in the m= format list: not offered.
        assert_eq!(telephone_event(&[0], &m, Some(8000)), None);
    }

    #[test]
    fn rtpmap_parsing_tolerates_junk() {
        assert_eq!(parse_rtpmap("x PCMU/8000"), None);
        assert_eq!(parse_rtpmap("0 PCMU"), None);
        assert_eq!(parse_rtpmap("300 PCMU/8000"), None);
        assert_eq!(parse_rtpmap("0 PCMU/8000/x").unwrap().channels, None);
    }
}
