use super::*;
use crate::recording::wav::tests::frequency;
use std::path::Path;

fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    (0..n)
        .map(|i| (8000.0 * (w * i as f64).sin()) as i16)
        .collect()
}

fn read(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

fn config(flush_ms: u64) -> WriterConfig {
    WriterConfig {
        flush_interval: Duration::from_millis(flush_ms),
        ..WriterConfig::default()
    }
}

#[test]
fn ten_seconds_of_tone_through_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.wav");
    let pool = WavWriterPool::start(config(100)).unwrap();
    let h = pool.handle();
    let id = h.open(path.clone(), WavFormat::mono(8000)).unwrap();
    let samples = tone(440.0, 8000, 80_000);
    for packet in samples.chunks(160) {
        h.append(id, packet.to_vec()).unwrap();
    }
    let summary = h.close(id).unwrap().blocking_recv().unwrap().unwrap();
    assert_eq!(summary.samples, 80_000);
    assert!((summary.duration_seconds - 10.0).abs() < 1e-9);
    let back = read(&path);
    assert_eq!(back, samples);
    let f = frequency(&back, 8000);
    assert!((f - 440.0).abs() < 1.0, "measured {f} Hz");
    assert_eq!(pool.stats().files_open, 0);
    pool.shutdown();
}

/// `right.wav` and `stereo.wav` (8 kHz) opened beside `left`, the stereo file fed by both.
fn stereo_beside(h: &WriterHandle, left: FileId, dir: &Path) -> (FileId, FileId) {
    let beside = |name: &str, format| {
        h.open_as(h.new_file_id_beside(left), dir.join(name), format)
            .unwrap()
    };
    let right = beside("right.wav", WavFormat::mono(8000));
    let stereo = beside("stereo.wav", WavFormat::stereo(8000));
    h.send(WriterCommand::Interleave {
        file_id: stereo,
        left,
        right,
        interleaver: Box::new(StereoInterleaver::new(8000, 8000).unwrap()),
    })
    .unwrap();
    (right, stereo)
}

#[test]
fn a_stereo_file_is_interleaved_on_the_thread_of_its_two_sources() {
    let dir = tempfile::tempdir().unwrap();
    let pool = WavWriterPool::start(WriterConfig {
        threads: 3,
        ..config(100)
    })
    .unwrap();
    let h = pool.handle();
    let open = |name: &str| {
        h.open(dir.path().join(name), WavFormat::mono(8000))
            .unwrap()
    };
    // Other files move the id counter, so `beside` has to find the residue.
    let _ = open("other.wav");
    let left = open("left.wav");
    let _ = open("other2.wav");
    let (right, stereo) = stereo_beside(&h, left, dir.path());
    assert_eq!((right.0 % 3, stereo.0 % 3), (left.0 % 3, left.0 % 3));
    assert!(left != right && right != stereo);
    let l = tone(440.0, 8000, 8000);
    let r = tone(1000.0, 8000, 7000);
    // Blocks of unequal size and timing on each side, as two workers' ticks are.
    for (a, b) in l.chunks(800).zip(r.chunks(700)) {
        h.append(left, a.to_vec()).unwrap();
        h.append(right, b.to_vec()).unwrap();
    }
    for id in [left, right] {
        h.close(id).unwrap().blocking_recv().unwrap().unwrap();
    }
    let summary = h.close(stereo).unwrap().blocking_recv().unwrap().unwrap();
    assert_eq!(
        summary.samples, 8000,
        "the shorter side padded to the longer"
    );
    let frames = read(&dir.path().join("stereo.wav"));
    let (even, odd): (Vec<i16>, Vec<i16>) = frames.chunks(2).map(|f| (f[0], f[1])).unzip();
    assert_eq!(even, l);
    assert_eq!(odd[..7000], r[..]);
    assert!(odd[7000..].iter().all(|&x| x == 0));
    assert_eq!(read(&dir.path().join("left.wav")), l);
    pool.shutdown();
}

