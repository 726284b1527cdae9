//! A 16-bit PCM WAV file written while the call runs, valid up to its last flush.
//!
//! The 44-byte canonical header is written by this module rather than through `hound`:
//!
//! - crash safety needs a precise write order (audio first, then the header that claims it),
//!   so a `kill -9` between the two leaves a header claiming *less* than is on disk, never more;
//!   `hound`'s `flush` goes through its own `BufWriter` and seeks, which hides that order;
//! - a flush is exactly two positioned writes (`pwrite` of the audio at its offset, `pwrite`
//!   of the whole header at 0) and no seeks, so the per-flush syscall cost is fixed and counted;
//! - `recovery` can then rely on one known layout (`RIFF`, `fmt `, `data` last) and rewrite
//!   the header of a file whose header was lost.
//!
//! `hound` remains the reader in the tests, as an independent check of the format.
//!
//! Size limit: the RIFF and data sizes are 32-bit, so a file holds at most
//! `u32::MAX - 36` bytes of audio: about 74.5 hours of 8 kHz mono, 37 hours of 16 kHz mono or
//! 8 kHz stereo. When that is reached the writer logs one error, drops further samples and
//! keeps the file valid, instead of wrapping the sizes and corrupting it.
//!
//! [`StereoInterleaver`] builds a stereo file's frames from its two mono streams.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Length of the canonical header: `RIFF` + `WAVE` + 16-byte `fmt ` chunk + `data` header.
pub const HEADER_LEN: u64 = 44;

/// Largest audio payload the 32-bit RIFF size can describe (`RIFF size = 36 + data`).
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 36;

const BYTES_PER_SAMPLE: u16 = 2;

/// Sample rate and channel count of a 16-bit PCM WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    pub sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: u16,
}

impl WavFormat {
    pub fn mono(sample_rate: u32) -> Self {
        WavFormat {
            sample_rate,
            channels: 1,
        }
    }

    pub fn stereo(sample_rate: u32) -> Self {
        WavFormat {
            sample_rate,
            channels: 2,
        }
    }

    /// Bytes per frame (one sample of every channel).
    pub fn block_align(self) -> u16 {
        self.channels * BYTES_PER_SAMPLE
    }

    /// Rejects formats this writer does not produce, before a file is created.
    pub fn validate(self) -> io::Result<()> {
        if !(1..=2).contains(&self.channels) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("WAV channels must be 1 or 2, got {}", self.channels),
            ));
        }
        // 384 kHz is far above any codec we decode; the bound keeps byte rates within u32.
        if self.sample_rate == 0 || self.sample_rate > 384_000 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("WAV sample rate {} out of range", self.sample_rate),
            ));
        }
        Ok(())
    }

    /// Frames (samples per channel) → seconds.
    pub fn duration_seconds(self, frames: u64) -> f64 {
        frames as f64 / f64::from(self.sample_rate)
    }

    /// Most audio bytes a file of this format can hold: whole frames under the 32-bit limit.
    pub fn max_data_bytes(self) -> u64 {
        let align = u64::from(self.block_align());
        MAX_DATA_BYTES - MAX_DATA_BYTES % align
    }
}

/// Builds the canonical 44-byte header for `data_bytes` of audio.
pub fn header_bytes(format: WavFormat, data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = format.block_align();
    let byte_rate = format.sample_rate.saturating_mul(u32::from(block_align));
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // WAVE_FORMAT_PCM
    h[22..24].copy_from_slice(&format.channels.to_le_bytes());
    h[24..28].copy_from_slice(&format.sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&(BYTES_PER_SAMPLE * 8).to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Positioned write without moving a file cursor (one `pwrite` per call on Unix).
#[cfg(unix)]
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(not(unix))]
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)
}

/// Appends `samples` to `out` as little-endian bytes. Sized once, then filled in fixed-size
/// chunks: this loop vectorizes, a per-sample `extend` does not.
fn extend_le(out: &mut Vec<u8>, samples: &[i16]) {
    let start = out.len();
    out.resize(start + samples.len() * usize::from(BYTES_PER_SAMPLE), 0);
    for (dst, s) in out[start..]
        .chunks_exact_mut(usize::from(BYTES_PER_SAMPLE))
        .zip(samples)
    {
        dst.copy_from_slice(&s.to_le_bytes());
    }
}

