//! Which offered payload formats the recorder can store.

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

/// Static payload types of RFC 3551 the recorder stores, used when no rtpmap is given.
pub(crate) fn static_codec(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        8 => Some(("PCMA", 8000)),
        // RFC 3551 §4.5.2: G.722's RTP clock is 8000 Hz although it samples at 16 kHz.
        9 => Some(("G722", 8000)),
        18 => Some(("G729", 8000)),
        _ => None,
    }
}

/// Encodings the media path can decode and store. G.729 and Opus are answered only once
/// their decoders exist: accepting media that cannot be decoded would record silence.
pub const RECORDABLE: &[&str] = &["PCMU", "PCMA", "G722"];

/// The canonical name and RTP clock of a storable encoding, given an rtpmap's values.
/// Names are matched case-insensitively (RFC 4855 §3) and returned in canonical spelling so
/// that later layers can compare them directly.
pub(crate) fn storable(
    encoding: &str,
    clock_rate: u32,
    channels: u8,
) -> Option<(&'static str, u32, u8)> {
    let name = RECORDABLE
        .iter()
        .copied()
        .find(|n| n.eq_ignore_ascii_case(encoding))?;
    match (name, clock_rate, channels) {
        // RFC 7587: opus is always written as opus/48000/2, whatever is actually sent.
        ("opus", 48000, 1 | 2) => Some((name, 48000, 2)),
        // Some endpoints write G722/16000; the RTP clock is still 8000 (RFC 3551 §4.5.2).
        ("G722", 8000 | 16000, 1) => Some((name, 8000, 1)),
        ("PCMU" | "PCMA" | "G729", 8000, 1) => Some((name, 8000, 1)),
        _ => None,
    }
}

fn rtpmap_for(pt: u8, rtpmaps: &[RtpMapEntry]) -> Option<&RtpMapEntry> {
    rtpmaps.iter().find(|r| r.payload_type == pt)
}

/// The first payload type in offer order that the recorder can store.
pub(crate) fn choose(payload_types: &[u8], rtpmaps: &[RtpMapEntry]) -> Option<Codec> {
    payload_types.iter().find_map(|&pt| {
        let (name, clock_rate, channels) = match rtpmap_for(pt, rtpmaps) {
            Some(r) => storable(&r.encoding, r.clock_rate, r.channels?)?,
            None => {
                let (name, rate) = static_codec(pt)?;
                if !RECORDABLE.contains(&name) {
                    return None;
                }
                (name, rate, 1)
            }
        };
        Some(Codec {
            name: name.to_owned(),
            payload_type: pt,
            clock_rate,
            channels,
        })
    })
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
        assert_eq!(choose(&[18], &[]), None, "no G.729 decoder");
        assert_eq!(choose(&[3, 4, 34], &[]), None);
    }

    #[test]
    fn dynamic_types_by_name_case_insensitive() {
        let m = maps(&["96 H264/90000", "97 OPUS/48000/2", "98 pcma/8000"]);
        let c = choose(&[96, 97, 98], &m).unwrap();
        assert_eq!(
            (c.name.as_str(), c.payload_type),
            ("PCMA", 98),
            "no Opus decoder"
        );
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
