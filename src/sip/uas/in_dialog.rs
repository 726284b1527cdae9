//! Requests inside a dialog (re-INVITE, UPDATE, BYE): dialog matching (with the tolerances
//! of SPEC §3), CSeq order, renegotiation and session timer refresh.

use super::replies::Reply;
use super::{ALLOW, DialogId, DialogState, RecordingEvent, Tolerance, Uas, warning};
use crate::recording::EndReason;
use crate::sdp::{MediaSession, Update, answer_reoffer, parse_offer};
use crate::sip::Flow;
use crate::sip::classify::{ACCEPTED_BODY_TYPES, BodyError, ClassifiedBody, classify_body};
use crate::sip::message::{Method, SipRequest};
use crate::sip::session_timer::{Negotiation, SessionExpires, negotiate};
use bytes::Bytes;
use std::time::Instant;

impl Uas {
    /// The dialog of a request with our To tag: Call-ID, our tag and their From tag.
    pub(super) fn dialog_for(&self, req: &SipRequest) -> Option<DialogId> {
        let tag = req.to.tag.as_ref()?;
        let id = *self.dialog_index.get(&(req.call_id.clone(), tag.clone()))?;
        let d = &self.dialogs[&id];
        (req.from.tag.as_deref().unwrap_or("") == d.remote_tag).then_some(id)
    }

    /// Cisco CUBE sends ACK and BYE with the INVITE's To, without our tag: the dialog is the
    /// one with this Call-ID and From tag, when exactly one fits. Counted as a tolerance.
    pub(super) fn dialog_without_to_tag(&mut self, req: &SipRequest) -> Option<DialogId> {
        let from_tag = req.from.tag.as_deref()?;
        let mut fits = self.dialogs.iter().filter(|(_, d)| {
            d.call_id == req.call_id
                && d.remote_tag == from_tag
                && d.state != DialogState::Preparing
        });
        let (&id, _) = fits.next()?;
        if fits.next().is_some() {
            return None; // ambiguous: 481 is the honest answer
        }
        let what = format!("{} without our To tag", req.method.as_str());
        self.tolerate(id, Tolerance::MissingToTag, &what);
        Some(id)
    }

    /// An ACK without our To tag, for a dialog whose 2xx is unacknowledged.
    pub(super) fn ack_without_to_tag(&mut self, req: &SipRequest) -> Option<DialogId> {
        if req.to.tag.is_some() {
            return None;
        }
        self.dialog_without_to_tag(req)
    }

    pub(super) fn handle_in_dialog(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        match self.dialog_for(&req) {
            Some(dialog_id) => self.handle_dialog_request(now, req, flow, dialog_id),
            None => self.reply(now, &req, flow, Reply::new(481)),
        }
    }

    /// A request matched to `dialog_id` (by our tag, or by the To-tag-less tolerance).
    pub(super) fn handle_dialog_request(
        &mut self,
        now: Instant,
        req: SipRequest,
        flow: Flow,
        dialog_id: DialogId,
    ) {
        let dialog = &self.dialogs[&dialog_id];
        let local_tag = dialog.local_tag.clone();
        let last_cseq = dialog.remote_cseq;
        if req.cseq <= last_cseq {
            // Not a retransmission (the transaction table caught those): out of order.
            if req.method == Method::Bye {
                // The SRC has hung up whatever its CSeq says (SPEC §3).
                let what = format!("BYE with CSeq {} after CSeq {last_cseq}", req.cseq);
                self.tolerate(dialog_id, Tolerance::LowerCseqBye, &what);
            } else {
                self.reply(now, &req, flow, Reply::new(500).tag(&local_tag));
                return;
            }
        } else {
            self.dialogs.get_mut(&dialog_id).expect("found").remote_cseq = req.cseq;
        }
        let allow = |code| Reply::new(code).tag(&local_tag).header("Allow", ALLOW);
        match req.method {
            Method::Bye => {
                self.reply(now, &req, flow, Reply::new(200).tag(&local_tag));
                self.end_dialog(dialog_id, EndReason::Bye);
            }
            Method::Invite => self.handle_reinvite(now, req, flow, dialog_id),
            Method::Update => self.handle_update(now, req, flow, dialog_id),
            Method::Options => self.handle_options(now, &req, flow),
            Method::Extension(_) => self.reply(now, &req, flow, allow(501)),
            _ => self.reply(now, &req, flow, allow(405)),
        }
    }

    /// The one place an in-dialog request's body is classified: the SDP offer and the
    /// SIPREC metadata it carries, or the refusal of a body the recorder does not take.
    fn in_dialog_body(req: &SipRequest) -> Result<ClassifiedBody, Reply> {
        match classify_body(req) {
            Ok(body) => Ok(body),
            Err(BodyError::Unsupported(_)) => {
                Err(Reply::new(415).header("Accept", ACCEPTED_BODY_TYPES))
            }
            Err(BodyError::BadMultipart(e)) => {
                let (name, value) = warning(399, &e.to_string());
                Err(Reply::new(400).header(&name, value))
            }
        }
    }

