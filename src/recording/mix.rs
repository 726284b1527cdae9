//! `mixed.wav`: every stream of a recording with more than two parties, summed and clipped.
//!
//! Written once the stream files are final, from those files: a party added by re-INVITE
//! may join long after the first two, and all files start at the recording's start (a late
//! party's file with silence), so sample *i* of every file is the same instant. Reading
//! the finished files back costs one sequential pass and keeps the live media path free of
//! a third copy of every sample for the (common) two-party call.

use super::wav::{HEADER_LEN, WavFormat, WavStreamWriter, WavSummary};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

pub const MIXED_FILE: &str = "mixed.wav";

/// Output frames mixed per step (100 ms at 48 kHz).
const CHUNK: usize = 4800;

/// One input file read sample by sample at the output rate (linear interpolation for a
/// lower-rate input; exact integer positions, so no drift over hours).
struct Input {
    reader: BufReader<File>,
    rate: u64,
    /// Input samples left in the file.
    remaining: u64,
    /// The two input samples around the current position: `prev` at index `at - 1`.
    prev: i16,
    next: i16,
    /// Index of `next` in the input.
    at: u64,
    frames: u64,
}

impl Input {
    fn open(path: &Path) -> io::Result<Input> {
        let mut reader = BufReader::with_capacity(64 * 1024, File::open(path)?);
        let mut header = [0u8; HEADER_LEN as usize];
        reader.read_exact(&mut header)?;
        let field16 = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let field32 = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        // The recorder's own mono 16-bit files, canonical 44-byte header.
        if &header[0..4] != b"RIFF"
            || &header[36..40] != b"data"
            || field16(22) != 1
            || field16(34) != 16
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a mono 16-bit WAV", path.display()),
            ));
        }
        let frames = u64::from(field32(40)) / 2;
        let mut input = Input {
            reader,
            rate: u64::from(field32(24)),
            remaining: frames,
            prev: 0,
            next: 0,
            at: 0,
            frames,
        };
        input.next = input.read_one()?;
        Ok(input)
    }

    fn read_one(&mut self) -> io::Result<i16> {
        if self.remaining == 0 {
            return Ok(0);
        }
        self.remaining -= 1;
        let mut b = [0u8; 2];
        self.reader.read_exact(&mut b)?;
        Ok(i16::from_le_bytes(b))
    }

    /// Sample at output index `j` of an `out_rate` timeline.
    fn sample(&mut self, j: u64, out_rate: u64) -> io::Result<i32> {
        // Input position j * rate / out_rate = whole + frac / out_rate.
        let num = j * self.rate;
        let whole = num / out_rate;
        if whole >= self.frames {
            return Ok(0);
        }
        while self.at < whole + 1 {
            self.prev = self.next;
            self.next = self.read_one()?;
            self.at += 1;
        }
        // Now prev = input[whole], next = input[whole + 1].
        let frac = (num % out_rate) as i64;
        let (a, b) = (i64::from(self.prev), i64::from(self.next));
        Ok((a + (b - a) * frac / out_rate as i64) as i32)
    }

    fn output_frames(&self, out_rate: u64) -> u64 {
        (self.frames * out_rate).div_ceil(self.rate.max(1))
    }
}

/// Interleaves two final mono WAVs into a stereo file at the higher rate, the shorter
/// padded with silence: the stereo file of a recording whose second stream a re-INVITE
/// added (the live interleaver only exists for streams present from the start).
pub fn interleave_files(left: &Path, right: &Path, out: &Path) -> io::Result<WavSummary> {
    let mut sides = [Input::open(left)?, Input::open(right)?];
    let rate = sides[0].rate.max(sides[1].rate);
    let total = sides
        .iter()
        .map(|i| i.output_frames(rate))
        .max()
        .unwrap_or(0);
    let rate32 = u32::try_from(rate).map_err(io::Error::other)?;
    let mut writer = WavStreamWriter::create(out, WavFormat::stereo(rate32))?;
    let mut chunk = Vec::with_capacity(2 * CHUNK);
    let mut j = 0u64;
    while j < total {
        chunk.clear();
        let end = (j + CHUNK as u64).min(total);
        for k in j..end {
            for side in sides.iter_mut() {
                chunk.push(side.sample(k, rate)? as i16);
            }
        }
        writer.append(&chunk);
        writer.flush()?;
        j = end;
    }
    writer.finalize()
}

