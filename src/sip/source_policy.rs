//! Who may talk SIP to the recorder (SPEC §7): a CIDR allow-list, a per-source request rate
//! limit with burst, and known scanners dropped silently. Sans-IO: the caller passes `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

/// Read from the configuration as its text form, so that a bad entry is refused where the
/// file is parsed, naming `security.allow`.
impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 sources (dual-stack sockets) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourcePolicyConfig {
    /// Empty: every source is allowed.
    pub allow: Vec<Cidr>,
    /// Refused sources get 403 (`true`) or silence (`false`).
    pub reply_to_refused: bool,
    /// Sustained requests per second per source; 0 disables the limit.
    pub rate_per_second: f64,
    pub burst: f64,
    /// Requests over the limit get 503 + Retry-After (`true`) or silence (`false`).
    pub reply_to_limited: bool,
    /// Case-insensitive substrings of User-Agent values dropped silently.
    pub scanner_user_agents: Vec<String>,
}

/// What to do with a request from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDecision {
    Accept,
    /// Not on the allow-list: 403.
    Forbidden,
    /// Over the rate limit: 503 with Retry-After.
    RateLimited,
    /// Say nothing (scanner, or a refusal configured to drop).
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// When this source's refusal was last logged.
    logged_at: Option<Instant>,
}

/// At most this many sources are tracked; past it, idle (full) buckets are forgotten.
const MAX_TRACKED_SOURCES: usize = 65536;
/// One log line per refused source per this interval, so a flood cannot flood the log.
const LOG_INTERVAL: Duration = Duration::from_secs(60);

pub struct SourcePolicy {
    cfg: SourcePolicyConfig,
    buckets: HashMap<IpAddr, Bucket>,
    refused_logged: HashMap<IpAddr, Instant>,
}

impl SourcePolicy {
    pub fn new(mut cfg: SourcePolicyConfig) -> Self {
        // Lower-cased once here, not on every request.
        for s in &mut cfg.scanner_user_agents {
            s.make_ascii_lowercase();
        }
        SourcePolicy {
            cfg,
            buckets: HashMap::new(),
            refused_logged: HashMap::new(),
        }
    }

    /// Whether the allow-list (empty: everyone) admits this source.
    pub fn is_allowed(&self, source: IpAddr) -> bool {
        self.cfg.allow.is_empty() || self.cfg.allow.iter().any(|c| c.contains(source))
    }

    /// Decide for one request. `log` is set when this refusal should be logged (the first
    /// of a source, then once per interval): the caller writes the fail2ban line.
    pub fn check(
        &mut self,
        now: Instant,
        source: IpAddr,
        user_agent: Option<&str>,
    ) -> (SourceDecision, bool) {
        let source = canonical(source);
        if !self.is_allowed(source) {
            let log = self.should_log(now, source);
            let d = if self.cfg.reply_to_refused {
                SourceDecision::Forbidden
            } else {
                SourceDecision::Drop
            };
            return (d, log);
        }
        if let Some(ua) = user_agent {
            let ua = ua.to_ascii_lowercase();
            if self
                .cfg
                .scanner_user_agents
                .iter()
                .any(|s| ua.contains(s.as_str()))
            {
                return (SourceDecision::Drop, self.should_log(now, source));
            }
        }
        if self.cfg.rate_per_second <= 0.0 {
            return (SourceDecision::Accept, false);
        }
        if self.buckets.len() >= MAX_TRACKED_SOURCES && !self.buckets.contains_key(&source) {
            self.forget_idle(now);
        }
        let (rate, burst) = (self.cfg.rate_per_second, self.cfg.burst.max(1.0));
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            at: now,
            logged_at: None,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return (SourceDecision::Accept, false);
        }
        let log = bucket
            .logged_at
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_INTERVAL);
        if log {
            bucket.logged_at = Some(now);
        }
        let d = if self.cfg.reply_to_limited {
            SourceDecision::RateLimited
        } else {
            SourceDecision::Drop
        };
        (d, log)
    }

    fn should_log(&mut self, now: Instant, source: IpAddr) -> bool {
        if self.refused_logged.len() >= MAX_TRACKED_SOURCES {
            self.refused_logged
                .retain(|_, t| now.saturating_duration_since(*t) < LOG_INTERVAL);
            if self.refused_logged.len() >= MAX_TRACKED_SOURCES {
                return false; // bounded: past this, refusals go unlogged until entries age
            }
        }
        match self.refused_logged.get(&source) {
            Some(t) if now.saturating_duration_since(*t) < LOG_INTERVAL => false,
            _ => {
                self.refused_logged.insert(source, now);
                true
            }
        }
    }

    /// Drop buckets that have refilled completely: they carry no state worth keeping.
    fn forget_idle(&mut self, now: Instant) {
        let (rate, burst) = (self.cfg.rate_per_second, self.cfg.burst.max(1.0));
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
        if self.buckets.len() >= MAX_TRACKED_SOURCES {
            // Everyone is busy: forget the oldest half rather than grow without bound.
            let mut ats: Vec<Instant> = self.buckets.values().map(|b| b.at).collect();
            ats.sort_unstable();
            let cutoff = ats[ats.len() / 2];
            self.buckets.retain(|_, b| b.at > cutoff);
        }
    }

    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }
}