/// I/O a writer has done, for metrics and for tests that bound syscalls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounters {
    /// Flushes that wrote audio (each is one data write + one header write).
    pub flushes: u64,
    /// Positioned write calls issued (data and header).
    pub write_calls: u64,
    /// Audio and header bytes handed to the OS.
    pub bytes_written: u64,
    /// `sync_data` calls.
    pub syncs: u64,
    /// Samples refused because the file reached the WAV size limit, or lost to a failed write.
    pub samples_dropped: u64,
    /// Samples written as silence in place of audio the writer shed while it was too far
    /// behind (`recording.max_pending_audio_mib`).
    pub samples_shed: u64,
}

/// What a finished file holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavSummary {
    /// Samples per channel (frames).
    pub samples: u64,
    pub duration_seconds: f64,
    pub format: WavFormat,
    /// Samples that never reached the file: a failed write, or the 4 GiB limit.
    pub samples_dropped: u64,
    /// Samples of silence standing in for audio shed while the writer was too far behind.
    pub samples_shed: u64,
}

/// A WAV file being written: samples are kept in memory (no syscall per `append`) and reach
/// the file on `flush`.
///
/// Samples wait in the blocks they arrived in, not in a buffer reserved for a whole flush
/// interval: a file holds what it was given since its last flush (half an interval on
/// average) and nothing more. A flush turns them into little-endian bytes in a staging
/// buffer the caller may share among many files.
#[derive(Debug)]
pub struct WavStreamWriter {
    file: File,
    format: WavFormat,
    /// Samples not yet written (interleaved for stereo), in arrival order; the last block
    /// may end in a partial stereo frame.
    pending: Vec<Vec<i16>>,
    /// Samples in `pending`.
    pending_samples: usize,
    /// Audio bytes on disk and claimed by the header.
    data_bytes: u64,
    /// Audio bytes accepted so far (on disk + buffered): what the size limit applies to.
    accepted_bytes: u64,
    limit_bytes: u64,
    counters: WriteCounters,
    finalized: bool,
}

impl WavStreamWriter {
    /// Creates `path` (it must not exist: a recording file is never overwritten) and writes
    /// a header describing an empty file, so the file is valid from the start.
    pub fn create(path: &Path, format: WavFormat) -> io::Result<Self> {
        format.validate()?;
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        write_all_at(&file, &header_bytes(format, 0), 0)?;
        Ok(WavStreamWriter {
            file,
            format,
            pending: Vec::new(),
            pending_samples: 0,
            data_bytes: 0,
            accepted_bytes: 0,
            limit_bytes: format.max_data_bytes(),
            counters: WriteCounters {
                write_calls: 1,
                bytes_written: HEADER_LEN,
                ..WriteCounters::default()
            },
            finalized: false,
        })
    }

    /// Lowers the size limit so the 4 GiB behaviour can be tested with a small file.
    #[cfg(test)]
    pub(crate) fn set_data_limit(&mut self, bytes: u64) {
        let align = u64::from(self.format.block_align());
        self.limit_bytes = bytes.min(self.format.max_data_bytes()) / align * align;
    }

    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// Appends interleaved samples (for stereo: left, right, left, …), copied.
    /// Returns how many were accepted: fewer than given only once the WAV size limit is hit.
    pub fn append(&mut self, samples: &[i16]) -> usize {
        let take = self.accept(samples.len());
        match self.pending.last_mut() {
            Some(last) => last.extend_from_slice(&samples[..take]),
            None if take > 0 => self.pending.push(samples[..take].to_vec()),
            None => {}
        }
        self.pending_samples += take;
        take
    }

    /// Appends a block of interleaved samples without copying it: the block itself waits
    /// for the next flush. Returns how many samples were accepted, as [`append`](Self::append).
    pub fn append_block(&mut self, mut block: Vec<i16>) -> usize {
        let take = self.accept(block.len());
        block.truncate(take);
        if take > 0 {
            self.pending_samples += take;
            self.pending.push(block);
        }
        take
    }