    /// Offer/answer for a re-INVITE or UPDATE, and the SIPREC metadata it carries.
    /// `Ok(None)`: no SDP in the request (metadata only, or nothing).
    fn renegotiate(
        &mut self,
        req: &SipRequest,
        dialog_id: DialogId,
    ) -> Result<Option<MediaSession>, Reply> {
        let body = Self::in_dialog_body(req)?;
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
    ) -> Result<MediaSession, Reply> {
        let offer = parse_offer(sdp).map_err(|e| {
            let (name, value) = warning(399, &e.to_string());
            Reply::new(488).header(&name, value)
        })?;
        let current = self.dialogs[&dialog_id].media.clone();
        match answer_reoffer(
            &current,
            &offer,
            &self.cfg.answer,
            &mut self.pool,
            &mut self.rng,
        ) {
            Ok(Update::Unchanged) => Ok(current),
            Ok(Update::Changed(media)) => {
                self.apply_media(dialog_id, media.clone());
                Ok(media)
            }
            Err(e) => Err(self.answer_refusal(e)),
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

    fn handle_reinvite(&mut self, now: Instant, req: SipRequest, flow: Flow, dialog_id: DialogId) {
        let dialog = &self.dialogs[&dialog_id];
        let local_tag = dialog.local_tag.clone();
        // Offer/answer still in progress (RFC 3261 §14.2). Our own refresh UPDATE carries no
        // offer, so it never blocks the SRC's change.
        if dialog.unacked.is_some() {
            self.reply(now, &req, flow, Reply::new(491).tag(&local_tag));
            return;
        }
        if let Err(min_se) = self.refresh_session_timer(&req, dialog_id) {
            let too_small = Reply::new(422)
                .tag(&local_tag)
                .header("Min-SE", min_se.to_string());
            self.reply(now, &req, flow, too_small);
            return;
        }
        let media = match self.renegotiate(&req, dialog_id) {
            Ok(m) => m,
            Err(refusal) => {
                self.reply(now, &req, flow, refusal.tag(&local_tag));
                return;
            }
        };
        // Without SDP our current session goes as an offer; the answer comes in the ACK.
        self.dialogs
            .get_mut(&dialog_id)
            .expect("exists")
            .expect_answer_in_ack = media.is_none();
        let resp = self.invite_ok(&req, dialog_id, &local_tag);
        let key = super::transaction::TxKey::of(&req);
        let tx = super::transaction::ServerTx::new(&req, &key, flow);
        self.server_txs.insert(key.clone(), tx);
        let Some(flow) = self.finish_tx(now, &key, 200, resp.to_bytes()) else {
            return;
        };
        let sdp = self.dialogs[&dialog_id].media.answer_sdp.clone();
        let answered = super::replies::Answered {
            code: 200,
            flow,
            request_at: now,
            at: now,
            local_tag: &local_tag,
            sdp_out: Some(sdp),
        };
        self.log_response(&req, answered);
        let bytes = resp.to_bytes();
        self.await_ack(now, dialog_id, req.cseq, bytes, flow);
        self.restart_session_timer(now, dialog_id);
    }

    fn handle_update(&mut self, now: Instant, req: SipRequest, flow: Flow, dialog_id: DialogId) {
        let local_tag = self.dialogs[&dialog_id].local_tag.clone();
        if let Err(min_se) = self.refresh_session_timer(&req, dialog_id) {
            let too_small = Reply::new(422)
                .tag(&local_tag)
                .header("Min-SE", min_se.to_string());
            self.reply(now, &req, flow, too_small);
            return;
        }
        match self.renegotiate(&req, dialog_id) {
            Ok(media) => {
                let mut ok = Reply::new(200).tag(&local_tag);
                if let Some(t) = self.dialogs[&dialog_id].session_timer {
                    ok = ok.header("Session-Expires", t.header_value());
                }
                let ok = ok.sdp(media.map(|m| Bytes::from(m.answer_sdp)));
                self.reply(now, &req, flow, ok);
                self.restart_session_timer(now, dialog_id);
            }
            Err(refusal) => self.reply(now, &req, flow, refusal.tag(&local_tag)),
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
            if let Some((invite, received_at)) = self.pending_requests.remove(&dialog_id) {
                let mut resp = self.response(&invite, 503, Some(&local_tag));
                resp.headers
                    .push(("Retry-After".into(), self.cfg.retry_after_secs.to_string()));
                if let Some(flow) = self.finish_tx(now, &key, 503, resp.to_bytes()) {
                    let answered = super::replies::Answered {
                        code: 503,
                        flow,
                        request_at: received_at,
                        at: now,
                        local_tag: &local_tag,
                        sdp_out: None,
                    };
                    self.log_response(&invite, answered);
                }
            }
            self.remove_dialog(dialog_id);
            self.emit(RecordingEvent::Discarded { recording_id });
            return;
        }
        self.send_in_dialog_request(now, dialog_id, Method::Bye);
        self.end_dialog(dialog_id, reason);
    }
}
