//! Codecs end to end, against encoders and decoders the recorder shares nothing with:
//! bcg729 (G.729 Annex A/B), libopus (Opus), spandsp (G.726-32), called through
//! `tests/tools/codec_ref.py`. First the product's decoders against those reference
//! decoders sample by sample; then real calls to the real binary over real sockets, RTP
//! paced in real time, the WAV files decoded and checked for frequency, duration and holes.

mod common;

use common::codec_ref::{self, RawRtp};
use common::rtp::{Pacer, read_wav, windows, zero_crossing_hz};
use common::*;
use serde_json::Value;
use sip_recorder::media::Decoder;
use sip_recorder::media::codec::RateConverter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The product's decoders against the reference decoders

/// Speech-like test signal: three partials under a slow envelope plus a little noise.
fn rich_signal(rate: u32, seconds: f64, channels: usize) -> Vec<i16> {
    let n = (seconds * f64::from(rate)) as usize;
    let mut noise: u32 = 0x1234_5678;
    (0..n)
        .flat_map(|i| {
            let t = i as f64 / f64::from(rate);
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let mut s = 0.0;
            for (hz, a) in [(310.0, 4000.0), (1130.0, 2500.0), (2450.0, 1200.0)] {
                s += a * (2.0 * std::f64::consts::PI * hz * t).sin();
            }
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s = s * env + f64::from((noise >> 16) as i16) / 64.0;
            std::iter::repeat_n(s as i16, channels)
        })
        .collect()
}

fn decode_with_product(codec: &str, rate: u32, packets: &[Vec<u8>]) -> (Vec<i16>, Duration) {
    let mut d = Decoder::for_codec_at(codec, rate).expect("decoder");
    let mut out = Vec::new();
    let started = Instant::now();
    for p in packets {
        d.decode(p, &mut out);
    }
    (out, started.elapsed())
}

/// Signal-to-difference ratio of `b` against the reference `a`, in dB.
fn snr_db(a: &[i16], b: &[i16]) -> f64 {
    let n = a.len().min(b.len());
    let sig: f64 = a[..n].iter().map(|&x| f64::from(x).powi(2)).sum();
    let err: f64 = a[..n]
        .iter()
        .zip(&b[..n])
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if err == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / err).log10()
    }
}

fn assert_bit_exact(what: &str, reference: &[i16], ours: &[i16]) {
    assert_eq!(reference.len(), ours.len(), "{what}: sample counts");
    let mismatches = reference.iter().zip(ours).filter(|(a, b)| a != b).count();
    let first = reference.iter().zip(ours).position(|(a, b)| a != b);
    eprintln!(
        "{what}: {} samples, {mismatches} differ from the reference decoder",
        reference.len()
    );
    assert_eq!(
        mismatches, 0,
        "{what}: first difference at sample {first:?}"
    );
}

#[test]
fn g726_is_bit_exact_with_spandsp_in_both_packings() {
    let pcm = rich_signal(8000, 4.0, 1);
    for (tool, name) in [
        ("g726", "G726-32"),
        ("g726-aal2", "AAL2-G726-32"),
        ("g726", "G721"),
    ] {
        let packets = codec_ref::encode(tool, &pcm, &[]);
        let reference = codec_ref::decode(tool, &packets, &[]);
        let (ours, took) = decode_with_product(name, 8000, &packets);
        eprintln!("{name}: {} packets decoded in {took:?}", packets.len());
        assert_bit_exact(name, &reference, &ours);
        assert!(
            snr_db(&pcm, &ours) > 15.0,
            "{name}: the signal itself survives"
        );
    }
}

#[test]
fn g729_is_bit_exact_with_bcg729_with_and_without_annex_b() {
    // Two seconds of signal, one of digital silence (DTX: SID frames and gaps), one more.
    let mut pcm = rich_signal(8000, 2.0, 1);
    pcm.extend(std::iter::repeat_n(0i16, 8000));
    pcm.extend(rich_signal(8000, 1.0, 1));
    for vad in [false, true] {
        let options: &[&str] = if vad { &["--vad"] } else { &[] };
        let packets = codec_ref::encode("g729", &pcm, options);
        let sid = packets.iter().filter(|p| p.len() % 10 == 2).count();
        let empty = packets.iter().filter(|p| p.is_empty()).count();
        if vad {
            assert!(
                sid > 0 && empty > 0,
                "Annex B made no SID frames: {sid} SID, {empty} DTX"
            );
        }
        // An untransmitted packet is not sent at all; decode what would arrive.
        let sent: Vec<Vec<u8>> = packets.into_iter().filter(|p| !p.is_empty()).collect();
        let reference = codec_ref::decode("g729", &sent, &[]);
        let (ours, took) = decode_with_product("G729", 8000, &sent);
        eprintln!(
            "G.729 vad={vad}: {} packets ({sid} with SID) in {took:?}",
            sent.len()
        );
        assert_bit_exact(&format!("G.729 vad={vad}"), &reference, &ours);
    }
}

