//! Timeline tests on a virtual clock: `start + offset` instants, synthetic packets, exact
//! sample counts.

use super::*;
use crate::media::codec::g711;
use crate::media::rtp::write_packet;

const PCMU: u8 = 0;
const G722: u8 = 9;
const DTMF: u8 = 101;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// PCMU byte of the `k`-th packet: every packet decodes to its own non-zero level, so the
/// output shows which packet landed where.
fn level_byte(k: u64) -> u8 {
    (k % 100) as u8
}

fn level(k: u64) -> i16 {
    let mut v = Vec::new();
    g711::decode_ulaw(&[level_byte(k)], &mut v);
    v[0]
}

struct Rig {
    tl: StreamTimeline,
    start: Instant,
    out: Vec<i16>,
    /// Samples emitted before `out` was last cleared.
    cleared: usize,
    wire: Vec<u8>,
    /// Samples per packet interval at the output rate, for the tracking check.
    packet: i64,
}

/// The RTP header fields a test sets.
#[derive(Debug, Clone, Copy)]
struct Header {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

impl Rig {
    fn new(cfg: impl FnOnce(&mut TimelineConfig)) -> Self {
        Self::with_codec("PCMU", PCMU, cfg)
    }

    fn with_codec(name: &str, pt: u8, cfg: impl FnOnce(&mut TimelineConfig)) -> Self {
        let decoder = Decoder::for_codec(name).expect("supported codec");
        let mut config = TimelineConfig::for_decoder(&decoder);
        config.dtmf = Some((DTMF, 8000));
        cfg(&mut config);
        let packet = i64::from(config.sample_rate) / 50;
        let start = Instant::now();
        Rig {
            tl: StreamTimeline::new(config, pt, decoder, start).expect("same rate"),
            start,
            out: Vec::new(),
            cleared: 0,
            wire: Vec::new(),
            packet,
        }
    }

    fn send_raw(&mut self, at: Duration, h: Header, payload: &[u8]) {
        write_packet(&mut self.wire, h.marker, h.pt, h.seq, h.ts, h.ssrc, payload);
        let packet = RtpPacket::parse(&self.wire).expect("well-formed");
        let now = self.start + at;
        self.tl.push(now, &packet);
        self.poll(at);
    }

    /// The `k`-th 20 ms PCMU packet of a source, arriving at `at`.
    fn send(&mut self, at: Duration, k: u64, seq0: u16, ts0: u32, ssrc: u32) {
        let payload = [level_byte(k); 160];
        let seq = seq0.wrapping_add(k as u16);
        let ts = ts0.wrapping_add((k as u32).wrapping_mul(160));
        self.send_raw(
            at,
            Header {
                marker: false,
                pt: PCMU,
                seq,
                ts,
                ssrc,
            },
            &payload,
        );
    }

    /// Polls and checks that the output follows the wall clock: at least up to the horizon,
    /// at most one packet beyond it.
    fn poll(&mut self, at: Duration) {
        let now = self.start + at;
        self.tl.poll(now, &mut self.out);
        let horizon = self.tl.wall_position(now) - self.tl.window();
        let len = (self.cleared + self.out.len()) as i64;
        if horizon > 0 {
            assert!(
                len >= horizon && len < horizon + self.packet,
                "at {at:?}: {len} samples, horizon {horizon}"
            );
        }
    }

    /// Forgets the samples kept so far (the long test only counts them).
    fn clear_out(&mut self) {
        self.cleared += self.out.len();
        self.out.clear();
    }

    fn finish(&mut self, at: Duration) {
        self.tl.finish(self.start + at, &mut self.out);
    }

    /// Asserts the 160 samples of output packet slot `slot` all equal `value`.
    fn assert_slot(&self, slot: usize, value: i16) {
        let s = &self.out[slot * 160..(slot + 1) * 160];
        assert!(
            s.iter().all(|&x| x == value),
            "slot {slot}: {:?} != {value}",
            &s[..4]
        );
    }

