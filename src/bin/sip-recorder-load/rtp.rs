//! RTP for every call, paced at 20 ms by a few tasks. Each task owns a slab of streams and
//! walks all of them once per tick, sending one precomputed packet per active stream with a
//! non-blocking send: no task, timer or encoding per call, so one generator drives
//! thousands of streams.

use crate::tone::{TS_PER_FRAME, ToneFrames};
use crate::transport::bind_udp;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

pub const PTIME: Duration = Duration::from_millis(20);
const RTP_HEADER: usize = 12;

/// What a stream sends and where.
pub struct StreamSpec {
    pub dest: SocketAddr,
    pub payload_type: u8,
    pub ssrc: u32,
    /// Which of the task's sockets sends it (stream index of the call).
    pub socket: usize,
    pub tone: Arc<ToneFrames>,
}

enum Command {
    Add(u64, StreamSpec),
    /// Stop sending; the reply says the last packet has left.
    Pause(u64, oneshot::Sender<()>),
    Resume(u64),
    /// Stop for good; the reply carries the packets sent.
    Remove(u64, oneshot::Sender<u64>),
}

struct Stream {
    key: u64,
    spec: StreamSpec,
    seq: u16,
    ts: u32,
    sent: u64,
    /// Position in the tone, advanced every tick so the tone runs on through pauses.
    frame: u64,
    paused: bool,
}

/// Counters of one pacing task, read at the end of the run.
#[derive(Default)]
pub struct PacerStats {
    pub ticks: AtomicU64,
    /// Largest delay of a tick's start behind its schedule, microseconds.
    pub max_late_us: AtomicU64,
    /// Ticks whose sending pass ended after the next tick was due.
    pub overruns: AtomicU64,
    /// Sends that found the socket buffer full and had to wait.
    pub blocked: AtomicU64,
    /// Sends that failed (the packet is not counted as sent).
    pub errors: AtomicU64,
}

/// Handle to the pacing tasks.
pub struct Pacer {
    tasks: Vec<mpsc::UnboundedSender<Command>>,
    /// Local RTP port of socket `i` of each task, for the SDP offer.
    ports: Vec<Vec<u16>>,
    pub stats: Vec<Arc<PacerStats>>,
    next_key: AtomicU64,
}

/// The streams of one call, all on one task.
pub struct CallStreams {
    task: usize,
    keys: Vec<u64>,
}

impl Pacer {
    /// Starts `tasks` pacing tasks with `sockets` UDP sockets each.
    pub fn start(tasks: usize, sockets: usize, local_ip: IpAddr) -> std::io::Result<Pacer> {
        let mut pacer = Pacer {
            tasks: Vec::new(),
            ports: Vec::new(),
            stats: Vec::new(),
            next_key: AtomicU64::new(1),
        };
        for _ in 0..tasks {
            let socks = (0..sockets)
                .map(|_| bind_udp(SocketAddr::new(local_ip, 0)))
                .collect::<std::io::Result<Vec<_>>>()?;
            let ports = socks
                .iter()
                .map(|s| s.local_addr().map(|a| a.port()))
                .collect::<std::io::Result<Vec<_>>>()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let stats = Arc::new(PacerStats::default());
            tokio::spawn(run(socks, rx, stats.clone()));
            pacer.tasks.push(tx);
            pacer.ports.push(ports);
            pacer.stats.push(stats);
        }
        Ok(pacer)
    }

    /// The task a call's streams go to, and the ports they are sent from.
    pub fn assign(&self, call_index: u64) -> (usize, &[u16]) {
        let task = (call_index % self.tasks.len() as u64) as usize;
        (task, &self.ports[task])
    }

    /// Starts sending `specs` on `task` from the next tick.
    pub fn add(&self, task: usize, specs: Vec<StreamSpec>) -> CallStreams {
        let keys = specs
            .into_iter()
            .map(|spec| {
                let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                let _ = self.tasks[task].send(Command::Add(key, spec));
                key
            })
            .collect();
        CallStreams { task, keys }
    }

    /// Stops the streams' packets; returns once no further packet will leave.
    pub async fn pause(&self, streams: &CallStreams) {
        // All sent before any is awaited, so they take effect on the same tick.
        let acks: Vec<_> = streams
            .keys
            .iter()
            .map(|&key| {
                let (tx, rx) = oneshot::channel();
                let _ = self.tasks[streams.task].send(Command::Pause(key, tx));
                rx
            })
            .collect();
        for rx in acks {
            let _ = rx.await;
        }
    }

    pub fn resume(&self, streams: &CallStreams) {
        for &key in &streams.keys {
            let _ = self.tasks[streams.task].send(Command::Resume(key));
        }
    }

