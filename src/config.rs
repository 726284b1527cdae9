//! Configuration: TOML file + command-line overrides, validated (SPEC §2).
//!
//! CONTRACT — the rest of the crate codes against these names.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

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
pub enum SrtpMode {
    /// SRTP when offered with a supported suite, plain RTP otherwise.
    Optional,
    /// Plain RTP offers get 488.
    Required,
    /// SRTP offers are declined.
    Off,
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
}

/// Source control (SPEC §7).
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityConfig {
    /// CIDRs allowed to send SIP; empty allows everyone. Default empty.
    pub allow: Vec<String>,
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
    /// PEM certificate chain for `tls:` listeners (required when one is configured).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for `tls:` listeners.
    pub tls_private_key: Option<PathBuf>,
    /// PEM CA bundle: when set, TLS clients must present a certificate it signed.
    pub tls_client_ca: Option<PathBuf>,
    /// A TLS handshake not done within this is dropped. Default 10 s.
    pub tls_handshake_timeout_secs: u64,
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
    pub srtp: SrtpMode,
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

#[derive(Debug, Clone, PartialEq, Default)]
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
    /// Refuse new recordings (503) once the recordings disk is this full, in percent.
    /// Default 95.
    pub disk_high_watermark_percent: u8,
    /// Take recordings again once usage is back below this. Default 90.
    pub disk_low_watermark_percent: u8,
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
            t1_ms: 500,
            t2_ms: 4000,
            min_session_expires_secs: 90,
            tcp_idle_timeout_secs: 300,
            max_connections: 1024,
            max_connections_per_source: 64,
            server_header: Some("sip-recorder".to_owned()),
            tls_certificate: None,
            tls_private_key: None,
            tls_client_ca: None,
            tls_handshake_timeout_secs: 10,
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
            srtp: SrtpMode::Optional,
            media_timeout_secs: 60,
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            dir: PathBuf::from("./recordings"),
            layout: "{yyyy}/{mm}/{dd}/{recording_id}".to_owned(),
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
            grace_period_secs: 30,
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

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

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
        let transport = match name.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => return Err(err("unknown transport")),
        };
        let addr = rest
            .parse::<SocketAddr>()
            .map_err(|_| err("not an IP:PORT address"))?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr's Display already brackets IPv6, which keeps this round-trippable.
        write!(f, "{}:{}", transport_name(self.transport), self.addr)
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
// TOML file format: one private struct per table, every key optional, merged onto the
// defaults. Keys are named after the `Config` fields.

/// `media.media_ip` / `sip.server_header` need a way to say "none" in TOML, which has no null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaIpSetting {
    Auto,
    Ip(IpAddr),
}