    fn zeros(&self, range: std::ops::Range<usize>) -> bool {
        self.out[range].iter().all(|&x| x == 0)
    }
}

/// Sends packets `ks` of one source on time (packet `k` at `offset + 20k` ms).
fn on_time(rig: &mut Rig, ks: impl IntoIterator<Item = u64>, offset: Duration) {
    for k in ks {
        rig.send(offset + ms(20 * k), k, 1000, 5000, 0xAAAA);
    }
}

#[test]
fn clean_pcmu_10s() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..500, Duration::ZERO);
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
    let stats = rig.tl.stats();
    assert_eq!(
        stats,
        StreamStats {
            packets_received: 500,
            packets_lost: 0,
            packets_duplicate: 0,
            packets_late: 0,
            jitter_ms: 0.0,
            ssrcs: vec![0xAAAA],
            packets_undecodable: Vec::new(),
            audio_by_payload_type: vec![(PCMU, "PCMU", 500)],
        }
    );
}

#[test]
fn loss_of_three_packets_is_silence_in_place() {
    let mut rig = Rig::new(|_| {});
    on_time(
        &mut rig,
        (0..500).filter(|k| !(100..103).contains(k)),
        Duration::ZERO,
    );
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    assert!(rig.zeros(16_000..16_480));
    rig.assert_slot(99, level(99));
    rig.assert_slot(103, level(103));
    let stats = rig.tl.stats();
    assert_eq!((stats.packets_received, stats.packets_lost), (497, 3));
}

#[test]
fn reorder_within_the_window() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..50, Duration::ZERO);
    // 51 and 52 overtake 50, which arrives 45 ms after its time (window: 60 ms).
    rig.send(ms(1020), 51, 1000, 5000, 0xAAAA);
    rig.send(ms(1040), 52, 1000, 5000, 0xAAAA);
    rig.send(ms(1045), 50, 1000, 5000, 0xAAAA);
    on_time(&mut rig, 53..500, Duration::ZERO);
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
    let stats = rig.tl.stats();
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
    assert!(stats.jitter_ms > 0.0);
}

#[test]
fn reorder_beyond_the_window_is_late() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..50, Duration::ZERO);
    on_time(&mut rig, 51..60, Duration::ZERO);
    rig.send(ms(1200), 50, 1000, 5000, 0xAAAA); // 200 ms after its time
    on_time(&mut rig, 60..500, Duration::ZERO);
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    assert!(rig.zeros(8000..8160));
    rig.assert_slot(51, level(51));
    let stats = rig.tl.stats();
    assert_eq!((stats.packets_received, stats.packets_lost), (500, 0));
    assert_eq!(stats.packets_late, 1);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut rig = Rig::new(|_| {});
    for k in 0..500u64 {
        rig.send(ms(20 * k), k, 1000, 5000, 0xAAAA);
        if (10..20).contains(&k) {
            rig.send(ms(20 * k + 1), k, 1000, 5000, 0xAAAA);
        }
        if k == 60 {
            // A copy of a packet played out long ago (still within the history).
            rig.send(ms(20 * k + 2), 5, 1000, 5000, 0xAAAA);
        }
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
    let stats = rig.tl.stats();
    assert_eq!(stats.packets_received, 511);
    assert_eq!(stats.packets_duplicate, 11);
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
}

