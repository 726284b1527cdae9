//! The SIP transport edge: one UDP socket or one TCP connection to the recorder, a reader
//! task that frames and parses what arrives, and routing of each message to its call by
//! Call-ID. Messages for no known call are answered (481) or dropped, never a panic.

use crate::cli::Transport;
use crate::sip::{Msg, content_length, head_end};
use bytes::{Buf, BytesMut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Largest message accepted from the recorder; beyond it the TCP stream is unusable.
const MAX_MESSAGE: usize = 256 * 1024;
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// A message from the recorder and where it came from (responses to its requests go there).
#[derive(Debug)]
pub struct Incoming {
    pub msg: Msg,
    pub from: SocketAddr,
}

enum Link {
    Udp(Arc<UdpSocket>),
    Tcp(mpsc::UnboundedSender<Vec<u8>>),
}

pub struct SipTransport {
    link: Link,
    pub kind: Transport,
    pub target: SocketAddr,
    pub local: SocketAddr,
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<Incoming>>>,
}

impl SipTransport {
    /// Binds (UDP) or connects (TCP) and starts the reader task.
    pub async fn open(
        kind: Transport,
        target: SocketAddr,
        local_ip: std::net::IpAddr,
    ) -> std::io::Result<Arc<SipTransport>> {
        let (link, local, reader) = match kind {
            Transport::Udp => {
                let sock = Arc::new(bind_udp(SocketAddr::new(local_ip, 0))?);
                let local = sock.local_addr()?;
                (Link::Udp(sock.clone()), local, Reader::Udp(sock))
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(target).await?;
                stream.set_nodelay(true)?;
                let local = stream.local_addr()?;
                let (rd, mut wr) = stream.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                tokio::spawn(async move {
                    while let Some(buf) = rx.recv().await {
                        if let Err(e) = wr.write_all(&buf).await {
                            eprintln!("sip-recorder-load: TCP write failed: {e}");
                            return;
                        }
                    }
                });
                (Link::Tcp(tx), local, Reader::Tcp(rd))
            }
        };
        let t = Arc::new(SipTransport {
            link,
            kind,
            target,
            local,
            calls: Mutex::new(HashMap::new()),
        });
        let me = t.clone();
        tokio::spawn(async move { reader.run(me).await });
        Ok(t)
    }

    /// Sends to the recorder's SIP address (or the connection).
    pub async fn send(&self, msg: &str) {
        self.send_to(msg, self.target).await;
    }

    /// Sends a response to where its request came from (RFC 3261 §18.2.2 over UDP).
    pub async fn send_to(&self, msg: &str, to: SocketAddr) {
        match &self.link {
            Link::Udp(sock) => {
                // A failed send is a lost datagram; the retransmission timers cover it.
                let _ = sock.send_to(msg.as_bytes(), to).await;
            }
            Link::Tcp(tx) => {
                let _ = tx.send(msg.as_bytes().to_vec());
            }
        }
    }

    /// Routes messages of `call_id` to the returned receiver until `unregister`.
    pub fn register(&self, call_id: &str) -> mpsc::UnboundedReceiver<Incoming> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(call_id.to_string(), tx);
        rx
    }

    pub fn unregister(&self, call_id: &str) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(call_id);
    }

    async fn dispatch(&self, msg: Msg, from: SocketAddr) {
        let Some(call_id) = msg.call_id() else {
            return;
        };
        let route = self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(call_id)
            .cloned();
        match route {
            Some(tx) => {
                let _ = tx.send(Incoming { msg, from });
            }
            // A request for a call already over (e.g. a late BYE): say so, as a UA would.
            None if msg.method().is_some_and(|m| m != "ACK") => {
                let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                self.send_to(&resp, from).await;
            }
            None => {}
        }
    }
}

pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Bursts of thousands of calls must not overflow the default buffers; the kernel caps
    // these at its limits, which is fine.
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

enum Reader {
    Udp(Arc<UdpSocket>),
    Tcp(tokio::net::tcp::OwnedReadHalf),
}

impl Reader {
    async fn run(self, t: Arc<SipTransport>) {
        match self {
            Reader::Udp(sock) => {
                let mut buf = vec![0u8; 65_536];
                loop {
                    match sock.recv_from(&mut buf).await {
                        Ok((n, from)) => {
                            if let Some(msg) = Msg::parse(&buf[..n]) {
                                t.dispatch(msg, from).await;
                            }
                        }
                        // ICMP errors surface here on some systems; keep reading.
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            }
            Reader::Tcp(mut rd) => {
                let from = t.target;
                let mut buf = BytesMut::with_capacity(65_536);
                loop {
                    match rd.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => {
                            eprintln!("sip-recorder-load: TCP connection to {from} closed");
                            return;
                        }
                        Ok(_) => {}
                    }
                    loop {
                        // CRLF keep-alives between messages carry nothing.
                        while buf.starts_with(b"\r\n") {
                            buf.advance(2);
                        }
                        let Some((head, body_start)) = head_end(&buf) else {
                            break;
                        };
                        let len = body_start + content_length(&buf[..head]).unwrap_or(0);
                        if buf.len() < len {
                            break;
                        }
                        let frame = buf.split_to(len);
                        if let Some(msg) = Msg::parse(&frame) {
                            t.dispatch(msg, from).await;
                        }
                    }
                    if buf.len() > MAX_MESSAGE {
                        eprintln!("sip-recorder-load: oversized message on TCP; closing");
                        return;
                    }
                }
            }
        }
    }
}