#[test]
fn a_mono_file_that_cannot_be_created_still_feeds_the_stereo_file() {
    let dir = tempfile::tempdir().unwrap();
    let pool = WavWriterPool::start(config(100)).unwrap();
    let h = pool.handle();
    let left = h
        .open(dir.path().join("missing/left.wav"), WavFormat::mono(8000))
        .unwrap();
    let (right, stereo) = stereo_beside(&h, left, dir.path());
    let l = tone(440.0, 8000, 1600);
    h.append(left, l.clone()).unwrap();
    h.append(right, vec![0; 1600]).unwrap();
    let closed = h.close(left).unwrap().blocking_recv().unwrap();
    assert!(closed.is_err(), "the left file was never created");
    h.close(right).unwrap().blocking_recv().unwrap().unwrap();
    h.close(stereo).unwrap().blocking_recv().unwrap().unwrap();
    let frames = read(&dir.path().join("stereo.wav"));
    let left_channel: Vec<i16> = frames.iter().step_by(2).copied().collect();
    assert_eq!(left_channel, l);
    pool.shutdown();
}

/// Opens left (1), right (2) and stereo (3) on `core`, the stereo file built from the two.
fn stereo_group(core: &mut ShardCore, dir: &Path, at: Instant) {
    for (id, name, format) in [
        (1, "left.wav", WavFormat::mono(8000)),
        (2, "right.wav", WavFormat::mono(8000)),
        (3, "stereo.wav", WavFormat::stereo(8000)),
    ] {
        let (file_id, path) = (FileId(id), dir.join(name));
        core.handle(
            WriterCommand::Open {
                file_id,
                path,
                format,
            },
            at,
        );
    }
    let interleaver = Box::new(StereoInterleaver::new(8000, 8000).unwrap());
    core.handle(
        WriterCommand::Interleave {
            file_id: FileId(3),
            left: FileId(1),
            right: FileId(2),
            interleaver,
        },
        at,
    );
}

fn buffered(core: &ShardCore, id: u64) -> usize {
    match core.files.get(&FileId(id)) {
        Some(FileSlot::Open(file)) => file.writer.buffered_bytes(),
        _ => panic!("file {id} is not open"),
    }
}

#[test]
fn a_file_holds_only_the_blocks_given_since_its_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(StatsCounters::default());
    let mut core = ShardCore::new(config(800), stats.clone());
    let start = Instant::now();
    let path = dir.path().join("a.wav");
    let format = WavFormat::mono(8000);
    core.handle(
        WriterCommand::Open {
            file_id: FileId(1),
            path: path.clone(),
            format,
        },
        start,
    );
    let held = |core: &ShardCore| match core.files.get(&FileId(1)) {
        Some(FileSlot::Open(file)) => file.writer.held_bytes(),
        _ => panic!("file 1 is not open"),
    };
    assert_eq!(
        held(&core),
        0,
        "nothing is reserved for a flush interval up front"
    );
    let audio = tone(440.0, 8000, 6400);
    for (k, block) in audio.chunks(800).enumerate() {
        let now = start + Duration::from_millis(k as u64 * 100);
        core.handle(
            WriterCommand::Append {
                file_id: FileId(1),
                samples: block.to_vec(),
            },
            now,
        );
        let blocks = (k + 1) * 800 * 2;
        let held = held(&core);
        assert!(
            held >= blocks && held <= blocks + 256,
            "{held} bytes held for {blocks}"
        );
    }
    core.flush_due(start + Duration::from_millis(800));
    assert_eq!(stats.snapshot().flushes, 1);
    assert!(held(&core) <= 256, "a flushed file gives its blocks back");
    assert_eq!(read(&path), audio);
}