#[test]
fn sequence_wrap_at_65535() {
    let mut rig = Rig::new(|_| {});
    for k in 0..500u64 {
        rig.send(ms(20 * k), k, 65_300, 5000, 0xAAAA);
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
    let stats = rig.tl.stats();
    assert_eq!(
        (
            stats.packets_lost,
            stats.packets_late,
            stats.packets_duplicate
        ),
        (0, 0, 0)
    );
}

#[test]
fn timestamp_wrap_at_2_pow_32() {
    let mut rig = Rig::new(|_| {});
    let ts0 = u32::MAX - 160 * 250 + 1;
    for k in 0..500u64 {
        rig.send(ms(20 * k), k, 7, ts0, 0xAAAA);
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
    assert_eq!(rig.tl.stats().packets_late, 0);
}

#[test]
fn ssrc_change_continues_the_stream() {
    let mut rig = Rig::new(|_| {});
    for k in 0..250u64 {
        rig.send(ms(20 * k), k, 1000, 5000, 0xAAAA);
    }
    // Transfer: new SSRC, unrelated sequence numbers and timestamps, media keeps flowing.
    for k in 250..500u64 {
        rig.send(ms(20 * k), k, 40_000, 3_000_000_000, 0xBBBB);
        if k == 260 {
            rig.send(ms(20 * k + 3), 249, 1000, 5000, 0xAAAA); // straggler of the old source
        }
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
    let stats = rig.tl.stats();
    assert_eq!(stats.ssrcs, vec![0xAAAA, 0xBBBB]);
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 1));
}

#[test]
fn ssrc_change_with_a_small_wall_clock_offset_stays_within_one_packet() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..250, Duration::ZERO);
    // The new source's first packet comes 12 ms later than the old cadence.
    for k in 250..500u64 {
        rig.send(ms(20 * k + 12), k, 9, 77, 0xBBBB);
    }
    rig.finish(ms(10_012));
    assert_eq!(rig.out.len(), 80_096);
    // Seamless: no silence between the two sources.
    let audio = rig.out.iter().take(80_000).filter(|&&x| x == 0).count();
    assert_eq!(audio, 0);
}

#[test]
fn late_start_begins_with_silence() {
    let mut rig = Rig::new(|_| {});
    for k in 100..500u64 {
        rig.send(ms(20 * k), k, 1000, 5000, 0xAAAA);
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    assert!(rig.zeros(0..16_000));
    for k in 100..500 {
        rig.assert_slot(k as usize, level(k));
    }
}

/// Packets 0–5 s, pause at 5 s, resume at 8 s, packets 8–10 s whose timestamps carry on
/// from before the pause (the sender stopped its clock), plus packets sent while paused.
fn paused_call(policy: PausePolicy) -> Rig {
    let mut rig = Rig::new(|c| c.pause_policy = policy);
    on_time(&mut rig, 0..250, Duration::ZERO);
    rig.tl.pause(rig.start + ms(5000));
    for k in 250..260u64 {
        rig.send(ms(20 * k), k, 1000, 5000, 0xAAAA); // ignored: paused
    }
    rig.poll(ms(7000));
    rig.tl.resume(rig.start + ms(8000));
    for k in 260..360u64 {
        rig.send(ms(8000 + 20 * (k - 260)), k, 1000, 5000, 0xAAAA);
    }
    rig.finish(ms(10_000));
    rig
}

#[test]
fn pause_with_silence_policy() {
    let rig = paused_call(PausePolicy::Silence);
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..250 {
        rig.assert_slot(k as usize, level(k));
    }
    assert!(rig.zeros(40_000..64_000));
    for k in 260..360u64 {
        rig.assert_slot(400 + (k - 260) as usize, level(k));
    }
    let stats = rig.tl.stats();
    assert_eq!(stats.packets_received, 360);
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
}

#[test]
fn pause_with_skip_policy() {
    let rig = paused_call(PausePolicy::Skip);
    assert_eq!(rig.out.len(), 56_000);
    for k in 0..250 {
        rig.assert_slot(k as usize, level(k));
    }
    for k in 260..360u64 {
        rig.assert_slot(250 + (k - 260) as usize, level(k));
    }
}

#[test]
fn dtx_gap_and_comfort_noise_are_silence() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..150, Duration::ZERO);
    // Comfort noise announces the silence; then nothing for a second.
    rig.send_raw(
        ms(3000),
        Header {
            marker: false,
            pt: COMFORT_NOISE_PT,
            seq: 1150,
            ts: 5000 + 150 * 160,
            ssrc: 0xAAAA,
        },
        &[40],
    );
    // Talk resumes: marker bit, timestamps 1 s further on, sequence numbers continue.
    for k in 150..450u64 {
        let at = ms(4000 + 20 * (k - 150));
        let ts = 5000 + 8000 + (k as u32) * 160;
        let seq = 1001 + k as u16;
        rig.send_raw(
            at,
            Header {
                marker: k == 150,
                pt: PCMU,
                seq,
                ts,
                ssrc: 0xAAAA,
            },
            &[level_byte(k); 160],
        );
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    assert!(rig.zeros(24_000..32_000));
    rig.assert_slot(149, level(149));
    rig.assert_slot(200, level(150));
    let stats = rig.tl.stats();
    assert_eq!(stats.packets_received, 451);
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
}