    /// Removes the streams; returns packets sent per stream once the last has left.
    pub async fn remove(&self, streams: CallStreams) -> Vec<u64> {
        let acks: Vec<_> = streams
            .keys
            .iter()
            .map(|&key| {
                let (tx, rx) = oneshot::channel();
                let _ = self.tasks[streams.task].send(Command::Remove(key, tx));
                rx
            })
            .collect();
        let mut out = Vec::with_capacity(acks.len());
        for rx in acks {
            out.push(rx.await.unwrap_or(0));
        }
        out
    }
}

fn packet(buf: &mut [u8], s: &Stream, marker: bool) -> usize {
    let payload = s.spec.tone.frame(s.frame);
    buf[0] = 0x80;
    buf[1] = (s.spec.payload_type & 0x7F) | if marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&s.seq.to_be_bytes());
    buf[4..8].copy_from_slice(&s.ts.to_be_bytes());
    buf[8..12].copy_from_slice(&s.spec.ssrc.to_be_bytes());
    buf[RTP_HEADER..RTP_HEADER + payload.len()].copy_from_slice(payload);
    RTP_HEADER + payload.len()
}

async fn run(
    socks: Vec<UdpSocket>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<PacerStats>,
) {
    let mut table = StreamTable::default();
    let mut buf = [0u8; 1500];
    let mut tick = tokio::time::interval(PTIME);
    // Burst: a late tick is caught up, so every stream sends one packet per 20 ms of its
    // life even when the machine stalls, and its recorded duration matches.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut closed = false;
    loop {
        let scheduled = tick.tick().await;
        let late = Instant::now().saturating_duration_since(scheduled);
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        stats
            .max_late_us
            .fetch_max(late.as_micros() as u64, Ordering::Relaxed);

        let mut acks = Acks::default();
        loop {
            match commands.try_recv() {
                Ok(command) => table.apply(command, &mut acks),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        // Acknowledged before this tick's sends: nothing more leaves for these streams.
        acks.send();
        if closed && table.streams.is_empty() {
            return;
        }

        for s in table.streams.iter_mut() {
            if !s.paused {
                send_packet(&socks, &mut buf, s, &stats).await;
            }
            // The media clock runs on through pauses and failed sends, as a real sender's.
            s.ts = s.ts.wrapping_add(TS_PER_FRAME);
            s.frame += 1;
        }
        if Instant::now() > scheduled + PTIME {
            stats.overruns.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The streams one pacer task sends, with each key's position for commands.
#[derive(Default)]
struct StreamTable {
    streams: Vec<Stream>,
    index: HashMap<u64, usize>,
}

/// Replies owed for this tick's commands, sent together once all are applied.
#[derive(Default)]
struct Acks {
    paused: Vec<oneshot::Sender<()>>,
    removed: Vec<(oneshot::Sender<u64>, u64)>,
}

impl Acks {
    fn send(self) {
        for ack in self.paused {
            let _ = ack.send(());
        }
        for (ack, sent) in self.removed {
            let _ = ack.send(sent);
        }
    }
}

impl StreamTable {
    fn apply(&mut self, command: Command, acks: &mut Acks) {
        match command {
            Command::Add(key, spec) => {
                self.index.insert(key, self.streams.len());
                self.streams.push(Stream {
                    key,
                    seq: rand::random(),
                    ts: rand::random(),
                    sent: 0,
                    frame: 0,
                    paused: false,
                    spec,
                });
            }
            Command::Pause(key, ack) => {
                if let Some(&i) = self.index.get(&key) {
                    self.streams[i].paused = true;
                }
                acks.paused.push(ack);
            }
            Command::Resume(key) => {
                if let Some(&i) = self.index.get(&key) {
                    self.streams[i].paused = false;
                }
            }
            Command::Remove(key, ack) => {
                let sent = self.remove(key).map_or(0, |s| s.sent);
                acks.removed.push((ack, sent));
            }
        }
    }

    /// Swap-removes the stream, re-indexing the one moved into its place.
    fn remove(&mut self, key: u64) -> Option<Stream> {
        let i = self.index.remove(&key)?;
        let s = self.streams.swap_remove(i);
        if let Some(moved) = self.streams.get(i) {
            self.index.insert(moved.key, i);
        }
        Some(s)
    }
}

/// Sends the stream's next packet; a full socket buffer is waited out, not dropped.
async fn send_packet(socks: &[UdpSocket], buf: &mut [u8], s: &mut Stream, stats: &PacerStats) {
    let len = packet(buf, s, s.sent == 0);
    let sock = &socks[s.spec.socket.min(socks.len() - 1)];
    let ok = match sock.try_send_to(&buf[..len], s.spec.dest) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            stats.blocked.fetch_add(1, Ordering::Relaxed);
            sock.send_to(&buf[..len], s.spec.dest).await.is_ok()
        }
        Err(_) => false,
    };
    if ok {
        s.sent += 1;
        s.seq = s.seq.wrapping_add(1);
    } else {
        stats.errors.fetch_add(1, Ordering::Relaxed);
    }
}
