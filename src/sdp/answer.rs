//! Parse an SDP offer and build the recorder's answer.

use super::PortPool;
use super::crypto::{CryptoAttribute, answer_crypto, choose_crypto};
use rand::CryptoRng;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// What the recorder answers to an offered direction (SPEC §4):
    /// sendonly/sendrecv → recvonly; inactive → inactive; recvonly → inactive.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    Application,
    Other,
}

/// A codec the recorder can store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// `PCMU`, `PCMA`, `G722`, `opus`, `G729` as written in the rtpmap (or the static name).
    pub name: String,
    pub payload_type: u8,
    /// RTP clock rate (8000 for G722 per RFC 3551).
    pub clock_rate: u32,
    pub channels: u8,
}

/// One m= line of an offer, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    pub kind: MediaKind,
    /// The media type token as written (`audio`, `video`, `application`, `image`...).
    pub media_type: String,
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/BFCP` ...
    pub protocol: String,
    /// Payload formats in offer order.
    pub formats: Vec<String>,
    /// Media-level c= address, else the session-level one.
    pub connection: Option<IpAddr>,
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// `a=rtcp:` port if given.
    pub rtcp_port: Option<u16>,
    pub label: Option<String>,
    pub ptime: Option<u32>,
    /// Raw `a=crypto:` values (SRTP is handled by a later layer).
    pub crypto: Vec<String>,
    /// First storable codec in offer order, if any (`codecs[0]`).
    pub codec: Option<Codec>,
    /// Every storable codec of the line, in offer order.
    pub codecs: Vec<Codec>,
    /// `telephone-event` payload type and clock rate, if offered.
    pub telephone_event: Option<(u8, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub origin_username: String,
    pub origin_session_id: String,
    pub origin_version: String,
    pub media: Vec<OfferedMedia>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
}

/// Why no answer could be made: maps onto a SIP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// 488 with a `Warning: 304`/`305` text.
    #[error("not acceptable here: {warning}")]
    NotAcceptable { warning_code: u16, warning: String },
    /// 503: the RTP port pool is exhausted.
    #[error("no free RTP ports")]
    NoPorts,
}

/// The recorder's side of one m= line after negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedStream {
    /// Index of the m= line in the offer.
    pub index: usize,
    pub kind: MediaKind,
    /// `false`: declined with port 0.
    pub accepted: bool,
    /// Allocated RTP port (RTCP = +1 unless muxed); 0 when declined.
    pub local_port: u16,
    pub rtcp_mux: bool,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: u16,
    /// The first answered codec: what the SRC is expected to send first.
    pub codec: Option<Codec>,
    /// Every answered codec, in offer order; the SRC may switch among them at any packet.
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<(u8, u32)>,
    pub offered_direction: Direction,
    pub answered_direction: Direction,
    pub label: Option<String>,
    /// SDES-SRTP when the stream is `RTP/SAVP`: the offerer's key decrypts what it sends.
    pub srtp: Option<SrtpKeys>,
}

/// The keys of an SDES-SRTP stream (RFC 4568). Debug output never shows key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The crypto line chosen from the offer: the sender's key.
    pub remote: CryptoAttribute,
    /// The recorder's own fresh key, sent in the answer.
    pub local: CryptoAttribute,
}

/// SPEC §4 `srtp` policy (`media.srtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Take SRTP when offered with a supported suite, plain RTP otherwise.
    #[default]
    Optional,
    /// Only SRTP: a plain RTP audio line is declined.
    Required,
    /// Only plain RTP: an `RTP/SAVP` line is declined.
    Off,
}

/// Settings of the answerer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConfig {
    pub media_ip: IpAddr,
    /// Whether video is recorded; SPEC §4 default false → video declined with port 0.
    pub accept_video: bool,
    pub srtp: SrtpPolicy,
}

