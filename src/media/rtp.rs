//! RTP (RFC 3550 §5.1) header parsing and RTCP recognition on a muxed port (RFC 5761).
//!
//! Parsing borrows from the datagram and never allocates or panics: every length read from
//! the wire is checked against the bytes actually present.

/// Why a datagram is not a usable RTP or RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the fixed header or than the lengths its fields announce.
    #[error("packet truncated")]
    Truncated,
    /// Version field other than 2.
    #[error("unsupported RTP version {0}")]
    Version(u8),
    /// Padding count of zero or larger than the payload.
    #[error("invalid padding")]
    Padding,
}

/// A parsed RTP packet borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (for audio: first packet of a talkspurt).
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Contributing sources, 4 bytes each, big-endian.
    pub csrcs: &'a [u8],
    /// Header extension (RFC 3550 §5.3.1 / RFC 8285): profile word and data.
    pub extension: Option<(u16, &'a [u8])>,
    /// Whether the padding bit was set (the padding is already removed from `payload`).
    pub padded: bool,
    pub payload: &'a [u8],
}

const FIXED_HEADER: usize = 12;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP datagram.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < FIXED_HEADER {
            return Err(RtpError::Truncated);
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let padded = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_len = usize::from(buf[0] & 0x0F) * 4;
        let mut at = FIXED_HEADER;
        let csrcs = buf.get(at..at + csrc_len).ok_or(RtpError::Truncated)?;
        at += csrc_len;
        let extension = if has_extension {
            let profile = be16(buf, at).ok_or(RtpError::Truncated)?;
            let words = usize::from(be16(buf, at + 2).ok_or(RtpError::Truncated)?);
            let data = buf
                .get(at + 4..at + 4 + words * 4)
                .ok_or(RtpError::Truncated)?;
            at += 4 + words * 4;
            Some((profile, data))
        } else {
            None
        };
        let mut end = buf.len();
        if padded {
            // The last byte counts the padding bytes, itself included.
            let pad = usize::from(buf[end - 1]);
            if pad == 0 || pad > end - at {
                return Err(RtpError::Padding);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7F,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            csrcs,
            extension,
            padded,
            payload: &buf[at..end],
        })
    }

    /// The contributing source identifiers.
    pub fn csrc_iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrcs
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Whether a datagram on a muxed RTP/RTCP port is RTCP (RFC 5761 §4).
///
/// The second byte of RTCP is its packet type (SR 200, RR 201, SDES 202, BYE 203, APP 204,
/// feedback 205/206, XR 207); in RTP that byte is marker + payload type. RFC 5761 forbids RTP
/// payload types 64–95 on a muxed port precisely so that 192–223 always means RTCP.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// The part of an RTCP sender report (RFC 3550 §6.4.1) used to relate RTP time to wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    /// NTP timestamp, seconds in the high 32 bits and fraction in the low 32.
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

const RTCP_SR: u8 = 200;

/// Finds the sender report in a (compound) RTCP datagram.
///
/// `Ok(None)` when the datagram is well-formed RTCP without a sender report.
pub fn parse_sender_report(buf: &[u8]) -> Result<Option<SenderReport>, RtpError> {
    let mut at = 0;
    while at < buf.len() {
        let header = buf.get(at..at + 4).ok_or(RtpError::Truncated)?;
        if header[0] >> 6 != 2 {
            return Err(RtpError::Version(header[0] >> 6));
        }
        // Length in 32-bit words minus one, header included.
        let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let packet = buf.get(at..at + len).ok_or(RtpError::Truncated)?;
        if header[1] == RTCP_SR {
            let field = |off| be32(packet, off).ok_or(RtpError::Truncated);
            let ntp = (u64::from(field(8)?) << 32) | u64::from(field(12)?);
            return Ok(Some(SenderReport {
                ssrc: field(4)?,
                ntp_timestamp: ntp,
                rtp_timestamp: field(16)?,
                packet_count: field(20)?,
                octet_count: field(24)?,
            }));
        }
        at += len;
    }
    Ok(None)
}

