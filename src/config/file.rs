//! The TOML file format: private per-table structs, table-by-table parsing, error line numbers.

use super::{
    CdrConfig, Cidr, Config, ConfigError, FileSampleRate, HttpConfig, LimitsConfig, ListenAddr,
    LogFormat, MediaConfig, MediaSource, MediaWorkerCount, PausePolicy, RefusalAction,
    SecurityConfig, SipConfig, SrtpPolicy,
};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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
    srtp: Option<SrtpPolicy>,
    media_timeout_secs: Option<u64>,
    file_sample_rate: Option<FileSampleRate>,
    workers: Option<MediaWorkerCount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingFile {
    dir: Option<PathBuf>,
    layout: Option<String>,
    max_pending_audio_mib: Option<u64>,
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
    batch_size: Option<usize>,
    request_timeout_secs: Option<u64>,
    max_backoff_secs: Option<u64>,
    receiver_options: Option<Vec<super::CdrReceiverOptions>>,
    edr_log_ack: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    listen: Option<SocketAddr>,
    users: Option<Vec<super::ApiUser>>,
    tokens: Option<Vec<super::ApiToken>>,
    tls_certificate: Option<PathBuf>,
    tls_private_key: Option<PathBuf>,
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
    allow: Option<Vec<Cidr>>,
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

impl SipFile {
    fn merge_into(self, c: &mut SipConfig) {
        merge!(c.listen, self.listen);
        merge!(c.max_message_size, self.max_message_size);
        merge!(c.max_headers, self.max_headers);
        merge!(c.t1, self.t1_ms.map(Duration::from_millis));
        merge!(c.t2, self.t2_ms.map(Duration::from_millis));
        merge!(c.min_session_expires_secs, self.min_session_expires_secs);
        merge!(
            c.tcp_idle_timeout,
            self.tcp_idle_timeout_secs.map(Duration::from_secs)
        );
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
            c.tls_handshake_timeout,
            self.tls_handshake_timeout_secs.map(Duration::from_secs)
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
        merge!(
            c.media_timeout,
            self.media_timeout_secs.map(Duration::from_secs)
        );
        merge!(c.file_sample_rate, self.file_sample_rate);
        merge!(c.workers, self.workers);
    }
}

impl CdrFile {
    fn merge_into(self, c: &mut CdrConfig) {
        merge!(c.receivers, self.receivers);
        merge!(c.batch_size, self.batch_size);
        merge!(
            c.request_timeout,
            self.request_timeout_secs.map(Duration::from_secs)
        );
        merge!(
            c.max_backoff,
            self.max_backoff_secs.map(Duration::from_secs)
        );
        merge!(c.receiver_options, self.receiver_options);
        merge!(c.edr_log_ack, self.edr_log_ack);
    }
}

impl HttpFile {
    fn merge_into(self, c: &mut HttpConfig) {
        merge!(c.listen, self.listen);
        merge!(c.users, self.users);
        merge!(c.tokens, self.tokens);
        // "" = none, as for the SIP listener's certificate.
        let path = |p: PathBuf| (!p.as_os_str().is_empty()).then_some(p);
        if let Some(p) = self.tls_certificate {
            c.tls_certificate = path(p);
        }
        if let Some(p) = self.tls_private_key {
            c.tls_private_key = path(p);
        }
    }
}

impl LimitsFile {
    fn merge_into(self, c: &mut LimitsConfig) {
        merge!(c.max_sessions, self.max_sessions);
        merge!(c.retry_after_secs, self.retry_after_secs);
        merge!(
            c.disk_high_watermark_percent,
            self.disk_high_watermark_percent
        );
        merge!(
            c.disk_low_watermark_percent,
            self.disk_low_watermark_percent
        );
    }
}

impl SecurityFile {
    fn merge_into(self, c: &mut SecurityConfig) {
        merge!(c.allow, self.allow);
        merge!(c.refused_action, self.refused_action);
        merge!(c.rate_limit_per_second, self.rate_limit_per_second);
        merge!(c.rate_limit_burst, self.rate_limit_burst);
        merge!(c.rate_limited_action, self.rate_limited_action);
        merge!(c.drop_scanners, self.drop_scanners);
    }
}

pub(super) const TABLES: &[&str] = &[
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
    "storage",
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
                    merge!(c.recording.max_pending_audio_mib, f.max_pending_audio_mib);
                }
                "spool" => {
                    let f: SpoolFile = section(text, name, value)?;
                    merge!(c.spool.dir, f.dir);
                }
                "cdr" => section::<CdrFile>(text, name, value)?.merge_into(&mut c.cdr),
                "http" => section::<HttpFile>(text, name, value)?.merge_into(&mut c.http),
                "limits" => section::<LimitsFile>(text, name, value)?.merge_into(&mut c.limits),
                "shutdown" => {
                    let f: ShutdownFile = section(text, name, value)?;
                    merge!(
                        c.shutdown.grace_period,
                        f.grace_period_secs.map(Duration::from_secs)
                    );
                }
                "security" => {
                    section::<SecurityFile>(text, name, value)?.merge_into(&mut c.security);
                }
                "storage" => {
                    let f: super::storage::StorageFile = section(text, name, value)?;
                    c.storage = Some(f.into_config());
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
}
