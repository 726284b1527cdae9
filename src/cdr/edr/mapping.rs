//! From what the UAS reports about a finished SIP transaction to the EDR line the seed
//! (`001_…`, N-Squared SIP EDRs) defines for it. Pure: the caller passes the clock.

use std::time::Instant;

use time::OffsetDateTime;

use super::{EdrEvent, EdrRecord};
use crate::sip::transaction_log::{TransactionEvent as T, TransactionRecord};

/// The wall-clock reading that goes with an `Instant`, to turn transaction times into stamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Instant,
    pub wall: OffsetDateTime,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            now: Instant::now(),
            wall: OffsetDateTime::now_utc(),
        }
    }

    fn wall(&self, at: Instant) -> OffsetDateTime {
        self.wall - self.now.saturating_duration_since(at)
    }
}

/// The URI of a From/To value (`"A" <sip:a@h>;tag=1` → `sip:a@h`); a bare URI as is.
fn uri_of(header: &str) -> String {
    match header.split_once('<').and_then(|(_, r)| r.split_once('>')) {
        Some((uri, _)) => uri.to_string(),
        None => header
            .split(';')
            .next()
            .unwrap_or(header)
            .trim()
            .to_string(),
    }
}

/// The EDR line of a finished SIP transaction; `None` for transactions the EDR format has
/// no event for (OPTIONS, UPDATE, refused methods) and for ACKs when they are not logged.
pub fn edr_record(
    r: &TransactionRecord,
    log_ack: bool,
    instance: String,
    clock: Clock,
) -> Option<EdrRecord> {
    let event = match r.event {
        T::InInvite => EdrEvent::InInviteAleg,
        T::InReinvite => EdrEvent::InReinviteAleg,
        T::InCancel => EdrEvent::InCancelAleg,
        T::InBye => EdrEvent::InByeAleg,
        T::InByeUnknown => EdrEvent::InBye,
        T::InAck if log_ack => EdrEvent::InAckAleg,
        T::OutBye => EdrEvent::OutByeAleg,
        T::InAck | T::InUpdate | T::InOptions | T::InOther => return None,
    };
    let transport = Some(r.flow.transport.as_str().to_string());
    let remote_ip = Some(r.flow.remote.ip().to_string());
    let remote_port = Some(r.flow.remote.port());
    if event == EdrEvent::InAckAleg {
        // The seed's IN-ACK-ALEG carries the transport and the peer, nothing else.
        return Some(EdrRecord {
            event,
            at: Some(clock.wall(r.request_at)),
            instance: Some(instance),
            transport,
            remote_ip,
            remote_port,
            ..EdrRecord::default()
        });
    }
    let outbound = event == EdrEvent::OutByeAleg;
    let via = r.via.as_ref().filter(|_| !outbound);
    // Inbound only: what we stamped as received/rport, present when the request asked
    // for it (the seed's VIA_RECEIVED / VIA_RPORT).
    let stamped = via.is_some_and(|v| v.rport.is_some() || v.received.is_some());
    let timed_out = outbound && r.timed_out;
    let response_at = r.response_at.map(|t| clock.wall(t));
    Some(EdrRecord {
        event,
        at: response_at.or(Some(clock.wall(r.request_at))),
        instance: Some(instance),
        call_id: Some(r.call_id.clone()),
        cseq: Some(r.cseq),
        from_uri: Some(uri_of(&r.from_uri)),
        to_uri: Some(uri_of(&r.to_uri)),
        transport,
        via_host: via.map(|v| v.host.clone()),
        via_port: via.and_then(|v| v.port),
        via_branch: via.and_then(|v| v.branch.clone()),
        via_received: stamped.then(|| r.flow.remote.ip().to_string()),
        via_rport: via
            .filter(|v| v.rport.is_some())
            .map(|_| r.flow.remote.port()),
        remote_ip: if outbound { remote_ip } else { None },
        remote_port: if outbound { remote_port } else { None },
        retry: outbound.then_some(r.retransmissions).filter(|&n| n > 0),
        timeout: timed_out,
        ltag: r.local_tag.clone(),
        rtag: r.remote_tag.clone(),
        sdp_in: r.sdp_in.is_some(),
        sdp_out: r.sdp_out.is_some(),
        pcodes: r.provisional.clone(),
        // Unanswered: TIMEOUT=1 (and RETRY) instead of an invented response code.
        code: if timed_out { None } else { r.code },
        request_at: Some(clock.wall(r.request_at)),
        response_at: if timed_out { None } else { response_at },
        extra: vec![],
    })
}

/// The internal error a finished transaction reveals, if any: an initial INVITE answered 500
/// means the recording could not be set up on our side (the call instance ends there).
pub fn internal_error(r: &TransactionRecord) -> Option<String> {
    (r.event == T::InInvite && r.code == Some(500)).then(|| {
        "the recording could not be prepared (directory, file or RTP socket); INVITE answered 500"
            .to_string()
    })
}

/// `SHUTDOWN`: the call instance ended with an internal processing error.
pub fn shutdown_record(instance: String, exception: &str) -> EdrRecord {
    EdrRecord {
        event: EdrEvent::Shutdown,
        instance: Some(instance),
        extra: vec![("EXCEPTION".into(), exception.to_string())],
        ..EdrRecord::default()
    }
}
