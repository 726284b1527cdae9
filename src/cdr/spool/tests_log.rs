//! The segment log itself: torn tails, group commit, segment deletion, migration from the
//! one-file-per-record format.

use super::*;

fn rec(session: &str, correlator: u64) -> Prepared {
    Prepared {
        session: session.into(),
        correlator,
        record_type: "callLegEnd".into(),
        time: "2026-11-21T10:00:00Z".into(),
        inner_xml: format!(
            "<callLeg id=\"leg{correlator}\"><durationSeconds>1</durationSeconds></callLeg>"
        ),
    }
}

fn correlators(b: &[Entry]) -> Vec<u64> {
    b.iter().map(|e| e.correlator).collect()
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    Log::list(dir)
        .expect("list")
        .into_iter()
        .map(|id| dir.join(format!("{id:020}.{}", log::EXT)))
        .collect()
}

/// A crash between the write of a group and its fdatasync can leave any prefix of the
/// group's bytes on disk. Cut at every byte of the last record's frame: the records before
/// it come back intact, the torn one never, and the segment is cut so later appends are
/// readable after the next restart.
#[test]
fn torn_tail_is_cut_never_misread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    let s = Spool::open(p.clone(), Some(100)).expect("open");
    s.append(&[rec("s", 0), rec("s", 1)]).expect("append");
    let good = fs::metadata(&segment_paths(&p)[0]).expect("meta").len();
    s.append(&[rec("s", 2)]).expect("append");
    drop(s);
    let seg = segment_paths(&p)[0].clone();
    let whole = fs::read(&seg).expect("read");
    for cut in (good..whole.len() as u64).step_by(7) {
        fs::write(&seg, &whole[..cut as usize]).expect("torn write");
        let records = read_records(&p).expect("read-only view");
        assert_eq!(records.len(), 2, "cut at {cut}");
        let s = Spool::open(p.clone(), Some(100)).expect("reopen");
        assert_eq!(s.len(), 2, "cut at {cut}");
        assert_eq!(fs::metadata(&seg).expect("meta").len(), good, "tail cut");
        let b = s.take_batch(10);
        assert_eq!(correlators(&b), [0, 1]);
        assert_eq!(
            s.body(&b[1]).expect("body"),
            "<callLeg id=\"leg1\"><durationSeconds>1</durationSeconds></callLeg>"
        );
        s.release();
    }
    // After the cut the log takes new records, and they survive the next restart.
    let s = Spool::open(p.clone(), Some(100)).expect("reopen");
    s.append(&[rec("s", 3)]).expect("append");
    drop(s);
    let s = Spool::open(p, Some(100)).expect("reopen");
    assert_eq!(correlators(&s.take_batch(10)), [0, 1, 3]);
}

/// A flipped bit inside a record (not a tail) is not read as a record either.
#[test]
fn corrupt_frame_is_not_misread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    let s = Spool::open(p.clone(), Some(100)).expect("open");
    s.append(&[rec("s", 0), rec("s", 1)]).expect("append");
    drop(s);
    let seg = segment_paths(&p)[0].clone();
    let mut bytes = fs::read(&seg).expect("read");
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    fs::write(&seg, &bytes).expect("write");
    let s = Spool::open(p, Some(100)).expect("reopen");
    assert_eq!(correlators(&s.take_batch(10)), [0]);
}

/// N producers appending at once share fdatasyncs: fewer syncs than appends, and every
/// record is there, in one order, after a restart.
#[test]
fn concurrent_appends_share_one_fdatasync() {
    const N: u64 = 16;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    let options = SpoolOptions {
        commit_window: Duration::from_millis(20),
        ..SpoolOptions::default()
    };
    let s = Arc::new(Spool::open_with(p.clone(), Some(1000), options).expect("open"));
    let start = Arc::new(std::sync::Barrier::new(N as usize));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (s, start) = (s.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                s.append(&[rec("s", i)]).expect("append");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("producer");
    }
    let syncs = s.fdatasyncs();
    eprintln!("{N} concurrent appends, {syncs} fdatasyncs");
    assert!(syncs < N / 2, "{syncs} fdatasyncs for {N} appends");
    assert_eq!(s.len(), N as usize);
    drop(s);
    let s = Spool::open(p, Some(1000)).expect("reopen");
    let mut got = correlators(&s.take_batch(100));
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

/// One producer: one fdatasync per append, whatever the group size.
#[test]
fn one_fdatasync_per_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Spool::open(dir.path().join("r"), Some(1000)).expect("open");
    let group: Vec<Prepared> = (0..50).map(|i| rec("s", i)).collect();
    s.append(&group).expect("append");
    s.append(&[rec("s", 50)]).expect("append");
    assert_eq!(s.fdatasyncs(), 2);
}

