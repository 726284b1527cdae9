//! SRTP/SRTCP decryption for one received stream (RFC 3711, RFC 7714), sans-IO.
//!
//! A thin wrapper over `webrtc-srtp`'s `Context` that makes it safe to feed with whatever
//! arrives on an RTP port:
//!
//! - Packets are checked structurally before the crate sees them. The crate locates the
//!   SRTCP index (and reads the SSRC) before checking the length, and its RTP
//!   header-extension parser reads past the end of short packets; both panic on crafted input.
//! - The crate creates per-SSRC state before it checks authentication, so a spray of forged
//!   SSRCs would grow it without bound. A packet from an SSRC that has not yet authenticated
//!   is first verified on a separate probe context that is rebuilt when it fills up, and the
//!   main context only ever sees SSRCs that authenticated.
//! - SRTCP with the E flag clear is refused: the crate returns it without checking its tag,
//!   and we never negotiate unencrypted SRTCP.
//! - After a re-key the previous key stays usable until the new one first authenticates, so
//!   packets in flight across the switch are not lost.
//!
//! Replay protection is on for both SRTP and SRTCP. The rollover counter is estimated by the
//! crate from the sequence number (RFC 3711 Appendix A), per SSRC.

use std::collections::HashSet;
use std::fmt;

use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

use crate::sdp::crypto::SrtpSuite;

/// Replay window in packets; RFC 3711 §3.3.2 requires at least 64. Packets older than this
/// relative to the newest one are refused as replays.
pub const REPLAY_WINDOW: usize = 64;

/// Distinct SSRCs one key may authenticate (per direction kind). Only a holder of the key
/// can add to this, so it bounds a misbehaving peer, not an attacker.
pub const MAX_SSRCS_PER_KEY: usize = 32;

/// Distinct unauthenticated SSRCs the probe context remembers before it is rebuilt.
const PROBE_SSRC_LIMIT: usize = 256;

const RTP_HEADER_LEN: usize = 12;
/// SRTCP header plus sender SSRC: the part that stays in the clear.
const SRTCP_CLEAR_LEN: usize = 8;
const SRTCP_INDEX_LEN: usize = 4;
const RTP_VERSION: u8 = 2;
const EXTENSION_ONE_BYTE: u16 = 0xBEDE;
/// The crate treats only this exact value as RFC 8285 two-byte headers.
const EXTENSION_TWO_BYTE: u16 = 0x1000;
const ONE_BYTE_ID_RESERVED: u8 = 15;

/// Why a packet was not decrypted. The caller counts and drops; none of these ends a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("SRTP key||salt is {got} bytes, the suite needs {expected}")]
    BadKey { expected: usize, got: usize },
    #[error("packet too short for SRTP")]
    TooShort,
    #[error("malformed SRTP packet header")]
    Malformed,
    #[error("SRTP authentication failed")]
    AuthFailed,
    #[error("replayed or too old SRTP packet")]
    Replay,
    #[error("too many SSRCs for one SRTP key")]
    TooManySsrcs,
    #[error("unencrypted SRTCP was not negotiated")]
    UnencryptedSrtcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Rtp,
    Rtcp,
}

/// Decrypts the SRTP and SRTCP of one stream with the key the sender offered.
pub struct SrtpReceiver {
    current: KeyedContext,
    /// The key before the last re-key, until the new one authenticates a packet.
    previous: Option<KeyedContext>,
    auth_failures: u64,
    replays: u64,
}

impl SrtpReceiver {
    /// `key_salt` is the master key followed by the master salt, as offered in `a=crypto`.
    pub fn new(suite: SrtpSuite, key_salt: &[u8]) -> Result<Self, SrtpError> {
        Ok(Self {
            current: KeyedContext::new(suite, key_salt)?,
            previous: None,
            auth_failures: 0,
            replays: 0,
        })
    }

    /// The suite of the current key.
    pub fn suite(&self) -> SrtpSuite {
        self.current.suite
    }

