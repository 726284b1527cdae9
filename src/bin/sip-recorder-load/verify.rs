//! Checks what the recorder wrote against what was sent: for every successful call, its
//! recording.json (found by `record_id`) must be `ended`, name existing files, count every
//! packet sent and none lost, and last about as long as the hold.

use crate::call::CallResult;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Verification {
    pub checked: usize,
    pub complete: usize,
    pub packets_expected: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    /// One line per problem, naming the record id.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "checked": self.checked,
            "complete": self.complete,
            "mismatches": self.problems.len(),
            "packets_expected": self.packets_expected,
            "packets_received": self.packets_received,
            "packets_missing": self.packets_expected.saturating_sub(self.packets_received),
            "packets_lost": self.packets_lost,
            "problems": self.problems.iter().take(50).collect::<Vec<_>>(),
        })
    }

    pub fn human(&self) -> String {
        let mut s = format!(
            "verify: {} recordings checked, {} complete, {} mismatches | packets expected={} received={} lost={}",
            self.checked,
            self.complete,
            self.problems.len(),
            self.packets_expected,
            self.packets_received,
            self.packets_lost
        );
        for p in self.problems.iter().take(20) {
            s.push_str("\n  ");
            s.push_str(p);
        }
        if self.problems.len() > 20 {
            s.push_str(&format!("\n  ... {} more", self.problems.len() - 20));
        }
        s
    }
}

/// Every parsed recording.json under `dir` with its directory, keyed by `record_id`.
/// Files caught mid-rewrite are skipped; the caller polls.
fn scan(dir: &Path) -> HashMap<String, (PathBuf, Value)> {
    let mut out = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.file_name().is_some_and(|n| n == "recording.json")
                && let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && let Some(id) = v["record_id"].as_str()
            {
                out.insert(id.to_string(), (d.clone(), v));
            }
        }
    }
    out
}

pub struct Expectation {
    pub streams: usize,
    pub hold: f64,
    pub tolerance: f64,
}

pub async fn verify(
    dir: &Path,
    results: &[CallResult],
    expect: &Expectation,
    timeout: Duration,
) -> Verification {
    let wanted: Vec<&CallResult> = results.iter().filter(|r| r.failure.is_none()).collect();
    let deadline = Instant::now() + timeout;
    let found = loop {
        let dir = dir.to_path_buf();
        let found = tokio::task::spawn_blocking(move || scan(&dir))
            .await
            .unwrap_or_default();
        let all_ended = wanted.iter().all(|r| {
            found
                .get(&r.record_id)
                .is_some_and(|(_, v)| v["state"] == "ended")
        });
        if all_ended || Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut v = Verification {
        checked: wanted.len(),
        complete: 0,
        packets_expected: 0,
        packets_received: 0,
        packets_lost: 0,
        problems: Vec::new(),
    };
    for r in wanted {
        let before = v.problems.len();
        check_one(r, found.get(&r.record_id), expect, &mut v);
        if v.problems.len() == before {
            v.complete += 1;
        }
    }
    v
}

fn check_one(
    r: &CallResult,
    found: Option<&(PathBuf, Value)>,
    expect: &Expectation,
    v: &mut Verification,
) {
    let id = &r.record_id;
    v.packets_expected += r.packets.iter().sum::<u64>();
    let Some((dir, doc)) = found else {
        v.problems.push(format!("{id}: no recording.json"));
        return;
    };
    if doc["state"] != "ended" {
        v.problems
            .push(format!("{id}: state {} (expected ended)", doc["state"]));
    }
    if doc["end_reason"] != "bye" {
        v.problems.push(format!(
            "{id}: end_reason {} (expected \"bye\")",
            doc["end_reason"]
        ));
    }
    let streams = doc["streams"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if streams.len() != expect.streams {
        v.problems.push(format!(
            "{id}: {} streams (expected {})",
            streams.len(),
            expect.streams
        ));
    }
    let duration_ok = |d: &Value| {
        d.as_f64()
            .is_some_and(|d| (d - expect.hold).abs() <= expect.tolerance)
    };
    let file_ok = |f: &Value| f.as_str().is_some_and(|f| dir.join(f).is_file());
    for (i, s) in streams.iter().enumerate() {
        let received = s["packets_received"].as_u64().unwrap_or(0);
        let lost = s["packets_lost"].as_u64().unwrap_or(0);
        v.packets_received += received;
        v.packets_lost += lost;
        let sent = r.packets.get(i).copied().unwrap_or(0);
        if received != sent {
            v.problems.push(format!(
                "{id}: stream {i} packets_received {received} (sent {sent})"
            ));
        }
        if lost != 0 {
            v.problems
                .push(format!("{id}: stream {i} packets_lost {lost} (expected 0)"));
        }
        if !file_ok(&s["file"]) {
            v.problems
                .push(format!("{id}: stream {i} file {} missing", s["file"]));
        }
        if !duration_ok(&s["duration_seconds"]) {
            v.problems.push(format!(
                "{id}: stream {i} duration_seconds {} (hold {} ± {})",
                s["duration_seconds"], expect.hold, expect.tolerance
            ));
        }
    }
    if expect.streams == 2 {
        if !file_ok(&doc["mixed_file"]) {
            v.problems
                .push(format!("{id}: mixed_file {} missing", doc["mixed_file"]));
        }
        if !duration_ok(&doc["mixed_duration_seconds"]) {
            v.problems.push(format!(
                "{id}: mixed_duration_seconds {} (hold {} ± {})",
                doc["mixed_duration_seconds"], expect.hold, expect.tolerance
            ));
        }
    }
}