    /// `samples` of silence where audio was shed (see [`WriteCounters::samples_shed`]): the
    /// file keeps its place on the recording's timeline. Returns how many were accepted.
    pub fn append_shed(&mut self, samples: usize) -> usize {
        let take = self.append_block(vec![0; samples]);
        self.counters.samples_shed += take as u64;
        take
    }

    /// How many of `offered` samples the size limit lets in; counts and logs the rest.
    fn accept(&mut self, offered: usize) -> usize {
        let room =
            self.limit_bytes.saturating_sub(self.accepted_bytes) / u64::from(BYTES_PER_SAMPLE);
        let take = offered.min(usize::try_from(room).unwrap_or(usize::MAX));
        if take < offered {
            if self.counters.samples_dropped == 0 {
                tracing::error!(
                    sample_rate = self.format.sample_rate,
                    channels = self.format.channels,
                    data_bytes = self.accepted_bytes,
                    "WAV file reached the 4 GiB format limit; further audio is dropped"
                );
            }
            self.counters.samples_dropped += (offered - take) as u64;
        }
        self.accepted_bytes += (take * usize::from(BYTES_PER_SAMPLE)) as u64;
        take
    }

    /// Bytes waiting for the next flush.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_samples * usize::from(BYTES_PER_SAMPLE)
    }

    /// Memory held for samples waiting to be written, block capacities included.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        let blocks: usize = self.pending.iter().map(Vec::capacity).sum();
        blocks * usize::from(BYTES_PER_SAMPLE)
            + self.pending.capacity() * std::mem::size_of::<Vec<i16>>()
    }

    /// The samples waiting for the next flush, in blocks.
    pub fn buffered(&self) -> &[Vec<i16>] {
        &self.pending
    }

    /// Appends `samples` and flushes at once, through `staging`: a buffer the caller shares
    /// among many files, so a file written this way holds no buffer of its own.
    pub fn append_and_flush(&mut self, samples: &[i16], staging: &mut Vec<u8>) -> io::Result<()> {
        let take = self.accept(samples.len());
        self.pending_samples += take;
        self.write_pending(&samples[..take], staging)
    }

    /// Frames on disk and described by the header.
    pub fn frames_flushed(&self) -> u64 {
        self.data_bytes / u64::from(self.format.block_align())
    }

    /// Whether the file has reached the WAV size limit.
    pub fn is_full(&self) -> bool {
        self.accepted_bytes >= self.limit_bytes
    }

    pub fn counters(&self) -> WriteCounters {
        self.counters
    }

    /// Writes the buffered whole frames, then the header that describes them, so the file
    /// is a valid WAV up to this point. Audio goes first: a crash between the two writes
    /// leaves a header that claims less than is on disk, which `recovery` extends.
    ///
    /// On a write error the buffered audio is dropped (and counted) so memory stays bounded;
    /// the header on disk still describes what was written before.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_through(&mut Vec::new())
    }

    /// [`flush`](Self::flush) with `staging` as the bytes' buffer, so files that flush in
    /// turn share one.
    pub fn flush_through(&mut self, staging: &mut Vec<u8>) -> io::Result<()> {
        self.write_pending(&[], staging)
    }

    /// Writes the pending samples followed by `tail` (already accepted and counted in
    /// `pending_samples`): whole frames to the file, a partial frame back to `pending`.
    fn write_pending(&mut self, tail: &[i16], staging: &mut Vec<u8>) -> io::Result<()> {
        let channels = usize::from(self.format.channels);
        let whole = self.pending_samples - self.pending_samples % channels;
        if whole == 0 {
            if !tail.is_empty() {
                self.pending.push(tail.to_vec());
            }
            return Ok(());
        }
        staging.clear();
        staging.reserve(self.pending_samples * usize::from(BYTES_PER_SAMPLE));
        for block in self.pending.iter().map(Vec::as_slice).chain([tail]) {
            extend_le(staging, block);
        }
        self.pending.clear();
        let whole_bytes = whole * usize::from(BYTES_PER_SAMPLE);
        // Keeps a trailing partial stereo frame for the next flush.
        let partial: Vec<i16> = staging[whole_bytes..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        self.pending_samples = partial.len();
        if !partial.is_empty() {
            self.pending.push(partial);
        }
        self.counters.write_calls += 1;
        let written = write_all_at(
            &self.file,
            &staging[..whole_bytes],
            HEADER_LEN + self.data_bytes,
        );
        staging.clear();
        if let Err(e) = written {
            self.counters.samples_dropped += whole as u64;
            return Err(e);
        }
        self.data_bytes += whole_bytes as u64;
        self.counters.bytes_written += whole_bytes as u64;
        self.write_header()?;
        self.counters.flushes += 1;
        Ok(())
    }

    fn write_header(&mut self) -> io::Result<()> {
        // data_bytes ≤ limit_bytes < u32::MAX by construction of `append`.
        let size = u32::try_from(self.data_bytes).unwrap_or(u32::MAX - 36);
        self.counters.write_calls += 1;
        write_all_at(&self.file, &header_bytes(self.format, size), 0)?;
        self.counters.bytes_written += HEADER_LEN;
        Ok(())
    }

    /// Asks the OS to put the flushed audio and header on stable storage. Not needed for
    /// surviving a process crash (the page cache has it), only for a machine crash.
    pub fn sync_data(&mut self) -> io::Result<()> {
        self.counters.syncs += 1;
        self.file.sync_data()
    }

    /// Flushes, syncs and closes the file; its header is final.
    pub fn finalize(mut self) -> io::Result<WavSummary> {
        self.finalize_in_place()
    }

    /// `finalize` for callers that still want the counters afterwards. Appending after it is
    /// a logic error: the samples would not be written.
    pub(crate) fn finalize_in_place(&mut self) -> io::Result<WavSummary> {
        self.finalized = true;
        // A partial stereo frame can never be completed now: it is not audio.
        self.flush()?;
        self.pending.clear();
        self.pending_samples = 0;
        self.sync_data()?;
        Ok(self.summary())
    }

    pub fn summary(&self) -> WavSummary {
        let samples = self.frames_flushed();
        WavSummary {
            samples,
            duration_seconds: self.format.duration_seconds(samples),
            format: self.format,
            samples_dropped: self.counters.samples_dropped,
            samples_shed: self.counters.samples_shed,
        }
    }
}

