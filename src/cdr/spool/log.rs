//! The segment files of a spool: `<id>.seg` (20-digit id, increasing), each a magic then
//! frames (see [`super::frame`]) of two kinds:
//!
//! - `R <seq> <session> <correlator> <missing> <type> <time>\n<inner xml>`: a record;
//! - `D <from_seq> <carrier_seq> <missing>`: the bound dropped every record from `from_seq`
//!   up to (not including) `carrier_seq`, whose `numPreceedingRecordsMissing` is now
//!   `missing`.
//!
//! Records are only ever appended to the newest segment (the tail). A segment is deleted
//! as a whole once every record in it was acknowledged or dropped; the tail is kept open
//! until it reaches the segment size, so a quiet recorder does not create a file per record.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, warn};

use super::Entry;
use super::frame;

pub(super) const MAGIC: &[u8] = b"CDRSEG1\n";
pub(super) const EXT: &str = "seg";

/// Where a record's inner XML is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Location {
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
}

#[derive(Debug)]
pub(super) struct Segment {
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Bytes written (the valid prefix after a load).
    pub len: u64,
    /// Highest record sequence the segment refers to (records and drop carriers).
    pub max_ref: Option<u64>,
}

/// A record about to be appended: its envelope (sequence included) and body.
pub(super) struct NewRecord<'a> {
    pub entry: Entry,
    pub inner_xml: &'a str,
}

/// What the frames of the segments say, in order.
#[derive(Debug, Default)]
pub(super) struct Replay {
    pub records: BTreeMap<u64, Entry>,
    pub max_seq: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Log {
    dir: PathBuf,
    pub segments: BTreeMap<u64, Segment>,
    /// The segment records are appended to; `None` until the first append of a run.
    tail: Option<u64>,
    segment_bytes: u64,
}

impl Log {
    pub fn new(dir: &Path, segment_bytes: u64) -> Log {
        Log {
            dir: dir.to_path_buf(),
            segments: BTreeMap::new(),
            tail: None,
            segment_bytes: segment_bytes.max(1),
        }
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.{EXT}"))
    }

