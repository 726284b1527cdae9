//! The CDR segment spool: append + commit (fdatasync) per record at group sizes 1, 16 and
//! 256, and the startup recovery scan of a 10,000-record log. On the disk the spool lives
//! on, so the fdatasync cost is in the figures.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::cdr::spool::{Prepared, Spool};

fn record(i: u64) -> Prepared {
    Prepared {
        session: "a865433a-4926-4549-a701-9bb5b93c75e6".into(),
        correlator: i,
        record_type: "callLegEnd".into(),
        time: "2026-12-01T12:00:00Z".into(),
        // A callLegEnd of typical size (≈ 0.7 KB).
        inner_xml: format!(
            "<callLeg id=\"9cfdb064-3ae9-4b08-a003-{i:012}\"><reason>remoteTeardown</reason>\
             <remoteTeardown>true</remoteTeardown><durationSeconds>120</durationSeconds>\
             <rxAudio><codec>g711u</codec><packetStatistics><packetLossBursts>\
             <duration>0.000</duration><density>0.00</density></packetLossBursts>\
             <packetGap><duration>0.000</duration><density>0.00</density></packetGap>\
             </packetStatistics></rxAudio><sipCallId>a939937c-8b5e-4376-92de-{i:012}@src</sipCallId>\
             <calluuid>0001{i:012}</calluuid><dn>1001</dn><otherDN>2002</otherDN>\
             <endReason>bye</endReason></callLeg>"
        ),
    }
}

/// A spool directory beside the build (not /tmp, which may be tmpfs: fdatasync would be
/// free there).
fn spool_dir() -> tempfile::TempDir {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    tempfile::Builder::new()
        .prefix("bench-cdr-spool")
        .tempdir_in(base)
        .expect("tempdir")
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("cdr_spool_append_commit");
    for group in [1u64, 16, 256] {
        let dir = spool_dir();
        let spool = Spool::open(dir.path().join("r"), Some(10_000_000)).expect("open");
        let records: Vec<Prepared> = (0..group).map(record).collect();
        g.throughput(Throughput::Elements(group));
        g.bench_function(format!("group_{group}"), |b| {
            b.iter(|| spool.append(black_box(&records)).expect("append"))
        });
        // Keep the directory small between groups: acknowledge everything.
        loop {
            let batch = spool.take_batch(10_000);
            if batch.is_empty() {
                break;
            }
            spool.ack(&batch);
        }
    }
    g.finish();
}

fn recovery(c: &mut Criterion) {
    const N: u64 = 10_000;
    let dir = spool_dir();
    let path = dir.path().join("r");
    {
        let spool = Spool::open(path.clone(), Some(1_000_000)).expect("open");
        let records: Vec<Prepared> = (0..N).map(record).collect();
        for chunk in records.chunks(500) {
            spool.append(chunk).expect("append");
        }
    }
    let mut g = c.benchmark_group("cdr_spool_recovery");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.bench_function("open_10k_records", |b| {
        b.iter_batched(
            || (),
            |()| {
                let s = Arc::new(Spool::open(path.clone(), Some(1_000_000)).expect("reopen"));
                assert_eq!(s.len(), N as usize);
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, append, recovery);
criterion_main!(benches);