/// Best signal-to-difference ratio of `x` against `orig` over codec delays up to 12.5 ms.
fn snr_aligned(orig: &[i16], x: &[i16], rate: u32) -> f64 {
    (0..rate as usize / 80)
        .map(|lag| snr_db(orig, &x[lag.min(x.len())..]))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// At 48 kHz the decoder's output equals libopus' (same arithmetic). For 8 and 16 kHz files
/// the recorder converts that output with its own low-pass, libopus resamples inside the
/// decoder: there the measure is fidelity to the original signal, which must be as good as
/// libopus' own.
#[test]
fn opus_matches_libopus_mono_stereo_and_fec() {
    for (channels, options, out_rate) in [
        (1usize, vec![], 48000u32),
        (2, vec!["--channels", "2"], 48000),
        (1, vec!["--fec", "20"], 48000),
        (1, vec![], 16000),
        (2, vec!["--channels", "2"], 16000),
        (1, vec!["--fec", "20"], 8000),
    ] {
        let pcm = rich_signal(48000, 3.0, channels);
        let packets = codec_ref::encode("opus", &pcm, &options);
        let rate = out_rate.to_string();
        let reference = codec_ref::decode("opus", &packets, &["--rate", &rate, "--channels", "1"]);
        // What the recorder does: decode at 48 kHz, convert to the file rate.
        let (decoded, took) = decode_with_product("opus", out_rate, &packets);
        let mut converter = RateConverter::new(48000, out_rate).expect("integer ratio");
        let mut ours = Vec::new();
        converter.process(&decoded, &mut ours);
        assert_eq!(reference.len(), ours.len(), "sample counts");
        let snr = snr_db(&reference, &ours);
        let original = rich_signal(out_rate, 3.0, 1);
        // (At 48 kHz the direct comparison says it all; the delay search is slow there.)
        let (fid_ref, fid_ours) = if out_rate == 48000 {
            (f64::NAN, f64::NAN)
        } else {
            (
                snr_aligned(&original, &reference, out_rate),
                snr_aligned(&original, &ours, out_rate),
            )
        };
        eprintln!(
            "Opus {channels} ch {options:?} → {out_rate} Hz mono: {} packets in {took:?}; \
             against libopus {snr:.1} dB; fidelity to the original: libopus {fid_ref:.1} dB, \
             ours {fid_ours:.1} dB",
            packets.len()
        );
        if out_rate == 48000 {
            assert!(snr > 60.0, "Opus decode differs from libopus: {snr:.1} dB");
        } else {
            assert!(
                fid_ours >= fid_ref - 2.0,
                "Opus at {out_rate} Hz: {fid_ours:.1} dB against libopus' {fid_ref:.1} dB"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Calls over real sockets

const TONE_HZ: f64 = 1000.0;
/// 20 ms windows of the tone must not fall below this RMS (tone RMS ≈ 5,657).
const HOLE_RMS: f64 = 1500.0;
/// Slack at the edges of a region (start of the call, re-anchoring).
const EDGE_S: f64 = 0.08;
/// |file duration − wall-clock recording time| (SPEC §5: one packet), plus the reorder
/// window and timestamp rounding, as in media_e2e.
const DURATION_TOL_S: f64 = 0.081;

fn offer(m_line: &str, attrs: &[&str]) -> String {
    let mut s =
        "v=0\r\no=src 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n".to_string();
    s.push_str(m_line);
    s.push_str("\r\n");
    for a in attrs {
        s.push_str(a);
        s.push_str("\r\n");
    }
    s.push_str("a=ptime:20\r\na=sendonly\r\n");
    s
}

/// `offer` of an m= line whose last payload type is telephone-event (101).
fn offer_with_events(m_line: &str) -> String {
    offer(m_line, &["a=rtpmap:101 telephone-event/8000"])
}

struct CodecCall {
    client: SipClient,
    call: Call,
    dest: SocketAddr,
    answer: Sdp,
    t0: Instant,
}

fn start_call(rec: &Recorder, sdp: &str) -> CodecCall {
    let mut client = rec.udp();
    let mut call = Call::genesys(&client);
    let invite = call.invite_sdp(sdp);
    let ok = establish(&mut client, &mut call, &invite);
    let t0 = Instant::now();
    let answer = sdp_of(&ok);
    let port = answer.audio()[0].port;
    assert_ne!(port, 0, "refused: {answer:?}");
    CodecCall {
        client,
        call,
        dest: SocketAddr::from(([127, 0, 0, 1], port)),
        answer,
        t0,
    }
}

impl CodecCall {
    fn end(mut self, rec: &Recorder) -> (PathBuf, Value, Instant) {
        hang_up(&mut self.client, &mut self.call);
        let (dir, v) = rec.wait_recording(
            |v| v["sip_call_id"] == self.call.call_id && v["state"] == "ended",
            Duration::from_secs(10),
        );
        (dir, v, self.t0)
    }
}

/// Sends `packets` paced at 20 ms with payload type `pt`, timestamps `ts_step` apart.
fn send_paced(
    rtp: &mut RawRtp,
    pacer: &Pacer,
    first_tick: u64,
    pt: u8,
    ts_step: u32,
    packets: &[Vec<u8>],
) {
    for (i, p) in packets.iter().enumerate() {
        pacer.wait(first_tick + i as u64);
        if p.is_empty() {
            rtp.ts = rtp.ts.wrapping_add(ts_step); // DTX: nothing sent, the clock runs on
        } else {
            rtp.send(pt, p, ts_step);
        }
    }
}

struct Stream {
    samples: Vec<i16>,
    rate: u32,
    json: Value,
    wall: f64,
}

fn stream(dir: &std::path::Path, v: &Value, i: usize) -> Stream {
    let json = v["streams"][i].clone();
    let file = json["file"]
        .as_str()
        .unwrap_or_else(|| panic!("no file: {json}"));
    let wav = read_wav(&dir.join(file)).expect("WAV");
    assert_eq!(wav.channels, 1);
    eprintln!("stream {i}: {json}");
    let wall = epoch(&v["ended_at"]) - epoch(&v["started_at"]);
    let d = wav.duration_secs();
    assert!(
        (d - wall).abs() <= DURATION_TOL_S,
        "stream {i}: {d:.3} s of audio for {wall:.3} s of recording"
    );
    Stream {
        rate: wav.sample_rate,
        samples: wav.samples,
        json,
        wall,
    }
}

fn epoch(v: &Value) -> f64 {
    let t = time::OffsetDateTime::parse(
        v.as_str().expect("timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// `[from, to)` holds `hz` (zero crossings within 3 %, Goertzel) with no 20 ms hole.
fn assert_tone(what: &str, s: &Stream, from: f64, to: f64, hz: f64) {
    assert_tone_min(what, s, from, to, hz, HOLE_RMS);
}

fn assert_tone_min(what: &str, s: &Stream, from: f64, to: f64, hz: f64, hole_rms: f64) {
    let a = (from * f64::from(s.rate)) as usize;
    let b = ((to * f64::from(s.rate)) as usize).min(s.samples.len());
    assert!(
        b > a + s.rate as usize / 10,
        "{what}: region {from:.2}..{to:.2} not in the file"
    );
    let region = &s.samples[a..b];
    let zc = zero_crossing_hz(region, s.rate);
    assert!(
        (zc - hz).abs() <= hz * 0.03,
        "{what}: {from:.2}..{to:.2} s is {zc:.1} Hz by zero crossings, sent {hz} Hz"
    );
    // Median of the 20 ms windows' amplitude at `hz`: a re-anchor under load (a phase step)
    // does not hide a tone that is there, and a tone that is not there cannot pass.
    let mut amps: Vec<f64> = windows(&s.samples, s.rate, from, to, hz)
        .into_iter()
        .map(|w| w.2)
        .collect();
    amps.sort_by(f64::total_cmp);
    let amp = amps[amps.len() / 2];
    assert!(
        amp > codec_ref::AMPLITUDE * 0.5,
        "{what}: median amplitude {amp:.0} at {hz} Hz, sent {}",
        codec_ref::AMPLITUDE
    );
    let weakest = windows(&s.samples, s.rate, from, to, hz)
        .into_iter()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .expect("windows");
    assert!(
        weakest.1 >= hole_rms,
        "{what}: hole at {:.3} s (20 ms RMS {:.0})",
        weakest.0,
        weakest.1
    );
}

fn pos(t0: Instant, pacer: &Pacer, tick: u64) -> f64 {
    pacer.secs_since(t0, tick)
}

#[test]
fn g729_first_offer_records_bcg729_audio() {
    let rec = Recorder::start(&[]);
    let sdp = offer(
        "m=audio 41000 RTP/AVP 18 0 8 101",
        &["a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000"],
    );
    let c = start_call(&rec, &sdp);
    assert_eq!(
        c.answer.audio()[0].fmts,
        ["18", "0", "8", "101"],
        "{:?}",
        c.answer
    );
    let packets = codec_ref::encode("g729", &codec_ref::tone(TONE_HZ, 8000, 3.0, 1), &[]);
    let mut rtp = RawRtp::new(c.dest);
    let pacer = Pacer::new();
    send_paced(&mut rtp, &pacer, 0, 18, 160, &packets);
    let (from, to) = (
        pos(c.t0, &pacer, 0),
        pos(c.t0, &pacer, packets.len() as u64),
    );
    let (dir, v, _) = c.end(&rec);
    let s = stream(&dir, &v, 0);
    assert_eq!(
        (s.json["codec"].as_str(), s.rate),
        (Some("G729"), 8000),
        "{}",
        s.json
    );
    assert_eq!(s.json["packets_received"], rtp.sent, "{}", s.json);
    assert_tone("G.729", &s, from + EDGE_S, to - EDGE_S, TONE_HZ);
    eprintln!("G.729 call: {:.3} s recorded", s.wall);
}

#[test]
fn g729_annex_b_silence_is_comfort_noise_between_tones() {
    let rec = Recorder::start(&[]);
    let c = start_call(&rec, &offer("m=audio 41000 RTP/AVP 18", &[]));
    let mut pcm = codec_ref::tone(TONE_HZ, 8000, 1.5, 1);
    pcm.extend(std::iter::repeat_n(0i16, 12000));
    pcm.extend(codec_ref::tone(TONE_HZ, 8000, 1.5, 1));
    let packets = codec_ref::encode("g729", &pcm, &["--vad"]);
    assert!(packets.iter().any(|p| p.len() == 2), "no SID packet");
    let mut rtp = RawRtp::new(c.dest);
    let pacer = Pacer::new();
    send_paced(&mut rtp, &pacer, 0, 18, 160, &packets);
    let t0 = c.t0;
    let p = |tick| pos(t0, &pacer, tick);
    let (dir, v, _) = c.end(&rec);
    let s = stream(&dir, &v, 0);
    assert_eq!(
        s.json["packets_undecodable"],
        serde_json::json!({}),
        "{}",
        s.json
    );
    assert_tone(
        "G.729 before DTX",
        &s,
        p(0) + EDGE_S,
        p(75) - EDGE_S,
        TONE_HZ,
    );
    assert_tone(
        "G.729 after DTX",
        &s,
        p(150) + 0.2,
        p(225) - EDGE_S,
        TONE_HZ,
    );
    // Silence sent as SID/DTX comes back quiet (comfort noise of digital silence).
    let quiet = windows(&s.samples, s.rate, p(75) + 0.2, p(150) - 0.1, TONE_HZ)
        .into_iter()
        .map(|w| w.1)
        .fold(0.0, f64::max);
    assert!(quiet < 300.0, "DTX region RMS {quiet:.0}");
}

#[test]
fn opus_mono_stereo_and_fec_from_libopus() {
    let rec = Recorder::start(&[]);
    let sdp = offer(
        "m=audio 41000 RTP/AVP 111 0 101",
        &[
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 useinbandfec=1",
            "a=rtpmap:101 telephone-event/8000",
        ],
    );
    // The FEC case at 16 kbit/s: SILK carries in-band FEC (CELT, which a pure tone at the
    // default rate ends up in, has none).
    for (channels, options) in [
        (1usize, vec![]),
        (2, vec!["--channels", "2"]),
        (1, vec!["--fec", "30", "--bitrate", "16000"]),
    ] {
        let c = start_call(&rec, &sdp);
        let pcm = codec_ref::tone(TONE_HZ, 48000, 3.0, channels);
        let packets = codec_ref::encode("opus", &pcm, &options);
        let fec = !options.is_empty() && options[0] == "--fec";
        let mut rtp = RawRtp::new(c.dest);
        let pacer = Pacer::new();
        for (i, p) in packets.iter().enumerate() {
            pacer.wait(i as u64);
            // With FEC, every 10th packet is lost on the way: the next one repairs it.
            if fec && i % 10 == 5 {
                rtp.skip(960);
            } else {
                rtp.send(111, p, 960);
            }
        }
        let (from, to) = (
            pos(c.t0, &pacer, 0),
            pos(c.t0, &pacer, packets.len() as u64),
        );
        let (dir, v, _) = c.end(&rec);
        let s = stream(&dir, &v, 0);
        let what = format!("Opus {channels} ch {options:?}");
        assert_eq!(
            (s.json["codec"].as_str(), s.rate),
            (Some("opus"), 16000),
            "{what}: {}",
            s.json
        );
        // A frame rebuilt from FEC is the encoder's low-rate copy: at 16 kbit/s libopus' own
        // decoder gives those frames an RMS of 2,000–2,600 against the tone's 5,657 (and so
        // does the recorder's; a concealment-free gap would be 0).
        let hole = if fec { 500.0 } else { HOLE_RMS };
        assert_tone_min(&what, &s, from + EDGE_S, to - EDGE_S, TONE_HZ, hole);
        if fec {
            assert!(
                s.json["packets_lost"].as_u64() == Some(15),
                "{what}: {}",
                s.json
            );
        }
    }
}

#[test]
fn g726_three_names_from_spandsp() {
    let rec = Recorder::start(&[]);
    for (pt, rtpmap, tool) in [
        (97u8, Some("a=rtpmap:97 G726-32/8000"), "g726"),
        (98, Some("a=rtpmap:98 AAL2-G726-32/8000"), "g726-aal2"),
        (2, None, "g726"),
    ] {
        let attrs: Vec<&str> = rtpmap.into_iter().collect();
        let c = start_call(
            &rec,
            &offer(&format!("m=audio 41000 RTP/AVP {pt} 0 8"), &attrs),
        );
        assert_eq!(
            c.answer.audio()[0].fmts[0],
            pt.to_string(),
            "{:?}",
            c.answer
        );
        let packets = codec_ref::encode(tool, &codec_ref::tone(TONE_HZ, 8000, 2.0, 1), &[]);
        let mut rtp = RawRtp::new(c.dest);
        let pacer = Pacer::new();
        send_paced(&mut rtp, &pacer, 0, pt, 160, &packets);
        let (from, to) = (
            pos(c.t0, &pacer, 0),
            pos(c.t0, &pacer, packets.len() as u64),
        );
        let (dir, v, _) = c.end(&rec);
        let s = stream(&dir, &v, 0);
        let what = format!("G.726 PT {pt} {rtpmap:?}");
        assert_eq!(s.rate, 8000, "{what}");
        assert_tone(&what, &s, from + EDGE_S, to - EDGE_S, TONE_HZ);
    }
}

fn g711_packets(alaw: bool, hz: f64, first_sample: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|p| {
            (0..160)
                .map(|i| {
                    let n = first_sample + p * 160 + i;
                    let s = (codec_ref::AMPLITUDE
                        * (2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0).sin())
                        as i16;
                    if alaw {
                        common::rtp::linear_to_alaw(s)
                    } else {
                        common::rtp::linear_to_ulaw(s)
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn pcma_on_a_pcmu_first_answer_is_recorded_audibly() {
    let rec = Recorder::start(&[]);
    let c = start_call(&rec, &offer_with_events("m=audio 41000 RTP/AVP 0 8 101"));
    assert_eq!(
        c.answer.audio()[0].fmts,
        ["0", "8", "101"],
        "{:?}",
        c.answer
    );
    let mut rtp = RawRtp::new(c.dest);
    let pacer = Pacer::new();
    send_paced(
        &mut rtp,
        &pacer,
        0,
        8,
        160,
        &g711_packets(true, TONE_HZ, 0, 100),
    );
    let (from, to) = (pos(c.t0, &pacer, 0), pos(c.t0, &pacer, 100));
    let (dir, v, _) = c.end(&rec);
    let s = stream(&dir, &v, 0);
    assert_eq!(s.json["packets_received"], 100, "{}", s.json);
    assert_eq!(s.json["codec"], "PCMA", "the codec that came: {}", s.json);
    assert_eq!(
        s.json["codecs_received"],
        serde_json::json!({"PCMA": 100}),
        "{}",
        s.json
    );
    assert_tone(
        "PCMA on PCMU-first",
        &s,
        from + EDGE_S,
        to - EDGE_S,
        TONE_HZ,
    );
}

#[test]
fn pcmu_pcma_g722_switch_mid_call_stays_on_the_timeline() {
    let rec = Recorder::start(&[]);
    let c = start_call(&rec, &offer_with_events("m=audio 41000 RTP/AVP 0 8 9 101"));
    let mut rtp = RawRtp::new(c.dest);
    let pacer = Pacer::new();
    // One second each, one SSRC, continuous sequence and timestamps, three tones.
    send_paced(
        &mut rtp,
        &pacer,
        0,
        0,
        160,
        &g711_packets(false, 440.0, 0, 50),
    );
    send_paced(
        &mut rtp,
        &pacer,
        50,
        8,
        160,
        &g711_packets(true, 660.0, 8000, 50),
    );
    let mut g722 = ezk_g722::libg722::encoder::Encoder::new(
        ezk_g722::libg722::Bitrate::Mode1_64000,
        false,
        false,
    );
    let g722_packets: Vec<Vec<u8>> = (0..50)
        .map(|p| {
            let pcm: Vec<i16> = (0..320)
                .map(|i| {
                    let n = 32000 + p * 320 + i;
                    (codec_ref::AMPLITUDE
                        * (2.0 * std::f64::consts::PI * 880.0 * n as f64 / 16000.0).sin())
                        as i16
                })
                .collect();
            g722.encode(&pcm)
        })
        .collect();
    send_paced(&mut rtp, &pacer, 100, 9, 160, &g722_packets);
    let t0 = c.t0;
    let p = |tick| pos(t0, &pacer, tick);
    let (dir, v, _) = c.end(&rec);
    let s = stream(&dir, &v, 0);
    assert_eq!(
        s.rate, 16000,
        "G.722 in the answer: the file is 16 kHz; {}",
        s.json
    );
    assert_eq!(s.json["packets_received"], 150, "{}", s.json);
    assert_eq!(s.json["packets_lost"], 0, "{}", s.json);
    assert_eq!(
        s.json["codecs_received"],
        serde_json::json!({"PCMU": 50, "PCMA": 50, "G722": 50}),
        "{}",
        s.json
    );
    assert_tone("PCMU part", &s, p(0) + EDGE_S, p(50) - 0.02, 440.0);
    assert_tone("PCMA part", &s, p(50) + 0.02, p(100) - 0.02, 660.0);
    assert_tone("G.722 part", &s, p(100) + 0.02, p(150) - EDGE_S, 880.0);
}

#[test]
fn undecodable_payload_type_is_counted_flagged_and_warned() {
    let rec = Recorder::start(&[]);
    // GSM (3) is offered but not storable: the answer leaves it out, the SRC sends it anyway.
    let c = start_call(&rec, &offer("m=audio 41000 RTP/AVP 3 0", &[]));
    assert_eq!(c.answer.audio()[0].fmts, ["0"], "{:?}", c.answer);
    let mut rtp = RawRtp::new(c.dest);
    let pacer = Pacer::new();
    send_paced(&mut rtp, &pacer, 0, 3, 160, &vec![vec![0xD5u8; 33]; 50]);
    send_paced(
        &mut rtp,
        &pacer,
        50,
        0,
        160,
        &g711_packets(false, TONE_HZ, 8000, 50),
    );
    let t0 = c.t0;
    let p = |tick| pos(t0, &pacer, tick);
    let (dir, v, _) = c.end(&rec);
    let metrics = metrics_text(rec.http_addr);
    let s = stream(&dir, &v, 0);
    assert_eq!(
        s.json["packets_undecodable"],
        serde_json::json!({"3": 50}),
        "{}",
        s.json
    );
    assert_eq!(s.json["packets_received"], 100, "{}", s.json);
    assert_eq!(
        s.json["packets_lost"], 0,
        "undecodable is not lost: {}",
        s.json
    );
    // A recording with audio missing never looks complete.
    assert_eq!(s.json["complete"], false, "{}", s.json);
    assert_eq!(v["complete"], false, "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("payload type 3 not decoded"),
        "{v}"
    );
    assert_tone(
        "PCMU after GSM",
        &s,
        p(50) + EDGE_S,
        p(100) - EDGE_S,
        TONE_HZ,
    );
    let log = rec.log();
    let warnings = log.matches("cannot decode").count();
    assert_eq!(warnings, 1, "one warning per stream:\n{log}");
    assert!(
        metrics.contains("sip_recorder_rtp_packets_undecodable_total{payload_type=\"3\"} 50"),
        "{metrics}"
    );
}