    /// Segment ids present in the directory, ascending.
    pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        for de in fs::read_dir(dir)? {
            let name = de?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name
                .strip_suffix(&format!(".{EXT}"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads segment `id` into `replay`, cutting a torn tail (`repair`) and keeping the
    /// segment for reads. `repair` false reads without touching the file.
    pub fn load_segment(&mut self, id: u64, replay: &mut Replay, repair: bool) -> io::Result<()> {
        let path = self.path(id);
        let data = frame::read_all(&path)?;
        let Some(scan) = frame::scan(&data, MAGIC) else {
            error!(file = %path.display(), "not a CDR spool segment (bad magic), moved aside to unreadable/");
            if repair {
                move_aside(&self.dir, &path)?;
            }
            return Ok(());
        };
        let mut max_ref = None;
        for f in &scan.frames {
            match apply(f, id, replay) {
                Some(r) => max_ref = max_ref.max(Some(r)),
                None => {
                    warn!(file = %path.display(), offset = f.offset, "unknown frame in CDR spool segment, ignored")
                }
            }
        }
        if scan.valid_len < data.len() as u64 && repair {
            let cut = data.len() as u64 - scan.valid_len;
            warn!(file = %path.display(), valid = scan.valid_len, cut, "torn tail of a CDR spool segment cut (a crash before its fdatasync; those records were never acknowledged to anyone)");
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(scan.valid_len)?;
            f.sync_all()?;
        }
        if repair {
            let file = Arc::new(File::open(&path)?);
            self.segments.insert(
                id,
                Segment {
                    path,
                    file,
                    len: scan.valid_len,
                    max_ref,
                },
            );
        }
        Ok(())
    }

    pub fn file(&self, segment: u64) -> Option<Arc<File>> {
        self.segments.get(&segment).map(|s| s.file.clone())
    }

    /// The tail's file, for fdatasync.
    pub fn tail_file(&self) -> Option<Arc<File>> {
        self.tail.and_then(|t| self.file(t))
    }

    /// Appends frames; `rotate` allows starting a new tail when the current one is full
    /// (only when everything in it is already durable). Returns the locations of the
    /// records, in order. On error nothing of this call stays in the file.
    pub fn append(
        &mut self,
        records: &[NewRecord<'_>],
        drop_frame: Option<(u64, u64, u64)>,
        new_id: u64,
        rotate: bool,
    ) -> io::Result<Vec<Location>> {
        let full = self
            .tail
            .and_then(|t| self.segments.get(&t))
            .is_none_or(|s| s.len >= self.segment_bytes);
        if self.tail.is_none() || (full && rotate) {
            self.open_tail(new_id)?;
        }
        let id = self
            .tail
            .ok_or_else(|| io::Error::other("no CDR spool segment"))?;
        let seg = self
            .segments
            .get_mut(&id)
            .ok_or_else(|| io::Error::other("CDR spool segment vanished"))?;
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.inner_xml.len() + 128).sum());
        let mut locations = Vec::with_capacity(records.len());
        let mut max_ref = seg.max_ref;
        for r in records {
            let e = &r.entry;
            let header = format!(
                "R {} {} {} {} {} {}\n",
                e.seq, e.session, e.correlator, e.missing, e.record_type, e.time
            );
            let mut payload = header.into_bytes();
            let body_at = payload.len();
            payload.extend_from_slice(r.inner_xml.as_bytes());
            locations.push(Location {
                segment: id,
                offset: seg.len + (buf.len() + frame::HEADER_LEN + body_at) as u64,
                len: r.inner_xml.len() as u32,
            });
            frame::encode(&mut buf, &payload);
            max_ref = max_ref.max(Some(e.seq));
        }
        if let Some((from, carrier, missing)) = drop_frame {
            frame::encode(&mut buf, format!("D {from} {carrier} {missing}").as_bytes());
            max_ref = max_ref.max(Some(carrier));
        }
        if let Err(e) = seg.file.write_all_at(&buf, seg.len) {
            // Leave no partial frame behind: later frames after it would be unreachable.
            if seg.file.set_len(seg.len).is_err() {
                self.tail = None;
            }
            return Err(e);
        }
        seg.len += buf.len() as u64;
        seg.max_ref = max_ref;
        Ok(locations)
    }

    /// The tail written by this run could not be synced: its unsynced bytes are in an
    /// unknown state, so the next append starts a new segment.
    pub fn abandon_tail(&mut self, synced_len: Option<u64>) {
        if let (Some(t), Some(len)) = (self.tail, synced_len)
            && let Some(seg) = self.segments.get_mut(&t)
            && seg.file.set_len(len).is_ok()
        {
            seg.len = len;
        }
        self.tail = None;
    }

    pub fn tail_len(&self) -> Option<u64> {
        self.tail.and_then(|t| self.segments.get(&t)).map(|s| s.len)
    }

    fn open_tail(&mut self, new_id: u64) -> io::Result<()> {
        let id = self
            .segments
            .keys()
            .next_back()
            .map_or(new_id, |last| new_id.max(last + 1));
        let path = self.path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all_at(MAGIC, 0)?;
        // The new name must survive a power loss before any record in it is acknowledged.
        File::open(&self.dir)?.sync_all()?;
        self.segments.insert(
            id,
            Segment {
                path,
                file: Arc::new(file),
                len: MAGIC.len() as u64,
                max_ref: None,
            },
        );
        self.tail = Some(id);
        Ok(())
    }

    /// Deletes every segment but the tail whose records are all below `low_water`
    /// (acknowledged or dropped). Returns how many were deleted.
    pub fn collect(&mut self, low_water: u64) -> usize {
        let dead: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, s)| Some(**id) != self.tail && s.max_ref.is_none_or(|m| m < low_water))
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            if let Some(s) = self.segments.remove(id)
                && let Err(err) = fs::remove_file(&s.path)
            {
                warn!(file = %s.path.display(), %err, "could not delete an acknowledged CDR spool segment");
            }
        }
        dead.len()
    }
}

/// Applies one frame to the replay; returns the highest sequence it refers to.
fn apply(f: &frame::Frame<'_>, segment: u64, replay: &mut Replay) -> Option<u64> {
    let nl = f
        .payload
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(f.payload.len());
    let header = std::str::from_utf8(&f.payload[..nl]).ok()?;
    let mut it = header.split(' ');
    match it.next()? {
        "R" => {
            let seq: u64 = it.next()?.parse().ok()?;
            let session: Arc<str> = it.next()?.into();
            let correlator = it.next()?.parse().ok()?;
            let missing = it.next()?.parse().ok()?;
            let record_type: Arc<str> = it.next()?.into();
            let time: Arc<str> = it.next()?.into();
            let body_at = (nl + 1).min(f.payload.len());
            let e = Entry {
                seq,
                session,
                correlator,
                record_index: 0,
                missing,
                record_type,
                time,
                loc: Location {
                    segment,
                    offset: f.offset + body_at as u64,
                    len: (f.payload.len() - body_at) as u32,
                },
            };
            replay.max_seq = replay.max_seq.max(Some(seq));
            // A record migrated twice (a crash mid-migration) is the same record.
            replay.records.entry(seq).or_insert(e);
            Some(seq)
        }
        "D" => {
            let from: u64 = it.next()?.parse().ok()?;
            let carrier: u64 = it.next()?.parse().ok()?;
            let missing: u64 = it.next()?.parse().ok()?;
            let dropped: Vec<u64> = replay
                .records
                .range(from..carrier)
                .map(|(s, _)| *s)
                .collect();
            for s in dropped {
                replay.records.remove(&s);
            }
            if let Some(c) = replay.records.get_mut(&carrier) {
                c.missing = missing;
            }
            Some(carrier)
        }
        _ => None,
    }
}

pub(super) fn move_aside(dir: &Path, path: &Path) -> io::Result<()> {
    let aside = dir.join("unreadable");
    fs::create_dir_all(&aside)?;
    fs::rename(path, aside.join(path.file_name().unwrap_or_default()))
}
