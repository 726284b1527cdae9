//! A conference party that joins by re-INVITE and leaves with port 0, driven by SIPp
//! (Debian `sip-tester`, scenario `scripts/sipp/uac_conference_add_party.xml`): SIPp streams
//! the first party's audio itself; the second and third parties' RTP comes from this test
//! to the ports recording.json names. The files are decoded and checked: three mono files
//! on one timeline (the third silent up to its join and ending when it left), the stereo
//! file of the first two and `mixed.wav` of all three.

mod common;

use common::rtp::*;
use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIRST_HZ: f64 = 440.0; // tone440.wav, sent by SIPp
const SECOND_HZ: f64 = 660.0;
const THIRD_HZ: f64 = 880.0;
/// A tone is "there" above this Goertzel amplitude and "absent" below the other.
const PRESENT: f64 = 2000.0;
const ABSENT: f64 = 300.0;

/// The only recording of the recorder, if it exists yet.
fn the_recording(rec: &Recorder) -> Option<(PathBuf, Value)> {
    rec.recordings().into_iter().next()
}

fn port_of(stream: &Value) -> SocketAddr {
    let port = stream["local_port"].as_u64().expect("local_port") as u16;
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not seconds: {v}"))
}

/// Goertzel amplitude of `hz` in every 100 ms window of [from, to).
fn amplitudes(s: &[i16], rate: u32, from: f64, to: f64, hz: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut t = from;
    while t + 0.1 <= to {
        out.push((t, tone_amplitude(window(s, rate, t, t + 0.1), rate, hz)));
        t += 0.1;
    }
    assert!(!out.is_empty(), "empty region [{from:.2}, {to:.2})");
    out
}

fn assert_tone(what: &str, s: &[i16], rate: u32, from: f64, to: f64, hz: f64, present: bool) {
    for (at, a) in amplitudes(s, rate, from, to, hz) {
        if present {
            assert!(a > PRESENT, "{what}: {hz} Hz missing at {at:.2} s ({a:.0})");
        } else {
            assert!(a < ABSENT, "{what}: {hz} Hz present at {at:.2} s ({a:.0})");
        }
    }
}

