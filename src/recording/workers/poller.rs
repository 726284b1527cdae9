//! One media worker thread: its poller, its streams, the reads and the tick.

use super::{Command, StreamId, WorkerQueue, WorkerStartError};
use crate::recording::stream::{
    MediaStream, POLL_INTERVAL, StreamBlock, StreamControl, StreamReceiver,
};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The waker's token; stream tokens are `slot << 1 | (0 = RTP, 1 = RTCP)`.
const WAKER: u64 = u64::MAX;
/// Rounds of one datagram per ready socket taken back to back (a backlog after a stall)
/// before ticks and commands get their turn; the rest follows right after them.
const MAX_ROUNDS: usize = 64;
/// Datagrams read from a socket when its stream stops: what arrived before the BYE.
const STOP_DRAIN_LIMIT: usize = 1024;
/// Largest datagram kept whole (an RTP packet over Ethernet fits with room).
const DATAGRAM_MAX: usize = 2048;
/// Readiness events taken per wait.
const EVENTS_CAPACITY: usize = 1024;
/// Pause after a round that read datagrams, before waiting again. A wake-up (epoll_wait,
/// context switch) costs more than reading a datagram; at thousands of streams this lets
/// dozens of datagrams gather per wake-up instead of one. Arrival times are then up to this
/// much late: inside the 60 ms reorder window, and a fraction of a millisecond of jitter.
/// An idle worker never pauses: it blocks in the poller until a datagram or the tick.
const BUSY_PAUSE: Duration = Duration::from_millis(1);

/// Creates the worker's poller, waker and queue and starts its thread.
pub(super) fn spawn(worker: usize) -> Result<(Arc<WorkerQueue>, JoinHandle<()>), WorkerStartError> {
    let poller_error = |e: Errno| WorkerStartError::Poller {
        worker,
        source: e.into(),
    };
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(poller_error)?;
    let waker = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
        .map_err(poller_error)?;
    epoll
        .add(&waker, EpollEvent::new(EpollFlags::EPOLLIN, WAKER))
        .map_err(poller_error)?;
    let waker = Arc::new(waker);
    let (commands, queue_rx) = std_mpsc::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let queue = Arc::new(WorkerQueue {
        commands,
        waker: waker.clone(),
        load: load.clone(),
    });
    let mut thread = Worker {
        worker,
        epoll,
        waker,
        events: vec![EpollEvent::empty(); EVENTS_CAPACITY],
        commands: queue_rx,
        streams: Streams::new(load),
    };
    let handle = std::thread::Builder::new()
        .name(format!("media-worker-{worker}"))
        .spawn(move || thread.run())
        .map_err(|source| WorkerStartError::Thread { worker, source })?;
    Ok((queue, handle))
}

/// The poller is level-triggered: a socket is reported while it holds a datagram, so one
/// read per report is enough and no read ends in `EAGAIN` (half the receive syscalls of
/// draining each socket until it would block).
struct Worker {
    worker: usize,
    epoll: Epoll,
    waker: Arc<EventFd>,
    events: Vec<EpollEvent>,
    commands: std_mpsc::Receiver<Command>,
    streams: Streams,
}

impl Worker {
    fn run(&mut self) {
        tracing::debug!(worker = self.worker, "media worker started");
        let mut next_tick = Instant::now() + POLL_INTERVAL;
        let mut pause = false;
        loop {
            if pause {
                std::thread::sleep(BUSY_PAUSE);
            }
            let timeout = if self.streams.ids.is_empty() {
                // No stream, nothing to tick: sleep until a command comes (idle costs 0 CPU).
                EpollTimeout::NONE
            } else {
                timeout_ms(next_tick.saturating_duration_since(Instant::now()))
            };
            pause = self.receive(timeout);
            if !self.take_commands() {
                break;
            }
            let now = Instant::now();
            if now >= next_tick {
                self.streams.tick(&self.epoll, now);
                next_tick += POLL_INTERVAL;
                if next_tick <= now {
                    // Behind by more than a tick (a stalled machine): skip, do not burst.
                    next_tick = now + POLL_INTERVAL;
                }
            }
        }
        self.streams.clear(&self.epoll);
        tracing::debug!(worker = self.worker, "media worker stopped");
    }

