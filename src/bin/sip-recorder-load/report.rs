//! The end-of-run report: a human line or one JSON object.

use crate::call::CallResult;
use crate::rtp::PacerStats;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub struct Report {
    pub attempted: usize,
    pub succeeded: usize,
    /// Failed calls by reason (status code or `timeout`, `bye_timeout`, ...).
    pub failed: BTreeMap<String, usize>,
    pub setup_ms: Percentiles,
    pub peak_concurrent: usize,
    pub packets_total: u64,
    pub packets_min: u64,
    pub packets_max: u64,
    pub streams: usize,
    pub max_late_ms: f64,
    pub overruns: u64,
    pub blocked: u64,
    pub send_errors: u64,
    pub elapsed: Duration,
}

#[derive(Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles in milliseconds with microsecond resolution.
    fn of(mut v: Vec<Duration>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i].as_micros() as f64 / 1000.0
        };
        Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
            max: rank(1.0),
        }
    }
}

impl Report {
    pub fn new(
        results: &[CallResult],
        stats: &[Arc<PacerStats>],
        peak_concurrent: usize,
        elapsed: Duration,
    ) -> Report {
        let mut failed = BTreeMap::new();
        for r in results {
            if let Some(f) = &r.failure {
                *failed.entry(f.clone()).or_insert(0) += 1;
            }
        }
        let setups = results.iter().filter_map(|r| r.setup).collect();
        let per_stream: Vec<u64> = results
            .iter()
            .filter(|r| r.failure.is_none())
            .flat_map(|r| r.packets.iter().copied())
            .collect();
        let sum = |f: fn(&PacerStats) -> u64| stats.iter().map(|s| f(s)).sum::<u64>();
        Report {
            attempted: results.len(),
            succeeded: results.iter().filter(|r| r.failure.is_none()).count(),
            failed,
            setup_ms: Percentiles::of(setups),
            peak_concurrent,
            packets_total: per_stream.iter().sum(),
            packets_min: per_stream.iter().copied().min().unwrap_or(0),
            packets_max: per_stream.iter().copied().max().unwrap_or(0),
            streams: per_stream.len(),
            max_late_ms: stats
                .iter()
                .map(|s| s.max_late_us.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0) as f64
                / 1000.0,
            overruns: sum(|s| s.overruns.load(Ordering::Relaxed)),
            blocked: sum(|s| s.blocked.load(Ordering::Relaxed)),
            send_errors: sum(|s| s.errors.load(Ordering::Relaxed)),
            elapsed,
        }
    }

    pub fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "calls": {
                "attempted": self.attempted,
                "succeeded": self.succeeded,
                "failed": self.failed_total(),
                "failed_by_reason": self.failed,
                "peak_concurrent": self.peak_concurrent,
            },
            "setup_ms": { "p50": self.setup_ms.p50, "p99": self.setup_ms.p99, "max": self.setup_ms.max },
            "rtp": {
                "streams": self.streams,
                "packets_sent": self.packets_total,
                "per_stream_min": self.packets_min,
                "per_stream_max": self.packets_max,
                "max_tick_late_ms": self.max_late_ms,
                "tick_overruns": self.overruns,
                "blocked_sends": self.blocked,
                "send_errors": self.send_errors,
            },
            "elapsed_seconds": self.elapsed.as_secs_f64(),
        })
    }

    pub fn human(&self) -> String {
        let failed = if self.failed.is_empty() {
            String::new()
        } else {
            let by: Vec<String> = self
                .failed
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            format!(" ({})", by.join(","))
        };
        format!(
            "calls attempted={} ok={} failed={}{failed} peak_concurrent={} | setup ms p50={:.3} p99={:.3} max={:.3} | rtp streams={} packets={} per_stream min={} max={} | tick late max={:.3} ms overruns={} blocked={} errors={} | {:.1} s",
            self.attempted,
            self.succeeded,
            self.failed_total(),
            self.peak_concurrent,
            self.setup_ms.p50,
            self.setup_ms.p99,
            self.setup_ms.max,
            self.streams,
            self.packets_total,
            self.packets_min,
            self.packets_max,
            self.max_late_ms,
            self.overruns,
            self.blocked,
            self.send_errors,
            self.elapsed.as_secs_f64(),
        )
    }
}
