use super::*;
use crate::media::rtcp::build;

const P: Duration = Duration::from_millis(20);

/// Feeds `n` packets from `seq`, one per 20 ms from `at`; returns the next arrival time.
fn run(a: &mut StreamAccounting, at: Instant, ssrc: u32, seq: u16, n: u16) -> Instant {
    let mut t = at;
    for i in 0..n {
        a.on_rtp(t, ssrc, seq.wrapping_add(i), false);
        t += P;
    }
    t
}

#[test]
fn clean_stream_is_one_gap_without_loss() {
    let t0 = Instant::now();
    let mut a = StreamAccounting::new(8000);
    run(&mut a, t0, 7, 65_500, 500); // wraps the sequence number
    let r = a.report();
    assert_eq!(r.loss_bursts.count, 0);
    assert_eq!(r.loss_gaps.count, 1);
    assert!((r.loss_gaps.duration_seconds - 10.0).abs() < 0.01, "{r:?}");
    assert_eq!(r.loss_gaps.density_percent, 0.0);
    assert_eq!(r.media_gaps, MediaGaps::default());
    assert_eq!(r.packets_sent, None);
}

#[test]
fn two_second_outage_is_a_burst_and_a_media_gap() {
    let t0 = Instant::now();
    let mut a = StreamAccounting::new(8000);
    // 3 s, then 100 packets lost in the network (2 s), then 3 s.
    let t = run(&mut a, t0, 7, 1000, 150);
    run(&mut a, t + P * 100, 7, 1250, 150);
    let r = a.report();
    assert_eq!(r.loss_bursts.count, 1, "{r:?}");
    assert!((r.loss_bursts.duration_seconds - 2.0).abs() < 0.01, "{r:?}");
    assert_eq!(r.loss_bursts.density_percent, 100.0);
    assert_eq!(r.loss_gaps.count, 2, "{r:?}");
    assert!((r.loss_gaps.duration_seconds - 3.0).abs() < 0.01, "{r:?}");
    assert_eq!(r.media_gaps.count, 1);
    assert!((2000..=2030).contains(&r.media_gaps.longest_ms), "{r:?}");
}

#[test]
fn isolated_losses_are_gap_losses_close_ones_a_burst() {
    let t0 = Instant::now();
    let mut a = StreamAccounting::new(8000);
    let mut seq = 0u16;
    let mut t = t0;
    // 4 isolated losses, 50 packets apart: gap density 4 / 220.
    for _ in 0..4 {
        t = run(&mut a, t, 1, seq, 49);
        seq += 50;
        t += P;
    }
    t = run(&mut a, t, 1, seq, 20);
    seq += 20;
    let r = a.report();
    assert_eq!(r.loss_bursts.count, 0, "{r:?}");
    assert_eq!(r.loss_gaps.density_percent, 1.82, "{r:?}");
    // Then losses 3 apart: one burst of 1 + 3 + 1 + 3 + 1 = 9 packets, 3 lost.
    for _ in 0..2 {
        t = run(&mut a, t, 1, seq + 1, 3);
        seq += 4;
    }
    run(&mut a, t, 1, seq + 1, 40);
    let r = a.report();
    assert_eq!(r.loss_bursts.count, 1, "{r:?}");
    assert!(
        (r.loss_bursts.duration_seconds - 0.18).abs() < 0.01,
        "{r:?}"
    );
    assert_eq!(r.loss_bursts.density_percent, 33.33, "{r:?}");
}

#[test]
fn ssrc_change_starts_a_new_segment_not_a_loss() {
    let t0 = Instant::now();
    let mut a = StreamAccounting::new(8000);
    let t = run(&mut a, t0, 1, 100, 50);
    run(&mut a, t, 2, 40_000, 50);
    let r = a.report();
    assert_eq!(r.loss_bursts.count, 0, "{r:?}");
    assert_eq!(r.loss_gaps.count, 2);
    assert_eq!(r.loss_gaps.density_percent, 0.0);
}

#[test]
fn sender_reports_give_packets_sent_per_sender() {
    let mut a = StreamAccounting::new(8000);
    let mut sr = Vec::new();
    build::sender_report(&mut sr, 1, 0, 100, 16_000);
    build::sdes_cname(&mut sr, 1, b"x");
    a.on_rtcp(&sr);
    sr.clear();
    build::sender_report(&mut sr, 1, 0, 250, 40_000);
    a.on_rtcp(&sr);
    sr.clear();
    // A second source (SSRC change), its counter near the wrap.
    build::sender_report(&mut sr, 2, 0, u32::MAX, 0);
    a.on_rtcp(&sr);
    sr.clear();
    build::sender_report(&mut sr, 2, 0, 9, 0);
    build::bye(&mut sr, 2);
    a.on_rtcp(&sr);
    a.on_rtcp(&[0x80, 200, 0, 9]);
    let r = a.report();
    assert_eq!(r.packets_sent, Some(250 + u64::from(u32::MAX) + 10));
    assert_eq!(r.octets_sent, Some(40_000));
    assert_eq!(r.rtcp_packets, 4);
    assert_eq!(r.rtcp_errors, 1);
    assert!(r.rtcp_bye);
}

