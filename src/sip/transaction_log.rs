//! What the UAS reports about each finished SIP transaction, for the EDR log (SPEC §6).
//! Sans-IO: times are `Instant`s; the I/O layer turns them into wall-clock stamps.

use super::Flow;
use super::message::{SipRequest, Via};
use std::time::Instant;

/// The N-Squared EDR event a transaction maps onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEvent {
    /// Initial INVITE (any final response).
    InInvite,
    InReinvite,
    InCancel,
    /// BYE inside a dialog.
    InBye,
    /// BYE for an unknown dialog (481).
    InByeUnknown,
    InAck,
    InUpdate,
    InOptions,
    /// Any other request (answered 405/501/481...).
    InOther,
    /// A BYE the recorder sent, with the response it got (408 and `timed_out` when none
    /// came).
    OutBye,
}

impl TransactionEvent {
    /// Whether the EDR log has a line for this event (SPEC §6): none for OPTIONS, UPDATE or
    /// refused methods, and ACK only when `log_ack`. The UAS builds a record only then.
    pub fn is_logged(self, log_ack: bool) -> bool {
        match self {
            TransactionEvent::InAck => log_ack,
            TransactionEvent::InUpdate
            | TransactionEvent::InOptions
            | TransactionEvent::InOther => false,
            TransactionEvent::InInvite
            | TransactionEvent::InReinvite
            | TransactionEvent::InCancel
            | TransactionEvent::InBye
            | TransactionEvent::InByeUnknown
            | TransactionEvent::OutBye => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TransactionRecord {
    pub event: TransactionEvent,
    pub method: String,
    pub call_id: String,
    pub cseq: u32,
    pub from_uri: String,
    pub to_uri: String,
    pub flow: Flow,
    /// Top Via of the request (for requests we received).
    pub via: Option<Via>,
    /// Our tag and the peer's tag.
    pub local_tag: Option<String>,
    pub remote_tag: Option<String>,
    pub sdp_in: Option<String>,
    pub sdp_out: Option<String>,
    /// Provisional responses sent before the final one (100 for answered INVITEs).
    pub provisional: Vec<u16>,
    /// Final status code; `None` for ACK.
    pub code: Option<u16>,
    pub request_at: Instant,
    pub response_at: Option<Instant>,
    /// Requests we sent: how often they were retransmitted.
    pub retransmissions: u32,
    /// Requests we sent: no response before the transaction timer fired.
    pub timed_out: bool,
}

impl TransactionRecord {
    /// A record for a request we received.
    pub fn incoming(
        req: &SipRequest,
        event: TransactionEvent,
        flow: Flow,
        request_at: Instant,
    ) -> Self {
        let sdp_in = sdp_of(req);
        TransactionRecord {
            event,
            method: req.method.as_str().to_string(),
            call_id: req.call_id.clone(),
            cseq: req.cseq,
            from_uri: req.from.uri.clone(),
            to_uri: req.to.uri.clone(),
            flow,
            via: req.vias.first().cloned(),
            local_tag: req.to.tag.clone(),
            remote_tag: req.from.tag.clone(),
            sdp_in,
            sdp_out: None,
            provisional: vec![],
            code: None,
            request_at,
            response_at: None,
            retransmissions: 0,
            timed_out: false,
        }
    }
}

/// The SDP a request carried (plain or as a multipart part).
fn sdp_of(req: &SipRequest) -> Option<String> {
    let body = super::classify::classify_body(req).ok()?.sdp?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The event of an incoming request, given whether it matched a dialog.
pub fn event_for(req: &SipRequest, code: u16) -> TransactionEvent {
    use super::message::Method;
    match req.method {
        Method::Invite if req.to.tag.is_some() => TransactionEvent::InReinvite,
        Method::Invite => TransactionEvent::InInvite,
        Method::Cancel => TransactionEvent::InCancel,
        Method::Bye if code == 481 => TransactionEvent::InByeUnknown,
        Method::Bye => TransactionEvent::InBye,
        Method::Ack => TransactionEvent::InAck,
        Method::Update => TransactionEvent::InUpdate,
        Method::Options => TransactionEvent::InOptions,
        _ => TransactionEvent::InOther,
    }
}
