//! Black-box tests of packet accounting from RTCP, silent streams and RFC 2543 hold
//! (SPEC §5): real RTP and RTCP (plain and SRTCP) paced in real time to the real binary;
//! recording.json and the WAV files (read with `hound`) are checked.

mod common;

use common::rtp::*;
use common::srtp::*;
use common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);
/// Slack at the edges of a region placed by the sender's clock (see media_e2e.rs).
const EDGE_S: f64 = 0.080;
const SILENCE_RMS: f64 = 10.0;

fn pcmu_line(port: u16, direction: &str, mux: bool) -> String {
    format!(
        "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n{}a={direction}\r\n",
        if mux { "a=rtcp-mux\r\n" } else { "" }
    )
}

fn offer(version: u64, connection: &str, lines: &[String]) -> String {
    let mut sdp = format!(
        "v=0\r\no=client 4242 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {connection}\r\nt=0 0\r\n"
    );
    for l in lines {
        sdp.push_str(l);
    }
    sdp
}

struct Established {
    client: SipClient,
    call: Call,
    answer: Sdp,
    t0: Instant,
}

fn call_with(rec: &Recorder, sdp: &str) -> Established {
    let mut client = rec.udp();
    let mut call = Call::genesys(&client);
    let invite = call.invite_sdp(sdp);
    let ok = establish(&mut client, &mut call, &invite);
    Established {
        t0: Instant::now(),
        answer: sdp_of(&ok),
        client,
        call,
    }
}

fn rtp_dest(answer: &Sdp, i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], answer.audio()[i].port))
}

