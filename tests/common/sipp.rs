//! SIPp as the SRC: reading the outcome of a scenario run.

use std::path::Path;

/// Final counters from SIPp's `-trace_stat` CSV: (successful, failed) calls.
pub fn final_counts(stat_file: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(stat_file)
        .unwrap_or_else(|e| panic!("SIPp statistics file {}: {e}", stat_file.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .expect("statistics header")
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .expect("statistics row")
        .split(';')
        .collect();
    let column = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"));
        last[i].trim().parse().expect("numeric counter")
    };
    (column("SuccessfulCall(C)"), column("FailedCall(C)"))
}