pub const DEFAULT_SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipsak",
    "iwar",
    "sundayddr",
    "vaxsipuseragent",
    "sipbomber",
    "pplsip",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SourcePolicyConfig {
        SourcePolicyConfig {
            allow: vec![],
            reply_to_refused: true,
            rate_per_second: 10.0,
            burst: 20.0,
            reply_to_limited: true,
            scanner_user_agents: DEFAULT_SCANNER_USER_AGENTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.1.0.9".parse().unwrap()),
            "mapped IPv4"
        );
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!c.contains("10.1.0.1".parse().unwrap()));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert!(
            host.contains("192.0.2.7".parse().unwrap())
                && !host.contains("192.0.2.8".parse().unwrap())
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("198.51.100.1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "x/8", "10.0.0/8", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_list_refuses_and_logs_once_per_interval() {
        let mut p = SourcePolicy::new(SourcePolicyConfig {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            ..cfg()
        });
        let t0 = Instant::now();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            p.check(t0, outside, None),
            (SourceDecision::Forbidden, true)
        );
        assert_eq!(
            p.check(t0, outside, None),
            (SourceDecision::Forbidden, false)
        );
        assert_eq!(
            p.check(t0 + LOG_INTERVAL, outside, None),
            (SourceDecision::Forbidden, true)
        );
        assert_eq!(
            p.check(t0, "10.9.9.9".parse().unwrap(), None).0,
            SourceDecision::Accept
        );
        let mut drop = SourcePolicy::new(SourcePolicyConfig {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            reply_to_refused: false,
            ..cfg()
        });
        assert_eq!(drop.check(t0, outside, None).0, SourceDecision::Drop);
    }

    #[test]
    fn rate_limit_with_burst_and_refill() {
        let mut p = SourcePolicy::new(cfg());
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let accepted = (0..100)
            .filter(|_| p.check(t0, ip, None).0 == SourceDecision::Accept)
            .count();
        assert_eq!(accepted, 20, "the burst");
        assert_eq!(p.check(t0, ip, None).0, SourceDecision::RateLimited);
        // 10/s: after one second ten more.
        let t1 = t0 + Duration::from_secs(1);
        let accepted = (0..100)
            .filter(|_| p.check(t1, ip, None).0 == SourceDecision::Accept)
            .count();
        assert_eq!(accepted, 10);
        // Another source has its own bucket.
        assert_eq!(
            p.check(t1, "192.0.2.2".parse().unwrap(), None).0,
            SourceDecision::Accept
        );
    }

    #[test]
    fn scanners_are_dropped_silently() {
        let mut p = SourcePolicy::new(cfg());
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            p.check(t0, ip, Some("friendly-scanner")).0,
            SourceDecision::Drop
        );
        assert_eq!(
            p.check(t0, ip, Some("SIPVicious 0.3.4")).0,
            SourceDecision::Drop
        );
        assert_eq!(
            p.check(t0, ip, Some("Genesys GVP")).0,
            SourceDecision::Accept
        );
    }

    #[test]
    fn tracked_sources_stay_bounded() {
        let mut p = SourcePolicy::new(cfg());
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 5000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            p.check(t0, ip, None);
        }
        assert!(
            p.tracked_sources() <= MAX_TRACKED_SOURCES,
            "{}",
            p.tracked_sources()
        );
    }
}