impl Drop for WavStreamWriter {
    /// Best effort: a writer dropped without `finalize` still leaves its audio in a valid file.
    fn drop(&mut self) {
        if !self.finalized && self.flush().is_err() {
            tracing::warn!("flushing a dropped WAV writer failed");
        }
    }
}

/// Default bound on how far one side of a [`StereoInterleaver`] may run ahead before the
/// other is treated as silent: 2 s, enough for any reorder window, small in memory.
const DEFAULT_MAX_LAG_SECONDS: u32 = 2;

/// Builds sample-exact stereo frames from two mono streams that arrive independently.
///
/// Left sample *i* and right sample *i* (after resampling) always form frame *i*. When the
/// rates differ, the lower-rate side is upsampled to the higher rate by linear interpolation
/// between neighbouring input samples (exact integer positions, so no drift over hours;
/// speech band content is unaffected, the new upper band is simply empty). A frame is emitted
/// only when both sides have its sample; if one side runs more than `max_lag` frames ahead,
/// the other is taken to be silent for the excess and its samples for those frames, should
/// they arrive later, are dropped so alignment is kept. `finish` pads the shorter side with
/// silence.
#[derive(Debug)]
pub struct StereoInterleaver {
    left: ResampledSide,
    right: ResampledSide,
    rate: u32,
    max_lag: usize,
    emitted: u64,
}

