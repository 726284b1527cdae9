//! Validation: checks that parsed values make sense together, naming the key at fault.

use super::{
    Config, ConfigError, LAYOUT_PLACEHOLDERS, MAX_CDR_RECEIVERS, MIN_MESSAGE_SIZE, Transport,
    invalid,
};
use std::path::{Component, Path};
use std::time::Duration;

impl Config {
    /// Checks that values which parsed also make sense together. The first problem found is
    /// returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_sip()?;
        self.validate_media()?;
        self.validate_storage()?;
        self.validate_cdr()?;
        self.validate_http()?;
        self.validate_security()?;
        if let Some(storage) = &self.storage {
            storage.validate()?;
        }
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

    /// `[sip]`, checked in the order of its groups: listeners and TLS, message bounds,
    /// timers, connections, the Server header.
    fn validate_sip(&self) -> Result<(), ConfigError> {
        self.validate_sip_listeners()?;
        self.validate_sip_message_bounds()?;
        self.validate_sip_timers()?;
        self.validate_sip_connections()?;
        if let Some(h) = &self.sip.server_header {
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

    /// At least one listener, none twice; a certificate and key if any is TLS.
    fn validate_sip_listeners(&self) -> Result<(), ConfigError> {
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
        if s.tls_handshake_timeout.is_zero() {
            return Err(invalid(
                "sip.tls_handshake_timeout_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_sip_message_bounds(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.max_message_size < MIN_MESSAGE_SIZE {
            return Err(invalid(
                "sip.max_message_size",
                format!("must be at least {MIN_MESSAGE_SIZE} bytes"),
            ));
        }
        if s.max_headers == 0 {
            return Err(invalid("sip.max_headers", "must be at least 1"));
        }
        Ok(())
    }

    /// T1 and T2 (RFC 3261 17.1.1.1), the Session-Expires floor, the TCP idle timeout.
    fn validate_sip_timers(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.t1.is_zero() {
            return Err(invalid("sip.t1_ms", "must be at least 1"));
        }
        if s.t1 > s.t2 {
            return Err(invalid(
                "sip.t1_ms",
                format!(
                    "T1 ({} ms) must not exceed sip.t2_ms ({} ms)",
                    s.t1.as_millis(),
                    s.t2.as_millis()
                ),
            ));
        }
        if s.min_session_expires_secs == 0 {
            return Err(invalid(
                "sip.min_session_expires_secs",
                "must be at least 1",
            ));
        }
        if s.tcp_idle_timeout.is_zero() {
            return Err(invalid("sip.tcp_idle_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_sip_connections(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.max_connections == 0 {
            return Err(invalid("sip.max_connections", "must be at least 1"));
        }
        if s.max_connections_per_source == 0 {
            return Err(invalid(
                "sip.max_connections_per_source",
                "must be at least 1",
            ));
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
        if m.media_timeout.is_zero() {
            return Err(invalid("media.media_timeout_secs", "must be at least 1"));
        }
        if let super::MediaWorkerCount::Threads(n) = m.workers
            && !(1..=super::MediaWorkerCount::MAX).contains(&n)
        {
            return Err(invalid(
                "media.workers",
                format!(
                    "{n} media worker threads: give \"auto\" (one per core) or 1 to {}",
                    super::MediaWorkerCount::MAX
                ),
            ));
        }
        if let super::FileSampleRate::Hz(hz) = m.file_sample_rate {
            if !super::FileSampleRate::ALLOWED.contains(&hz) {
                return Err(invalid(
                    "media.file_sample_rate",
                    format!(
                        "{hz} Hz is not a file sample rate: give \"auto\", 8000, 16000 or 48000"
                    ),
                ));
            }
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
        if self.security.rate_limit_per_second > 0 && self.security.rate_limit_burst == 0 {
            return Err(invalid(
                "security.rate_limit_burst",
                "must be at least 1 with a rate limit",
            ));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        for (i, u) in h.users.iter().enumerate() {
            if u.name.is_empty() || u.name.contains(':') {
                return Err(invalid(
                    "http.users.name",
                    format!("{:?} must be non-empty and without ':'", u.name),
                ));
            }
            if h.users[..i].iter().any(|o| o.name == u.name) {
                return Err(invalid("http.users.name", format!("{:?} twice", u.name)));
            }
            if let Err(e) = argon2::PasswordHash::new(&u.password_hash) {
                return Err(invalid(
                    "http.users.password_hash",
                    format!(
                        "user {:?}: not a PHC hash string ({e}); make one with sip-recorder --hash-password",
                        u.name
                    ),
                ));
            }
        }
        for t in &h.tokens {
            if t.token.chars().count() < 16 || t.token.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "http.tokens.token",
                    "must be at least 16 characters, without whitespace",
                ));
            }
        }
        match (&h.tls_certificate, &h.tls_private_key) {
            (None, None) => Ok(()),
            (Some(c), Some(k)) => {
                for (key, p) in [("http.tls_certificate", c), ("http.tls_private_key", k)] {
                    if !p.is_file() {
                        return Err(invalid(
                            key,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
                Ok(())
            }
            (Some(_), None) => Err(invalid(
                "http.tls_private_key",
                "must be set with http.tls_certificate",
            )),
            (None, Some(_)) => Err(invalid(
                "http.tls_certificate",
                "must be set with http.tls_private_key",
            )),
        }
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
        let at_least_one = |key: &'static str, v: u64| {
            if v == 0 {
                Err(invalid(key, "must be at least 1".to_owned()))
            } else {
                Ok(())
            }
        };
        at_least_one("cdr.batch_size", self.cdr.batch_size as u64)?;
        at_least_one(
            "recording.max_pending_audio_mib",
            self.recording.max_pending_audio_mib,
        )?;
        let secs = |d: Duration| d.as_secs();
        at_least_one("cdr.request_timeout_secs", secs(self.cdr.request_timeout))?;
        at_least_one("cdr.max_backoff_secs", secs(self.cdr.max_backoff))?;
        for (i, o) in self.cdr.receiver_options.iter().enumerate() {
            let key = "cdr.receiver_options.url";
            if !r.contains(&o.url) {
                return Err(invalid(
                    key,
                    format!("\"{}\" is not one of cdr.receivers", o.url),
                ));
            }
            if self.cdr.receiver_options[..i]
                .iter()
                .any(|p| p.url == o.url)
            {
                return Err(invalid(key, format!("\"{}\" has options twice", o.url)));
            }
            at_least_one(
                "cdr.receiver_options.batch_size",
                o.batch_size.unwrap_or(1) as u64,
            )?;
            at_least_one(
                "cdr.receiver_options.request_timeout_secs",
                o.request_timeout.map_or(1, secs),
            )?;
            at_least_one(
                "cdr.receiver_options.max_backoff_secs",
                o.max_backoff.map_or(1, secs),
            )?;
            if let Some(ca) = &o.ca_file
                && !ca.is_file()
            {
                return Err(invalid(
                    "cdr.receiver_options.ca_file",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
        Ok(())
    }
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