/// Writes an RTP packet (fixed header, no CSRC or extension) into `out`; for tests, benches
/// and fuzzing seeds.
pub fn write_packet(
    out: &mut Vec<u8>,
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) {
    out.clear();
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7F));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_header() {
        let mut buf = Vec::new();
        write_packet(
            &mut buf,
            true,
            8,
            0xBEEF,
            0xDEAD_BEEF,
            0x1234_5678,
            &[1, 2, 3],
        );
        let p = RtpPacket::parse(&buf).expect("valid");
        assert!(p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 0xBEEF);
        assert_eq!(p.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.ssrc, 0x1234_5678);
        assert_eq!(p.payload, &[1, 2, 3]);
        assert!(p.csrcs.is_empty() && p.extension.is_none() && !p.padded);
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut buf = vec![0x80 | 0x20 | 0x10 | 2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 9]); // two CSRCs
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0xAA, 0xBB, 0xCC, 0xDD]); // one-word ext
        buf.extend_from_slice(&[5, 6]); // payload
        buf.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let p = RtpPacket::parse(&buf).expect("valid");
        assert_eq!(p.csrc_iter().collect::<Vec<_>>(), vec![7, 9]);
        assert_eq!(p.extension, Some((0xBEDE, &[0xAA, 0xBB, 0xCC, 0xDD][..])));
        assert!(p.padded);
        assert_eq!(p.payload, &[5, 6]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        // CSRC count beyond the buffer.
        let mut buf = vec![0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::Truncated));
        // Extension length beyond the buffer.
        buf[0] = 0x90;
        buf.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::Truncated));
        // Padding of zero, and padding longer than the payload.
        let mut pad = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding));
        *pad.last_mut().expect("non-empty") = 3;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Padding));
        // Padding covering the whole payload is legal.
        *pad.last_mut().expect("non-empty") = 2;
        assert_eq!(RtpPacket::parse(&pad).expect("valid").payload, &[] as &[u8]);
    }

    #[test]
    fn never_panics_on_short_prefixes() {
        let mut buf = vec![0xBF, 0xC8, 0, 1];
        buf.extend((0..80).map(|i| (i * 37 % 251) as u8));
        for n in 0..=buf.len() {
            let _ = RtpPacket::parse(&buf[..n]);
            let _ = is_rtcp(&buf[..n]);
            let _ = parse_sender_report(&buf[..n]);
        }
    }

    fn sender_report() -> Vec<u8> {
        let mut sr = vec![0x80, 200, 0, 6];
        for word in [0x1111_2222u32, 0xE000_0000, 0x8000_0000, 160_000, 50, 8000] {
            sr.extend_from_slice(&word.to_be_bytes());
        }
        sr
    }

    #[test]
    fn rtcp_detection_on_muxed_port() {
        assert!(is_rtcp(&sender_report()));
        let mut rtp = Vec::new();
        write_packet(&mut rtp, true, 0, 1, 1, 1, &[0; 160]); // marker + PCMU: 0x80
        assert!(!is_rtcp(&rtp));
        write_packet(&mut rtp, true, 101, 1, 1, 1, &[0; 4]); // marker + dynamic PT: 229
        assert!(!is_rtcp(&rtp));
        assert!(!is_rtcp(&[0x80, 201]));
    }

    #[test]
    fn parses_sender_report_in_compound_packet() {
        // RR first (one word of header + SSRC), then the SR.
        let mut compound = vec![0x80, 201, 0, 1, 0, 0, 0, 9];
        compound.extend_from_slice(&sender_report());
        let sr = parse_sender_report(&compound)
            .expect("well-formed")
            .expect("has SR");
        assert_eq!(sr.ssrc, 0x1111_2222);
        assert_eq!(sr.ntp_timestamp, 0xE000_0000_8000_0000);
        assert_eq!(sr.rtp_timestamp, 160_000);
        assert_eq!(sr.packet_count, 50);
        assert_eq!(sr.octet_count, 8000);

        assert_eq!(
            parse_sender_report(&[0x80, 201, 0, 1, 0, 0, 0, 9]),
            Ok(None)
        );
        // Length field pointing past the end.
        assert_eq!(
            parse_sender_report(&[0x80, 200, 0, 9, 0, 0, 0, 9]),
            Err(RtpError::Truncated)
        );
        // An SR whose length is too short for its fields.
        assert_eq!(
            parse_sender_report(&[0x80, 200, 0, 1, 0, 0, 0, 9]),
            Err(RtpError::Truncated)
        );
    }
}
