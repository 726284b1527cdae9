//! The I/O edges: SIP listeners (UDP, and stream transports with framing) and the
//! transmitter that sends what the sans-IO core produced.

pub mod stream;
pub mod tls;
pub mod udp;

use crate::sip::Flow;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A message for the SIP core.
#[derive(Debug)]
pub struct Inbound {
    pub data: Bytes,
    pub flow: Flow,
}

/// Open stream connections by id: where to queue bytes for each.
pub type Connections = Arc<DashMap<u64, mpsc::Sender<Bytes>>>;

/// Sends bytes along a [`Flow`].
#[derive(Clone)]
pub struct Transmitter {
    /// UDP sockets by listener index (`None` for stream listeners).
    udp: Arc<Vec<Option<Arc<UdpSocket>>>>,
    connections: Connections,
}

impl Transmitter {
    pub fn new(udp: Vec<Option<Arc<UdpSocket>>>, connections: Connections) -> Self {
        Transmitter {
            udp: Arc::new(udp),
            connections,
        }
    }

    /// Never blocks the caller: a full socket buffer or connection queue hands the send to
    /// a task (UDP) or drops it (a stream peer that does not read).
    pub fn send(&self, flow: &Flow, data: Bytes) {
        match flow.connection {
            None => {
                let Some(Some(socket)) = self.udp.get(usize::from(flow.listener)) else {
                    tracing::warn!(listener = flow.listener, "no UDP socket for flow");
                    return;
                };
                match socket.try_send_to(&data, flow.remote) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let socket = socket.clone();
                        let remote = flow.remote;
                        tokio::spawn(async move {
                            let _ = socket.send_to(&data, remote).await;
                        });
                    }
                    Err(e) => tracing::debug!(remote = %flow.remote, error = %e, "UDP send failed"),
                }
            }
            Some(id) => {
                let Some(tx) = self.connections.get(&id).map(|c| c.clone()) else {
                    tracing::debug!(connection = id, remote = %flow.remote, "connection gone, message dropped");
                    return;
                };
                if tx.try_send(data).is_err() {
                    tracing::warn!(connection = id, remote = %flow.remote, "connection queue full, message dropped");
                }
            }
        }
    }
}

/// A non-blocking UDP socket bound to `addr` that asks the kernel for `recv_buffer` bytes of
/// receive buffer (capped at `net.core.rmem_max`; a smaller buffer is not an error): room
/// for a burst that arrives while its reader is busy.
pub fn bind_udp(
    addr: std::net::SocketAddr,
    recv_buffer: usize,
) -> std::io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    let _ = socket.set_recv_buffer_size(recv_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