#[test]
fn a_stereo_file_holds_no_buffer_and_flushes_with_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(StatsCounters::default());
    let mut core = ShardCore::new(config(1000), stats.clone());
    let start = Instant::now();
    stereo_group(&mut core, dir.path(), start);
    let (l, r) = (tone(440.0, 8000, 8000), tone(1000.0, 8000, 8000));
    for (k, (a, b)) in l.chunks(800).zip(r.chunks(800)).enumerate() {
        let now = start + Duration::from_millis(k as u64 * 100);
        core.handle(
            WriterCommand::Append {
                file_id: FileId(1),
                samples: a.to_vec(),
            },
            now,
        );
        core.handle(
            WriterCommand::Append {
                file_id: FileId(2),
                samples: b.to_vec(),
            },
            now,
        );
        core.flush_due(now);
    }
    assert_eq!((buffered(&core, 1), buffered(&core, 2)), (16_000, 16_000));
    assert_eq!(
        buffered(&core, 3),
        0,
        "the stereo audio is only in its sources' buffers"
    );
    assert_eq!(stats.snapshot().flushes, 0);

    core.flush_due(start + Duration::from_millis(1000));
    assert_eq!(
        stats.snapshot().flushes,
        3,
        "the three files flush together"
    );
    let frames = read(&dir.path().join("stereo.wav"));
    let (even, odd): (Vec<i16>, Vec<i16>) = frames.chunks(2).map(|f| (f[0], f[1])).unzip();
    assert_eq!((even, odd), (l.clone(), r));
    assert_eq!(read(&dir.path().join("left.wav")), l);
    assert_eq!(buffered(&core, 3), 0);

    // One flush per interval for the group, not one per member's own deadline.
    for k in 1..=20 {
        let now = start + Duration::from_millis(1000 + k * 100);
        core.handle(
            WriterCommand::Append {
                file_id: FileId(1),
                samples: vec![7; 800],
            },
            now,
        );
        core.handle(
            WriterCommand::Append {
                file_id: FileId(2),
                samples: vec![9; 800],
            },
            now,
        );
        core.flush_due(now);
    }
    assert_eq!(stats.snapshot().flushes, 9);
    assert_eq!(read(&dir.path().join("stereo.wav")).len(), 2 * 3 * 8000);
}

#[test]
fn closing_one_source_first_keeps_the_other_in_the_stereo_file() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(StatsCounters::default());
    let mut core = ShardCore::new(config(1000), stats.clone());
    let start = Instant::now();
    stereo_group(&mut core, dir.path(), start);
    core.handle(
        WriterCommand::Append {
            file_id: FileId(1),
            samples: vec![5; 800],
        },
        start,
    );
    core.handle(
        WriterCommand::Append {
            file_id: FileId(2),
            samples: vec![6; 400],
        },
        start,
    );
    assert!(core.close(FileId(1), start).is_ok());
    // The right side goes on after the left one ended; its frames are not lost.
    core.handle(
        WriterCommand::Append {
            file_id: FileId(2),
            samples: vec![6; 1200],
        },
        start,
    );
    assert!(core.close(FileId(2), start).is_ok());
    let summary = core.close(FileId(3), start).unwrap();
    assert_eq!(summary.samples, 1600);
    let frames = read(&dir.path().join("stereo.wav"));
    assert!(frames[..1600].chunks(2).all(|f| f == [5, 6]));
    assert!(frames[1600..].chunks(2).all(|f| f == [0, 6]));
    assert_eq!(stats.snapshot().files_open, 0);
}

#[test]
fn file_is_valid_after_every_flush_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.wav");
    let pool = WavWriterPool::start(config(60_000)).unwrap();
    let h = pool.handle();
    let id = h.open(path.clone(), WavFormat::mono(8000)).unwrap();
    let samples = tone(440.0, 8000, 8000);
    for (k, second) in samples.chunks(1600).enumerate() {
        for packet in second.chunks(160) {
            h.append(id, packet.to_vec()).unwrap();
        }
        h.flush(id).unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(read(&path), samples[..(k + 1) * 1600]);
    }
    pool.shutdown();
    // Shutdown finalized the file it still held open.
    assert_eq!(read(&path), samples);
}

