//! The recorder's user agent server: server transactions, dialogs, offer/answer and session
//! timers, as one sans-IO state machine (quinn style: `handle_*` for inputs, `poll_*` for
//! outputs). It never reads a clock or touches a socket: every input carries `now`.

use super::Flow;
use super::classify::{ACCEPTED_BODY_TYPES, BodyError, RecordingRequest, classify, classify_body};
use super::message::{
    Limits, Method, OutgoingRequest, OutgoingResponse, RequestUri, SipMessage, SipRequest,
    SipResponse, parse_message,
};
use super::session_timer::{Negotiation, SessionExpires, SessionTimer, negotiate};
use super::source_policy::{SourceDecision, SourcePolicy, SourcePolicyConfig};
use super::timers::TimerQueue;
use super::transaction_log::{TransactionEvent, TransactionRecord, event_for};
use crate::recording::EndReason;
use crate::sdp::{
    AnswerConfig, AnswerError, MediaSession, PortPool, Update, answer_offer, answer_reoffer,
    parse_offer, release_ports,
};
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";
pub const SUPPORTED: &str = "timer, siprec";
/// Option tags a request may `Require` of us.
const UNDERSTOOD: &[&str] = &["timer", "siprec"];

#[derive(Debug, Clone)]
pub struct UasConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    pub limits: Limits,
    pub min_se: u32,
    pub max_sessions: usize,
    pub retry_after_secs: u32,
    pub server_header: Option<String>,
    pub answer: AnswerConfig,
    pub sources: SourcePolicyConfig,
}

/// What the recording layer is told. Events for one recording arrive in order.
#[derive(Debug, Clone)]
pub enum RecordingEvent {
    /// Create the recording (directory, recording.json, media receivers), then report with
    /// [`Uas::recording_prepared`]. Nothing is answered before that.
    Prepare {
        recording_id: String,
        request: Box<RecordingRequest>,
        media: MediaSession,
        flow: Flow,
    },
    /// The 200 OK went out: the recording runs.
    Established { recording_id: String },
    /// Cancelled or refused before it was answered: remove everything.
    Discarded { recording_id: String },
    /// A re-INVITE/UPDATE changed the media (pause, resume, transfer).
    MediaChanged {
        recording_id: String,
        media: MediaSession,
    },
    Ended {
        recording_id: String,
        reason: EndReason,
    },
}

#[derive(Debug, Clone)]
pub enum Output {
    Transmit {
        flow: Flow,
        data: Bytes,
    },
    Recording(RecordingEvent),
    /// A finished transaction, for the EDR log.
    Transaction(Box<TransactionRecord>),
}

