//! SIP over stream transports (TCP now; TLS plugs in by handing its decrypted stream to
//! [`serve_connection`]). Framing by Content-Length, keep-alive pings, idle timeout and
//! connection caps taken before `accept`.

use super::{Connections, Inbound};
use crate::sip::Flow;
use crate::sip::Transport;
use crate::sip::framing::{Frame, FrameError, StreamFramer};
use bytes::Bytes;
use dashmap::DashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Limits and identity shared by every connection of a listener.
#[derive(Clone)]
pub struct StreamSettings {
    pub transport: Transport,
    pub listener: u16,
    pub advertised: SocketAddr,
    pub max_message_size: usize,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
}

/// Shared by all stream listeners: connection ids, the registry, per-source counts.
#[derive(Clone)]
pub struct StreamState {
    pub connections: Connections,
    pub next_id: Arc<AtomicU64>,
    pub per_source: Arc<DashMap<IpAddr, usize>>,
}

impl StreamState {
    pub fn new(connections: Connections) -> Self {
        StreamState {
            connections,
            next_id: Arc::new(AtomicU64::new(1)),
            per_source: Arc::new(DashMap::new()),
        }
    }
}

/// Releases a source's connection slot when the connection ends.
struct SourceSlot {
    per_source: Arc<DashMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.per_source.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
        }
        self.per_source.remove_if(&self.ip, |_, n| *n == 0);
    }
}

/// Accept TCP connections (and, with `tls`, run the TLS handshake on them) and serve each.
pub async fn serve_tcp(
    listener: TcpListener,
    settings: StreamSettings,
    state: StreamState,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
    tls: Option<super::tls::TlsSetup>,
) {
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let mut backoff = Duration::from_millis(10);
    loop {
        // Take a connection slot before accepting, so an overload waits in the kernel backlog.
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.cancelled() => return,
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => { backoff = Duration::from_millis(10); r }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let count = {
            let mut n = state.per_source.entry(remote.ip()).or_insert(0);
            *n += 1;
            *n
        };
        let slot = SourceSlot {
            per_source: state.per_source.clone(),
            ip: remote.ip(),
        };
        if count > settings.max_connections_per_source {
            tracing::warn!(source = %remote.ip(), limit = settings.max_connections_per_source, "refused source: too many connections");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let settings = settings.clone();
        let state = state.clone();
        let inbound = inbound.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, remote, settings, state, inbound, shutdown).await,
                Some(tls) => {
                    // A bounded handshake: a peer that stalls it cannot hold a slot forever.
                    match tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, remote, settings, state, inbound, shutdown)
                                .await
                        }
                        Ok(Err(e)) => tracing::warn!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::warn!(%remote, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
            drop(permit);
        });
    }
}

/// Serve one established stream (plain TCP, or TLS after its handshake).
pub async fn serve_connection<S>(
    stream: S,
    remote: SocketAddr,
    settings: StreamSettings,
    state: StreamState,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(256);
    state.connections.insert(id, out_tx.clone());
    let writer_task = tokio::spawn(async move {
        while let Some(data) = out_rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let flow = Flow {
        transport: settings.transport,
        local: settings.advertised,
        remote,
        listener: settings.listener,
        connection: Some(id),
    };
    let mut framer = StreamFramer::new(settings.max_message_size);
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let n = tokio::select! {
            r = tokio::time::timeout(settings.idle_timeout, reader.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
                Err(_) => {
                    tracing::debug!(%remote, "idle connection closed");
                    break;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(data))) => {
                    if inbound.send(Inbound { data, flow }).await.is_err() {
                        break 'conn;
                    }
                }
                Ok(Some(Frame::KeepAlivePing)) => {
                    // RFC 5626 §4.4.1: a CRLFCRLF ping gets a CRLF pong.
                    let _ = out_tx.try_send(Bytes::from_static(b"\r\n"));
                }
                Ok(None) => break,
                Err(e @ (FrameError::TooLarge { .. } | FrameError::BadContentLength)) => {
                    // Framing is lost: nothing after this point can be trusted.
                    tracing::warn!(%remote, error = %e, "closing connection");
                    break 'conn;
                }
            }
        }
    }
    state.connections.remove(&id);
    drop(out_tx);
    let _ = writer_task.await;
}
