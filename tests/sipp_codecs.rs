//! SIPp (Debian `sip-tester`) as vendor SRCs whose media is not what the answer put first:
//! one offers `0 8 18 101` and relays PCMA, one offers G.729 first and sends G.729. SIPp's
//! `rtp_stream` plays audio made here by independent encoders (sox for A-law, bcg729 through
//! `tests/tools/codec_ref.py` for G.729). Asserted: SIPp's call counters, the recorder's
//! packet counters, and the decoded audio (a 1 kHz tone for the whole stream).

mod common;

use common::codec_ref;
use common::rtp::{read_wav, rms, tone_amplitude, windows, zero_crossing_hz};
use common::*;
use std::process::Command;

const CALLS: usize = 4;
const TONE_HZ: f64 = 1000.0;

/// Every recording: ended, `codec` the one sent, 150 packets (3 s of 20 ms), none
/// lost or undecodable, and a 1 kHz tone without a hole over the stream.
fn assert_recordings(rec: &Recorder, sent_codec: &str) {
    let all = rec.wait_all_ended(CALLS);
    for (dir, v) in all {
        let s = &v["streams"][0];
        assert_eq!(s["codec"], sent_codec, "{s}");
        assert_eq!(
            s["codecs_received"][sent_codec].as_u64(),
            s["packets_received"].as_u64(),
            "{s}"
        );
        let received = s["packets_received"].as_u64().unwrap_or(0);
        assert!((150..=151).contains(&received), "packets_received: {s}");
        assert_eq!(s["packets_lost"], 0, "{s}");
        assert_eq!(s["packets_undecodable"], serde_json::json!({}), "{s}");
        let wav = read_wav(&dir.join(s["file"].as_str().expect("file"))).expect("WAV");
        assert_eq!(wav.sample_rate, 8000, "{s}");
        // The tone covers the 3 s stream (the call starts a few ms before it).
        let (from, to) = (0.2, 2.9);
        let hz = zero_crossing_hz(
            &wav.samples[(from * 8000.0) as usize..(to * 8000.0) as usize],
            8000,
        );
        assert!((hz - TONE_HZ).abs() < 30.0, "{hz:.1} Hz recorded: {s}");
        // A pure tone: nearly all of the energy at 1 kHz. (A-law decoded as µ-law, the
        // failure this guards against, is periodic too but heavily distorted.)
        let region = &wav.samples[(from * 8000.0) as usize..(to * 8000.0) as usize];
        let (amp, total) = (tone_amplitude(region, 8000, TONE_HZ), rms(region));
        let purity = amp / (total * std::f64::consts::SQRT_2);
        eprintln!("{sent_codec}: 1 kHz amplitude {amp:.0}, RMS {total:.0}, purity {purity:.3}");
        assert!(purity > 0.95, "not a clean tone: purity {purity:.3}: {s}");
        let weakest = windows(&wav.samples, 8000, from, to, TONE_HZ)
            .into_iter()
            .map(|w| w.1)
            .fold(f64::INFINITY, f64::min);
        assert!(weakest > 2000.0, "a 20 ms window has RMS {weakest:.0}: {s}");
    }
}

#[test]
fn sipp_offer_0_8_18_sending_pcma_is_recorded() {
    let rec = Recorder::start(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    let made = Command::new("sox")
        .args([
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "a-law",
            "tone1k_pcma.wav",
        ])
        .args(["synth", "3", "sine", "1000", "vol", "0.25"])
        .current_dir(work.path())
        .status()
        .expect("sox (installed by scripts/test)");
    assert!(made.success(), "sox");
    SippRun::new(rec.sip_addr, "uac_offer_0_8_18_sends_pcma.xml", CALLS)
        .rate(4, 4)
        .run_in(work.path())
        .assert_all_succeeded(CALLS, "");
    // The answer lists PCMU first; the packets are PCMA, decoded as such, and recording.json
    // names the codec that came.
    assert_recordings(&rec, "PCMA");
}

#[test]
fn sipp_g729_first_offer_is_recorded() {
    let rec = Recorder::start(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    let packets = codec_ref::encode("g729", &codec_ref::tone(TONE_HZ, 8000, 3.0, 1), &[]);
    let raw: Vec<u8> = packets.concat();
    assert_eq!(raw.len(), 3 * 8000 / 8, "3 s of 8 kbit/s");
    std::fs::write(work.path().join("tone1k.g729"), raw).expect("write");
    SippRun::new(rec.sip_addr, "uac_g729_first.xml", CALLS)
        .rate(4, 4)
        .run_in(work.path())
        .assert_all_succeeded(CALLS, "");
    assert_recordings(&rec, "G729");
}