impl StereoInterleaver {
    /// Rates in Hz; the output rate is the higher one.
    pub fn new(left_rate: u32, right_rate: u32) -> io::Result<Self> {
        // Same bounds as a WAV file's rate; they also keep the position arithmetic in u64.
        WavFormat::stereo(left_rate).validate()?;
        WavFormat::stereo(right_rate).validate()?;
        let rate = left_rate.max(right_rate);
        Ok(StereoInterleaver {
            left: ResampledSide::new(left_rate, rate),
            right: ResampledSide::new(right_rate, rate),
            rate,
            max_lag: rate.saturating_mul(DEFAULT_MAX_LAG_SECONDS) as usize,
            emitted: 0,
        })
    }

    /// Frames one side may lead before the other is padded with silence.
    pub fn with_max_lag(mut self, frames: usize) -> Self {
        self.max_lag = frames;
        self
    }

    pub fn output_rate(&self) -> u32 {
        self.rate
    }

    /// Sample rates of the left and right inputs, in Hz.
    pub fn input_rates(&self) -> (u32, u32) {
        let rate = |side: &ResampledSide| u32::try_from(side.in_rate).unwrap_or(u32::MAX);
        (rate(&self.left), rate(&self.right))
    }

    /// Frames emitted so far.
    pub fn frames_emitted(&self) -> u64 {
        self.emitted
    }

    /// Frames of silence inserted for (left, right) because that side lagged too far.
    pub fn padded_frames(&self) -> (u64, u64) {
        (self.left.padded, self.right.padded)
    }

    /// Adds left samples; appends ready interleaved frames to `out`, returns their count.
    pub fn push_left(&mut self, samples: &[i16], out: &mut Vec<i16>) -> usize {
        self.left.push(samples, false);
        self.drain(out)
    }

    /// Adds right samples; appends ready interleaved frames to `out`, returns their count.
    pub fn push_right(&mut self, samples: &[i16], out: &mut Vec<i16>) -> usize {
        self.right.push(samples, false);
        self.drain(out)
    }

    /// Gives back the memory of a lead that is over: a side's queue grows to the largest
    /// lead it has held (a stall, a late tick), and without this it would keep that size
    /// for the rest of the call, so a call's memory would creep up over hours. A queue
    /// holding less than half its capacity shrinks to what it holds: between two flushes a
    /// call keeps at most twice its current lead, however large an earlier one was (the
    /// queues grow again, for a moment, while the next flush interleaves).
    pub fn trim(&mut self) {
        self.left.trim();
        self.right.trim();
    }

    /// Emits everything left, the shorter side padded with silence.
    pub fn finish(mut self, out: &mut Vec<i16>) -> usize {
        self.left.push(&[], true);
        self.right.push(&[], true);
        let mut n = self.drain(out);
        let extra = self.left.ready.len().max(self.right.ready.len());
        self.left.pad(extra - self.left.ready.len());
        self.right.pad(extra - self.right.ready.len());
        n += self.drain(out);
        n
    }

    fn drain(&mut self, out: &mut Vec<i16>) -> usize {
        let lead = self.left.ready.len().max(self.right.ready.len());
        if lead > self.max_lag {
            let target = lead - self.max_lag;
            self.left.pad(target.saturating_sub(self.left.ready.len()));
            self.right
                .pad(target.saturating_sub(self.right.ready.len()));
        }
        let frames = self.left.ready.len().min(self.right.ready.len());
        let start = out.len();
        out.resize(start + frames * 2, 0);
        // Channel by channel over the deques' contiguous parts: a tight loop per slice
        // instead of two pops and two pushes per frame.
        for (channel, side) in [&self.left, &self.right].into_iter().enumerate() {
            let (a, b) = side.ready.as_slices();
            let a = &a[..a.len().min(frames)];
            let b = &b[..frames - a.len()];
            let (out_a, out_b) = out[start..].split_at_mut(2 * a.len());
            for (frame, &x) in out_a.chunks_exact_mut(2).zip(a) {
                frame[channel] = x;
            }
            for (frame, &x) in out_b.chunks_exact_mut(2).zip(b) {
                frame[channel] = x;
            }
        }
        self.left.ready.drain(..frames);
        self.right.ready.drain(..frames);
        self.emitted += frames as u64;
        frames
    }
}

