//! Configuration: TOML file + command-line overrides, validated (SPEC §2).

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Overwrites `$dst` when the file set the key.
macro_rules! merge {
    ($dst:expr, $src:expr) => {
        if let Some(v) = $src {
            $dst = v;
        }
    };
}

mod file;
mod storage;
mod validate;

// A listener's transport and an allow-list network are the SIP core's notions; the
// configuration names them.
pub use crate::sip::Transport;
pub use crate::sip::source_policy::Cidr;
pub use storage::{ServerSideEncryption, StorageConfig};

/// `udp:IP:PORT` | `tcp:IP:PORT` | `tls:IP:PORT` (IPv6 as `[::1]:5060`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

// `media.pause_policy` is the timeline's own policy, `media.srtp` the answerer's: the cores
// define them, the configuration names them.
pub use crate::media::PausePolicy;
pub use crate::sdp::SrtpPolicy;

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

#[derive(Debug, Clone, PartialEq, Default)]
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
    pub security: SecurityConfig,
    /// `[storage]`: upload finished recordings; `None` keeps them local only.
    pub storage: Option<StorageConfig>,
}

/// Source control (SPEC §7).
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityConfig {
    /// Networks allowed to send SIP; empty allows everyone. Default empty.
    pub allow: Vec<Cidr>,
    /// Refused sources get 403 (`Reply`, default) or nothing (`Drop`).
    pub refused_action: RefusalAction,
    /// Out-of-dialog requests per second per source IP; 0 disables. Default 1000.
    pub rate_limit_per_second: u32,
    /// Requests a source may send at once above the rate. Default 2000.
    pub rate_limit_burst: u32,
    /// Requests over the limit get 503 + Retry-After (`Reply`, default) or nothing.
    pub rate_limited_action: RefusalAction,
    /// Drop requests whose User-Agent names a known scanner, silently. Default true.
    pub drop_scanners: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefusalAction {
    Reply,
    Drop,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            allow: vec![],
            refused_action: RefusalAction::Reply,
            rate_limit_per_second: 1000,
            rate_limit_burst: 2000,
            rate_limited_action: RefusalAction::Reply,
            drop_scanners: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// Default: udp:0.0.0.0:5060 and tcp:0.0.0.0:5060.
    pub listen: Vec<ListenAddr>,
    /// Default 65536.
    pub max_message_size: usize,
    /// Default 128.
    pub max_headers: usize,
    /// RFC 3261 T1 (`sip.t1_ms`), default 500 ms.
    pub t1: Duration,
    /// RFC 3261 T2 (`sip.t2_ms`), default 4000 ms.
    pub t2: Duration,
    /// RFC 4028 Min-SE the recorder accepts, default 90 s.
    pub min_session_expires_secs: u32,
    /// Idle TCP/TLS connections are closed after this (`sip.tcp_idle_timeout_secs`),
    /// default 300 s.
    pub tcp_idle_timeout: Duration,
    /// Default 1024.
    pub max_connections: usize,
    /// Default 64.
    pub max_connections_per_source: usize,
    /// `Server` header value; `None` → no header. Default `Some("sip-recorder")`.
    pub server_header: Option<String>,
    /// PEM certificate chain for `tls:` listeners (required when one is configured).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for `tls:` listeners.
    pub tls_private_key: Option<PathBuf>,
    /// PEM CA bundle: when set, TLS clients must present a certificate it signed.
    pub tls_client_ca: Option<PathBuf>,
    /// A TLS handshake not done within this is dropped (`sip.tls_handshake_timeout_secs`).
    /// Default 10 s.
    pub tls_handshake_timeout: Duration,
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
    /// SDES-SRTP: `optional` (default), `required`, `off` (SPEC §4).
    pub srtp: SrtpPolicy,
    /// `media.media_timeout_secs`, default 60 s.
    pub media_timeout: Duration,
    /// `media.file_sample_rate`: the rate of every stream's file. Default `auto`.
    pub file_sample_rate: FileSampleRate,
    /// `media.workers`: media worker threads polling the RTP sockets. Default `auto`.
    pub workers: MediaWorkerCount,
}

/// `media.workers = "auto" | N`: how many media worker threads receive RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaWorkerCount {
    /// One per core the process may run on.
    #[default]
    Auto,
    Threads(usize),
}

