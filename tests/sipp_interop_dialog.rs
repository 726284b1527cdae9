//! Vendor dialog dialects driven by SIPp (Debian `sip-tester`) against the real recorder:
//! a BroadWorks-style SRC whose ACKs carry another CSeq, a Cisco CUBE whose ACK and BYE carry
//! no To tag, and an INVITE without SDP (delayed offer). Each asserts SIPp's counters and the
//! recordings: ended by BYE, the tolerance counted on /metrics, and the WAV holding the tone
//! SIPp streamed (`scripts/sipp/tone440.wav`, 3 s of 440 Hz).

mod common;

use common::rtp::{read_wav, zero_crossing_hz};
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CALLS: usize = 5;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/sipp")
        .join(name)
}

/// Runs a SIPp UAC scenario (from a directory holding the scenario's audio) and asserts that
/// all `CALLS` calls succeeded.
fn run_sipp(rec: &Recorder, scenario_file: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::copy(scenario("tone440.wav"), work.path().join("tone440.wav")).expect("audio");
    let stat_file = work.path().join("stats.csv");
    let mut child = Command::new("sipp")
        .arg(rec.sip_addr.to_string())
        .arg("-sf")
        .arg(scenario(scenario_file))
        .args(["-m", &CALLS.to_string(), "-r", "5", "-l", "5"])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &free_port().to_string()])
        .args([
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_stat",
            "-stf",
        ])
        .arg(&stat_file)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run sipp ({e}): install the Debian package sip-tester (scripts/test does)"
            )
        });
    // SIPp's own -timeout bounds the run; this is the backstop should it hang.
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("sipp status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("sipp output");
    let screen = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = screen.lines().rev().take(60).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        out.status.success(),
        "sipp exited with {}\n{}\n{}",
        out.status,
        tail.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        final_counts(&stat_file),
        (CALLS as u64, 0),
        "SIPp calls (successful, failed)\n{}",
        tail.join("\n")
    );
}

/// Waits until `CALLS` recordings have ended and returns them with their directories.
fn ended_recordings(rec: &Recorder) -> Vec<(PathBuf, Value)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = rec.recordings();
        if all.len() == CALLS && all.iter().all(|(_, v)| v["state"] == "ended") {
            return all;
        }
        assert!(Instant::now() < deadline, "recordings: {all:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every recording ended by the SRC's BYE and its file holds the 3 s tone.
fn assert_recorded_tone(rec: &Recorder) {
    for (dir, v) in ended_recordings(rec) {
        assert_eq!(v["end_reason"], "bye", "{v}");
        let stream = &v["streams"][0];
        assert_eq!(stream["packets_lost"], 0, "{v}");
        let received = stream["packets_received"].as_u64().unwrap_or(0);
        assert!(
            (150..=151).contains(&received),
            "packets_received {received}: {v}"
        );
        let file = stream["file"].as_str().expect("stream file");
        let wav = read_wav(&dir.join(file)).expect("WAV");
        // The file's rate is the one recording.json names (16 kHz when the offer the
        // recorder made for an offerless INVITE listed wideband codecs).
        assert_eq!(wav.channels, 1);
        assert_eq!(
            stream["sample_rate"].as_u64(),
            Some(u64::from(wav.sample_rate)),
            "{v}"
        );
        // The tone, away from the edges of the 3 s stream.
        let rate = wav.sample_rate as usize;
        let tone = &wav.samples[rate / 10..rate * 3 - rate / 10];
        let hz = zero_crossing_hz(tone, wav.sample_rate);
        assert!(
            (430.0..450.0).contains(&hz),
            "dominant frequency {hz:.1} Hz in {file}"
        );
    }
}

fn metric(addr: SocketAddr, series: &str) -> f64 {
    let mut s = TcpStream::connect(addr).expect("HTTP API");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

/// The SIP core publishes its counters once a second.
fn wait_metric(addr: SocketAddr, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(addr, series) != want {
        assert!(
            Instant::now() < deadline,
            "{series} = {}, want {want}",
            metric(addr, series)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn broadworks_acks_with_another_cseq_pause_resume_and_record() {
    let rec = Recorder::start(&[]);
    run_sipp(&rec, "uac_broadworks_odd_ack_cseq.xml");
    assert_recorded_tone(&rec);
    for (_, v) in ended_recordings(&rec) {
        let pauses = v["pauses"].as_array().expect("pauses");
        assert_eq!(pauses.len(), 1, "{v}");
        assert!(pauses[0]["ended_at"].is_string(), "pause not closed: {v}");
    }
    // Three odd ACKs per call, each counted.
    let series = "sip_recorder_sip_tolerances_total{kind=\"ack_cseq_mismatch\"}";
    wait_metric(rec.http_addr, series, (3 * CALLS) as f64);
}

#[test]
fn cube_ack_and_bye_without_our_to_tag_are_matched_and_recorded() {
    let rec = Recorder::start(&[]);
    run_sipp(&rec, "uac_cube_to_tagless.xml");
    assert_recorded_tone(&rec);
    let series = "sip_recorder_sip_tolerances_total{kind=\"missing_to_tag\"}";
    wait_metric(rec.http_addr, series, (2 * CALLS) as f64);
}

#[test]
fn offerless_invite_gets_an_offer_and_the_answer_in_the_ack_is_recorded() {
    let rec = Recorder::start(&[]);
    run_sipp(&rec, "uac_offerless_invite.xml");
    assert_recorded_tone(&rec);
    for (_, v) in ended_recordings(&rec) {
        assert_eq!(v["streams"][0]["codec"], "PCMU", "{v}");
    }
}
