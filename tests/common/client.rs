//! Raw SIP client over UDP or TCP: sends text, reads and frames what comes back.

use super::msg::{Msg, frame_stream};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

pub struct SipClient {
    pub transport: Transport,
    pub server: SocketAddr,
    pub local: SocketAddr,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    rx: Vec<u8>,
    /// Messages read while waiting for something else; handed out first by `recv`.
    backlog: VecDeque<Msg>,
    /// CRLF keep-alive answers seen on the TCP stream (RFC 5626 §4.4.1).
    pub pongs: usize,
    /// The peer closed the TCP connection.
    pub closed: bool,
}

/// A socket timeout must be non-zero.
fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

impl SipClient {
    pub fn udp(server: SocketAddr) -> SipClient {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        SipClient::udp_bound(any, server).expect("bind UDP client socket")
    }

    /// A UDP client on a chosen local address (a test that must receive responses sent to a
    /// Via sent-by port, such as 5060 on an address of 127/8 of its own).
    pub fn udp_bound(local: SocketAddr, server: SocketAddr) -> std::io::Result<SipClient> {
        let sock = UdpSocket::bind(local)?;
        let local = sock.local_addr()?;
        Ok(SipClient {
            transport: Transport::Udp,
            server,
            local,
            udp: Some(sock),
            tcp: None,
            rx: Vec::new(),
            backlog: VecDeque::new(),
            pongs: 0,
            closed: false,
        })
    }

    /// Asks the kernel for a larger UDP receive buffer (capped at `net.core.rmem_max`): a
    /// client that sends thousands of requests before reading must not lose their answers.
    pub fn set_recv_buffer(&self, bytes: usize) {
        let sock = self.udp.as_ref().expect("a UDP client");
        socket2::SockRef::from(sock)
            .set_recv_buffer_size(bytes)
            .expect("SO_RCVBUF");
    }