#[test]
fn pauses_and_comfort_noise_are_not_media_gaps_a_quiet_end_is() {
    let t0 = Instant::now();
    let mut a = StreamAccounting::new(8000);
    let t = run(&mut a, t0, 1, 0, 10);
    a.pause();
    a.resume();
    let t = run(&mut a, t + Duration::from_secs(5), 1, 10, 10);
    a.on_rtp(t, 1, 20, true);
    let t = run(&mut a, t + Duration::from_secs(3), 1, 21, 10);
    assert_eq!(a.report().media_gaps.count, 0);
    a.finish(t + Duration::from_millis(1500));
    let r = a.report();
    assert_eq!(r.media_gaps.count, 1);
    assert_eq!(r.media_gaps.longest_ms, 1520);
}

#[test]
fn silence_is_judged_by_the_loudest_window() {
    let mut a = StreamAccounting::new(8000);
    a.on_pcm(&[0; 8000]);
    a.on_pcm(&[20; 800]);
    // What an all-zero-byte PCMU payload decodes to: a constant, no sound, also where
    // it starts after gap fill.
    let mut dc = vec![0i16; 1000];
    dc.extend([-32124i16; 800]);
    a.on_pcm(&dc);
    assert!(a.report().silent(), "{:?}", a.report());
    let tone: Vec<i16> = (0..800)
        .map(|i| ((i as f64 * 0.3).sin() * 3000.0) as i16)
        .collect();
    a.on_pcm(&[0; 8000]);
    a.on_pcm(&tone);
    assert!(!a.report().silent());
}

#[test]
fn bursty_reads_average_to_the_packet_interval() {
    let t0 = Instant::now();
    let mut a = StreamAccounting::new(8000);
    // Packets read in fives after a 100 ms scheduling delay: 0, 0, 0, 0, 100 ms apart.
    for i in 0..500u16 {
        let at = t0 + Duration::from_millis(100) * u32::from(i / 5);
        a.on_rtp(at, 3, i, false);
    }
    let r = a.report();
    assert!((r.loss_gaps.duration_seconds - 10.0).abs() < 0.2, "{r:?}");
}

#[test]
fn steps_into_and_out_of_gap_fill_are_not_sound() {
    // Constant level (all-zero-byte PCMU) packets with gap fill between them, the fill
    // split at every possible offset and block boundary.
    for offset in 0..100 {
        let mut a = StreamAccounting::new(8000);
        let mut pcm = vec![0i16; offset];
        for k in 0..20 {
            pcm.extend([-32124i16; 160]);
            pcm.extend(std::iter::repeat_n(0i16, 20 + k));
        }
        for block in pcm.chunks(333 + offset) {
            a.on_pcm(block);
        }
        assert!(a.report().silent(), "offset {offset}: {:?}", a.report());
    }
}

#[test]
fn a_tone_between_gaps_is_sound() {
    let mut a = StreamAccounting::new(8000);
    let mut pcm = vec![0i16; 500];
    pcm.extend((0..160).map(|i| ((f64::from(i) * 0.35).sin() * 200.0) as i16));
    pcm.extend([0i16; 500]);
    a.on_pcm(&pcm);
    let r = a.report();
    assert!(!r.silent() && r.peak_level > 100.0, "{r:?}");
}

/// 100 ms of a 440 Hz tone at 8 kHz with the given amplitude.
fn tone_block(amplitude: f64) -> Vec<i16> {
    let w = 2.0 * std::f64::consts::PI * 440.0 / 8000.0;
    (0..800)
        .map(|i| (amplitude * (w * f64::from(i)).sin()) as i16)
        .collect()
}

#[test]
fn a_settled_stream_still_follows_a_louder_peak() {
    let mut a = StreamAccounting::new(8000);
    for _ in 0..50 {
        a.on_pcm(&tone_block(1000.0));
    }
    let quiet = a.report().peak_level;
    assert!(quiet > 500.0 && !a.report().silent(), "{quiet}");
    // Only one block in eight is measured now; sixteen louder blocks include two of them.
    for _ in 0..16 {
        a.on_pcm(&tone_block(8000.0));
    }
    let loud = a.report().peak_level;
    assert!(
        loud > 4.0 * quiet,
        "peak {loud} after the louder part, {quiet} before"
    );
    // Silence after sound changes nothing: the verdict is settled.
    for _ in 0..100 {
        a.on_pcm(&[0; 800]);
    }
    assert!(!a.report().silent());
    assert_eq!(a.report().peak_level, loud);
}
