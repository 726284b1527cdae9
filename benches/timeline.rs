//! Per-packet media cost: RTP parse → reorder/timeline → decode → PCM out.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::media::rtp::write_packet;
use sip_recorder::media::{Decoder, RtpPacket, StreamTimeline, TimelineConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A 20 ms sender on a virtual clock: each step rewrites the sequence number and timestamp
/// of one datagram in place, so the loop measures the receive path, not packet building.
struct Sender {
    wire: Vec<u8>,
    k: u64,
    start: Instant,
    tl: StreamTimeline,
    out: Vec<i16>,
    /// Swap every 10th pair of packets (reordering inside the window).
    reorder: bool,
}

impl Sender {
    fn new(codec: &str, pt: u8, reorder: bool) -> Self {
        // Benchmarks use the supported codecs only.
        let decoder = Decoder::for_codec(codec).expect("supported codec");
        let config = TimelineConfig::for_decoder(&decoder);
        let start = Instant::now();
        let mut wire = Vec::new();
        write_packet(&mut wire, false, pt, 0, 0, 0x1234_5678, &[0x55; 160]);
        Sender {
            wire,
            k: 0,
            start,
            // Decoder and output rate are the same here, so no conversion can fail.
            tl: StreamTimeline::new(config, pt, decoder, start).expect("same rate"),
            out: Vec::with_capacity(32_000),
            reorder,
        }
    }

    fn step(&mut self) {
        let k = self.k;
        self.k += 1;
        let n = if self.reorder && k % 10 == 0 {
            k + 1
        } else if self.reorder && k % 10 == 1 {
            k - 1
        } else {
            k
        };
        self.wire[2..4].copy_from_slice(&(n as u16).to_be_bytes());
        self.wire[4..8].copy_from_slice(&((n as u32).wrapping_mul(160)).to_be_bytes());
        let now = self.start + Duration::from_millis(20 * k);
        if let Ok(packet) = RtpPacket::parse(black_box(&self.wire)) {
            self.tl.push(now, &packet);
        }
        self.tl.poll(now, &mut self.out);
        // Stands in for the writer taking the samples.
        if self.out.len() > 16_000 {
            black_box(&self.out);
            self.out.clear();
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("media");
    g.throughput(Throughput::Elements(1));

    let mut wire = Vec::new();
    write_packet(&mut wire, false, 0, 1, 160, 7, &[0x55; 160]);
    g.bench_function("rtp parse", |b| {
        b.iter(|| RtpPacket::parse(black_box(&wire)).map(|p| p.payload.len()))
    });

    let mut g722 = Decoder::for_codec("G722").expect("supported codec");
    let mut pcm = Vec::with_capacity(320);
    g.bench_function("g722 decode 20ms", |b| {
        b.iter(|| {
            pcm.clear();
            g722.decode(black_box(&[0x55; 160]), &mut pcm);
        })
    });

    for (name, codec, pt, reorder) in [
        ("packet pcmu 20ms", "PCMU", 0, false),
        ("packet pcmu 20ms reordered", "PCMU", 0, true),
        ("packet g722 20ms", "G722", 9, false),
    ] {
        let mut sender = Sender::new(codec, pt, reorder);
        g.bench_function(name, |b| b.iter(|| sender.step()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
