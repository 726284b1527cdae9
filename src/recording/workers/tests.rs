//! The media workers on real loopback sockets: many streams per worker, control between
//! batches, the stop drain, streams coming and going while others flow, one and two workers.

use super::MediaWorkers;
use crate::config::MediaSource;
use crate::media::accounting::StreamAccounting;
use crate::media::rtp::write_packet;
use crate::media::{Decoder, StreamTimeline, TimelineConfig};
use crate::recording::stream::{MediaStream, PcmOutput, StreamBlock, StreamControl, StreamSockets};
use crate::recording::wav::WavFormat;
use crate::recording::writer::tests::held_pool;
use crate::recording::writer::{WavWriterPool, WriterConfig, WriterHandle};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One writer pool and directory for every stream of these tests (they live as long as
/// the test process).
fn test_writer() -> &'static (WriterHandle, PathBuf) {
    static WRITER: OnceLock<(WriterHandle, PathBuf)> = OnceLock::new();
    WRITER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let pool = Box::leak(Box::new(
            WavWriterPool::start(WriterConfig::default()).unwrap(),
        ));
        (pool.handle(), dir)
    })
}

/// A PCMU stream bound on loopback, expecting RTP from `remote`; its PCM goes to a file of
/// its own on [`test_writer`].
fn pcmu_stream(index: usize, remote: IpAddr) -> (MediaStream, SocketAddr) {
    let rtp = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    rtp.set_nonblocking(true).unwrap();
    let addr = rtp.local_addr().unwrap();
    let decoder = Decoder::for_codec("PCMU").unwrap();
    let config = TimelineConfig::for_decoder(&decoder);
    // PCMU decodes at the output rate: no conversion that could fail.
    let timeline = StreamTimeline::new(config, 0, decoder, Instant::now()).unwrap();
    let stream = MediaStream {
        index,
        sockets: StreamSockets { rtp, rtcp: None },
        timeline,
        remote: Some(remote),
        media_source: MediaSource::Strict,
        paused: false,
        srtp: None,
        accounting: StreamAccounting::new(8000),
        output: test_output(),
    };
    (stream, addr)
}

fn test_output() -> PcmOutput {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (writer, dir) = test_writer();
    let name = format!("stream-{}.wav", NEXT.fetch_add(1, Ordering::Relaxed));
    let file = writer.open(dir.join(name), WavFormat::mono(8000)).unwrap();
    PcmOutput::new(writer.clone(), file)
}

/// An RTP sender of 20 ms PCMU packets of a loud constant pattern.
struct Sender {
    socket: UdpSocket,
    to: SocketAddr,
    seq: u16,
    wire: Vec<u8>,
}

impl Sender {
    fn new(to: SocketAddr) -> Self {
        Sender {
            socket: UdpSocket::bind((LOOPBACK, 0)).unwrap(),
            to,
            seq: 0,
            wire: Vec::new(),
        }
    }

    fn send(&mut self, packets: usize) {
        for _ in 0..packets {
            self.wire.clear();
            let ts = u32::from(self.seq).wrapping_mul(160);
            write_packet(&mut self.wire, false, 0, self.seq, ts, 0xabcd, &[0x20; 160]);
            self.socket.send_to(&self.wire, self.to).unwrap();
            self.seq = self.seq.wrapping_add(1);
        }
    }
}

/// Blocks until `count` last blocks arrived (or 5 s passed); returns every block seen.
fn collect_last(
    rx: &mut mpsc::UnboundedReceiver<Box<StreamBlock>>,
    count: usize,
) -> Vec<StreamBlock> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut blocks = Vec::new();
    while blocks.iter().filter(|b: &&StreamBlock| b.last).count() < count {
        match rx.try_recv() {
            Ok(b) => blocks.push(*b),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => panic!("only {} of {count} streams ended", blocks.len()),
        }
    }
    blocks
}

fn last_of(blocks: &[StreamBlock], index: usize) -> &StreamBlock {
    blocks
        .iter()
        .find(|b| b.last && b.index == index)
        .unwrap_or_else(|| panic!("no last block of stream {index}"))
}

