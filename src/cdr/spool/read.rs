//! Reading a spool directory without changing it: what an operator (or a test) sees on
//! disk, independent of any open [`super::Spool`].

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::cursor::CursorLog;
use super::log::{Log, Replay};
use super::{Entry, legacy};

/// Every record in `dir` not yet acknowledged (for the local archive: every record), in
/// spool order, with its inner XML. Records of the one-file-per-record format not yet
/// migrated are included. A torn tail is skipped, not cut.
pub fn read_records(dir: &Path) -> io::Result<Vec<(Entry, String)>> {
    let cursor = CursorLog::read(dir);
    let mut log = Log::new(dir, u64::MAX);
    let mut replay = Replay::default();
    for id in Log::list(dir)? {
        match log.load_segment(id, &mut replay, false) {
            // Deleted by the running spool meanwhile: all of it was acknowledged.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    let mut out = Vec::new();
    for e in replay.records.into_values() {
        if e.seq < cursor.head_seq {
            continue;
        }
        let path = dir.join(format!("{:020}.{}", e.loc.segment, super::log::EXT));
        let mut buf = vec![0u8; e.loc.len as usize];
        match std::fs::File::open(&path) {
            Ok(f) => f.read_exact_at(&mut buf, e.loc.offset)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        }
        out.push((e, String::from_utf8_lossy(&buf).into_owned()));
    }
    for r in legacy::find(dir)?.records {
        if r.seq >= cursor.head_seq && !out.iter().any(|(e, _)| e.seq == r.seq) {
            let e = Entry {
                seq: r.seq,
                session: r.session,
                correlator: r.correlator,
                record_index: 0,
                missing: r.missing,
                record_type: r.record_type,
                time: r.time,
                loc: Default::default(),
            };
            out.push((e, r.inner_xml));
        }
    }
    out.sort_by_key(|(e, _)| e.seq);
    Ok(out)
}
