//! The recorder's user agent server: server transactions, dialogs, offer/answer and session
//! timers, as one sans-IO state machine (quinn style: `handle_*` for inputs, `poll_*` for
//! outputs). It never reads a clock or touches a socket: every input carries `now`.

use super::Flow;
use super::classify::{ACCEPTED_BODY_TYPES, RecordingRequest};
use super::message::{
    Limits, Method, OutgoingResponse, RequestUri, SipMessage, SipRequest, parse_message,
};
use super::session_timer::SessionTimer;
use super::source_policy::{SourceDecision, SourcePolicy, SourcePolicyConfig};
use super::timers::TimerQueue;
use super::transaction_log::TransactionRecord;
use crate::recording::EndReason;
use crate::sdp::{AnswerConfig, MediaSession, PortPool, release_ports};
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

mod in_dialog;
mod invite;
mod replies;
mod routing;
mod timers;

use routing::response_flow;

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
    /// A re-INVITE/UPDATE carried SIPREC metadata (RFC 7866 §6.2), raw as received.
    MetadataUpdated {
        recording_id: String,
        metadata: Bytes,
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
                if !self.sources.is_allowed(flow.remote.ip()) {
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
        let allowed = self.sources.is_allowed(source);
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

/// A status code and the headers that explain it.
type Refusal = (u16, Vec<(String, String)>);

fn warning(code: u16, text: &str) -> (String, String) {
    let text = text.replace(['"', '\\'], "'");
    (
        "Warning".to_string(),
        format!("{code} sip-recorder \"{text}\""),
    )
}

#[cfg(test)]
mod tests;
