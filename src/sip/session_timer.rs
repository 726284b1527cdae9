//! RFC 4028 session timers: negotiation of `Session-Expires` and the resulting deadlines.
//! Pure: the caller supplies `now` and schedules the returned instants.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A parsed `Session-Expires` header: `delta-seconds[;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub delta_secs: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let mut parts = value.split(';');
        let delta_secs = parts.next()?.trim().parse().ok()?;
        let mut refresher = None;
        for param in parts {
            let (name, val) = param.split_once('=').unwrap_or((param, ""));
            if name.trim().eq_ignore_ascii_case("refresher") {
                refresher = match val.trim().to_ascii_lowercase().as_str() {
                    "uac" => Some(Refresher::Uac),
                    "uas" => Some(Refresher::Uas),
                    _ => None,
                };
            }
        }
        Some(SessionExpires {
            delta_secs,
            refresher,
        })
    }
}

/// What the UAS decided for a request carrying `Session-Expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// No session timer on this dialog.
    None,
    /// 422 with `Min-SE: min_se`.
    TooSmall { min_se: u32 },
    /// Run a timer; answer `Session-Expires: delta;refresher=..` (+ `Require: timer` when the
    /// UAC refreshes).
    Timer(SessionTimer),
}

/// The negotiated session timer of a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    pub interval: Duration,
    pub refresher: Refresher,
}

/// RFC 4028 §9: decide from the request's `Session-Expires`, whether the UAC supports
/// `timer`, and our minimum.
pub fn negotiate(
    session_expires: Option<SessionExpires>,
    uac_supports_timer: bool,
    our_min_se: u32,
) -> Negotiation {
    let Some(se) = session_expires else {
        return Negotiation::None;
    };
    if se.delta_secs < our_min_se {
        return Negotiation::TooSmall { min_se: our_min_se };
    }
    // §9: keep the UAC's choice; if it made none, the UAC refreshes when it can.
    let refresher = match se.refresher {
        Some(r) => r,
        None if uac_supports_timer => Refresher::Uac,
        None => Refresher::Uas,
    };
    Negotiation::Timer(SessionTimer {
        interval: Duration::from_secs(se.delta_secs.into()),
        refresher,
    })
}

impl SessionTimer {
    pub fn header_value(&self) -> String {
        format!(
            "{};refresher={}",
            self.interval.as_secs(),
            self.refresher.as_str()
        )
    }

    /// When the session is considered dead unless refreshed (§10: the side not refreshing
    /// sends BYE at interval minus min(32 s, interval/3); the refresher at the full interval).
    pub fn expiry(&self, refreshed_at: Instant) -> Instant {
        match self.refresher {
            Refresher::Uac => {
                let margin = (self.interval / 3).min(Duration::from_secs(32));
                refreshed_at + self.interval - margin
            }
            Refresher::Uas => refreshed_at + self.interval,
        }
    }

    /// When the recorder itself must refresh (only when it is the refresher): half-way.
    pub fn refresh_due(&self, refreshed_at: Instant) -> Option<Instant> {
        (self.refresher == Refresher::Uas).then(|| refreshed_at + self.interval / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_session_expires() {
        assert_eq!(
            SessionExpires::parse("1800;refresher=uac"),
            Some(SessionExpires {
                delta_secs: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            SessionExpires::parse(" 90 ; REFRESHER = UAS"),
            Some(SessionExpires {
                delta_secs: 90,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(SessionExpires::parse("abc"), None);
        assert_eq!(SessionExpires::parse("600").unwrap().refresher, None);
    }

    #[test]
    fn too_small_gets_422_with_our_minimum() {
        let se = SessionExpires::parse("30").unwrap();
        assert_eq!(
            negotiate(Some(se), true, 90),
            Negotiation::TooSmall { min_se: 90 }
        );
    }

    #[test]
    fn refresher_choice_follows_rfc4028_section9() {
        let se = SessionExpires::parse("1800").unwrap();
        let Negotiation::Timer(t) = negotiate(Some(se), true, 90) else {
            panic!()
        };
        assert_eq!(t.refresher, Refresher::Uac);
        let Negotiation::Timer(t) = negotiate(Some(se), false, 90) else {
            panic!()
        };
        assert_eq!(t.refresher, Refresher::Uas);
        let se = SessionExpires::parse("1800;refresher=uas").unwrap();
        let Negotiation::Timer(t) = negotiate(Some(se), true, 90) else {
            panic!()
        };
        assert_eq!(t.refresher, Refresher::Uas);
        assert_eq!(negotiate(None, true, 90), Negotiation::None);
    }

    #[test]
    fn expiry_deadlines() {
        let now = Instant::now();
        let uac = SessionTimer {
            interval: Duration::from_secs(1800),
            refresher: Refresher::Uac,
        };
        assert_eq!(uac.expiry(now), now + Duration::from_secs(1800 - 32));
        assert_eq!(uac.refresh_due(now), None);
        let short = SessionTimer {
            interval: Duration::from_secs(90),
            refresher: Refresher::Uac,
        };
        assert_eq!(short.expiry(now), now + Duration::from_secs(60));
        let uas = SessionTimer {
            interval: Duration::from_secs(90),
            refresher: Refresher::Uas,
        };
        assert_eq!(uas.refresh_due(now), Some(now + Duration::from_secs(45)));
        assert_eq!(uas.expiry(now), now + Duration::from_secs(90));
    }
}