/// The negotiated media session of one dialog: what was answered last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSession {
    /// Our o= session id (fixed for the dialog).
    pub session_id: u64,
    /// Our o= version; incremented on every changed answer.
    pub version: u64,
    /// The remote o= `username sess-id version` of the last applied offer.
    pub remote_origin: (String, String, String),
    pub streams: Vec<NegotiatedStream>,
    /// The current answer SDP text.
    pub answer_sdp: String,
}

/// Result of applying a re-offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Same remote o= version (a session refresh): nothing changes; answer the current SDP.
    Unchanged,
    /// Media changed; the new session (ports of existing streams kept).
    Changed(MediaSession),
}

/// Parse an SDP offer. An offer without m= lines parses (and is then not acceptable).
pub fn parse_offer(body: &[u8]) -> Result<Offer, SdpError> {
    super::offer::parse(body)
}

/// Answer an initial offer, allocating ports for accepted audio streams from `pool` and
/// drawing our SRTP keys from `rng` (the caller's seeded generator: no hidden randomness).
/// On error every port taken is given back.
pub fn answer_offer(
    offer: &Offer,
    cfg: &AnswerConfig,
    pool: &mut PortPool,
    session_id: u64,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<MediaSession, AnswerError> {
    let streams = negotiate(offer, cfg.srtp, pool, rng, |_| None)?;
    let version = 1;
    let answer_sdp = render(session_id, version, cfg.media_ip, offer, &streams);
    Ok(MediaSession {
        session_id,
        version,
        remote_origin: remote_origin(offer),
        streams,
        answer_sdp,
    })
}

/// Apply a re-offer to an existing session. Existing audio streams keep their ports; new
/// audio m= lines get ports; m= lines removed (port 0) release theirs.
///
/// On `Changed`, ports the new session no longer uses are already back in `pool`: the caller
/// must replace `current` with the returned session.
pub fn answer_reoffer(
    current: &MediaSession,
    offer: &Offer,
    cfg: &AnswerConfig,
    pool: &mut PortPool,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Update, AnswerError> {
    let origin = remote_origin(offer);
    if origin == current.remote_origin {
        // RFC 3264 §8: the same o= version means the same SDP (RFC 4028 refresh, retransmit).
        return Ok(Update::Unchanged);
    }
    let kept = |i: usize| {
        current
            .streams
            .get(i)
            .filter(|s| s.accepted && s.local_port != 0)
    };
    let streams = negotiate(offer, cfg.srtp, pool, rng, kept)?;

    for old in current.streams.iter().filter(|s| s.accepted) {
        let still_used = streams
            .get(old.index)
            .is_some_and(|s| s.accepted && s.local_port == old.local_port);
        if !still_used {
            pool.release(old.local_port);
        }
    }

    let same = render(
        current.session_id,
        current.version,
        cfg.media_ip,
        offer,
        &streams,
    );
    let (version, answer_sdp) = if same == current.answer_sdp {
        (current.version, same)
    } else {
        let v = current.version.wrapping_add(1);
        (
            v,
            render(current.session_id, v, cfg.media_ip, offer, &streams),
        )
    };
    Ok(Update::Changed(MediaSession {
        session_id: current.session_id,
        version,
        remote_origin: origin,
        streams,
        answer_sdp,
    }))
}

/// Give back every port the session holds.
pub fn release_ports(session: &MediaSession, pool: &mut PortPool) {
    for s in session.streams.iter().filter(|s| s.accepted) {
        pool.release(s.local_port);
    }
}

fn remote_origin(offer: &Offer) -> (String, String, String) {
    (
        offer.origin_username.clone(),
        offer.origin_session_id.clone(),
        offer.origin_version.clone(),
    )
}

/// Why an m= line is declined; decides the Warning of a 488 when nothing is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decline {
    /// Not audio, or audio with port 0: nothing to negotiate.
    NotAudio,
    /// Audio over a transport the recorder cannot receive (DTLS, SRTP without a usable
    /// suite, or one the `srtp` policy refuses).
    Transport,
    /// Audio without a codec the recorder can store.
    NoCodec,
}

/// Whether the recorder receives this m= line; `Some` crypto line for SRTP.
fn acceptance(m: &OfferedMedia, policy: SrtpPolicy) -> Result<Option<CryptoAttribute>, Decline> {
    if m.kind != MediaKind::Audio || m.port == 0 {
        return Err(Decline::NotAudio);
    }
    let proto = m.protocol.to_ascii_uppercase();
    let crypto = match (proto.as_str(), policy) {
        ("RTP/AVP" | "RTP/AVPF", SrtpPolicy::Required) => return Err(Decline::Transport),
        ("RTP/AVP" | "RTP/AVPF", _) => None,
        ("RTP/SAVP" | "RTP/SAVPF", SrtpPolicy::Off) => return Err(Decline::Transport),
        // An encrypted line without a suite we can decrypt cannot be recorded.
        ("RTP/SAVP" | "RTP/SAVPF", _) => Some(choose_crypto(&m.crypto).ok_or(Decline::Transport)?),
        _ => return Err(Decline::Transport),
    };
    if m.codec.is_none() {
        return Err(Decline::NoCodec);
    }
    Ok(crypto)
}

/// One stream per offered m= line. `kept_port(i)` is the port line `i` already holds.
/// On error every port allocated here is back in `pool`.
fn negotiate<'c>(
    offer: &Offer,
    policy: SrtpPolicy,
    pool: &mut PortPool,
    rng: &mut (impl CryptoRng + ?Sized),
    kept: impl Fn(usize) -> Option<&'c NegotiatedStream>,
) -> Result<Vec<NegotiatedStream>, AnswerError> {
    let mut streams = Vec::with_capacity(offer.media.len());
    let mut fresh: Vec<u16> = Vec::new();
    let mut declines = Vec::new();
    for (index, m) in offer.media.iter().enumerate() {
        let (accepted, crypto) = match acceptance(m, policy) {
            Ok(crypto) => (true, crypto),
            Err(d) => {
                declines.push((d, m));
                (false, None)
            }
        };
        let srtp = crypto.map(|remote| {
            // Keep our key across re-offers of the same suite: a refresh must not change the
            // answer (RFC 4568 allows the answerer to keep its key).
            let local = kept(index)
                .and_then(|k| k.srtp.as_ref())
                .filter(|k| k.local.suite == remote.suite && k.local.tag == remote.tag)
                .map(|k| k.local.clone())
                .unwrap_or_else(|| answer_crypto(&remote, rng).0);
            SrtpKeys { remote, local }
        });
        let local_port = if !accepted {
            0
        } else if let Some(port) = kept(index).map(|k| k.local_port) {
            port
        } else if let Some(port) = pool.allocate() {
            fresh.push(port);
            port
        } else {
            give_back(pool, &fresh);
            return Err(AnswerError::NoPorts);
        };
        streams.push(NegotiatedStream {
            index,
            kind: m.kind,
            accepted,
            local_port,
            rtcp_mux: accepted && m.rtcp_mux,
            remote_addr: m.connection,
            remote_port: m.port,
            // Declined lines carry no codec: nothing is received on them.
            codec: m.codec.clone().filter(|_| accepted),
            codecs: if accepted {
                m.codecs.clone()
            } else {
                Vec::new()
            },
            telephone_event: m.telephone_event.filter(|_| accepted),
            offered_direction: m.direction,
            answered_direction: if accepted {
                m.direction.answer()
            } else {
                Direction::Inactive
            },
            label: m.label.clone(),
            srtp,
        });
    }
    if !streams.iter().any(|s| s.accepted) {
        give_back(pool, &fresh);
        return Err(not_acceptable(&declines));
    }
    Ok(streams)
}