/// Sums `inputs` (final mono WAVs of one recording) into a new mono file at `out`, at the
/// highest input rate, as long as the longest input.
pub fn mix_files(inputs: &[PathBuf], out: &Path) -> io::Result<WavSummary> {
    let mut inputs: Vec<Input> = inputs
        .iter()
        .map(|p| Input::open(p))
        .collect::<io::Result<_>>()?;
    let rate = inputs.iter().map(|i| i.rate).max().unwrap_or(8000);
    let total = inputs
        .iter()
        .map(|i| i.output_frames(rate))
        .max()
        .unwrap_or(0);
    let rate32 = u32::try_from(rate).map_err(io::Error::other)?;
    let mut writer = WavStreamWriter::create(out, WavFormat::mono(rate32))?;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut j = 0u64;
    while j < total {
        chunk.clear();
        let end = (j + CHUNK as u64).min(total);
        for k in j..end {
            let mut sum = 0i32;
            for input in inputs.iter_mut() {
                sum += input.sample(k, rate)?;
            }
            chunk.push(sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
        }
        writer.append(&chunk);
        writer.flush()?;
        j = end;
    }
    writer.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, rate: u32, samples: &[i16]) -> PathBuf {
        let path = dir.join(name);
        let mut w = WavStreamWriter::create(&path, WavFormat::mono(rate)).unwrap();
        w.append(samples);
        w.finalize().unwrap();
        path
    }

    fn read(path: &Path) -> Vec<i16> {
        let bytes = std::fs::read(path).unwrap();
        bytes[HEADER_LEN as usize..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn sums_clips_and_pads_to_the_longest() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.wav", 8000, &[100, 200, 30_000, -30_000]);
        let b = write(dir.path(), "b.wav", 8000, &[1, 2, 10_000, -10_000, 7, 8]);
        let c = write(dir.path(), "c.wav", 8000, &[0, 0, 0]);
        let out = dir.path().join(MIXED_FILE);
        let summary = mix_files(&[a, b, c], &out).unwrap();
        assert_eq!(summary.samples, 6);
        assert_eq!(read(&out), vec![101, 202, 32_767, -32_768, 7, 8]);
    }

    #[test]
    fn lower_rate_inputs_are_interpolated_onto_the_highest_rate() {
        let dir = tempfile::tempdir().unwrap();
        let narrow = write(dir.path(), "n.wav", 8000, &[0, 1000, 2000]);
        let wide = write(dir.path(), "w.wav", 16000, &[0; 6]);
        let out = dir.path().join(MIXED_FILE);
        let summary = mix_files(&[narrow, wide], &out).unwrap();
        assert_eq!(summary.format.sample_rate, 16000);
        assert_eq!(read(&out), vec![0, 500, 1000, 1500, 2000, 1000]);
    }

    #[test]
    fn interleaves_two_files_padding_the_shorter() {
        let dir = tempfile::tempdir().unwrap();
        let l = write(dir.path(), "l.wav", 8000, &[1, 2, 3]);
        let r = write(dir.path(), "r.wav", 8000, &[-1]);
        let out = dir.path().join("stereo.wav");
        let summary = interleave_files(&l, &r, &out).unwrap();
        assert_eq!((summary.samples, summary.format.channels), (3, 2));
        assert_eq!(read(&out), vec![1, -1, 2, 0, 3, 0]);
    }

    #[test]
    fn refuses_what_is_not_a_mono_16_bit_wav() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("x.wav");
        std::fs::write(&bad, [0u8; 60]).unwrap();
        assert!(mix_files(&[bad], &dir.path().join(MIXED_FILE)).is_err());
    }
}
