//! Requests the recorder sends inside a dialog (BYE, body-less UPDATE refreshes) and their
//! client transactions, including the RFC 3261 §14.1 glare retry after a 491.

use super::routing::format_host_port;
use super::{ClientTx, DialogId, Timer, Tolerance, Uas};
use crate::sip::message::{Method, OutgoingRequest, SipResponse};
use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
use rand::Rng;
use std::time::{Duration, Instant};

/// RFC 3261 §14.1: the UAS did not choose the Call-ID, so it waits 2.1–4 s (10 ms steps)
/// before retrying a request that got 491.
fn glare_delay(ten_ms_steps: u64) -> Duration {
    Duration::from_millis(ten_ms_steps * 10)
}
pub(super) const GLARE_STEPS: std::ops::RangeInclusive<u64> = 210..=400;
/// A BYE the SRC keeps refusing with 491 is given up after this many retries: the recording
/// has ended anyway.
const MAX_BYE_RETRIES: u8 = 3;

impl Uas {
    pub(super) fn handle_response(&mut self, now: Instant, resp: SipResponse) {
        let Some(branch) = resp.vias.first().and_then(|v| v.branch.clone()) else {
            return;
        };
        if resp.code < 200 {
            return;
        }
        let Some(tx) = self.client_txs.remove(&branch) else {
            return;
        };
        self.log_client(&tx, resp.code, now);
        if resp.code == 491 {
            self.retry_after_glare(now, tx);
            return;
        }
        if tx.method == Method::Update
            && let Some(dialog_id) = tx.dialog
            && let Some(dialog) = self.dialogs.get_mut(&dialog_id)
        {
            dialog.update_in_flight = false;
            if (200..300).contains(&resp.code) {
                self.restart_session_timer(now, dialog_id);
            }
        }
    }

    /// Our BYE or UPDATE met the SRC's own re-INVITE: retry after the randomised delay. The
    /// SRC's change itself was (or will be) answered normally.
    fn retry_after_glare(&mut self, now: Instant, tx: ClientTx) {
        let delay = glare_delay(self.rng.random_range(GLARE_STEPS));
        match tx.method {
            Method::Bye if tx.glare_retries >= MAX_BYE_RETRIES => {
                tracing::warn!(
                    call_id = tx.log.call_id,
                    "BYE refused with 491 again: given up"
                );
            }
            Method::Bye => {
                // The recording already ended; only the BYE is still owed to the SRC.
                *self
                    .stats
                    .tolerances
                    .entry(Tolerance::GlareRetry.as_str())
                    .or_default() += 1;
                self.timers.schedule(
                    now + delay,
                    Timer::GlareRetryBye {
                        request: Box::new(tx.template),
                        log: Box::new(tx.log),
                        retries: tx.glare_retries + 1,
                    },
                );
            }
            Method::Update => {
                let Some(dialog_id) = tx.dialog.filter(|id| self.dialogs.contains_key(id)) else {
                    return;
                };
                self.tolerate(
                    dialog_id,
                    Tolerance::GlareRetry,
                    "491 to our UPDATE: retrying",
                );
                let dialog = self.dialogs.get_mut(&dialog_id).expect("checked");
                dialog.update_in_flight = false;
                self.timers.schedule(
                    now + delay,
                    Timer::GlareRetryUpdate {
                        dialog: dialog_id,
                        generation: tx.generation,
                    },
                );
            }
            _ => {}
        }
    }

    /// Timer for a refresh UPDATE that got 491: resend it unless the session was refreshed
    /// meanwhile (the SRC's re-INVITE restarts the session timer and bumps its generation).
    pub(super) fn glare_retry_update(&mut self, now: Instant, dialog: DialogId, generation: u64) {
        let due = self.dialogs.get(&dialog).is_some_and(|d| {
            d.timer_generation == generation && !d.update_in_flight && d.unacked.is_none()
        });
        if due {
            self.send_in_dialog_request(now, dialog, Method::Update);
        }
    }