/// RTCP port of answer stream `i`: RTP + 1, or the RTP port when the answer muxes.
fn rtcp_dest(answer: &Sdp, i: usize) -> SocketAddr {
    let m = answer.audio()[i];
    let port = if m.has_attr("rtcp-mux") {
        m.port
    } else {
        m.port + 1
    };
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn wav_of(dir: &std::path::Path, v: &Value, i: usize) -> Wav {
    let file = v["streams"][i]["file"].as_str().expect("stream file");
    read_wav(&dir.join(file)).expect("readable WAV")
}

/// Every 20 ms window in [from, to) holds the tone (`loud`) or is silent (`!loud`).
fn assert_region(what: &str, wav: &Wav, from: f64, to: f64, loud: bool) {
    let s = wav.channel(0);
    for (at, rms, _) in windows(&s, wav.sample_rate, from, to, 440.0) {
        if loud {
            assert!(
                rms > TONE_RMS,
                "{what}: window at {at:.3} s has RMS {rms:.0}"
            );
        } else {
            assert!(
                rms < SILENCE_RMS,
                "{what}: window at {at:.3} s has RMS {rms:.0}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// RTCP sender reports

#[test]
fn sender_reports_give_packets_sent_on_separate_and_muxed_rtcp() {
    let rec = Recorder::start(&[]);
    let sdp = offer(
        1,
        "127.0.0.1",
        &[
            pcmu_line(41000, "sendonly", false),
            pcmu_line(41002, "sendonly", true),
        ],
    );
    let mut c = call_with(&rec, &sdp);
    assert!(
        !c.answer.audio()[0].has_attr("rtcp-mux") && c.answer.audio()[1].has_attr("rtcp-mux"),
        "mux answered only where offered: {:?}",
        c.answer
    );
    let mut senders = [
        RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 0), 440.0),
        RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 1), 440.0),
    ];
    let pacer = Pacer::new();
    for t in 0..150 {
        pacer.wait(t);
        for (i, s) in senders.iter_mut().enumerate() {
            s.send_tone(t);
            if t % 50 == 49 {
                s.send_sr(t, rtcp_dest(&c.answer, i));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (_, v) = rec.wait_ended(&c.call.call_id);
    for (i, s) in senders.iter().enumerate() {
        let st = &v["streams"][i];
        assert_eq!(u64_of(&st["packets_sent"]), 150, "stream {i}: {st}");
        assert_eq!(u64_of(&st["packets_sent"]), s.packets_counted());
        assert_eq!(u64_of(&st["octets_sent"]), s.octets_counted, "{st}");
        assert_eq!(u64_of(&st["packets_received"]), 150, "{st}");
        assert_eq!(u64_of(&st["packets_lost"]), 0, "{st}");
        assert_eq!(u64_of(&st["rtcp_packets"]), 3, "{st}");
        assert_eq!(st["complete"], true, "{st}");
        assert_eq!(st["silent"], false, "{st}");
        assert_eq!(u64_of(&st["packet_loss_bursts"]["count"]), 0, "{st}");
        assert_eq!(u64_of(&st["packet_gap"]["count"]), 1, "{st}");
        assert_eq!(f64_of(&st["packet_gap"]["density_percent"]), 0.0, "{st}");
        let gap = f64_of(&st["packet_gap"]["duration_seconds"]);
        assert!((2.9..3.1).contains(&gap), "one gap over the 3 s: {st}");
    }
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
}

#[test]
fn two_second_gap_shows_in_loss_stats_and_makes_the_stream_incomplete() {
    let rec = Recorder::start(&[]);
    let mut c = call_with(
        &rec,
        &offer(1, "127.0.0.1", &[pcmu_line(41000, "sendonly", false)]),
    );
    let mut s = RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 0), 440.0);
    let pacer = Pacer::new();
    // 2 s of tone, 2 s the network loses (the SRC still counts the packets), 2 s of tone.
    for t in 0..300 {
        pacer.wait(t);
        if (100..200).contains(&t) {
            s.lose_tone(t);
        } else {
            s.send_tone(t);
        }
        if t % 50 == 49 {
            s.send_sr(t, rtcp_dest(&c.answer, 0));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (dir, v) = rec.wait_ended(&c.call.call_id);
    let st = &v["streams"][0];
    assert_eq!(u64_of(&st["packets_sent"]), 300, "{st}");
    assert_eq!(u64_of(&st["packets_sent"]), s.packets_counted());
    assert_eq!(u64_of(&st["packets_received"]), 200, "{st}");
    assert_eq!(u64_of(&st["packets_lost"]), 100, "{st}");
    // RFC 3611: the outage is one burst of 2 s at 100 % loss between two loss-free gaps.
    let bursts = &st["packet_loss_bursts"];
    assert_eq!(u64_of(&bursts["count"]), 1, "{st}");
    assert!(
        (1.95..2.05).contains(&f64_of(&bursts["duration_seconds"])),
        "{st}"
    );
    assert_eq!(f64_of(&bursts["density_percent"]), 100.0, "{st}");
    let gap = &st["packet_gap"];
    assert_eq!(u64_of(&gap["count"]), 2, "{st}");
    assert!(
        (1.95..2.05).contains(&f64_of(&gap["duration_seconds"])),
        "{st}"
    );
    assert_eq!(f64_of(&gap["density_percent"]), 0.0, "{st}");
    // And on the wall clock: one stretch of about 2 s without packets.
    assert_eq!(u64_of(&st["media_gaps"]["count"]), 1, "{st}");
    let longest = u64_of(&st["media_gaps"]["longest_ms"]);
    assert!((1990..2150).contains(&longest), "{st}");
    assert_eq!(st["complete"], false, "{st}");
    assert_eq!(v["complete"], false, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("received 200 of the 300 packets the sender reports")
            && warnings.contains("media gaps"),
        "{warnings}"
    );
    // The file keeps the timeline: tone, 2 s of silence, tone.
    let wav = wav_of(&dir, &v, 0);
    let at = |tick| pacer.secs_since(c.t0, tick);
    assert_region("before", &wav, at(0) + EDGE_S, at(100) - EDGE_S, true);
    assert_region("gap", &wav, at(100) + EDGE_S, at(200) - EDGE_S, false);
    assert_region("after", &wav, at(200) + EDGE_S, at(300) - EDGE_S, true);
}

#[test]
fn srtcp_sender_reports_count_srtp_packets() {
    let rec = Recorder::start(&[]);
    let suite = Suite::Cm80;
    let key = suite.random_key();
    let mut c = call_with(&rec, &savp_sdp(1, &[(suite, &key)], "sendonly"));
    let mut s = SrtpSender::new(rtp_dest(&c.answer, 0), 440.0, suite, &key);
    let rtcp = rtcp_dest(&c.answer, 0);
    let pacer = Pacer::new();
    for t in 0..100 {
        pacer.wait(t);
        s.send_tone(t);
        if t % 25 == 24 {
            s.send_srtcp_sr(t, rtcp);
        }
    }
    // A plain (unencrypted) SR on an SRTP stream is not believed.
    let mut forged = s.rtp.sender_report(100);
    forged[20..24].copy_from_slice(&9999u32.to_be_bytes());
    s.rtp.send_datagram(&forged, rtcp);
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (_, v) = rec.wait_ended(&c.call.call_id);
    let st = &v["streams"][0];
    assert_eq!(st["encrypted"], true, "{st}");
    assert_eq!(u64_of(&st["packets_sent"]), 100, "{st}");
    assert_eq!(u64_of(&st["packets_sent"]), s.legit_sent);
    assert_eq!(u64_of(&st["rtcp_packets"]), 4, "{st}");
    assert_eq!(u64_of(&st["rtcp_errors"]), 1, "the plain SR: {st}");
    assert_eq!(st["complete"], true, "{st}");
}

// ---------------------------------------------------------------------------------------
// Silence

#[test]
fn silent_stream_is_flagged_in_recording_json_and_metrics() {
    let rec = Recorder::start(&[]);
    let lines = [
        pcmu_line(41000, "sendonly", false),
        pcmu_line(41002, "sendonly", false),
    ];
    let mut c = call_with(&rec, &offer(1, "127.0.0.1", &lines));
    let mut talker = RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 0), 440.0);
    // The far end's leg carries packets, but every payload byte is zero.
    let mut mute = RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 1), 440.0);
    let pacer = Pacer::new();
    for t in 0..100 {
        pacer.wait(t);
        talker.send_tone(t);
        mute.send_payload(t, &[0u8; 160]);
    }
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (_, v) = rec.wait_ended(&c.call.call_id);
    let (talk, silent) = (&v["streams"][0], &v["streams"][1]);
    assert_eq!(talk["silent"], false, "{talk}");
    assert!(f64_of(&talk["peak_level"]) > 4000.0, "{talk}");
    assert_eq!(silent["silent"], true, "{silent}");
    assert_eq!(u64_of(&silent["packets_received"]), 100, "{silent}");
    assert_eq!(silent["complete"], false, "{silent}");
    assert_eq!(v["complete"], false, "{v}");
    assert!(
        v["warnings"].to_string().contains("stream 1: silent audio"),
        "{v}"
    );
    assert_eq!(rec.metric("sip_recorder_silent_streams_total "), 1.0);
    assert_eq!(rec.metric("sip_recorder_incomplete_recordings_total "), 1.0);
    assert!(
        rec.log().contains("stream is silent throughout"),
        "warning in the log"
    );
}

