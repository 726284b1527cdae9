//! Durable per-receiver CDR spool.
//!
//! One file per record, `<seq>.cdr` with a zero-padded sequence so that a directory listing
//! sorts in delivery order across process sessions. A file is written to `<seq>.tmp`,
//! fsynced, renamed and the directory fsynced before the record becomes visible to delivery;
//! it is deleted only once the receiver answered 2xx. The file carries the record's session
//! GUID and correlator index, so a restart re-sends it unchanged.
//!
//! File layout: a header line `CDR1 <session> <correlator> <unused> <missing> <type>
//! <time>` followed by the record's inner XML.
//!
//! `recordIndex` is given at send time, not at spool time: the guide (§3) wants the receiver
//! to see no discontinuity in it even when the spool had to drop records (the drop is told
//! by `numPreceedingRecordsMissing`). The next index per session is kept in `cursor`, and the
//! records that were already sent once (with their index) are pinned: the bound never drops
//! them, so a re-send carries the same index and the receiver can deduplicate.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{error, warn};

const MAGIC: &str = "CDR1";
const EXT: &str = "cdr";
const CURSOR: &str = "cursor";

/// A spooled record's envelope; the inner XML stays on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub session: Arc<str>,
    pub correlator: u64,
    /// Given by [`Spool::take_batch`]; 0 until then.
    pub record_index: u64,
    /// Records dropped right before this one (`numPreceedingRecordsMissing`).
    pub missing: u64,
    pub record_type: Arc<str>,
    pub time: Arc<str>,
}

/// A record ready to be spooled: serialized once, shared by all receivers.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub session: Arc<str>,
    pub correlator: u64,
    pub record_type: Arc<str>,
    pub time: Arc<str>,
    pub inner_xml: String,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Entry>,
    next_seq: u64,
    /// The first `in_flight` entries are being sent.
    in_flight: usize,
    /// The first `pinned` entries were sent at least once (with an index): never dropped.
    pinned: usize,
    cursor: Cursor,
}

/// `recordIndex` bookkeeping, persisted in `<spool>/cursor` as
/// `<session> <next> <pinned> <head_seq>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cursor {
    /// Session the head record belongs to; a record of another session restarts at 1.
    session: String,
    /// `recordIndex` of the head record.
    next_index: u64,
    /// Head records already sent once.
    pinned: usize,
    /// Every record below this spool sequence was acknowledged.
    head_seq: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    unreadable_dir: PathBuf,
    /// Persisted `recordIndex` cursor; `None` for the local archive, which nobody reads.
    indexed: bool,
    /// `None`: keep everything (the local archive when no receiver is configured).
    max_records: Option<usize>,
    state: Mutex<State>,
}

impl Spool {
    /// Opens (creating) the spool directory and loads what a previous run left behind.
    pub fn open(dir: PathBuf, max_records: Option<usize>) -> io::Result<Spool> {
        fs::create_dir_all(&dir)?;
        let unreadable_dir = dir.join("unreadable");
        let spool = Spool {
            dir,
            unreadable_dir,
            indexed: max_records.is_some(),
            max_records: max_records.map(|m| m.max(1)),
            state: Mutex::new(State::default()),
        };
        spool.load()?;
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the index consistent (every mutation is a
        // single push/pop), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{EXT}"))
    }

    fn load(&self) -> io::Result<()> {
        let mut found = Vec::new();
        for de in fs::read_dir(&self.dir)? {
            let de = de?;
            let name = de.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                // Never renamed into place: the write did not complete, so the record was
                // never reported as spooled.
                let _ = fs::remove_file(de.path());
                continue;
            }
            let Some(stem) = name.strip_suffix(&format!(".{EXT}")) else {
                continue;
            };
            let Ok(seq) = stem.parse::<u64>() else {
                continue;
            };
            match read_header(&de.path(), seq) {
                Ok(e) => found.push(e),
                Err(err) => {
                    error!(file = %de.path().display(), %err, "unreadable CDR spool file (cannot be sent), moved aside to unreadable/");
                    let _ = self.move_aside(&de.path());
                }
            }
        }
        found.sort_by_key(|e| e.seq);
        let cursor = self.read_cursor();
        // Acknowledged, but the process died before deleting them: never re-sent.
        found.retain(|e| {
            let acked = e.seq < cursor.head_seq;
            if acked {
                let _ = fs::remove_file(self.path(e.seq));
            }
            !acked
        });
        let mut st = self.lock();
        st.next_seq = found.last().map_or(0, |e| e.seq + 1).max(cursor.head_seq);
        st.entries = found.into();
        st.pinned = match st.entries.front() {
            Some(head) if *head.session == cursor.session => cursor.pinned.min(st.entries.len()),
            _ => 0,
        };
        st.cursor = cursor;
        let dropped = self.enforce_bound(&mut st);
        drop(st);
        self.persist_carrier(dropped);
        Ok(())
    }

