//! Building final responses, completing server transactions and logging responses.

use super::transaction::{ServerTx, TxKey, TxState};
use super::{Output, Timer, Uas};
use crate::sip::Flow;
use crate::sip::message::{Method, OutgoingResponse, SipRequest};
use crate::sip::transaction_log::{TransactionRecord, event_for};
use bytes::Bytes;
use std::time::Instant;

/// A final response to build: `Reply::new(420).header("Unsupported", ..)`.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    code: u16,
    /// Our To tag; `None` on a request without one makes a fresh tag.
    to_tag: Option<String>,
    headers: Vec<(String, String)>,
    sdp: Option<Bytes>,
    /// Whether the finished transaction is reported for the EDR log.
    reported: bool,
}

impl Reply {
    pub(super) fn new(code: u16) -> Reply {
        Reply {
            code,
            to_tag: None,
            headers: vec![],
            sdp: None,
            reported: true,
        }
    }

    /// No transaction report for this answer (load shedding).
    pub(super) fn unreported(mut self) -> Reply {
        self.reported = false;
        self
    }

    pub(super) fn tag(mut self, tag: &str) -> Reply {
        self.to_tag = Some(tag.to_string());
        self
    }

    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub(super) fn headers(mut self, headers: Vec<(String, String)>) -> Reply {
        self.headers.extend(headers);
        self
    }

    pub(super) fn sdp(mut self, sdp: Option<Bytes>) -> Reply {
        self.sdp = sdp;
        self
    }
}

impl Uas {
    /// Answer `req` (which came on `flow`) with a final response in its server transaction,
    /// caching it for retransmissions and arming Timer G and H/J.
    pub(super) fn reply(&mut self, now: Instant, req: &SipRequest, flow: Flow, reply: Reply) {
        let tag = match reply.to_tag {
            Some(t) => Some(t),
            None if req.to.tag.is_none() => Some(self.new_tag()),
            None => None,
        };
        let mut resp = self.response(req, reply.code, tag.as_deref());
        resp.headers.extend(reply.headers);
        if let Some(sdp) = &reply.sdp {
            resp.body = Some(("application/sdp".to_string(), sdp.clone()));
        }
        let key = TxKey::of(req);
        self.server_txs
            .entry(key.clone())
            .or_insert_with(|| ServerTx::new(req, &key, flow));
        let Some(flow) = self.finish_tx(now, &key, reply.code, resp.to_bytes()) else {
            return;
        };
        let event = event_for(req, reply.code);
        if !reply.reported || !event.is_logged(self.cfg.report_acks) {
            return;
        }
        let mut log = TransactionRecord::incoming(req, event, flow, now);
        log.local_tag = tag.or(log.local_tag);
        log.sdp_out = reply.sdp.map(|b| String::from_utf8_lossy(&b).into_owned());
        log.code = Some(reply.code);
        log.response_at = Some(now);
        self.outputs.push_back(Output::Transaction(Box::new(log)));
    }

    /// Send the final response `bytes` of the transaction `key` on the flow of the latest
    /// copy of its request, cache it and arm the transaction's timers. Returns that flow.
    pub(super) fn finish_tx(
        &mut self,
        now: Instant,
        key: &TxKey,
        code: u16,
        bytes: Bytes,
    ) -> Option<Flow> {
        let tx = self.server_txs.get_mut(key)?;
        if tx.state != TxState::Proceeding {
            return None; // already answered
        }
        if tx.finish(code, bytes.clone(), self.cfg.t1) {
            self.timers
                .schedule(now + self.cfg.t1, Timer::TimerG { tx: key.clone() });
        }
        let flow = tx.flow;
        // Timer H / J / L: absorb retransmissions for 64*T1.
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::ExpireTx { tx: key.clone() });
        self.count_response(code);
        self.transmit(flow, bytes);
        Some(flow)
    }

    /// Report a final response sent outside [`Self::reply`] (INVITE 2xx, 487, late 5xx).
    pub(super) fn log_response(&mut self, req: &SipRequest, answered: Answered<'_>) {
        let event = event_for(req, answered.code);
        if !event.is_logged(self.cfg.report_acks) {
            return;
        }
        let mut log = TransactionRecord::incoming(req, event, answered.flow, answered.request_at);
        log.local_tag = Some(answered.local_tag.to_string());
        log.sdp_out = answered.sdp_out;
        if req.method == Method::Invite && req.to.tag.is_none() {
            log.provisional = vec![100]; // answered after the recording was prepared
        }
        log.code = Some(answered.code);
        log.response_at = Some(answered.at);
        self.outputs.push_back(Output::Transaction(Box::new(log)));
    }

    pub(super) fn response(
        &self,
        req: &SipRequest,
        code: u16,
        to_tag: Option<&str>,
    ) -> OutgoingResponse {
        let mut resp = OutgoingResponse::to_request(req, code, to_tag);
        if let Some(server) = &self.cfg.server_header {
            resp.headers.push(("Server".to_string(), server.clone()));
        }
        resp
    }

    pub(super) fn transmit_response(&mut self, flow: Flow, resp: OutgoingResponse) {
        self.count_response(resp.code);
        let bytes = resp.to_bytes();
        self.transmit(flow, bytes);
    }

    pub(super) fn count_response(&mut self, code: u16) {
        *self.stats.responses_by_code.entry(code).or_default() += 1;
    }

    pub(super) fn transmit(&mut self, flow: Flow, data: Bytes) {
        self.outputs.push_back(Output::Transmit { flow, data });
    }
}

/// A response sent outside [`Uas::reply`], for the EDR log.
pub(super) struct Answered<'a> {
    pub(super) code: u16,
    pub(super) flow: Flow,
    pub(super) request_at: Instant,
    pub(super) at: Instant,
    pub(super) local_tag: &'a str,
    pub(super) sdp_out: Option<String>,
}
