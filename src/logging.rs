//! Process-wide `tracing` subscriber: stderr, text or JSON (SPEC §2).

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter \"{directives}\" (from {source_name}): {reason}")]
    Filter {
        directives: String,
        /// `RUST_LOG` or `log.level`, so the operator knows which one to fix.
        source_name: &'static str,
        reason: String,
    },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// The filter to log with: `RUST_LOG` when it is set and non-empty (so a developer can turn
/// up one module without editing the config), else the configured level.
pub fn env_filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    let (directives, source_name) = match rust_log {
        Some(v) if !v.trim().is_empty() => (v, "RUST_LOG"),
        _ => (level, "log.level"),
    };
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| LoggingError::Filter {
            directives: directives.to_owned(),
            source_name,
            reason: e.to_string(),
        })
}

/// Installs the global subscriber writing to stderr. Call once, before the server starts.
pub fn init(config: &LogConfig) -> Result<(), LoggingError> {
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let filter = env_filter(&config.level, rust_log.as_deref())?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: log files and journald get plain text, and
        // the fail2ban line stays matchable.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        // One JSON object per line with span context flattened, for log shippers.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|_| LoggingError::AlreadyInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_level_is_used_without_rust_log() {
        let f = env_filter("debug", None).unwrap();
        assert_eq!(f.to_string(), "debug");
        let f = env_filter("debug", Some("  ")).unwrap();
        assert_eq!(f.to_string(), "debug");
    }

    #[test]
    fn rust_log_wins_over_configured_level() {
        let f = env_filter("info", Some("sip_recorder=trace")).unwrap();
        assert_eq!(f.to_string(), "sip_recorder=trace");
    }

    #[test]
    fn bad_filter_names_where_it_came_from() {
        let e = env_filter("info", Some("x=notalevel")).unwrap_err();
        assert!(e.to_string().contains("RUST_LOG"), "{e}");
        let e = env_filter("x=notalevel", None).unwrap_err();
        assert!(e.to_string().contains("log.level"), "{e}");
    }
}
