//! Vendor dialog dialects driven by SIPp (Debian `sip-tester`) against the real recorder:
//! a BroadWorks-style SRC whose ACKs carry another CSeq, a Cisco CUBE whose ACK and BYE carry
//! no To tag, and an INVITE without SDP (delayed offer). Each asserts SIPp's counters and the
//! recordings: ended by BYE, the tolerance counted on /metrics, and the WAV holding the tone
//! SIPp streamed (`scripts/sipp/tone440.wav`, 3 s of 440 Hz).

mod common;

use common::rtp::{read_wav, zero_crossing_hz};
use common::*;

const CALLS: usize = 5;

/// Every recording ended by the SRC's BYE and its file holds the 3 s tone.
fn assert_recorded_tone(rec: &Recorder) {
    for (dir, v) in rec.wait_all_ended(CALLS) {
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

#[test]
fn broadworks_acks_with_another_cseq_pause_resume_and_record() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_broadworks_odd_ack_cseq.xml", CALLS)
        .rate(5, 5)
        .run_ok();
    assert_recorded_tone(&rec);
    for (_, v) in rec.wait_all_ended(CALLS) {
        let pauses = v["pauses"].as_array().expect("pauses");
        assert_eq!(pauses.len(), 1, "{v}");
        assert!(pauses[0]["ended_at"].is_string(), "pause not closed: {v}");
    }
    // Three odd ACKs per call, each counted.
    let series = "sip_recorder_sip_tolerances_total{kind=\"ack_cseq_mismatch\"}";
    rec.wait_metric(series, (3 * CALLS) as f64);
}

#[test]
fn cube_ack_and_bye_without_our_to_tag_are_matched_and_recorded() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_cube_to_tagless.xml", CALLS)
        .rate(5, 5)
        .run_ok();
    assert_recorded_tone(&rec);
    let series = "sip_recorder_sip_tolerances_total{kind=\"missing_to_tag\"}";
    rec.wait_metric(series, (2 * CALLS) as f64);
}

#[test]
fn offerless_invite_gets_an_offer_and_the_answer_in_the_ack_is_recorded() {
    let rec = Recorder::start(&[]);
    SippRun::new(rec.sip_addr, "uac_offerless_invite.xml", CALLS)
        .rate(5, 5)
        .run_ok();
    assert_recorded_tone(&rec);
    for (_, v) in rec.wait_all_ended(CALLS) {
        assert_eq!(v["streams"][0]["codec"], "PCMU", "{v}");
    }
}
