//! Repairs a WAV file left unfinished by a crash or `kill -9`.
//!
//! [`WavStreamWriter`](super::wav::WavStreamWriter) writes audio before the header that
//! describes it, so an interrupted file holds a header claiming at most what is on disk (or
//! more, after a machine crash that lost data pages). The data chunk is always the file's last
//! chunk, so the truth is the file length: the sizes are rewritten from it, and a trailing
//! partial frame is cut.
//!
//! A header that cannot be read (shorter than its chunks, zeroed by the filesystem after a
//! power loss, or not RIFF/WAVE) carries no sample rate, so [`repair_wav`] reports
//! `InvalidData` rather than guess. The caller usually knows the stream's format (from
//! `recording.json`); [`repair_wav_with_fallback`] then writes our canonical 44-byte header
//! with that format, keeping the bytes after it as audio (an empty valid file if there are
//! none).

use super::wav::{HEADER_LEN, WavFormat, header_bytes, write_all_at};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Chunks before `data` are looked for only in the file's first bytes: our files have none,
/// foreign ones rarely more than a few hundred bytes.
const HEADER_SCAN_BYTES: u64 = 64 * 1024;

/// What a repaired (or already valid) file holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepairReport {
    /// Samples per channel (frames) now described by the header.
    pub samples: u64,
    pub duration_seconds: f64,
    /// Whether anything had to be changed.
    pub was_broken: bool,
    pub format: WavFormat,
}

/// Makes `path` a valid WAV holding every whole frame on disk; see the module docs.
pub fn repair_wav(path: &Path) -> io::Result<RepairReport> {
    repair(path, None)
}

/// Like [`repair_wav`], but an unreadable header is replaced by a canonical one for `fallback`.
pub fn repair_wav_with_fallback(path: &Path, fallback: WavFormat) -> io::Result<RepairReport> {
    fallback.validate()?;
    repair(path, Some(fallback))
}

/// The parts of a header that sizes are rewritten from.
#[derive(Debug)]
struct ParsedHeader {
    format: WavFormat,
    riff_size: u32,
    /// Offset of the first audio byte; the data chunk's size field sits 4 bytes before.
    data_start: u64,
    data_size: u32,
}

fn repair(path: &Path, fallback: Option<WavFormat>) -> io::Result<RepairReport> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(HEADER_SCAN_BYTES.min(len))
        .read_to_end(&mut head)?;

    let header = match (parse_header(&head), fallback) {
        (Some(h), _) => h,
        (None, Some(format)) => return rewrite_canonical(&file, len, format),
        (None, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no readable WAV header", path.display()),
            ));
        }
    };

    let align = u64::from(header.format.block_align());
    let declared_end = header.data_start + u64::from(header.data_size);
    // A consistent file is left alone, including foreign ones with chunks after `data`.
    if u64::from(header.riff_size) + 8 == len && declared_end <= len && header.data_size > 0 {
        return Ok(report(header.format, u64::from(header.data_size), false));
    }
    // The RIFF size counts everything after its own field and must fit 32 bits.
    let max_data = u64::from(u32::MAX) - (header.data_start - 8);
    let available = (len - header.data_start).min(max_data);
    let data = available - available % align;
    let end = header.data_start + data;
    let riff = end - 8;
    if u64::from(header.riff_size) == riff && u64::from(header.data_size) == data && len == end {
        return Ok(report(header.format, data, false));
    }
    if len > end {
        file.set_len(end)?;
    }
    // Both values are ≤ u32::MAX by the `max_data` bound above.
    let riff32 = u32::try_from(riff).unwrap_or(u32::MAX);
    let data32 = u32::try_from(data).unwrap_or(u32::MAX);
    write_all_at(&file, &riff32.to_le_bytes(), 4)?;
    write_all_at(&file, &data32.to_le_bytes(), header.data_start - 4)?;
    file.sync_all()?;
    Ok(report(header.format, data, true))
}

