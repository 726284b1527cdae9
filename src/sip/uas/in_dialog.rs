//! Requests inside a dialog (re-INVITE, UPDATE, BYE), renegotiation, session timer refresh, and the BYE/UPDATE the recorder sends.

use super::routing::format_host_port;
use super::{
    ALLOW, ClientTx, DialogId, DialogState, RecordingEvent, Refusal, ServerTx, Timer, TxKey,
    TxState, Uas, Unacked2xx, warning,
};
use crate::recording::EndReason;
use crate::sdp::{AnswerError, MediaSession, Update, answer_reoffer, parse_offer};
use crate::sip::Flow;
use crate::sip::classify::{ACCEPTED_BODY_TYPES, BodyError, classify_body};
use crate::sip::message::{Method, OutgoingRequest, SipRequest, SipResponse};
use crate::sip::session_timer::{Negotiation, SessionExpires, negotiate};
use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
use bytes::Bytes;
use std::time::Instant;

impl Uas {
    pub(super) fn dialog_for(&self, req: &SipRequest) -> Option<DialogId> {
        let tag = req.to.tag.as_ref()?;
        let id = *self.dialog_index.get(&(req.call_id.clone(), tag.clone()))?;
        let d = &self.dialogs[&id];
        (req.from.tag.as_deref().unwrap_or("") == d.remote_tag).then_some(id)
    }

    pub(super) fn handle_in_dialog(
        &mut self,
        now: Instant,
        req: SipRequest,
        flow: Flow,
        key: TxKey,
    ) {
        let Some(dialog_id) = self.dialog_for(&req) else {
            self.reply(now, &req, flow, &key, 481, None, vec![]);
            return;
        };
        let dialog = &self.dialogs[&dialog_id];
        let local_tag = dialog.local_tag.clone();
        if req.cseq <= dialog.remote_cseq {
            // Not a retransmission (the transaction table caught those): out of order.
            self.reply(now, &req, flow, &key, 500, Some(&local_tag), vec![]);
            return;
        }
        self.dialogs.get_mut(&dialog_id).expect("found").remote_cseq = req.cseq;
        match req.method {
            Method::Bye => {
                self.reply(now, &req, flow, &key, 200, Some(&local_tag), vec![]);
                self.end_dialog(dialog_id, EndReason::Bye);
            }
            Method::Invite => self.handle_reinvite(now, req, flow, key, dialog_id),
            Method::Update => self.handle_update(now, req, flow, key, dialog_id),
            Method::Options => self.handle_options(now, &req, flow, &key),
            Method::Extension(_) => self.reply(
                now,
                &req,
                flow,
                &key,
                501,
                Some(&local_tag),
                vec![("Allow".into(), ALLOW.into())],
            ),
            _ => self.reply(
                now,
                &req,
                flow,
                &key,
                405,
                Some(&local_tag),
                vec![("Allow".into(), ALLOW.into())],
            ),
        }
    }

    /// Offer/answer for a re-INVITE or UPDATE, and the SIPREC metadata it carries.
    /// `Ok(None)`: no SDP in the request (metadata only, or nothing).
    fn renegotiate(
        &mut self,
        req: &SipRequest,
        dialog_id: DialogId,
    ) -> Result<Option<MediaSession>, Refusal> {
        let body = match classify_body(req) {
            Ok(b) => b,
            Err(BodyError::Unsupported(_)) => {
                return Err((
                    415,
                    vec![("Accept".to_string(), ACCEPTED_BODY_TYPES.to_string())],
                ));
            }
            Err(BodyError::BadMultipart(e)) => {
                return Err((400, vec![warning(399, &e.to_string())]));
            }
        };
        let media = match body.sdp {
            Some(sdp) => Some(self.answer_in_dialog_offer(&sdp, dialog_id)?),
            None => None,
        };
        // Only an accepted request changes the recording's metadata.
        if let Some(metadata) = body.siprec_metadata {
            let recording_id = self.dialogs[&dialog_id].recording_id.clone();
            self.emit(RecordingEvent::MetadataUpdated {
                recording_id,
                metadata,
            });
        }
        Ok(media)
    }

    fn answer_in_dialog_offer(
        &mut self,
        sdp: &Bytes,
        dialog_id: DialogId,
    ) -> Result<MediaSession, Refusal> {
        let offer = parse_offer(sdp).map_err(|e| (488, vec![warning(399, &e.to_string())]))?;
        let current = self.dialogs[&dialog_id].media.clone();
        match answer_reoffer(&current, &offer, &self.cfg.answer, &mut self.pool) {
            Ok(Update::Unchanged) => Ok(current),
            Ok(Update::Changed(media)) => {
                self.apply_media(dialog_id, media.clone());
                Ok(media)
            }
            Err(AnswerError::NotAcceptable {
                warning_code,
                warning: text,
            }) => Err((488, vec![warning(warning_code, &text)])),
            Err(AnswerError::NoPorts) => Err((
                503,
                vec![(
                    "Retry-After".to_string(),
                    self.cfg.retry_after_secs.to_string(),
                )],
            )),
        }
    }

    pub(super) fn apply_media(&mut self, dialog_id: DialogId, media: MediaSession) {
        let dialog = self.dialogs.get_mut(&dialog_id).expect("caller checked");
        dialog.media = media.clone();
        let recording_id = dialog.recording_id.clone();
        self.emit(RecordingEvent::MediaChanged {
            recording_id,
            media,
        });
    }