    /// Waits up to `timeout`, then takes one datagram from every ready socket, round after
    /// round while any still holds one. `true` when it read datagrams and emptied every
    /// socket (pause before the next wait); `false` when idle or stopped by [`MAX_ROUNDS`].
    fn receive(&mut self, timeout: EpollTimeout) -> bool {
        let mut ready = self.wait(timeout);
        for _ in 0..MAX_ROUNDS {
            let now = Instant::now();
            let mut read = false;
            for event in &self.events[..ready] {
                match event.data() {
                    // Reading resets the counter; a level-triggered waker left set fires forever.
                    WAKER => drop(self.waker.read()),
                    token => read |= self.streams.read_one(token, now),
                }
            }
            if !read {
                return false;
            }
            ready = self.wait(EpollTimeout::ZERO);
            if ready == 0 {
                return true;
            }
        }
        false
    }

    fn wait(&mut self, timeout: EpollTimeout) -> usize {
        match self.epoll.wait(&mut self.events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => {
                tracing::error!(worker = self.worker, error = %e, "media worker poll failed");
                std::thread::sleep(Duration::from_millis(1));
                0
            }
        }
    }

    /// Everything queued since the last batch, in order. `false` once the pool is gone.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add { id, stream, blocks }) => {
                    self.streams
                        .add(&self.epoll, id, *stream, blocks, Instant::now())
                }
                Ok(Command::Control {
                    id,
                    control: StreamControl::Stop,
                }) => self.streams.stop(&self.epoll, id, Instant::now()),
                Ok(Command::Control { id, control }) => {
                    self.streams.control(id, control, Instant::now())
                }
                Ok(Command::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => {
                    return false;
                }
                Err(std_mpsc::TryRecvError::Empty) => return true,
            }
        }
    }
}

/// Whole milliseconds, rounded up (epoll's unit: rounding down would spin before a tick).
fn timeout_ms(d: Duration) -> EpollTimeout {
    EpollTimeout::try_from(d.as_micros().div_ceil(1000)).unwrap_or(EpollTimeout::MAX)
}

/// One stream as its worker holds it.
struct Slot {
    id: StreamId,
    rtp: UdpSocket,
    /// `None` with rtcp-mux.
    rtcp: Option<UdpSocket>,
    receiver: StreamReceiver,
    blocks: mpsc::UnboundedSender<Box<StreamBlock>>,
}

/// Buffers every stream of a worker shares: one datagram, its decryption, one block.
pub struct Scratch {
    datagram: Box<[u8]>,
    plain: Vec<u8>,
    out: Vec<i16>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            datagram: vec![0u8; DATAGRAM_MAX].into_boxed_slice(),
            plain: Vec::with_capacity(DATAGRAM_MAX),
            // 100 ms at 48 kHz: one block never needs more.
            out: Vec::with_capacity(4800),
        }
    }
}

impl Scratch {
    /// The shared PCM buffer a tick fills before the block gets its copy.
    pub fn out(&mut self) -> &mut Vec<i16> {
        &mut self.out
    }
}

/// Which of a stream's ports a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// RTP, and RTCP when muxed.
    Rtp,
    /// The separate RTCP port (RTP + 1).
    Rtcp,
}

/// Reads `socket` until it would block or `budget` datagrams were read, each straight into
/// `receiver`; `true` when the budget ran out (the socket may hold more). A stopping stream
/// is drained this way.
pub fn drain_socket(
    socket: &UdpSocket,
    port: Port,
    receiver: &mut StreamReceiver,
    scratch: &mut Scratch,
    budget: usize,
    now: Instant,
) -> bool {
    for _ in 0..budget {
        if read_datagram(socket, port, receiver, scratch, now) == Read::Empty {
            return false;
        }
    }
    true
}

/// What one read from a socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A datagram, now in its stream.
    Datagram,
    /// Nothing: the socket would block.
    Empty,
    /// An error queued on the socket (an ICMP report, say), now taken off it.
    Error,
}

