//! Initial INVITE handling: admission, offer/answer, the prepared recording's 2xx, CANCEL and ACK.

use super::routing::{contact_uri, format_host_port, request_flow};
use super::{
    ALLOW, Dialog, DialogId, DialogState, Output, PrepareError, RecordingEvent, SUPPORTED,
    ServerTx, TxKey, TxState, Uas, Unacked2xx, tx_id, warning,
};
use crate::sdp::{AnswerError, Update, answer_offer, answer_reoffer, parse_offer};
use crate::sip::Flow;
use crate::sip::classify::{ACCEPTED_BODY_TYPES, BodyError, classify, classify_body};
use crate::sip::message::{OutgoingResponse, RequestUri, SipRequest};
use crate::sip::session_timer::{Negotiation, SessionExpires, negotiate};
use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
use bytes::Bytes;
use rand::Rng;
use std::time::{Duration, Instant};

impl Uas {
    pub(super) fn handle_initial_invite(
        &mut self,
        now: Instant,
        req: SipRequest,
        flow: Flow,
        key: TxKey,
    ) {
        let body = match classify_body(&req) {
            Ok(b) => b,
            Err(BodyError::Unsupported(_)) => {
                let headers = vec![("Accept".to_string(), ACCEPTED_BODY_TYPES.to_string())];
                self.reply(now, &req, flow, &key, 415, None, headers);
                return;
            }
            Err(BodyError::BadMultipart(e)) => {
                self.reply(
                    now,
                    &req,
                    flow,
                    &key,
                    400,
                    None,
                    vec![warning(399, &e.to_string())],
                );
                return;
            }
        };
        let session_expires = req
            .header("Session-Expires")
            .and_then(SessionExpires::parse);
        let uac_supports_timer = req.header_tokens("Supported").iter().any(|t| t == "timer")
            || req.header_tokens("Require").iter().any(|t| t == "timer");
        let session_timer = match negotiate(session_expires, uac_supports_timer, self.cfg.min_se) {
            Negotiation::TooSmall { min_se } => {
                self.reply(
                    now,
                    &req,
                    flow,
                    &key,
                    422,
                    None,
                    vec![("Min-SE".into(), min_se.to_string())],
                );
                return;
            }
            Negotiation::Timer(t) => Some(t),
            Negotiation::None => None,
        };
        if let Some(headers) = self.admission_refusal() {
            self.reply(now, &req, flow, &key, 503, None, headers);
            return;
        }
        let Some(sdp) = body.sdp.as_ref() else {
            let w = warning(304, "an SDP offer is required");
            self.reply(now, &req, flow, &key, 488, None, vec![w]);
            return;
        };
        let offer = match parse_offer(sdp) {
            Ok(o) => o,
            Err(e) => {
                self.reply(
                    now,
                    &req,
                    flow,
                    &key,
                    488,
                    None,
                    vec![warning(399, &e.to_string())],
                );
                return;
            }
        };
        let session_id: u64 = self.rng.random_range(1..u64::from(u32::MAX));
        let media = match answer_offer(&offer, &self.cfg.answer, &mut self.pool, session_id) {
            Ok(m) => m,
            Err(AnswerError::NotAcceptable {
                warning_code,
                warning: text,
            }) => {
                self.reply(
                    now,
                    &req,
                    flow,
                    &key,
                    488,
                    None,
                    vec![warning(warning_code, &text)],
                );
                return;
            }
            Err(AnswerError::NoPorts) => {
                let headers = vec![(
                    "Retry-After".to_string(),
                    self.cfg.retry_after_secs.to_string(),
                )];
                self.reply(now, &req, flow, &key, 503, None, headers);
                return;
            }
        };
        let request = classify(&req, &body);
        let recording_id = self.new_uuid();
        let local_tag = self.new_tag();
        let dialog_id = DialogId(self.next_dialog);
        self.next_dialog += 1;
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
            expect_answer_in_ack: false,
            session_timer,
            timer_generation: 0,
            update_in_flight: false,
            allows_update: req.header_tokens("Allow").iter().any(|t| t == "update"),
            siprec: request.kind == crate::sip::classify::RecordingKind::Siprec,
        };
        self.dialogs.insert(dialog_id, dialog);
        self.dialog_index
            .insert((req.call_id.clone(), local_tag), dialog_id);
        self.by_recording.insert(recording_id.clone(), dialog_id);
        // 100 Trying at once (it carries no To tag), then the 200 once prepared.
        let trying = self.response(&req, 100, None);
        let trying_bytes = trying.to_bytes();
        self.server_txs.insert(
            key,
            ServerTx {
                state: TxState::Proceeding,
                last_response: Some(trying_bytes.clone()),
                flow,
                retransmit: self.cfg.t1,
            },
        );
        self.transmit(flow, trying_bytes);
        self.stats.invites_accepted += 1;
        self.emit(RecordingEvent::Prepare {
            recording_id,
            request: Box::new(request),
            media,
            flow,
        });
        // Kept so the 200 can be built later.
        self.pending_requests.insert(dialog_id, (req, now));
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
        match result {
            Ok(()) => {
                let resp = self.invite_ok(&req, dialog_id, &local_tag, true);
                let bytes = resp.to_bytes();
                self.finish_tx(now, &key, bytes.clone(), true);
                let flow = self.dialogs[&dialog_id].flow;
                let sdp = self.dialogs[&dialog_id].media.answer_sdp.clone();
                self.log_response(&req, flow, received_at, now, 200, &local_tag, Some(sdp));
                let cseq = req.cseq;
                let dialog = self.dialogs.get_mut(&dialog_id).expect("checked above");
                dialog.state = DialogState::AwaitingAck;
                dialog.unacked = Some(Unacked2xx {
                    cseq,
                    response: bytes.clone(),
                    interval: self.cfg.t1,
                });
                let flow = dialog.flow;
                self.transmit(flow, bytes);
                self.arm_2xx_timers(now, dialog_id, cseq, flow);
                self.restart_session_timer(now, dialog_id);
                self.emit(RecordingEvent::Established {
                    recording_id: recording_id.to_string(),
                });
            }
            Err(e) => {
                let code = if e == PrepareError::Unavailable {
                    503
                } else {
                    500
                };
                let mut headers = vec![];
                if code == 503 {
                    headers.push((
                        "Retry-After".to_string(),
                        self.cfg.retry_after_secs.to_string(),
                    ));
                }
                let flow = dialog.flow;
                self.remove_dialog(dialog_id);
                let mut resp = self.response(&req, code, Some(&local_tag));
                resp.headers.extend(headers);
                let bytes = resp.to_bytes();
                self.finish_tx(now, &key, bytes.clone(), false);
                self.log_response(&req, flow, received_at, now, code, &local_tag, None);
                self.transmit(flow, bytes);
            }
        }
    }

    pub(super) fn invite_ok(
        &self,
        req: &SipRequest,
        dialog_id: DialogId,
        local_tag: &str,
        with_body: bool,
    ) -> OutgoingResponse {
        let dialog = &self.dialogs[&dialog_id];
        let transport_param = match dialog.flow.transport {
            crate::config::Transport::Udp => "",
            crate::config::Transport::Tcp => ";transport=tcp",
            crate::config::Transport::Tls => ";transport=tls",
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
            .with_header("Contact", contact);
        resp = resp
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
        if with_body {
            resp = resp.with_body(
                "application/sdp",
                Bytes::from(dialog.media.answer_sdp.clone()),
            );
        }
        resp
    }

    pub(super) fn handle_cancel(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        let cancel_key = TxKey {
            id: tx_id(&req),
            invite: false,
        };
        let invite_key = TxKey {
            id: tx_id(&req),
            invite: true,
        };
        let Some(invite_tx) = self.server_txs.get(&invite_key) else {
            self.reply(now, &req, flow, &cancel_key, 481, None, vec![]);
            return;
        };
        let proceeding = invite_tx.state == TxState::Proceeding;
        self.reply(now, &req, flow, &cancel_key, 200, None, vec![]);
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
        let invite_flow = self.dialogs[&dialog_id].flow;
        self.remove_dialog(dialog_id);
        let bytes = self.response(&invite, 487, Some(&local_tag)).to_bytes();
        self.finish_tx(now, &invite_key, bytes.clone(), false);
        self.log_response(
            &invite,
            invite_flow,
            received_at,
            now,
            487,
            &local_tag,
            None,
        );
        self.transmit(invite_flow, bytes);
        self.emit(RecordingEvent::Discarded { recording_id });
    }

    pub(super) fn handle_ack(&mut self, now: Instant, req: SipRequest) {
        // ACK of a non-2xx final response: same branch as the INVITE.
        let invite_key = TxKey {
            id: tx_id(&req),
            invite: true,
        };
        let in_dialog = self.dialog_for(&req).is_some();
        if let Some(tx) = self.server_txs.get_mut(&invite_key)
            && tx.state == TxState::Completed
            && !in_dialog
        {
            // Stop Timer G; keep absorbing ACK retransmissions until Timer I.
            tx.retransmit = Duration::ZERO;
            return;
        }
        let Some(dialog_id) = self.dialog_for(&req) else {
            return; // ACKs are never answered
        };
        let dialog = self.dialogs.get_mut(&dialog_id).expect("indexed");
        let Some(unacked) = &dialog.unacked else {
            return;
        };
        if unacked.cseq != req.cseq {
            return;
        }
        dialog.unacked = None;
        if dialog.state == DialogState::AwaitingAck {
            dialog.state = DialogState::Confirmed;
        }
        let flow = dialog.flow;
        let log = TransactionRecord::incoming(&req, TransactionEvent::InAck, flow, now);
        self.outputs.push_back(Output::Transaction(Box::new(log)));
        let dialog = self.dialogs.get_mut(&dialog_id).expect("indexed");
        if std::mem::take(&mut dialog.expect_answer_in_ack)
            && !req.body.is_empty()
            && let Ok(answer) = parse_offer(&req.body)
        {
            // Our offer went in the 200; their answer updates the remote side of the streams.
            let current = dialog.media.clone();
            if let Ok(Update::Changed(media)) =
                answer_reoffer(&current, &answer, &self.cfg.answer, &mut self.pool)
            {
                self.apply_media(dialog_id, media);
            }
        }
        let _ = now;
    }
}
