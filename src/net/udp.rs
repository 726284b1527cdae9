//! SIP over UDP: one receive loop per socket.

use super::Inbound;
use crate::sip::Flow;
use crate::sip::Transport;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub async fn serve(
    socket: Arc<UdpSocket>,
    listener: u16,
    advertised: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    // One byte more than the largest datagram, so an oversize read is never silently cut.
    let mut buf = vec![0u8; 65536];
    let mut dropped: u64 = 0;
    loop {
        let (len, remote) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP port unreachable surfaces here on some systems: not fatal.
                    tracing::debug!(error = %e, "UDP receive error");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let data = &buf[..len];
        tracing::trace!(%remote, len, "UDP datagram");
        // Keep-alives (CRLF, CRLFCRLF) and empty datagrams carry nothing to answer.
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let flow = Flow {
            transport: Transport::Udp,
            local: advertised,
            remote,
            listener,
            connection: None,
        };
        let msg = Inbound {
            data: Bytes::copy_from_slice(data),
            flow,
        };
        if inbound.try_send(msg).is_err() {
            // The core is saturated: shed load here rather than queue without bound.
            dropped += 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "SIP core busy, UDP messages dropped");
            }
        }
    }
}