fn give_back(pool: &mut PortPool, ports: &[u16]) {
    for &p in ports {
        pool.release(p);
    }
}

/// RFC 3261 §20.43: 304 when no audio was offered at all, 305 when audio was offered in a
/// form the recorder cannot take.
fn not_acceptable(declines: &[(Decline, &OfferedMedia)]) -> AnswerError {
    let transport = declines.iter().find(|(d, _)| *d == Decline::Transport);
    let no_codec = declines.iter().any(|(d, _)| *d == Decline::NoCodec);
    let (warning_code, warning) = match (transport, no_codec) {
        (_, true) => (
            305,
            format!(
                "Incompatible media format: no offered audio codec is recordable ({})",
                super::codec::storable_names()
            ),
        ),
        (Some((_, m)), false) => (
            305,
            format!(
                "Incompatible media format: audio transport {} is not supported",
                m.protocol
            ),
        ),
        (None, false) => (
            304,
            "Media type not available: no audio stream offered".to_owned(),
        ),
    };
    AnswerError::NotAcceptable {
        warning_code,
        warning,
    }
}

fn render_rtpmap(out: &mut String, c: &Codec) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "a=rtpmap:{} {}/{}",
        c.payload_type, c.name, c.clock_rate
    );
    if c.channels != 1 {
        let _ = write!(out, "/{}", c.channels);
    }
    out.push_str("\r\n");
    if let Some(fmtp) = super::codec::storable_by_name(&c.name).and_then(|s| s.fmtp) {
        let _ = write!(out, "a=fmtp:{} {fmtp}\r\n", c.payload_type);
    }
}

