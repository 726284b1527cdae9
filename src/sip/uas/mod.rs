//! The recorder's user agent server: server transactions, dialogs, offer/answer and session
//! timers, as one sans-IO state machine (quinn style: `handle_*` for inputs, `poll_*` for
//! outputs). It never reads a clock or touches a socket: every input carries `now`.

use super::Flow;
use super::classify::{ACCEPTED_BODY_TYPES, RecordingRequest};
use super::message::{
    Limits, Method, OutgoingRequest, OutgoingResponse, RequestUri, SipMessage, SipRequest,
    parse_message,
};
use super::session_timer::SessionTimer;
use super::source_policy::{SourceDecision, SourcePolicy, SourcePolicyConfig};
use super::timers::TimerQueue;
use super::transaction_log::TransactionRecord;
use crate::recording::EndReason;
use crate::sdp::{AnswerConfig, MediaSession, PortPool, release_ports};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

mod client;
mod in_dialog;
mod invite;
mod replies;
mod routing;
mod timers;
mod transaction;

use replies::Reply;
use routing::response_flow;
use transaction::{ServerTx, TxKey};

pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";
pub const SUPPORTED: &str = "timer, siprec";
/// Option tags a request may `Require` of us.
const UNDERSTOOD: &[&str] = &["timer", "siprec"];

#[derive(Debug, Clone)]
pub struct UasConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub limits: Limits,
    pub min_se: u32,
    pub max_sessions: usize,
    pub retry_after_secs: u32,
    pub server_header: Option<String>,
    /// Report ACKs as finished transactions (the EDR log's optional `IN-ACK-ALEG`).
    pub report_acks: bool,
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
        /// The recording leg's id in recording.json and the CDRs (`callLegId`).
        call_leg_id: String,
        /// The id of the recording group this recording starts, should it be the first of
        /// its correlation id (`recording::group`); drawn here like the ids above.
        new_group_id: String,
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
    /// How often each [`Tolerance`] let a request through, by [`Tolerance::as_str`].
    pub tolerances: HashMap<&'static str, u64>,
}

/// Requests outside the letter of RFC 3261 that the recorder takes because their intent is
/// unambiguous (SPEC §3). Each is counted and logged once per dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tolerance {
    /// An ACK for the one unacknowledged 2xx with another CSeq number or CSeq method.
    AckCseqMismatch,
    /// An in-dialog request without our To tag, matched by Call-ID and From tag.
    MissingToTag,
    /// A BYE with a CSeq lower than the dialog's last: it still ends the dialog.
    LowerCseqBye,
    /// Our BYE/UPDATE met the SRC's re-INVITE (491): retried after a random delay.
    GlareRetry,
}

impl Tolerance {
    pub const ALL: [Tolerance; 4] = [
        Tolerance::AckCseqMismatch,
        Tolerance::MissingToTag,
        Tolerance::LowerCseqBye,
        Tolerance::GlareRetry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tolerance::AckCseqMismatch => "ack_cseq_mismatch",
            Tolerance::MissingToTag => "missing_to_tag",
            Tolerance::LowerCseqBye => "lower_cseq_bye",
            Tolerance::GlareRetry => "glare_retry",
        }
    }
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
    /// Where retransmissions go: the flow of the latest copy of the INVITE.
    flow: Flow,
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
    /// The initial INVITE had no SDP: without an answer in the ACK nothing can be recorded.
    offerless: bool,
    session_timer: Option<SessionTimer>,
    timer_generation: u64,
    update_in_flight: bool,
    allows_update: bool,
    siprec: bool,
    /// Tolerances already logged for this dialog (each is logged once, counted always).
    logged_tolerances: Vec<Tolerance>,
    /// CSeq of the last ACK taken: a late copy of it does not stand in for the ACK that
    /// carries the answer to our offer.
    last_ack_cseq: Option<u32>,
}

