//! Decodes libopus packets with each candidate; prints SNR against libopus and speed.

use std::path::Path;
use std::time::Instant;

fn packets(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("packets");
    let (mut out, mut i) = (Vec::new(), 0);
    while i + 2 <= data.len() {
        let n = usize::from(u16::from_be_bytes([data[i], data[i + 1]]));
        out.push(data[i + 2..i + 2 + n].to_vec());
        i += 2 + n;
    }
    out
}

fn pcm(path: &Path) -> Vec<i16> {
    std::fs::read(path)
        .expect("pcm")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn snr(reference: &[i16], x: &[i16]) -> f64 {
    let n = reference.len().min(x.len());
    let sig: f64 = reference[..n].iter().map(|&s| f64::from(s).powi(2)).sum();
    let err: f64 = reference[..n]
        .iter()
        .zip(&x[..n])
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    if err == 0.0 { f64::INFINITY } else { 10.0 * (sig / err).log10() }
}

type Run = Box<dyn FnMut(&[Vec<u8>]) -> Vec<i16>>;

fn candidates() -> Vec<(&'static str, Run)> {
    vec![
        (
            "opus-pure 0.2.2",
            Box::new(|ps: &[Vec<u8>]| {
                let mut d = opus_pure::OpusDecoder::new(48000, 1).expect("new");
                let mut out = Vec::new();
                let mut buf = vec![0i16; 5760];
                for p in ps {
                    let n = d.decode_s16(p, 960, &mut buf).unwrap_or(0);
                    out.extend_from_slice(&buf[..n]);
                }
                out
            }),
        ),
        (
            "opus-rs 0.1.40",
            Box::new(|ps: &[Vec<u8>]| {
                let mut d = opus_rs::OpusDecoder::new(48000, 1).expect("new");
                let mut out = Vec::new();
                let mut buf = vec![0f32; 5760];
                for p in ps {
                    let n = d.decode(p, 960, &mut buf).unwrap_or(0);
                    out.extend(buf[..n].iter().map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16));
                }
                out
            }),
        ),
        (
            "opus-decoder 0.1.1",
            Box::new(|ps: &[Vec<u8>]| {
                let mut d = opus_decoder::OpusDecoder::new(48000, 1).expect("new");
                let mut out = Vec::new();
                let mut buf = vec![0i16; 5760];
                for p in ps {
                    let n = d.decode(p, &mut buf, false).unwrap_or(0);
                    out.extend_from_slice(&buf[..n]);
                }
                out
            }),
        ),
    ]
}

fn main() {
    let dir = std::env::args().nth(1).expect("work dir");
    let dir = Path::new(&dir);
    println!("| candidate | case | SNR vs libopus | µs per 20 ms packet |");
    println!("|---|---|---|---|");
    for (name, mut run) in candidates() {
        for case in ["voip", "stereo", "fec16k"] {
            let ps = packets(&dir.join(format!("{case}.pk")));
            let reference = pcm(&dir.join(format!("{case}.ref")));
            let started = Instant::now();
            let out = run(&ps);
            let per_packet = started.elapsed().as_secs_f64() * 1e6 / ps.len() as f64;
            println!(
                "| {name} | {case} | {:.1} dB ({} of {} samples) | {per_packet:.1} |",
                snr(&reference, &out),
                out.len(),
                reference.len()
            );
        }
    }
}