// ---------------------------------------------------------------------------------------
// RFC 2543 hold

#[test]
fn c_0000_hold_pauses_and_the_next_real_address_resumes() {
    let rec = Recorder::start(&[]);
    let lines = [
        pcmu_line(41000, "sendonly", false),
        pcmu_line(41002, "sendonly", false),
    ];
    let mut c = call_with(&rec, &offer(1, "127.0.0.1", &lines));
    let mut senders = [
        RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 0), 440.0),
        RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 1), 440.0),
    ];
    let pacer = Pacer::new();
    let reinvite = |c: &mut Established, version: u64, connection: &str| -> Sdp {
        let re = c.call.reinvite(&offer(version, connection, &lines), "");
        c.client.send(&re);
        let ok = c.client.expect_reply(&re, 200, T);
        let ack = c.call.ack_2xx(&ok);
        c.client.send(&ack);
        sdp_of(&ok)
    };
    send_tones(&pacer, 0..50, &mut senders.iter_mut().collect::<Vec<_>>());
    // BroadWorks hold: the same sendonly lines, session c= 0.0.0.0.
    let held = reinvite(&mut c, 2, "0.0.0.0");
    for m in held.audio() {
        assert_eq!(m.direction(), "inactive", "hold answer: {held:?}");
    }
    rec.wait_call_state(&c.call.call_id, "paused", T);
    pacer.wait(100);
    let resumed = reinvite(&mut c, 3, "127.0.0.1");
    for m in resumed.audio() {
        assert_eq!(m.direction(), "recvonly", "resume answer: {resumed:?}");
    }
    rec.wait_call_state(&c.call.call_id, "active", T);
    let from = pacer.next_tick();
    send_tones(
        &pacer,
        from..from + 50,
        &mut senders.iter_mut().collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (dir, v) = rec.wait_ended(&c.call.call_id);
    let pauses = v["pauses"].as_array().expect("pauses");
    assert_eq!(pauses.len(), 1, "{v}");
    assert!(pauses[0]["ended_at"].is_string(), "{v}");
    let at = |tick| pacer.secs_since(c.t0, tick);
    for i in 0..2 {
        let wav = wav_of(&dir, &v, i);
        assert_region("before hold", &wav, at(0) + EDGE_S, at(50) - EDGE_S, true);
        assert_region("held", &wav, at(50) + EDGE_S, at(100) - EDGE_S, false);
        assert_region(
            "resumed",
            &wav,
            at(from) + EDGE_S,
            at(from + 50) - EDGE_S,
            true,
        );
    }
}