    /// Decrypts one SRTP packet into `out` (RTP header and plain payload, tag removed).
    /// `out` is cleared first and left empty on error.
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.unprotect(Kind::Rtp, packet, out)
    }

    /// Decrypts one SRTCP packet into `out` (plain compound RTCP, index and tag removed).
    /// `out` is cleared first and left empty on error.
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.unprotect(Kind::Rtcp, packet, out)
    }

    /// Applies the key from a re-offer. Returns `Ok(false)` when it is the key already in use,
    /// which keeps rollover counters and replay windows (re-INVITEs often repeat the key).
    /// A new key starts a fresh crypto context; the old one keeps decrypting until the new
    /// one authenticates its first packet.
    pub fn rekey(&mut self, suite: SrtpSuite, key_salt: &[u8]) -> Result<bool, SrtpError> {
        if suite == self.current.suite && same_bytes(key_salt, &self.current.key_salt) {
            return Ok(false);
        }
        let next = KeyedContext::new(suite, key_salt)?;
        self.previous = Some(std::mem::replace(&mut self.current, next));
        Ok(true)
    }

    /// Packets dropped because their tag did not verify (forged, corrupted or wrong key).
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures
    }

    /// Packets dropped as replays or as older than the replay window.
    pub fn replays(&self) -> u64 {
        self.replays
    }

    fn unprotect(&mut self, kind: Kind, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        out.clear();
        let mut result = self.current.decrypt(kind, packet);
        match (&result, self.previous.as_mut()) {
            (Ok(_), Some(_)) => self.previous = None,
            (Err(SrtpError::AuthFailed), Some(previous)) => {
                if let Ok(plain) = previous.decrypt(kind, packet) {
                    result = Ok(plain);
                }
            }
            _ => {}
        }
        match result {
            Ok(plain) => {
                out.extend_from_slice(&plain);
                Ok(())
            }
            Err(e) => {
                match e {
                    SrtpError::AuthFailed => self.auth_failures += 1,
                    SrtpError::Replay => self.replays += 1,
                    _ => {}
                }
                Err(e)
            }
        }
    }
}

impl fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpReceiver")
            .field("suite", &self.current.suite)
            .field("rekey_pending", &self.previous.is_some())
            .field("auth_failures", &self.auth_failures)
            .field("replays", &self.replays)
            .finish_non_exhaustive()
    }
}

/// One master key and the crate contexts derived from it.
struct KeyedContext {
    suite: SrtpSuite,
    key_salt: Vec<u8>,
    /// Only ever sees SSRCs in `known_*`, so its per-SSRC state stays bounded.
    main: Context,
    /// Verifies the first packet of an SSRC; may hold state for forged SSRCs.
    probe: Context,
    probed: HashSet<(Kind, u32)>,
    known_rtp: HashSet<u32>,
    known_rtcp: HashSet<u32>,
}

impl KeyedContext {
    fn new(suite: SrtpSuite, key_salt: &[u8]) -> Result<Self, SrtpError> {
        Ok(Self {
            suite,
            key_salt: key_salt.to_vec(),
            main: new_context(suite, key_salt, true)?,
            probe: new_context(suite, key_salt, false)?,
            probed: HashSet::new(),
            known_rtp: HashSet::new(),
            known_rtcp: HashSet::new(),
        })
    }

    fn decrypt(&mut self, kind: Kind, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let ssrc = match kind {
            Kind::Rtp => check_srtp(packet, self.suite)?,
            Kind::Rtcp => check_srtcp(packet, self.suite)?,
        };
        let known = match kind {
            Kind::Rtp => &self.known_rtp,
            Kind::Rtcp => &self.known_rtcp,
        };
        if !known.contains(&ssrc) {
            if known.len() >= MAX_SSRCS_PER_KEY {
                return Err(SrtpError::TooManySsrcs);
            }
            self.probe(kind, ssrc, packet)?;
        }
        let plain = match kind {
            Kind::Rtp => self.main.decrypt_rtp(packet),
            Kind::Rtcp => self.main.decrypt_rtcp(packet),
        }
        .map_err(map_error)?;
        match kind {
            Kind::Rtp => self.known_rtp.insert(ssrc),
            Kind::Rtcp => self.known_rtcp.insert(ssrc),
        };
        Ok(plain)
    }

    /// Authenticates the first packet of an SSRC without touching the main context. For a
    /// new SSRC both contexts start at rollover counter 0, so they agree on the result.
    fn probe(&mut self, kind: Kind, ssrc: u32, packet: &[u8]) -> Result<(), SrtpError> {
        if !self.probed.contains(&(kind, ssrc)) {
            if self.probed.len() >= PROBE_SSRC_LIMIT {
                self.probe = new_context(self.suite, &self.key_salt, false)?;
                self.probed.clear();
            }
            self.probed.insert((kind, ssrc));
        }
        match kind {
            Kind::Rtp => self.probe.decrypt_rtp(packet),
            Kind::Rtcp => self.probe.decrypt_rtcp(packet),
        }
        .map(drop)
        .map_err(map_error)
    }
}

