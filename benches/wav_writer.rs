//! WAV writing: buffer appends, the per-flush cost with 1,000 files open, and the writer
//! pool end to end (one second of 8 kHz audio for 1,000 files, then a flush of each).
//!
//! Files are recreated every few iterations (untimed) so the run does not fill the disk.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::recording::wav::{WavFormat, WavStreamWriter};
use sip_recorder::recording::writer::{FileId, WavWriterPool, WriterConfig, WriterHandle};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const FILES: usize = 1000;
const PACKET: usize = 160;
/// 50 packets of 160 samples: one second of 8 kHz audio per file.
const PACKETS_PER_SECOND: usize = 50;
/// Iterations between fresh sets of files.
const RECREATE_EVERY: u64 = 8;

fn writers(dir: &Path) -> Vec<WavStreamWriter> {
    (0..FILES)
        .map(|i| {
            // The directory is new and empty and the format valid: creation cannot fail
            // short of a broken machine, where the bench has nothing to measure.
            WavStreamWriter::create(&dir.join(format!("{i}.wav")), WavFormat::mono(8000))
                .expect("create bench file")
        })
        .collect()
}

fn bench_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = WavStreamWriter::create(&dir.path().join("a.wav"), WavFormat::mono(8000))
        .expect("create bench file");
    let packet = vec![1234i16; PACKET];
    let mut g = c.benchmark_group("wav");
    g.throughput(Throughput::Elements(PACKET as u64));
    g.bench_function("append 160 samples (buffer only)", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                let t = Instant::now();
                w.append(black_box(&packet));
                spent += t.elapsed();
                // Keep the buffer at a realistic size; the flush is not timed.
                if i % PACKETS_PER_SECOND as u64 == 0 && w.flush().is_err() {
                    break;
                }
            }
            spent
        })
    });
    g.finish();
}

fn bench_flush(c: &mut Criterion) {
    let packet = vec![1234i16; PACKET];
    let mut g = c.benchmark_group("wav");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(FILES as u64));
    g.bench_function("flush 1000 files x 1 s of 8 kHz", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut dir = tempfile::tempdir().expect("tempdir");
            let mut ws = writers(dir.path());
            for i in 0..iters {
                if i > 0 && i % RECREATE_EVERY == 0 {
                    drop(ws);
                    dir = tempfile::tempdir().expect("tempdir");
                    ws = writers(dir.path());
                }
                for w in ws.iter_mut() {
                    for _ in 0..PACKETS_PER_SECOND {
                        w.append(&packet);
                    }
                }
                let t = Instant::now();
                for w in ws.iter_mut() {
                    // Disk errors would make the number meaningless; fail loudly.
                    w.flush().expect("flush");
                }
                spent += t.elapsed();
            }
            spent
        })
    });
    g.finish();
}

/// Opens the files and waits until they exist: creating 1,000 files costs ext4 far more
/// than writing to them, and is not what this measures.
fn open_all(h: &WriterHandle, dir: &Path) -> Vec<FileId> {
    let ids: Vec<FileId> = (0..FILES)
        .map(|i| {
            h.open(dir.join(format!("{i}.wav")), WavFormat::mono(8000))
                .expect("writer running")
        })
        .collect();
    for id in &ids {
        let created = h.flush(*id).expect("writer running").blocking_recv();
        created.expect("reply").expect("file created");
    }
    ids
}

fn bench_pool(c: &mut Criterion) {
    let pool = WavWriterPool::start(WriterConfig::default()).expect("start writer");
    let h = pool.handle();
    let mut g = c.benchmark_group("wav");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(
        (FILES * PACKETS_PER_SECOND * PACKET) as u64,
    ));
    g.bench_function("pool: 1000 files x 1 s append + flush (samples)", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut dir = tempfile::tempdir().expect("tempdir");
            let mut ids = open_all(&h, dir.path());
            for i in 0..iters {
                if i > 0 && i % RECREATE_EVERY == 0 {
                    for id in &ids {
                        let _ = h.close(*id).expect("writer running").blocking_recv();
                    }
                    dir = tempfile::tempdir().expect("tempdir");
                    ids = open_all(&h, dir.path());
                }
                let t = Instant::now();
                for _ in 0..PACKETS_PER_SECOND {
                    for id in &ids {
                        h.append(*id, vec![1234i16; PACKET])
                            .expect("writer running");
                    }
                }
                let replies: Vec<_> = ids
                    .iter()
                    .map(|id| h.flush(*id).expect("writer running"))
                    .collect();
                for r in replies {
                    r.blocking_recv().expect("reply").expect("flush");
                }
                spent += t.elapsed();
            }
            for id in &ids {
                let _ = h.close(*id).expect("writer running").blocking_recv();
            }
            drop(dir);
            spent
        })
    });
    g.finish();
    pool.shutdown();
}

criterion_group!(benches, bench_append, bench_flush, bench_pool);
criterion_main!(benches);
