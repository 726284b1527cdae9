//! Initial INVITE handling: admission, offer/answer (or our offer for an INVITE without SDP),
//! the prepared recording's 2xx, CANCEL and ACK.

use super::replies::{Answered, Reply};
use super::routing::{contact_uri, format_host_port, request_flow};
use super::transaction::{ServerTx, TxKey, TxState};
use super::{
    ALLOW, Dialog, DialogId, DialogState, Output, PrepareError, RecordingEvent, SUPPORTED,
    Tolerance, Uas, Unacked2xx, warning,
};
use crate::recording::EndReason;
use crate::sdp::{
    AnswerError, MediaSession, Update, answer_offer, answer_reoffer, offer_for_offerless_invite,
    parse_offer,
};
use crate::sip::Flow;
use crate::sip::classify::{
    ACCEPTED_BODY_TYPES, BodyError, ClassifiedBody, classify, classify_body,
};
use crate::sip::message::{Method, OutgoingResponse, RequestUri, SipRequest};
use crate::sip::session_timer::{Negotiation, SessionExpires, SessionTimer, negotiate};
use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
use bytes::Bytes;
use rand::Rng;
use std::time::Instant;

impl Uas {
    pub(super) fn handle_initial_invite(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        let (body, session_timer) = match self.initial_invite_checks(&req) {
            Ok(checked) => checked,
            Err(refusal) => {
                self.reply(now, &req, flow, refusal);
                return;
            }
        };
        let (media, offerless) = match self.initial_media(body.sdp.as_deref()) {
            Ok(m) => m,
            Err(refusal) => {
                self.reply(now, &req, flow, refusal);
                return;
            }
        };
        let request = classify(&req, &body);
        let recording_id = self.new_uuid();
        let call_leg_id = self.new_uuid();
        let new_group_id = self.new_uuid();
        let local_tag = self.new_tag();
        let dialog_id = DialogId(self.next_dialog);
        self.next_dialog += 1;
        let key = TxKey::of(&req);
        let remote_target = req
            .header("Contact")
            .map(contact_uri)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| req.from.uri.clone());
        let dialog_flow = request_flow(&remote_target, &req, flow);
        let dialog = Dialog {
            recording_id: recording_id.clone(),
            call_id: req.call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: req.from.tag.clone().unwrap_or_default(),
            remote_uri_header: req.from.raw.clone(),
            local_uri_header: format!("{};tag={}", req.to.raw, local_tag),
            remote_target,
            route_set: req
                .header_values("Record-Route")
                .map(str::to_string)
                .collect(),
            flow: dialog_flow,
            state: DialogState::Preparing,
            invite_tx: key.clone(),
            remote_cseq: req.cseq,
            local_cseq: 0,
            media: media.clone(),
            unacked: None,
            expect_answer_in_ack: offerless,
            offerless,
            session_timer,
            timer_generation: 0,
            update_in_flight: false,
            allows_update: req.header_tokens("Allow").iter().any(|t| t == "update"),
            siprec: request.kind == crate::sip::classify::RecordingKind::Siprec,
            logged_tolerances: vec![],
            last_ack_cseq: None,
        };
        self.dialogs.insert(dialog_id, dialog);
        self.dialog_index
            .insert((req.call_id.clone(), local_tag), dialog_id);
        self.by_recording.insert(recording_id.clone(), dialog_id);
        // 100 Trying at once (it carries no To tag), then the 200 once prepared.
        let trying_bytes = self.response(&req, 100, None).to_bytes();
        let mut tx = ServerTx::new(&req, &key, flow);
        tx.provisional(trying_bytes.clone());
        self.server_txs.insert(key, tx);
        self.transmit(flow, trying_bytes);
        self.emit(RecordingEvent::Prepare {
            recording_id,
            call_leg_id,
            new_group_id,
            request: Box::new(request),
            media,
            flow,
        });
        // Kept so the 200 can be built later.
        self.pending_requests.insert(dialog_id, (req, now));
    }

    /// Body type, session timer and admission: the refusals before any media is looked at.
    fn initial_invite_checks(
        &self,
        req: &SipRequest,
    ) -> Result<(ClassifiedBody, Option<SessionTimer>), Reply> {
        let body = match classify_body(req) {
            Ok(body) => body,
            Err(BodyError::Unsupported(_)) => {
                return Err(Reply::new(415).header("Accept", ACCEPTED_BODY_TYPES));
            }
            Err(BodyError::BadMultipart(e)) => {
                let (name, value) = warning(399, &e.to_string());
                return Err(Reply::new(400).header(&name, value));
            }
        };
        if !accepts_sdp(req) {
            // RFC 4475 sdp01: the answer is SDP, which this request says it cannot take.
            return Err(Reply::new(406).header("Accept", "application/sdp"));
        }
        let session_expires = req
            .header("Session-Expires")
            .and_then(SessionExpires::parse);
        let uac_supports_timer = req.header_tokens("Supported").iter().any(|t| t == "timer")
            || req.header_tokens("Require").iter().any(|t| t == "timer");
        let session_timer = match negotiate(session_expires, uac_supports_timer, self.cfg.min_se) {
            Negotiation::TooSmall { min_se } => {
                return Err(Reply::new(422).header("Min-SE", min_se.to_string()));
            }
            Negotiation::Timer(t) => Some(t),
            Negotiation::None => None,
        };
        if let Some(headers) = self.admission_refusal() {
            return Err(Reply::new(503).headers(headers));
        }
        Ok((body, session_timer))
    }

    /// The answer to the INVITE's offer, or (no SDP: delayed offer) our own offer; the flag
    /// says which.
    fn initial_media(&mut self, sdp: Option<&[u8]>) -> Result<(MediaSession, bool), Reply> {
        let session_id: u64 = self.rng.random_range(1..u64::from(u32::MAX));
        let Some(sdp) = sdp else {
            return offer_for_offerless_invite(&self.cfg.answer, &mut self.pool, session_id)
                .map(|m| (m, true))
                .map_err(|e| self.answer_refusal(e));
        };
        let offer = parse_offer(sdp).map_err(|e| {
            let (name, value) = warning(399, &e.to_string());
            Reply::new(488).header(&name, value)
        })?;
        answer_offer(
            &offer,
            &self.cfg.answer,
            &mut self.pool,
            session_id,
            &mut self.rng,
        )
        .map(|m| (m, false))
        .map_err(|e| self.answer_refusal(e))
    }

    /// 488 with the answerer's Warning, or 503 when no RTP port is free.
    pub(super) fn answer_refusal(&self, error: AnswerError) -> Reply {
        match error {
            AnswerError::NotAcceptable {
                warning_code,
                warning: text,
            } => {
                let (name, value) = warning(warning_code, &text);
                Reply::new(488).header(&name, value)
            }
            AnswerError::NoPorts => {
                Reply::new(503).header("Retry-After", self.cfg.retry_after_secs.to_string())
            }
        }
    }

    /// The recording layer finished preparing: answer the INVITE.
    pub fn recording_prepared(
        &mut self,
        now: Instant,
        recording_id: &str,
        result: Result<(), PrepareError>,
    ) {
        let Some(&dialog_id) = self.by_recording.get(recording_id) else {
            return; // cancelled meanwhile; the recording layer already got Discarded
        };
        let Some((req, received_at)) = self.pending_requests.remove(&dialog_id) else {
            return;
        };
        let Some(dialog) = self.dialogs.get(&dialog_id) else {
            return;
        };
        if dialog.state != DialogState::Preparing {
            return;
        }
        let key = dialog.invite_tx.clone();
        let local_tag = dialog.local_tag.clone();
        let code = match result {
            Ok(()) => 200,
            Err(e) => e.status(),
        };
        if code != 200 {
            self.remove_dialog(dialog_id);
            let mut resp = self.response(&req, code, Some(&local_tag));
            if code == 503 {
                let retry = self.cfg.retry_after_secs.to_string();
                resp.headers.push(("Retry-After".to_string(), retry));
            }
            if let Some(flow) = self.finish_tx(now, &key, code, resp.to_bytes()) {
                let answered = Answered {
                    code,
                    flow,
                    request_at: received_at,
                    at: now,
                    local_tag: &local_tag,
                    sdp_out: None,
                };
                self.log_response(&req, answered);
            }
            return;
        }
        let bytes = self.invite_ok(&req, dialog_id, &local_tag).to_bytes();
        let Some(flow) = self.finish_tx(now, &key, 200, bytes.clone()) else {
            return;
        };
        let sdp = self.dialogs[&dialog_id].media.answer_sdp.clone();
        let answered = Answered {
            code: 200,
            flow,
            request_at: received_at,
            at: now,
            local_tag: &local_tag,
            sdp_out: Some(sdp),
        };
        self.log_response(&req, answered);
        self.await_ack(now, dialog_id, req.cseq, bytes, flow);
        if let Some(dialog) = self.dialogs.get_mut(&dialog_id) {
            dialog.state = DialogState::AwaitingAck;
        }
        self.restart_session_timer(now, dialog_id);
        self.emit(RecordingEvent::Established {
            recording_id: recording_id.to_string(),
        });
    }

    /// A 2xx to an INVITE went out on `flow`: retransmit it there until the ACK.
    pub(super) fn await_ack(
        &mut self,
        now: Instant,
        dialog_id: DialogId,
        cseq: u32,
        response: Bytes,
        flow: Flow,
    ) {
        let Some(dialog) = self.dialogs.get_mut(&dialog_id) else {
            return;
        };
        dialog.unacked = Some(Unacked2xx {
            cseq,
            response,
            interval: self.cfg.t1,
            flow,
        });
        self.arm_2xx_timers(now, dialog_id, cseq, flow);
    }

    /// A retransmitted INVITE arrived on `flow`: its 2xx (if not yet ACKed) is retransmitted
    /// there from now on; over TCP/TLS the dialog's requests follow to that connection.
    pub(super) fn invite_moved_to(&mut self, key: &TxKey, flow: Flow) {
        let Some(dialog) = self.dialogs.values_mut().find(|d| d.invite_tx == *key) else {
            return;
        };
        if let Some(unacked) = dialog.unacked.as_mut() {
            unacked.flow = flow;
        }
        if flow.is_reliable() && dialog.flow.is_reliable() {
            dialog.flow = flow;
        }
    }

    pub(super) fn invite_ok(
        &self,
        req: &SipRequest,
        dialog_id: DialogId,
        local_tag: &str,
    ) -> OutgoingResponse {
        let dialog = &self.dialogs[&dialog_id];
        let transport_param = match dialog.flow.transport {
            crate::sip::Transport::Udp => "",
            crate::sip::Transport::Tcp => ";transport=tcp",
            crate::sip::Transport::Tls => ";transport=tls",
        };
        // Mirror the Request-URI's scheme: answering a `sip:` request with a `sips:` Contact
        // makes some UAs drop the call (RFC 5630 §3.1.3); `;transport=tls` keeps TLS.
        let scheme = match &req.uri {
            RequestUri::Sip(u) if u.sips => "sips",
            _ => "sip",
        };
        let srs = if dialog.siprec { ";+sip.srs" } else { "" };
        let contact = format!(
            "<{scheme}:recorder@{}{transport_param}>{srs}",
            format_host_port(dialog.flow.local)
        );
        let mut resp = self
            .response(req, 200, Some(local_tag))
            .with_header("Contact", contact)
            .with_header("Allow", ALLOW)
            .with_header("Supported", SUPPORTED);
        for rr in req.header_values("Record-Route") {
            resp = resp.with_header("Record-Route", rr);
        }
        if let Some(t) = dialog.session_timer {
            resp = resp.with_header("Session-Expires", t.header_value());
            if t.refresher == crate::sip::session_timer::Refresher::Uac {
                resp = resp.with_header("Require", "timer");
            }
        }
        // Every 2xx to an INVITE carries SDP: the answer, or our offer when the request had
        // none (the answer then comes in the ACK).
        resp.with_body(
            "application/sdp",
            Bytes::from(dialog.media.answer_sdp.clone()),
        )
    }

    /// RFC 3261 §9.2: a CANCEL matches the INVITE transaction with the same key.
    pub(super) fn handle_cancel(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        let invite_key = TxKey::cancelled_invite(&req);
        let Some(invite_tx) = self.server_txs.get(&invite_key) else {
            self.reply(now, &req, flow, Reply::new(481));
            return;
        };
        let proceeding = invite_tx.state == TxState::Proceeding;
        self.reply(now, &req, flow, Reply::new(200));
        if !proceeding {
            return; // already answered: the CANCEL has no effect (RFC 3261 §9.2)
        }
        let dialog_id = self
            .dialogs
            .iter()
            .find(|(_, d)| d.invite_tx == invite_key)
            .map(|(id, _)| *id);
        let Some(dialog_id) = dialog_id else { return };
        let Some((invite, received_at)) = self.pending_requests.remove(&dialog_id) else {
            return;
        };
        let local_tag = self.dialogs[&dialog_id].local_tag.clone();
        let recording_id = self.dialogs[&dialog_id].recording_id.clone();
        self.remove_dialog(dialog_id);
        let bytes = self.response(&invite, 487, Some(&local_tag)).to_bytes();
        if let Some(flow) = self.finish_tx(now, &invite_key, 487, bytes) {
            let answered = Answered {
                code: 487,
                flow,
                request_at: received_at,
                at: now,
                local_tag: &local_tag,
                sdp_out: None,
            };
            self.log_response(&invite, answered);
        }
        self.emit(RecordingEvent::Discarded { recording_id });
    }

    pub(super) fn handle_ack(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        // ACK of a non-2xx final response: same key as the INVITE (RFC 3261 §17.2.3).
        let invite_key = TxKey::of(&req);
        if let Some(tx) = self.server_txs.get_mut(&invite_key)
            && tx.ack()
        {
            let linger = tx.timer_i();
            // Timer I: absorb ACK retransmissions, then forget the transaction.
            self.timers
                .schedule(now + linger, super::Timer::ExpireTx { tx: invite_key });
            return;
        }
        let Some(dialog_id) = self
            .dialog_for(&req)
            .or_else(|| self.ack_without_to_tag(&req))
        else {
            return; // ACKs are never answered
        };
        let dialog = &self.dialogs[&dialog_id];
        let Some(unacked) = &dialog.unacked else {
            return; // a retransmitted ACK, or one for a 2xx already given up on
        };
        let late_copy = dialog.last_ack_cseq == Some(req.cseq) && unacked.cseq != req.cseq;
        if late_copy && dialog.expect_answer_in_ack && req.body.is_empty() {
            // A late copy of the previous ACK must not take the place of the one that brings
            // the answer to our offer. (Otherwise an ACK is an ACK: some SRCs reuse one odd
            // CSeq for every ACK.)
            return;
        }
        if unacked.cseq != req.cseq || req.cseq_method != Method::Ack {
            // BroadWorks: `CSeq: 832544241 ACK` for `CSeq: 604674513 INVITE`, even
            // `CSeq: N INVITE`. One 2xx is outstanding, so this ACK can only be its ACK.
            let what = format!(
                "ACK with CSeq {} {} for the 2xx to CSeq {} INVITE",
                req.cseq,
                req.cseq_method.as_str(),
                unacked.cseq
            );
            self.tolerate(dialog_id, Tolerance::AckCseqMismatch, &what);
        }
        let dialog = self.dialogs.get_mut(&dialog_id).expect("indexed");
        dialog.unacked = None;
        dialog.last_ack_cseq = Some(req.cseq);
        if dialog.state == DialogState::AwaitingAck {
            dialog.state = DialogState::Confirmed;
        }
        let dialog_flow = dialog.flow;
        let expect_answer = std::mem::take(&mut dialog.expect_answer_in_ack);
        let offerless = std::mem::take(&mut dialog.offerless);
        if TransactionEvent::InAck.is_logged(self.cfg.report_acks) {
            let log = TransactionRecord::incoming(&req, TransactionEvent::InAck, dialog_flow, now);
            self.outputs.push_back(Output::Transaction(Box::new(log)));
        }
        if expect_answer {
            self.apply_ack_answer(now, dialog_id, &req, offerless);
        }
        let _ = flow;
    }

    /// Our offer went in the 200; the ACK's answer names the SRC's media. For an INVITE
    /// without SDP that answer is the only media description there is: without a usable one
    /// the call cannot be recorded, so it ends (BYE, `end_reason = "error"`).
    fn apply_ack_answer(
        &mut self,
        now: Instant,
        dialog_id: DialogId,
        ack: &SipRequest,
        offerless: bool,
    ) {
        let current = self.dialogs[&dialog_id].media.clone();
        let answer = classify_body(ack)
            .ok()
            .and_then(|b| b.sdp)
            .ok_or_else(|| "the ACK carries no SDP answer".to_string())
            .and_then(|sdp| parse_offer(&sdp).map_err(|e| e.to_string()))
            .and_then(|answer| {
                answer_reoffer(
                    &current,
                    &answer,
                    &self.cfg.answer,
                    &mut self.pool,
                    &mut self.rng,
                )
                .map_err(|e| e.to_string())
            });
        match answer {
            Ok(Update::Changed(media)) => self.apply_media(dialog_id, media),
            Ok(Update::Unchanged) => {}
            Err(why) if offerless => {
                let call_id = &self.dialogs[&dialog_id].call_id;
                tracing::warn!(call_id, "INVITE without SDP: {why}; ending the call");
                self.terminate(now, dialog_id, EndReason::Error);
            }
            // A re-INVITE without SDP: the current media stays as it was.
            Err(why) => tracing::warn!(
                call_id = self.dialogs[&dialog_id].call_id,
                "answer in ACK not applied: {why}"
            ),
        }
    }
}

/// Whether the request's `Accept` (absent: SDP, RFC 3261 §20.1) lets an SDP body come back.
fn accepts_sdp(req: &SipRequest) -> bool {
    let accepted = req.header_tokens("Accept");
    req.header("Accept").is_none()
        || accepted.iter().any(|t| {
            let media = t.split(';').next().unwrap_or("").trim();
            matches!(media, "application/sdp" | "application/*" | "*/*")
        })
}