fn new_context(suite: SrtpSuite, key_salt: &[u8], replay: bool) -> Result<Context, SrtpError> {
    if key_salt.len() != suite.key_salt_len() {
        return Err(SrtpError::BadKey {
            expected: suite.key_salt_len(),
            got: key_salt.len(),
        });
    }
    let (key, salt) = key_salt.split_at(suite.key_len());
    let (srtp_opt, srtcp_opt) = if replay {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(key, salt, profile(suite), srtp_opt, srtcp_opt).map_err(|_| SrtpError::BadKey {
        expected: suite.key_salt_len(),
        got: key_salt.len(),
    })
}

fn profile(suite: SrtpSuite) -> ProtectionProfile {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    }
}

fn map_error(e: webrtc_srtp::Error) -> SrtpError {
    use webrtc_srtp::Error as E;
    match e {
        E::RtpFailedToVerifyAuthTag
        | E::RtcpFailedToVerifyAuthTag
        | E::ErrFailedToVerifyAuthTag
        | E::AesGcm(_) => SrtpError::AuthFailed,
        E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) | E::ErrDuplicated => {
            SrtpError::Replay
        }
        E::ErrTooShortRtp
        | E::ErrTooShortRtcp
        | E::SrtpTooSmall(..)
        | E::SrtcpTooSmall(..)
        | E::RtcpInvalidLengthAuthTag(..) => SrtpError::TooShort,
        _ => SrtpError::Malformed,
    }
}

/// Checks everything the crate's RTP header parser would read, and returns the SSRC.
fn check_srtp(packet: &[u8], suite: SrtpSuite) -> Result<u32, SrtpError> {
    if packet.len() < RTP_HEADER_LEN {
        return Err(SrtpError::TooShort);
    }
    if packet[0] >> 6 != RTP_VERSION {
        return Err(SrtpError::Malformed);
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut header_len = RTP_HEADER_LEN + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let ext = packet
            .get(header_len..header_len + 4)
            .ok_or(SrtpError::TooShort)?;
        let profile = u16::from_be_bytes([ext[0], ext[1]]);
        let ext_len = 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        let body_start = header_len + 4;
        let body = packet
            .get(body_start..body_start + ext_len)
            .ok_or(SrtpError::TooShort)?;
        check_extension_elements(profile, body)?;
        header_len = body_start + ext_len;
    }
    if packet.len() < header_len + suite.srtp_tag_len() {
        return Err(SrtpError::TooShort);
    }
    Ok(u32::from_be_bytes([
        packet[8], packet[9], packet[10], packet[11],
    ]))
}

/// RFC 8285 elements must tile the extension block exactly. The crate walks them with
/// unchecked reads, and its idea of the header length (where decryption starts) is only
/// right when they do.
fn check_extension_elements(profile: u16, body: &[u8]) -> Result<(), SrtpError> {
    let mut i = 0;
    match profile {
        EXTENSION_ONE_BYTE => {
            while i < body.len() {
                let b = body[i];
                if b == 0 {
                    i += 1;
                    continue;
                }
                if b >> 4 == ONE_BYTE_ID_RESERVED {
                    return Err(SrtpError::Malformed);
                }
                i += 1 + usize::from(b & 0x0f) + 1;
            }
        }
        EXTENSION_TWO_BYTE => {
            while i < body.len() {
                if body[i] == 0 {
                    i += 1;
                    continue;
                }
                let len = body.get(i + 1).ok_or(SrtpError::Malformed)?;
                i += 2 + usize::from(*len);
            }
        }
        // Any other profile is one opaque block, which the length check already covered.
        _ => return Ok(()),
    }
    if i == body.len() {
        Ok(())
    } else {
        Err(SrtpError::Malformed)
    }
}