/// The counters of a block that carries them (every last block does).
fn stats(block: &StreamBlock) -> &crate::media::StreamStats {
    &block.counters.as_ref().expect("counters").stats
}

fn audio_packets(block: &StreamBlock) -> u64 {
    stats(block)
        .audio_by_payload_type
        .iter()
        .map(|(_, _, n)| n)
        .sum()
}

/// Waits until the worker has read what was sent (the kernel delivers loopback at once,
/// the worker needs a moment to be scheduled on a busy machine).
fn settle() {
    std::thread::sleep(Duration::from_millis(60));
}

#[test]
fn one_worker_carries_many_streams_and_every_packet_arrives() {
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut links = Vec::new();
    let mut senders = Vec::new();
    let mut files = Vec::new();
    for index in 0..200 {
        let (stream, addr) = pcmu_stream(index, LOOPBACK);
        files.push(stream.output.file);
        let link = workers.assign();
        link.start(stream, tx.clone()).unwrap();
        links.push(link);
        senders.push(Sender::new(addr));
    }
    assert_eq!(workers.loads(), vec![200]);
    for round in 0..5 {
        for s in senders.iter_mut() {
            s.send(2);
        }
        if round % 2 == 0 {
            settle();
        }
    }
    settle();
    for link in &links {
        link.send(StreamControl::Stop).unwrap();
    }
    let blocks = collect_last(&mut rx, 200);
    for index in 0..200 {
        let last = last_of(&blocks, index);
        assert_eq!(stats(last).packets_received, 10, "stream {index}");
        assert_eq!(stats(last).packets_lost, 0, "stream {index}");
    }
    assert_eq!(workers.loads(), vec![0]);
    // Every stream's PCM reached its file before its last block: 10 packets of 160.
    for (index, file) in files.into_iter().enumerate() {
        let summary = test_writer().0.close(file).unwrap().blocking_recv();
        let samples = summary.unwrap().unwrap().samples;
        assert!(samples >= 1600, "stream {index}: {samples} samples");
    }
    workers.shutdown();
}

#[test]
fn stop_reads_what_sits_in_the_socket_before_the_last_block() {
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stream, addr) = pcmu_stream(0, LOOPBACK);
    // Everything is queued in the kernel before the worker ever sees the socket: Add and
    // Stop reach it in one batch, so only the stop drain can read these.
    Sender::new(addr).send(25);
    let link = workers.assign();
    link.start(stream, tx).unwrap();
    link.send(StreamControl::Stop).unwrap();
    let blocks = collect_last(&mut rx, 1);
    assert_eq!(
        blocks.len(),
        1,
        "Add and Stop in one batch: no tick between"
    );
    let last = last_of(&blocks, 0);
    assert_eq!(stats(last).packets_received, 25);
    assert_eq!(audio_packets(last), 25);
    workers.shutdown();
}