    /// A refresh request may carry a new Session-Expires; `Err(min_se)` → 422.
    fn refresh_session_timer(&mut self, req: &SipRequest, dialog_id: DialogId) -> Result<(), u32> {
        let se = req
            .header("Session-Expires")
            .and_then(SessionExpires::parse);
        if se.is_some() {
            let supports = req.header_tokens("Supported").iter().any(|t| t == "timer");
            match negotiate(se, supports, self.cfg.min_se) {
                Negotiation::TooSmall { min_se } => return Err(min_se),
                Negotiation::Timer(t) => {
                    self.dialogs
                        .get_mut(&dialog_id)
                        .expect("exists")
                        .session_timer = Some(t)
                }
                Negotiation::None => {}
            }
        }
        Ok(())
    }

    fn handle_reinvite(
        &mut self,
        now: Instant,
        req: SipRequest,
        flow: Flow,
        key: TxKey,
        dialog_id: DialogId,
    ) {
        let dialog = &self.dialogs[&dialog_id];
        let local_tag = dialog.local_tag.clone();
        if dialog.unacked.is_some() || dialog.update_in_flight {
            // Offer/answer still in progress (RFC 3261 §14.2).
            self.reply(now, &req, flow, &key, 491, Some(&local_tag), vec![]);
            return;
        }
        if let Err(min_se) = self.refresh_session_timer(&req, dialog_id) {
            self.reply(
                now,
                &req,
                flow,
                &key,
                422,
                Some(&local_tag),
                vec![("Min-SE".into(), min_se.to_string())],
            );
            return;
        }
        let media = match self.renegotiate(&req, dialog_id) {
            Ok(m) => m,
            Err((code, headers)) => {
                self.reply(now, &req, flow, &key, code, Some(&local_tag), headers);
                return;
            }
        };
        let dialog = self.dialogs.get_mut(&dialog_id).expect("exists");
        // Without SDP our current session goes as an offer; the answer comes in the ACK.
        dialog.expect_answer_in_ack = media.is_none();
        let resp = self.invite_ok(&req, dialog_id, &local_tag, true);
        let bytes = resp.to_bytes();
        let sdp = self.dialogs[&dialog_id].media.answer_sdp.clone();
        self.log_response(&req, flow, now, now, 200, &local_tag, Some(sdp));
        self.server_txs.insert(
            key.clone(),
            ServerTx {
                state: TxState::Completed,
                last_response: Some(bytes.clone()),
                flow,
                retransmit: self.cfg.t1,
            },
        );
        self.count_response(200);
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::ExpireTx { tx: key });
        let dialog = self.dialogs.get_mut(&dialog_id).expect("exists");
        dialog.unacked = Some(Unacked2xx {
            cseq: req.cseq,
            response: bytes.clone(),
            interval: self.cfg.t1,
        });
        let dflow = dialog.flow;
        self.transmit(flow, bytes);
        self.arm_2xx_timers(now, dialog_id, req.cseq, dflow);
        self.restart_session_timer(now, dialog_id);
    }

    fn handle_update(
        &mut self,
        now: Instant,
        req: SipRequest,
        flow: Flow,
        key: TxKey,
        dialog_id: DialogId,
    ) {
        let local_tag = self.dialogs[&dialog_id].local_tag.clone();
        if let Err(min_se) = self.refresh_session_timer(&req, dialog_id) {
            self.reply(
                now,
                &req,
                flow,
                &key,
                422,
                Some(&local_tag),
                vec![("Min-SE".into(), min_se.to_string())],
            );
            return;
        }
        match self.renegotiate(&req, dialog_id) {
            Ok(media) => {
                let mut headers = vec![];
                if let Some(t) = self.dialogs[&dialog_id].session_timer {
                    headers.push(("Session-Expires".to_string(), t.header_value()));
                }
                let body = media.map(|m| Bytes::from(m.answer_sdp));
                self.reply_with(now, &req, flow, &key, 200, Some(&local_tag), headers, body);
                self.restart_session_timer(now, dialog_id);
            }
            Err((code, headers)) => {
                self.reply(now, &req, flow, &key, code, Some(&local_tag), headers)
            }
        }
    }

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

    pub(super) fn terminate(&mut self, now: Instant, dialog_id: DialogId, reason: EndReason) {
        let Some(dialog) = self.dialogs.get(&dialog_id) else {
            return;
        };
        if dialog.state == DialogState::Preparing {
            // Not answered yet: refuse instead of BYE.
            let key = dialog.invite_tx.clone();
            let local_tag = dialog.local_tag.clone();
            let recording_id = dialog.recording_id.clone();
            let flow = dialog.flow;
            if let Some((invite, received_at)) = self.pending_requests.remove(&dialog_id) {
                let mut resp = self.response(&invite, 503, Some(&local_tag));
                resp.headers
                    .push(("Retry-After".into(), self.cfg.retry_after_secs.to_string()));
                let bytes = resp.to_bytes();
                self.finish_tx(now, &key, bytes.clone(), false);
                self.log_response(&invite, flow, received_at, now, 503, &local_tag, None);
                self.transmit(flow, bytes);
            }
            self.remove_dialog(dialog_id);
            self.emit(RecordingEvent::Discarded { recording_id });
            return;
        }
        self.send_in_dialog_request(now, dialog_id, Method::Bye);
        self.end_dialog(dialog_id, reason);
    }

    pub(super) fn send_in_dialog_request(
        &mut self,
        now: Instant,
        dialog_id: DialogId,
        method: Method,
    ) {
        let branch = format!("z9hG4bK{}", self.random_token(16));
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
            headers: match &self.cfg.server_header {
                Some(ua) => vec![("User-Agent".to_string(), ua.clone())],
                None => vec![],
            },
            body: None,
        };
        let bytes = request.to_bytes();
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
        };
        self.client_txs.insert(
            branch.clone(),
            ClientTx {
                request: bytes.clone(),
                flow,
                interval: self.cfg.t1,
                dialog: Some(dialog_id),
                method,
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
}