/// Checks the SRTCP minimum size and the E flag, and returns the sender SSRC.
fn check_srtcp(packet: &[u8], suite: SrtpSuite) -> Result<u32, SrtpError> {
    let min = SRTCP_CLEAR_LEN + SRTCP_INDEX_LEN + suite.srtcp_tag_len();
    if packet.len() < min {
        return Err(SrtpError::TooShort);
    }
    if packet[0] >> 6 != RTP_VERSION {
        return Err(SrtpError::Malformed);
    }
    // AES-CM puts the tag after the E|index word, AEAD inside the ciphertext before it.
    let index_at = match suite {
        SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => {
            packet.len() - SRTCP_INDEX_LEN - suite.srtcp_tag_len()
        }
        SrtpSuite::AeadAes128Gcm => packet.len() - SRTCP_INDEX_LEN,
    };
    if packet[index_at] & 0x80 == 0 {
        return Err(SrtpError::UnencryptedSrtcp);
    }
    Ok(u32::from_be_bytes([
        packet[4], packet[5], packet[6], packet[7],
    ]))
}

/// Key comparison without an early exit.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const SSRC: u32 = 0x1234_5678;

    fn key_for(suite: SrtpSuite, seed: u8) -> Vec<u8> {
        (0..suite.key_salt_len() as u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    /// The sending side, as the recording client would run it.
    fn sender(suite: SrtpSuite, key_salt: &[u8]) -> Context {
        let (key, salt) = key_salt.split_at(suite.key_len());
        Context::new(key, salt, profile(suite), None, None).unwrap() // test setup
    }

    fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&u32::from(seq).wrapping_mul(160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// A sender report: header, SSRC and 20 bytes of sender info.
    fn rtcp_sr(ssrc: u32, fill: u8) -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[fill; 20]);
        p
    }

    fn payload(seq: u16) -> Vec<u8> {
        (0..160).map(|i| (i as u16 ^ seq) as u8).collect()
    }

    fn setup(suite: SrtpSuite) -> (Context, SrtpReceiver) {
        let key = key_for(suite, 1);
        (sender(suite, &key), SrtpReceiver::new(suite, &key).unwrap())
    }

    #[test]
    fn rtp_round_trip_each_suite() {
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let mut out = Vec::new();
            for seq in 100..150u16 {
                let plain = rtp(seq, SSRC, &payload(seq));
                let protected = tx.encrypt_rtp(&plain).unwrap();
                assert_eq!(protected.len(), plain.len() + suite.srtp_tag_len());
                assert_ne!(&protected[12..plain.len()], &plain[12..], "{suite}");
                rx.unprotect_rtp(&protected, &mut out).unwrap();
                assert_eq!(out, plain, "{suite}");
            }
            assert_eq!((rx.auth_failures(), rx.replays()), (0, 0));
        }
    }

    #[test]
    fn srtcp_round_trip_each_suite() {
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let mut out = Vec::new();
            for fill in 0..5u8 {
                let plain = rtcp_sr(SSRC, fill);
                let protected = tx.encrypt_rtcp(&plain).unwrap();
                rx.unprotect_rtcp(&protected, &mut out).unwrap();
                assert_eq!(out, plain, "{suite}");
            }
        }
    }

    #[test]
    fn tampered_packets_are_counted_and_the_stream_continues() {
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let mut out = Vec::new();
            let first = tx.encrypt_rtp(&rtp(1, SSRC, &payload(1))).unwrap();
            rx.unprotect_rtp(&first, &mut out).unwrap();

            let mut tampered = tx.encrypt_rtp(&rtp(2, SSRC, &payload(2))).unwrap().to_vec();
            tampered[20] ^= 0x01;
            assert_eq!(
                rx.unprotect_rtp(&tampered, &mut out),
                Err(SrtpError::AuthFailed)
            );
            assert!(out.is_empty());
            // A bit flipped in the clear header is caught too.
            tampered[20] ^= 0x01;
            tampered[1] ^= 0x01;
            assert_eq!(
                rx.unprotect_rtp(&tampered, &mut out),
                Err(SrtpError::AuthFailed)
            );
            assert_eq!(rx.auth_failures(), 2, "{suite}");

            let next = tx.encrypt_rtp(&rtp(3, SSRC, &payload(3))).unwrap();
            rx.unprotect_rtp(&next, &mut out).unwrap();
            assert_eq!(out, rtp(3, SSRC, &payload(3)));

            let mut srtcp = tx.encrypt_rtcp(&rtcp_sr(SSRC, 9)).unwrap().to_vec();
            srtcp[10] ^= 0x80;
            assert_eq!(
                rx.unprotect_rtcp(&srtcp, &mut out),
                Err(SrtpError::AuthFailed)
            );
            assert_eq!(rx.auth_failures(), 3, "{suite}");
        }
    }

    #[test]
    fn wrong_key_fails_authentication() {
        for suite in SrtpSuite::ALL {
            let mut tx = sender(suite, &key_for(suite, 1));
            let mut rx = SrtpReceiver::new(suite, &key_for(suite, 2)).unwrap();
            let protected = tx.encrypt_rtp(&rtp(1, SSRC, &payload(1))).unwrap();
            let mut out = Vec::new();
            assert_eq!(
                rx.unprotect_rtp(&protected, &mut out),
                Err(SrtpError::AuthFailed)
            );
        }
    }

    #[test]
    fn replayed_packets_are_rejected() {
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let mut out = Vec::new();
            let packets: Vec<Bytes> = (10..20u16)
                .map(|seq| tx.encrypt_rtp(&rtp(seq, SSRC, &payload(seq))).unwrap())
                .collect();
            for p in &packets {
                rx.unprotect_rtp(p, &mut out).unwrap();
            }
            assert_eq!(
                rx.unprotect_rtp(&packets[3], &mut out),
                Err(SrtpError::Replay)
            );
            assert_eq!(
                rx.unprotect_rtp(&packets[9], &mut out),
                Err(SrtpError::Replay)
            );
            assert_eq!(rx.replays(), 2, "{suite}");

            // Reordering inside the window is still fine.
            let late = tx.encrypt_rtp(&rtp(21, SSRC, &payload(21))).unwrap();
            let early = tx.encrypt_rtp(&rtp(22, SSRC, &payload(22))).unwrap();
            rx.unprotect_rtp(&early, &mut out).unwrap();
            rx.unprotect_rtp(&late, &mut out).unwrap();

            let srtcp = tx.encrypt_rtcp(&rtcp_sr(SSRC, 1)).unwrap();
            rx.unprotect_rtcp(&srtcp, &mut out).unwrap();
            assert_eq!(rx.unprotect_rtcp(&srtcp, &mut out), Err(SrtpError::Replay));
            assert_eq!(rx.replays(), 3, "{suite}");
        }
    }

    #[test]
    fn packets_older_than_the_window_are_rejected() {
        let (mut tx, mut rx) = setup(SrtpSuite::AesCm128HmacSha1_80);
        let mut out = Vec::new();
        let old = tx.encrypt_rtp(&rtp(1000, SSRC, &payload(0))).unwrap();
        for seq in 1001..1001 + REPLAY_WINDOW as u16 + 1 {
            let p = tx.encrypt_rtp(&rtp(seq, SSRC, &payload(seq))).unwrap();
            rx.unprotect_rtp(&p, &mut out).unwrap();
        }
        assert_eq!(rx.unprotect_rtp(&old, &mut out), Err(SrtpError::Replay));
    }

    #[test]
    fn rollover_past_65535_without_a_gap() {
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let mut out = Vec::new();
            let seqs = (65530..=65535u16).chain(0..=10u16);
            for seq in seqs {
                let plain = rtp(seq, SSRC, &payload(seq));
                let protected = tx.encrypt_rtp(&plain).unwrap();
                rx.unprotect_rtp(&protected, &mut out)
                    .unwrap_or_else(|e| panic!("{suite} seq {seq}: {e}"));
                assert_eq!(out, plain);
            }
            assert_eq!(rx.auth_failures(), 0);
        }
    }

    #[test]
    fn several_rollovers_with_large_steps() {
        // Steps below half the sequence space keep the ROC estimate right across wraps.
        let (mut tx, mut rx) = setup(SrtpSuite::AesCm128HmacSha1_80);
        let mut out = Vec::new();
        let mut seq = 60_000u16;
        for _ in 0..300 {
            let protected = tx.encrypt_rtp(&rtp(seq, SSRC, &payload(seq))).unwrap();
            rx.unprotect_rtp(&protected, &mut out).unwrap();
            seq = seq.wrapping_add(1000);
        }
        assert_eq!(rx.auth_failures(), 0);
    }

    #[test]
    fn reordered_packet_across_the_wrap() {
        let (mut tx, mut rx) = setup(SrtpSuite::AesCm128HmacSha1_80);
        let mut out = Vec::new();
        let p65534 = tx.encrypt_rtp(&rtp(65534, SSRC, &payload(1))).unwrap();
        let p65535 = tx.encrypt_rtp(&rtp(65535, SSRC, &payload(2))).unwrap();
        let p0 = tx.encrypt_rtp(&rtp(0, SSRC, &payload(3))).unwrap();
        let p1 = tx.encrypt_rtp(&rtp(1, SSRC, &payload(4))).unwrap();
        for p in [&p65534, &p0, &p65535, &p1] {
            rx.unprotect_rtp(p, &mut out).unwrap();
        }
    }

    #[test]
    fn rekey_applies_the_new_key_and_retires_the_old_one() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let old_key = key_for(suite, 1);
        let new_key = key_for(suite, 2);
        let mut old_tx = sender(suite, &old_key);
        let mut new_tx = sender(suite, &new_key);
        let mut rx = SrtpReceiver::new(suite, &old_key).unwrap();
        let mut out = Vec::new();

        let p = old_tx.encrypt_rtp(&rtp(1, SSRC, &payload(1))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
        let in_flight = old_tx.encrypt_rtp(&rtp(2, SSRC, &payload(2))).unwrap();

        assert_eq!(rx.rekey(suite, &new_key), Ok(true));
        // Sent before the switch, arriving after it: still decrypted.
        rx.unprotect_rtp(&in_flight, &mut out).unwrap();
        assert_eq!(out, rtp(2, SSRC, &payload(2)));

        let p = new_tx.encrypt_rtp(&rtp(3, SSRC, &payload(3))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
        assert_eq!(out, rtp(3, SSRC, &payload(3)));

        // Once the new key is in use, the old one is gone.
        let stale = old_tx.encrypt_rtp(&rtp(4, SSRC, &payload(4))).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&stale, &mut out),
            Err(SrtpError::AuthFailed)
        );
        assert_eq!(rx.auth_failures(), 1);
        let p = new_tx.encrypt_rtp(&rtp(5, SSRC, &payload(5))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
    }

    #[test]
    fn rekey_to_another_suite() {
        let from = SrtpSuite::AesCm128HmacSha1_80;
        let to = SrtpSuite::AeadAes128Gcm;
        let mut rx = SrtpReceiver::new(from, &key_for(from, 1)).unwrap();
        assert_eq!(rx.rekey(to, &key_for(to, 3)), Ok(true));
        assert_eq!(rx.suite(), to);
        let mut tx = sender(to, &key_for(to, 3));
        let mut out = Vec::new();
        let p = tx.encrypt_rtp(&rtp(7, SSRC, &payload(7))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
        assert_eq!(out, rtp(7, SSRC, &payload(7)));
        assert_eq!(
            rx.rekey(to, &key_for(from, 3)),
            Err(SrtpError::BadKey {
                expected: 28,
                got: 30
            })
        );
        assert_eq!(rx.suite(), to);
    }

    #[test]
    fn same_key_reoffer_keeps_state() {
        let suite = SrtpSuite::AesCm128HmacSha1_32;
        let (mut tx, mut rx) = setup(suite);
        let mut out = Vec::new();
        let p = tx.encrypt_rtp(&rtp(65535, SSRC, &payload(1))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
        assert_eq!(rx.rekey(suite, &key_for(suite, 1)), Ok(false));
        // The replay window survived ...
        assert_eq!(rx.unprotect_rtp(&p, &mut out), Err(SrtpError::Replay));
        // ... and so did the rollover state.
        let p = tx.encrypt_rtp(&rtp(0, SSRC, &payload(2))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
    }

    #[test]
    fn bad_key_length_is_refused() {
        for suite in SrtpSuite::ALL {
            for len in [0, 16, suite.key_salt_len() - 1, suite.key_salt_len() + 1] {
                assert_eq!(
                    SrtpReceiver::new(suite, &vec![0; len]).err(),
                    Some(SrtpError::BadKey {
                        expected: suite.key_salt_len(),
                        got: len
                    })
                );
            }
        }
    }

    #[test]
    fn srtcp_shorter_than_its_minimum_is_an_error() {
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let valid = tx.encrypt_rtcp(&rtcp_sr(SSRC, 0)).unwrap();
            let min = SRTCP_CLEAR_LEN + SRTCP_INDEX_LEN + suite.srtcp_tag_len();
            let mut out = Vec::new();
            for len in 0..min {
                let mut short = vec![0x80, 200, 0, 1, 0, 0, 0, 1];
                short.resize(len, 0xff);
                assert_eq!(
                    rx.unprotect_rtcp(&short, &mut out),
                    Err(SrtpError::TooShort),
                    "{suite} {len}"
                );
                assert_eq!(
                    rx.unprotect_rtcp(&valid[..len], &mut out),
                    Err(SrtpError::TooShort)
                );
            }
            // Exactly the minimum parses and fails authentication rather than panicking.
            let mut at_min = valid[..8].to_vec();
            at_min.resize(min, 0xff);
            assert_eq!(
                rx.unprotect_rtcp(&at_min, &mut out),
                Err(SrtpError::AuthFailed)
            );
        }
    }

    #[test]
    fn unencrypted_srtcp_is_refused() {
        // The crate would return this without checking its tag.
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let (mut tx, mut rx) = setup(suite);
        let mut forged = tx.encrypt_rtcp(&rtcp_sr(SSRC, 0)).unwrap().to_vec();
        let at = forged.len() - SRTCP_INDEX_LEN - suite.srtcp_tag_len();
        forged[at] &= 0x7f;
        let mut out = Vec::new();
        assert_eq!(
            rx.unprotect_rtcp(&forged, &mut out),
            Err(SrtpError::UnencryptedSrtcp)
        );
    }

    #[test]
    fn short_and_malformed_rtp_is_an_error() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let (mut tx, mut rx) = setup(suite);
        let valid = tx.encrypt_rtp(&rtp(1, SSRC, &payload(1))).unwrap();
        let mut out = Vec::new();
        for len in 0..RTP_HEADER_LEN + suite.srtp_tag_len() {
            assert_eq!(
                rx.unprotect_rtp(&valid[..len], &mut out),
                Err(SrtpError::TooShort),
                "{len}"
            );
        }
        let mut v1 = valid.to_vec();
        v1[0] = 0x40;
        assert_eq!(rx.unprotect_rtp(&v1, &mut out), Err(SrtpError::Malformed));
        // 15 CSRCs announced, none present.
        let mut csrcs = valid.to_vec();
        csrcs[0] = 0x8f;
        csrcs.truncate(40);
        assert_eq!(rx.unprotect_rtp(&csrcs, &mut out), Err(SrtpError::TooShort));
    }

    #[test]
    fn header_extensions() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let (mut tx, mut rx) = setup(suite);
        let mut out = Vec::new();
        // A well-formed one-byte extension (id 1, 2 bytes, one padding byte) round-trips.
        let mut plain = rtp(1, SSRC, &[]);
        plain[0] |= 0x10;
        plain.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x11, 0xAA, 0xBB, 0]);
        plain.extend_from_slice(&payload(1));
        let p = tx.encrypt_rtp(&plain).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
        assert_eq!(out, plain);

        // An element running past the end of the packet: the crate's parser would panic.
        for ext in [
            vec![0xBE, 0xDE, 0, 1, 0, 0, 0, 0x1F],
            vec![0xBE, 0xDE, 0, 1, 0xF0, 0, 0, 0],
            vec![0x10, 0x00, 0, 1, 0, 0, 0, 0x05],
            vec![0x10, 0x00, 0, 1, 0, 0, 0x07, 0x10],
        ] {
            let mut crafted = rtp(2, SSRC, &[]);
            crafted[0] |= 0x10;
            crafted.extend_from_slice(&ext);
            crafted.extend_from_slice(&[0; 10]);
            assert_eq!(
                rx.unprotect_rtp(&crafted, &mut out),
                Err(SrtpError::Malformed),
                "{ext:x?}"
            );
        }
        // Extension length beyond the packet.
        let mut crafted = rtp(2, SSRC, &[]);
        crafted[0] |= 0x10;
        crafted.extend_from_slice(&[0x12, 0x34, 0xff, 0xff]);
        crafted.extend_from_slice(&[0; 10]);
        assert_eq!(
            rx.unprotect_rtp(&crafted, &mut out),
            Err(SrtpError::TooShort)
        );
    }

    #[test]
    fn forged_ssrc_spray_creates_bounded_state() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let (mut tx, mut rx) = setup(suite);
        let mut out = Vec::new();
        let good = tx.encrypt_rtp(&rtp(1, SSRC, &payload(1))).unwrap();
        rx.unprotect_rtp(&good, &mut out).unwrap();
        for ssrc in 0..5_000u32 {
            let forged = [rtp(5, ssrc, &payload(5)), vec![0; 10]].concat();
            assert_eq!(
                rx.unprotect_rtp(&forged, &mut out),
                Err(SrtpError::AuthFailed)
            );
            let mut forged_rtcp = rtcp_sr(ssrc, 1);
            forged_rtcp.extend_from_slice(&[0x80, 0, 0, 1]);
            forged_rtcp.extend_from_slice(&[0; 10]);
            assert_eq!(
                rx.unprotect_rtcp(&forged_rtcp, &mut out),
                Err(SrtpError::AuthFailed)
            );
        }
        assert_eq!(rx.auth_failures(), 10_000);
        assert!(rx.current.probed.len() <= PROBE_SSRC_LIMIT);
        assert_eq!(rx.current.known_rtp.len(), 1);
        assert!(rx.current.known_rtcp.is_empty());
        let next = tx.encrypt_rtp(&rtp(2, SSRC, &payload(2))).unwrap();
        rx.unprotect_rtp(&next, &mut out).unwrap();
    }

    #[test]
    fn ssrc_change_is_followed_up_to_the_limit() {
        let suite = SrtpSuite::AeadAes128Gcm;
        let (mut tx, mut rx) = setup(suite);
        let mut out = Vec::new();
        for ssrc in 0..MAX_SSRCS_PER_KEY as u32 {
            let p = tx.encrypt_rtp(&rtp(1, ssrc, &payload(1))).unwrap();
            rx.unprotect_rtp(&p, &mut out).unwrap();
        }
        let p = tx.encrypt_rtp(&rtp(1, 999, &payload(1))).unwrap();
        assert_eq!(rx.unprotect_rtp(&p, &mut out), Err(SrtpError::TooManySsrcs));
        let p = tx.encrypt_rtp(&rtp(2, 0, &payload(2))).unwrap();
        rx.unprotect_rtp(&p, &mut out).unwrap();
    }

    #[test]
    fn mutated_and_random_packets_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for suite in SrtpSuite::ALL {
            let (mut tx, mut rx) = setup(suite);
            let mut out = Vec::new();
            let mut seeds: Vec<Vec<u8>> = Vec::new();
            for seq in 0..8u16 {
                let p = tx.encrypt_rtp(&rtp(seq, SSRC, &payload(seq))).unwrap();
                rx.unprotect_rtp(&p, &mut out).unwrap();
                seeds.push(p.to_vec());
                seeds.push(tx.encrypt_rtcp(&rtcp_sr(SSRC, seq as u8)).unwrap().to_vec());
            }
            let mut ext = rtp(9, SSRC, &[]);
            ext[0] |= 0x10;
            ext.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0x13, 1, 2, 3, 4, 0x20, 9, 9, 9]);
            ext.extend_from_slice(&payload(9));
            seeds.push(tx.encrypt_rtp(&ext).unwrap().to_vec());

            for round in 0..20_000 {
                let mut packet = if round % 10 == 0 {
                    let len = rng.random_range(0..64);
                    (0..len).map(|_| rng.random()).collect()
                } else {
                    seeds[rng.random_range(0..seeds.len())].clone()
                };
                for _ in 0..rng.random_range(0..4) {
                    if packet.is_empty() {
                        break;
                    }
                    match rng.random_range(0..4) {
                        0 => {
                            let i = rng.random_range(0..packet.len());
                            packet[i] ^= 1 << rng.random_range(0..8);
                        }
                        1 => {
                            let i = rng.random_range(0..packet.len());
                            packet[i] = rng.random();
                        }
                        2 => packet.truncate(rng.random_range(0..packet.len())),
                        _ => packet.extend_from_slice(&[rng.random(); 3]),
                    }
                }
                let _ = rx.unprotect_rtp(&packet, &mut out);
                let _ = rx.unprotect_rtcp(&packet, &mut out);
            }
            if round_trip_still_works(&mut tx, &mut rx).is_err() {
                panic!("{suite}: stream broken after mutations");
            }
        }
    }

    fn round_trip_still_works(tx: &mut Context, rx: &mut SrtpReceiver) -> Result<(), SrtpError> {
        let mut out = Vec::new();
        let p = tx.encrypt_rtp(&rtp(20, SSRC, &payload(20))).unwrap();
        rx.unprotect_rtp(&p, &mut out)
    }

    #[test]
    fn debug_shows_no_key_material() {
        let rx = SrtpReceiver::new(SrtpSuite::AeadAes128Gcm, &[0xAB; 28]).unwrap();
        let shown = format!("{rx:?}");
        assert!(shown.contains("AeadAes128Gcm"));
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "));
    }
}
