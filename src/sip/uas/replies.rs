//! Response builders, server transaction completion and transaction logging of responses.

use super::{Output, ServerTx, Timer, TxKey, TxState, Uas};
use crate::sip::Flow;
use crate::sip::message::{Method, OutgoingResponse, SipRequest};
use crate::sip::transaction_log::{TransactionRecord, event_for};
use bytes::Bytes;
use std::time::{Duration, Instant};

impl Uas {
    /// Record the final response of a server transaction and arm its timers.
    pub(super) fn finish_tx(&mut self, now: Instant, key: &TxKey, bytes: Bytes, success: bool) {
        let Some(tx) = self.server_txs.get_mut(key) else {
            return;
        };
        tx.state = TxState::Completed;
        tx.last_response = Some(bytes);
        let code = if success { 200 } else { 0 };
        let reliable = tx.flow.is_reliable();
        if key.invite && !success && !reliable {
            tx.retransmit = self.cfg.t1;
            self.timers.schedule(
                now + self.cfg.t1,
                Timer::RetransmitFinal { tx: key.clone() },
            );
        } else if key.invite && !success {
            tx.retransmit = Duration::ZERO;
        }
        // Timer H / L / J: absorb retransmissions for 64*T1 (RFC 6026 accepted state).
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::ExpireTx { tx: key.clone() });
        if code == 200 {
            self.count_response(200);
        }
    }

    /// Answer a request with a final response, caching it in a new server transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reply(
        &mut self,
        now: Instant,
        req: &SipRequest,
        flow: Flow,
        key: &TxKey,
        code: u16,
        to_tag: Option<&str>,
        headers: Vec<(String, String)>,
    ) {
        self.reply_with(now, req, flow, key, code, to_tag, headers, None);
    }

    /// [`Self::reply`] with an SDP body.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reply_with(
        &mut self,
        now: Instant,
        req: &SipRequest,
        flow: Flow,
        key: &TxKey,
        code: u16,
        to_tag: Option<&str>,
        headers: Vec<(String, String)>,
        body: Option<Bytes>,
    ) {
        let generated;
        let tag = match to_tag {
            Some(t) => Some(t),
            None if req.to.tag.is_none() => {
                generated = self.new_tag();
                Some(generated.as_str())
            }
            None => None,
        };
        let mut resp = self.response(req, code, tag);
        resp.headers.extend(headers);
        if let Some(sdp) = &body {
            resp.body = Some(("application/sdp".to_string(), sdp.clone()));
        }
        let bytes = resp.to_bytes();
        let mut log = TransactionRecord::incoming(req, event_for(req, code), flow, now);
        log.local_tag = tag.map(str::to_string).or(log.local_tag);
        log.sdp_out = body.map(|b| String::from_utf8_lossy(&b).into_owned());
        log.code = Some(code);
        log.response_at = Some(now);
        self.outputs.push_back(Output::Transaction(Box::new(log)));
        let invite_failure = key.invite && code >= 300;
        self.server_txs.insert(
            key.clone(),
            ServerTx {
                state: TxState::Completed,
                last_response: Some(bytes.clone()),
                flow,
                retransmit: if invite_failure && !flow.is_reliable() {
                    self.cfg.t1
                } else {
                    Duration::ZERO
                },
            },
        );
        if invite_failure && !flow.is_reliable() {
            self.timers.schedule(
                now + self.cfg.t1,
                Timer::RetransmitFinal { tx: key.clone() },
            );
        }
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::ExpireTx { tx: key.clone() });
        self.count_response(code);
        self.transmit(flow, bytes);
    }

    /// Report a final response sent outside [`Self::reply_with`] (INVITE 2xx, 487, late 5xx).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn log_response(
        &mut self,
        req: &SipRequest,
        flow: Flow,
        request_at: Instant,
        now: Instant,
        code: u16,
        local_tag: &str,
        sdp_out: Option<String>,
    ) {
        let mut log = TransactionRecord::incoming(req, event_for(req, code), flow, request_at);
        log.local_tag = Some(local_tag.to_string());
        log.sdp_out = sdp_out;
        if req.method == Method::Invite && req.to.tag.is_none() {
            log.provisional = vec![100]; // answered after the recording was prepared
        }
        log.code = Some(code);
        log.response_at = Some(now);
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
