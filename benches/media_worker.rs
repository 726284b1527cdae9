//! The media worker's per-packet path: what a worker does with one datagram — the source
//! filter, RTP parse, accounting, timeline and PCMU decode, and the worker-wide tick's share
//! — first on in-memory bytes (one stream, then many streams with cold state), then with
//! the receive itself (`recvfrom` on a loopback socket, one datagram per read as a worker
//! reads a ready socket).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::config::MediaSource;
use sip_recorder::media::accounting::StreamAccounting;
use sip_recorder::media::rtp::write_packet;
use sip_recorder::media::{Decoder, StreamTimeline, TimelineConfig};
use sip_recorder::recording::stream::{MediaStream, PcmOutput, StreamReceiver, StreamSockets};
use sip_recorder::recording::wav::WavFormat;
use sip_recorder::recording::workers::{Port, Read, Scratch, read_datagram};
use sip_recorder::recording::writer::{WavWriterPool, WriterConfig, WriterHandle};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// A PCMU receiver on a loopback socket, as a worker holds it; its PCM goes to a WAV file
/// through `writer`, as in the recorder.
fn pcmu_receiver(start: Instant, writer: &WriterHandle, dir: &Path) -> (UdpSocket, StreamReceiver) {
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("loopback bind");
    rtp.set_nonblocking(true).expect("non-blocking");
    let decoder = Decoder::for_codec("PCMU").expect("PCMU is supported");
    let config = TimelineConfig::for_decoder(&decoder);
    // Decoder and output rate are the same: no conversion that could fail.
    let timeline = StreamTimeline::new(config, 0, decoder, start).expect("same rate");
    let stream = MediaStream {
        index: 0,
        sockets: StreamSockets { rtp, rtcp: None },
        timeline,
        remote: Some(Ipv4Addr::LOCALHOST.into()),
        media_source: MediaSource::Strict,
        paused: false,
        srtp: None,
        accounting: StreamAccounting::new(8000),
        output: PcmOutput::new(
            writer.clone(),
            writer
                .open(dir.join("stream-0.wav"), WavFormat::mono(8000))
                .expect("writer running"),
        ),
    };
    let (sockets, receiver) = stream.into_parts(start);
    (sockets.rtp, receiver)
}

/// The recorder's WAV writer threads, writing into a temporary directory.
fn writer() -> (WavWriterPool, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pool = WavWriterPool::start(WriterConfig::default()).expect("writer threads");
    (pool, dir)
}

/// A 200 Hz square wave at ±8,316 in PCMU (0x1F and 0x9F), as loud as a call's audio: a
/// stream that proved sound takes the accounting's cheap path, as at steady state; a
/// constant payload would keep measuring its silence on every packet.
const SQUARE_WAVE: [u8; 160] = {
    let mut payload = [0x1F; 160];
    let mut i = 0;
    while i < 160 {
        if (i / 20) % 2 == 1 {
            payload[i] = 0x9F;
        }
        i += 1;
    }
    payload
};

fn packet(wire: &mut Vec<u8>, n: u64) {
    wire.clear();
    write_packet(
        wire,
        false,
        0,
        n as u16,
        (n as u32).wrapping_mul(160),
        0x1234_5678,
        &SQUARE_WAVE,
    );
}

/// Streams in the cold-state case: enough that a stream's state has mostly left the
/// caches by its next packet, as for a worker with thousands of streams. (With 800 the
/// bench measured within 30 % of the one-stream figure, with 4,000 about twice it.)
const COLD_STREAMS: usize = 4000;

/// In-memory datagrams on a virtual 20 ms clock; every 5th packet is a tick (100 ms). With
/// one stream its state stays in cache; dealt round-robin over [`COLD_STREAMS`] receivers,
/// each packet finds its stream's state cold, as a worker does: the difference is the cost
/// of the per-stream cache misses.
fn receiver_per_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("media_worker");
    g.throughput(Throughput::Elements(1));
    for (name, streams) in [
        ("receiver_per_packet/pcmu", 1),
        ("receiver_per_packet_cold_4000/pcmu", COLD_STREAMS),
    ] {
        let start = Instant::now();
        let (pool, dir) = writer();
        let mut receivers: Vec<StreamReceiver> = (0..streams)
            .map(|i| {
                let stream_dir = dir.path().join(i.to_string());
                std::fs::create_dir(&stream_dir).expect("stream directory");
                pcmu_receiver(start, &pool.handle(), &stream_dir).1
            })
            .collect();
        let from: SocketAddr = (Ipv4Addr::LOCALHOST, 40_000).into();
        let mut scratch_plain = Vec::with_capacity(2048);
        let mut out = Vec::with_capacity(4800);
        let mut wire = Vec::with_capacity(256);
        let mut n = 0u64;
        let count = streams as u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let (round, stream) = (n / count, n % count);
                packet(&mut wire, round);
                let now = start
                    + Duration::from_millis(20 * round)
                    + Duration::from_micros(20_000 * stream / count);
                let receiver = &mut receivers[stream as usize];
                receiver.on_rtp_port(now, black_box(&wire), from, &mut scratch_plain);
                if round % 5 == 4 {
                    black_box(receiver.poll(now, &mut out));
                }
                n += 1;
            })
        });
    }
    g.finish();
}

/// 64 datagrams queued on a loopback socket (sent outside the timing), then read one at a
/// time by `read_datagram`, as a worker reads a socket its level-triggered poller reports
/// (no read ends in `EAGAIN`); one tick per 5 packets' worth.
fn loopback_read(c: &mut Criterion) {
    const BURST: u64 = 64;
    let mut g = c.benchmark_group("media_worker");
    g.throughput(Throughput::Elements(BURST));
    let start = Instant::now();
    let (pool, dir) = writer();
    let (socket, mut receiver) = pcmu_receiver(start, &pool.handle(), dir.path());
    let to = socket.local_addr().expect("bound");
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("loopback bind");
    let mut scratch = Scratch::default();
    let mut wire = Vec::with_capacity(256);
    let mut n = 0u64;
    g.bench_function("loopback_read_64/pcmu", |b| {
        b.iter_batched(
            || {
                for _ in 0..BURST {
                    packet(&mut wire, n);
                    sender.send_to(&wire, to).expect("loopback send");
                    n += 1;
                }
                start + Duration::from_millis(20 * n)
            },
            |now| {
                for _ in 0..BURST {
                    let read = read_datagram(&socket, Port::Rtp, &mut receiver, &mut scratch, now);
                    assert_eq!(read, Read::Datagram, "the burst is queued whole");
                }
                for _ in 0..BURST / 5 {
                    black_box(receiver.poll(now, scratch.out()));
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, receiver_per_packet, loopback_read);
criterion_main!(benches);
