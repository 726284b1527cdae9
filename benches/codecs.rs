//! Decode cost per 20 ms packet for every codec the recorder stores, into a reused buffer,
//! plus the conversion to a file rate. Input packets come from encoders of a speech-like
//! test signal (G.729 and Opus from their crates' encoders, G.722 from the product's own,
//! G.711 and G.726 from their code words), so every decoder runs its normal path.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::media::Decoder;
use sip_recorder::media::codec::RateConverter;
use sip_recorder::media::codec::g722::G722Encoder;
use std::hint::black_box;

/// One second of a speech-like signal at `rate`: three partials under a 3 Hz envelope.
fn signal(rate: u32) -> Vec<i16> {
    (0..rate)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let s: f64 = [(310.0, 4000.0), (1130.0, 2500.0), (2450.0, 1200.0)]
                .iter()
                .map(|(hz, a)| a * (2.0 * std::f64::consts::PI * hz * t).sin())
                .sum();
            (s * env) as i16
        })
        .collect()
}

/// 50 packets of 20 ms for `codec`.
fn packets(codec: &str) -> Vec<Vec<u8>> {
    match codec {
        "PCMU" | "PCMA" | "G726-32" => (0..50u8)
            .map(|p| (0..160u8).map(|i| i.wrapping_mul(37) ^ p).collect())
            .collect(),
        "G722" => {
            let mut enc = G722Encoder::new();
            signal(16000).chunks(320).map(|c| enc.encode(c)).collect()
        }
        "G729" => {
            let mut enc = g729_sys::Encoder::new(false);
            signal(8000)
                .chunks(160)
                .map(|c| {
                    let mut out = Vec::new();
                    for frame in c.chunks_exact(80) {
                        let f: [i16; 80] = frame.try_into().expect("80 samples");
                        out.extend(enc.encode(&f));
                    }
                    out
                })
                .collect()
        }
        "opus" => {
            let mut enc = opus_pure::OpusEncoder::new(48000, 1, opus_pure::Application::Voip)
                .expect("encoder");
            signal(48000)
                .chunks(960)
                .map(|c| {
                    let mut out = vec![0u8; 1500];
                    let n = enc.encode_s16(c, 960, &mut out).expect("encode");
                    out.truncate(n);
                    out
                })
                .collect()
        }
        other => panic!("no packets for {other}"),
    }
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_20ms_packet");
    group.throughput(Throughput::Elements(1));
    for codec in ["PCMU", "PCMA", "G722", "G726-32", "G729", "opus"] {
        let input = packets(codec);
        let mut decoder = Decoder::for_codec(codec).expect("supported codec");
        let mut out: Vec<i16> = Vec::with_capacity(2048);
        let mut k = 0;
        group.bench_function(codec, |b| {
            b.iter(|| {
                out.clear();
                decoder.decode(black_box(&input[k % input.len()]), &mut out);
                k += 1;
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn convert(c: &mut Criterion) {
    let mut group = c.benchmark_group("convert_20ms_to_file_rate");
    group.throughput(Throughput::Elements(1));
    for (from, to) in [
        (48000u32, 16000u32),
        (48000, 8000),
        (16000, 8000),
        (8000, 16000),
    ] {
        let input = signal(from);
        let per_packet = from as usize / 50;
        let mut conv = RateConverter::new(from, to).expect("integer ratio");
        let mut out: Vec<i16> = Vec::with_capacity(2048);
        let mut k = 0;
        group.bench_function(format!("{from}->{to}"), |b| {
            b.iter(|| {
                out.clear();
                let at = (k % 50) * per_packet;
                conv.process(black_box(&input[at..at + per_packet]), &mut out);
                k += 1;
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, convert);
criterion_main!(benches);
