//! Sans-IO SIP: wire format, transactions, dialogs and the UAS logic of a recorder.

pub mod classify;
pub mod correlation;
pub mod framing;
pub mod message;
pub mod session_timer;
pub mod source_policy;
pub mod timers;
pub mod transaction_log;
pub mod transport;
pub mod uas;
pub mod uri;

use std::net::SocketAddr;
pub use transport::Transport;

/// Where a message came from and how to answer it: the transport, our advertised address
/// on it, the peer, and (for TCP/TLS) the connection it arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    /// Our address as put in Via/Contact (the listener's, with an unspecified IP replaced
    /// by the advertised one).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Which listener it arrived on (index into the configured listeners).
    pub listener: u16,
    pub connection: Option<u64>,
}

impl Flow {
    pub fn is_reliable(&self) -> bool {
        self.transport != Transport::Udp
    }
}