impl MediaWorkerCount {
    /// Largest accepted count: more threads than this only add contention.
    pub const MAX: usize = 256;

    pub fn threads(self) -> usize {
        match self {
            MediaWorkerCount::Threads(n) => n,
            MediaWorkerCount::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for MediaWorkerCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(i64),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Name(n) if n.eq_ignore_ascii_case("auto") => Ok(MediaWorkerCount::Auto),
            // 0 and too many parse, so that validation names the key with the bound.
            Raw::Count(n) if n >= 0 => Ok(MediaWorkerCount::Threads(
                usize::try_from(n).unwrap_or(usize::MAX),
            )),
            Raw::Count(n) => Err(serde::de::Error::custom(format!(
                "{n} is not a number of threads: give \"auto\" or 1 to {}",
                Self::MAX
            ))),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "\"{n}\" is not a number of threads: give \"auto\" or 1 to {}",
                Self::MAX
            ))),
        }
    }
}

/// `media.file_sample_rate = "auto" | 8000 | 16000 | 48000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileSampleRate {
    /// The widest codec a stream was answered with: 16 kHz when G.722 or Opus is in the
    /// answer, else 8 kHz.
    #[default]
    Auto,
    /// One of [`FileSampleRate::ALLOWED`].
    Hz(u32),
}

impl FileSampleRate {
    /// Rates every decoder converts to by an integer ratio.
    pub const ALLOWED: [u32; 3] = [8000, 16000, 48000];

    /// The file rate for a stream whose answered codecs decode at most `widest` Hz.
    pub fn for_widest(self, widest: u32) -> u32 {
        match self {
            FileSampleRate::Hz(hz) => hz,
            FileSampleRate::Auto if widest > 8000 => 16000,
            FileSampleRate::Auto => 8000,
        }
    }
}

impl<'de> serde::Deserialize<'de> for FileSampleRate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Hz(i64),
            Name(String),
        }
        let bad = |v: &dyn fmt::Display| {
            serde::de::Error::custom(format!(
                "{v} is not a file sample rate: give \"auto\", 8000, 16000 or 48000"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Name(n) if n.eq_ignore_ascii_case("auto") => Ok(FileSampleRate::Auto),
            Raw::Name(n) => match n.parse::<u32>() {
                Ok(hz) if Self::ALLOWED.contains(&hz) => Ok(FileSampleRate::Hz(hz)),
                _ => Err(bad(&format!("\"{n}\""))),
            },
            Raw::Hz(hz) => match u32::try_from(hz) {
                Ok(hz) if Self::ALLOWED.contains(&hz) => Ok(FileSampleRate::Hz(hz)),
                _ => Err(bad(&hz)),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    /// Default `./recordings`.
    pub dir: PathBuf,
    /// Default `{yyyy}/{mm}/{dd}/{recording_id}`.
    pub layout: String,
    /// `recording.max_pending_audio_mib`: audio the WAV writer may hold unwritten (a
    /// stalled disk) before new audio is replaced by silence. Default 1024.
    pub max_pending_audio_mib: u64,
}

impl RecordingConfig {
    /// [`max_pending_audio_mib`](Self::max_pending_audio_mib) in bytes.
    pub fn max_pending_audio_bytes(&self) -> u64 {
        self.max_pending_audio_mib.saturating_mul(1 << 20)
    }
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
    /// Records per POST. Default 100.
    pub batch_size: usize,
    /// Whole-request timeout per POST (`cdr.request_timeout_secs`). Default 30 s.
    pub request_timeout: Duration,
    /// Retry backoff cap (`cdr.max_backoff_secs`; retries never stop). Default 30 s.
    pub max_backoff: Duration,
    /// `[[cdr.receiver_options]]`: per-receiver overrides, each naming a listed `url`.
    pub receiver_options: Vec<CdrReceiverOptions>,
    /// Write the optional `IN-ACK-ALEG` EDR lines. Default false.
    pub edr_log_ack: bool,
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            receivers: Vec::new(),
            batch_size: 100,
            request_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
            receiver_options: Vec::new(),
            edr_log_ack: false,
        }
    }
}

/// One `[[cdr.receiver_options]]` table.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrReceiverOptions {
    /// The receiver these options are for, exactly as in `cdr.receivers`.
    pub url: String,
    /// PEM CA bundle; when set the only trust anchor for this receiver.
    pub ca_file: Option<PathBuf>,
    #[serde(
        default,
        rename = "request_timeout_secs",
        deserialize_with = "optional_secs"
    )]
    pub request_timeout: Option<Duration>,
    pub batch_size: Option<usize>,
    #[serde(
        default,
        rename = "max_backoff_secs",
        deserialize_with = "optional_secs"
    )]
    pub max_backoff: Option<Duration>,
}