#[test]
fn failed_open_and_unknown_file_report_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pool = WavWriterPool::start(config(1000)).unwrap();
    let h = pool.handle();
    let id = h
        .open(dir.path().join("missing/a.wav"), WavFormat::mono(8000))
        .unwrap();
    h.append(id, vec![0; 160]).unwrap();
    let e = h.close(id).unwrap().blocking_recv().unwrap().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let e = h.close(FileId(999)).unwrap().blocking_recv().unwrap();
    assert!(e.is_err());
    let stats = pool.stats();
    assert_eq!((stats.open_errors, stats.samples_dropped), (1, 160));
    pool.shutdown();
    assert_eq!(h.append(id, vec![1]), Err(WriterClosed));
}

/// 2,000 open files, 50 appends of 160 samples per file per second, driven on a virtual
/// clock: every file is flushed once per interval, each flush being two writes.
#[test]
fn two_thousand_files_flush_once_per_interval() {
    const FILES: u64 = 2000;
    const SECONDS: u64 = 3;
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(StatsCounters::default());
    let mut core = ShardCore::new(config(1000), stats.clone());
    let start = Instant::now();
    for i in 0..FILES {
        let path = dir.path().join(format!("{i}.wav"));
        core.handle(
            WriterCommand::Open {
                file_id: FileId(i),
                path,
                format: WavFormat::mono(8000),
            },
            start,
        );
    }
    assert_eq!(
        stats.snapshot().open_errors,
        0,
        "raise `ulimit -n` above 2100"
    );
    let packet = vec![100i16; 160];
    for tick in 1..=SECONDS * 50 {
        let now = start + Duration::from_millis(tick * 20);
        for i in 0..FILES {
            let samples = packet.clone();
            core.handle(
                WriterCommand::Append {
                    file_id: FileId(i),
                    samples,
                },
                now,
            );
        }
        core.flush_due(now);
    }
    let s = stats.snapshot();
    assert_eq!(s.flushes, FILES * SECONDS);
    assert_eq!(
        s.write_calls,
        FILES + 2 * s.flushes,
        "header at open + 2 per flush"
    );
    assert_eq!(
        s.bytes_written,
        FILES * (44 + SECONDS * 16_000 + SECONDS * 44)
    );
    assert_eq!(
        core.next_deadline(),
        Some(start + Duration::from_secs(SECONDS + 1))
    );
    core.close_all();
    assert_eq!(
        read(&dir.path().join("1999.wav")).len(),
        SECONDS as usize * 8000
    );
    assert_eq!(stats.snapshot().files_open, 0);
}

#[test]
fn oversized_buffer_is_flushed_early_and_sync_follows_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(StatsCounters::default());
    let cfg = WriterConfig {
        max_buffer_bytes: 3200,
        sync_interval: Some(Duration::from_secs(2)),
        ..config(1000)
    };
    let mut core = ShardCore::new(cfg, stats.clone());
    let t0 = Instant::now();
    let open = |file_id, name: &str| WriterCommand::Open {
        file_id,
        path: dir.path().join(name),
        format: WavFormat::mono(8000),
    };
    core.handle(open(FileId(1), "a.wav"), t0);
    for _ in 0..10 {
        core.handle(
            WriterCommand::Append {
                file_id: FileId(1),
                samples: vec![1; 160],
            },
            t0,
        );
    }
    assert_eq!(
        stats.snapshot().flushes,
        1,
        "1600 samples = 3200 bytes: flushed at once"
    );
    for s in 1..=4 {
        let now = t0 + Duration::from_secs(s);
        core.handle(
            WriterCommand::Append {
                file_id: FileId(1),
                samples: vec![1; 160],
            },
            now,
        );
        core.flush_due(now);
    }
    assert_eq!((stats.snapshot().flushes, stats.snapshot().syncs), (5, 2));
    // A file id opened twice keeps the first file.
    core.handle(open(FileId(1), "b.wav"), t0);
    assert_eq!(stats.snapshot().open_errors, 1);
}