// ---------------------------------------------------------------------------------------
// More than two streams

fn three_party_call(rec: &Recorder) -> (Established, Vec<RtpSender>, Pacer) {
    let lines = [
        pcmu_line(41000, "sendonly", false),
        pcmu_line(41002, "sendonly", false),
        pcmu_line(41004, "sendonly", false),
    ];
    let c = call_with(rec, &offer(1, "127.0.0.1", &lines));
    let senders = [440.0, 660.0, 880.0]
        .iter()
        .enumerate()
        .map(|(i, &hz)| RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, i), hz))
        .collect();
    (c, senders, Pacer::new())
}

fn assert_mixed_has_all(dir: &std::path::Path, v: &Value, from: f64, to: f64) {
    assert_eq!(v["mixed_file"], "mixed.wav", "{v}");
    assert_eq!(v["stereo_file"], "stereo.wav", "{v}");
    let mixed = read_wav(&dir.join("mixed.wav")).expect("mixed.wav");
    let recorded = f64_of(&v["mixed_duration_seconds"]);
    assert!((mixed.duration_secs() - recorded).abs() < 0.002, "{v}");
    let s = mixed.channel(0);
    let w = window(&s, mixed.sample_rate, from, to);
    for hz in [440.0, 660.0, 880.0] {
        let a = tone_amplitude(w, mixed.sample_rate, hz);
        assert!(a > TONE_AMPLITUDE / 2.0, "{hz} Hz in mixed.wav: {a:.0}");
    }
}