impl<'de> Deserialize<'de> for MediaIpSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.eq_ignore_ascii_case("auto") {
            return Ok(MediaIpSetting::Auto);
        }
        s.parse().map(MediaIpSetting::Ip).map_err(|_| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not an IP address (or \"auto\" to pick one)"
            ))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SipFile {
    listen: Option<Vec<ListenAddr>>,
    max_message_size: Option<usize>,
    max_headers: Option<usize>,
    t1_ms: Option<u64>,
    t2_ms: Option<u64>,
    min_session_expires_secs: Option<u32>,
    tcp_idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_source: Option<usize>,
    /// `""` → send no `Server` header.
    server_header: Option<String>,
    /// `""` → none.
    tls_certificate: Option<PathBuf>,
    tls_private_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_handshake_timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaFile {
    rtp_port_min: Option<u16>,
    rtp_port_max: Option<u16>,
    media_ip: Option<MediaIpSetting>,
    media_source: Option<MediaSource>,
    pause_policy: Option<PausePolicy>,
    srtp: Option<SrtpMode>,
    media_timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingFile {
    dir: Option<PathBuf>,
    layout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpoolFile {
    dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CdrFile {
    receivers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    listen: Option<SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_sessions: Option<usize>,
    retry_after_secs: Option<u32>,
    disk_high_watermark_percent: Option<u8>,
    disk_low_watermark_percent: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownFile {
    grace_period_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityFile {
    allow: Option<Vec<String>>,
    refused_action: Option<RefusalAction>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    rate_limited_action: Option<RefusalAction>,
    drop_scanners: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    format: Option<LogFormat>,
    level: Option<String>,
}

/// Overwrites `$dst` when the file set the key.
macro_rules! merge {
    ($dst:expr, $src:expr) => {
        if let Some(v) = $src {
            $dst = v;
        }
    };
}

impl SipFile {
    fn merge_into(self, c: &mut SipConfig) {
        merge!(c.listen, self.listen);
        merge!(c.max_message_size, self.max_message_size);
        merge!(c.max_headers, self.max_headers);
        merge!(c.t1_ms, self.t1_ms);
        merge!(c.t2_ms, self.t2_ms);
        merge!(c.min_session_expires_secs, self.min_session_expires_secs);
        merge!(c.tcp_idle_timeout_secs, self.tcp_idle_timeout_secs);
        merge!(c.max_connections, self.max_connections);
        merge!(
            c.max_connections_per_source,
            self.max_connections_per_source
        );
        if let Some(h) = self.server_header {
            c.server_header = (!h.is_empty()).then_some(h);
        }
        let path = |p: PathBuf| (!p.as_os_str().is_empty()).then_some(p);
        if let Some(p) = self.tls_certificate {
            c.tls_certificate = path(p);
        }
        if let Some(p) = self.tls_private_key {
            c.tls_private_key = path(p);
        }
        if let Some(p) = self.tls_client_ca {
            c.tls_client_ca = path(p);
        }
        merge!(
            c.tls_handshake_timeout_secs,
            self.tls_handshake_timeout_secs
        );
    }
}

impl MediaFile {
    fn merge_into(self, c: &mut MediaConfig) {
        merge!(c.rtp_port_min, self.rtp_port_min);
        merge!(c.rtp_port_max, self.rtp_port_max);
        match self.media_ip {
            Some(MediaIpSetting::Auto) => c.media_ip = None,
            Some(MediaIpSetting::Ip(ip)) => c.media_ip = Some(ip),
            None => {}
        }
        merge!(c.media_source, self.media_source);
        merge!(c.pause_policy, self.pause_policy);
        merge!(c.srtp, self.srtp);
        merge!(c.media_timeout_secs, self.media_timeout_secs);
    }
}

const TABLES: &[&str] = &[
    "sip",
    "media",
    "recording",
    "spool",
    "cdr",
    "http",
    "limits",
    "shutdown",
    "log",
    "security",
];

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Deserializes one top-level table, turning serde's errors into ones that name the table,
/// the key and the line.
fn section<T: serde::de::DeserializeOwned>(
    text: &str,
    table: &str,
    value: toml::Spanned<toml::de::DeValue<'_>>,
) -> Result<T, ConfigError> {
    let value_span = value.span();
    let toml::de::DeValue::Table(entries) = value.get_ref() else {
        return Err(ConfigError::InvalidValue {
            key: table.to_owned(),
            line: line_of(text, value_span.start),
            message: format!("expected a table [{table}]"),
        });
    };
    // (name, key span, value span), to map an error's span back to the key it belongs to.
    let keys: Vec<(String, std::ops::Range<usize>, std::ops::Range<usize>)> = entries
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), k.span(), v.span()))
        .collect();
    T::deserialize(toml::de::ValueDeserializer::from(value)).map_err(|e| {
        let span = e.span();
        let line = line_of(text, span.as_ref().unwrap_or(&value_span).start);
        let message = e.message();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let (raw, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let key = span
                .as_ref()
                .and_then(|s| keys.iter().find(|(_, ks, _)| ks == s))
                .map_or(raw, |(name, _, _)| name.as_str());
            return ConfigError::UnknownKey {
                table: table.to_owned(),
                key: key.to_owned(),
                line,
                expected: expected.trim_start_matches(", ").to_owned(),
            };
        }
        let key = span
            .as_ref()
            .and_then(|s| {
                keys.iter()
                    .find(|(_, ks, vs)| ks == s || (vs.start <= s.start && s.end <= vs.end))
            })
            .map_or_else(
                || table.to_owned(),
                |(name, _, _)| format!("{table}.{name}"),
            );
        ConfigError::InvalidValue {
            key,
            line,
            message: message.to_owned(),
        }
    })
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
    /// Parses a TOML document onto the defaults. Does not validate.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let root = toml::de::DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        let mut c = Config::default();
        // Report the first problem in file order, not in the map's key order.
        let mut tables: Vec<_> = root.into_inner().into_iter().collect();
        tables.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in tables {
            let name = key.get_ref().as_ref();
            match name {
                "sip" => section::<SipFile>(text, name, value)?.merge_into(&mut c.sip),
                "media" => section::<MediaFile>(text, name, value)?.merge_into(&mut c.media),
                "recording" => {
                    let f: RecordingFile = section(text, name, value)?;
                    merge!(c.recording.dir, f.dir);
                    merge!(c.recording.layout, f.layout);
                }
                "spool" => {
                    let f: SpoolFile = section(text, name, value)?;
                    merge!(c.spool.dir, f.dir);
                }
                "cdr" => {
                    let f: CdrFile = section(text, name, value)?;
                    merge!(c.cdr.receivers, f.receivers);
                }
                "http" => {
                    let f: HttpFile = section(text, name, value)?;
                    merge!(c.http.listen, f.listen);
                }
                "limits" => {
                    let f: LimitsFile = section(text, name, value)?;
                    merge!(c.limits.max_sessions, f.max_sessions);
                    merge!(c.limits.retry_after_secs, f.retry_after_secs);
                    merge!(
                        c.limits.disk_high_watermark_percent,
                        f.disk_high_watermark_percent
                    );
                    merge!(
                        c.limits.disk_low_watermark_percent,
                        f.disk_low_watermark_percent
                    );
                }
                "shutdown" => {
                    let f: ShutdownFile = section(text, name, value)?;
                    merge!(c.shutdown.grace_period_secs, f.grace_period_secs);
                }
                "security" => {
                    let f: SecurityFile = section(text, name, value)?;
                    merge!(c.security.allow, f.allow);
                    merge!(c.security.refused_action, f.refused_action);
                    merge!(c.security.rate_limit_per_second, f.rate_limit_per_second);
                    merge!(c.security.rate_limit_burst, f.rate_limit_burst);
                    merge!(c.security.rate_limited_action, f.rate_limited_action);
                    merge!(c.security.drop_scanners, f.drop_scanners);
                }
                "log" => {
                    let f: LogFile = section(text, name, value)?;
                    merge!(c.log.format, f.format);
                    merge!(c.log.level, f.level);
                }
                _ => {
                    return Err(ConfigError::UnknownTable {
                        table: name.to_owned(),
                        line: line_of(text, key.span().start),
                        known: TABLES.join(", "),
                    });
                }
            }
        }
        Ok(c)
    }

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

    /// Checks that values which parsed also make sense together. The first problem found is
    /// returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_sip()?;
        self.validate_media()?;
        self.validate_storage()?;
        self.validate_cdr()?;
        self.validate_security()?;
        if self.limits.max_sessions == 0 {
            return Err(invalid("limits.max_sessions", "must be at least 1"));
        }
        if self.limits.disk_high_watermark_percent > 100 {
            return Err(invalid(
                "limits.disk_high_watermark_percent",
                "must be at most 100",
            ));
        }
        if self.limits.disk_low_watermark_percent > self.limits.disk_high_watermark_percent {
            return Err(invalid(
                "limits.disk_low_watermark_percent",
                "must not be above limits.disk_high_watermark_percent",
            ));
        }
        if self.limits.retry_after_secs > 86_400 {
            return Err(invalid(
                "limits.retry_after_secs",
                "must be at most 86400 (one day)",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!("\"{}\" is not a valid filter: {e}", self.log.level),
            ));
        }
        Ok(())
    }

    fn validate_sip(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.listen.is_empty() {
            return Err(invalid("sip.listen", "at least one listener is needed"));
        }
        for (i, a) in s.listen.iter().enumerate() {
            if s.listen[..i].contains(a) {
                return Err(invalid("sip.listen", format!("{a} is listed twice")));
            }
        }
        if s.listen.iter().any(|l| l.transport == Transport::Tls) {
            if s.tls_certificate.is_none() {
                return Err(invalid(
                    "sip.tls_certificate",
                    "a tls: listener needs a certificate",
                ));
            }
            if s.tls_private_key.is_none() {
                return Err(invalid(
                    "sip.tls_private_key",
                    "a tls: listener needs a private key",
                ));
            }
        }
        if s.tls_handshake_timeout_secs == 0 {
            return Err(invalid(
                "sip.tls_handshake_timeout_secs",
                "must be at least 1",
            ));
        }
        if s.max_message_size < MIN_MESSAGE_SIZE {
            return Err(invalid(
                "sip.max_message_size",
                format!("must be at least {MIN_MESSAGE_SIZE} bytes"),
            ));
        }
        if s.max_headers == 0 {
            return Err(invalid("sip.max_headers", "must be at least 1"));
        }
        if s.t1_ms == 0 {
            return Err(invalid("sip.t1_ms", "must be at least 1"));
        }
        if s.t1_ms > s.t2_ms {
            return Err(invalid(
                "sip.t1_ms",
                format!(
                    "T1 ({} ms) must not exceed sip.t2_ms ({} ms)",
                    s.t1_ms, s.t2_ms
                ),
            ));
        }
        if s.min_session_expires_secs == 0 {
            return Err(invalid(
                "sip.min_session_expires_secs",
                "must be at least 1",
            ));
        }
        if s.tcp_idle_timeout_secs == 0 {
            return Err(invalid("sip.tcp_idle_timeout_secs", "must be at least 1"));
        }
        if s.max_connections == 0 {
            return Err(invalid("sip.max_connections", "must be at least 1"));
        }
        if s.max_connections_per_source == 0 {
            return Err(invalid(
                "sip.max_connections_per_source",
                "must be at least 1",
            ));
        }
        if let Some(h) = &s.server_header {
            // It goes verbatim into a header line: a CR or LF would inject headers.
            if h.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "sip.server_header",
                    "must not contain control characters",
                ));
            }
        }
        Ok(())
    }

    fn validate_media(&self) -> Result<(), ConfigError> {
        let m = &self.media;
        let (min, max) = (m.rtp_port_min, m.rtp_port_max);
        if min == 0 {
            return Err(invalid(
                "media.rtp_port_min",
                "RTP port 0 is not a port (--rtp-ports MIN-MAX)",
            ));
        }
        if min > max {
            return Err(invalid(
                "media.rtp_port_min",
                format!(
                    "RTP port range {min}-{max} is inverted: media.rtp_port_min is above \
                     media.rtp_port_max (--rtp-ports MIN-MAX)"
                ),
            ));
        }
        // RTP takes an even port and RTCP the odd one above it, so the range must hold at
        // least one such pair.
        let first_even = u32::from(min) + u32::from(min) % 2;
        if first_even + 1 > u32::from(max) {
            return Err(invalid(
                "media.rtp_port_min",
                format!(
                    "RTP port range {min}-{max} holds no even RTP port with its RTCP port \
                     above it (--rtp-ports MIN-MAX)"
                ),
            ));
        }
        if let Some(ip) = m.media_ip {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(invalid(
                    "media.media_ip",
                    format!("{ip} cannot be put in an SDP answer; give a unicast address"),
                ));
            }
        }
        if m.media_timeout_secs == 0 {
            return Err(invalid("media.media_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_storage(&self) -> Result<(), ConfigError> {
        if self.recording.dir.as_os_str().is_empty() {
            return Err(invalid("recording.dir", "must not be empty"));
        }
        if let Err(msg) = check_layout(&self.recording.layout) {
            return Err(invalid("recording.layout", msg));
        }
        if self.spool.dir.as_os_str().is_empty() {
            return Err(invalid("spool.dir", "must not be empty"));
        }
        Ok(())
    }

    fn validate_security(&self) -> Result<(), ConfigError> {
        for cidr in &self.security.allow {
            if let Err(e) = cidr.parse::<crate::sip::source_policy::Cidr>() {
                return Err(invalid("security.allow", e));
            }
        }
        if self.security.rate_limit_per_second > 0 && self.security.rate_limit_burst == 0 {
            return Err(invalid(
                "security.rate_limit_burst",
                "must be at least 1 with a rate limit",
            ));
        }
        Ok(())
    }

    fn validate_cdr(&self) -> Result<(), ConfigError> {
        let r = &self.cdr.receivers;
        if r.len() > MAX_CDR_RECEIVERS {
            return Err(invalid(
                "cdr.receivers",
                format!(
                    "{} receivers given, at most {MAX_CDR_RECEIVERS} are allowed (--cdr-receiver)",
                    r.len()
                ),
            ));
        }
        for (i, url) in r.iter().enumerate() {
            if let Err(why) = check_http_url(url) {
                return Err(invalid("cdr.receivers", format!("\"{url}\" {why}")));
            }
            if r[..i].contains(url) {
                return Err(invalid(
                    "cdr.receivers",
                    format!("\"{url}\" is listed twice"),
                ));
            }
        }
        Ok(())
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

/// A layout is a relative path template; only known placeholders may appear, and it must
/// contain `{recording_id}`, the one value guaranteed unique per recording (the others come
/// from the network and may repeat or be missing).
fn check_layout(layout: &str) -> Result<(), String> {
    if layout.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    let mut rest = layout;
    let mut literal = String::new();
    let mut has_id = false;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        if rest[i..].starts_with('}') {
            return Err(format!("unbalanced '}}' in \"{layout}\""));
        }
        let Some(end) = rest[i..].find('}') else {
            return Err(format!("unclosed '{{' in \"{layout}\""));
        };
        let name = &rest[i + 1..i + end];
        if !LAYOUT_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} in \"{layout}\" (allowed: {})",
                LAYOUT_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        has_id |= name == "recording_id";
        // Stand-in so the path check below sees one normal component per placeholder.
        literal.push('x');
        rest = &rest[i + end + 1..];
    }
    literal.push_str(rest);
    let escapes = Path::new(&literal).components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    });
    if escapes {
        return Err(format!(
            "\"{layout}\" must be a relative path that stays inside recording.dir (no '/' at \
             the start, no '..')"
        ));
    }
    if !has_id {
        return Err(format!(
            "\"{layout}\" must contain {{recording_id}} so that recordings never share a \
             directory"
        ));
    }
    Ok(())
}