#[test]
fn timestamp_jump_without_a_gap_is_re_anchored() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..250, Duration::ZERO);
    // The sender's timestamps leap 10 minutes ahead while packets keep coming every 20 ms.
    for k in 250..500u64 {
        let ts = 5000 + 4_800_000 + (k as u32) * 160;
        rig.send_raw(
            ms(20 * k),
            Header {
                marker: k == 250,
                pt: PCMU,
                seq: 1000 + k as u16,
                ts,
                ssrc: 0xAAAA,
            },
            &[level_byte(k); 160],
        );
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    for k in 0..500 {
        rig.assert_slot(k as usize, level(k));
    }
}

#[test]
fn g722_is_16k() {
    let mut rig = Rig::with_codec("G722", G722, |_| {});
    assert_eq!(rig.tl.sample_rate(), 16_000);
    for k in 0..500u64 {
        let payload = [0x55u8 ^ (k as u8); 160];
        rig.send_raw(
            ms(20 * k),
            Header {
                marker: false,
                pt: G722,
                seq: k as u16,
                ts: (k as u32) * 160,
                ssrc: 1,
            },
            &payload,
        );
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 160_000);
    // 20 ms of G.722 is 320 samples: halfway through, 250 packets are 80,000 samples.
    assert_eq!(rig.tl.stats().packets_lost, 0);
}

#[test]
fn codec_change_keeps_the_output_rate() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..250, Duration::ZERO);
    // Unchanged re-offer: nothing happens.
    let same = Decoder::for_codec("PCMU").expect("supported");
    rig.tl.set_codec(PCMU, same).expect("same codec");
    // Re-INVITE to G.722 on the same source: output stays 8 kHz.
    let g722 = Decoder::for_codec("G722").expect("supported");
    rig.tl
        .set_codec(G722, g722)
        .expect("16k → 8k is an integer ratio");
    for k in 250..500u64 {
        let at = ms(20 * k);
        let payload = [0x55u8; 160];
        rig.send_raw(
            at,
            Header {
                marker: false,
                pt: G722,
                seq: 1000 + k as u16,
                ts: 5000 + (k as u32) * 160,
                ssrc: 0xAAAA,
            },
            &payload,
        );
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    rig.assert_slot(249, level(249));
    let stats = rig.tl.stats();
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
}

/// A sender whose clock runs `ppm_fast` parts per million fast (negative: slow) for 60 s.
fn drifting_sender(ppm_fast: i64) -> Rig {
    let mut rig = Rig::new(|_| {});
    let interval_ns = 20_000_000 * 1_000_000 / (1_000_000 + ppm_fast);
    let mut k = 0u64;
    let mut max_buffered = 0;
    loop {
        let at = Duration::from_nanos(k * interval_ns as u64);
        if at >= ms(60_000) {
            break;
        }
        rig.send(at, k, 1000, 5000, 0xAAAA);
        max_buffered = max_buffered.max(rig.tl.buffered_packets());
        k += 1;
    }
    rig.finish(ms(60_000));
    // The reorder window plus the drift bound is 5 packets.
    assert!(max_buffered <= 6, "buffered {max_buffered}");
    let stats = rig.tl.stats();
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
    rig
}

