//! Durable per-receiver CDR spool: an append-only segment log with group commit.
//!
//! Records are appended as CRC-framed entries to the newest segment file (`<id>.seg`, see
//! [`log`]); one fdatasync makes a whole batch durable, and producers that append while a
//! sync is running share the next one (group commit: the first waiter syncs for all). Only
//! then do the records become visible to delivery. A torn tail after a crash fails its CRC
//! and is cut at startup, never misread. Acknowledgements are the cursor's `head_seq`
//! (delivery is in order), kept in an append-only `cursor.log`; a segment is deleted as a
//! whole once every record in it was acknowledged (or dropped by the bound). A restart
//! replays the segments and re-sends exactly the records at or above `head_seq`, with the
//! session GUID and correlator index they were recorded with.
//!
//! `recordIndex` is given at send time, not at spool time: the guide (§3) wants the receiver
//! to see no discontinuity in it even when the spool had to drop records (the drop is told
//! by `numPreceedingRecordsMissing`). The next index per session is kept in the cursor, and
//! the records that were already sent once (with their index) are pinned: the bound never
//! drops them, so a re-send carries the same index and the receiver can deduplicate.
//!
//! The spool of the one-file-per-record format (`<seq>.cdr`, before the log) is migrated
//! into the log once at startup, keeping every record's sequence ([`legacy`]).
//!
//! The local archive (no receiver configured) is the same log, write-only: nothing is
//! acknowledged, nothing kept in memory, segments stay.

mod cursor;
mod frame;
mod legacy;
mod log;
mod read;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_log;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{error, info, warn};

use cursor::{Cursor, CursorLog};
use log::{Location, Log, NewRecord, Replay};

pub use read::read_records;

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
    loc: Location,
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

/// Tuning of the log; the defaults suit production.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// A new segment starts once the current one is this large.
    pub segment_bytes: u64,
    /// How long the syncing producer waits for others to join its fdatasync. Zero: the
    /// running sync is the window (appends arriving meanwhile share the next one).
    pub commit_window: Duration,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            segment_bytes: 4 * 1024 * 1024,
            commit_window: Duration::ZERO,
        }
    }
}

/// Group-commit bookkeeping: every append is a generation; `synced` is the highest one
/// known durable.
#[derive(Debug, Default)]
struct Commit {
    written: u64,
    synced: u64,
    syncing: bool,
    /// Tail length the last successful sync covered.
    synced_len: Option<u64>,
    /// Written, not yet durable: invisible to delivery.
    staged: Vec<(u64, Entry)>,
    /// Generations whose sync failed, with the error, until their producer reads it.
    failed: HashMap<u64, String>,
    fdatasyncs: u64,
}