fn check_http_url(url: &str) -> Result<(), &'static str> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or("is not an http:// or https:// URL")?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text)
    }

    fn la(s: &str) -> ListenAddr {
        s.parse().unwrap()
    }

    /// The key a validation failure names, after `f` broke a valid default config.
    fn invalid_key(f: impl FnOnce(&mut Config)) -> &'static str {
        let mut c = Config::default();
        f(&mut c);
        match c.validate() {
            Err(ConfigError::Invalid { key, message }) => {
                let shown = c.validate().unwrap_err().to_string();
                assert!(shown.contains(key) && shown.contains(&message), "{shown}");
                key
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = Config::default();
        assert_eq!(
            c.sip.listen,
            vec![la("udp:0.0.0.0:5060"), la("tcp:0.0.0.0:5060")]
        );
        assert_eq!(c.sip.max_message_size, 65536);
        assert_eq!(c.sip.max_headers, 128);
        assert_eq!((c.sip.t1_ms, c.sip.t2_ms), (500, 4000));
        assert_eq!(c.sip.min_session_expires_secs, 90);
        assert_eq!(c.sip.tcp_idle_timeout_secs, 300);
        assert_eq!(c.sip.max_connections, 1024);
        assert_eq!(c.sip.max_connections_per_source, 64);
        assert_eq!(c.sip.server_header.as_deref(), Some("sip-recorder"));
        assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (20000, 39999));
        assert_eq!(c.media.media_ip, None);
        assert_eq!(c.media.media_source, MediaSource::Strict);
        assert_eq!(c.media.pause_policy, PausePolicy::Silence);
        assert_eq!(c.media.media_timeout_secs, 60);
        assert_eq!(c.recording.dir, PathBuf::from("./recordings"));
        assert_eq!(c.recording.layout, "{yyyy}/{mm}/{dd}/{recording_id}");
        assert_eq!(c.spool.dir, PathBuf::from("./spool"));
        assert!(c.cdr.receivers.is_empty());
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.limits.max_sessions, 10000);
        assert_eq!(c.limits.retry_after_secs, 5);
        assert_eq!(c.shutdown.grace_period_secs, 30);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.log.level, "info");
        c.validate().unwrap();
        assert_eq!(parse("").unwrap(), c);
    }

    #[test]
    fn example_file_lists_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sip-recorder.toml");
        let c = Config::from_file(&path).unwrap();
        c.validate().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn example_file_shows_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sip-recorder.toml");
        let example = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for table in TABLES {
            // serde lists a table's allowed keys when it meets an unknown one.
            let ConfigError::UnknownKey { expected, .. } =
                parse(&format!("[{table}]\nno_such_key = 1\n")).unwrap_err()
            else {
                panic!("expected UnknownKey for [{table}]");
            };
            let body = text.split(&format!("[{table}]\n")).nth(1).unwrap();
            let body = body.split("\n[").next().unwrap();
            for key in expected.split('`').skip(1).step_by(2) {
                assert!(
                    body.lines().any(|l| l.starts_with(&format!("{key} = "))),
                    "config/sip-recorder.toml does not show {table}.{key}"
                );
            }
        }
        assert_eq!(example, Config::default());
    }

    #[test]
    fn every_key_is_read_from_the_file() {
        let c = parse(
            r#"
            [sip]
            listen = ["udp:10.0.0.1:5070", "tls:[::1]:5061"]
            max_message_size = 2048
            max_headers = 10
            t1_ms = 100
            t2_ms = 200
            min_session_expires_secs = 120
            tcp_idle_timeout_secs = 7
            max_connections = 8
            max_connections_per_source = 2
            server_header = ""
            tls_certificate = "/etc/sip-recorder/cert.pem"
            tls_private_key = "/etc/sip-recorder/key.pem"
            tls_client_ca = ""
            tls_handshake_timeout_secs = 3
            [media]
            rtp_port_min = 30000
            rtp_port_max = 30009
            media_ip = "192.0.2.7"
            media_source = "learn"
            pause_policy = "skip"
            media_timeout_secs = 9
            [recording]
            dir = "/var/rec"
            layout = "{kind}/{recording_id}"
            [spool]
            dir = "/var/spool/rec"
            [cdr]
            receivers = ["http://a/cdr", "https://b:8443/cdr"]
            [http]
            listen = "[::1]:9090"
            [limits]
            max_sessions = 3
            retry_after_secs = 11
            [shutdown]
            grace_period_secs = 0
            [log]
            format = "json"
            level = "debug"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.sip.listen,
            vec![la("udp:10.0.0.1:5070"), la("tls:[::1]:5061")]
        );
        assert_eq!(c.sip.max_message_size, 2048);
        assert_eq!(c.sip.max_headers, 10);
        assert_eq!((c.sip.t1_ms, c.sip.t2_ms), (100, 200));
        assert_eq!(c.sip.min_session_expires_secs, 120);
        assert_eq!(c.sip.tcp_idle_timeout_secs, 7);
        assert_eq!(c.sip.max_connections, 8);
        assert_eq!(c.sip.max_connections_per_source, 2);
        assert_eq!(c.sip.server_header, None);
        assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (30000, 30009));
        assert_eq!(c.media.media_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(c.media.media_source, MediaSource::Learn);
        assert_eq!(c.media.pause_policy, PausePolicy::Skip);
        assert_eq!(c.media.media_timeout_secs, 9);
        assert_eq!(c.recording.dir, PathBuf::from("/var/rec"));
        assert_eq!(c.recording.layout, "{kind}/{recording_id}");
        assert_eq!(c.spool.dir, PathBuf::from("/var/spool/rec"));
        assert_eq!(c.cdr.receivers, ["http://a/cdr", "https://b:8443/cdr"]);
        assert_eq!(c.http.listen, "[::1]:9090".parse().unwrap());
        assert_eq!(c.limits.max_sessions, 3);
        assert_eq!(c.limits.retry_after_secs, 11);
        assert_eq!(c.shutdown.grace_period_secs, 0);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "debug");
    }

    #[test]
    fn dotted_keys_and_auto_media_ip() {
        let c = parse("media.media_ip = \"auto\"\nsip.t1_ms = 250\n").unwrap();
        assert_eq!(c.media.media_ip, None);
        assert_eq!(c.sip.t1_ms, 250);
    }

    #[test]
    fn unknown_key_names_key_table_and_line() {
        let text = "# comment\n[sip]\nt1_ms = 500\n\nfoo = 1\n";
        let e = parse(text).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, ConfigError::UnknownKey { table, key, line: 5, .. }
            if table == "sip" && key == "foo"),
            "{e:?}"
        );
        assert!(
            msg.contains("unknown key \"foo\" in [sip] at line 5"),
            "{msg}"
        );
        assert!(msg.contains("t2_ms"), "should list the allowed keys: {msg}");
        assert_eq!(e.key().as_deref(), Some("sip.foo"));
    }

    #[test]
    fn unknown_key_in_later_table_and_dotted_form() {
        let e = parse("[log]\nlevel = \"info\"\n[limits]\nmax_sesions = 1\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("\"max_sesions\" in [limits] at line 4"),
            "{e}"
        );
        let e = parse("\n\nmedia.rtp_ports = \"1-2\"\n").unwrap_err();
        assert!(
            e.to_string().contains("\"rtp_ports\" in [media] at line 3"),
            "{e}"
        );
    }

    #[test]
    fn first_error_in_file_order_is_reported() {
        let e = parse("[sip]\nbad = 1\n[http]\nbad = 1\n").unwrap_err();
        assert!(e.to_string().contains("[sip] at line 2"), "{e}");
    }

    #[test]
    fn unknown_table_names_table_and_line() {
        let e = parse("[sip]\n\n[recordings]\ndir = \"x\"\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownTable { table, line: 3, .. } if table == "recordings"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("unknown table [recordings] at line 3"),
            "{e}"
        );
        let e = parse("[sip.extra]\nx = 1\n").unwrap_err();
        assert!(
            e.to_string().contains("\"extra\" in [sip] at line 1"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let cases = [
            ("[sip]\n\nt1_ms = \"fast\"\n", "sip.t1_ms", 3),
            ("[sip]\nlisten = \"udp:1.2.3.4:5060\"\n", "sip.listen", 2),
            (
                "[sip]\nlisten = [\"udp:1.2.3.4:5060\", \"foo\"]\n",
                "sip.listen",
                2,
            ),
            ("[media]\nrtp_port_max = 70000\n", "media.rtp_port_max", 2),
            (
                "[media]\npause_policy = \"mute\"\n",
                "media.pause_policy",
                2,
            ),
            ("[media]\nmedia_source = \"any\"\n", "media.media_source", 2),
            ("[media]\nmedia_ip = \"1.2.3\"\n", "media.media_ip", 2),
            ("[cdr]\nreceivers = \"http://x\"\n", "cdr.receivers", 2),
            ("[http]\nlisten = \"localhost\"\n", "http.listen", 2),
            ("[limits]\nmax_sessions = -1\n", "limits.max_sessions", 2),
            ("[log]\nformat = \"xml\"\n", "log.format", 2),
            ("sip = 5\n", "sip", 1),
        ];
        for (text, key, line) in cases {
            let e = parse(text).unwrap_err();
            match &e {
                ConfigError::InvalidValue {
                    key: k, line: l, ..
                } => {
                    assert_eq!((k.as_str(), *l), (key, line), "{text}: {e}");
                }
                other => panic!("{text}: expected InvalidValue, got {other:?}"),
            }
            let msg = e.to_string();
            assert!(
                msg.contains(key) && msg.contains(&format!("line {line}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn syntax_error_names_line() {
        let e = parse("[sip]\nt1_ms = 1\nt1_ms = 2\n").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e:?}");
        let e = parse("[sip\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let e = Config::from_file(Path::new("/nonexistent/sip-recorder.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(
            e.to_string().contains("/nonexistent/sip-recorder.toml"),
            "{e}"
        );
    }

    #[test]
    fn each_override_replaces_the_file_value() {
        let mut c = parse(
            "[sip]\nlisten = [\"udp:1.1.1.1:5060\", \"tcp:1.1.1.1:5060\"]\n\
             tls_certificate = \"/c.pem\"\ntls_private_key = \"/k.pem\"\n\
             [cdr]\nreceivers = [\"http://a/\", \"http://b/\"]\n",
        )
        .unwrap();
        let o = Overrides {
            sip_listen: vec![la("tls:[::]:5061")],
            rtp_ports: Some((40000, 40099)),
            media_ip: Some("198.51.100.1".parse().unwrap()),
            recordings_dir: Some("/r".into()),
            spool_dir: Some("/s".into()),
            cdr_receivers: vec!["https://c/".into()],
            http_listen: Some("0.0.0.0:9000".parse().unwrap()),
            max_sessions: Some(7),
            log_format: Some(LogFormat::Json),
            log_level: Some("warn".into()),
        };
        c.apply_overrides(&o);
        assert_eq!(c.sip.listen, vec![la("tls:[::]:5061")]);
        assert_eq!((c.media.rtp_port_min, c.media.rtp_port_max), (40000, 40099));
        assert_eq!(c.media.media_ip, Some("198.51.100.1".parse().unwrap()));
        assert_eq!(c.recording.dir, PathBuf::from("/r"));
        assert_eq!(c.spool.dir, PathBuf::from("/s"));
        assert_eq!(c.cdr.receivers, ["https://c/"]);
        assert_eq!(c.http.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.limits.max_sessions, 7);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "warn");
        c.validate().unwrap();
    }

    #[test]
    fn empty_overrides_change_nothing() {
        let file = parse("[sip]\nlisten = [\"udp:1.1.1.1:5060\"]\n").unwrap();
        let mut c = file.clone();
        c.apply_overrides(&Overrides::default());
        assert_eq!(c, file);
    }

    #[test]
    fn load_applies_file_then_flags_then_validates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[limits]\nmax_sessions = 5\nretry_after_secs = 9\n").unwrap();
        let o = Overrides {
            max_sessions: Some(6),
            ..Overrides::default()
        };
        let c = Config::load(Some(&path), &o).unwrap();
        assert_eq!((c.limits.max_sessions, c.limits.retry_after_secs), (6, 9));
        let o = Overrides {
            rtp_ports: Some((3000, 2000)),
            ..Overrides::default()
        };
        let e = Config::load(None, &o).unwrap_err();
        assert_eq!(e.key().as_deref(), Some("media.rtp_port_min"));
    }

    #[test]
    fn each_validation_error_names_its_key() {
        fn ports(c: &mut Config, min: u16, max: u16) {
            (c.media.rtp_port_min, c.media.rtp_port_max) = (min, max);
        }
        fn layout(c: &mut Config, l: &str) {
            c.recording.layout = l.to_owned();
        }
        fn cdr(c: &mut Config, urls: &[&str]) {
            c.cdr.receivers = urls.iter().map(|u| u.to_string()).collect();
        }
        type Breaker = fn(&mut Config);
        let cases: &[(&str, Breaker)] = &[
            ("sip.listen", |c| c.sip.listen.clear()),
            ("sip.listen", |c| c.sip.listen.push(c.sip.listen[0])),
            ("sip.max_message_size", |c| c.sip.max_message_size = 100),
            ("sip.max_headers", |c| c.sip.max_headers = 0),
            ("sip.t1_ms", |c| c.sip.t1_ms = 0),
            ("sip.t1_ms", |c| c.sip.t1_ms = 5000),
            ("sip.min_session_expires_secs", |c| {
                c.sip.min_session_expires_secs = 0
            }),
            ("sip.tcp_idle_timeout_secs", |c| {
                c.sip.tcp_idle_timeout_secs = 0
            }),
            ("sip.max_connections", |c| c.sip.max_connections = 0),
            ("sip.max_connections_per_source", |c| {
                c.sip.max_connections_per_source = 0
            }),
            ("sip.server_header", |c| {
                c.sip.server_header = Some("x\r\nEvil: 1".into())
            }),
            ("media.rtp_port_min", |c| ports(c, 0, 100)),
            ("media.rtp_port_min", |c| ports(c, 3000, 2000)),
            // No even RTP port with its RTCP port inside the range.
            ("media.rtp_port_min", |c| ports(c, 3000, 3000)),
            ("media.rtp_port_min", |c| ports(c, 3001, 3002)),
            ("media.rtp_port_min", |c| ports(c, 65535, 65535)),
            ("media.media_ip", |c| c.media.media_ip = Some([0; 4].into())),
            ("media.media_ip", |c| {
                c.media.media_ip = Some([239, 1, 1, 1].into())
            }),
            ("media.media_timeout_secs", |c| {
                c.media.media_timeout_secs = 0
            }),
            ("recording.dir", |c| c.recording.dir = PathBuf::new()),
            ("recording.layout", |c| {
                layout(c, "{yyyy}/{callid}/{recording_id}")
            }),
            ("recording.layout", |c| layout(c, "{yyyy}/{mm}")),
            ("recording.layout", |c| layout(c, "../{recording_id}")),
            ("recording.layout", |c| layout(c, "/abs/{recording_id}")),
            ("recording.layout", |c| layout(c, "{recording_id")),
            ("recording.layout", |c| layout(c, "a}/{recording_id}")),
            ("recording.layout", |c| layout(c, " ")),
            ("spool.dir", |c| c.spool.dir = PathBuf::new()),
            ("cdr.receivers", |c| {
                cdr(
                    c,
                    &[
                        "http://a/",
                        "http://b/",
                        "http://c/",
                        "http://d/",
                        "http://e/",
                    ],
                )
            }),
            ("cdr.receivers", |c| cdr(c, &["ftp://h/"])),
            ("cdr.receivers", |c| cdr(c, &["h:80/cdr"])),
            ("cdr.receivers", |c| cdr(c, &["http:///cdr"])),
            ("cdr.receivers", |c| cdr(c, &["http://h/a b"])),
            ("cdr.receivers", |c| cdr(c, &["http://h/", "http://h/"])),
            ("limits.max_sessions", |c| c.limits.max_sessions = 0),
            ("limits.retry_after_secs", |c| {
                c.limits.retry_after_secs = 100_000
            }),
            ("log.level", |c| c.log.level = "sip_recorder=loud".into()),
        ];
        for (want, break_it) in cases {
            assert_eq!(invalid_key(break_it), *want);
        }
    }

    #[test]
    fn borderline_values_are_accepted() {
        let mut c = Config::default();
        (c.media.rtp_port_min, c.media.rtp_port_max) = (3000, 3001);
        c.cdr.receivers = (1..=4)
            .map(|i| format!("HTTPS://user@h{i}:8443/cdr?x=1"))
            .collect();
        c.recording.layout = "./{kind}/{record_id}-{recording_id}/{hh}".into();
        c.sip.t2_ms = c.sip.t1_ms;
        c.media.media_ip = Some("::1".parse().unwrap());
        c.validate().unwrap();
    }

    #[test]
    fn inverted_port_range_message_says_rtp_ports() {
        let mut c = Config::default();
        c.apply_overrides(&Overrides {
            rtp_ports: Some(parse_port_range("3000-2000").unwrap()),
            ..Overrides::default()
        });
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("rtp_port") && msg.contains("3000-2000"),
            "{msg}"
        );
    }

    #[test]
    fn listen_addr_parses_and_round_trips() {
        let a = la("udp:0.0.0.0:5060");
        assert_eq!(
            (a.transport, a.addr),
            (Transport::Udp, "0.0.0.0:5060".parse().unwrap())
        );
        let a = la("tcp:[::1]:5060");
        assert_eq!(
            (a.transport, a.addr),
            (Transport::Tcp, "[::1]:5060".parse().unwrap())
        );
        assert_eq!(la("TLS:10.1.2.3:5061").transport, Transport::Tls);
        for s in ["udp:0.0.0.0:5060", "tcp:[::1]:5060", "tls:[fe80::1%2]:5061"] {
            assert_eq!(la(s).to_string(), s);
            assert_eq!(la(&la(s).to_string()), la(s));
        }
    }

    #[test]
    fn listen_addr_errors_name_the_value() {
        for bad in [
            "foo",
            "udp",
            "sctp:1.2.3.4:5060",
            "udp:1.2.3.4",
            "udp:::1:5060",
            "udp:1.2.3.4:70000",
            "udp:host.example:5060",
            "[::1]:5060",
            "",
        ] {
            let e = bad.parse::<ListenAddr>().unwrap_err();
            assert!(e.to_string().contains(&format!("\"{bad}\"")), "{e}");
            assert_eq!(e.value, bad);
        }
    }

    #[test]
    fn port_range_parsing() {
        assert_eq!(parse_port_range("20000-39999"), Ok((20000, 39999)));
        assert_eq!(parse_port_range(" 1 - 3 "), Ok((1, 3)));
        for bad in ["20000", "a-b", "1-70000", "-5", "1-2-3"] {
            let e = parse_port_range(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn log_format_parsing() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("Text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!(
            "xml"
                .parse::<LogFormat>()
                .unwrap_err()
                .to_string()
                .contains("xml")
        );
        assert_eq!(LogFormat::Json.to_string(), "json");
    }

    #[test]
    fn media_ip_for_sdp_prefers_explicit_then_listener() {
        let mut c = Config::default();
        c.media.media_ip = Some("203.0.113.5".parse().unwrap());
        assert_eq!(
            c.media_ip_for_sdp(),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        c.media.media_ip = None;
        c.sip.listen = vec![la("tcp:198.51.100.9:5060"), la("udp:10.0.0.1:5060")];
        assert_eq!(
            c.media_ip_for_sdp(),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn media_ip_for_sdp_never_returns_unspecified() {
        for listen in ["udp:0.0.0.0:5060", "udp:[::]:5060"] {
            let mut c = Config::default();
            c.sip.listen = vec![la(listen)];
            assert!(!c.media_ip_for_sdp().is_unspecified());
        }
    }
}