#[test]
fn fast_sender_clock_keeps_wall_clock_length() {
    let rig = drifting_sender(5000); // 0.5 % fast: 2400 extra samples a minute
    let len = rig.out.len() as i64;
    assert!((480_000..=480_160).contains(&len), "{len}");
}

#[test]
fn slow_sender_clock_keeps_wall_clock_length() {
    let rig = drifting_sender(-5000);
    let len = rig.out.len() as i64;
    assert!((480_000..=480_160).contains(&len), "{len}");
}

#[test]
fn dtmf_goes_to_events_not_audio() {
    let mut rig = Rig::new(|_| {});
    on_time(&mut rig, 0..50, Duration::ZERO);
    // Digit 5 pressed at 1.0 s for 200 ms: updates every 20 ms, three end packets.
    let ev_ts = 5000 + 50 * 160;
    let mut seq = 1050u16;
    for i in 1..=10u16 {
        let payload = [5, 10, 0, 0];
        let mut p = payload;
        p[2..].copy_from_slice(&(i * 160).to_be_bytes());
        let at = ms(1000 + 20 * u64::from(i - 1));
        rig.send_raw(
            at,
            Header {
                marker: i == 1,
                pt: DTMF,
                seq,
                ts: ev_ts,
                ssrc: 0xAAAA,
            },
            &p,
        );
        seq += 1;
    }
    for j in 0..3 {
        let mut p = [5, 0x80 | 10, 0, 0];
        p[2..].copy_from_slice(&1600u16.to_be_bytes());
        rig.send_raw(
            ms(1200 + j),
            Header {
                marker: false,
                pt: DTMF,
                seq,
                ts: ev_ts,
                ssrc: 0xAAAA,
            },
            &p,
        );
        seq += 1;
    }
    // Audio again from 1.22 s.
    for k in 61..500u64 {
        let ts = 5000 + (k as u32) * 160;
        let s = seq + (k - 61) as u16;
        rig.send_raw(
            ms(20 * k),
            Header {
                marker: false,
                pt: PCMU,
                seq: s,
                ts,
                ssrc: 0xAAAA,
            },
            &[level_byte(k); 160],
        );
    }
    rig.finish(ms(10_000));
    assert_eq!(rig.out.len(), 80_000);
    assert!(rig.zeros(8000..9760));
    rig.assert_slot(61, level(61));
    let events = rig.tl.take_dtmf();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].digit, '5');
    assert_eq!(events[0].duration_ms, 200);
    assert!((events[0].at_seconds - 1.0).abs() < 1e-9);
    let stats = rig.tl.stats();
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
}

#[test]
fn burst_is_bounded_by_the_reorder_buffer() {
    let mut rig = Rig::new(|c| c.max_reorder_packets = 8);
    // 100 packets at one instant whose timestamps span 2 s: most lie in the future.
    for k in 0..100u64 {
        write_packet(
            &mut rig.wire,
            false,
            PCMU,
            k as u16,
            (k as u32) * 160,
            1,
            &[0; 160],
        );
        let packet = RtpPacket::parse(&rig.wire).expect("well-formed");
        rig.tl.push(rig.start + ms(500), &packet);
        assert!(rig.tl.buffered_packets() <= 8);
    }
    rig.poll(ms(500));
    rig.finish(ms(3000));
    assert_eq!(rig.out.len(), 24_000);
}

#[test]
fn two_hour_call_stays_exact_and_flat() {
    let mut rig = Rig::new(|_| {});
    const PACKETS: u64 = 2 * 3600 * 50;
    let mut footprint = None;
    for k in 0..PACKETS {
        rig.send(ms(20 * k), k, 1000, 5000, 0xAAAA);
        rig.clear_out();
        if k == 3000 {
            footprint = Some(memory(&rig.tl));
        }
    }
    // Taken before `finish`, which moves every buffered payload back to the pool at once.
    assert_eq!(Some(memory(&rig.tl)), footprint);
    rig.finish(ms(20 * PACKETS));
    let total = rig.cleared + rig.out.len();
    assert_eq!(total, 57_600_000);
    let stats = rig.tl.stats();
    assert_eq!(stats.packets_received, PACKETS);
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
}

