//! Server transactions (RFC 3261 §17.2): how a request is matched to one, the state it is in,
//! the response it caches and where that response goes. Shaped like ezk-sip-core's
//! `transaction/server_inv.rs`: a transaction only tracks state and retransmission; what a
//! request means is decided by the UAS around it.
//!
//! Timers (armed by the UAS in its deadline heap, one generation-free entry per event):
//! * G — non-2xx final response to an INVITE over UDP: retransmit, T1 doubling to T2.
//! * H — 64*T1 after a non-2xx final response to an INVITE: stop waiting for the ACK.
//! * I — after that ACK: absorb ACK retransmissions for T4 (UDP), 0 over TCP/TLS.
//! * J — 64*T1 after the final response to a non-INVITE: absorb retransmissions. Kept over
//!   TCP/TLS too (RFC 3261 says 0) so that a retransmission on a *new* connection is still
//!   answered from the cache instead of being acted on twice.
//!
//! A 2xx to an INVITE keeps the transaction for 64*T1 as well (RFC 6026 "Accepted" state,
//! Timer L): INVITE retransmissions get the 2xx again, the ACK goes to the dialog.

use crate::sip::Flow;
use crate::sip::message::{Method, SipRequest};
use bytes::Bytes;
use std::time::Duration;

/// RFC 3261 §17.2.1: T4, how long a message may stay in the network. Not configurable: it
/// only bounds how long ACK retransmissions are absorbed.
pub(super) const T4: Duration = Duration::from_secs(5);

/// The RFC 3261 branch magic cookie.
const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a server transaction (RFC 3261 §17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum TxKey {
    /// Branch with the magic cookie: branch + sent-by + method (ACK counts as INVITE).
    Rfc3261 {
        branch: String,
        sent_by: SentBy,
        method: Method,
    },
    /// RFC 2543 peers (no cookie): Request-URI, From tag, Call-ID, CSeq number, the top Via
    /// and the method (ACK counts as INVITE). The To tag is left out: the INVITE had none and
    /// its ACK carries ours, and one recorder answers each INVITE with exactly one tag.
    Rfc2543 {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        top_via: TopVia,
        method: Method,
    },
}

/// The sent-by of the top Via: host compared case-insensitively, port defaulted by transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SentBy {
    host: String,
    port: u16,
}

/// The top Via of an RFC 2543 request, as far as it identifies the sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TopVia {
    transport: String,
    sent_by: SentBy,
    branch: Option<String>,
}

impl TxKey {
    /// The transaction `req` belongs to: its own, or for an ACK the INVITE's.
    pub(super) fn of(req: &SipRequest) -> TxKey {
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        Self::with_method(req, method)
    }

    /// The INVITE transaction a CANCEL cancels: the same key with the method INVITE.
    pub(super) fn cancelled_invite(cancel: &SipRequest) -> TxKey {
        Self::with_method(cancel, Method::Invite)
    }

