//! Smoke run of the load tool against a real recorder: ten two-stream Genesys calls, then
//! the tool's own verification of every recording. Correctness only, no timing assertions:
//! the machine running the suite may be busy.

mod common;

use common::Recorder;
use serde_json::Value;
use std::process::Command;

fn run_load(rec: &Recorder, extra: &[&str]) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sip-recorder-load"))
        .arg("--target")
        .arg(rec.sip_addr.to_string())
        .args([
            "--calls",
            "10",
            "--rate",
            "10",
            "--hold",
            "2",
            "--streams",
            "2",
        ])
        .arg("--verify")
        .arg(&rec.recordings_dir)
        .args(["--verify-timeout", "30", "--json"])
        .args(extra)
        .output()
        .expect("run sip-recorder-load");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
    });
    (report, format!("exit {:?}\n{stdout}\n{stderr}", out.status))
}

fn assert_all_recorded(report: &Value, context: &str) {
    assert_eq!(report["calls"]["attempted"], 10, "{context}");
    assert_eq!(report["calls"]["succeeded"], 10, "{context}");
    assert_eq!(report["calls"]["failed"], 0, "{context}");
    assert_eq!(report["rtp"]["streams"], 20, "{context}");
    assert!(
        report["rtp"]["per_stream_min"].as_u64().unwrap_or(0) > 0,
        "every stream sent media\n{context}"
    );
    let v = &report["verify"];
    assert_eq!(v["checked"], 10, "{context}");
    assert_eq!(v["complete"], 10, "{context}");
    assert_eq!(v["mismatches"], 0, "{context}");
    assert_eq!(v["packets_lost"], 0, "{context}");
    assert_eq!(v["packets_missing"], 0, "{context}");
    assert_eq!(
        v["packets_received"], report["rtp"]["packets_sent"],
        "{context}"
    );
    assert_eq!(report["ok"], true, "{context}");
}

#[test]
fn ten_two_stream_calls_over_udp_are_recorded_completely() {
    let mut rec = Recorder::start(&[]);
    let (report, context) = run_load(&rec, &["--transport", "udp"]);
    assert_all_recorded(&report, &context);
    rec.assert_alive();
}

#[test]
fn ten_calls_over_tcp_with_pause_and_resume_are_recorded_completely() {
    let mut rec = Recorder::start(&[]);
    let (report, context) = run_load(
        &rec,
        &[
            "--transport",
            "tcp",
            "--codec",
            "pcma",
            "--pause-at",
            "0.5",
            "--pause-for",
            "0.5",
        ],
    );
    assert_all_recorded(&report, &context);
    // Every recording shows the one pause.
    for (_, doc) in rec.recordings() {
        assert_eq!(doc["pauses"].as_array().map(Vec::len), Some(1), "{doc:#}");
    }
    rec.assert_alive();
}
