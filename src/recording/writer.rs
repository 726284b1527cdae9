//! The batching writer the media tasks hand PCM to.
//!
//! A few dedicated OS threads (not tokio workers: file I/O blocks) each own a shard of the
//! open files, chosen by `file_id % threads`. Media tasks send [`WriterCommand`]s over an
//! unbounded channel, so sending never blocks a reactor thread; an appended block waits in
//! memory as it came (no copy, no buffer reserved per file) and each file is flushed once per
//! `flush_interval` (one data write + one header write, through one staging buffer per
//! thread), or earlier if what it holds passes `max_buffer_bytes`. Flush deadlines are per
//! file, counted from when it opened, so thousands of files spread their I/O over the interval
//! instead of all flushing on the same tick.
//!
//! The threads do not block on the channel: they sleep for `drain_interval`, then drain
//! everything queued and flush every file due before their next wake-up (so a flush comes
//! up to one drain interval early, never late). A receiver blocked on the channel
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
//! A stereo file is built when it flushes, from what its two mono files buffered
//! ([`stereo`]); [`StereoInterleaver`] (in `wav`, re-exported here) aligns their samples.

mod stereo;

pub use super::wav::StereoInterleaver;
use super::wav::{WavFormat, WavStreamWriter, WavSummary, WriteCounters};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use stereo::{Channel, StereoFeed};
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
    /// `samples` of the file's audio were shed while the writer was behind its bound
    /// ([`WriterHandle::append_or_shed`]): they become silence, so that what follows keeps
    /// its place on the recording's timeline, and are counted in the file's summary.
    Shed { file_id: FileId, samples: usize },
    /// From now on the stereo file `file_id` is built from `left` and `right` (mono files of
    /// the same thread): whenever one of the three flushes, all three do, the stereo file
    /// from the audio its sources buffered. Its `Close` finishes the interleaver, the
    /// shorter side padded with silence.
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
            | WriterCommand::Shed { file_id, .. }
            | WriterCommand::Interleave { file_id, .. }
            | WriterCommand::Flush { file_id, .. }
            | WriterCommand::Close { file_id, .. } => *file_id,
        }
    }
}

