//! One media worker thread: its poller, its streams, the drain and the tick.

use super::{Command, StreamId, WorkerQueue, WorkerStartError};
use crate::recording::stream::{
    MediaStream, POLL_INTERVAL, StreamBlock, StreamControl, StreamReceiver,
};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The waker's token; stream tokens are `slot << 1 | (0 = RTP, 1 = RTCP)`.
const WAKER: Token = Token(usize::MAX);
/// Datagrams read from one socket before the other ready sockets get their turn; the rest
/// is read in the next round (edge-triggered: the socket is remembered, not re-armed).
const DRAIN_BUDGET: usize = 64;
/// Datagrams read from a socket when its stream stops: what arrived before the BYE.
const STOP_DRAIN_LIMIT: usize = 1024;
/// Largest datagram kept whole (an RTP packet over Ethernet fits with room).
const DATAGRAM_MAX: usize = 2048;
/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 1024;
/// Pause after a round that read datagrams, before waiting again. A wake-up (epoll_wait,
/// context switch) costs more than reading a datagram; at thousands of streams this lets
/// dozens of datagrams gather per wake-up instead of one. Arrival times are then up to this
/// much late: inside the 60 ms reorder window, and a fraction of a millisecond of jitter.
/// An idle worker never pauses: it blocks in the poller until a datagram or the tick.
const BUSY_PAUSE: Duration = Duration::from_millis(1);

/// Creates the worker's poller, waker and queue and starts its thread.
pub(super) fn spawn(worker: usize) -> Result<(Arc<WorkerQueue>, JoinHandle<()>), WorkerStartError> {
    let poller_error = |source| WorkerStartError::Poller { worker, source };
    let poll = Poll::new().map_err(poller_error)?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(poller_error)?;
    let (commands, queue_rx) = std_mpsc::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let queue = Arc::new(WorkerQueue {
        commands,
        waker,
        load: load.clone(),
    });
    let mut thread = Worker {
        worker,
        poll,
        events: Events::with_capacity(EVENTS_CAPACITY),
        commands: queue_rx,
        streams: Streams::new(load),
    };
    let handle = std::thread::Builder::new()
        .name(format!("media-worker-{worker}"))
        .spawn(move || thread.run())
        .map_err(|source| WorkerStartError::Thread { worker, source })?;
    Ok((queue, handle))
}

struct Worker {
    worker: usize,
    poll: Poll,
    events: Events,
    commands: std_mpsc::Receiver<Command>,
    streams: Streams,
}

impl Worker {
    fn run(&mut self) {
        tracing::debug!(worker = self.worker, "media worker started");
        let mut next_tick = Instant::now() + POLL_INTERVAL;
        let mut busy = false;
        loop {
            if busy {
                std::thread::sleep(BUSY_PAUSE);
            }
            let timeout = if !self.streams.backlog.is_empty() {
                Some(Duration::ZERO)
            } else if self.streams.ids.is_empty() {
                // No stream, nothing to tick: sleep until a command comes (idle costs 0 CPU).
                None
            } else {
                Some(next_tick.saturating_duration_since(Instant::now()))
            };
            if let Err(e) = self.poll.poll(&mut self.events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!(worker = self.worker, error = %e, "media worker poll failed");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            self.streams.drain_backlog();
            busy = false;
            for event in self.events.iter() {
                if event.token() != WAKER {
                    busy = true;
                    self.streams.drain_ready(event.token());
                }
            }
            if !self.take_commands() {
                break;
            }
            let now = Instant::now();
            if now >= next_tick {
                self.streams.tick(self.poll.registry(), now);
                next_tick += POLL_INTERVAL;
                if next_tick <= now {
                    // Behind by more than a tick (a stalled machine): skip, do not burst.
                    next_tick = now + POLL_INTERVAL;
                }
            }
        }
        self.streams.clear(self.poll.registry());
        tracing::debug!(worker = self.worker, "media worker stopped");
    }

    /// Everything queued since the last batch, in order. `false` once the pool is gone.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add { id, stream, blocks }) => {
                    self.streams
                        .add(self.poll.registry(), id, *stream, blocks, Instant::now())
                }
                Ok(Command::Control {
                    id,
                    control: StreamControl::Stop,
                }) => self.streams.stop(self.poll.registry(), id, Instant::now()),
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

/// One stream as its worker holds it.
struct Slot {
    id: StreamId,
    rtp: UdpSocket,
    /// `None` with rtcp-mux.
    rtcp: Option<UdpSocket>,
    receiver: StreamReceiver,
    blocks: mpsc::UnboundedSender<StreamBlock>,
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
/// `receiver`; `true` when the budget ran out (the socket may hold more). This is all a
/// worker does per packet.
pub fn drain_socket(
    socket: &UdpSocket,
    port: Port,
    receiver: &mut StreamReceiver,
    scratch: &mut Scratch,
    budget: usize,
    now: Instant,
) -> bool {
    let Scratch {
        datagram, plain, ..
    } = scratch;
    for _ in 0..budget {
        match socket.recv_from(datagram) {
            Ok((len, from)) if port == Port::Rtcp => {
                receiver.on_rtcp_port(&datagram[..len], from, plain)
            }
            Ok((len, from)) => receiver.on_rtp_port(now, &datagram[..len], from, plain),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            // Interrupted, or an error queued on the socket: the next read goes on.
            Err(_) => {}
        }
    }
    true
}

/// The worker's streams, indexed by slot (the poll token) and by id (the queue's name).
struct Streams {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    ids: HashMap<StreamId, usize>,
    /// Sockets whose drain hit [`DRAIN_BUDGET`]: read again before the next wait.
    backlog: Vec<Token>,
    scratch: Scratch,
    load: Arc<AtomicUsize>,
}

fn token(slot: usize, rtcp: bool) -> Token {
    Token(slot << 1 | usize::from(rtcp))
}

impl Streams {
    fn new(load: Arc<AtomicUsize>) -> Self {
        Streams {
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
            backlog: Vec::new(),
            scratch: Scratch::default(),
            load,
        }
    }