#[derive(Debug, Clone)]
enum Timer {
    Retransmit2xx {
        dialog: DialogId,
        cseq: u32,
    },
    AckTimeout {
        dialog: DialogId,
        cseq: u32,
    },
    TimerG {
        tx: TxKey,
    },
    ExpireTx {
        tx: TxKey,
    },
    SessionExpiry {
        dialog: DialogId,
        generation: u64,
    },
    SessionRefresh {
        dialog: DialogId,
        generation: u64,
    },
    ClientRetransmit {
        branch: String,
    },
    /// RFC 3261 §14.1: resend a refresh UPDATE that got 491.
    GlareRetryUpdate {
        dialog: DialogId,
        generation: u64,
    },
    /// RFC 3261 §14.1: resend a BYE that got 491 (the dialog is already gone).
    GlareRetryBye {
        request: Box<OutgoingRequest>,
        log: Box<TransactionRecord>,
        retries: u8,
    },
    ClientTimeout {
        branch: String,
    },
}

struct ClientTx {
    request: Bytes,
    flow: Flow,
    interval: Duration,
    dialog: Option<DialogId>,
    method: Method,
    /// The request as built, for a retry after 491.
    template: OutgoingRequest,
    /// The dialog's session timer generation when this was sent: a refresh UPDATE is only
    /// retried if nothing refreshed the session since.
    generation: u64,
    /// How often this request was already retried after a 491.
    glare_retries: u8,
    /// Filled in when the transaction ends, for the EDR log.
    log: TransactionRecord,
}

/// Why a recording could not be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareError {
    /// Disk full or above its high watermark, resources exhausted: 503.
    Unavailable,
    /// Nothing offered can be recorded: 488.
    NotAcceptable,
    /// Anything else: 500.
    Failed,
}

impl PrepareError {
    /// The status of the INVITE's final response.
    pub fn status(self) -> u16 {
        match self {
            PrepareError::Unavailable => 503,
            PrepareError::NotAcceptable => 488,
            PrepareError::Failed => 500,
        }
    }
}

