//! The batching writer the media tasks hand PCM to.
//!
//! A few dedicated OS threads (not tokio workers: file I/O blocks) each own a shard of the
//! open files, chosen by `file_id % threads`. Media tasks send [`WriterCommand`]s over an
//! unbounded channel, so sending never blocks a reactor thread; appends land in the file's
//! user-space buffer and each file is flushed once per `flush_interval` (one data write + one
//! header write), or earlier if its buffer passes `max_buffer_bytes`. Flush deadlines are per
//! file, counted from when it opened, so thousands of files spread their I/O over the interval
//! instead of all flushing on the same tick.
//!
//! The threads do not block on the channel: they sleep for `drain_interval` (or until the
//! next flush deadline) and then drain everything queued. A receiver blocked on the channel
//! would be woken by nearly every send when packets trickle in at real-time pace (a futex
//! wake and a context switch per packet, i.e. a syscall per packet); with the timer, 1,000
//! streams cost each thread ~100 wake-ups a second instead of ~25,000.
//! `Flush` and `Close` do wake their thread, since a caller waits on them.
//!
//! `sync_data` is not part of the regular flush by default: surviving a process crash or
//! `kill -9` (SPEC §5) only needs the data in the page cache, and an fdatasync per file per
//! second would make thousands of streams disk-latency bound. `sync_interval` bounds the loss
//! on a machine crash for deployments that want it; `Close` always syncs.
//!
//! [`StereoInterleaver`] (in `wav`, re-exported here) builds the stereo file's frames from the
//! two mono streams before they are appended.

pub use super::wav::StereoInterleaver;
use super::wav::{WavFormat, WavStreamWriter, WavSummary, WriteCounters};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Identifies one open file across the writer; also picks its writer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(pub u64);

/// Reply to a `Close`: the file's final content, or why it could not be written.
pub type CloseReply = oneshot::Sender<io::Result<WavSummary>>;

/// What a media task asks of the writer.
#[derive(Debug)]
pub enum WriterCommand {
    /// Creates the file. A failure is logged and counted, and reported by the `Close` reply.
    Open {
        file_id: FileId,
        path: PathBuf,
        format: WavFormat,
    },
    /// Interleaved samples (stereo: left, right, …), appended to the file's buffer.
    Append { file_id: FileId, samples: Vec<i16> },
    /// From now on every append to `left` and `right` (mono files of the same thread) is
    /// also interleaved into the stereo file `file_id`; its `Close` finishes the
    /// interleaver, the shorter side padded with silence.
    Interleave {
        file_id: FileId,
        left: FileId,
        right: FileId,
        interleaver: Box<StereoInterleaver>,
    },
    /// Flushes now (header included) and replies when the file is valid up to here.
    Flush {
        file_id: FileId,
        reply: Option<oneshot::Sender<io::Result<()>>>,
    },
    /// Finalizes the file (flush + sync) and replies with its final length.
    Close { file_id: FileId, reply: CloseReply },
}

impl WriterCommand {
    fn file_id(&self) -> FileId {
        match self {
            WriterCommand::Open { file_id, .. }
            | WriterCommand::Append { file_id, .. }
            | WriterCommand::Interleave { file_id, .. }
            | WriterCommand::Flush { file_id, .. }
            | WriterCommand::Close { file_id, .. } => *file_id,
        }
    }
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Writer threads; files are spread across them by id.
    pub threads: usize,
    /// Every file with buffered audio is flushed at least this often.
    pub flush_interval: Duration,
    /// How often a writer thread wakes to take queued appends; also the precision of flush
    /// deadlines.
    pub drain_interval: Duration,
    /// `sync_data` a file at most this often while it is open (`None`: only at close).
    pub sync_interval: Option<Duration>,
    /// A file whose buffer passes this is flushed at once (bounds memory when audio arrives
    /// faster than real time, e.g. a backlog).
    pub max_buffer_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            threads: 2,
            flush_interval: Duration::from_secs(1),
            drain_interval: Duration::from_millis(10),
            sync_interval: None,
            max_buffer_bytes: 256 * 1024,
        }
    }
}