/// A pool whose files are written only when asked (a flush or a close): what it is given
/// waits, as on a stalled disk.
pub(crate) fn held_pool(threads: usize, max_pending_bytes: u64) -> WavWriterPool {
    WavWriterPool::start(WriterConfig {
        threads,
        flush_interval: Duration::from_secs(3600),
        max_pending_bytes,
        ..WriterConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn pending_bytes_count_what_is_queued_or_held_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let pool = held_pool(2, DEFAULT_MAX_PENDING_BYTES);
    let w = pool.handle();
    let file = w
        .open(dir.path().join("a.wav"), WavFormat::mono(8000))
        .unwrap();
    let lost = w
        .open(dir.path().join("no/such/dir.wav"), WavFormat::mono(8000))
        .unwrap();
    for _ in 0..5 {
        w.append(file, vec![1; 800]).unwrap();
        w.append(lost, vec![1; 800]).unwrap();
    }
    w.flush(lost).unwrap().await.unwrap().unwrap_err();
    // The lost file's audio is gone, counted as dropped; the other's waits for its flush.
    assert_eq!(w.stats().pending_bytes, 5 * 1600);
    assert_eq!(w.stats().samples_dropped, 5 * 800);
    w.flush(file).unwrap().await.unwrap().unwrap();
    assert_eq!(w.stats().pending_bytes, 0);
    w.append(file, vec![2; 160]).unwrap();
    assert_eq!(w.stats().pending_bytes, 320);
    let summary = w.close(file).unwrap().await.unwrap().unwrap();
    assert_eq!(summary.samples, 5 * 800 + 160);
    let _ = w.close(lost).unwrap().await;
    assert_eq!(w.stats().pending_bytes, 0);
    assert_eq!(w.stats().files_open, 0);
    pool.shutdown();
}

/// Past the bound on unwritten audio, appends are shed: each file later gets silence in
/// their place, ahead of its next audio, so both mono files and the stereo file built from
/// them keep their timeline, and the summaries count what was shed.
#[tokio::test]
async fn audio_past_the_pending_bound_is_shed_and_written_as_silence_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    // Two 100 ms blocks of two files, and room for no third.
    let pool = held_pool(1, 4 * 1600);
    let w = pool.handle();
    let left = w
        .open(dir.path().join("left.wav"), WavFormat::mono(8000))
        .unwrap();
    let (right, stereo) = stereo_beside(&w, left, dir.path());
    let (a, b) = (tone(440.0, 8000, 800), tone(880.0, 8000, 800));
    let mut owed = [0, 0];
    let send = |owed: &mut [usize; 2]| {
        owed[0] = w.append_or_shed(left, &a, owed[0]).unwrap();
        owed[1] = w.append_or_shed(right, &b, owed[1]).unwrap();
    };
    send(&mut owed);
    assert_eq!(owed, [0, 0], "room for the first blocks");
    send(&mut owed);
    assert_eq!(owed, [0, 0], "room for the second blocks");
    for _ in 0..3 {
        send(&mut owed);
    }
    assert_eq!(owed, [3 * 800, 3 * 800], "the writer holds all it may");
    assert_eq!(w.stats().pending_bytes, 4 * 1600);
    w.flush(left).unwrap().await.unwrap().unwrap();
    assert_eq!(w.stats().pending_bytes, 0, "written: room again");
    send(&mut owed);
    assert_eq!(
        owed,
        [0, 0],
        "the shed audio was sent ahead of the next block"
    );
    let closed = |id| w.close(id).unwrap();
    let summaries = [closed(left), closed(right), closed(stereo)];
    let mut done = Vec::new();
    for s in summaries {
        done.push(s.await.unwrap().unwrap());
    }
    pool.shutdown();

    let expect = |tone: &[i16]| [tone, tone, &[0; 3 * 800][..], tone].concat();
    assert_eq!(read(&dir.path().join("left.wav")), expect(&a));
    assert_eq!(read(&dir.path().join("right.wav")), expect(&b));
    let both = read(&dir.path().join("stereo.wav"));
    let channel = |c: usize| both.iter().skip(c).step_by(2).copied().collect::<Vec<_>>();
    assert_eq!((channel(0), channel(1)), (expect(&a), expect(&b)));
    for summary in &done[..2] {
        assert_eq!(
            (summary.samples, summary.samples_shed),
            (3 * 800 + 3 * 800, 3 * 800)
        );
        assert_eq!(summary.samples_dropped, 0);
    }
    assert_eq!(done[2].samples, 6 * 800);
}

/// A stream whose last audio was shed still gets its silence before the file closes, and
/// shedding, once begun, goes on until the backlog is down to half the bound.
#[tokio::test]
async fn shedding_ends_at_half_the_bound_and_what_is_owed_is_settled_before_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let pool = held_pool(1, 3200);
    let w = pool.handle();
    let open = |name: &str| {
        w.open(dir.path().join(name), WavFormat::mono(8000))
            .unwrap()
    };
    let (file, other) = (open("a.wav"), open("b.wav"));
    let pcm = tone(440.0, 8000, 800);
    assert_eq!(w.append_or_shed(other, &pcm, 0).unwrap(), 0);
    assert_eq!(w.append_or_shed(file, &pcm, 0).unwrap(), 0);
    let owed = w.append_or_shed(file, &pcm, 0).unwrap();
    assert_eq!(owed, 800, "past the bound");
    w.flush(file).unwrap().await.unwrap().unwrap();
    assert_eq!(w.stats().pending_bytes, 1600, "b.wav still holds its block");
    let owed = w.append_or_shed(file, &pcm, owed).unwrap();
    assert_eq!(owed, 1600, "within the bound, not yet down to half of it");
    w.settle_shed(file, owed).unwrap();
    w.flush(other).unwrap().await.unwrap().unwrap();
    assert_eq!(
        w.stats().pending_bytes,
        0,
        "the silence is written when it comes, not held as a backlog"
    );
    let summary = w.close(file).unwrap().await.unwrap().unwrap();
    assert_eq!((summary.samples, summary.samples_shed), (2400, 1600));
    assert_eq!(w.stats().samples_shed, 1600);
    assert_eq!(
        read(&dir.path().join("a.wav")),
        [&pcm[..], &[0; 1600]].concat()
    );
    w.close(other).unwrap().await.unwrap().unwrap();
    pool.shutdown();
}

/// A long stall's silence is written in blocks, all of it, and none of it stays held.
#[tokio::test]
async fn a_long_stalls_silence_is_written_whole_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let pool = held_pool(1, DEFAULT_MAX_PENDING_BYTES);
    let w = pool.handle();
    let file = w
        .open(dir.path().join("a.wav"), WavFormat::mono(8000))
        .unwrap();
    // Three whole blocks of silence (a quarter of the 256 KiB flush threshold each) and
    // part of a fourth.
    let stall = 3 * 65_536 + 5;
    w.settle_shed(file, stall).unwrap();
    w.flush(file).unwrap().await.unwrap().unwrap();
    assert_eq!(w.stats().pending_bytes, 0, "written as it came");
    let summary = w.close(file).unwrap().await.unwrap().unwrap();
    assert_eq!(summary.samples, stall as u64);
    assert_eq!(summary.samples_shed, stall as u64);
    assert_eq!(read(&dir.path().join("a.wav")), vec![0; stall]);
    pool.shutdown();
}