/// One side of the interleaver: input samples turned into output-rate samples.
#[derive(Debug)]
struct ResampledSide {
    in_rate: u64,
    out_rate: u64,
    /// Input samples still needed for interpolation; `input[0]` has index `input_base`.
    input: VecDeque<i16>,
    input_base: u64,
    received: u64,
    /// Index of the next output sample to compute.
    next_out: u64,
    ready: VecDeque<i16>,
    /// Output samples already emitted as silence padding: skipped when they are computed.
    skip: u64,
    padded: u64,
}

impl ResampledSide {
    fn new(in_rate: u32, out_rate: u32) -> Self {
        ResampledSide {
            in_rate: u64::from(in_rate),
            out_rate: u64::from(out_rate),
            input: VecDeque::new(),
            input_base: 0,
            received: 0,
            next_out: 0,
            ready: VecDeque::new(),
            skip: 0,
            padded: 0,
        }
    }

    fn input_at(&self, index: u64) -> i16 {
        usize::try_from(index - self.input_base)
            .ok()
            .and_then(|i| self.input.get(i).copied())
            .unwrap_or(0)
    }

    /// Output sample `n` sits at input position `n * in_rate / out_rate`; it is computed once
    /// the input samples around that position exist (at `finish`, the last one is held).
    fn push(&mut self, samples: &[i16], finishing: bool) {
        if self.in_rate == self.out_rate {
            self.push_same_rate(samples);
            return;
        }
        self.input.extend(samples.iter().copied());
        self.received += samples.len() as u64;
        loop {
            let pos = self.next_out * self.in_rate;
            let idx = pos / self.out_rate;
            let frac = pos % self.out_rate;
            let needed = if frac == 0 || finishing { idx } else { idx + 1 };
            if needed >= self.received {
                break;
            }
            let a = i64::from(self.input_at(idx));
            let b = if frac != 0 && idx + 1 < self.received {
                i64::from(self.input_at(idx + 1))
            } else {
                a
            };
            let y = a + (b - a) * frac as i64 / self.out_rate as i64;
            self.next_out += 1;
            if self.skip > 0 {
                self.skip -= 1;
            } else {
                self.ready
                    .push_back(y.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16);
            }
        }
        // Drop input that no future output sample can reach.
        let first_needed = self.next_out * self.in_rate / self.out_rate;
        while self.input_base < first_needed && !self.input.is_empty() {
            self.input.pop_front();
            self.input_base += 1;
        }
    }

    /// Equal rates: output sample n is input sample n, so the samples go straight to
    /// `ready` (the common two-party call; the general loop costs two divisions a sample).
    fn push_same_rate(&mut self, samples: &[i16]) {
        let skip = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(samples.len());
        self.skip -= skip as u64;
        self.ready.extend(&samples[skip..]);
        self.received += samples.len() as u64;
        self.next_out = self.received;
        self.input_base = self.received;
    }

    /// Shrinks the queues to what they hold when they hold less than half their capacity.
    fn trim(&mut self) {
        for queue in [&mut self.ready, &mut self.input] {
            if queue.capacity() > 2 * queue.len() {
                queue.shrink_to(queue.len());
            }
        }
    }