/// Replaces an unreadable header with ours; bytes after [`HEADER_LEN`] are kept as audio.
fn rewrite_canonical(file: &File, len: u64, format: WavFormat) -> io::Result<RepairReport> {
    let align = u64::from(format.block_align());
    let available = len.saturating_sub(HEADER_LEN).min(format.max_data_bytes());
    let data = available - available % align;
    file.set_len(HEADER_LEN + data)?;
    // `data` ≤ `max_data_bytes` < u32::MAX.
    let size = u32::try_from(data).unwrap_or(0);
    write_all_at(file, &header_bytes(format, size), 0)?;
    file.sync_all()?;
    Ok(report(format, data, true))
}

fn report(format: WavFormat, data_bytes: u64, was_broken: bool) -> RepairReport {
    let samples = data_bytes / u64::from(format.block_align());
    RepairReport {
        samples,
        duration_seconds: format.duration_seconds(samples),
        was_broken,
        format,
    }
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Finds `fmt ` and `data`; `None` when the bytes are not a 16-bit PCM mono/stereo WAV
/// header (the only kind this recorder writes and can vouch for).
fn parse_header(b: &[u8]) -> Option<ParsedHeader> {
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WAVE" {
        return None;
    }
    let riff_size = le_u32(b, 4)?;
    let mut format = None;
    let mut at = 12usize;
    loop {
        let id = b.get(at..at + 4)?;
        let size = le_u32(b, at + 4)?;
        let body = at + 8;
        if id == b"data" {
            return Some(ParsedHeader {
                format: format?,
                riff_size,
                data_start: body as u64,
                data_size: size,
            });
        }
        if id == b"fmt " {
            let tag = le_u16(b, body)?;
            let channels = le_u16(b, body + 2)?;
            let sample_rate = le_u32(b, body + 4)?;
            let block_align = le_u16(b, body + 12)?;
            let bits = le_u16(b, body + 14)?;
            // 0xFFFE: WAVE_FORMAT_EXTENSIBLE, which other tools write for the same PCM.
            let f = WavFormat {
                sample_rate,
                channels,
            };
            let pcm16 = (tag == 1 || tag == 0xFFFE) && bits == 16;
            if !pcm16 || f.validate().is_err() || block_align != f.block_align() {
                return None;
            }
            format = Some(f);
        }
        // Chunks are padded to an even length.
        let padded = usize::try_from(size)
            .ok()?
            .checked_add((size % 2) as usize)?;
        at = body.checked_add(padded)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::wav::WavStreamWriter;
    use std::io::Write;
    use std::path::PathBuf;

    fn samples_in(path: &Path) -> Vec<i16> {
        let mut r = hound::WavReader::open(path).unwrap();
        r.samples::<i16>().map(|s| s.unwrap()).collect()
    }

    fn append_raw(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn le_bytes(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    fn written(dir: &Path, format: WavFormat, samples: &[i16]) -> PathBuf {
        let path = dir.join("a.wav");
        let mut w = WavStreamWriter::create(&path, format).unwrap();
        w.append(samples);
        w.finalize().unwrap();
        path
    }

    #[test]
    fn valid_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), WavFormat::mono(8000), &[5; 800]);
        let before = std::fs::read(&path).unwrap();
        let r = repair_wav(&path).unwrap();
        assert!(!r.was_broken);
        assert_eq!(r.samples, 800);
        assert!((r.duration_seconds - 0.1).abs() < 1e-9);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn crash_between_data_and_header_keeps_every_flushed_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let flushed: Vec<i16> = (0..1600).map(|i| i as i16).collect();
        let mut w = WavStreamWriter::create(&path, WavFormat::mono(8000)).unwrap();
        w.append(&flushed);
        w.flush().unwrap();
        // Buffered but never flushed: lost with the process, as after kill -9.
        w.append(&[9; 320]);
        std::mem::forget(w);
        // Audio that reached the file without its header update, ending in half a sample.
        let tail: Vec<i16> = (0..160).map(|i| -i as i16).collect();
        let mut raw = le_bytes(&tail);
        raw.push(0x7f);
        append_raw(&path, &raw);

        let r = repair_wav(&path).unwrap();
        assert!(r.was_broken);
        assert_eq!(r.samples, 1760);
        let mut expected = flushed.clone();
        expected.extend(&tail);
        assert_eq!(samples_in(&path), expected);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN + 3520);
        assert!(
            !repair_wav(&path).unwrap().was_broken,
            "repair is idempotent"
        );
    }

    #[test]
    fn zero_size_header_with_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut bytes = header_bytes(WavFormat::mono(16000), 0).to_vec();
        bytes[4..8].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let r = repair_wav(&path).unwrap();
        assert!(r.was_broken);
        assert_eq!(r.samples, 0);
        assert_eq!(samples_in(&path).len(), 0);

        append_raw(&path, &le_bytes(&[3; 16000]));
        let r = repair_wav(&path).unwrap();
        assert_eq!((r.samples, r.was_broken), (16000, true));
        assert!((r.duration_seconds - 1.0).abs() < 1e-9);
        assert_eq!(samples_in(&path), vec![3; 16000]);
    }

    #[test]
    fn header_only_file_is_valid_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), WavFormat::mono(8000), &[]);
        let r = repair_wav(&path).unwrap();
        assert_eq!((r.samples, r.was_broken), (0, false));
    }

    #[test]
    fn header_claiming_more_than_on_disk_is_shrunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut bytes = header_bytes(WavFormat::mono(8000), 1_000_000).to_vec();
        bytes.extend(le_bytes(&[1; 100]));
        std::fs::write(&path, &bytes).unwrap();
        let r = repair_wav(&path).unwrap();
        assert_eq!((r.samples, r.was_broken), (100, true));
        assert_eq!(samples_in(&path).len(), 100);
    }

    #[test]
    fn stereo_partial_frame_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), WavFormat::stereo(8000), &[1, 2, 3, 4]);
        append_raw(&path, &le_bytes(&[5, 6, 7]));
        let r = repair_wav(&path).unwrap();
        assert_eq!((r.samples, r.was_broken), (3, true));
        assert_eq!(samples_in(&path), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn truncated_header_is_an_error_without_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, &header_bytes(WavFormat::mono(8000), 0)[..30]).unwrap();
        let e = repair_wav(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, b"").unwrap();
        assert!(repair_wav(&path).is_err());
    }

    #[test]
    fn truncated_header_with_fallback_becomes_an_empty_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, &header_bytes(WavFormat::mono(8000), 0)[..30]).unwrap();
        let r = repair_wav_with_fallback(&path, WavFormat::mono(8000)).unwrap();
        assert_eq!((r.samples, r.was_broken), (0, true));
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!((reader.len(), reader.spec().sample_rate), (0, 8000));
    }

    #[test]
    fn zeroed_header_with_fallback_keeps_the_audio() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut bytes = vec![0u8; HEADER_LEN as usize];
        bytes.extend(le_bytes(&[4, -4, 4, -4, 4]));
        std::fs::write(&path, &bytes).unwrap();
        assert!(repair_wav(&path).is_err());
        let r = repair_wav_with_fallback(&path, WavFormat::stereo(8000)).unwrap();
        assert_eq!((r.samples, r.was_broken), (2, true));
        assert_eq!(samples_in(&path), vec![4, -4, 4, -4]);
    }

    #[test]
    fn foreign_chunks_before_and_after_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let canonical = header_bytes(WavFormat::mono(8000), 0);
        // RIFF/WAVE/fmt, then a LIST chunk, then data.
        let mut bytes = canonical[..36].to_vec();
        bytes.extend(b"LIST");
        bytes.extend(4u32.to_le_bytes());
        bytes.extend([1, 2, 3, 4]);
        bytes.extend(b"data");
        bytes.extend(0u32.to_le_bytes());
        bytes.extend(le_bytes(&[8; 10]));
        std::fs::write(&path, &bytes).unwrap();
        let r = repair_wav(&path).unwrap();
        assert_eq!((r.samples, r.was_broken), (10, true));
        assert_eq!(samples_in(&path), vec![8; 10]);

        // A consistent file with a chunk after `data` is not touched.
        let mut bytes = header_bytes(WavFormat::mono(8000), 4).to_vec();
        bytes.extend(le_bytes(&[1, 2]));
        bytes.extend(b"LIST");
        bytes.extend(2u32.to_le_bytes());
        bytes.extend([9, 9]);
        let riff = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let r = repair_wav(&path).unwrap();
        assert_eq!((r.samples, r.was_broken), (2, false));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn not_pcm16_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut bytes = header_bytes(WavFormat::mono(8000), 0).to_vec();
        bytes[34] = 8; // 8-bit samples
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            repair_wav(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