impl Commit {
    fn outcome(&mut self, generation: u64) -> io::Result<()> {
        match self.failed.remove(&generation) {
            Some(err) => Err(io::Error::other(err)),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct State {
    entries: VecDeque<Entry>,
    next_seq: u64,
    /// The first `in_flight` entries are being sent.
    in_flight: usize,
    /// The first `pinned` entries were sent at least once (with an index): never dropped.
    pinned: usize,
    cursor: Cursor,
    cursor_log: CursorLog,
    log: Log,
    commit: Commit,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Persisted cursor and acknowledgements; `false` for the local archive, which nobody
    /// reads.
    indexed: bool,
    /// `None`: keep everything (the local archive when no receiver is configured).
    max_records: Option<usize>,
    options: SpoolOptions,
    state: Mutex<State>,
    synced: Condvar,
}

impl Spool {
    /// Opens (creating) the spool directory and loads what a previous run left behind.
    pub fn open(dir: PathBuf, max_records: Option<usize>) -> io::Result<Spool> {
        Spool::open_with(dir, max_records, SpoolOptions::default())
    }

    pub fn open_with(
        dir: PathBuf,
        max_records: Option<usize>,
        options: SpoolOptions,
    ) -> io::Result<Spool> {
        fs::create_dir_all(&dir)?;
        let state = State {
            entries: VecDeque::new(),
            next_seq: 0,
            in_flight: 0,
            pinned: 0,
            cursor: Cursor::default(),
            cursor_log: CursorLog::new(&dir),
            log: Log::new(&dir, options.segment_bytes),
            commit: Commit::default(),
        };
        let spool = Spool {
            dir,
            indexed: max_records.is_some(),
            max_records: max_records.map(|m| m.max(1)),
            options,
            state: Mutex::new(state),
            synced: Condvar::new(),
        };
        if spool.indexed {
            spool.load()?;
        } else {
            spool.load_archive()?;
        }
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

    fn load(&self) -> io::Result<()> {
        let mut st = self.lock();
        let cursor = CursorLog::read(&self.dir);
        let mut replay = Replay::default();
        for id in Log::list(&self.dir)? {
            st.log.load_segment(id, &mut replay, true)?;
        }
        let legacy = legacy::find(&self.dir)?;
        for tmp in &legacy.temporary {
            // Never renamed into place: the write did not complete, so the record was
            // never reported as spooled.
            let _ = fs::remove_file(tmp);
        }
        for (path, err) in &legacy.unreadable {
            error!(file = %path.display(), %err, "unreadable CDR spool file (cannot be sent), moved aside to unreadable/");
            let _ = log::move_aside(&self.dir, path);
        }
        let (done, migrate): (Vec<_>, Vec<_>) = legacy.records.into_iter().partition(|r| {
            // Acknowledged before the upgrade, or migrated by a run that died before
            // deleting the file.
            r.seq < cursor.head_seq || replay.records.contains_key(&r.seq)
        });
        let max_seq = replay.max_seq.max(migrate.last().map(|r| r.seq));
        st.next_seq = max_seq.map_or(0, |m| m + 1).max(cursor.head_seq);
        if !migrate.is_empty() {
            self.migrate(&mut st, &migrate, &mut replay)?;
        }
        for r in done.iter().chain(&migrate) {
            let _ = fs::remove_file(&r.path);
        }
        st.entries = replay
            .records
            .into_values()
            .filter(|e| e.seq >= cursor.head_seq)
            .collect();
        st.pinned = match st.entries.front() {
            Some(head) if *head.session == cursor.session => cursor.pinned.min(st.entries.len()),
            _ => 0,
        };
        st.cursor = cursor;
        self.enforce_bound(&mut st);
        collect(&mut st);
        Ok(())
    }

    /// Moves records of the one-file-per-record format into the log, durably, keeping
    /// their sequence; their files are deleted by the caller afterwards.
    fn migrate(
        &self,
        st: &mut State,
        records: &[legacy::LegacyRecord],
        replay: &mut Replay,
    ) -> io::Result<()> {
        let new: Vec<NewRecord<'_>> = records
            .iter()
            .map(|r| NewRecord {
                entry: Entry {
                    seq: r.seq,
                    session: r.session.clone(),
                    correlator: r.correlator,
                    record_index: 0,
                    missing: r.missing,
                    record_type: r.record_type.clone(),
                    time: r.time.clone(),
                    loc: Location::default(),
                },
                inner_xml: &r.inner_xml,
            })
            .collect();
        let next = st.next_seq;
        let locations = st.log.append(&new, None, next, true)?;
        if let Some(f) = st.log.tail_file() {
            f.sync_data()?;
        }
        st.commit.synced_len = st.log.tail_len();
        for (n, loc) in new.into_iter().zip(locations) {
            let mut e = n.entry;
            e.loc = loc;
            replay.records.insert(e.seq, e);
        }
        info!(spool = %self.dir.display(), records = records.len(), "CDR spool files of the one-file-per-record format moved into the segment log");
        Ok(())
    }

    /// The archive is write-only: only the newest segment is read, for its last sequence
    /// and to cut a torn tail.
    fn load_archive(&self) -> io::Result<()> {
        let mut st = self.lock();
        let ids = Log::list(&self.dir)?;
        let mut replay = Replay::default();
        if let Some(&last) = ids.last() {
            st.log.load_segment(last, &mut replay, true)?;
        }
        st.next_seq = replay
            .max_seq
            .map_or(0, |m| m + 1)
            .max(ids.last().map_or(0, |l| l + 1));
        Ok(())
    }

    /// Number of records waiting for this receiver.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// fdatasyncs of the segment log since open (group commit makes this fewer than the
    /// appends when producers overlap).
    pub fn fdatasyncs(&self) -> u64 {
        self.lock().commit.fdatasyncs
    }

    /// Segment files the log holds now.
    pub fn segments(&self) -> usize {
        self.lock().log.segments.len()
    }

    /// Appends a group of records durably (one fdatasync, shared with concurrent appends),
    /// then makes them visible to delivery. On error none of them becomes visible.
    pub fn append(&self, records: &[Prepared]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let generation = {
            let mut st = self.lock();
            let first = st.next_seq;
            let new: Vec<NewRecord<'_>> = records
                .iter()
                .zip(first..)
                .map(|(r, seq)| NewRecord {
                    entry: Entry {
                        seq,
                        session: r.session.clone(),
                        correlator: r.correlator,
                        record_index: 0,
                        missing: 0,
                        record_type: r.record_type.clone(),
                        time: r.time.clone(),
                        loc: Location::default(),
                    },
                    inner_xml: &r.inner_xml,
                })
                .collect();
            // A new segment only once everything in the current one is durable: the sync
            // then never has to cover two files.
            let rotate = st.commit.written == st.commit.synced && !st.commit.syncing;
            let locations = st.log.append(&new, None, first, rotate)?;
            st.next_seq = first + new.len() as u64;
            st.commit.written += 1;
            let generation = st.commit.written;
            if self.indexed {
                for (n, loc) in new.into_iter().zip(locations) {
                    let mut e = n.entry;
                    e.loc = loc;
                    st.commit.staged.push((generation, e));
                }
            }
            generation
        };
        self.commit(generation)
    }

    /// Waits until `generation` is durable; the first waiter without a sync running syncs
    /// for everyone written so far.
    fn commit(&self, generation: u64) -> io::Result<()> {
        let mut st = self.lock();
        loop {
            if st.commit.synced >= generation {
                return st.commit.outcome(generation);
            }
            if !st.commit.syncing {
                break;
            }
            st = self.synced.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.commit.syncing = true;
        drop(st);
        if !self.options.commit_window.is_zero() {
            std::thread::sleep(self.options.commit_window);
        }
        let (target, file, len) = {
            let st = self.lock();
            (st.commit.written, st.log.tail_file(), st.log.tail_len())
        };
        let res = file.map_or(Ok(()), |f| f.sync_data());
        let mut st = self.lock();
        st.commit.fdatasyncs += 1;
        match res {
            Ok(()) => {
                st.commit.synced_len = len;
                let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut st.commit.staged)
                    .into_iter()
                    .partition(|(g, _)| *g <= target);
                st.commit.staged = later;
                st.entries.extend(ready.into_iter().map(|(_, e)| e));
                st.commit.synced = target;
                if self.indexed {
                    self.enforce_bound(&mut st);
                    collect(&mut st);
                }
            }
            Err(err) => {
                // What was written since the last good sync is in an unknown state: fail
                // every append not yet durable and start a new segment.
                error!(spool = %self.dir.display(), %err, "CDR spool fdatasync failed");
                let staged = std::mem::take(&mut st.commit.staged);
                for (g, _) in staged {
                    st.commit.failed.insert(g, err.to_string());
                }
                for g in st.commit.synced + 1..=st.commit.written {
                    st.commit.failed.entry(g).or_insert_with(|| err.to_string());
                }
                let synced_len = st.commit.synced_len;
                st.log.abandon_tail(synced_len);
                st.commit.synced = st.commit.written;
            }
        }
        st.commit.syncing = false;
        self.synced.notify_all();
        st.commit.outcome(generation)
    }

    /// Drops the oldest records not in flight until the bound holds; the record right after
    /// the dropped run carries the count, and a drop frame in the log says so.
    fn enforce_bound(&self, st: &mut State) {
        let Some(max) = self.max_records else { return };
        let mut dropped = 0u64;
        let keep = st.in_flight.max(st.pinned);
        let from = st.entries.get(keep).map(|e| e.seq);
        // Keep at least the newest record: it is the one that reports the loss.
        while st.entries.len() > max && st.entries.len() - keep > 1 {
            let Some(e) = st.entries.remove(keep) else {
                break;
            };
            dropped += 1 + e.missing;
        }
        let (Some(from), Some(carrier)) = (from, st.entries.get_mut(keep)) else {
            return;
        };
        if dropped == 0 {
            return;
        }
        carrier.missing += dropped;
        let frame = (from, carrier.seq, carrier.missing);
        warn!(spool = %self.dir.display(), dropped, "CDR spool full, oldest records dropped");
        let next = st.next_seq;
        match st.log.append(&[], Some(frame), next, false) {
            // Durable with the next commit; until then a crash brings the records back and
            // the bound drops them again at startup.
            Ok(_) => st.commit.written += 1,
            Err(err) => warn!(%err, "could not persist numPreceedingRecordsMissing"),
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
            self.write_cursor(&mut st, true);
        }
        batch
    }

    /// The in-flight batch will be retried later (still pinned, same indexes).
    pub fn release(&self) {
        self.lock().in_flight = 0;
    }

    /// The receiver answered 2xx for the in-flight batch: forget it, and delete the
    /// segments nothing unacknowledged is left in.
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
        // records apart; a crash before this write re-sends the batch with the same indexes.
        // Not synced here: the next batch's pin write syncs it (one fdatasync per batch, not
        // two). A process crash keeps it (page cache); only a power loss before the next
        // batch can re-send this one, which receivers dedupe (session + correlatorIndex).
        self.write_cursor(&mut st, false);
        collect(&mut st);
    }

    /// Written before a batch goes out (synced: a pinned record must stay pinned) and after
    /// its 2xx: a crash in between re-sends the batch with the indexes it had.
    fn write_cursor(&self, st: &mut State, sync: bool) {
        if !self.indexed {
            return;
        }
        let cursor = st.cursor.clone();
        st.cursor_log.write(&cursor, sync);
    }

    /// Reads the inner XML of a spooled record.
    pub fn body(&self, e: &Entry) -> io::Result<String> {
        let file =
            self.lock().log.file(e.loc.segment).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "CDR spool segment deleted")
            })?;
        let mut buf = vec![0u8; e.loc.len as usize];
        file.read_exact_at(&mut buf, e.loc.offset)?;
        String::from_utf8(buf).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }
}

/// Deletes the segments every record of which was acknowledged or dropped.
fn collect(st: &mut State) {
    let low_water = st
        .entries
        .front()
        .map(|e| e.seq)
        .or(st.commit.staged.first().map(|(_, e)| e.seq))
        .unwrap_or(st.next_seq);
    st.log.collect(low_water);
}