    fn with_method(req: &SipRequest, method: Method) -> TxKey {
        let top = req.vias.first();
        let sent_by = SentBy {
            host: top.map(|v| v.host.to_ascii_lowercase()).unwrap_or_default(),
            port: top.map_or(5060, |v| {
                v.port
                    .unwrap_or(if v.transport == "TLS" { 5061 } else { 5060 })
            }),
        };
        match req.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => TxKey::Rfc3261 {
                branch: branch.to_string(),
                sent_by,
                method,
            },
            branch => TxKey::Rfc2543 {
                request_uri: req.uri_raw.clone(),
                from_tag: req.from.tag.clone().unwrap_or_default(),
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                top_via: TopVia {
                    transport: top.map(|v| v.transport.clone()).unwrap_or_default(),
                    sent_by,
                    branch: branch.map(str::to_string),
                },
                method,
            },
        }
    }

    pub(super) fn is_invite(&self) -> bool {
        let method = match self {
            TxKey::Rfc3261 { method, .. } | TxKey::Rfc2543 { method, .. } => method,
        };
        *method == Method::Invite
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxState {
    /// Received, no final response yet (an INVITE waiting for its recording).
    Proceeding,
    /// Final non-2xx response to an INVITE sent (waiting for the ACK), or final response to
    /// a non-INVITE sent (absorbing retransmissions).
    Completed,
    /// The ACK of a non-2xx INVITE response arrived; absorbing its retransmissions.
    Confirmed,
    /// 2xx to an INVITE sent (RFC 6026): retransmissions get it again, ACKs go to the dialog.
    Accepted,
}

/// One server transaction.
pub(super) struct ServerTx {
    pub(super) state: TxState,
    invite: bool,
    /// The last response sent (provisional or final), repeated on retransmissions.
    response: Option<Bytes>,
    /// Where responses go: the flow of the latest copy of the request.
    pub(super) flow: Flow,
    /// Timer G's current interval; zero once it stopped.
    retransmit: Duration,
    /// Call-ID and CSeq number of the request that created it: a copy with other values is
    /// not a retransmission, whatever its branch says.
    fingerprint: (String, u32),
}

impl ServerTx {
    pub(super) fn new(req: &SipRequest, key: &TxKey, flow: Flow) -> ServerTx {
        ServerTx {
            state: TxState::Proceeding,
            invite: key.is_invite(),
            response: None,
            flow,
            retransmit: Duration::ZERO,
            fingerprint: (req.call_id.clone(), req.cseq),
        }
    }

    /// Whether `req`, which has this transaction's key, is a copy of its request. RFC 4475
    /// reuses one branch and sent-by for unrelated requests; a sender that does the same must
    /// not get another request's answer.
    pub(super) fn is_copy_of(&self, req: &SipRequest) -> bool {
        self.fingerprint.0 == req.call_id && self.fingerprint.1 == req.cseq
    }

    /// A provisional response went out.
    pub(super) fn provisional(&mut self, response: Bytes) {
        self.response = Some(response);
    }

    /// A final response went out. Returns whether Timer G must be armed (non-2xx INVITE
    /// response over UDP) with its first interval `t1`.
    pub(super) fn finish(&mut self, code: u16, response: Bytes, t1: Duration) -> bool {
        self.response = Some(response);
        if self.invite && (200..300).contains(&code) {
            self.state = TxState::Accepted;
            return false;
        }
        self.state = TxState::Completed;
        let timer_g = self.invite && !self.flow.is_reliable();
        if timer_g {
            self.retransmit = t1;
        }
        timer_g
    }

    /// A copy of the request arrived again, on `flow`: later responses go there, and the
    /// cached one (if any) is repeated there now.
    pub(super) fn retransmission(&mut self, flow: Flow) -> Option<(Flow, Bytes)> {
        self.flow = flow;
        self.response.clone().map(|r| (flow, r))
    }

    /// The ACK of a non-2xx final response: stop Timer G. Returns whether it matched (true
    /// also for ACK retransmissions, which are absorbed).
    pub(super) fn ack(&mut self) -> bool {
        match self.state {
            TxState::Completed if self.invite => {
                self.state = TxState::Confirmed;
                self.retransmit = Duration::ZERO;
                true
            }
            TxState::Confirmed => true,
            _ => false,
        }
    }

    /// How long ACK retransmissions are absorbed once Confirmed (Timer I).
    pub(super) fn timer_i(&self) -> Duration {
        if self.flow.is_reliable() {
            Duration::ZERO
        } else {
            T4
        }
    }

    /// Timer G fired: the response to retransmit and the next interval, unless ACKed.
    pub(super) fn timer_g(&mut self, t2: Duration) -> Option<(Flow, Bytes, Duration)> {
        if self.state != TxState::Completed || self.retransmit.is_zero() {
            return None;
        }
        let response = self.response.clone()?;
        self.retransmit = (self.retransmit * 2).min(t2);
        Some((self.flow, response, self.retransmit))
    }
}