    /// Number of records waiting for this receiver.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes a group of records durably (fsync per file, one directory fsync), then makes
    /// them visible to delivery. On error nothing of the failed record becomes visible.
    pub fn append(&self, records: &[Prepared]) -> io::Result<()> {
        let first_seq = self.lock().next_seq;
        let mut staged = Vec::with_capacity(records.len());
        let mut files = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let e = Entry {
                seq: first_seq + i as u64,
                session: r.session.clone(),
                correlator: r.correlator,
                record_index: 0,
                missing: 0,
                record_type: r.record_type.clone(),
                time: r.time.clone(),
            };
            files.push(self.write_tmp(&e, &r.inner_xml)?);
            staged.push(e);
        }
        sync_all_parallel(&files)?;
        drop(files);
        for e in &staged {
            fs::rename(self.tmp_path(e.seq), self.path(e.seq))?;
        }
        sync_dir(&self.dir)?;
        let mut st = self.lock();
        st.next_seq = first_seq + staged.len() as u64;
        st.entries.extend(staged);
        let dropped = self.enforce_bound(&mut st);
        drop(st);
        self.persist_carrier(dropped);
        Ok(())
    }

    fn tmp_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.tmp"))
    }

    fn write_tmp(&self, e: &Entry, inner_xml: &str) -> io::Result<File> {
        let mut f = File::create(self.tmp_path(e.seq))?;
        let header = format!(
            "{MAGIC} {} {} {} {} {} {}\n",
            e.session, e.correlator, e.record_index, e.missing, e.record_type, e.time
        );
        f.write_all(header.as_bytes())?;
        f.write_all(inner_xml.as_bytes())?;
        Ok(f)
    }

    fn write_file(&self, e: &Entry, inner_xml: &str) -> io::Result<()> {
        let f = self.write_tmp(e, inner_xml)?;
        f.sync_all()?;
        drop(f);
        fs::rename(self.tmp_path(e.seq), self.path(e.seq))
    }

    /// Drops the oldest records not in flight until the bound holds; the record right after
    /// the dropped run carries the count. Returns that carrier for persisting.
    fn enforce_bound(&self, st: &mut State) -> Option<Entry> {
        let max = self.max_records?;
        let mut dropped = 0u64;
        let keep = st.in_flight.max(st.pinned);
        // Keep at least the newest record: it is the one that reports the loss.
        while st.entries.len() > max && st.entries.len() - keep > 1 {
            let Some(e) = st.entries.remove(keep) else {
                break;
            };
            dropped += 1 + e.missing;
            let _ = fs::remove_file(self.path(e.seq));
        }
        if dropped == 0 {
            return None;
        }
        let carrier = st.entries.get_mut(keep)?;
        carrier.missing += dropped;
        warn!(
            spool = %self.dir.display(),
            dropped,
            "CDR spool full, oldest records dropped"
        );
        Some(carrier.clone())
    }

    /// Rewrites the carrier's file so the missing count survives a restart.
    fn persist_carrier(&self, carrier: Option<Entry>) {
        let Some(e) = carrier else { return };
        let res = read_body(&self.path(e.seq)).and_then(|body| self.write_file(&e, &body));
        if let Err(err) = res {
            warn!(seq = e.seq, %err, "could not persist numPreceedingRecordsMissing");
        }
    }

    /// Marks up to `max` head records of one session as in flight, gives them their
    /// `recordIndex` and returns them. A re-send after a failure gets the same indexes.
    pub fn take_batch(&self, max: usize) -> Vec<Entry> {
        let mut st = self.lock();
        let Some(head_session) = st.entries.front().map(|e| e.session.clone()) else {
            st.in_flight = 0;
            return Vec::new();
        };
        if *head_session != st.cursor.session {
            // First record of a session for this receiver: the guide starts at 1.
            st.cursor = Cursor {
                session: head_session.to_string(),
                next_index: 1,
                pinned: 0,
                head_seq: st.cursor.head_seq,
            };
            st.pinned = 0;
        }
        let first_index = st.cursor.next_index;
        let mut batch: Vec<Entry> = Vec::new();
        for e in st.entries.iter().take(max.max(1)) {
            if e.session != head_session {
                // `session` is a document attribute: another session needs another POST.
                break;
            }
            let mut e = e.clone();
            e.record_index = first_index + batch.len() as u64;
            batch.push(e);
        }
        st.in_flight = batch.len();
        if batch.len() > st.pinned {
            st.pinned = batch.len();
            st.cursor.pinned = batch.len();
            self.write_cursor(&st.cursor);
        }
        batch
    }

    /// The in-flight batch will be retried later (still pinned, same indexes).
    pub fn release(&self) {
        self.lock().in_flight = 0;
    }

    /// The receiver answered 2xx for the in-flight batch: forget it.
    pub fn ack(&self, batch: &[Entry]) {
        let mut st = self.lock();
        let mut acked = 0usize;
        for e in batch {
            if st.entries.front().is_some_and(|h| h.seq == e.seq) {
                st.entries.pop_front();
                st.cursor.head_seq = e.seq + 1;
                acked += 1;
            }
        }
        st.in_flight = 0;
        st.pinned = st.pinned.saturating_sub(acked);
        st.cursor.next_index += acked as u64;
        st.cursor.pinned = st.pinned;
        // Cursor first: after a crash before the deletes, `head_seq` tells the acknowledged
        // files apart; a crash before this write re-sends the batch with the same indexes.
        self.write_cursor(&st.cursor);
        for e in batch {
            let _ = fs::remove_file(self.path(e.seq));
        }
    }

    fn read_cursor(&self) -> Cursor {
        let Ok(text) = fs::read_to_string(self.dir.join(CURSOR)) else {
            return Cursor::default();
        };
        let mut it = text.split_whitespace();
        let (Some(session), Some(next), Some(pinned), Some(head)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            warn!(spool = %self.dir.display(), "unreadable recordIndex cursor, restarting at 1");
            return Cursor::default();
        };
        Cursor {
            session: session.to_string(),
            next_index: next.parse().unwrap_or(1),
            pinned: pinned.parse().unwrap_or(0),
            head_seq: head.parse().unwrap_or(0),
        }
    }

    /// Written before a batch goes out and after its 2xx: a crash in between re-sends the
    /// batch with the indexes it had.
    fn write_cursor(&self, c: &Cursor) {
        if !self.indexed {
            return;
        }
        let tmp = self.dir.join("cursor.tmp");
        let res = File::create(&tmp)
            .and_then(|mut f| {
                writeln!(
                    f,
                    "{} {} {} {}",
                    c.session, c.next_index, c.pinned, c.head_seq
                )?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, self.dir.join(CURSOR)));
        if let Err(err) = res {
            error!(spool = %self.dir.display(), %err, "could not persist the recordIndex cursor");
        }
    }

    fn move_aside(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(&self.unreadable_dir)?;
        let name = path.file_name().unwrap_or_default();
        fs::rename(path, self.unreadable_dir.join(name))
    }

    /// Reads the inner XML of a spooled record.
    pub fn body(&self, e: &Entry) -> io::Result<String> {
        read_body(&self.path(e.seq))
    }
}

