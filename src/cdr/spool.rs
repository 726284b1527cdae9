//! Durable per-receiver CDR spool.
//!
//! One file per record, `<seq>.cdr` with a zero-padded sequence so that a directory listing
//! sorts in delivery order across process sessions. A file is written to `<seq>.tmp`,
//! fsynced, renamed and the directory fsynced before the record becomes visible to delivery;
//! it is deleted only once the receiver answered 2xx. The file carries the record's session
//! GUID and indexes, so a restart re-sends it unchanged.
//!
//! File layout: a header line `CDR1 <session> <correlator> <recordIndex> <missing> <type>
//! <time>` followed by the record's inner XML.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{error, warn};

const MAGIC: &str = "CDR1";
const EXT: &str = "cdr";

/// A spooled record's envelope; the inner XML stays on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub session: Arc<str>,
    pub correlator: u64,
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
    /// The first `in_flight` entries are being sent; they are never dropped by the bound.
    in_flight: usize,
    next_record_index: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    dead_dir: PathBuf,
    /// `None`: keep everything (the local archive when no receiver is configured).
    max_records: Option<usize>,
    state: Mutex<State>,
}

impl Spool {
    /// Opens (creating) the spool directory and loads what a previous run left behind.
    pub fn open(dir: PathBuf, max_records: Option<usize>) -> io::Result<Spool> {
        fs::create_dir_all(&dir)?;
        let dead_dir = dir.join("dead-letter");
        let spool = Spool {
            dir,
            dead_dir,
            max_records: max_records.map(|m| m.max(1)),
            state: Mutex::new(State {
                next_record_index: 1,
                ..State::default()
            }),
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
                    error!(file = %de.path().display(), %err, "unreadable CDR spool file, moving to dead-letter");
                    let _ = self.move_to_dead(&de.path());
                }
            }
        }
        found.sort_by_key(|e| e.seq);
        let mut st = self.lock();
        st.next_seq = found.last().map_or(0, |e| e.seq + 1);
        st.entries = found.into();
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
        let (first_seq, first_index) = {
            let st = self.lock();
            (st.next_seq, st.next_record_index)
        };
        let mut staged = Vec::with_capacity(records.len());
        let mut files = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let e = Entry {
                seq: first_seq + i as u64,
                session: r.session.clone(),
                correlator: r.correlator,
                record_index: first_index + i as u64,
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
        st.next_record_index = first_index + staged.len() as u64;
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
        // Keep at least the newest record: it is the one that reports the loss.
        while st.entries.len() > max && st.entries.len() - st.in_flight > 1 {
            let Some(e) = st.entries.remove(st.in_flight) else {
                break;
            };
            dropped += 1 + e.missing;
            let _ = fs::remove_file(self.path(e.seq));
        }
        if dropped == 0 {
            return None;
        }
        let carrier = st.entries.get_mut(st.in_flight)?;
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

    /// Marks up to `max` head records of one session as in flight and returns them.
    pub fn take_batch(&self, max: usize) -> Vec<Entry> {
        let mut st = self.lock();
        let mut batch: Vec<Entry> = Vec::new();
        for e in st.entries.iter().take(max.max(1)) {
            if batch.first().is_some_and(|f| f.session != e.session) {
                // `session` is a document attribute: another session needs another POST.
                break;
            }
            batch.push(e.clone());
        }
        st.in_flight = batch.len();
        batch
    }

    /// The in-flight batch will be retried later.
    pub fn release(&self) {
        self.lock().in_flight = 0;
    }

    /// The receiver answered 2xx for the in-flight batch: forget it.
    pub fn ack(&self, batch: &[Entry]) {
        let mut st = self.lock();
        for e in batch {
            if st.entries.front().is_some_and(|h| h.seq == e.seq) {
                st.entries.pop_front();
            }
            let _ = fs::remove_file(self.path(e.seq));
        }
        st.in_flight = 0;
    }

    /// The receiver refused the batch for good: keep its files aside for an operator.
    pub fn dead_letter(&self, batch: &[Entry]) {
        let mut st = self.lock();
        for e in batch {
            if st.entries.front().is_some_and(|h| h.seq == e.seq) {
                st.entries.pop_front();
            }
            if let Err(err) = self.move_to_dead(&self.path(e.seq)) {
                error!(seq = e.seq, %err, "could not move CDR to dead-letter");
            }
        }
        st.in_flight = 0;
    }

    fn move_to_dead(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(&self.dead_dir)?;
        let name = path.file_name().unwrap_or_default();
        fs::rename(path, self.dead_dir.join(name))
    }

    pub fn dead_dir(&self) -> &Path {
        &self.dead_dir
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
    fn dead_letter_keeps_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Spool::open(dir.path().join("r"), None).expect("open");
        s.append(&[rec("s", 0)]).expect("append");
        let b = s.take_batch(1);
        s.dead_letter(&b);
        assert!(s.is_empty());
        assert_eq!(fs::read_dir(s.dead_dir()).expect("dead dir").count(), 1);
    }
}
