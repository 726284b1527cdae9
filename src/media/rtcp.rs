//! RTCP (RFC 3550 §6) compound-packet reading: sender reports, receiver reports, SDES and
//! BYE, each as a borrowed view. Sans-IO and allocation-free: [`RtcpPackets`] walks the
//! datagram in place; nothing is copied.

use super::rtp::RtpError;

pub const RTCP_SR: u8 = 200;
pub const RTCP_RR: u8 = 201;
pub const RTCP_SDES: u8 = 202;
pub const RTCP_BYE: u8 = 203;
const SDES_CNAME: u8 = 1;

/// The sender-info part of an SR (RFC 3550 §6.4.1): what the sender says it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// NTP timestamp, seconds in the high 32 bits and fraction in the low 32.
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    /// Packets the sender sent since it started (wraps at 2^32).
    pub packet_count: u32,
    /// Payload octets the sender sent since it started (wraps at 2^32).
    pub octet_count: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report; `report_blocks` counts its reception report blocks.
    SenderReport {
        info: SenderInfo,
        report_blocks: u8,
    },
    ReceiverReport {
        ssrc: u32,
        report_blocks: u8,
    },
    /// Source description: the first chunk's SSRC and its CNAME, if present.
    SourceDescription {
        ssrc: Option<u32>,
        cname: Option<&'a [u8]>,
    },
    /// The sources leaving the session (the SSRC/CSRC list, 4 bytes each).
    Goodbye {
        sources: &'a [u8],
    },
    /// APP, feedback, XR or anything else: recognised and skipped.
    Other {
        packet_type: u8,
    },
}