    /// Emits `frames` of silence in place of samples not yet computed.
    fn pad(&mut self, frames: usize) {
        if frames == 0 {
            return;
        }
        self.ready.extend(std::iter::repeat_n(0, frames));
        self.skip += frames as u64;
        self.padded += frames as u64;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn empty_file_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let w = WavStreamWriter::create(&path, WavFormat::mono(8000)).unwrap();
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.len(), 0);
        assert_eq!(r.spec().sample_rate, 8000);
        let s = w.finalize().unwrap();
        assert_eq!(s.samples, 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN);
    }

    #[test]
    fn valid_after_every_flush_and_no_io_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = WavStreamWriter::create(&path, WavFormat::mono(8000)).unwrap();
        let samples = tone(440.0, 8000, 8000);
        for (k, chunk) in samples.chunks(800).enumerate() {
            let before = w.counters();
            for packet in chunk.chunks(160) {
                w.append(packet);
            }
            assert_eq!(w.counters(), before, "append must not do I/O");
            w.flush().unwrap();
            assert_eq!(w.counters().write_calls, before.write_calls + 2);
            let mut r = hound::WavReader::open(&path).unwrap();
            let read: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
            assert_eq!(read, samples[..(k + 1) * 800]);
        }
        let s = w.finalize().unwrap();
        assert_eq!(s.samples, 8000);
        assert!((s.duration_seconds - 1.0).abs() < 1e-9);
    }

    #[test]
    fn stereo_partial_frame_waits_for_its_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let mut w = WavStreamWriter::create(&path, WavFormat::stereo(16000)).unwrap();
        w.append(&[1, 2, 3]);
        w.flush().unwrap();
        assert_eq!(w.frames_flushed(), 1);
        assert_eq!(w.buffered_bytes(), 2);
        w.append(&[4]);
        w.flush().unwrap();
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().channels, 2);
        assert_eq!(r.duration(), 2);
        w.append(&[5]);
        // The dangling left sample of an unfinished frame is discarded at finalize.
        assert_eq!(w.finalize().unwrap().samples, 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN + 8);
    }

    #[test]
    fn size_limit_stops_writing_and_keeps_file_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = WavStreamWriter::create(&path, WavFormat::mono(8000)).unwrap();
        w.set_data_limit(1000);
        assert_eq!(w.append(&[7; 400]), 400);
        assert_eq!(w.append(&[7; 400]), 100);
        assert!(w.is_full());
        assert_eq!(w.append(&[7; 10]), 0);
        assert_eq!(w.counters().samples_dropped, 310);
        let s = w.finalize().unwrap();
        assert_eq!(s.samples, 500);
        assert_eq!(s.samples_dropped, 310, "the summary says audio is missing");
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.len(), 500);
    }

    #[test]
    fn real_limit_is_whole_frames_under_4_gib() {
        assert_eq!(WavFormat::mono(8000).max_data_bytes(), 4_294_967_258);
        assert_eq!(WavFormat::stereo(8000).max_data_bytes(), 4_294_967_256);
        let hours = WavFormat::mono(8000).max_data_bytes() as f64 / 16_000.0 / 3600.0;
        assert!(hours > 74.0 && hours < 75.0);
    }

    #[test]
    fn refuses_bad_formats_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let bad = WavFormat {
            sample_rate: 8000,
            channels: 3,
        };
        assert!(WavStreamWriter::create(&path, bad).is_err());
        assert!(WavStreamWriter::create(&path, WavFormat::mono(0)).is_err());
        let w = WavStreamWriter::create(&path, WavFormat::mono(8000)).unwrap();
        let again = WavStreamWriter::create(&path, WavFormat::mono(8000));
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        drop(w);
    }

    #[test]
    fn drop_without_finalize_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = WavStreamWriter::create(&path, WavFormat::mono(8000)).unwrap();
        w.append(&[1; 320]);
        drop(w);
        assert_eq!(hound::WavReader::open(&path).unwrap().len(), 320);
    }

    /// Frequency from the span between the first and last rising zero crossings.
    pub(crate) fn frequency(samples: &[i16], rate: u32) -> f64 {
        let rising: Vec<usize> = (1..samples.len())
            .filter(|&i| samples[i - 1] < 0 && samples[i] >= 0)
            .collect();
        let (Some(first), Some(last)) = (rising.first(), rising.last()) else {
            return 0.0;
        };
        (rising.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
    }

    fn interleave(l: &[i16], r: &[i16]) -> Vec<i16> {
        l.iter().zip(r).flat_map(|(&a, &b)| [a, b]).collect()
    }

    #[test]
    fn interleaver_equal_rates_is_sample_exact() {
        let mut st = StereoInterleaver::new(8000, 8000).unwrap();
        let left: Vec<i16> = (0..1000).collect();
        let right: Vec<i16> = (0..1000).map(|i| -i).collect();
        let mut out = Vec::new();
        // Uneven packet sizes on each side.
        for (l, r) in left.chunks(160).zip(right.chunks(80)) {
            st.push_left(l, &mut out);
            st.push_right(r, &mut out);
        }
        st.push_right(&right[560..], &mut out);
        assert_eq!(st.frames_emitted(), 1000);
        assert_eq!(st.finish(&mut out), 0);
        assert_eq!(out, interleave(&left, &right));
    }

    #[test]
    fn interleaver_upsamples_the_lower_rate_side() {
        let mut st = StereoInterleaver::new(8000, 16000).unwrap();
        assert_eq!(st.output_rate(), 16000);
        let left = tone(440.0, 8000, 8000);
        let right = tone(880.0, 16000, 16000);
        let mut out = Vec::new();
        for (l, r) in left.chunks(160).zip(right.chunks(320)) {
            st.push_left(l, &mut out);
            st.push_right(r, &mut out);
        }
        st.finish(&mut out);
        assert_eq!(out.len(), 2 * 16000, "both channels one second at 16 kHz");
        let (l, r): (Vec<i16>, Vec<i16>) = out.chunks(2).map(|f| (f[0], f[1])).unzip();
        assert_eq!(r, right);
        // Even output samples are the input samples; odd ones lie between their neighbours.
        assert_eq!(l[2 * 100], left[100]);
        assert_eq!(
            l[2 * 100 + 1],
            ((i32::from(left[100]) + i32::from(left[101])) / 2) as i16
        );
        assert!((frequency(&l, 16000) - 440.0).abs() < 1.0);
        assert!((frequency(&r, 16000) - 880.0).abs() < 1.0);
    }

    #[test]
    fn a_lead_that_is_over_gives_its_memory_back() {
        let mut st = StereoInterleaver::new(16000, 8000).unwrap();
        let mut out = Vec::new();
        // A 1.5 s lead of the left side (a stalled right stream), then the right catches up.
        st.push_left(&[1; 24_000], &mut out);
        st.push_right(&[2; 12_000], &mut out);
        // All but the last upsampled frame, which waits for the next right sample.
        assert_eq!(out.len(), 2 * 23_999);
        assert!(st.left.ready.capacity() >= 24_000);
        st.trim();
        // At most twice what is queued (one frame here), not 1.5 s.
        for side in [&st.left, &st.right] {
            assert!(side.ready.capacity() <= 2 * side.ready.len().max(1));
            assert!(side.input.capacity() <= 2 * side.input.len().max(1));
        }
        // And it keeps working.
        st.push_left(&[3; 160], &mut out);
        st.push_right(&[4; 80], &mut out);
        assert_eq!(out.len(), 2 * (23_999 + 160));
        assert_eq!(&out[out.len() - 2..], &[3, 4]);
    }

    #[test]
    fn interleaver_waits_for_a_late_side_and_pads_at_finish() {
        let mut st = StereoInterleaver::new(8000, 8000).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            st.push_left(&[1; 480], &mut out),
            0,
            "nothing until the right side speaks"
        );
        assert_eq!(st.push_right(&[2; 160], &mut out), 160);
        assert_eq!(st.push_right(&[3; 400], &mut out), 320);
        assert_eq!(st.finish(&mut out), 80);
        assert_eq!(out.len(), 2 * 560);
        assert_eq!(
            &out[2 * 480..2 * 482],
            &[0, 3, 0, 3],
            "left padded with silence"
        );
    }

    #[test]
    fn interleaver_lag_bound_keeps_alignment() {
        let mut st = StereoInterleaver::new(8000, 8000)
            .unwrap()
            .with_max_lag(100);
        let mut out = Vec::new();
        let left: Vec<i16> = (1..=300).collect();
        assert_eq!(
            st.push_left(&left, &mut out),
            200,
            "right treated as silent for 200"
        );
        assert_eq!(st.padded_frames(), (0, 200));
        // The right side's first 200 samples belong to frames already emitted: dropped.
        let right: Vec<i16> = (1..=300).map(|i| -i).collect();
        assert_eq!(st.push_right(&right, &mut out), 100);
        assert_eq!(&out[400..402], &[201, -201]);
        assert_eq!(&out[598..600], &[300, -300]);
        assert!(StereoInterleaver::new(0, 8000).is_err());
        assert!(StereoInterleaver::new(8000, u32::MAX).is_err());
    }
}