/// Totals across all writer threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub files_open: u64,
    /// Flushes that wrote audio (each one data write + one header write).
    pub flushes: u64,
    /// Positioned write syscalls, including each file's initial header.
    pub write_calls: u64,
    pub bytes_written: u64,
    pub syncs: u64,
    pub open_errors: u64,
    pub write_errors: u64,
    /// Samples lost: to a failed open or write, an unknown file, or the 4 GiB limit.
    pub samples_dropped: u64,
}

#[derive(Debug, Default)]
struct StatsCounters {
    files_open: AtomicU64,
    flushes: AtomicU64,
    write_calls: AtomicU64,
    bytes_written: AtomicU64,
    syncs: AtomicU64,
    open_errors: AtomicU64,
    write_errors: AtomicU64,
    samples_dropped: AtomicU64,
}

impl StatsCounters {
    fn snapshot(&self) -> WriterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WriterStats {
            files_open: get(&self.files_open),
            flushes: get(&self.flushes),
            write_calls: get(&self.write_calls),
            bytes_written: get(&self.bytes_written),
            syncs: get(&self.syncs),
            open_errors: get(&self.open_errors),
            write_errors: get(&self.write_errors),
            samples_dropped: get(&self.samples_dropped),
        }
    }

    fn add_delta(&self, before: WriteCounters, after: WriteCounters) {
        let add = |c: &AtomicU64, v: u64| {
            if v > 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.flushes, after.flushes - before.flushes);
        add(&self.write_calls, after.write_calls - before.write_calls);
        add(
            &self.bytes_written,
            after.bytes_written - before.bytes_written,
        );
        add(&self.syncs, after.syncs - before.syncs);
        add(
            &self.samples_dropped,
            after.samples_dropped - before.samples_dropped,
        );
    }
}

/// The writer has shut down; nothing more can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the WAV writer has shut down")]
pub struct WriterClosed;

enum ShardMessage {
    Command(WriterCommand),
    Shutdown,
}

struct Shard {
    tx: mpsc::Sender<ShardMessage>,
    thread: std::thread::Thread,
}

impl Shard {
    fn send(&self, message: ShardMessage) -> Result<(), WriterClosed> {
        // Only commands someone waits on wake the thread; appends wait for its next drain.
        let wake = !matches!(
            message,
            ShardMessage::Command(WriterCommand::Append { .. } | WriterCommand::Open { .. })
        );
        self.tx.send(message).map_err(|_| WriterClosed)?;
        if wake {
            self.thread.unpark();
        }
        Ok(())
    }
}

/// A cheap, cloneable way for media tasks to reach the writer threads.
#[derive(Clone)]
pub struct WriterHandle {
    shards: Arc<[Shard]>,
    next_id: Arc<AtomicU64>,
    stats: Arc<StatsCounters>,
}

impl WriterHandle {
    /// Routes a command to the thread that owns its file. Never blocks; an `Append` makes no
    /// syscall.
    pub fn send(&self, command: WriterCommand) -> Result<(), WriterClosed> {
        let n = self.shards.len() as u64;
        let shard = usize::try_from(command.file_id().0 % n).map_err(|_| WriterClosed)?;
        self.shards
            .get(shard)
            .ok_or(WriterClosed)?
            .send(ShardMessage::Command(command))
    }

    /// Allocates an id and opens `path`; see [`WriterCommand::Open`] for failures.
    pub fn open(&self, path: PathBuf, format: WavFormat) -> Result<FileId, WriterClosed> {
        let file_id = FileId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.open_as(file_id, path, format)
    }

    /// Opens `path` on the thread that owns `beside`: what [`WriterCommand::Interleave`]
    /// needs of a stereo file and its two sources.
    pub fn open_beside(
        &self,
        beside: FileId,
        path: PathBuf,
        format: WavFormat,
    ) -> Result<FileId, WriterClosed> {
        let n = self.shards.len() as u64;
        let id = self.next_id.fetch_add(n, Ordering::Relaxed);
        // The next id of `beside`'s residue at or after `id`: unique, since `id..id + n`
        // was taken whole from the counter.
        let file_id = FileId(id + (beside.0 % n + n - id % n) % n);
        self.open_as(file_id, path, format)
    }