/// Iterator over the packets of a compound RTCP datagram. A malformed packet ends the
/// walk with one `Err`; the packets before it were still returned.
pub struct RtcpPackets<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Walk the packets of the (compound) RTCP datagram `buf` (already decrypted for SRTCP).
pub fn packets(buf: &[u8]) -> RtcpPackets<'_> {
    RtcpPackets {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for RtcpPackets<'a> {
    type Item = Result<RtcpPacket<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match split_packet(self.rest) {
            Ok((packet, rest)) => {
                self.rest = rest;
                let parsed = parse_packet(packet);
                self.failed = parsed.is_err();
                Some(parsed)
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The first packet (header included, padding included) and what follows it.
fn split_packet(buf: &[u8]) -> Result<(&[u8], &[u8]), RtpError> {
    let header = buf.get(..4).ok_or(RtpError::Truncated)?;
    if header[0] >> 6 != 2 {
        return Err(RtpError::Version(header[0] >> 6));
    }
    // Length in 32-bit words minus one, header included.
    let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
    if buf.len() < len {
        return Err(RtpError::Truncated);
    }
    Ok(buf.split_at(len))
}

fn be32(buf: &[u8], at: usize) -> Result<u32, RtpError> {
    buf.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(RtpError::Truncated)
}

fn parse_packet(packet: &[u8]) -> Result<RtcpPacket<'_>, RtpError> {
    let count = packet[0] & 0x1F;
    // Padding (P bit) is only allowed on the last packet; its length is in the last byte.
    let body_end = if packet[0] & 0x20 != 0 {
        let pad = usize::from(*packet.last().ok_or(RtpError::Truncated)?);
        if pad == 0 || pad > packet.len() - 4 {
            return Err(RtpError::Padding);
        }
        packet.len() - pad
    } else {
        packet.len()
    };
    let body = &packet[..body_end];
    Ok(match packet[1] {
        RTCP_SR => {
            // 4 header + 4 SSRC + 20 sender info, then 24 bytes per report block.
            if body.len() < 28 + 24 * usize::from(count) {
                return Err(RtpError::Truncated);
            }
            let ntp = (u64::from(be32(body, 8)?) << 32) | u64::from(be32(body, 12)?);
            RtcpPacket::SenderReport {
                info: SenderInfo {
                    ssrc: be32(body, 4)?,
                    ntp_timestamp: ntp,
                    rtp_timestamp: be32(body, 16)?,
                    packet_count: be32(body, 20)?,
                    octet_count: be32(body, 24)?,
                },
                report_blocks: count,
            }
        }
        RTCP_RR => {
            if body.len() < 8 + 24 * usize::from(count) {
                return Err(RtpError::Truncated);
            }
            RtcpPacket::ReceiverReport {
                ssrc: be32(body, 4)?,
                report_blocks: count,
            }
        }
        RTCP_SDES => parse_sdes(body, count)?,
        RTCP_BYE => {
            let sources = body
                .get(4..4 + 4 * usize::from(count))
                .ok_or(RtpError::Truncated)?;
            RtcpPacket::Goodbye { sources }
        }
        packet_type => RtcpPacket::Other { packet_type },
    })
}

/// The first SDES chunk: SSRC and CNAME item (RFC 3550 §6.5).
fn parse_sdes(body: &[u8], count: u8) -> Result<RtcpPacket<'_>, RtpError> {
    if count == 0 {
        return Ok(RtcpPacket::SourceDescription {
            ssrc: None,
            cname: None,
        });
    }
    let ssrc = be32(body, 4)?;
    let mut at = 8;
    let mut cname = None;
    // Items: type, length, text; a zero type ends the chunk.
    while let Some(&item) = body.get(at) {
        if item == 0 {
            break;
        }
        let len = usize::from(*body.get(at + 1).ok_or(RtpError::Truncated)?);
        let text = body.get(at + 2..at + 2 + len).ok_or(RtpError::Truncated)?;
        if item == SDES_CNAME && cname.is_none() {
            cname = Some(text);
        }
        at += 2 + len;
    }
    Ok(RtcpPacket::SourceDescription {
        ssrc: Some(ssrc),
        cname,
    })
}

impl RtcpPacket<'_> {
    /// The SSRCs a BYE names.
    pub fn bye_sources(&self) -> impl Iterator<Item = u32> + '_ {
        let sources: &[u8] = match self {
            RtcpPacket::Goodbye { sources } => sources,
            _ => &[],
        };
        sources
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// RTCP packet builders for tests, benches and fuzz seeds.
pub mod build {
    /// A sender report without report blocks.
    pub fn sender_report(out: &mut Vec<u8>, ssrc: u32, rtp_ts: u32, packets: u32, octets: u32) {
        out.extend_from_slice(&[0x80, super::RTCP_SR, 0, 6]);
        for word in [ssrc, 0xE000_0000, 0x8000_0000, rtp_ts, packets, octets] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// An SDES packet with one chunk holding a CNAME.
    pub fn sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &[u8]) {
        let start = out.len();
        out.extend_from_slice(&[0x81, super::RTCP_SDES, 0, 0]);
        out.extend_from_slice(&ssrc.to_be_bytes());
        out.push(1);
        out.push(cname.len() as u8);
        out.extend_from_slice(cname);
        out.push(0);
        while (out.len() - start) % 4 != 0 {
            out.push(0);
        }
        let words = ((out.len() - start) / 4 - 1) as u16;
        out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    }

    /// A BYE for one source.
    pub fn bye(out: &mut Vec<u8>, ssrc: u32) {
        out.extend_from_slice(&[0x81, super::RTCP_BYE, 0, 1]);
        out.extend_from_slice(&ssrc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compound() -> Vec<u8> {
        let mut buf = Vec::new();
        build::sender_report(&mut buf, 0x1111_2222, 160_000, 250, 40_000);
        build::sdes_cname(&mut buf, 0x1111_2222, b"src@example");
        build::bye(&mut buf, 0x1111_2222);
        buf
    }

    #[test]
    fn walks_a_compound_packet() {
        let buf = compound();
        let all: Vec<_> = packets(&buf).collect::<Result<_, _>>().expect("valid");
        assert_eq!(all.len(), 3);
        assert_eq!(
            all[0],
            RtcpPacket::SenderReport {
                info: SenderInfo {
                    ssrc: 0x1111_2222,
                    ntp_timestamp: 0xE000_0000_8000_0000,
                    rtp_timestamp: 160_000,
                    packet_count: 250,
                    octet_count: 40_000,
                },
                report_blocks: 0,
            }
        );
        assert_eq!(
            all[1],
            RtcpPacket::SourceDescription {
                ssrc: Some(0x1111_2222),
                cname: Some(&b"src@example"[..])
            }
        );
        assert_eq!(all[2].bye_sources().collect::<Vec<_>>(), vec![0x1111_2222]);
    }

    #[test]
    fn receiver_report_with_a_block_and_unknown_types() {
        // RR with one 24-byte report block, then an APP packet (204).
        let mut buf = vec![0x81, RTCP_RR, 0, 7, 0, 0, 0, 9];
        buf.extend_from_slice(&[0; 24]);
        buf.extend_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 9, b'n', b'a', b'm', b'e']);
        let all: Vec<_> = packets(&buf).collect::<Result<_, _>>().expect("valid");
        assert_eq!(
            all,
            vec![
                RtcpPacket::ReceiverReport {
                    ssrc: 9,
                    report_blocks: 1
                },
                RtcpPacket::Other { packet_type: 204 }
            ]
        );
    }

    #[test]
    fn malformed_packets_end_the_walk_with_an_error() {
        let mut buf = Vec::new();
        build::sender_report(&mut buf, 1, 0, 1, 1);
        // A second packet whose length points past the end.
        buf.extend_from_slice(&[0x80, RTCP_RR, 0, 9, 0, 0, 0, 1]);
        let all: Vec<_> = packets(&buf).collect();
        assert!(all[0].is_ok());
        assert_eq!(all[1], Err(RtpError::Truncated));
        assert_eq!(all.len(), 2);
        // An SR claiming a report block it does not carry.
        let mut sr = Vec::new();
        build::sender_report(&mut sr, 1, 0, 1, 1);
        sr[0] = 0x81;
        assert_eq!(packets(&sr).next(), Some(Err(RtpError::Truncated)));
        assert_eq!(
            packets(&[0x40, 200, 0, 0]).next(),
            Some(Err(RtpError::Version(1)))
        );
        // Padding longer than the packet.
        assert_eq!(
            packets(&[0xA0, 201, 0, 1, 0, 0, 0, 200]).next(),
            Some(Err(RtpError::Padding))
        );
    }

    #[test]
    fn never_panics_on_prefixes_or_noise() {
        let buf = compound();
        for n in 0..=buf.len() {
            for p in packets(&buf[..n]) {
                let _ = p;
            }
        }
        let noise: Vec<u8> = (0..200u32).map(|i| (i * 89 % 253) as u8 | 0x80).collect();
        for start in 0..noise.len() {
            for p in packets(&noise[start..]) {
                let _ = p;
            }
        }
    }
}
