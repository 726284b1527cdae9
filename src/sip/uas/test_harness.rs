//! The virtual-clock harness the UAS state-machine tests share: a `Uas` fed text requests,
//! its outputs collected, time advanced deadline by deadline.

use super::*;
use crate::sip::Transport;
use crate::sip::message::{SipMessage, SipResponse, parse_message};
use crate::sip::source_policy::SourcePolicyConfig;
use crate::sip::transaction_log::{TransactionEvent, TransactionRecord};
use std::net::{IpAddr, Ipv4Addr};

pub(super) const T1: Duration = Duration::from_millis(500);

pub(super) fn config() -> UasConfig {
    UasConfig {
        t1: T1,
        t2: Duration::from_secs(4),
        limits: Limits::default(),
        min_se: 90,
        max_sessions: 100,
        retry_after_secs: 5,
        server_header: Some("sip-recorder".into()),
        report_acks: true,
        sources: SourcePolicyConfig {
            allow: vec![],
            reply_to_refused: true,
            rate_per_second: 0.0,
            burst: 1.0,
            reply_to_limited: true,
            scanner_user_agents: vec!["friendly-scanner".into()],
        },
        answer: AnswerConfig {
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            accept_video: false,
            srtp: Default::default(),
        },
    }
}

pub(super) fn udp_flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:5070".parse().unwrap(),
        listener: 0,
        connection: None,
    }
}

pub(super) struct Harness {
    pub(super) uas: Uas,
    pub(super) now: Instant,
    pub(super) flow: Flow,
    pub(super) sent: Vec<(Flow, Bytes)>,
    pub(super) events: Vec<RecordingEvent>,
    pub(super) transactions: Vec<TransactionRecord>,
}

pub(super) fn sdp(version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=GMS 1000 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n\
         m=audio 30002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

pub(super) struct Call {
    pub(super) call_id: String,
    pub(super) from_tag: String,
    pub(super) to_tag: Option<String>,
    pub(super) cseq: u32,
}

impl Call {
    pub(super) fn new(n: u32) -> Call {
        Call {
            call_id: format!("call-{n}@test"),
            from_tag: format!("ft{n}"),
            to_tag: None,
            cseq: 1,
        }
    }

    pub(super) fn request(
        &self,
        method: &str,
        branch: &str,
        extra: &str,
        body: Option<(&str, &str)>,
    ) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let uri = "sip:record=REC1@127.0.0.1:5060;calluuid=CU1;dn=1001;otherDN=1002;recordDN=1001";
        let (ctype, body) = match body {
            Some((t, b)) => (format!("Content-Type: {t}\r\n"), b.to_string()),
            None => (String::new(), String::new()),
        };
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:gms@127.0.0.1>;tag={}\r\nTo: <sip:record@127.0.0.1>{to_tag}\r\n\
             Call-ID: {}\r\nCSeq: {} {method}\r\nContact: <sip:gms@127.0.0.1:5070>\r\n{extra}{ctype}\
             Content-Length: {}\r\n\r\n{body}",
            self.from_tag,
            self.call_id,
            self.cseq,
            body.len()
        )
    }
}

impl Call {
    /// `request` with an SDP body.
    pub(super) fn offer(&self, method: &str, branch: &str, extra: &str, sdp: &str) -> String {
        self.request(method, branch, extra, Some(("application/sdp", sdp)))
    }
}

impl Harness {
    /// The recording id of the one `Prepare` the last INVITE caused, reported prepared.
    pub(super) fn prepare_first(&mut self) -> String {
        let RecordingEvent::Prepare { recording_id, .. } = self.take_events().remove(0) else {
            panic!("the INVITE did not prepare a recording")
        };
        self.uas.recording_prepared(self.now, &recording_id, Ok(()));
        self.collect();
        recording_id
    }

    /// The only recording event since the last look is `Ended` for `reason`.
    pub(super) fn assert_ended(&mut self, reason: EndReason) {
        let events = self.take_events();
        assert!(
            matches!(events.as_slice(), [RecordingEvent::Ended { reason: r, .. }] if *r == reason),
            "expected one Ended({reason:?}), got {events:?}"
        );
    }

    pub(super) fn new() -> Harness {
        Harness::with(config(), PortPool::new(20000, 20099))
    }

    pub(super) fn with(cfg: UasConfig, pool: PortPool) -> Harness {
        Harness::seeded(cfg, pool, [7; 32])
    }

    pub(super) fn seeded(cfg: UasConfig, pool: PortPool, seed: [u8; 32]) -> Harness {
        Harness {
            uas: Uas::new(cfg, pool, seed),
            now: Instant::now(),
            flow: udp_flow(),
            sent: vec![],
            events: vec![],
            transactions: vec![],
        }
    }

    pub(super) fn collect(&mut self) {
        while let Some(out) = self.uas.poll_output() {
            match out {
                Output::Transmit { flow, data } => self.sent.push((flow, data)),
                Output::Recording(e) => self.events.push(e),
                Output::Transaction(t) => self.transactions.push(*t),
            }
        }
    }

    pub(super) fn input(&mut self, text: &str) {
        self.uas
            .handle_input(self.now, Bytes::from(text.to_string()), self.flow);
        self.collect();
    }

    pub(super) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        // Step through every deadline so timers fire at their own instant.
        while let Some(at) = self.uas.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.uas.handle_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }

    pub(super) fn take_sent(&mut self) -> Vec<Bytes> {
        self.sent.drain(..).map(|(_, b)| b).collect()
    }

    pub(super) fn responses(&mut self) -> Vec<SipResponse> {
        self.take_sent()
            .into_iter()
            .filter_map(|b| match parse_message(b, &Limits::default()) {
                Ok(SipMessage::Response(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The finished transactions reported so far: (event, final status).
    pub(super) fn reported(&self) -> Vec<(TransactionEvent, Option<u16>)> {
        self.transactions
            .iter()
            .map(|t| (t.event, t.code))
            .collect()
    }

    pub(super) fn codes(&mut self) -> Vec<u16> {
        self.responses().iter().map(|r| r.code).collect()
    }

    pub(super) fn requests(&mut self) -> Vec<SipRequest> {
        self.take_sent()
            .into_iter()
            .filter_map(|b| match parse_message(b, &Limits::default()) {
                Ok(SipMessage::Request(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub(super) fn take_events(&mut self) -> Vec<RecordingEvent> {
        std::mem::take(&mut self.events)
    }

    /// INVITE → 100 → prepared → 200 → ACK; returns the recording id.
    pub(super) fn establish(&mut self, call: &mut Call) -> String {
        self.input(&call.request(
            "INVITE",
            &format!("inv{}", call.from_tag),
            "",
            Some(("application/sdp", &sdp(1, "sendonly"))),
        ));
        assert_eq!(self.codes(), vec![100]);
        let id = match self.take_events().as_slice() {
            [RecordingEvent::Prepare { recording_id, .. }] => recording_id.clone(),
            other => panic!("expected Prepare, got {other:?}"),
        };
        self.uas.recording_prepared(self.now, &id, Ok(()));
        self.collect();
        let ok = self.responses();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].code, 200);
        call.to_tag = ok[0].to_tag.clone();
        assert!(call.to_tag.is_some());
        self.input(&call.request("ACK", &format!("ack{}", call.from_tag), "", None));
        assert!(self.take_sent().is_empty(), "ACK is never answered");
        assert!(matches!(
            self.take_events().as_slice(),
            [RecordingEvent::Established { .. }]
        ));
        id
    }
}

pub(super) fn header<'a>(r: &'a SipResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}