#[test]
fn three_streams_get_mixed_wav_at_the_end_and_after_a_crash() {
    let mut rec = Recorder::start(&[]);
    let (mut c, mut senders, pacer) = three_party_call(&rec);
    send_tones(&pacer, 0..50, &mut senders.iter_mut().collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (dir, v) = rec.wait_ended(&c.call.call_id);
    let at = |tick| pacer.secs_since(c.t0, tick);
    assert_mixed_has_all(&dir, &v, at(0) + EDGE_S, at(50) - EDGE_S);

    // The same call cut by kill -9: recovery writes mixed.wav.
    let (c, mut senders, pacer) = three_party_call(&rec);
    send_tones(&pacer, 0..75, &mut senders.iter_mut().collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(1200)); // past the writer's flush interval
    rec.kill9();
    rec.restart();
    let (dir, v) = rec.wait_ended(&c.call.call_id);
    assert_eq!(v["end_reason"], "recovered", "{v}");
    let at = |tick| pacer.secs_since(c.t0, tick);
    assert_mixed_has_all(&dir, &v, at(0) + EDGE_S, at(75) - 0.5);
}

#[test]
fn second_party_added_by_reinvite_gets_its_file_and_a_stereo_file() {
    let rec = Recorder::start(&[]);
    let first = [pcmu_line(41000, "sendonly", false)];
    let mut c = call_with(&rec, &offer(1, "127.0.0.1", &first));
    let mut a = RtpSender::new(Codec::Pcmu, rtp_dest(&c.answer, 0), 440.0);
    let pacer = Pacer::new();
    send_tones(&pacer, 0..50, &mut [&mut a]);
    // Consultation: a second party joins.
    let both = [first[0].clone(), pcmu_line(41002, "sendonly", false)];
    let re = c.call.reinvite(&offer(2, "127.0.0.1", &both), "");
    c.client.send(&re);
    let ok = c.client.expect_reply(&re, 200, T);
    let ack = c.call.ack_2xx(&ok);
    c.client.send(&ack);
    let answer = sdp_of(&ok);
    assert_eq!(answer.audio().len(), 2, "{answer:?}");
    assert_eq!(
        answer.audio()[0].port,
        c.answer.audio()[0].port,
        "first keeps its port"
    );
    let mut b = RtpSender::new(Codec::Pcmu, rtp_dest(&answer, 1), 660.0);
    let join = pacer.next_tick();
    send_tones(&pacer, join..join + 50, &mut [&mut a, &mut b]);
    std::thread::sleep(Duration::from_millis(100));
    hang_up(&mut c.client, &mut c.call);
    let (dir, v) = rec.wait_ended(&c.call.call_id);
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2, "{v}");
    let at = |tick| pacer.secs_since(c.t0, tick);
    let joined = f64_of(&streams[1]["joined_at_seconds"]);
    assert!(
        (joined - at(join)).abs() < 0.1,
        "joined at {joined}, sent from {}",
        at(join)
    );
    assert_eq!(v["stereo_file"], "stereo.wav", "{v}");
    assert_eq!(v["mixed_file"], "stereo.wav", "{v}");
    let stereo = read_wav(&dir.join("stereo.wav")).expect("stereo.wav");
    assert_eq!(stereo.channels, 2);
    let recorded = f64_of(&v["stereo_duration_seconds"]);
    assert!((stereo.duration_secs() - recorded).abs() < 0.002, "{v}");
    let (left, right) = (stereo.channel(0), stereo.channel(1));
    let rate = stereo.sample_rate;
    let amp = |s: &[i16], from: f64, to: f64, hz: f64| {
        tone_amplitude(window(s, rate, from, to), rate, hz)
    };
    assert!(amp(&left, at(0) + EDGE_S, at(50) - EDGE_S, 440.0) > TONE_AMPLITUDE / 2.0);
    assert!(amp(&left, at(join) + EDGE_S, at(join + 50) - EDGE_S, 440.0) > TONE_AMPLITUDE / 2.0);
    let before = window(&right, rate, 0.0, joined - 0.05);
    assert!(
        before.iter().all(|&s| s == 0),
        "right channel silent before the join"
    );
    assert!(amp(&right, at(join) + EDGE_S, at(join + 50) - EDGE_S, 660.0) > TONE_AMPLITUDE / 2.0);
}