    fn add(
        &mut self,
        registry: &Registry,
        id: StreamId,
        stream: MediaStream,
        blocks: mpsc::UnboundedSender<StreamBlock>,
        now: Instant,
    ) {
        let (sockets, mut receiver) = stream.into_parts(now);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut rtp = UdpSocket::from_std(sockets.rtp);
        let mut rtcp = sockets.rtcp.map(UdpSocket::from_std);
        let registered = registry
            .register(&mut rtp, token(slot, false), Interest::READABLE)
            .and_then(|()| match rtcp.as_mut() {
                Some(s) => registry.register(s, token(slot, true), Interest::READABLE),
                None => Ok(()),
            });
        if let Err(e) = registered {
            tracing::error!(stream = receiver.index(), error = %e, "cannot poll the stream's sockets: it records nothing");
            let _ = registry.deregister(&mut rtp);
            let _ = blocks.send(receiver.finish(now, &mut self.scratch.out));
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
        // Whatever arrived between bind and registration is read now.
        self.backlog.push(token(slot, false));
        self.backlog.push(token(slot, true));
    }

    fn control(&mut self, id: StreamId, control: StreamControl, now: Instant) {
        if let Some(slot) = self.slot_mut(id) {
            slot.receiver.apply(now, control);
        }
    }

    /// Reads what already sits in the sockets (sent before the BYE), then the last block.
    fn stop(&mut self, registry: &Registry, id: StreamId, now: Instant) {
        let Some(&index) = self.ids.get(&id) else {
            return;
        };
        self.drain(index, false, STOP_DRAIN_LIMIT, now);
        self.drain(index, true, STOP_DRAIN_LIMIT, now);
        if let Some(mut slot) = self.remove(registry, index) {
            let block = slot.receiver.finish(now, &mut self.scratch.out);
            let _ = slot.blocks.send(block);
        }
    }

    fn slot_mut(&mut self, id: StreamId) -> Option<&mut Slot> {
        let index = *self.ids.get(&id)?;
        self.slots.get_mut(index)?.as_mut()
    }

    fn drain_ready(&mut self, token: Token) {
        let (index, rtcp) = (token.0 >> 1, token.0 & 1 == 1);
        if self.drain(index, rtcp, DRAIN_BUDGET, Instant::now()) {
            self.backlog.push(token);
        }
    }

    fn drain_backlog(&mut self) {
        for token in std::mem::take(&mut self.backlog) {
            self.drain_ready(token);
        }
    }

    /// Reads one of a stream's sockets; `true` when the budget ran out.
    fn drain(&mut self, index: usize, rtcp: bool, budget: usize, now: Instant) -> bool {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return false;
        };
        let (socket, port) = match (rtcp, slot.rtcp.as_ref()) {
            (false, _) => (&slot.rtp, Port::Rtp),
            (true, Some(s)) => (s, Port::Rtcp),
            (true, None) => return false,
        };
        drain_socket(
            socket,
            port,
            &mut slot.receiver,
            &mut self.scratch,
            budget,
            now,
        )
    }

    /// The worker-wide tick: every stream's PCM up to now goes to its recording task.
    fn tick(&mut self, registry: &Registry, now: Instant) {
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots[index].as_mut() else {
                continue;
            };
            let block = slot.receiver.poll(now, &mut self.scratch.out);
            let gone = match block {
                Some(block) => slot.blocks.send(block).is_err(),
                None => slot.blocks.is_closed(),
            };
            if gone {
                // Its recording task is gone: nobody wants this stream any more.
                self.remove(registry, index);
            }
        }
    }

    fn remove(&mut self, registry: &Registry, index: usize) -> Option<Slot> {
        let mut slot = self.slots.get_mut(index)?.take()?;
        let _ = registry.deregister(&mut slot.rtp);
        if let Some(rtcp) = slot.rtcp.as_mut() {
            let _ = registry.deregister(rtcp);
        }
        self.ids.remove(&slot.id);
        self.free.push(index);
        self.load.fetch_sub(1, Ordering::Relaxed);
        Some(slot)
    }

    fn clear(&mut self, registry: &Registry) {
        for index in 0..self.slots.len() {
            self.remove(registry, index);
        }
    }
}
