//! Per-packet cost of the stream accounting beside the timeline: one RTP arrival plus the
//! loudness of its decoded 20 ms (8 kHz and 48 kHz files), and one compound RTCP datagram.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::media::accounting::StreamAccounting;
use sip_recorder::media::rtcp::build;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn tone(n: usize, rate: f64) -> Vec<i16> {
    (0..n)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / rate).sin() * 8000.0) as i16)
        .collect()
}

fn per_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("accounting_per_packet");
    g.throughput(Throughput::Elements(1));
    for (name, rate) in [("8k", 8000u32), ("48k", 48_000)] {
        let pcm = tone(rate as usize / 50, f64::from(rate));
        let start = Instant::now();
        let mut a = StreamAccounting::new(rate);
        let mut k: u64 = 0;
        g.bench_function(format!("rtp_and_pcm_{name}"), |b| {
            b.iter(|| {
                k += 1;
                let now = start + Duration::from_millis(20 * k);
                // Every 50th packet lost: the burst/gap model does real work.
                if k % 50 != 0 {
                    a.on_rtp(now, 0x1234_5678, k as u16, false);
                }
                a.on_pcm(black_box(&pcm));
            });
        });
        black_box(a.report());
    }
    let mut sr = Vec::new();
    build::sender_report(&mut sr, 0x1234_5678, 160_000, 250, 40_000);
    build::sdes_cname(&mut sr, 0x1234_5678, b"src@192.0.2.1");
    let mut a = StreamAccounting::new(8000);
    g.bench_function("rtcp_sr_sdes", |b| b.iter(|| a.on_rtcp(black_box(&sr))));
    black_box(a.report());
    g.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);