    fn open_as(
        &self,
        file_id: FileId,
        path: PathBuf,
        format: WavFormat,
    ) -> Result<FileId, WriterClosed> {
        self.send(WriterCommand::Open {
            file_id,
            path,
            format,
        })?;
        Ok(file_id)
    }

    pub fn append(&self, file_id: FileId, samples: Vec<i16>) -> Result<(), WriterClosed> {
        self.send(WriterCommand::Append { file_id, samples })
    }

    /// Feeds the stereo file `file_id` from `left` and `right` (all opened beside each
    /// other); see [`WriterCommand::Interleave`].
    pub fn interleave(
        &self,
        file_id: FileId,
        left: FileId,
        right: FileId,
        interleaver: StereoInterleaver,
    ) -> Result<(), WriterClosed> {
        self.send(WriterCommand::Interleave {
            file_id,
            left,
            right,
            interleaver: Box::new(interleaver),
        })
    }

    /// Flushes the file; the receiver resolves once it is valid up to this point.
    pub fn flush(
        &self,
        file_id: FileId,
    ) -> Result<oneshot::Receiver<io::Result<()>>, WriterClosed> {
        let (tx, rx) = oneshot::channel();
        self.send(WriterCommand::Flush {
            file_id,
            reply: Some(tx),
        })?;
        Ok(rx)
    }

    /// Finalizes the file; the receiver resolves with its final length.
    pub fn close(
        &self,
        file_id: FileId,
    ) -> Result<oneshot::Receiver<io::Result<WavSummary>>, WriterClosed> {
        let (reply, rx) = oneshot::channel();
        self.send(WriterCommand::Close { file_id, reply })?;
        Ok(rx)
    }

    pub fn stats(&self) -> WriterStats {
        self.stats.snapshot()
    }
}

/// Owns the writer threads. `shutdown` finalizes every file still open.
pub struct WavWriterPool {
    handle: WriterHandle,
    threads: Vec<JoinHandle<()>>,
}

impl WavWriterPool {
    pub fn start(config: WriterConfig) -> io::Result<Self> {
        let threads = config.threads.max(1);
        let stats = Arc::new(StatsCounters::default());
        let mut senders = Vec::with_capacity(threads);
        let mut joins = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = mpsc::channel();
            let core = ShardCore::new(config.clone(), stats.clone());
            let join = std::thread::Builder::new()
                .name(format!("wav-writer-{i}"))
                .spawn(move || run_shard(rx, core))?;
            senders.push(Shard {
                tx,
                thread: join.thread().clone(),
            });
            joins.push(join);
        }
        Ok(WavWriterPool {
            handle: WriterHandle {
                shards: senders.into(),
                next_id: Arc::new(AtomicU64::new(1)),
                stats,
            },
            threads: joins,
        })
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    pub fn stats(&self) -> WriterStats {
        self.handle.stats()
    }

    /// Finalizes all open files and waits for the threads to finish. Blocking: call it from
    /// a blocking context (e.g. `spawn_blocking`) during shutdown.
    pub fn shutdown(mut self) {
        for join in self.signal_shutdown() {
            if join.join().is_err() {
                tracing::error!("a WAV writer thread panicked");
            }
        }
    }

    fn signal_shutdown(&mut self) -> Vec<JoinHandle<()>> {
        for shard in self.handle.shards.iter() {
            // A thread that already exited has nothing left to finalize.
            let _ = shard.send(ShardMessage::Shutdown);
        }
        std::mem::take(&mut self.threads)
    }
}