/// One datagram from `socket` into `receiver`: all a worker does per packet.
pub fn read_datagram(
    socket: &UdpSocket,
    port: Port,
    receiver: &mut StreamReceiver,
    scratch: &mut Scratch,
    now: Instant,
) -> Read {
    let Scratch {
        datagram, plain, ..
    } = scratch;
    match socket.recv_from(datagram) {
        Ok((len, from)) if port == Port::Rtcp => {
            receiver.on_rtcp_port(&datagram[..len], from, plain);
            Read::Datagram
        }
        Ok((len, from)) => {
            receiver.on_rtp_port(now, &datagram[..len], from, plain);
            Read::Datagram
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Read::Empty,
        Err(_) => Read::Error,
    }
}

/// The worker's streams, indexed by slot (the poll token) and by id (the queue's name).
struct Streams {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    ids: HashMap<StreamId, usize>,
    scratch: Scratch,
    load: Arc<AtomicUsize>,
}

fn token(slot: usize, rtcp: bool) -> u64 {
    (slot as u64) << 1 | u64::from(rtcp)
}

fn register(epoll: &Epoll, socket: &UdpSocket, token: u64) -> nix::Result<()> {
    epoll.add(socket, EpollEvent::new(EpollFlags::EPOLLIN, token))
}

impl Streams {
    fn new(load: Arc<AtomicUsize>) -> Self {
        Streams {
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
            scratch: Scratch::default(),
            load,
        }
    }

    /// Registers the stream's sockets; whatever arrived since they were bound is reported
    /// by the next wait (level-triggered).
    fn add(
        &mut self,
        epoll: &Epoll,
        id: StreamId,
        stream: MediaStream,
        blocks: mpsc::UnboundedSender<Box<StreamBlock>>,
        now: Instant,
    ) {
        let (sockets, mut receiver) = stream.into_parts(now);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let (rtp, rtcp) = (sockets.rtp, sockets.rtcp);
        let registered = register(epoll, &rtp, token(slot, false)).and_then(|()| match &rtcp {
            Some(s) => register(epoll, s, token(slot, true)),
            None => Ok(()),
        });
        if let Err(e) = registered {
            tracing::error!(stream = receiver.index(), error = %e, "cannot poll the stream's sockets: it records nothing");
            let _ = epoll.delete(&rtp);
            let _ = blocks.send(Box::new(receiver.finish(now, &mut self.scratch.out)));
            self.free.push(slot);
            self.load.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.slots[slot] = Some(Slot {
            id,
            rtp,
            rtcp,
            receiver,
            blocks,
        });
        self.ids.insert(id, slot);
    }

    fn control(&mut self, id: StreamId, control: StreamControl, now: Instant) {
        if let Some(slot) = self.slot_mut(id) {
            slot.receiver.apply(now, control);
        }
    }

    /// Reads what already sits in the sockets (sent before the BYE), then the last block.
    fn stop(&mut self, epoll: &Epoll, id: StreamId, now: Instant) {
        let Some(&index) = self.ids.get(&id) else {
            return;
        };
        if let Some(Some(slot)) = self.slots.get_mut(index) {
            let Slot {
                rtp,
                rtcp,
                receiver,
                ..
            } = slot;
            let scratch = &mut self.scratch;
            drain_socket(rtp, Port::Rtp, receiver, scratch, STOP_DRAIN_LIMIT, now);
            if let Some(rtcp) = rtcp {
                drain_socket(rtcp, Port::Rtcp, receiver, scratch, STOP_DRAIN_LIMIT, now);
            }
        }
        if let Some(mut slot) = self.remove(epoll, index) {
            let block = slot.receiver.finish(now, &mut self.scratch.out);
            let _ = slot.blocks.send(Box::new(block));
        }
    }

    fn slot_mut(&mut self, id: StreamId) -> Option<&mut Slot> {
        let index = *self.ids.get(&id)?;
        self.slots.get_mut(index)?.as_mut()
    }

    /// One datagram from the socket of `token`; `true` unless the socket was empty (or its
    /// stream is gone).
    fn read_one(&mut self, token: u64, now: Instant) -> bool {
        let Ok(index) = usize::try_from(token >> 1) else {
            return false;
        };
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return false;
        };
        let (socket, port) = match (token & 1 == 1, slot.rtcp.as_ref()) {
            (false, _) => (&slot.rtp, Port::Rtp),
            (true, Some(s)) => (s, Port::Rtcp),
            (true, None) => return false,
        };
        let read = read_datagram(socket, port, &mut slot.receiver, &mut self.scratch, now);
        read != Read::Empty
    }

    /// The worker-wide tick: every stream's PCM up to now goes to its file, and a block to
    /// its recording task when there is news.
    fn tick(&mut self, epoll: &Epoll, now: Instant) {
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots[index].as_mut() else {
                continue;
            };
            let block = slot.receiver.poll(now, &mut self.scratch.out);
            let gone = match block {
                Some(block) => slot.blocks.send(Box::new(block)).is_err(),
                None => slot.blocks.is_closed(),
            };
            if gone {
                // Its recording task is gone: nobody wants this stream any more.
                self.remove(epoll, index);
            }
        }
    }

    fn remove(&mut self, epoll: &Epoll, index: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(index)?.take()?;
        let _ = epoll.delete(&slot.rtp);
        if let Some(rtcp) = slot.rtcp.as_ref() {
            let _ = epoll.delete(rtcp);
        }
        self.ids.remove(&slot.id);
        self.free.push(index);
        self.load.fetch_sub(1, Ordering::Relaxed);
        Some(slot)
    }

    fn clear(&mut self, epoll: &Epoll) {
        for index in 0..self.slots.len() {
            self.remove(epoll, index);
        }
    }
}
