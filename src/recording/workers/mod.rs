//! Media worker threads: a small fixed set (`media.workers`, default one per core), each
//! owning many streams' sockets on its own level-triggered epoll. Each round takes one
//! datagram from every ready socket, straight into its stream's
//! [`StreamReceiver`](crate::recording::stream::StreamReceiver) with the worker's scratch
//! buffers: no task, channel hop or allocation per packet, and no read that finds nothing.
//! One worker-wide tick every [`POLL_INTERVAL`](crate::recording::stream::POLL_INTERVAL)
//! sends each stream's PCM to its file's writer thread, and a [`StreamBlock`] to its
//! recording task when there is news for it (counters once a second, DTMF, the end).
//!
//! Control (a new stream, pause, resume, re-negotiation, stop) reaches a worker through one
//! queue and an eventfd in its epoll set; the worker reads it between rounds.

mod poller;
pub use poller::{Port, Read, Scratch, drain_socket, read_datagram};
#[cfg(test)]
mod tests;

use crate::recording::stream::{MediaStream, StreamBlock, StreamControl};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};

use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Identifies a stream across the pool (unique for the life of the process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StreamId(u64);

/// What a worker is asked to do, in the order asked.
pub(crate) enum Command {
    /// Register the stream's sockets and start receiving.
    Add {
        id: StreamId,
        stream: Box<MediaStream>,
        blocks: mpsc::UnboundedSender<Box<StreamBlock>>,
    },
    /// Applied to the stream between batches; `Stop` drains its sockets first.
    Control {
        id: StreamId,
        control: StreamControl,
    },
    /// Drop every stream and end the thread.
    Shutdown,
}

/// The sending side of one worker's queue, shared by the pool and every stream on it.
pub(crate) struct WorkerQueue {
    commands: std_mpsc::Sender<Command>,
    /// An eventfd in the worker's poller.
    waker: Arc<nix::sys::eventfd::EventFd>,
    /// Streams assigned to the worker (started or not): what least-loaded assignment reads.
    load: Arc<AtomicUsize>,
}

impl WorkerQueue {
    fn send(&self, command: Command) -> Result<(), StreamGone> {
        self.commands.send(command).map_err(|_| StreamGone)?;
        // The eventfd lives as long as this queue; a write fails only when its counter is
        // near overflow, i.e. the worker has a wake-up pending anyway.
        let _ = self.waker.write(1);
        Ok(())
    }
}

/// The media worker pool was shut down (or its thread ended): the stream is gone.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the media worker is gone")]
pub struct StreamGone;

/// Errors starting the pool: these are ours (threads, pollers), not the network's.
#[derive(Debug, thiserror::Error)]
pub enum WorkerStartError {
    #[error("cannot create the poller of media worker {worker}")]
    Poller {
        worker: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the thread of media worker {worker}")]
    Thread {
        worker: usize,
        #[source]
        source: std::io::Error,
    },
}

struct PoolInner {
    queues: Vec<Arc<WorkerQueue>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        for queue in &self.queues {
            let _ = queue.send(Command::Shutdown);
        }
    }
}

/// The media worker threads. Cheap to clone; the threads end when the pool is shut down
/// or the last clone is dropped.
#[derive(Clone)]
pub struct MediaWorkers {
    inner: Arc<PoolInner>,
}

impl MediaWorkers {
    /// Starts `workers` threads (at least one).
    pub fn start(workers: usize) -> Result<Self, WorkerStartError> {
        let workers = workers.clamp(1, crate::config::MediaWorkerCount::MAX);
        let mut queues = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (queue, thread) = poller::spawn(worker)?;
            queues.push(queue);
            threads.push(thread);
        }
        Ok(MediaWorkers {
            inner: Arc::new(PoolInner {
                queues,
                threads: Mutex::new(threads),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    pub fn workers(&self) -> usize {
        self.inner.queues.len()
    }

    /// Streams currently assigned to each worker.
    pub fn loads(&self) -> Vec<usize> {
        self.inner
            .queues
            .iter()
            .map(|q| q.load.load(Ordering::Relaxed))
            .collect()
    }

    /// Picks the least-loaded worker for a new stream. The stream starts receiving only at
    /// [`StreamLink::start`]; control sent before that waits in the queue behind it.
    pub fn assign(&self) -> StreamLink {
        let queue = self
            .inner
            .queues
            .iter()
            .min_by_key(|q| q.load.load(Ordering::Relaxed))
            .cloned()
            .unwrap_or_else(|| unreachable!("a pool has at least one worker"));
        queue.load.fetch_add(1, Ordering::Relaxed);
        StreamLink {
            id: StreamId(self.inner.next_id.fetch_add(1, Ordering::Relaxed)),
            queue,
            started: AtomicBool::new(false),
        }
    }

    /// Ends every worker and waits for the threads (after every recording has ended).
    pub fn shutdown(&self) {
        for queue in &self.inner.queues {
            let _ = queue.send(Command::Shutdown);
        }
        let threads = match self.inner.threads.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a media worker panicked");
            }
        }
    }
}

/// The recording task's end of one stream on a worker. Dropping it stops the stream (its
/// last block still goes out), as a closed control channel did for a stream task.
pub struct StreamLink {
    id: StreamId,
    queue: Arc<WorkerQueue>,
    started: AtomicBool,
}

impl StreamLink {
    /// Hands the stream to its worker; its blocks go to `blocks`.
    pub fn start(
        &self,
        stream: MediaStream,
        blocks: mpsc::UnboundedSender<Box<StreamBlock>>,
    ) -> Result<(), StreamGone> {
        if self.started.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        self.queue.send(Command::Add {
            id: self.id,
            stream: Box::new(stream),
            blocks,
        })
    }

    /// Pause, resume, re-negotiation or stop, applied by the worker between batches.
    pub fn send(&self, control: StreamControl) -> Result<(), StreamGone> {
        self.queue.send(Command::Control {
            id: self.id,
            control,
        })
    }
}

impl Drop for StreamLink {
    fn drop(&mut self) {
        if self.started.load(Ordering::Relaxed) {
            // Unknown to the worker when it already stopped: then this is ignored.
            let _ = self.send(StreamControl::Stop);
        } else {
            self.queue.load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