fn ip_family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// The answer text, CRLF line ends. Declined lines keep the offered protocol and one format
/// so that they stay valid m= lines (RFC 3264 §6).
fn render(
    session_id: u64,
    version: u64,
    media_ip: IpAddr,
    offer: &Offer,
    streams: &[NegotiatedStream],
) -> String {
    use std::fmt::Write as _;
    let family = ip_family(media_ip);
    let mut out = String::with_capacity(256 + 160 * streams.len());
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "v=0\r\no=sip-recorder {session_id} {version} IN {family} {media_ip}\r\n\
         s=sip-recorder\r\nc=IN {family} {media_ip}\r\nt=0 0\r\n"
    );
    for (m, s) in offer.media.iter().zip(streams) {
        let Some(codec) = s.codec.as_ref().filter(|_| s.accepted) else {
            let fmt = m.formats.first().map_or_else(
                || if m.protocol.contains("RTP") { "0" } else { "*" },
                String::as_str,
            );
            let _ = write!(out, "m={} 0 {} {fmt}\r\n", m.media_type, m.protocol);
            continue;
        };
        let _ = write!(out, "m={} {} {}", m.media_type, s.local_port, m.protocol);
        // Every storable codec of the offer: the SRC may send any of them (a B2BUA relays
        // whatever the call's legs negotiated), and each packet is decoded by its own type.
        let codecs = if s.codecs.is_empty() {
            std::slice::from_ref(codec)
        } else {
            &s.codecs[..]
        };
        for c in codecs {
            let _ = write!(out, " {}", c.payload_type);
        }
        if let Some((te, _)) = s.telephone_event {
            let _ = write!(out, " {te}");
        }
        out.push_str("\r\n");
        for c in codecs {
            render_rtpmap(&mut out, c);
        }
        if let Some((te, rate)) = s.telephone_event {
            let _ = write!(
                out,
                "a=rtpmap:{te} telephone-event/{rate}\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        if let Some(ptime) = m.ptime {
            let _ = write!(out, "a=ptime:{ptime}\r\n");
        }
        if s.rtcp_mux {
            out.push_str("a=rtcp-mux\r\n");
        }
        if let Some(label) = &s.label {
            let _ = write!(out, "a=label:{label}\r\n");
        }
        if let Some(keys) = &s.srtp {
            let _ = write!(out, "a=crypto:{}\r\n", keys.local.to_sdp_value());
        }
        let _ = write!(out, "a={}\r\n", s.answered_direction.as_str());
    }
    out
}
