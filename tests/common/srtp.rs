//! SDES-SRTP for the tests: offers with `a=crypto`, the answer's crypto line, an SRTP
//! sender built on the plain RTP sender (encryption by `webrtc-srtp`, independent of the
//! recorder's receive path), and checks on the written audio.

use super::rtp::{Codec, RtpSender, Wav, read_wav};
use super::sdp::Media;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    Cm80,
    Cm32,
    Gcm,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Cm80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::Cm32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// Master key plus master salt, as carried in `inline:`.
    pub fn key_salt_len(self) -> usize {
        match self {
            Suite::Cm80 | Suite::Cm32 => 30,
            Suite::Gcm => 28,
        }
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Suite::Cm80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Suite::Cm32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Suite::Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }

    pub fn random_key(self) -> Vec<u8> {
        let mut k = vec![0u8; self.key_salt_len()];
        rand::rng().fill(&mut k[..]);
        k
    }
}

pub fn b64(key: &[u8]) -> String {
    STANDARD.encode(key)
}

/// One `RTP/SAVP` PCMU audio section with one crypto line (tag 1).
pub fn savp_media(port: u16, suite: Suite, key: &[u8], direction: &str) -> String {
    format!(
        "m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=crypto:1 {} inline:{}\r\na={direction}\r\n",
        suite.name(),
        b64(key)
    )
}

/// An offer with one `RTP/SAVP` audio line per (suite, key).
pub fn savp_sdp(version: u64, streams: &[(Suite, &[u8])], direction: &str) -> String {
    let mut sdp = format!(
        "v=0\r\no=client 4242 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    );
    for (i, (suite, key)) in streams.iter().enumerate() {
        sdp.push_str(&savp_media(41000 + 2 * i as u16, *suite, key, direction));
    }
    sdp
}

/// The answer's crypto line of an m= section: (tag, suite name, decoded key||salt).
pub fn answer_crypto(m: &Media) -> (String, String, Vec<u8>) {
    let lines: Vec<&String> = m
        .attrs
        .iter()
        .filter(|a| a.starts_with("crypto:"))
        .collect();
    assert_eq!(lines.len(), 1, "one a=crypto expected in {m:?}");
    let parts: Vec<&str> = lines[0]["crypto:".len()..].split_whitespace().collect();
    assert!(parts.len() >= 3, "bad a=crypto: {}", lines[0]);
    let inline = parts[2]
        .strip_prefix("inline:")
        .unwrap_or_else(|| panic!("no inline key: {}", lines[0]));
    // Lifetime and MKI may follow the key after '|'.
    let key_text = inline.split('|').next().unwrap_or(inline);
    let key = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
    .decode(key_text)
    .unwrap_or_else(|e| panic!("answer key is not base64 ({e}): {}", lines[0]));
    (parts[0].to_string(), parts[1].to_string(), key)
}

/// One SRTP stream: PCMU tone packets from `RtpSender`, renumbered from a chosen sequence
/// number and encrypted with the offered key.
pub struct SrtpSender {
    pub rtp: RtpSender,
    ctx: Context,
    pub suite: Suite,
    pub seq: u16,
    /// Every legitimate encrypted packet sent, in order (for replays).
    pub history: Vec<Vec<u8>>,
    pub legit_sent: u64,
    pub tampered_sent: u64,
    pub replays_sent: u64,
}

impl SrtpSender {
    pub fn new(dest: SocketAddr, tone_hz: f64, suite: Suite, key: &[u8]) -> SrtpSender {
        let rtp = RtpSender::new(Codec::Pcmu, dest, tone_hz);
        let seq = rtp.seq_base;
        SrtpSender {
            rtp,
            ctx: context(suite, key),
            suite,
            seq,
            history: Vec::new(),
            legit_sent: 0,
            tampered_sent: 0,
            replays_sent: 0,
        }
    }

    /// Switches to a new master key; sequence numbers go on.
    pub fn rekey(&mut self, suite: Suite, key: &[u8]) {
        self.ctx = context(suite, key);
        self.suite = suite;
    }

    /// The encrypted packet of `tick` with the next sequence number.
    pub fn packet(&mut self, tick: u64) -> Vec<u8> {
        let mut plain = self.rtp.tone_packet(tick);
        plain[2..4].copy_from_slice(&self.seq.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        self.ctx.encrypt_rtp(&plain).expect("SRTP encrypt").to_vec()
    }

    pub fn send_tone(&mut self, tick: u64) {
        let p = self.packet(tick);
        self.rtp.send_raw(&p);
        self.history.push(p);
        self.legit_sent += 1;
    }

    /// Sends `tick`'s packet twice: first a copy with one payload byte flipped after
    /// encryption (its tag no longer verifies), then the genuine one. The forgery goes
    /// first so that it is judged on its tag, not as a replay of the genuine packet.
    pub fn send_tampered_then_tone(&mut self, tick: u64) {
        let p = self.packet(tick);
        let mut bad = p.clone();
        bad[12 + 10] ^= 0x5a;
        self.rtp.send_raw(&bad);
        self.tampered_sent += 1;
        self.rtp.send_raw(&p);
        self.history.push(p);
        self.legit_sent += 1;
    }

    /// An SRTCP-protected SR (with SDES) counting the genuine packets sent, to `dest`.
    pub fn send_srtcp_sr(&mut self, tick: u64, dest: SocketAddr) {
        let mut plain = self.rtp.sender_report(tick);
        plain[20..24].copy_from_slice(&(self.legit_sent as u32).to_be_bytes());
        let protected = self
            .ctx
            .encrypt_rtcp(&plain)
            .expect("SRTCP encrypt")
            .to_vec();
        self.rtp.send_datagram(&protected, dest);
    }

    /// Resends the genuine packet sent `back` packets ago (1 = the last one).
    pub fn replay(&mut self, back: usize) {
        let p = self.history[self.history.len() - back].clone();
        self.rtp.send_raw(&p);
        self.replays_sent += 1;
    }
}

fn context(suite: Suite, key_salt: &[u8]) -> Context {
    let (key, salt) = key_salt.split_at(16);
    Context::new(key, salt, suite.profile(), None, None).expect("SRTP context")
}

// ---------------------------------------------------------------------------------------
// Checks on recordings

/// The WAV file of stream `i` of a recording.
pub fn stream_wav(dir: &Path, v: &Value, i: usize) -> (PathBuf, Wav) {
    let file = v["streams"][i]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("streams[{i}].file missing: {}", v["streams"]));
    let path = dir.join(file);
    let wav = read_wav(&path).unwrap_or_else(|e| panic!("not a readable WAV: {e}"));
    (path, wav)
}

/// Every file under `dir` whose text contains one of `needles`, with the needle.
pub fn files_containing(dir: &Path, needles: &[String]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let text = String::from_utf8_lossy(&bytes);
                for n in needles {
                    if text.contains(n.as_str()) {
                        out.push((p.clone(), n.clone()));
                    }
                }
            }
        }
    }
    out
}
