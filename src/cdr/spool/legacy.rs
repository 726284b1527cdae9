//! The spool format before the segment log: one file per record, `<seq>.cdr` (20-digit
//! sequence), a header line `CDR1 <session> <correlator> <unused> <missing> <type> <time>`
//! then the record's inner XML; `<seq>.tmp` were writes that never completed. Read once at
//! startup to migrate the records into the log.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &str = "CDR1";
pub(super) const EXT: &str = "cdr";

/// One record file of the old format.
#[derive(Debug)]
pub(super) struct LegacyRecord {
    pub path: PathBuf,
    pub seq: u64,
    pub session: Arc<str>,
    pub correlator: u64,
    pub missing: u64,
    pub record_type: Arc<str>,
    pub time: Arc<str>,
    pub inner_xml: String,
}

/// What a directory holds of the old format.
#[derive(Debug, Default)]
pub(super) struct LegacyFiles {
    pub records: Vec<LegacyRecord>,
    /// Writes that never completed: never reported as spooled.
    pub temporary: Vec<PathBuf>,
    /// `.cdr` files whose header cannot be parsed.
    pub unreadable: Vec<(PathBuf, std::io::Error)>,
}

pub(super) fn find(dir: &Path) -> std::io::Result<LegacyFiles> {
    let mut out = LegacyFiles::default();
    for de in fs::read_dir(dir)? {
        let de = de?;
        let name = de.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        let Ok(seq) = stem.parse::<u64>() else {
            continue;
        };
        match ext {
            "tmp" => out.temporary.push(de.path()),
            EXT => match read(&de.path(), seq) {
                Ok(r) => out.records.push(r),
                Err(e) => out.unreadable.push((de.path(), e)),
            },
            _ => {}
        }
    }
    out.records.sort_by_key(|r| r.seq);
    Ok(out)
}

fn read(path: &Path, seq: u64) -> std::io::Result<LegacyRecord> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad CDR spool header");
    let text = fs::read_to_string(path)?;
    let (header, body) = text.split_once('\n').ok_or_else(bad)?;
    let mut it = header.split_whitespace();
    if it.next() != Some(MAGIC) {
        return Err(bad());
    }
    let mut next = || it.next().ok_or_else(bad);
    let session: Arc<str> = next()?.into();
    let correlator = next()?.parse().map_err(|_| bad())?;
    let _record_index: u64 = next()?.parse().map_err(|_| bad())?;
    let missing = next()?.parse().map_err(|_| bad())?;
    let record_type: Arc<str> = next()?.into();
    let time: Arc<str> = next()?.into();
    Ok(LegacyRecord {
        path: path.to_path_buf(),
        seq,
        session,
        correlator,
        missing,
        record_type,
        time,
        inner_xml: body.to_string(),
    })
}

/// Writes a record in the old format (tests of the migration only).
#[cfg(test)]
pub(super) fn write(dir: &Path, seq: u64, header_rest: &str, body: &str) {
    fs::write(
        dir.join(format!("{seq:020}.{EXT}")),
        format!("{MAGIC} {header_rest}\n{body}"),
    )
    .expect("write legacy record");
}