impl Drop for WavWriterPool {
    /// Without an explicit `shutdown` the threads still finalize their files, unawaited.
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

fn run_shard(rx: mpsc::Receiver<ShardMessage>, mut core: ShardCore) {
    // Bounds one drain so that flush deadlines are served even under a flood of appends.
    const MAX_DRAIN: usize = 8192;
    let drain_interval = core.config.drain_interval;
    'run: loop {
        let now = Instant::now();
        let mut drained = 0;
        while drained < MAX_DRAIN {
            match rx.try_recv() {
                Ok(ShardMessage::Command(command)) => core.handle(command, now),
                Ok(ShardMessage::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => break 'run,
                Err(mpsc::TryRecvError::Empty) => break,
            }
            drained += 1;
        }
        let now = Instant::now();
        core.flush_due(now);
        if drained < MAX_DRAIN {
            let until_flush = core
                .next_deadline()
                .map_or(drain_interval, |d| d.saturating_duration_since(now));
            std::thread::park_timeout(until_flush.min(drain_interval));
        }
    }
    core.close_all();
}

struct OpenFile {
    writer: WavStreamWriter,
    generation: u64,
    last_sync: Instant,
    path: PathBuf,
    /// Set while writes fail, so a full disk logs once per file rather than every flush.
    failing: bool,
    /// A stereo file's interleaver, fed by its two mono files.
    interleaver: Option<Box<StereoInterleaver>>,
}

#[derive(Debug, Clone, Copy)]
enum Channel {
    Left,
    Right,
}

enum FileSlot {
    Open(OpenFile),
    /// Kept so that `Close` can report why there is no file.
    Failed(io::ErrorKind, String),
}

/// One writer thread's state, driven with explicit time so tests can run it on a virtual
/// clock.
struct ShardCore {
    config: WriterConfig,
    stats: Arc<StatsCounters>,
    files: HashMap<FileId, FileSlot>,
    /// Flush deadlines in time order: every entry is pushed as `now + flush_interval` with a
    /// non-decreasing `now`. Entries of closed files are skipped by generation.
    schedule: VecDeque<(Instant, FileId, u64)>,
    next_generation: u64,
    /// Interleaved frames on their way into a stereo file.
    scratch: Vec<i16>,
    /// Mono files whose appends also go to a stereo file, as its left or right channel
    /// (also when the mono file itself could not be created).
    feeds: HashMap<FileId, (FileId, Channel)>,
}

impl ShardCore {
    fn new(mut config: WriterConfig, stats: Arc<StatsCounters>) -> Self {
        // A zero interval would reschedule a file at `now` and never leave `flush_due`.
        config.flush_interval = config.flush_interval.max(Duration::from_millis(1));
        config.drain_interval = config.drain_interval.max(Duration::from_millis(1));
        ShardCore {
            config,
            stats,
            files: HashMap::new(),
            schedule: VecDeque::new(),
            next_generation: 0,
            scratch: Vec::new(),
            feeds: HashMap::new(),
        }
    }