fn read_header(path: &Path, seq: u64) -> io::Result<Entry> {
    let mut line = String::new();
    BufReader::new(File::open(path)?).read_line(&mut line)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad CDR spool header");
    let mut it = line.split_whitespace();
    if it.next() != Some(MAGIC) {
        return Err(bad());
    }
    let mut next = || it.next().ok_or_else(bad);
    let session: Arc<str> = next()?.into();
    let correlator = next()?.parse().map_err(|_| bad())?;
    let record_index = next()?.parse().map_err(|_| bad())?;
    let missing = next()?.parse().map_err(|_| bad())?;
    let record_type: Arc<str> = next()?.into();
    let time: Arc<str> = next()?.into();
    Ok(Entry {
        seq,
        session,
        correlator,
        record_index,
        missing,
        record_type,
        time,
    })
}

fn read_body(path: &Path) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    match text.split_once('\n') {
        Some((_, body)) => Ok(body.to_string()),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated CDR spool file",
        )),
    }
}

/// fsyncs a group of files from a few threads at once: the filesystem journal then commits
/// them together instead of one commit per record, which is what bounds spool throughput.
fn sync_all_parallel(files: &[File]) -> io::Result<()> {
    const THREADS: usize = 8;
    if files.len() <= 1 {
        return files.iter().try_for_each(File::sync_all);
    }
    let chunk = files.len().div_ceil(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().try_for_each(File::sync_all)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")))
        })
    })
}

/// Makes renames and creations in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
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
}