/// Default bound on unwritten audio: 1 GiB, about a minute of 1,000 8 kHz streams' audio.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 1 << 30;

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Writer threads; files are spread across them by id.
    pub threads: usize,
    /// Every file with buffered audio is flushed at least this often.
    pub flush_interval: Duration,
    /// How often a writer thread wakes to take queued appends and flush the files due
    /// before its next wake-up (at most this much early).
    pub drain_interval: Duration,
    /// `sync_data` a file at most this often while it is open (`None`: only at close).
    pub sync_interval: Option<Duration>,
    /// A file whose buffer passes this is flushed at once (bounds memory when audio arrives
    /// faster than real time, e.g. a backlog).
    pub max_buffer_bytes: usize,
    /// Audio the writer may hold unwritten, all files together, before new audio is shed
    /// (`recording.max_pending_audio_mib`): a disk that stalls costs the stalled stretch of
    /// audio, not the process its memory.
    pub max_pending_bytes: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            threads: 2,
            flush_interval: Duration::from_secs(1),
            drain_interval: Duration::from_millis(10),
            sync_interval: None,
            max_buffer_bytes: 256 * 1024,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
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
    /// Samples shed while the writer was behind its bound (counted when shed; each file
    /// gets them as silence once the writer catches up).
    pub samples_shed: u64,
    /// Audio bytes handed to the writer and not yet written: queued for a writer thread or
    /// held by a file until its flush. Grows while the disk stalls.
    pub pending_bytes: u64,
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
    samples_shed: AtomicU64,
    /// Set while appends are shed: an episode logs once when it starts and once when it
    /// ends, and ends only once the backlog is down to half the bound, so that a stream's
    /// audio does not flicker between blocks kept and blocks shed at the edge.
    shedding: AtomicBool,
    /// Signed: a stereo file's trailing partial frame is held before it was ever counted in.
    pending_bytes: AtomicI64,
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
            samples_shed: get(&self.samples_shed),
            pending_bytes: self.pending_bytes.load(Ordering::Relaxed).max(0) as u64,
        }
    }

    /// A file's held audio went from `before` to `after` bytes, of which `arrived` came in
    /// with the change (already counted as pending when it was sent).
    fn held_changed(&self, before: usize, after: usize, arrived: usize) {
        let delta = after as i64 - before as i64 - arrived as i64;
        if delta != 0 {
            self.pending_bytes.fetch_add(delta, Ordering::Relaxed);
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
            ShardMessage::Command(
                WriterCommand::Append { .. }
                    | WriterCommand::Shed { .. }
                    | WriterCommand::Open { .. }
            )
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
    max_pending_bytes: u64,
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
        self.open_as(self.new_file_id(), path, format)
    }

    /// An id no file has, for an `Open` sent later.
    pub fn new_file_id(&self) -> FileId {
        FileId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// An id no file has, on the thread that owns `beside`: what
    /// [`WriterCommand::Interleave`] needs of a stereo file and its two sources.
    pub fn new_file_id_beside(&self, beside: FileId) -> FileId {
        let n = self.shards.len() as u64;
        let id = self.next_id.fetch_add(n, Ordering::Relaxed);
        // The next id of `beside`'s residue at or after `id`: unique, since `id..id + n`
        // was taken whole from the counter.
        FileId(id + (beside.0 % n + n - id % n) % n)
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
        let bytes = std::mem::size_of_val(samples.as_slice()) as i64;
        let pending = &self.stats.pending_bytes;
        pending.fetch_add(bytes, Ordering::Relaxed);
        let sent = self.send(WriterCommand::Append { file_id, samples });
        if sent.is_err() {
            pending.fetch_sub(bytes, Ordering::Relaxed);
        }
        sent
    }

    /// Appends a copy of `pcm`, unless the audio waiting to be written would pass the
    /// writer's bound (once shedding, half the bound): then `pcm` is shed. `owed` is what
    /// the file had shed before; it is sent ahead of the next append that fits, to become
    /// silence in its place. Returns what is owed now (0 once sent).
    pub fn append_or_shed(
        &self,
        file_id: FileId,
        pcm: &[i16],
        owed: usize,
    ) -> Result<usize, WriterClosed> {
        let bytes = std::mem::size_of_val(pcm) as u64;
        let pending = self.stats.pending_bytes.load(Ordering::Relaxed).max(0) as u64;
        let bound = if self.stats.shedding.load(Ordering::Relaxed) {
            self.max_pending_bytes / 2
        } else {
            self.max_pending_bytes
        };
        if pending + bytes > bound {
            self.stats
                .samples_shed
                .fetch_add(pcm.len() as u64, Ordering::Relaxed);
            if !self.stats.shedding.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    pending_mib = pending >> 20,
                    "the WAV writer is too far behind the audio (recording.max_pending_audio_mib): new audio is replaced by silence until it catches up"
                );
            }
            return Ok(owed + pcm.len());
        }
        if self.stats.shedding.swap(false, Ordering::Relaxed) {
            tracing::warn!("the WAV writer caught up: audio is written again");
        }
        self.settle_shed(file_id, owed)?;
        self.append(file_id, pcm.to_vec())?;
        Ok(0)
    }

    /// Sends what `file_id` still owes of shed audio (before its `Close`).
    pub fn settle_shed(&self, file_id: FileId, owed: usize) -> Result<(), WriterClosed> {
        if owed == 0 {
            return Ok(());
        }
        self.send(WriterCommand::Shed {
            file_id,
            samples: owed,
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
                max_pending_bytes: config.max_pending_bytes,
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
        // Time as of the next wake-up: what falls due before it is done now. Deadlines are
        // all set from this horizon, so they stay in order.
        let horizon = Instant::now() + drain_interval;
        let mut drained = 0;
        while drained < MAX_DRAIN {
            match rx.try_recv() {
                Ok(ShardMessage::Command(command)) => core.handle(command, horizon),
                Ok(ShardMessage::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => break 'run,
                Err(mpsc::TryRecvError::Empty) => break,
            }
            drained += 1;
        }
        // Files due before the next wake-up are flushed now, up to one drain interval early:
        // the deadlines of thousands of files are spread over the flush interval, and waking
        // for each one cost a context switch per file and flush.
        core.flush_due(Instant::now() + drain_interval);
        if drained < MAX_DRAIN {
            std::thread::park_timeout(drain_interval);
        }
    }
    core.close_all();
}

/// What an append brings a file: audio, or silence for audio that was shed.
enum Block {
    Audio(Vec<i16>),
    Shed(usize),
}

impl Block {
    fn into_pcm(self) -> Vec<i16> {
        match self {
            Block::Audio(samples) => samples,
            Block::Shed(n) => vec![0; n],
        }
    }
}

struct OpenFile {
    writer: WavStreamWriter,
    generation: u64,
    last_sync: Instant,
    path: PathBuf,
    /// Set while writes fail, so a full disk logs once per file rather than every flush.
    failing: bool,
    /// What a stereo file is built from.
    stereo: Option<Box<StereoFeed>>,
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
    /// The bytes of a flush: the one write buffer of every file of this thread.
    staging: Vec<u8>,
    /// Mono files that are a stereo file's left or right channel (also when the mono file
    /// itself could not be created); the stereo file is open and has their feed.
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
            staging: Vec::new(),
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
            WriterCommand::Append { file_id, samples } => {
                let arrived = std::mem::size_of_val(samples.as_slice());
                self.append(file_id, Block::Audio(samples), arrived, now);
            }
            WriterCommand::Shed { file_id, samples } => self.shed(file_id, samples, now),
            WriterCommand::Interleave {
                file_id,
                left,
                right,
                interleaver,
            } => self.interleave(file_id, left, right, interleaver),
            WriterCommand::Flush { file_id, reply } => {
                if let Some(stereo) = self.group_of(file_id) {
                    self.flush_group(stereo, now, false);
                }
                let result = match self.files.get_mut(&file_id) {
                    Some(FileSlot::Open(file)) => {
                        let staging = &mut self.staging;
                        flush_file(&self.config, &self.stats, file, now, false, staging)
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
                let result = self.close(file_id, now);
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
        match WavStreamWriter::create(&path, format) {
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
                        stereo: None,
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

    /// Silence for shed audio, in blocks of at most half the flush threshold, written at
    /// once: it arrives when the writer has caught up, and held until the file's next flush
    /// a long stall's worth for every stream would push the backlog past the bound again.
    fn shed(&mut self, file_id: FileId, mut samples: usize, now: Instant) {
        let block = (self.config.max_buffer_bytes / 4).max(1);
        while samples > 0 {
            let n = samples.min(block);
            self.append(file_id, Block::Shed(n), 0, now);
            samples -= n;
        }
        self.flush_now(file_id, now);
    }

    /// Appends `samples` to the file; `arrived` of its bytes were counted pending when sent.
    fn append(&mut self, file_id: FileId, samples: Block, arrived: usize, now: Instant) {
        let feed = self.feeds.get(&file_id).copied();
        let full = match self.files.get_mut(&file_id) {
            Some(FileSlot::Open(file)) => {
                let before = file.writer.counters();
                let held = file.writer.buffered_bytes();
                match samples {
                    Block::Audio(samples) => file.writer.append_block(samples),
                    Block::Shed(n) => file.writer.append_shed(n),
                };
                self.stats.add_delta(before, file.writer.counters());
                let held_now = file.writer.buffered_bytes();
                self.stats.held_changed(held, held_now, arrived);
                held_now >= self.config.max_buffer_bytes
            }
            Some(FileSlot::Failed(..)) | None => {
                let samples = samples.into_pcm();
                self.stats.held_changed(0, 0, arrived);
                self.stats
                    .samples_dropped
                    .fetch_add(samples.len() as u64, Ordering::Relaxed);
                // A mono file that could not be created still feeds its stereo file: the
                // other copy of its audio.
                if let Some((stereo, channel)) = feed
                    && let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo)
                    && let Some(feed) = file.stereo.as_mut()
                {
                    feed.keep_orphaned(channel, &samples);
                }
                false
            }
        };
        if full {
            self.flush_now(file_id, now);
        }
    }

    /// Flushes the file now, with its stereo group if it has one. Errors are logged and
    /// counted inside; the audio is already accounted.
    fn flush_now(&mut self, file_id: FileId, now: Instant) {
        match self.feeds.get(&file_id).copied() {
            Some((stereo, _)) => self.flush_group(stereo, now, false),
            None => {
                if let Some(FileSlot::Open(file)) = self.files.get_mut(&file_id) {
                    let staging = &mut self.staging;
                    let _ = flush_file(&self.config, &self.stats, file, now, false, staging);
                }
            }
        }
    }

    /// The stereo file whose group `file_id` belongs to (itself, if it is that file).
    fn group_of(&self, file_id: FileId) -> Option<FileId> {
        let stereo = self
            .feeds
            .get(&file_id)
            .map_or(file_id, |&(stereo, _)| stereo);
        match self.files.get(&stereo) {
            Some(FileSlot::Open(file)) if file.stereo.is_some() => Some(stereo),
            _ => None,
        }
    }

    /// Flushes a stereo file and its sources together: what the sources buffered since the
    /// last flush is interleaved into the stereo file, then written to their own files.
    fn flush_group(&mut self, stereo: FileId, now: Instant, may_sync: bool) {
        let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo) else {
            return;
        };
        let Some(mut feed) = file.stereo.take() else {
            return;
        };
        let sources = feed.sources;
        let mut frames = std::mem::take(&mut self.scratch);
        let buffered = |source: Option<FileId>| match source.map(|id| self.files.get(&id)) {
            Some(Some(FileSlot::Open(mono))) => Some(mono.writer.buffered()),
            Some(_) => None,
            None => Some(&[][..]), // closed: nothing more comes from it
        };
        feed.interleave_sources(buffered(sources[0]), buffered(sources[1]), &mut frames);
        if let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo) {
            file.stereo = Some(feed);
            let staging = &mut self.staging;
            let _ = write_file(&self.config, &self.stats, file, now, may_sync, |w| {
                w.append_and_flush(&frames, staging)
            });
        }
        frames.clear();
        self.scratch = frames;
        for source in sources.into_iter().flatten() {
            if let Some(FileSlot::Open(mono)) = self.files.get_mut(&source) {
                let staging = &mut self.staging;
                let _ = flush_file(&self.config, &self.stats, mono, now, may_sync, staging);
            }
        }
        self.reschedule(
            [Some(stereo), sources[0], sources[1]].into_iter().flatten(),
            now,
        );
    }

    /// The next flush of each of `files` is one interval from `now`; earlier entries go
    /// stale.
    fn reschedule(&mut self, files: impl Iterator<Item = FileId>, now: Instant) {
        for file_id in files {
            if let Some(FileSlot::Open(file)) = self.files.get_mut(&file_id) {
                file.generation = self.next_generation;
                self.next_generation += 1;
                self.schedule.push_back((
                    now + self.config.flush_interval,
                    file_id,
                    file.generation,
                ));
            }
        }
    }

    fn interleave(
        &mut self,
        stereo: FileId,
        left: FileId,
        right: FileId,
        interleaver: Box<StereoInterleaver>,
    ) {
        let known = |id: FileId| self.files.contains_key(&id).then_some(id);
        let sources = [known(left), known(right)];
        let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo) else {
            tracing::error!(file_id = stereo.0, "no open stereo file to interleave into");
            return;
        };
        file.stereo = Some(Box::new(StereoFeed::new(*interleaver, sources)));
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

    fn close(&mut self, file_id: FileId, now: Instant) -> io::Result<WavSummary> {
        // The stereo file takes what its sources buffered before any of the three closes.
        if let Some(stereo) = self.group_of(file_id) {
            self.flush_group(stereo, now, false);
        }
        self.leave_group(file_id);
        match self.files.remove(&file_id) {
            Some(FileSlot::Open(mut file)) => {
                self.stats.files_open.fetch_sub(1, Ordering::Relaxed);
                // Whatever it still holds is written below or, a partial frame, dropped.
                self.stats.held_changed(file.writer.buffered_bytes(), 0, 0);
                if let Some(feed) = file.stereo.take() {
                    let mut frames = Vec::new();
                    feed.interleaver.finish(&mut frames);
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

    /// A closing file stops being part of its stereo group.
    fn leave_group(&mut self, file_id: FileId) {
        if let Some((stereo, channel)) = self.feeds.remove(&file_id)
            && let Some(FileSlot::Open(file)) = self.files.get_mut(&stereo)
            && let Some(feed) = file.stereo.as_mut()
        {
            feed.sources[channel as usize] = None;
        }
        if let Some(FileSlot::Open(file)) = self.files.get(&file_id)
            && let Some(feed) = &file.stereo
        {
            for source in feed.sources.into_iter().flatten() {
                self.feeds.remove(&source);
            }
        }
    }

    /// Flushes every file whose deadline has passed and schedules its next one.
    fn flush_due(&mut self, now: Instant) {
        while let Some(&(deadline, file_id, generation)) = self.schedule.front() {
            if deadline > now {
                break;
            }
            self.schedule.pop_front();
            let current = matches!(self.files.get(&file_id),
                Some(FileSlot::Open(file)) if file.generation == generation);
            if !current {
                continue;
            }
            if let Some(stereo) = self.group_of(file_id) {
                self.flush_group(stereo, now, true);
            } else if let Some(FileSlot::Open(file)) = self.files.get_mut(&file_id) {
                let staging = &mut self.staging;
                let _ = flush_file(&self.config, &self.stats, file, now, true, staging);
                self.schedule
                    .push_back((now + self.config.flush_interval, file_id, generation));
            }
        }
    }

    #[cfg(test)]
    fn next_deadline(&self) -> Option<Instant> {
        self.schedule.front().map(|&(deadline, ..)| deadline)
    }

    /// Finalizes everything still open (shutdown).
    fn close_all(&mut self) {
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        let now = Instant::now();
        for id in ids {
            if let Err(e) = self.close(id, now) {
                tracing::error!(file_id = id.0, error = %e, "finalizing WAV file at shutdown");
            }
        }
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
    staging: &mut Vec<u8>,
) -> io::Result<()> {
    write_file(config, stats, file, now, may_sync, |w| {
        w.flush_through(staging)
    })
}

/// Writes one file with `write` (a flush) and, when due, syncs it; counts and logs what
/// happened.
fn write_file(
    config: &WriterConfig,
    stats: &StatsCounters,
    file: &mut OpenFile,
    now: Instant,
    may_sync: bool,
    write: impl FnOnce(&mut WavStreamWriter) -> io::Result<()>,
) -> io::Result<()> {
    let before = file.writer.counters();
    let held = file.writer.buffered_bytes();
    let mut result = write(&mut file.writer);
    stats.held_changed(held, file.writer.buffered_bytes(), 0);
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
pub(crate) mod tests;
