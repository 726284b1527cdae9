//! Load-style black-box tests: SIPp (Debian package `sip-tester`) drives the real recorder
//! with the scenarios under `scripts/sipp/`.

mod common;

use common::rtp::zero_crossing_hz;
use common::*;

const CALLS: usize = 20;

fn basic(transport: Transport) {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_basic.xml", CALLS)
        .transport(transport)
        .run_ok();
    for (_, v) in rec.wait_all_ended(CALLS) {
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
    SippRun::new(rec.sip_addr, "uac_genesys_pause_resume.xml", CALLS)
        .args(&["-s", "rec"])
        .run_ok();
    let all: Vec<_> = rec
        .wait_all_ended(CALLS)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
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

#[test]
fn sipp_rtp_stream_audio_is_recorded() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_rtp_stream.xml", CALLS).run_ok();
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