    fn handle(&mut self, command: WriterCommand, now: Instant) {
        match command {
            WriterCommand::Open {
                file_id,
                path,
                format,
            } => self.open(file_id, path, format, now),
            WriterCommand::Append { file_id, samples } => self.append(file_id, &samples, now),
            WriterCommand::Interleave {
                file_id,
                left,
                right,
                interleaver,
            } => self.interleave(file_id, left, right, interleaver),
            WriterCommand::Flush { file_id, reply } => {
                let result = match self.files.get_mut(&file_id) {
                    Some(FileSlot::Open(file)) => {
                        flush_file(&self.config, &self.stats, file, now, false)
                    }
                    Some(FileSlot::Failed(kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
                    None => Err(unknown_file(file_id)),
                };
                if let Some(reply) = reply {
                    // The asker may have stopped waiting; the flush happened regardless.
                    let _ = reply.send(result);
                }
            }
            WriterCommand::Close { file_id, reply } => {
                let result = self.close(file_id);
                // A caller that dropped its receiver no longer needs the summary.
                let _ = reply.send(result);
            }
        }
    }

    fn open(&mut self, file_id: FileId, path: PathBuf, format: WavFormat, now: Instant) {
        if self.files.contains_key(&file_id) {
            tracing::error!(file_id = file_id.0, "WAV file id opened twice; ignored");
            self.stats.open_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // One interval of audio plus slack for jitter, so a steady stream never reallocates.
        let per_interval = f64::from(format.sample_rate)
            * f64::from(format.block_align())
            * self.config.flush_interval.as_secs_f64();
        let reserve = ((per_interval * 1.25) as usize).min(self.config.max_buffer_bytes);
        match WavStreamWriter::create_with_buffer(&path, format, reserve) {
            Ok(writer) => {
                self.stats.write_calls.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_written
                    .fetch_add(super::wav::HEADER_LEN, Ordering::Relaxed);
                self.stats.files_open.fetch_add(1, Ordering::Relaxed);
                let generation = self.next_generation;
                self.next_generation += 1;
                self.files.insert(
                    file_id,
                    FileSlot::Open(OpenFile {
                        writer,
                        generation,
                        last_sync: now,
                        path,
                        failing: false,
                        interleaver: None,
                    }),
                );
                self.schedule
                    .push_back((now + self.config.flush_interval, file_id, generation));
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot create WAV file");
                self.stats.open_errors.fetch_add(1, Ordering::Relaxed);
                self.files
                    .insert(file_id, FileSlot::Failed(e.kind(), e.to_string()));
            }
        }
    }

    fn append(&mut self, file_id: FileId, samples: &[i16], now: Instant) {
        match self.files.get_mut(&file_id) {
            Some(FileSlot::Open(file)) => append_to(&self.config, &self.stats, file, samples, now),
            Some(FileSlot::Failed(..)) | None => {
                self.stats
                    .samples_dropped
                    .fetch_add(samples.len() as u64, Ordering::Relaxed);
            }
        }
        // A mono file that could not be created still feeds its stereo file: the other
        // copy of its audio.
        if let Some(&(stereo, channel)) = self.feeds.get(&file_id) {
            self.feed_stereo(stereo, channel, samples, now);
        }
    }

    fn feed_stereo(&mut self, stereo: FileId, channel: Channel, samples: &[i16], now: Instant) {
        let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo) else {
            return;
        };
        let Some(interleaver) = file.interleaver.as_mut() else {
            return;
        };
        let mut frames = std::mem::take(&mut self.scratch);
        match channel {
            Channel::Left => interleaver.push_left(samples, &mut frames),
            Channel::Right => interleaver.push_right(samples, &mut frames),
        };
        if !frames.is_empty() {
            append_to(&self.config, &self.stats, file, &frames, now);
        }
        frames.clear();
        self.scratch = frames;
    }

    fn interleave(
        &mut self,
        stereo: FileId,
        left: FileId,
        right: FileId,
        interleaver: Box<StereoInterleaver>,
    ) {
        if let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo) {
            file.interleaver = Some(interleaver);
        }
        for (source, channel) in [(left, Channel::Left), (right, Channel::Right)] {
            if self.files.contains_key(&source) {
                self.feeds.insert(source, (stereo, channel));
            } else {
                tracing::error!(
                    file_id = source.0,
                    "stereo source is not a file of this writer thread"
                );
            }
        }
    }

    fn close(&mut self, file_id: FileId) -> io::Result<WavSummary> {
        self.feeds.remove(&file_id);
        match self.files.remove(&file_id) {
            Some(FileSlot::Open(mut file)) => {
                self.stats.files_open.fetch_sub(1, Ordering::Relaxed);
                if let Some(interleaver) = file.interleaver.take() {
                    let mut frames = Vec::new();
                    interleaver.finish(&mut frames);
                    let before = file.writer.counters();
                    file.writer.append(&frames);
                    self.stats.add_delta(before, file.writer.counters());
                }
                let before = file.writer.counters();
                let result = file.writer.finalize_in_place();
                self.stats.add_delta(before, file.writer.counters());
                if result.is_err() {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                }
                result
            }
            Some(FileSlot::Failed(kind, msg)) => Err(io::Error::new(kind, msg)),
            None => Err(unknown_file(file_id)),
        }
    }

    /// Flushes every file whose deadline has passed and schedules its next one.
    fn flush_due(&mut self, now: Instant) {
        while let Some(&(deadline, file_id, generation)) = self.schedule.front() {
            if deadline > now {
                break;
            }
            self.schedule.pop_front();
            if let Some(FileSlot::Open(file)) = self.files.get_mut(&file_id) {
                if file.generation != generation {
                    continue;
                }
                let _ = flush_file(&self.config, &self.stats, file, now, true);
                self.schedule
                    .push_back((now + self.config.flush_interval, file_id, generation));
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.schedule.front().map(|&(deadline, ..)| deadline)
    }

    /// Finalizes everything still open (shutdown).
    fn close_all(&mut self) {
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            if let Err(e) = self.close(id) {
                tracing::error!(file_id = id.0, error = %e, "finalizing WAV file at shutdown");
            }
        }
    }
}

fn append_to(
    config: &WriterConfig,
    stats: &StatsCounters,
    file: &mut OpenFile,
    samples: &[i16],
    now: Instant,
) {
    let before = file.writer.counters();
    file.writer.append(samples);
    stats.add_delta(before, file.writer.counters());
    if file.writer.buffered_bytes() >= config.max_buffer_bytes {
        // Errors are logged and counted inside; the audio is already accounted.
        let _ = flush_file(config, stats, file, now, false);
    }
}

fn unknown_file(file_id: FileId) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no open WAV file with id {}", file_id.0),
    )
}

/// Flushes one file and, when due, syncs it; counts and logs what happened.
fn flush_file(
    config: &WriterConfig,
    stats: &StatsCounters,
    file: &mut OpenFile,
    now: Instant,
    may_sync: bool,
) -> io::Result<()> {
    let before = file.writer.counters();
    let mut result = file.writer.flush();
    if result.is_ok()
        && may_sync
        && let Some(every) = config.sync_interval
        && now.saturating_duration_since(file.last_sync) >= every
    {
        file.last_sync = now;
        result = file.writer.sync_data();
    }
    stats.add_delta(before, file.writer.counters());
    match &result {
        Err(e) => {
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
            if !file.failing {
                tracing::error!(path = %file.path.display(), error = %e, "writing WAV file");
            }
            file.failing = true;
        }
        Ok(()) if file.failing => {
            tracing::info!(path = %file.path.display(), "writing WAV file works again");
            file.failing = false;
        }
        Ok(()) => {}
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
        (0..n)
            .map(|i| (8000.0 * (w * i as f64).sin()) as i16)
            .collect()
    }

    /// Frequency from the span between the first and last rising zero crossings.
    fn frequency(samples: &[i16], rate: u32) -> f64 {
        let rising: Vec<usize> = (1..samples.len())
            .filter(|&i| samples[i - 1] < 0 && samples[i] >= 0)
            .collect();
        let (Some(first), Some(last)) = (rising.first(), rising.last()) else {
            return 0.0;
        };
        (rising.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
    }

    fn read(path: &Path) -> Vec<i16> {
        let mut r = hound::WavReader::open(path).unwrap();
        r.samples::<i16>().map(|s| s.unwrap()).collect()
    }

    fn config(flush_ms: u64) -> WriterConfig {
        WriterConfig {
            flush_interval: Duration::from_millis(flush_ms),
            ..WriterConfig::default()
        }
    }

    #[test]
    fn ten_seconds_of_tone_through_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let pool = WavWriterPool::start(config(100)).unwrap();
        let h = pool.handle();
        let id = h.open(path.clone(), WavFormat::mono(8000)).unwrap();
        let samples = tone(440.0, 8000, 80_000);
        for packet in samples.chunks(160) {
            h.append(id, packet.to_vec()).unwrap();
        }
        let summary = h.close(id).unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(summary.samples, 80_000);
        assert!((summary.duration_seconds - 10.0).abs() < 1e-9);
        let back = read(&path);
        assert_eq!(back, samples);
        let f = frequency(&back, 8000);
        assert!((f - 440.0).abs() < 1.0, "measured {f} Hz");
        assert_eq!(pool.stats().files_open, 0);
        pool.shutdown();
    }

    /// `right.wav` and `stereo.wav` (8 kHz) opened beside `left`, the stereo file fed by both.
    fn stereo_beside(h: &WriterHandle, left: FileId, dir: &Path) -> (FileId, FileId) {
        let right = h
            .open_beside(left, dir.join("right.wav"), WavFormat::mono(8000))
            .unwrap();
        let stereo = h
            .open_beside(left, dir.join("stereo.wav"), WavFormat::stereo(8000))
            .unwrap();
        let interleaver = StereoInterleaver::new(8000, 8000).unwrap();
        h.interleave(stereo, left, right, interleaver).unwrap();
        (right, stereo)
    }

    #[test]
    fn a_stereo_file_is_interleaved_on_the_thread_of_its_two_sources() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WavWriterPool::start(WriterConfig {
            threads: 3,
            ..config(100)
        })
        .unwrap();
        let h = pool.handle();
        let open = |name: &str| {
            h.open(dir.path().join(name), WavFormat::mono(8000))
                .unwrap()
        };
        // Other files move the id counter, so `beside` has to find the residue.
        let _ = open("other.wav");
        let left = open("left.wav");
        let _ = open("other2.wav");
        let (right, stereo) = stereo_beside(&h, left, dir.path());
        assert_eq!((right.0 % 3, stereo.0 % 3), (left.0 % 3, left.0 % 3));
        assert!(left != right && right != stereo);
        let l = tone(440.0, 8000, 8000);
        let r = tone(1000.0, 8000, 7000);
        // Blocks of unequal size and timing on each side, as two workers' ticks are.
        for (a, b) in l.chunks(800).zip(r.chunks(700)) {
            h.append(left, a.to_vec()).unwrap();
            h.append(right, b.to_vec()).unwrap();
        }
        for id in [left, right] {
            h.close(id).unwrap().blocking_recv().unwrap().unwrap();
        }
        let summary = h.close(stereo).unwrap().blocking_recv().unwrap().unwrap();
        assert_eq!(
            summary.samples, 8000,
            "the shorter side padded to the longer"
        );
        let frames = read(&dir.path().join("stereo.wav"));
        let (even, odd): (Vec<i16>, Vec<i16>) = frames.chunks(2).map(|f| (f[0], f[1])).unzip();
        assert_eq!(even, l);
        assert_eq!(odd[..7000], r[..]);
        assert!(odd[7000..].iter().all(|&x| x == 0));
        assert_eq!(read(&dir.path().join("left.wav")), l);
        pool.shutdown();
    }