    /// Timer for a BYE that got 491: send it again with a new branch and CSeq.
    pub(super) fn glare_retry_bye(
        &mut self,
        now: Instant,
        mut request: OutgoingRequest,
        mut log: TransactionRecord,
        retries: u8,
    ) {
        request.cseq += 1;
        let branch = self.new_branch();
        request.via = replace_branch(&request.via, &branch);
        log.cseq = request.cseq;
        log.request_at = now;
        self.start_client_tx(now, branch.clone(), request, None, log);
        if let Some(tx) = self.client_txs.get_mut(&branch) {
            tx.glare_retries = retries;
        }
    }

    pub(super) fn send_in_dialog_request(
        &mut self,
        now: Instant,
        dialog_id: DialogId,
        method: Method,
    ) {
        let branch = self.new_branch();
        let server_header = self.cfg.server_header.clone();
        let dialog = self.dialogs.get_mut(&dialog_id).expect("caller checked");
        dialog.local_cseq += 1;
        let flow = dialog.flow;
        let request = OutgoingRequest {
            method: method.clone(),
            uri: dialog.remote_target.clone(),
            via: format!(
                "SIP/2.0/{} {};branch={};rport",
                flow.transport.as_str(),
                format_host_port(flow.local),
                branch
            ),
            route: dialog.route_set.clone(),
            from: dialog.local_uri_header.clone(),
            to: dialog.remote_uri_header.clone(),
            call_id: dialog.call_id.clone(),
            cseq: dialog.local_cseq,
            headers: match server_header {
                Some(ua) => vec![("User-Agent".to_string(), ua)],
                None => vec![],
            },
            body: None,
        };
        if method == Method::Update {
            dialog.update_in_flight = true;
        }
        let log = TransactionRecord {
            event: TransactionEvent::OutBye,
            method: method.as_str().to_string(),
            call_id: dialog.call_id.clone(),
            cseq: dialog.local_cseq,
            from_uri: request.from.clone(),
            to_uri: request.to.clone(),
            flow,
            via: None,
            local_tag: Some(dialog.local_tag.clone()),
            remote_tag: Some(dialog.remote_tag.clone()),
            sdp_in: None,
            sdp_out: None,
            provisional: vec![],
            code: None,
            request_at: now,
            response_at: None,
            retransmissions: 0,
            timed_out: false,
        };
        self.start_client_tx(now, branch, request, Some(dialog_id), log);
    }

    fn start_client_tx(
        &mut self,
        now: Instant,
        branch: String,
        request: OutgoingRequest,
        dialog: Option<DialogId>,
        log: TransactionRecord,
    ) {
        let bytes = request.to_bytes();
        let flow = log.flow;
        let generation = dialog
            .and_then(|id| self.dialogs.get(&id))
            .map_or(0, |d| d.timer_generation);
        self.client_txs.insert(
            branch.clone(),
            ClientTx {
                request: bytes.clone(),
                flow,
                interval: self.cfg.t1,
                dialog,
                method: request.method.clone(),
                template: request,
                generation,
                glare_retries: 0,
                log,
            },
        );
        if !flow.is_reliable() {
            self.timers.schedule(
                now + self.cfg.t1,
                Timer::ClientRetransmit {
                    branch: branch.clone(),
                },
            );
        }
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::ClientTimeout { branch });
        self.transmit(flow, bytes);
    }

    fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}", self.random_token(16))
    }
}

/// The Via we sent with its branch replaced (a retried request is a new transaction).
fn replace_branch(via: &str, branch: &str) -> String {
    match via.find(";branch=") {
        Some(start) => {
            let value_start = start + ";branch=".len();
            let end = via[value_start..]
                .find(';')
                .map_or(via.len(), |i| value_start + i);
            format!("{}{branch}{}", &via[..value_start], &via[end..])
        }
        None => format!("{via};branch={branch}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replace_branch_keeps_other_params() {
        assert_eq!(
            super::replace_branch(
                "SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKold;rport",
                "z9hG4bKnew"
            ),
            "SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKnew;rport"
        );
    }
}