/// A whole number of seconds in the file, a `Duration` in the configuration.
fn optional_secs<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<u64>::deserialize(de)?.map(Duration::from_secs))
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Default 127.0.0.1:8080.
    pub listen: SocketAddr,
    /// `[[http.users]]`: API users with argon2 password hashes (`sip-recorder
    /// --hash-password`). With no user and no token, the recorder generates a token into
    /// `<spool_dir>/api-token`.
    pub users: Vec<ApiUser>,
    /// `[[http.tokens]]`: static bearer tokens.
    pub tokens: Vec<ApiToken>,
    /// PEM certificate chain and key: when both are set the API is served over HTTPS.
    pub tls_certificate: Option<PathBuf>,
    pub tls_private_key: Option<PathBuf>,
}

/// What an API credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Read recordings, subscribe to events.
    Read,
    /// Also stop recordings.
    Admin,
}

/// One `[[http.users]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiUser {
    pub name: String,
    /// PHC string, `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    pub password_hash: String,
    pub role: ApiRole,
}

/// One `[[http.tokens]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// At least 16 characters.
    pub token: String,
    pub role: ApiRole,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Default 10000.
    pub max_sessions: usize,
    /// `Retry-After` seconds on 503. Default 5.
    pub retry_after_secs: u32,
    /// Refuse new recordings (503) once the recordings disk is this full, in percent.
    /// Default 95.
    pub disk_high_watermark_percent: u8,
    /// Take recordings again once usage is back below this. Default 90.
    pub disk_low_watermark_percent: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownConfig {
    /// How long active recordings continue after SIGTERM (`shutdown.grace_period_secs`).
    /// Default 30 s.
    pub grace_period: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive, default `info`.
    pub level: String,
}

// ---------------------------------------------------------------------------
// Defaults (SPEC §2: with no file and no flags the recorder runs on these)

/// Most CDR receivers a recorder pushes to (SPEC §6).
pub const MAX_CDR_RECEIVERS: usize = 4;

/// Placeholders `recording.layout` may contain, written as `{name}`.
pub const LAYOUT_PLACEHOLDERS: &[&str] = &[
    "yyyy",
    "mm",
    "dd",
    "hh",
    "recording_id",
    "record_id",
    "calluuid",
    "kind",
];

/// Smallest `sip.max_message_size` accepted: below this even a plain INVITE with SDP no
/// longer fits.
pub const MIN_MESSAGE_SIZE: usize = 1024;

/// RFC 4028 §4: Min-SE should not be below 90 s. Smaller values are accepted (with a
/// warning at startup) because lab and test setups need short session timers.
pub const MIN_SESSION_EXPIRES_FLOOR_SECS: u32 = 90;

