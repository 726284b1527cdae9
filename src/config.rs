//! Configuration: TOML file + command-line overrides, validated (SPEC §2).
//!
//! CONTRACT — the rest of the crate codes against these names.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// `udp:IP:PORT` | `tcp:IP:PORT` | `tls:IP:PORT` (IPv6 as `[::1]:5060`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PausePolicy {
    Silence,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaSource {
    /// Only from the SDP's address.
    Strict,
    /// Learn the source from the first packet (SRCs behind NAT).
    Learn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub recording: RecordingConfig,
    pub spool: SpoolConfig,
    pub cdr: CdrConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// Default: udp:0.0.0.0:5060 and tcp:0.0.0.0:5060.
    pub listen: Vec<ListenAddr>,
    /// Default 65536.
    pub max_message_size: usize,
    /// Default 128.
    pub max_headers: usize,
    /// RFC 3261 T1, default 500 ms.
    pub t1_ms: u64,
    /// RFC 3261 T2, default 4000 ms.
    pub t2_ms: u64,
    /// RFC 4028 Min-SE the recorder accepts, default 90 s.
    pub min_session_expires_secs: u32,
    /// Idle TCP/TLS connections are closed after this, default 300 s.
    pub tcp_idle_timeout_secs: u64,
    /// Default 1024.
    pub max_connections: usize,
    /// Default 64.
    pub max_connections_per_source: usize,
    /// `Server` header value; `None` → no header. Default `Some("sip-recorder")`.
    pub server_header: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// Default 20000.
    pub rtp_port_min: u16,
    /// Default 39999.
    pub rtp_port_max: u16,
    /// Address put in SDP answers. Default: the IP of the first listener if not unspecified,
    /// else the host's primary outbound IP (resolved at startup), else 127.0.0.1.
    pub media_ip: Option<IpAddr>,
    pub media_source: MediaSource,
    pub pause_policy: PausePolicy,
    /// Default 60.
    pub media_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    /// Default `./recordings`.
    pub dir: PathBuf,
    /// Default `{yyyy}/{mm}/{dd}/{recording_id}`.
    pub layout: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpoolConfig {
    /// Default `./spool`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CdrConfig {
    /// At most 4 URLs.
    pub receivers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Default 127.0.0.1:8080.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Default 10000.
    pub max_sessions: usize,
    /// `Retry-After` seconds on 503. Default 5.
    pub retry_after_secs: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownConfig {
    /// How long active recordings continue after SIGTERM. Default 30 s.
    pub grace_period_secs: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive, default `info`.
    pub level: String,
}
