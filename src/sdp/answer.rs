//! Parse an SDP offer and build the recorder's answer.

use super::PortPool;
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
    /// First storable codec in offer order, if any.
    pub codec: Option<Codec>,
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
    pub codec: Option<Codec>,
    pub telephone_event: Option<(u8, u32)>,
    pub offered_direction: Direction,
    pub answered_direction: Direction,
    pub label: Option<String>,
}

/// Settings of the answerer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConfig {
    pub media_ip: IpAddr,
    /// Whether video is recorded; SPEC §4 default false → video declined with port 0.
    pub accept_video: bool,
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

pub fn parse_offer(body: &[u8]) -> Result<Offer, SdpError> {
    todo!("{}", body.len())
}

/// Answer an initial offer, allocating ports for accepted audio streams from `pool`.
/// On error every port taken is given back.
pub fn answer_offer(
    offer: &Offer,
    cfg: &AnswerConfig,
    pool: &mut PortPool,
    session_id: u64,
) -> Result<MediaSession, AnswerError> {
    todo!("{offer:?} {cfg:?} {session_id} {}", pool.available())
}

/// Apply a re-offer to an existing session. Existing audio streams keep their ports; new
/// audio m= lines get ports; m= lines removed (port 0) release theirs.
pub fn answer_reoffer(
    current: &MediaSession,
    offer: &Offer,
    cfg: &AnswerConfig,
    pool: &mut PortPool,
) -> Result<Update, AnswerError> {
    todo!("{current:?} {offer:?} {cfg:?} {}", pool.available())
}

/// Give back every port the session holds.
pub fn release_ports(session: &MediaSession, pool: &mut PortPool) {
    todo!("{session:?} {}", pool.available())
}