impl Default for SipConfig {
    fn default() -> Self {
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5060));
        SipConfig {
            listen: vec![
                ListenAddr {
                    transport: Transport::Udp,
                    addr: any,
                },
                ListenAddr {
                    transport: Transport::Tcp,
                    addr: any,
                },
            ],
            max_message_size: 65536,
            max_headers: 128,
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4000),
            min_session_expires_secs: 90,
            tcp_idle_timeout: Duration::from_secs(300),
            max_connections: 1024,
            max_connections_per_source: 64,
            server_header: Some("sip-recorder".to_owned()),
            tls_certificate: None,
            tls_private_key: None,
            tls_client_ca: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_port_min: 20000,
            rtp_port_max: 39999,
            media_ip: None,
            media_source: MediaSource::Strict,
            pause_policy: PausePolicy::Silence,
            srtp: SrtpPolicy::Optional,
            media_timeout: Duration::from_secs(60),
            file_sample_rate: FileSampleRate::Auto,
            workers: MediaWorkerCount::Auto,
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            dir: PathBuf::from("./recordings"),
            layout: "{yyyy}/{mm}/{dd}/{recording_id}".to_owned(),
            max_pending_audio_mib: crate::recording::writer::DEFAULT_MAX_PENDING_BYTES >> 20,
        }
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("./spool"),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            users: Vec::new(),
            tokens: Vec::new(),
            tls_certificate: None,
            tls_private_key: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_sessions: 10000,
            retry_after_secs: 5,
            disk_high_watermark_percent: 95,
            disk_low_watermark_percent: 90,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period: Duration::from_secs(30),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// Small value types: listen addresses, port ranges, log format

