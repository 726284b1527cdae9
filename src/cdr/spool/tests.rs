use super::*;

fn rec(session: &str, correlator: u64) -> Prepared {
    Prepared {
        session: session.into(),
        correlator,
        record_type: "recordingStart".into(),
        time: "2026-11-21T10:00:00.123Z".into(),
        inner_xml: format!("<recording id=\"r{correlator}\"></recording>"),
    }
}

#[test]
fn order_indexes_and_restart_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Spool::open(dir.path().join("r"), Some(100)).expect("open");
    s.append(&[rec("s1", 0), rec("s1", 1)]).expect("append");
    s.append(&[rec("s1", 2)]).expect("append");
    let b = s.take_batch(10);
    assert_eq!(
        b.iter().map(|e| e.correlator).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(
        b.iter().map(|e| e.record_index).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    s.release();
    drop(s);
    // A leftover temp file from a crash mid-write is discarded.
    fs::write(dir.path().join("r").join("00000000000000000099.tmp"), "x").expect("tmp");

    let s = Spool::open(dir.path().join("r"), Some(100)).expect("reopen");
    assert_eq!(s.len(), 3);
    s.append(&[rec("s2", 0)]).expect("append");
    // Old session first, and alone in its batch; record index restarts per session.
    let b = s.take_batch(10);
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|e| &*e.session == "s1"));
    assert_eq!(
        s.body(&b[1]).expect("body"),
        "<recording id=\"r1\"></recording>"
    );
    s.ack(&b);
    let b = s.take_batch(10);
    assert_eq!(b.len(), 1);
    assert_eq!(
        (&*b[0].session, b[0].correlator, b[0].record_index),
        ("s2", 0, 1)
    );
    s.ack(&b);
    assert!(s.is_empty());
    assert!(
        !dir.path()
            .join("r")
            .join("00000000000000000099.tmp")
            .exists()
    );
}

#[test]
fn bound_drops_oldest_and_reports_missing_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    let s = Spool::open(p.clone(), Some(3)).expect("open");
    for i in 0..5 {
        s.append(&[rec("s", i)]).expect("append");
    }
    assert_eq!(s.len(), 3);
    drop(s);
    let s = Spool::open(p, Some(3)).expect("reopen");
    let b = s.take_batch(10);
    assert_eq!(
        b.iter().map(|e| e.correlator).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(b.iter().map(|e| e.missing).collect::<Vec<_>>(), [2, 0, 0]);
}

#[test]
fn bound_spares_in_flight_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Spool::open(dir.path().join("r"), Some(2)).expect("open");
    s.append(&[rec("s", 0), rec("s", 1)]).expect("append");
    let inflight = s.take_batch(1);
    s.append(&[rec("s", 2)]).expect("append");
    s.append(&[rec("s", 3)]).expect("append");
    s.ack(&inflight);
    let b = s.take_batch(10);
    assert_eq!(b.iter().map(|e| e.correlator).collect::<Vec<_>>(), [3]);
    assert_eq!(b[0].missing, 2);
}

#[test]
fn record_index_has_no_gap_after_drops_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r");
    let s = Spool::open(p.clone(), Some(3)).expect("open");
    s.append(&[rec("s", 0)]).expect("append");
    let b = s.take_batch(10);
    assert_eq!(b[0].record_index, 1);
    s.ack(&b);
    // Receiver down: 5 more records, the bound keeps 3.
    for i in 1..6 {
        s.append(&[rec("s", i)]).expect("append");
    }
    let b = s.take_batch(2);
    assert_eq!(
        b.iter()
            .map(|e| (e.correlator, e.record_index, e.missing))
            .collect::<Vec<_>>(),
        [(3, 2, 2), (4, 3, 0)]
    );
    s.release();
    // Sent once and pinned: further drops spare them.
    s.append(&[rec("s", 6)]).expect("append");
    drop(s);
    let s = Spool::open(p, Some(3)).expect("reopen");
    let b = s.take_batch(10);
    assert_eq!(
        b.iter()
            .map(|e| (e.correlator, e.record_index, e.missing))
            .collect::<Vec<_>>(),
        [(3, 2, 2), (4, 3, 0), (6, 4, 1)]
    );
}