/// Counters the API exposes.
#[derive(Debug, Clone, Default)]
pub struct UasStats {
    pub responses_by_code: HashMap<u16, u64>,
    pub invites_accepted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TxKey {
    id: String,
    invite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    /// INVITE received, no final response yet.
    Proceeding,
    /// Final response sent; absorbing retransmissions (and, for non-2xx INVITE, waiting
    /// for the ACK).
    Completed,
}

struct ServerTx {
    state: TxState,
    last_response: Option<Bytes>,
    flow: Flow,
    /// Non-2xx INVITE response retransmission interval (Timer G).
    retransmit: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DialogId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialogState {
    /// INVITE accepted, recording being prepared; no final response yet.
    Preparing,
    /// Answered; waiting for the ACK of the INVITE with this CSeq.
    AwaitingAck,
    Confirmed,
}

struct Unacked2xx {
    cseq: u32,
    response: Bytes,
    interval: Duration,
}

struct Dialog {
    recording_id: String,
    call_id: String,
    local_tag: String,
    remote_tag: String,
    /// Their From (our To in requests we send).
    remote_uri_header: String,
    /// Their To plus our tag (our From in requests we send).
    local_uri_header: String,
    remote_target: String,
    route_set: Vec<String>,
    flow: Flow,
    state: DialogState,
    invite_tx: TxKey,
    remote_cseq: u32,
    local_cseq: u32,
    media: MediaSession,
    unacked: Option<Unacked2xx>,
    /// A re-INVITE without SDP got our offer in the 200: the answer comes in the ACK.
    expect_answer_in_ack: bool,
    session_timer: Option<SessionTimer>,
    timer_generation: u64,
    update_in_flight: bool,
    allows_update: bool,
    siprec: bool,
}

#[derive(Debug, Clone)]
enum Timer {
    Retransmit2xx { dialog: DialogId, cseq: u32 },
    AckTimeout { dialog: DialogId, cseq: u32 },
    RetransmitFinal { tx: TxKey },
    ExpireTx { tx: TxKey },
    SessionExpiry { dialog: DialogId, generation: u64 },
    SessionRefresh { dialog: DialogId, generation: u64 },
    ClientRetransmit { branch: String },
    ClientTimeout { branch: String },
}

struct ClientTx {
    request: Bytes,
    flow: Flow,
    interval: Duration,
    dialog: Option<DialogId>,
    method: Method,
    /// Filled in when the transaction ends, for the EDR log.
    log: TransactionRecord,
}

/// Why a recording could not be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareError {
    /// Disk full or above its high watermark, resources exhausted: 503.
    Unavailable,
    /// Anything else: 500.
    Failed,
}

pub struct Uas {
    cfg: UasConfig,
    pool: PortPool,
    rng: SmallRng,
    next_dialog: u64,
    server_txs: HashMap<TxKey, ServerTx>,
    client_txs: HashMap<String, ClientTx>,
    dialogs: HashMap<DialogId, Dialog>,
    /// (Call-ID, our tag) → dialog.
    dialog_index: HashMap<(String, String), DialogId>,
    by_recording: HashMap<String, DialogId>,
    /// Initial INVITEs waiting for their recording to be prepared.
    pending_requests: HashMap<DialogId, (SipRequest, Instant)>,
    timers: TimerQueue<Timer>,
    outputs: VecDeque<Output>,
    draining: bool,
    /// The recordings disk is above its high watermark.
    disk_full: bool,
    sources: SourcePolicy,
    stats: UasStats,
}

fn tx_id(req: &SipRequest) -> String {
    match req.branch() {
        // RFC 3261 branches are unique per transaction.
        Some(b) if b.starts_with("z9hG4bK") => b.to_string(),
        // RFC 2543 peers: fall back to the fields that identify a transaction there.
        _ => format!(
            "{}|{}|{}|{}",
            req.call_id,
            req.cseq,
            req.from.tag.as_deref().unwrap_or(""),
            req.vias.first().map(|v| v.raw.as_str()).unwrap_or("")
        ),
    }
}

fn format_host_port(addr: std::net::SocketAddr) -> String {
    // SocketAddr's Display already brackets IPv6.
    addr.to_string()
}

impl Uas {
    pub fn new(cfg: UasConfig, pool: PortPool, seed: u64) -> Self {
        let sources = SourcePolicy::new(cfg.sources.clone());
        Uas {
            cfg,
            pool,
            rng: SmallRng::seed_from_u64(seed),
            next_dialog: 1,
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            dialogs: HashMap::new(),
            dialog_index: HashMap::new(),
            by_recording: HashMap::new(),
            pending_requests: HashMap::new(),
            timers: TimerQueue::default(),
            outputs: VecDeque::new(),
            draining: false,
            disk_full: false,
            sources,
            stats: UasStats::default(),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    pub fn active_sessions(&self) -> usize {
        self.dialogs.len()
    }

    pub fn stats(&self) -> &UasStats {
        &self.stats
    }

    pub fn free_rtp_ports(&self) -> usize {
        self.pool.available()
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// While set, new recordings get 503 (SPEC §7 disk watermarks).
    pub fn set_disk_full(&mut self, full: bool) {
        self.disk_full = full;
    }

    /// Stop taking new recordings (SIGTERM): INVITE and OPTIONS get 503 from now on.
    pub fn start_drain(&mut self) {
        self.draining = true;
    }

    /// Handle one complete message (a datagram or a framed stream message).
    pub fn handle_input(&mut self, now: Instant, data: Bytes, flow: Flow) {
        match parse_message(data, &self.cfg.limits) {
            Ok(SipMessage::Request(mut req)) => {
                if let Some(top) = req.vias.first_mut() {
                    top.stamp_source(flow.remote);
                }
                let flow = response_flow(&req, flow);
                if !self.admit_source(now, &req, flow) {
                    return;
                }
                self.handle_request(now, req, flow);
            }
            Ok(SipMessage::Response(resp)) => self.handle_response(now, resp),
            Err(failure) => {
                // Responses and ACKs are never answered; requests only when we can route back.
                // Sources outside the allow-list get nothing, not even a 400.
                if !self.cfg.sources.allow.is_empty()
                    && !self
                        .cfg
                        .sources
                        .allow
                        .iter()
                        .any(|c| c.contains(flow.remote.ip()))
                {
                    return;
                }
                if let Some(mut ctx) = failure.reply {
                    if ctx.method == Method::Ack {
                        return;
                    }
                    if let Some(top) = ctx.vias.first_mut() {
                        top.stamp_source(flow.remote);
                    }
                    let code = failure.error.status_code();
                    let tag = self.new_tag();
                    let (name, value) = warning(399, &failure.error.to_string());
                    let resp = OutgoingResponse::from_context(&ctx, code, Some(&tag))
                        .with_header(&name, value);
                    self.transmit_response(flow, resp);
                }
            }
        }
    }

    /// SPEC §7 source control. In-dialog requests skip the rate limit: a flood must never
    /// cost an established recording its BYE or re-INVITE. Returns whether to go on.
    fn admit_source(&mut self, now: Instant, req: &SipRequest, flow: Flow) -> bool {
        let in_dialog = req.to.tag.is_some() || req.method == Method::Ack;
        let source = flow.remote.ip();
        let allowed = self.cfg.sources.allow.is_empty()
            || self.cfg.sources.allow.iter().any(|c| c.contains(source));
        let (decision, log) = if in_dialog && allowed {
            (SourceDecision::Accept, false)
        } else {
            self.sources.check(now, source, req.header("User-Agent"))
        };
        if decision == SourceDecision::Accept {
            return true;
        }
        if log {
            // One fixed-format line per refused source and minute, for fail2ban:
            //   failregex = refused source source=<HOST> reason=
            let reason = match decision {
                SourceDecision::Forbidden => "not_allowed",
                SourceDecision::RateLimited => "rate_limited",
                _ if req.header("User-Agent").is_some() => "scanner_or_refused",
                _ => "refused",
            };
            tracing::warn!(target: "sip_recorder::security", "refused source source={source} reason={reason}");
        }
        if req.method == Method::Ack {
            return false;
        }
        let key = TxKey {
            id: tx_id(req),
            invite: req.method == Method::Invite,
        };
        match decision {
            SourceDecision::Forbidden => self.reply(now, req, flow, &key, 403, None, vec![]),
            SourceDecision::RateLimited => {
                let retry = vec![(
                    "Retry-After".to_string(),
                    self.cfg.retry_after_secs.to_string(),
                )];
                self.reply(now, req, flow, &key, 503, None, retry)
            }
            SourceDecision::Drop | SourceDecision::Accept => {}
        }
        false
    }

    fn handle_request(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        if req.method == Method::Ack {
            self.handle_ack(now, req);
            return;
        }
        let key = TxKey {
            id: tx_id(&req),
            invite: req.method == Method::Invite,
        };
        if let Some(tx) = self.server_txs.get(&key) {
            // A retransmission: repeat the last response, never act twice.
            if let Some(resp) = tx.last_response.clone() {
                let flow = tx.flow;
                self.transmit(flow, resp);
            }
            return;
        }
        if req.method == Method::Cancel {
            self.handle_cancel(now, req, flow);
            return;
        }
        if req.max_forwards == Some(0) {
            self.reply(now, &req, flow, &key, 483, None, vec![]);
            return;
        }
        if let RequestUri::Other { .. } = req.uri {
            self.reply(now, &req, flow, &key, 416, None, vec![]);
            return;
        }
        let unsupported: Vec<String> = req
            .header_tokens("Require")
            .into_iter()
            .filter(|t| !UNDERSTOOD.contains(&t.as_str()))
            .collect();
        if !unsupported.is_empty() {
            let headers = vec![("Unsupported".to_string(), unsupported.join(", "))];
            self.reply(now, &req, flow, &key, 420, None, headers);
            return;
        }
        if req.to.tag.is_some() {
            self.handle_in_dialog(now, req, flow, key);
            return;
        }
        match req.method {
            Method::Invite => self.handle_initial_invite(now, req, flow, key),
            Method::Options => self.handle_options(now, &req, flow, &key),
            Method::Bye | Method::Update | Method::Info | Method::Prack => {
                self.reply(now, &req, flow, &key, 481, None, vec![])
            }
            Method::Extension(_) => self.reply(
                now,
                &req,
                flow,
                &key,
                501,
                None,
                vec![("Allow".into(), ALLOW.into())],
            ),
            _ => self.reply(
                now,
                &req,
                flow,
                &key,
                405,
                None,
                vec![("Allow".into(), ALLOW.into())],
            ),
        }
    }

    fn handle_options(&mut self, now: Instant, req: &SipRequest, flow: Flow, key: &TxKey) {
        if let Some(code_headers) = self.admission_refusal() {
            self.reply(now, req, flow, key, 503, None, code_headers);
            return;
        }
        let headers = vec![
            ("Allow".to_string(), ALLOW.to_string()),
            ("Accept".to_string(), ACCEPTED_BODY_TYPES.to_string()),
            ("Supported".to_string(), SUPPORTED.to_string()),
        ];
        self.reply(now, req, flow, key, 200, None, headers);
    }

    /// `Some(headers)` when new sessions must be refused with 503.
    fn admission_refusal(&self) -> Option<Vec<(String, String)>> {
        let full = self.dialogs.len() >= self.cfg.max_sessions || self.pool.available() == 0;
        (self.draining || full || self.disk_full).then(|| {
            vec![(
                "Retry-After".to_string(),
                self.cfg.retry_after_secs.to_string(),
            )]
        })
    }

    fn handle_initial_invite(&mut self, now: Instant, req: SipRequest, flow: Flow, key: TxKey) {
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
            siprec: request.kind == super::classify::RecordingKind::Siprec,
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

    fn invite_ok(
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
            if t.refresher == super::session_timer::Refresher::Uac {
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

    fn handle_cancel(&mut self, now: Instant, req: SipRequest, flow: Flow) {
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

    fn handle_ack(&mut self, now: Instant, req: SipRequest) {
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

    fn dialog_for(&self, req: &SipRequest) -> Option<DialogId> {
        let tag = req.to.tag.as_ref()?;
        let id = *self.dialog_index.get(&(req.call_id.clone(), tag.clone()))?;
        let d = &self.dialogs[&id];
        (req.from.tag.as_deref().unwrap_or("") == d.remote_tag).then_some(id)
    }

    fn handle_in_dialog(&mut self, now: Instant, req: SipRequest, flow: Flow, key: TxKey) {
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

    /// Offer/answer for a re-INVITE or UPDATE. `Ok(None)`: no SDP in the request.
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
        let Some(sdp) = body.sdp else { return Ok(None) };
        let offer = parse_offer(&sdp).map_err(|e| (488, vec![warning(399, &e.to_string())]))?;
        let current = self.dialogs[&dialog_id].media.clone();
        match answer_reoffer(&current, &offer, &self.cfg.answer, &mut self.pool) {
            Ok(Update::Unchanged) => Ok(Some(current)),
            Ok(Update::Changed(media)) => {
                self.apply_media(dialog_id, media.clone());
                Ok(Some(media))
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

    fn apply_media(&mut self, dialog_id: DialogId, media: MediaSession) {
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

    fn handle_response(&mut self, now: Instant, resp: SipResponse) {
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

    /// End a recording from our side (API stop, media timeout, shutdown): BYE + Ended.
    pub fn stop_recording(&mut self, now: Instant, recording_id: &str, reason: EndReason) {
        let Some(&dialog_id) = self.by_recording.get(recording_id) else {
            return;
        };
        self.terminate(now, dialog_id, reason);
    }

    /// End every recording (shutdown after the grace period).
    pub fn stop_all(&mut self, now: Instant, reason: EndReason) {
        let ids: Vec<DialogId> = self.dialogs.keys().copied().collect();
        for id in ids {
            self.terminate(now, id, reason);
        }
    }

    fn terminate(&mut self, now: Instant, dialog_id: DialogId, reason: EndReason) {
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

    fn send_in_dialog_request(&mut self, now: Instant, dialog_id: DialogId, method: Method) {
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

    fn end_dialog(&mut self, dialog_id: DialogId, reason: EndReason) {
        if let Some(dialog) = self.dialogs.get(&dialog_id) {
            let recording_id = dialog.recording_id.clone();
            self.remove_dialog(dialog_id);
            self.emit(RecordingEvent::Ended {
                recording_id,
                reason,
            });
        }
    }

    fn remove_dialog(&mut self, dialog_id: DialogId) {
        if let Some(dialog) = self.dialogs.remove(&dialog_id) {
            release_ports(&dialog.media, &mut self.pool);
            self.dialog_index
                .remove(&(dialog.call_id, dialog.local_tag));
            self.by_recording.remove(&dialog.recording_id);
            self.pending_requests.remove(&dialog_id);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            self.fire(now, timer);
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Retransmit2xx { dialog, cseq } => {
                let Some(d) = self.dialogs.get_mut(&dialog) else {
                    return;
                };
                let Some(unacked) = d.unacked.as_mut().filter(|u| u.cseq == cseq) else {
                    return;
                };
                unacked.interval = (unacked.interval * 2).min(self.cfg.t2);
                let (bytes, next, flow) = (unacked.response.clone(), unacked.interval, d.flow);
                self.timers
                    .schedule(now + next, Timer::Retransmit2xx { dialog, cseq });
                self.transmit(flow, bytes);
            }
            Timer::AckTimeout { dialog, cseq } => {
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
            Timer::RetransmitFinal { tx } => {
                let Some(t) = self.server_txs.get_mut(&tx) else {
                    return;
                };
                if t.retransmit.is_zero() {
                    return; // ACKed
                }
                t.retransmit = (t.retransmit * 2).min(self.cfg.t2);
                let (next, flow, bytes) = (t.retransmit, t.flow, t.last_response.clone());
                self.timers
                    .schedule(now + next, Timer::RetransmitFinal { tx });
                if let Some(bytes) = bytes {
                    self.transmit(flow, bytes);
                }
            }
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
            Timer::ClientRetransmit { branch } => {
                let Some(tx) = self.client_txs.get_mut(&branch) else {
                    return;
                };
                tx.interval = (tx.interval * 2).min(self.cfg.t2);
                let (next, flow, bytes) = (tx.interval, tx.flow, tx.request.clone());
                self.timers
                    .schedule(now + next, Timer::ClientRetransmit { branch });
                self.transmit(flow, bytes);
            }
            Timer::ClientTimeout { branch } => {
                let Some(tx) = self.client_txs.remove(&branch) else {
                    return;
                };
                // No response within 64*T1: as if 408 (RFC 3261 §8.1.3.1).
                self.log_client(&tx, 408, now);
                if let Some(d) = tx.dialog.and_then(|id| self.dialogs.get_mut(&id)) {
                    d.update_in_flight = false;
                }
            }
        }
    }

    /// Report a request the recorder sent (BYE) once it is answered or timed out.
    fn log_client(&mut self, tx: &ClientTx, code: u16, now: Instant) {
        if tx.method != Method::Bye {
            return;
        }
        let mut log = tx.log.clone();
        log.code = Some(code);
        log.response_at = Some(now);
        self.outputs.push_back(Output::Transaction(Box::new(log)));
    }

    fn arm_2xx_timers(&mut self, now: Instant, dialog: DialogId, cseq: u32, flow: Flow) {
        if !flow.is_reliable() {
            self.timers
                .schedule(now + self.cfg.t1, Timer::Retransmit2xx { dialog, cseq });
        }
        self.timers
            .schedule(now + self.cfg.t1 * 64, Timer::AckTimeout { dialog, cseq });
    }

    fn restart_session_timer(&mut self, now: Instant, dialog_id: DialogId) {
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

    /// Record the final response of a server transaction and arm its timers.
    fn finish_tx(&mut self, now: Instant, key: &TxKey, bytes: Bytes, success: bool) {
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
    fn reply(
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
    fn reply_with(
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
    fn log_response(
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

    fn response(&self, req: &SipRequest, code: u16, to_tag: Option<&str>) -> OutgoingResponse {
        let mut resp = OutgoingResponse::to_request(req, code, to_tag);
        if let Some(server) = &self.cfg.server_header {
            resp.headers.push(("Server".to_string(), server.clone()));
        }
        resp
    }

    fn transmit_response(&mut self, flow: Flow, resp: OutgoingResponse) {
        self.count_response(resp.code);
        let bytes = resp.to_bytes();
        self.transmit(flow, bytes);
    }

    fn count_response(&mut self, code: u16) {
        *self.stats.responses_by_code.entry(code).or_default() += 1;
    }

    fn transmit(&mut self, flow: Flow, data: Bytes) {
        self.outputs.push_back(Output::Transmit { flow, data });
    }

    fn emit(&mut self, event: RecordingEvent) {
        self.outputs.push_back(Output::Recording(event));
    }

    fn new_tag(&mut self) -> String {
        self.random_token(12)
    }

    fn random_token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    fn new_uuid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

/// RFC 3261 §18.2.2 / RFC 3581: where a response to `req` goes. Over UDP: the source port
/// when `rport` was asked for, else the sent-by port at the source address.
fn response_flow(req: &SipRequest, mut flow: Flow) -> Flow {
    if flow.is_reliable() {
        return flow;
    }
    if let Some(top) = req.vias.first()
        && top.rport.is_none()
    {
        flow.remote.set_port(top.port.unwrap_or(5060));
    }
    flow
}

/// Where requests we send inside the dialog go: over UDP the first Route, else the remote
/// target, when they name an IP address; otherwise back to where the INVITE came from.
/// Over TCP/TLS: the connection the INVITE came on.
fn request_flow(remote_target: &str, req: &SipRequest, mut flow: Flow) -> Flow {
    if flow.is_reliable() {
        return flow;
    }
    let next_hop = match req.header_values("Record-Route").next() {
        Some(route) => contact_uri(route),
        None => remote_target.to_string(),
    };
    if let Some(addr) = uri_socket_addr(&next_hop) {
        flow.remote = addr;
    }
    flow
}

fn uri_socket_addr(uri: &str) -> Option<std::net::SocketAddr> {
    let parsed: ezk_sip_types::uri::SipUri = uri.parse().ok()?;
    let ip = parsed.host_port.ip()?;
    Some(std::net::SocketAddr::new(
        ip,
        parsed.host_port.port.unwrap_or(5060),
    ))
}

/// A status code and the headers that explain it.
type Refusal = (u16, Vec<(String, String)>);

fn warning(code: u16, text: &str) -> (String, String) {
    let text = text.replace(['"', '\\'], "'");
    (
        "Warning".to_string(),
        format!("{code} sip-recorder \"{text}\""),
    )
}

/// The URI of a Contact header value (`"name" <sip:..>;params` or `sip:..;params`).
fn contact_uri(value: &str) -> String {
    let value = value.trim();
    if let (Some(start), Some(end)) = (value.find('<'), value.find('>'))
        && start < end
    {
        return value[start + 1..end].trim().to_string();
    }
    value.split(';').next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
#[path = "uas_tests.rs"]
mod tests;