/// A `--sip-listen` / `sip.listen` value that is not `udp|tcp|tls:IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid SIP listen address \"{value}\": {reason} \
     (expected udp:IP:PORT, tcp:IP:PORT or tls:IP:PORT; IPv6 as udp:[::1]:5060)"
)]
pub struct ListenAddrError {
    pub value: String,
    pub reason: &'static str,
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ListenAddrError {
            value: s.to_owned(),
            reason,
        };
        let (name, rest) = s
            .split_once(':')
            .ok_or_else(|| err("missing transport prefix"))?;
        let transport = Transport::from_name(name).ok_or_else(|| err("unknown transport"))?;
        let addr = rest
            .parse::<SocketAddr>()
            .map_err(|_| err("not an IP:PORT address"))?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr's Display already brackets IPv6, which keeps this round-trippable.
        let name = self.transport.as_str().to_ascii_lowercase();
        write!(f, "{name}:{}", self.addr)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A `--rtp-ports` value that is not `MIN-MAX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RTP port range \"{0}\": expected MIN-MAX, e.g. 20000-39999")]
pub struct PortRangeError(pub String);

/// Parses `MIN-MAX` (e.g. `20000-39999`). Whether the range is usable is `validate`'s job, so
/// that the file keys and the flag report the same errors.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), PortRangeError> {
    let err = || PortRangeError(s.to_owned());
    let (min, max) = s.split_once('-').ok_or_else(err)?;
    let min = min.trim().parse().map_err(|_| err())?;
    let max = max.trim().parse().map_err(|_| err())?;
    Ok((min, max))
}

/// A `--log-format` value other than `text` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log format \"{0}\": expected text or json")]
pub struct LogFormatError(pub String);

impl FromStr for LogFormat {
    type Err = LogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(LogFormatError(s.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Why a configuration was refused. Every variant names the key (or flag) at fault so an
/// operator can fix it without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TOML at line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("unknown table [{table}] at line {line} (known tables: {known})")]
    UnknownTable {
        table: String,
        line: usize,
        known: String,
    },
    /// `expected` is the list of allowed keys, as serde words it.
    #[error("unknown key \"{key}\" in [{table}] at line {line} ({expected})")]
    UnknownKey {
        table: String,
        key: String,
        line: usize,
        expected: String,
    },
    /// A value of the wrong type or shape; `key` is dotted (`sip.listen`).
    #[error("invalid value for key \"{key}\" at line {line}: {message}")]
    InvalidValue {
        key: String,
        line: usize,
        message: String,
    },
    /// A value that parsed but makes no sense (found by [`Config::validate`]).
    #[error("invalid {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl ConfigError {
    /// The dotted key at fault, where there is one.
    pub fn key(&self) -> Option<String> {
        match self {
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::UnknownTable { table, .. } => Some(table.clone()),
            ConfigError::UnknownKey { table, key, .. } => Some(format!("{table}.{key}")),
            ConfigError::InvalidValue { key, .. } => Some(key.clone()),
            ConfigError::Invalid { key, .. } => Some((*key).to_owned()),
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// Command-line overrides

/// Values given on the command line; each one set replaces the file's value. A non-empty list
/// replaces the whole list (so `--sip-listen` never merges with the file's listeners).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub sip_listen: Vec<ListenAddr>,
    /// `(min, max)` from `--rtp-ports MIN-MAX`.
    pub rtp_ports: Option<(u16, u16)>,
    pub media_ip: Option<IpAddr>,
    pub recordings_dir: Option<PathBuf>,
    pub spool_dir: Option<PathBuf>,
    pub cdr_receivers: Vec<String>,
    pub http_listen: Option<SocketAddr>,
    pub max_sessions: Option<usize>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
}

// ---------------------------------------------------------------------------
// Loading, overriding, validating

impl Config {
    /// Reads and parses a TOML file onto the defaults. Does not validate.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text)
    }

    /// The whole startup sequence: defaults ← file (if any) ← flags, then validation.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut c = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        c.apply_overrides(overrides);
        c.validate()?;
        Ok(c)
    }

    /// Applies command-line values on top of whatever the file said.
    pub fn apply_overrides(&mut self, o: &Overrides) {
        if !o.sip_listen.is_empty() {
            self.sip.listen = o.sip_listen.clone();
        }
        if let Some((min, max)) = o.rtp_ports {
            self.media.rtp_port_min = min;
            self.media.rtp_port_max = max;
        }
        if let Some(ip) = o.media_ip {
            self.media.media_ip = Some(ip);
        }
        if let Some(dir) = &o.recordings_dir {
            self.recording.dir = dir.clone();
        }
        if let Some(dir) = &o.spool_dir {
            self.spool.dir = dir.clone();
        }
        if !o.cdr_receivers.is_empty() {
            self.cdr.receivers = o.cdr_receivers.clone();
        }
        merge!(self.http.listen, o.http_listen);
        merge!(self.limits.max_sessions, o.max_sessions);
        merge!(self.log.format, o.log_format);
        if let Some(level) = &o.log_level {
            self.log.level = level.clone();
        }
    }

    /// The address to put in SDP `c=` lines: `media.media_ip` if set, else the first SIP
    /// listener's IP if it is a concrete address, else the host's primary outbound IP, else
    /// 127.0.0.1.
    pub fn media_ip_for_sdp(&self) -> IpAddr {
        if let Some(ip) = self.media.media_ip {
            return ip;
        }
        if let Some(first) = self.sip.listen.first() {
            let ip = first.addr.ip();
            if !ip.is_unspecified() {
                return ip;
            }
            if ip.is_ipv6() {
                let probe = SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9));
                if let Some(ip) = primary_outbound_ip(probe) {
                    return ip;
                }
            }
        }
        let probe = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9));
        primary_outbound_ip(probe).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// The source address the kernel would pick to reach `probe` (a documentation address).
/// `connect` on a UDP socket sends nothing: it only consults the routing table.
fn primary_outbound_ip(probe: SocketAddr) -> Option<IpAddr> {
    let bind = if probe.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests;
