//! Load-style black-box tests: SIPp (Debian package `sip-tester`) drives the real recorder
//! with the scenarios under `scripts/sipp/`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CALLS: usize = 20;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/sipp")
        .join(name)
}

/// Runs a SIPp UAC scenario against the recorder in the foreground and asserts that all
/// `CALLS` calls succeeded.
fn run_sipp(rec: &Recorder, scenario_file: &str, transport: Transport, extra: &[&str]) {
    let work = tempfile::tempdir().expect("tempdir");
    // rtp_stream reads its audio relative to SIPp's working directory.
    for entry in std::fs::read_dir(scenario(""))
        .expect("scripts/sipp")
        .flatten()
    {
        if entry.path().extension().is_some_and(|x| x == "wav") {
            std::fs::copy(entry.path(), work.path().join(entry.file_name())).expect("copy audio");
        }
    }
    let stat_file = work.path().join("stats.csv");
    let local_port = free_port();
    let media_port = free_port();
    let mut cmd = Command::new("sipp");
    cmd.arg(rec.sip_addr.to_string())
        .arg("-sf")
        .arg(scenario(scenario_file))
        .args(["-m", &CALLS.to_string(), "-r", "10", "-l", "10"])
        .args(["-i", "127.0.0.1", "-p", &local_port.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
        .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
        .arg("-trace_stat")
        .arg("-stf")
        .arg(&stat_file)
        .args(extra)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if transport == Transport::Tcp {
        cmd.args(["-t", "t1"]);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`sipp` is not installed: install the Debian package sip-tester (scripts/test does)"
        ),
        Err(e) => panic!("cannot run sipp: {e}"),
    };
    let pid = child.id();
    // SIPp's own -timeout bounds the run; this is the backstop should SIPp hang.
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().expect("wait for sipp");
    let _ = watchdog.join();
    let screen = String::from_utf8_lossy(&out.stdout);
    let tail: String = screen
        .lines()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "sipp exited with {}\n{tail}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, failed) = final_counts(&stat_file);
    assert_eq!(
        (ok, failed),
        (CALLS as u64, 0),
        "SIPp calls (successful, failed)\n{tail}"
    );
}

/// Waits until `n` recordings are ended and returns them.
fn wait_all_ended(rec: &Recorder, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = rec.recordings();
        let ended = all.iter().filter(|(_, v)| v["state"] == "ended").count();
        if all.len() == n && ended == n {
            return all.into_iter().map(|(_, v)| v).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} recordings, {ended} ended; expected {n} ended",
            all.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn basic(transport: Transport) {
    let rec = Recorder::start(&[]);
    run_sipp(&rec, "uac_basic.xml", transport, &[]);
    for v in wait_all_ended(&rec, CALLS) {
        assert_eq!(v["end_reason"], "bye", "{v}");
        assert_eq!(
            v["kind"], "cms",
            "a plain call is a CMS-style recording: {v}"
        );
        assert_eq!(v["streams"].as_array().map(Vec::len), Some(1), "{v}");
    }
}

#[test]
fn sipp_basic_calls_udp() {
    basic(Transport::Udp);
}

#[test]
fn sipp_basic_calls_tcp() {
    basic(Transport::Tcp);
}

#[test]
fn sipp_genesys_pause_resume_refresh_udp() {
    let rec = Recorder::start(&[]);
    run_sipp(
        &rec,
        "uac_genesys_pause_resume.xml",
        Transport::Udp,
        &["-s", "rec"],
    );
    let all = wait_all_ended(&rec, CALLS);
    let mut ids: Vec<String> = all
        .iter()
        .map(|v| v["record_id"].as_str().unwrap_or("").to_string())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (1..=CALLS).map(|n| format!("rec-{n}")).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "one recording per call, record= id from the URI"
    );
    for v in &all {
        assert_eq!(v["kind"], "genesys", "{v}");
        assert_eq!(v["end_reason"], "bye", "{v}");
        assert_eq!(v["dn"], "1001");
        assert_eq!(v["other_dn"], "1002");
        let pauses = v["pauses"].as_array().expect("pauses");
        // The refresh must not have opened a second pause.
        assert_eq!(pauses.len(), 1, "{v}");
        assert!(pauses[0]["ended_at"].is_string(), "pause not closed: {v}");
    }
}

/// Dominant frequency from zero crossings: enough to tell 440 Hz from 880 Hz or silence.
fn zero_crossing_hz(samples: &[i16], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(rate))
}

#[test]
fn sipp_rtp_stream_audio_is_recorded() {
    let rec = Recorder::start(&[]);
    run_sipp(&rec, "uac_rtp_stream.xml", Transport::Udp, &[]);
    for (dir, v) in rec.recordings() {
        assert_eq!(v["state"], "ended", "{v}");
        let stream = &v["streams"][0];
        assert_eq!(stream["file"], "stream-0.wav", "{v}");
        // SIPp sends the 3 s file as 20 ms packets; none may be lost on loopback.
        let received = stream["packets_received"].as_u64().unwrap_or(0);
        assert!(
            (150..=151).contains(&received),
            "packets_received {received}: {v}"
        );
        assert_eq!(stream["packets_lost"], 0, "{v}");
        let mut wav = hound::WavReader::open(dir.join("stream-0.wav")).expect("valid WAV");
        let spec = wav.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (8000, 1, 16)
        );
        let samples: Vec<i16> = wav.samples::<i16>().map(|s| s.expect("sample")).collect();
        // The call lasts the 3 s stream plus the scenario's 100 ms before the BYE.
        let seconds = samples.len() as f64 / 8000.0;
        assert!((3.0..3.5).contains(&seconds), "file holds {seconds:.3} s");
        let tone = &samples[800..8000 * 3 - 800];
        let hz = zero_crossing_hz(tone, 8000);
        assert!(
            (430.0..450.0).contains(&hz),
            "dominant frequency {hz:.1} Hz"
        );
    }
    assert_eq!(rec.recordings().len(), CALLS);
}