#[test]
fn pause_resume_and_a_new_source_apply_in_order_between_batches() {
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The SDP names another address: loopback's packets are refused until re-negotiated.
    let (stream, addr) = pcmu_stream(0, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let link = workers.assign();
    link.start(stream, tx).unwrap();
    let mut sender = Sender::new(addr);
    sender.send(5);
    settle();
    link.send(StreamControl::Renegotiated {
        codecs: vec![(0, "PCMU".to_owned())],
        remote: Some(LOOPBACK),
        telephone_event: None,
        srtp: None,
    })
    .unwrap();
    settle();
    sender.send(10);
    settle();
    link.send(StreamControl::Pause).unwrap();
    settle();
    sender.send(7);
    settle();
    link.send(StreamControl::Resume).unwrap();
    settle();
    sender.send(10);
    settle();
    link.send(StreamControl::Stop).unwrap();
    let blocks = collect_last(&mut rx, 1);
    let last = last_of(&blocks, 0);
    // 5 refused (wrong source), 27 received, of which 7 while paused are not audio.
    assert_eq!(stats(last).packets_received, 27);
    assert_eq!(audio_packets(last), 20);
    workers.shutdown();
}

#[test]
fn streams_added_and_removed_while_another_flows_lose_nothing() {
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (steady, steady_addr) = pcmu_stream(0, LOOPBACK);
    let steady_link = workers.assign();
    steady_link.start(steady, tx.clone()).unwrap();
    let mut steady_sender = Sender::new(steady_addr);
    let mut sent = 0;
    for index in 1..=10 {
        let (stream, addr) = pcmu_stream(index, LOOPBACK);
        let link = workers.assign();
        link.start(stream, tx.clone()).unwrap();
        let mut s = Sender::new(addr);
        s.send(3);
        steady_sender.send(3);
        sent += 3;
        settle();
        s.send(3);
        // Dropping the link stops the stream, as a closed control channel did.
        if index % 2 == 0 {
            link.send(StreamControl::Stop).unwrap();
        }
        drop(link);
        steady_sender.send(2);
        sent += 2;
    }
    settle();
    steady_link.send(StreamControl::Stop).unwrap();
    let blocks = collect_last(&mut rx, 11);
    for index in 1..=10 {
        assert_eq!(
            stats(last_of(&blocks, index)).packets_received,
            6,
            "stream {index}"
        );
    }
    let steady = last_of(&blocks, 0);
    assert_eq!(stats(steady).packets_received, sent);
    assert_eq!(stats(steady).packets_lost, 0);
    assert_eq!(workers.loads(), vec![0]);
    workers.shutdown();
}

#[test]
fn two_workers_share_the_streams_and_each_carries_its_own() {
    let workers = MediaWorkers::start(2).unwrap();
    assert_eq!(workers.workers(), 2);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut links = Vec::new();
    let mut senders = Vec::new();
    for index in 0..8 {
        let (stream, addr) = pcmu_stream(index, LOOPBACK);
        let link = workers.assign();
        link.start(stream, tx.clone()).unwrap();
        links.push(link);
        senders.push(Sender::new(addr));
    }
    assert_eq!(workers.loads(), vec![4, 4], "least-loaded assignment");
    for (i, s) in senders.iter_mut().enumerate() {
        s.send(5 + i);
    }
    settle();
    for link in &links {
        link.send(StreamControl::Stop).unwrap();
    }
    let blocks = collect_last(&mut rx, 8);
    for index in 0..8 {
        assert_eq!(
            stats(last_of(&blocks, index)).packets_received,
            5 + index as u64
        );
    }
    assert_eq!(workers.loads(), vec![0, 0]);
    workers.shutdown();
}

#[test]
fn a_stream_whose_recording_is_gone_leaves_its_worker() {
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (stream, _) = pcmu_stream(0, LOOPBACK);
    let link = workers.assign();
    link.start(stream, tx).unwrap();
    drop(rx);
    // The next tick finds nobody to take the block.
    let deadline = Instant::now() + Duration::from_secs(2);
    while workers.loads() != vec![0] {
        assert!(Instant::now() < deadline, "stream still on its worker");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(link);
    // An assigned link that never started gives its place back too.
    drop(workers.assign());
    assert_eq!(workers.loads(), vec![0]);
    workers.shutdown();
}

#[test]
fn counters_reach_the_task_with_the_first_packets_then_once_a_second() {
    let (stream, _) = pcmu_stream(0, LOOPBACK);
    let file = stream.output.file;
    let start = Instant::now();
    let (_sockets, mut receiver) = stream.into_parts(start);
    let from = SocketAddr::from((LOOPBACK, 40_000));
    let (mut plain, mut out, mut wire) = (Vec::new(), Vec::new(), Vec::new());
    let mut blocks = Vec::new();
    for tick in 0..25u64 {
        for k in 0..5 {
            let n = tick * 5 + k;
            wire.clear();
            write_packet(
                &mut wire,
                false,
                0,
                n as u16,
                n as u32 * 160,
                0xabcd,
                &[0x20; 160],
            );
            let at = start + Duration::from_millis(20 * n);
            receiver.on_rtp_port(at, &wire, from, &mut plain);
        }
        let now = start + Duration::from_millis(100 * (tick + 1));
        if let Some(block) = receiver.poll(now, &mut out) {
            blocks.push((tick, block.counters.is_some(), block.last));
        }
    }
    // Ticks between carry PCM to the file only: nothing for the task.
    assert_eq!(
        blocks,
        [(0, true, false), (10, true, false), (20, true, false)]
    );
    let last = receiver.finish(start + Duration::from_millis(2500), &mut out);
    assert!(last.last);
    assert_eq!(stats(&last).packets_received, 125);
    let summary = test_writer().0.close(file).unwrap().blocking_recv();
    // Every tick's PCM reached the file: 2.5 s at 8 kHz, within one packet (SPEC §5).
    let samples = summary.unwrap().unwrap().samples;
    assert!(samples.abs_diff(20_000) <= 160, "{samples} samples");
}

#[test]
fn a_burst_longer_than_one_turn_is_read_while_the_stream_runs() {
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stream, addr) = pcmu_stream(0, LOOPBACK);
    let link = workers.assign();
    link.start(stream, tx).unwrap();
    let mut sender = Sender::new(addr);
    // Far more than the 64 rounds a worker takes in a row: the rest must follow, not wait
    // for a stop (a level-triggered poller reports the socket again).
    // 120 datagrams fit a default receive buffer whole.
    sender.send(120);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while seen < 120 {
        match rx.try_recv() {
            Ok(block) if block.counters.is_some() => {
                assert!(!block.last, "the stream ended by itself");
                seen = stats(&block).packets_received;
            }
            Ok(_) => {}
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => panic!("only {seen} of 120 packets read while the stream ran"),
        }
    }
    drop(link);
    workers.shutdown();
}

/// Streams recording while the writer is past its bound on unwritten audio: their PCM is
/// shed as they run, and what they owe reaches their files as silence before the close, so
/// every file still spans its stream's time.
#[test]
fn streams_past_the_writers_bound_shed_their_audio_and_settle_it_before_the_close() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing is written until the close: the backlog only grows, as on a stalled disk. Its
    // bound is three 100 ms blocks of 8 kHz audio.
    let pool = held_pool(1, 3 * 1600);
    let writer = pool.handle();
    let workers = MediaWorkers::start(1).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut streams = Vec::new();
    for index in 0..4 {
        let (mut stream, addr) = pcmu_stream(index, LOOPBACK);
        let path = dir.path().join(format!("{index}.wav"));
        let file = writer.open(path, WavFormat::mono(8000)).unwrap();
        stream.output = PcmOutput::new(writer.clone(), file);
        let link = workers.assign();
        link.start(stream, tx.clone()).unwrap();
        streams.push((link, Sender::new(addr), file));
    }
    let start = Instant::now();
    for _ in 0..25 {
        for (_, sender, _) in streams.iter_mut() {
            sender.send(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (link, _, _) in &streams {
        link.send(StreamControl::Stop).unwrap();
    }
    collect_last(&mut rx, 4);
    let elapsed = start.elapsed();
    let (mut samples, mut shed) = (0, 0);
    for (_, _, file) in &streams {
        let summary = writer
            .close(*file)
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        let span = Duration::from_secs_f64(summary.duration_seconds);
        assert!(
            span + Duration::from_millis(100) >= elapsed,
            "{span:?} of {elapsed:?}"
        );
        samples += summary.samples;
        shed += summary.samples_shed;
    }
    // The bound's three blocks, and at most each stream's last block: a stopping stream's
    // silence is written when it comes, which can make room for the next one's last block.
    assert!(
        samples - shed <= 3 * 800 + 4 * 1600,
        "kept {} samples past the bound",
        samples - shed
    );
    assert!(shed >= samples / 2, "{shed} of {samples} shed");
    assert_eq!(
        writer.stats().samples_shed,
        shed,
        "every shed sample settled"
    );
    workers.shutdown();
    pool.shutdown();
}
