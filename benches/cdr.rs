//! CDR throughput: format → durable spool (fsync per record) → HTTP POST to a local
//! receiver → acknowledged and deleted. Also the pure formatting cost of one record.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::cdr::model::{RecordEnvelope, document, format_time};
use sip_recorder::cdr::{self, CallLegEnd, CallLegEndReason, CdrEvent, CdrSettings, RxAudio};

fn event(i: u64) -> CdrEvent {
    CdrEvent::CallLegEnd(CallLegEnd {
        call_leg: format!("9cfdb064-3ae9-4b08-a003-{i:012}"),
        reason: CallLegEndReason::RemoteTeardown,
        remote_teardown: true,
        duration_seconds: 120,
        sip_call_id: format!("a939937c-8b5e-4376-92de-{i:012}@src.example.com"),
        rx_audio: vec![RxAudio {
            codec: "g711u".into(),
            packets_received: 6000,
            packets_lost: 3,
            ..RxAudio::default()
        }],
        ..CallLegEnd::default()
    })
}

fn format_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("cdr_format");
    g.throughput(Throughput::Elements(1));
    let ev = event(1);
    let time = format_time(time::OffsetDateTime::now_utc());
    g.bench_function("callLegEnd_document", |b| {
        b.iter(|| {
            let inner = black_box(&ev).inner_xml();
            document(
                "a865433a-4926-4549-a701-9bb5b93c75e6",
                Some("158ba4f7-70eb-4a35-982c-71d4f1674277"),
                [RecordEnvelope {
                    record_type: ev.record_type(),
                    time: &time,
                    record_index: 1,
                    correlator_index: 0,
                    missing: 0,
                    inner_xml: &inner,
                }],
            )
        })
    });
    g.finish();
}

async fn count(State(n): State<Arc<AtomicU64>>, body: String) -> &'static str {
    n.fetch_add(body.matches("<record ").count() as u64, Ordering::Relaxed);
    "ok"
}

fn pipeline(c: &mut Criterion) {
    const N: u64 = 2_000;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let received = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().expect("tempdir");
    let (sink, svc) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let app = Router::new()
            .route("/cdr", post(count))
            .with_state(received.clone());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        cdr::start(CdrSettings {
            spool_dir: dir.path().to_path_buf(),
            receivers: vec![format!("http://{addr}/cdr")],
            ..CdrSettings::default()
        })
        .expect("start")
    });

    let mut g = c.benchmark_group("cdr_pipeline");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(N));
    g.bench_function("record_to_acked_2000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = received.load(Ordering::Relaxed) + N;
                let t = Instant::now();
                for i in 0..N {
                    sink.record(event(i));
                }
                rt.block_on(async {
                    while received.load(Ordering::Relaxed) < target || sink.spool_depth() > 0 {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                });
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    rt.block_on(svc.shutdown());
}

criterion_group!(benches, format_one, pipeline);
criterion_main!(benches);