#[test]
fn sipp_conference_party_joins_and_leaves_three_files_and_mixed_wav() {
    let rec = Recorder::start(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    let mut sipp = SippRun::new(rec.sip_addr, "uac_conference_add_party.xml", 1)
        .timeout("30s")
        .spawn(work.path());

    // Feed the second party from the start and the third while recording.json lists it open.
    let mut second: Option<RtpSender> = None;
    let mut third: Option<RtpSender> = None;
    let mut third_sent = 0u64;
    let pacer = Pacer::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tick = 0;
    let status = loop {
        if let Some(status) = sipp.try_wait().expect("sipp status") {
            break status;
        }
        assert!(Instant::now() < deadline, "SIPp did not finish");
        if tick % 5 == 0
            && let Some((_, v)) = the_recording(&rec)
        {
            let streams = v["streams"].as_array().cloned().unwrap_or_default();
            if second.is_none() && streams.len() >= 2 {
                second = Some(RtpSender::new(Codec::Pcmu, port_of(&streams[1]), SECOND_HZ));
            }
            let third_open = streams
                .get(2)
                .is_some_and(|s| s["closed_at_seconds"].is_null());
            if third_open && third.is_none() {
                third = Some(RtpSender::new(Codec::Pcmu, port_of(&streams[2]), THIRD_HZ));
            } else if !third_open && let Some(s) = third.take() {
                third_sent = s.sent;
            }
        }
        pacer.wait(tick);
        for s in [second.as_mut(), third.as_mut()].into_iter().flatten() {
            s.send_tone(tick);
        }
        tick += 1;
    };
    let out = sipp.wait_with_output().expect("sipp output");
    assert!(
        status.success(),
        "sipp exited with {status}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        third_sent > 50,
        "the third party was fed ({third_sent} packets)"
    );

    let (dir, v) = rec.wait_recording(|v| v["state"] == "ended", Duration::from_secs(10));
    assert_eq!(v["end_reason"], "bye", "{v}");
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 3, "{v}");
    for (i, s) in streams.iter().enumerate() {
        assert_eq!(s["file"], format!("stream-{i}.wav"), "{s}");
        assert_eq!(s["index"], i, "{s}");
        assert_eq!(s["silent"], false, "stream {i}: {s}");
        assert_eq!(s["packets_lost"], 0, "stream {i}: {s}");
    }
    assert_eq!(v["stereo_file"], "stereo.wav", "{v}");
    assert_eq!(v["mixed_file"], "mixed.wav", "{v}");

    // Durations on the one timeline: the first two run the whole call, the third from
    // 0 (silence) to when its line went to port 0.
    let call = {
        let t = |k: &str| {
            time::OffsetDateTime::parse(
                v[k].as_str().expect(k),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("RFC 3339")
        };
        (t("ended_at") - t("started_at")).as_seconds_f64()
    };
    let joined = secs(&streams[2]["joined_at_seconds"]);
    let left = secs(&streams[2]["closed_at_seconds"]);
    assert!(
        (1.9..2.8).contains(&joined),
        "third joined at {joined}: {v}"
    );
    assert!(
        (3.9..5.0).contains(&left) && left > joined + 1.5,
        "left at {left}: {v}"
    );
    let open = |i: usize| read_wav(&dir.join(format!("stream-{i}.wav"))).expect("stream WAV");
    let wavs = [open(0), open(1), open(2)];
    for (i, w) in wavs.iter().enumerate() {
        let recorded = secs(&streams[i]["duration_seconds"]);
        assert!(
            (w.duration_secs() - recorded).abs() < 0.002,
            "stream {i}: header vs json"
        );
        let expected = if i == 2 { left } else { call };
        assert!(
            (recorded - expected).abs() < 0.15,
            "stream {i}: {recorded:.3} s, expected {expected:.3} s"
        );
    }
    let third_wav = wavs[2].channel(0);
    let rate = wavs[2].sample_rate;
    // Digital silence up to the join, then the third party's tone until it left.
    let before = window(&third_wav, rate, 0.0, joined - 0.05);
    assert!(
        before.iter().all(|&s| s == 0),
        "third file not silent before its join"
    );
    assert_tone(
        "third",
        &third_wav,
        rate,
        joined + 0.4,
        left - 0.2,
        THIRD_HZ,
        true,
    );

    let first = wavs[0].channel(0);
    assert_tone("first", &first, 8000, 0.3, 5.5, FIRST_HZ, true);
    let second_wav = wavs[1].channel(0);
    assert_tone(
        "second",
        &second_wav,
        8000,
        0.5,
        call - 0.3,
        SECOND_HZ,
        true,
    );

    let stereo = read_wav(&dir.join("stereo.wav")).expect("stereo WAV");
    assert_eq!(stereo.channels, 2);
    assert_tone(
        "stereo left",
        &stereo.channel(0),
        8000,
        0.3,
        5.5,
        FIRST_HZ,
        true,
    );
    // The right channel is the second stream alone: the third party is not in it.
    for (hz, present) in [(SECOND_HZ, true), (THIRD_HZ, false)] {
        assert_tone(
            "stereo right",
            &stereo.channel(1),
            8000,
            0.5,
            call - 0.3,
            hz,
            present,
        );
    }

    // mixed.wav: everyone, the third party only while it was there.
    let mixed = read_wav(&dir.join("mixed.wav")).expect("mixed WAV");
    assert_eq!((mixed.channels, mixed.sample_rate), (1, 8000));
    assert!(
        (mixed.duration_secs() - call).abs() < 0.15,
        "mixed {:.3} s",
        mixed.duration_secs()
    );
    let m = mixed.channel(0);
    assert_tone("mixed", &m, 8000, 0.5, 5.5, FIRST_HZ, true);
    assert_tone("mixed", &m, 8000, 0.5, call - 0.3, SECOND_HZ, true);
    assert_tone("mixed", &m, 8000, joined + 0.4, left - 0.2, THIRD_HZ, true);
    assert_tone(
        "mixed before join",
        &m,
        8000,
        0.3,
        joined - 0.1,
        THIRD_HZ,
        false,
    );
    assert_tone(
        "mixed after leave",
        &m,
        8000,
        left + 0.2,
        call - 0.2,
        THIRD_HZ,
        false,
    );

    // The CDRs list every file: recordingEnd names the third file and mixed.wav.
    let spooled: Vec<String> = walk(&rec.spool_dir)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|x| x.contains("recordingEnd"))
        .collect();
    assert!(
        spooled.iter().any(|x| [
            "stream-0.wav",
            "stream-1.wav",
            "stream-2.wav",
            "stereo.wav",
            "mixed.wav"
        ]
        .iter()
        .all(|f| x.contains(&format!("<file>{f}</file>")))),
        "recordingEnd files: {spooled:?}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
