//! The `recordIndex` cursor and acknowledgement point of a receiver's spool, kept as an
//! append-only log (`cursor.log`): each update is one framed line appended and
//! fdatasynced — no new file, no rename per update. The last valid frame wins; the log is
//! compacted into a fresh file once it grows past [`COMPACT_AT`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::{error, warn};

use super::frame;

const MAGIC: &[u8] = b"CDRCUR1\n";
const LOG: &str = "cursor.log";
/// The cursor file of the one-file-per-record spool (before the segment log).
const LEGACY: &str = "cursor";
const COMPACT_AT: u64 = 64 * 1024;

/// `recordIndex` bookkeeping: `<session> <next> <pinned> <head_seq>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cursor {
    /// Session the head record belongs to; a record of another session restarts at 1.
    pub session: String,
    /// `recordIndex` of the head record.
    pub next_index: u64,
    /// Head records already sent once.
    pub pinned: usize,
    /// Every record below this spool sequence was acknowledged.
    pub head_seq: u64,
}

impl Cursor {
    fn parse(text: &str) -> Option<Cursor> {
        let mut it = text.split_whitespace();
        let (session, next, pinned, head) = (it.next()?, it.next()?, it.next()?, it.next()?);
        Some(Cursor {
            session: session.to_string(),
            next_index: next.parse().ok()?,
            pinned: pinned.parse().ok()?,
            head_seq: head.parse().ok()?,
        })
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.session, self.next_index, self.pinned, self.head_seq
        )
    }
}

/// The open cursor log of one spool directory.
#[derive(Debug)]
pub(super) struct CursorLog {
    dir: PathBuf,
    file: Option<File>,
    len: u64,
}

impl CursorLog {
    pub fn new(dir: &Path) -> CursorLog {
        CursorLog {
            dir: dir.to_path_buf(),
            file: None,
            len: 0,
        }
    }

    /// The last cursor written, from the log or (after an upgrade) the legacy file; a torn
    /// last frame falls back to the one before it.
    pub fn read(dir: &Path) -> Cursor {
        match frame::read_all(&dir.join(LOG)) {
            Ok(data) => {
                let Some(scan) = frame::scan(&data, MAGIC) else {
                    warn!(spool = %dir.display(), "unreadable recordIndex cursor log, restarting at 1");
                    return Cursor::default();
                };
                scan.frames
                    .last()
                    .and_then(|f| std::str::from_utf8(f.payload).ok())
                    .and_then(Cursor::parse)
                    .unwrap_or_default()
            }
            Err(_) => read_legacy(dir),
        }
    }

    /// Makes `c` the cursor; `sync` makes it (and every earlier update) durable now.
    /// Failing is logged, not returned: the cost of a lost cursor is a re-send with the same
    /// session and correlator, which receivers dedupe.
    pub fn write(&mut self, c: &Cursor, sync: bool) {
        if let Err(err) = self.try_write(c, sync) {
            self.file = None;
            error!(spool = %self.dir.display(), %err, "could not persist the recordIndex cursor");
        }
    }

    fn try_write(&mut self, c: &Cursor, sync: bool) -> io::Result<()> {
        if self.file.is_none() || self.len >= COMPACT_AT {
            return self.rewrite(c);
        }
        let mut buf = Vec::new();
        frame::encode(&mut buf, c.line().as_bytes());
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("no cursor log"))?;
        f.write_all(&buf)?;
        if sync {
            f.sync_data()?;
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// A fresh log holding only `c`, renamed over the old one; the legacy file goes.
    fn rewrite(&mut self, c: &Cursor) -> io::Result<()> {
        let tmp = self.dir.join("cursor.log.tmp");
        let mut buf = MAGIC.to_vec();
        frame::encode(&mut buf, c.line().as_bytes());
        let mut f = File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_data()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(LOG))?;
        File::open(&self.dir)?.sync_all()?;
        let _ = fs::remove_file(self.dir.join(LEGACY));
        self.file = Some(OpenOptions::new().append(true).open(self.dir.join(LOG))?);
        self.len = buf.len() as u64;
        Ok(())
    }
}

fn read_legacy(dir: &Path) -> Cursor {
    let Ok(text) = fs::read_to_string(dir.join(LEGACY)) else {
        return Cursor::default();
    };
    Cursor::parse(&text).unwrap_or_else(|| {
        warn!(spool = %dir.display(), "unreadable recordIndex cursor, restarting at 1");
        Cursor::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_valid_update_wins_and_legacy_is_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(LEGACY), "s1 7 2 40\n").expect("legacy");
        let c = CursorLog::read(dir.path());
        assert_eq!((c.next_index, c.pinned, c.head_seq), (7, 2, 40));
        let mut log = CursorLog::new(dir.path());
        let mut c2 = c.clone();
        c2.head_seq = 41;
        log.write(&c2, true);
        assert!(!dir.path().join(LEGACY).exists());
        c2.head_seq = 42;
        log.write(&c2, true);
        assert_eq!(CursorLog::read(dir.path()).head_seq, 42);
        // A torn last update: the one before it stands.
        let path = dir.path().join(LOG);
        let len = fs::metadata(&path).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(len - 3).expect("truncate");
        assert_eq!(CursorLog::read(dir.path()).head_seq, 41);
    }

    #[test]
    fn compacts_when_long() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = CursorLog::new(dir.path());
        let mut c = Cursor {
            session: "s".into(),
            next_index: 1,
            ..Cursor::default()
        };
        for i in 0..3000 {
            c.head_seq = i;
            log.write(&c, true);
        }
        assert!(fs::metadata(dir.path().join(LOG)).expect("meta").len() <= COMPACT_AT + 64);
        assert_eq!(CursorLog::read(dir.path()).head_seq, 2999);
    }
}