/// Capacities of everything the timeline owns that could grow.
fn memory(tl: &StreamTimeline) -> [usize; 6] {
    [
        tl.buf.capacity(),
        tl.pool.capacity(),
        tl.pool.iter().map(Vec::capacity).sum::<usize>()
            + tl.buf.iter().map(|s| s.payload.capacity()).sum::<usize>(),
        tl.scratch.capacity(),
        tl.converted.capacity(),
        tl.stats.ssrcs.capacity(),
    ]
}

#[test]
fn arbitrary_operations_never_panic_and_track_the_clock() {
    // Deterministic pseudo-random operation sequences: packets with random fields and
    // payload sizes, pauses, resumes, codec changes.
    let mut seed = 0x1234_5678u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        seed
    };
    for round in 0..20 {
        let policy = if round % 2 == 0 {
            PausePolicy::Silence
        } else {
            PausePolicy::Skip
        };
        let mut rig = Rig::new(|c| c.pause_policy = policy);
        let mut at = Duration::ZERO;
        for _ in 0..2000 {
            at += Duration::from_micros(u64::from(next() % 40_000));
            let r = next();
            match r % 50 {
                0 => rig.tl.pause(rig.start + at),
                1 => rig.tl.resume(rig.start + at),
                2 => {
                    let name = ["PCMU", "PCMA", "G722"][(r / 50 % 3) as usize];
                    let decoder = Decoder::for_codec(name).expect("supported");
                    let _ = rig.tl.set_codec([0, 8, 9][(r / 50 % 3) as usize], decoder);
                }
                _ => {
                    let len = (next() % 400) as usize;
                    let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    let pt = [0, 8, 9, 13, 101, 96][(next() % 6) as usize];
                    let seq = (next() % 70) as u16;
                    let ts = next() % 20_000;
                    let ssrc = next() % 3;
                    write_packet(&mut rig.wire, r & 1 == 0, pt, seq, ts, ssrc, &payload);
                    let packet = RtpPacket::parse(&rig.wire).expect("well-formed");
                    rig.tl.push(rig.start + at, &packet);
                    rig.tl.poll(rig.start + at, &mut rig.out);
                    // Up to the horizon, plus at most one (here up to 400-sample) packet.
                    let horizon = rig.tl.wall_position(rig.start + at) - rig.tl.window();
                    let len = rig.out.len() as i64;
                    assert!(
                        len >= horizon && len <= horizon.max(0) + 400,
                        "{len} {horizon}"
                    );
                }
            }
            assert!(rig.tl.buffered_packets() <= 64);
        }
        rig.finish(at);
        let end = rig.tl.wall_position(rig.start + at);
        assert!(rig.out.len() as i64 >= end);
        let _ = rig.tl.stats();
        let _ = rig.tl.take_dtmf();
    }
}

/// Found by fuzzing: with an SDP ptime far larger than the packets, `finish` let the file
/// run a whole "ptime" past the wall clock. It may run at most 20 ms (one packet) past it.
#[test]
fn finish_stays_within_one_packet_whatever_the_ptime_hint() {
    let mut rig = Rig::new(|c| c.ptime_hint = ms(250));
    for k in 0..50 {
        rig.send(ms(20 * k), k, 1000, 5000, 0xAAAA);
    }
    // A burst of the next packets arrives just before the end (a sender flushing its
    // buffer): they lie after the wall clock.
    for k in 50..60 {
        rig.send(ms(995), k, 1000, 5000, 0xAAAA);
    }
    rig.finish(ms(1000));
    let len = rig.out.len() as i64;
    assert!((8000..=8000 + 160).contains(&len), "{len} samples for 1 s");
}