pub struct Uas {
    cfg: UasConfig,
    pool: PortPool,
    /// Every random value the UAS sends or hands out (tags, ids, SRTP keys): seeded by the
    /// caller, so a run is reproducible under test. ChaCha: the SRTP keys need a CSPRNG.
    rng: StdRng,
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

impl Uas {
    /// `seed` feeds the UAS's one generator: from the OS in production, fixed in tests.
    pub fn new(cfg: UasConfig, pool: PortPool, seed: [u8; 32]) -> Self {
        let sources = SourcePolicy::new(cfg.sources.clone());
        Uas {
            cfg,
            pool,
            rng: StdRng::from_seed(seed),
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
            stats: UasStats {
                // Every kind is published, at 0 until it happens.
                tolerances: Tolerance::ALL.iter().map(|t| (t.as_str(), 0)).collect(),
                ..UasStats::default()
            },
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
        // A BYE never starts anything: even without our To tag (Cisco CUBE) it may be one.
        let in_dialog = req.to.tag.is_some() || matches!(req.method, Method::Ack | Method::Bye);
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
        match decision {
            SourceDecision::Forbidden => self.reply(now, req, flow, Reply::new(403)),
            SourceDecision::RateLimited => {
                // Shed load: answered and counted, but no EDR line for each request of a
                // flood (the refused source is logged once a minute above).
                let retry = self.cfg.retry_after_secs.to_string();
                let reply = Reply::new(503).header("Retry-After", retry).unreported();
                self.reply(now, req, flow, reply)
            }
            SourceDecision::Drop | SourceDecision::Accept => {}
        }
        false
    }

    fn handle_request(&mut self, now: Instant, req: SipRequest, flow: Flow) {
        if req.method == Method::Ack {
            self.handle_ack(now, req, flow);
            return;
        }
        if self.retransmission(&req, flow) {
            return;
        }
        if req.method == Method::Cancel {
            self.handle_cancel(now, req, flow);
            return;
        }
        if let Some(refusal) = self.request_refusal(&req) {
            self.reply(now, &req, flow, refusal);
            return;
        }
        if req.to.tag.is_some() {
            self.handle_in_dialog(now, req, flow);
            return;
        }
        let allow = || Reply::new(405).header("Allow", ALLOW);
        match req.method {
            Method::Invite => self.handle_initial_invite(now, req, flow),
            Method::Options => self.handle_options(now, &req, flow),
            // Cisco CUBE: ACK and BYE carry the INVITE's To, without our tag.
            Method::Bye | Method::Update | Method::Info | Method::Prack => {
                match self.dialog_without_to_tag(&req) {
                    Some(dialog) => self.handle_dialog_request(now, req, flow, dialog),
                    None => self.reply(now, &req, flow, Reply::new(481)),
                }
            }
            Method::Extension(_) => {
                self.reply(now, &req, flow, Reply::new(501).header("Allow", ALLOW))
            }
            _ => self.reply(now, &req, flow, allow()),
        }
    }

    /// RFC 3261 §17.2.3: a copy of a request whose server transaction exists is a
    /// retransmission: repeat the last response on the flow this copy came on, never act
    /// twice. Returns whether the request is dealt with.
    fn retransmission(&mut self, req: &SipRequest, flow: Flow) -> bool {
        let key = TxKey::of(req);
        let Some(tx) = self.server_txs.get_mut(&key) else {
            return false;
        };
        if !tx.is_copy_of(req) {
            if tx.state != transaction::TxState::Proceeding {
                // A new request reusing a finished request's branch: it takes the key over.
                self.server_txs.remove(&key);
                return false;
            }
            // The branch belongs to a request still being answered: refuse this one without
            // touching that transaction.
            let tag = self.new_tag();
            let (name, value) = warning(399, "branch in use by another request");
            let resp = self
                .response(req, 400, Some(&tag))
                .with_header(&name, value);
            self.transmit_response(flow, resp);
            return true;
        }
        if let Some((flow, resp)) = tx.retransmission(flow) {
            self.transmit(flow, resp);
        }
        if req.method == Method::Invite {
            self.invite_moved_to(&key, flow);
        }
        true
    }

    /// Checks every request passes before its method is looked at.
    fn request_refusal(&self, req: &SipRequest) -> Option<Reply> {
        if req.max_forwards == Some(0) {
            return Some(Reply::new(483));
        }
        if let RequestUri::Other { .. } = req.uri {
            return Some(Reply::new(416));
        }
        let unsupported: Vec<String> = req
            .header_tokens("Require")
            .into_iter()
            .filter(|t| !UNDERSTOOD.contains(&t.as_str()))
            .collect();
        (!unsupported.is_empty())
            .then(|| Reply::new(420).header("Unsupported", unsupported.join(", ")))
    }

    fn handle_options(&mut self, now: Instant, req: &SipRequest, flow: Flow) {
        if let Some(headers) = self.admission_refusal() {
            self.reply(now, req, flow, Reply::new(503).headers(headers));
            return;
        }
        let ok = Reply::new(200)
            .header("Allow", ALLOW)
            .header("Accept", ACCEPTED_BODY_TYPES)
            .header("Supported", SUPPORTED);
        self.reply(now, req, flow, ok);
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

    /// Count a tolerance; log it the first time it happens in this dialog.
    fn tolerate(&mut self, dialog_id: DialogId, tolerance: Tolerance, what: &str) {
        *self.stats.tolerances.entry(tolerance.as_str()).or_default() += 1;
        let Some(dialog) = self.dialogs.get_mut(&dialog_id) else {
            return;
        };
        if !dialog.logged_tolerances.contains(&tolerance) {
            dialog.logged_tolerances.push(tolerance);
            tracing::info!(
                call_id = %dialog.call_id,
                recording_id = %dialog.recording_id,
                tolerance = tolerance.as_str(),
                "accepted {what}"
            );
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

fn warning(code: u16, text: &str) -> (String, String) {
    let text = text.replace(['"', '\\'], "'");
    (
        "Warning".to_string(),
        format!("{code} sip-recorder \"{text}\""),
    )
}

#[cfg(test)]
mod rng_tests;
#[cfg(test)]
mod test_harness;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transaction_tests;