/// Small segments: once every record of a segment is acknowledged the file goes, the tail
/// stays; a restart with everything acknowledged keeps nothing and re-sends nothing.
#[test]
fn acknowledged_segments_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    let options = SpoolOptions {
        segment_bytes: 512,
        ..SpoolOptions::default()
    };
    let s = Spool::open_with(p.clone(), Some(1000), options.clone()).expect("open");
    for i in 0..40 {
        s.append(&[rec("s", i)]).expect("append");
    }
    let before = s.segments();
    assert!(before >= 5, "{before} segments");
    assert_eq!(segment_paths(&p).len(), before);
    let b = s.take_batch(20);
    s.ack(&b);
    let after = s.segments();
    assert!(
        after < before && after > 1,
        "{before} segments, {after} after half was acknowledged"
    );
    assert_eq!(read_records(&p).expect("read").len(), 20);
    let b = s.take_batch(100);
    assert_eq!(b.len(), 20);
    s.ack(&b);
    assert_eq!(s.segments(), 1, "only the tail");
    drop(s);
    let s = Spool::open_with(p.clone(), Some(1000), options).expect("reopen");
    assert!(s.is_empty());
    assert_eq!(
        segment_paths(&p).len(),
        0,
        "a fully acknowledged tail goes at startup"
    );
    s.append(&[rec("s2", 0)]).expect("append");
    let b = s.take_batch(10);
    assert_eq!((b[0].seq, b[0].record_index), (40, 1), "sequence continues");
}

/// The spool of the one-file-per-record format is read after an upgrade: acknowledged files
/// go, the rest are moved into the log with their session, correlator, missing count and
/// pinned recordIndex, the files are deleted, and nothing is sent twice after a restart.
#[test]
fn legacy_spool_is_migrated_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    fs::create_dir_all(&p).expect("dir");
    // Records 3 and 4 of session "old" were sent once (pinned, indexes 7 and 8); 2 was
    // acknowledged before the upgrade but its file not yet deleted.
    fs::write(p.join("cursor"), "old 7 2 3\n").expect("cursor");
    legacy::write(
        &p,
        2,
        "old 2 0 0 recordingStart 2026-11-21T10:00:00Z",
        "<a/>",
    );
    legacy::write(
        &p,
        3,
        "old 3 0 0 recordingStart 2026-11-21T10:00:01Z",
        "<b/>",
    );
    legacy::write(
        &p,
        4,
        "old 4 0 5 callLegEnd 2026-11-21T10:00:02Z",
        "<c>x</c>",
    );
    legacy::write(&p, 5, "old 5 0 0 recordingEnd 2026-11-21T10:00:03Z", "<d/>");
    fs::write(p.join("00000000000000000006.tmp"), "CDR1 torn").expect("tmp");
    fs::write(p.join("00000000000000000007.cdr"), "garbage").expect("bad");

    let s = Spool::open(p.clone(), Some(100)).expect("open");
    assert_eq!(s.len(), 3);
    let left: Vec<String> = fs::read_dir(&p)
        .expect("dir")
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cdr") || n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "old files left: {left:?}");
    assert!(p.join("unreadable/00000000000000000007.cdr").exists());
    let b = s.take_batch(10);
    assert_eq!(
        b.iter()
            .map(|e| (e.seq, e.correlator, e.record_index, e.missing))
            .collect::<Vec<_>>(),
        [(3, 3, 7, 0), (4, 4, 8, 5), (5, 5, 9, 0)]
    );
    assert_eq!(s.body(&b[1]).expect("body"), "<c>x</c>");
    assert_eq!(&*b[2].record_type, "recordingEnd");
    s.ack(&b[..1]);
    s.append(&[rec("new", 0)]).expect("append");
    drop(s);

    let s = Spool::open(p, Some(100)).expect("reopen");
    let b = s.take_batch(10);
    assert_eq!(
        b.iter()
            .map(|e| (e.seq, e.record_index))
            .collect::<Vec<_>>(),
        [(4, 8), (5, 9)]
    );
    s.ack(&b);
    let b = s.take_batch(10);
    assert_eq!((&*b[0].session, b[0].seq, b[0].record_index), ("new", 6, 1));
}

/// A run that died after writing the migrated records but before deleting the old files
/// migrates nothing twice.
#[test]
fn interrupted_migration_does_not_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    fs::create_dir_all(&p).expect("dir");
    legacy::write(
        &p,
        0,
        "old 0 0 0 recordingStart 2026-11-21T10:00:00Z",
        "<a/>",
    );
    legacy::write(&p, 1, "old 1 0 0 recordingEnd 2026-11-21T10:00:01Z", "<b/>");
    let backup = tempfile::tempdir().expect("backup");
    for n in ["00000000000000000000.cdr", "00000000000000000001.cdr"] {
        fs::copy(p.join(n), backup.path().join(n)).expect("copy");
    }
    drop(Spool::open(p.clone(), Some(100)).expect("migrate"));
    for n in ["00000000000000000000.cdr", "00000000000000000001.cdr"] {
        fs::copy(backup.path().join(n), p.join(n)).expect("restore");
    }
    let s = Spool::open(p, Some(100)).expect("reopen");
    assert_eq!(correlators(&s.take_batch(10)), [0, 1]);
}

/// The local archive keeps every record (nothing acknowledges it) across restarts.
#[test]
fn archive_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("local");
    let options = SpoolOptions {
        segment_bytes: 300,
        ..SpoolOptions::default()
    };
    let s = Spool::open_with(p.clone(), None, options.clone()).expect("open");
    for i in 0..10 {
        s.append(&[rec("s", i)]).expect("append");
    }
    drop(s);
    let s = Spool::open_with(p.clone(), None, options).expect("reopen");
    s.append(&[rec("s", 10)]).expect("append");
    let all = read_records(&p).expect("read");
    assert_eq!(
        all.iter().map(|(e, _)| e.correlator).collect::<Vec<_>>(),
        (0..11).collect::<Vec<_>>()
    );
    let mut seqs: Vec<u64> = all.iter().map(|(e, _)| e.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 11, "sequences stay unique across the restart");
}