/// Opus with in-band FEC at 16 kbit/s (SILK), every 10th packet lost: each lost packet's
/// slot is rebuilt from the next packet instead of being silence.
#[test]
fn opus_loss_is_repaired_from_the_next_packets_fec() {
    use opus_pure::{Application, OpusEncoder};
    let mut enc = OpusEncoder::new(48000, 1, Application::Voip).expect("encoder");
    enc.use_inband_fec = true;
    enc.packet_loss_perc = 30;
    enc.bitrate_bps = 16000;
    let start = Instant::now();
    let decoder = Decoder::for_codec("opus").expect("opus");
    let mut tl = StreamTimeline::new(TimelineConfig::for_rate(16000), 111, decoder, start)
        .expect("48 kHz converts to 16 kHz");
    let mut out = Vec::new();
    for i in 0..100u32 {
        let pcm: Vec<i16> = (0..960)
            .map(|n| {
                let t = f64::from(i * 960 + n) / 48000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * 500.0 * t).sin()) as i16
            })
            .collect();
        let mut payload = vec![0u8; 1500];
        let len = enc.encode_s16(&pcm, 960, &mut payload).expect("encode");
        let now = start + ms(20 * u64::from(i));
        if i % 10 != 5 {
            let mut raw = vec![0x80, 111];
            raw.extend_from_slice(&(i as u16).to_be_bytes());
            raw.extend_from_slice(&(i * 960).to_be_bytes());
            raw.extend_from_slice(&[0, 0, 0, 7]);
            raw.extend_from_slice(&payload[..len]);
            tl.push(now, &RtpPacket::parse(&raw).expect("rtp"));
        }
        tl.poll(now, &mut out);
    }
    tl.finish(start + ms(2000), &mut out);
    // Every lost slot (after the first second, once the encoder carries FEC) holds audio.
    for lost in (25..95).step_by(10) {
        let slot = &out[lost * 320..(lost + 1) * 320];
        let rms = (slot.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 320.0).sqrt();
        assert!(rms > 500.0, "lost packet {lost}: RMS {rms:.0}");
    }
    assert_eq!(tl.stats().packets_lost, 10);
}

/// A PCMU-first stream that gets PCMA, then a type nothing decodes, then PCMU again: PCMA is
/// decoded by its own payload type, the unknown type is counted (not lost, not late) and
/// its slots are the only silence, and the output keeps the wall clock throughout.
#[test]
fn each_packet_is_decoded_by_its_own_payload_type() {
    let mut rig = Rig::new(|_| {});
    let alaw = 0xA5u8; // an A-law code word far from zero
    for k in 0..30u64 {
        let (pt, payload) = match k {
            0..10 => (PCMU, [level_byte(k); 160]),
            10..20 => (8, [alaw; 160]),
            _ if k < 25 => (3, [0xAA; 160]),
            _ => (PCMU, [level_byte(k); 160]),
        };
        let seq = 100u16.wrapping_add(k as u16);
        let ts = 9000u32.wrapping_add(k as u32 * 160);
        rig.send_raw(
            ms(20 * k),
            Header {
                marker: false,
                pt,
                seq,
                ts,
                ssrc: 0xBEEF,
            },
            &payload,
        );
    }
    rig.finish(ms(600));
    rig.assert_slot(5, level(5));
    let mut pcma = Vec::new();
    g711::decode_alaw(&[alaw], &mut pcma);
    assert_ne!(pcma[0], 0);
    rig.assert_slot(15, pcma[0]);
    assert!(
        rig.zeros(20 * 160..25 * 160),
        "undecodable slots are silent"
    );
    rig.assert_slot(27, level(27));
    let stats = rig.tl.stats();
    assert_eq!(stats.packets_undecodable, vec![(3, 5)]);
    assert_eq!(stats.undecodable_total(), 5);
    assert_eq!((stats.packets_lost, stats.packets_late), (0, 0));
    assert_eq!(stats.packets_received, 30);
    assert_eq!(
        stats.audio_by_payload_type,
        vec![(PCMU, "PCMU", 15), (8, "PCMA", 10)]
    );
    assert_eq!(stats.dominant_codec(), Some((PCMU, "PCMU")));
}