    pub fn tcp(server: SocketAddr) -> SipClient {
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("TCP connect to {server}: {e}"));
        // Tests that split messages need each write to leave as its own segment.
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let local = stream.local_addr().expect("TCP local addr");
        SipClient {
            transport: Transport::Tcp,
            server,
            local,
            udp: None,
            tcp: Some(stream),
            rx: Vec::new(),
            backlog: VecDeque::new(),
            pongs: 0,
            closed: false,
        }
    }

    pub fn new(transport: Transport, server: SocketAddr) -> SipClient {
        match transport {
            Transport::Udp => SipClient::udp(server),
            Transport::Tcp => SipClient::tcp(server),
        }
    }

    pub fn send(&mut self, msg: &str) {
        self.send_bytes(msg.as_bytes());
    }

    /// One datagram over UDP, one write over TCP.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        if let Some(sock) = &self.udp {
            sock.send_to(bytes, self.server).expect("UDP send");
        } else if let Some(stream) = &mut self.tcp {
            stream.write_all(bytes).expect("TCP write");
        }
    }

    /// Like `send_bytes` but reports a failure (a TCP peer that already closed).
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(sock) = &self.udp {
            sock.send_to(bytes, self.server).map(|_| ())
        } else if let Some(stream) = &mut self.tcp {
            stream.write_all(bytes)
        } else {
            Ok(())
        }
    }

    /// Sends a message over TCP in pieces of `chunk` bytes with `delay` between them.
    pub fn send_split(&mut self, msg: &str, chunk: usize, delay: Duration) {
        for piece in msg.as_bytes().chunks(chunk.max(1)) {
            self.send_bytes(piece);
            std::thread::sleep(delay);
        }
    }

    pub fn shutdown_write(&mut self) {
        if let Some(stream) = &self.tcp {
            let _ = stream.shutdown(Shutdown::Write);
        }
    }

    /// Next message (backlog first), or `None` after `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        self.read_one(Instant::now() + timeout)
    }

    fn read_one(&mut self, deadline: Instant) -> Option<Msg> {
        if self.udp.is_some() {
            self.read_udp(deadline)
        } else {
            self.read_tcp(deadline)
        }
    }

    fn read_udp(&mut self, deadline: Instant) -> Option<Msg> {
        let sock = self.udp.as_ref()?;
        let mut buf = vec![0u8; 70_000];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            sock.set_read_timeout(Some(at_least_1ms(deadline - now)))
                .expect("set UDP timeout");
            match sock.recv_from(&mut buf) {
                Ok((n, _from)) => {
                    if let Some(m) = Msg::parse(&buf[..n]) {
                        return Some(m);
                    }
                    // A datagram that is not SIP (or a bare keep-alive) is not for us.
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => panic!("UDP recv: {e}"),
            }
        }
    }

    /// Frames one message out of `rx`, consuming keep-alive CRLFs in front of it.
    fn frame_tcp(&mut self) -> Option<Msg> {
        let (crlfs, msg) = frame_stream(&mut self.rx);
        self.pongs += crlfs;
        msg
    }

    fn read_tcp(&mut self, deadline: Instant) -> Option<Msg> {
        self.read_tcp_frames(deadline, false)
    }
    /// Waits for a keep-alive CRLF answer; true when one arrived in time.
    pub fn wait_pong(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let before = self.pongs;
        while self.pongs == before && Instant::now() < deadline && !self.closed {
            if let Some(m) = self.read_tcp_until(deadline) {
                self.backlog.push_back(m);
            }
        }
        self.pongs > before
    }

    /// Reads whatever arrives until the deadline or the first framed message.
    fn read_tcp_until(&mut self, deadline: Instant) -> Option<Msg> {
        self.read_tcp_frames(deadline, true)
    }

    /// The next framed message before `deadline`; with `until_pong`, also stops at a
    /// keep-alive answer and takes a failed read for a closed connection.
    fn read_tcp_frames(&mut self, deadline: Instant, until_pong: bool) -> Option<Msg> {
        let before = self.pongs;
        let mut buf = vec![0u8; 65_536];
        loop {
            if let Some(m) = self.frame_tcp() {
                return Some(m);
            }
            let now = Instant::now();
            if (until_pong && self.pongs != before) || self.closed || now >= deadline {
                return None;
            }
            let stream = self.tcp.as_mut()?;
            stream
                .set_read_timeout(Some(at_least_1ms(deadline - now)))
                .expect("set TCP timeout");
            match stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.rx.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e)
                    if until_pong
                        || matches!(
                            e.kind(),
                            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                        ) =>
                {
                    self.closed = true
                }
                Err(e) => panic!("TCP read: {e}"),
            }
        }
    }
    /// Waits until the TCP peer closes the connection; true when it did in time.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            if let Some(m) = self.read_one(deadline) {
                self.backlog.push_back(m);
            }
        }
        self.closed
    }

    /// Waits for the final response (or the provisional `code`, when `code < 200`) to the
    /// request identified by Call-ID and CSeq method. Provisional responses seen on the way
    /// are returned too. Requests that arrive meanwhile are kept for `recv`/`expect_request`;
    /// responses to other transactions (retransmissions) are dropped.
    pub fn wait_response(
        &mut self,
        call_id: &str,
        method: &str,
        code: u16,
        timeout: Duration,
    ) -> Option<(Vec<Msg>, Msg)> {
        self.wait_matching(call_id, None, method, code, timeout)
    }

    /// `wait_response` for the request `req` as sent: matches Call-ID, CSeq number and
    /// method, so that retransmitted responses of earlier transactions are not taken.
    pub fn wait_reply(
        &mut self,
        req: &str,
        code: u16,
        timeout: Duration,
    ) -> Option<(Vec<Msg>, Msg)> {
        let r = Msg::parse(req.as_bytes()).expect("request to match is not SIP");
        let (n, method) = r.cseq();
        self.wait_matching(r.call_id(), Some(n), &method, code, timeout)
    }

    /// Expects response `code` to the request `req` as sent; panics with what came instead.
    pub fn expect_reply(&mut self, req: &str, code: u16, timeout: Duration) -> Msg {
        match self.wait_reply(req, code, timeout) {
            Some((_, m)) if m.status() == Some(code) => m,
            Some((_, m)) => panic!(
                "expected {code}, got:\n{}\nin reply to:\n{req}",
                String::from_utf8_lossy(&m.raw)
            ),
            None => panic!("no {code} within {timeout:?} in reply to:\n{req}"),
        }
    }

    fn wait_matching(
        &mut self,
        call_id: &str,
        cseq: Option<u32>,
        method: &str,
        code: u16,
        timeout: Duration,
    ) -> Option<(Vec<Msg>, Msg)> {
        let deadline = Instant::now() + timeout;
        let mut provisional = Vec::new();
        let mut kept = Vec::new();
        let mut found = None;
        while let Some(m) = self.next_until(deadline) {
            if !m.is_response() {
                kept.push(m);
                continue;
            }
            let (n, m_method) = m.cseq();
            if m.call_id() != call_id
                || !m_method.eq_ignore_ascii_case(method)
                || cseq.is_some_and(|c| c != n)
            {
                continue;
            }
            let status = m.status().unwrap_or(0);
            if status < 200 && code >= 200 {
                provisional.push(m);
                continue;
            }
            if status < 200 && status != code {
                continue;
            }
            found = Some((provisional, m));
            break;
        }
        // Keep unrelated requests in arrival order, ahead of anything newer.
        for m in kept.into_iter().rev() {
            self.backlog.push_front(m);
        }
        found
    }

    /// Backlog first, then the socket. Callers set aside what they skip in their own list,
    /// so a wait never sees the same message twice.
    fn next_until(&mut self, deadline: Instant) -> Option<Msg> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        self.read_one(deadline)
    }

    /// Expects the response `code` to `method` of `call_id`; panics with the message
    /// actually received otherwise.
    pub fn expect_response(
        &mut self,
        call_id: &str,
        method: &str,
        code: u16,
        timeout: Duration,
    ) -> Msg {
        match self.wait_response(call_id, method, code, timeout) {
            Some((_, m)) if m.status() == Some(code) => m,
            Some((_, m)) => panic!(
                "expected {code} to {method}, got:\n{}",
                String::from_utf8_lossy(&m.raw)
            ),
            None => panic!("no {code} response to {method} (Call-ID {call_id}) within {timeout:?}"),
        }
    }

    /// Next final response of any transaction (provisional ones skipped), asserted to be
    /// `code` (or the next provisional `code` when `code < 200`).
    pub fn expect_status(&mut self, code: u16, timeout: Duration) -> Msg {
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.recv(deadline.saturating_duration_since(Instant::now())) {
            let Some(status) = m.status() else {
                continue;
            };
            if status < 200 && code >= 200 {
                continue;
            }
            assert_eq!(
                status,
                code,
                "unexpected response:\n{}",
                String::from_utf8_lossy(&m.raw)
            );
            return m;
        }
        panic!("no {code} response within {timeout:?}");
    }

    /// Next request with this method; responses on the way are dropped, other requests kept.
    pub fn wait_request(&mut self, method: &str, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        let mut kept = Vec::new();
        let mut found = None;
        while let Some(m) = self.next_until(deadline) {
            match m.method() {
                Some(me) if me.eq_ignore_ascii_case(method) => {
                    found = Some(m);
                    break;
                }
                Some(_) => kept.push(m),
                None => {}
            }
        }
        for m in kept.into_iter().rev() {
            self.backlog.push_front(m);
        }
        found
    }

    pub fn expect_request(&mut self, method: &str, timeout: Duration) -> Msg {
        self.wait_request(method, timeout)
            .unwrap_or_else(|| panic!("no {method} request within {timeout:?}"))
    }

    /// Answers a request the recorder sent (e.g. its BYE) with `code`, no body.
    pub fn respond(&mut self, req: &Msg, code: u16, reason: &str) {
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for via in req.header_all("via") {
            out.push_str(&format!("Via: {via}\r\n"));
        }
        for name in ["from", "to", "call-id", "cseq"] {
            let v = req.header(name).unwrap_or("");
            let label = match name {
                "from" => "From",
                "to" => "To",
                "call-id" => "Call-ID",
                _ => "CSeq",
            };
            out.push_str(&format!("{label}: {v}\r\n"));
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        self.send(&out);
    }
}
