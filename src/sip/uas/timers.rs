//! Timer expiry (`fire`) and the arming of 2xx retransmission and session timers.

use super::{ClientTx, DialogId, Output, Timer, TxKey, Uas};
use crate::recording::EndReason;
use crate::sip::Flow;
use crate::sip::message::Method;
use std::time::Instant;

impl Uas {
    pub(super) fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Retransmit2xx { dialog, cseq } => self.retransmit_2xx(now, dialog, cseq),
            Timer::AckTimeout { dialog, cseq } => self.ack_timeout(now, dialog, cseq),
            Timer::TimerG { tx } => self.retransmit_response(now, tx),
            Timer::ExpireTx { tx } => {
                self.server_txs.remove(&tx);
            }
            Timer::SessionExpiry { dialog, generation } => {
                if self
                    .dialogs
                    .get(&dialog)
                    .is_some_and(|d| d.timer_generation == generation)
                {
                    self.terminate(now, dialog, EndReason::SessionTimeout);
                }
            }
            Timer::SessionRefresh { dialog, generation } => {
                if self
                    .dialogs
                    .get(&dialog)
                    .is_some_and(|d| d.timer_generation == generation && d.unacked.is_none())
                {
                    // RFC 4028 §7.4: an UPDATE without a body refreshes the session.
                    self.send_in_dialog_request(now, dialog, Method::Update);
                }
            }
            Timer::ClientRetransmit { branch } => self.retransmit_request(now, branch),
            Timer::GlareRetryUpdate { dialog, generation } => {
                self.glare_retry_update(now, dialog, generation)
            }
            Timer::GlareRetryBye {
                request,
                log,
                retries,
            } => self.glare_retry_bye(now, *request, *log, retries),
            Timer::ClientTimeout { branch } => self.client_timeout(now, &branch),
        }
    }

    /// Resends an unacknowledged 2xx, doubling the interval up to T2 (RFC 3261 §13.3.1.4).
    fn retransmit_2xx(&mut self, now: Instant, dialog: DialogId, cseq: u32) {
        let Some(d) = self.dialogs.get_mut(&dialog) else {
            return;
        };
        let Some(unacked) = d.unacked.as_mut().filter(|u| u.cseq == cseq) else {
            return;
        };
        unacked.interval = (unacked.interval * 2).min(self.cfg.t2);
        let (bytes, next, flow) = (unacked.response.clone(), unacked.interval, unacked.flow);
        self.timers
            .schedule(now + next, Timer::Retransmit2xx { dialog, cseq });
        self.transmit(flow, bytes);
    }

    fn ack_timeout(&mut self, now: Instant, dialog: DialogId, cseq: u32) {
        let acked = self
            .dialogs
            .get(&dialog)
            .is_none_or(|d| d.unacked.as_ref().is_none_or(|u| u.cseq != cseq));
        if !acked {
            // RFC 3261 §13.3.1.4: no ACK within 64*T1 → end the session with BYE.
            self.dialogs.get_mut(&dialog).expect("checked").unacked = None;
            self.terminate(now, dialog, EndReason::AckTimeout);
        }
    }

    /// Timer G: a server transaction resends its final non-2xx response over UDP.
    fn retransmit_response(&mut self, now: Instant, tx: TxKey) {
        let Some(t) = self.server_txs.get_mut(&tx) else {
            return;
        };
        if let Some((flow, bytes, next)) = t.timer_g(self.cfg.t2) {
            self.timers.schedule(now + next, Timer::TimerG { tx });
            self.transmit(flow, bytes);
        }
    }

    /// Resends a request the recorder sent, doubling the interval up to T2.
    fn retransmit_request(&mut self, now: Instant, branch: String) {
        let Some(tx) = self.client_txs.get_mut(&branch) else {
            return;
        };
        tx.interval = (tx.interval * 2).min(self.cfg.t2);
        tx.log.retransmissions += 1;
        let (next, flow, bytes) = (tx.interval, tx.flow, tx.request.clone());
        self.timers
            .schedule(now + next, Timer::ClientRetransmit { branch });
        self.transmit(flow, bytes);
    }

    fn client_timeout(&mut self, now: Instant, branch: &str) {
        let Some(mut tx) = self.client_txs.remove(branch) else {
            return;
        };
        tx.log.timed_out = true;
        // No response within 64*T1: as if 408 (RFC 3261 §8.1.3.1).
        self.log_client(&tx, 408, now);
        if let Some(d) = tx.dialog.and_then(|id| self.dialogs.get_mut(&id)) {
            d.update_in_flight = false;
        }
    }

    /// Report a request the recorder sent (BYE) once it is answered or timed out.
    pub(super) fn log_client(&mut self, tx: &ClientTx, code: u16, now: Instant) {
        if tx.method != Method::Bye {
            return;
        }
        let mut log = tx.log.clone();
        log.code = Some(code);
        log.response_at = Some(now);
        self.outputs.push_back(Output::Transaction(Box::new(log)));
    }

    pub(super) fn arm_2xx_timers(&mut self, now: Instant, dialog: DialogId, cseq: u32, flow: Flow) {
        if !flow.is_reliable() {
            self.timers
                .schedule(now + self.cfg.t1, Timer::Retransmit2xx { dialog, cseq });
        }
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::AckTimeout { dialog, cseq });
    }

    pub(super) fn restart_session_timer(&mut self, now: Instant, dialog_id: DialogId) {
        let Some(d) = self.dialogs.get_mut(&dialog_id) else {
            return;
        };
        let Some(timer) = d.session_timer else { return };
        d.timer_generation += 1;
        let generation = d.timer_generation;
        let refresh = timer.refresh_due(now).filter(|_| d.allows_update);
        self.timers.schedule(
            timer.expiry(now),
            Timer::SessionExpiry {
                dialog: dialog_id,
                generation,
            },
        );
        if let Some(at) = refresh {
            self.timers.schedule(
                at,
                Timer::SessionRefresh {
                    dialog: dialog_id,
                    generation,
                },
            );
        }
    }
}