    #[test]
    fn a_mono_file_that_cannot_be_created_still_feeds_the_stereo_file() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WavWriterPool::start(config(100)).unwrap();
        let h = pool.handle();
        let left = h
            .open(dir.path().join("missing/left.wav"), WavFormat::mono(8000))
            .unwrap();
        let (right, stereo) = stereo_beside(&h, left, dir.path());
        let l = tone(440.0, 8000, 1600);
        h.append(left, l.clone()).unwrap();
        h.append(right, vec![0; 1600]).unwrap();
        let closed = h.close(left).unwrap().blocking_recv().unwrap();
        assert!(closed.is_err(), "the left file was never created");
        h.close(right).unwrap().blocking_recv().unwrap().unwrap();
        h.close(stereo).unwrap().blocking_recv().unwrap().unwrap();
        let frames = read(&dir.path().join("stereo.wav"));
        let left_channel: Vec<i16> = frames.iter().step_by(2).copied().collect();
        assert_eq!(left_channel, l);
        pool.shutdown();
    }

    #[test]
    fn file_is_valid_after_every_flush_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let pool = WavWriterPool::start(config(60_000)).unwrap();
        let h = pool.handle();
        let id = h.open(path.clone(), WavFormat::mono(8000)).unwrap();
        let samples = tone(440.0, 8000, 8000);
        for (k, second) in samples.chunks(1600).enumerate() {
            for packet in second.chunks(160) {
                h.append(id, packet.to_vec()).unwrap();
            }
            h.flush(id).unwrap().blocking_recv().unwrap().unwrap();
            assert_eq!(read(&path), samples[..(k + 1) * 1600]);
        }
        pool.shutdown();
        // Shutdown finalized the file it still held open.
        assert_eq!(read(&path), samples);
    }

    #[test]
    fn failed_open_and_unknown_file_report_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WavWriterPool::start(config(1000)).unwrap();
        let h = pool.handle();
        let id = h
            .open(dir.path().join("missing/a.wav"), WavFormat::mono(8000))
            .unwrap();
        h.append(id, vec![0; 160]).unwrap();
        let e = h.close(id).unwrap().blocking_recv().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = h.close(FileId(999)).unwrap().blocking_recv().unwrap();
        assert!(e.is_err());
        let stats = pool.stats();
        assert_eq!((stats.open_errors, stats.samples_dropped), (1, 160));
        pool.shutdown();
        assert_eq!(h.append(id, vec![1]), Err(WriterClosed));
    }

    /// 2,000 open files, 50 appends of 160 samples per file per second, driven on a virtual
    /// clock: every file is flushed once per interval, each flush being two writes.
    #[test]
    fn two_thousand_files_flush_once_per_interval() {
        const FILES: u64 = 2000;
        const SECONDS: u64 = 3;
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(StatsCounters::default());
        let mut core = ShardCore::new(config(1000), stats.clone());
        let start = Instant::now();
        for i in 0..FILES {
            let path = dir.path().join(format!("{i}.wav"));
            core.handle(
                WriterCommand::Open {
                    file_id: FileId(i),
                    path,
                    format: WavFormat::mono(8000),
                },
                start,
            );
        }
        assert_eq!(
            stats.snapshot().open_errors,
            0,
            "raise `ulimit -n` above 2100"
        );
        let packet = vec![100i16; 160];
        for tick in 1..=SECONDS * 50 {
            let now = start + Duration::from_millis(tick * 20);
            for i in 0..FILES {
                let samples = packet.clone();
                core.handle(
                    WriterCommand::Append {
                        file_id: FileId(i),
                        samples,
                    },
                    now,
                );
            }
            core.flush_due(now);
        }
        let s = stats.snapshot();
        assert_eq!(s.flushes, FILES * SECONDS);
        assert_eq!(
            s.write_calls,
            FILES + 2 * s.flushes,
            "header at open + 2 per flush"
        );
        assert_eq!(
            s.bytes_written,
            FILES * (44 + SECONDS * 16_000 + SECONDS * 44)
        );
        assert_eq!(
            core.next_deadline(),
            Some(start + Duration::from_secs(SECONDS + 1))
        );
        core.close_all();
        assert_eq!(
            read(&dir.path().join("1999.wav")).len(),
            SECONDS as usize * 8000
        );
        assert_eq!(stats.snapshot().files_open, 0);
    }

    #[test]
    fn oversized_buffer_is_flushed_early_and_sync_follows_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(StatsCounters::default());
        let cfg = WriterConfig {
            max_buffer_bytes: 3200,
            sync_interval: Some(Duration::from_secs(2)),
            ..config(1000)
        };
        let mut core = ShardCore::new(cfg, stats.clone());
        let t0 = Instant::now();
        let open = |file_id, name: &str| WriterCommand::Open {
            file_id,
            path: dir.path().join(name),
            format: WavFormat::mono(8000),
        };
        core.handle(open(FileId(1), "a.wav"), t0);
        for _ in 0..10 {
            core.handle(
                WriterCommand::Append {
                    file_id: FileId(1),
                    samples: vec![1; 160],
                },
                t0,
            );
        }
        assert_eq!(
            stats.snapshot().flushes,
            1,
            "1600 samples = 3200 bytes: flushed at once"
        );
        for s in 1..=4 {
            let now = t0 + Duration::from_secs(s);
            core.handle(
                WriterCommand::Append {
                    file_id: FileId(1),
                    samples: vec![1; 160],
                },
                now,
            );
            core.flush_due(now);
        }
        assert_eq!((stats.snapshot().flushes, stats.snapshot().syncs), (5, 2));
        // A file id opened twice keeps the first file.
        core.handle(open(FileId(1), "b.wav"), t0);
        assert_eq!(stats.snapshot().open_errors, 1);
    }
}
