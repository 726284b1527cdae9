//! The UAS state machine driven by arbitrary operation sequences on a virtual clock.
//!
//! Requests are built well-framed on a few call-ids, tags and branches, so that the
//! sequences reach dialogs, retransmissions, CANCEL races, re-INVITEs and session timers
//! rather than dying in the parser; garbage datagrams are mixed in. Invariants:
//! - no panic, and no timer storm (a bounded number of timers per virtual second);
//! - `active_sessions()` never exceeds the recordings prepared and not yet over;
//! - per recording, events come in order: Prepare first, at most one Ended/Discarded,
//!   nothing after it;
//! - once every recording is stopped and 64·T1 has passed, no dialog and no RTP port is left.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_recorder::sip::Transport;
use sip_recorder::recording::EndReason;
use sip_recorder::sdp::{AnswerConfig, PortPool};
use sip_recorder::sip::Flow;
use sip_recorder::sip::message::{Limits, SipMessage, parse_message};
use sip_recorder::sip::source_policy::SourcePolicyConfig;
use sip_recorder::sip::uas::{Output, PrepareError, RecordingEvent, Uas, UasConfig};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const T1: Duration = Duration::from_millis(500);
const CALLS: usize = 3;
const MAX_OPS: usize = 200;
/// Timer firings allowed per call to `advance`; far above what a few dialogs need.
const MAX_TIMER_STEPS: usize = 20_000;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Update,
    Options,
    Info,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Update => "UPDATE",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Target {
    Genesys,
    Cms,
    Siprec,
    Tel,
}

#[derive(Arbitrary, Debug)]
enum ToTag {
    /// The tag the recorder gave this call, when it gave one: in-dialog requests.
    Learned,
    None,
    Bogus,
}

#[derive(Arbitrary, Debug)]
enum CSeq {
    Next,
    Same,
    /// The CSeq of the call's last INVITE (ACK and CANCEL match it).
    Invite,
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
struct MediaLine {
    kind: u8,
    port: u16,
    srtp: bool,
    /// Payload types as a bit set over PCMU, PCMA, G722, telephone-event, an unknown one.
    codecs: u8,
    direction: u8,
    ptime: Option<u32>,
    rtcp_mux: bool,
    label: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct SdpSpec {
    version: u8,
    ipv6: bool,
    no_connection: bool,
    media: Vec<MediaLine>,
}

#[derive(Arbitrary, Debug)]
enum Body {
    None,
    Sdp(SdpSpec),
    Siprec(SdpSpec),
    Raw { content_type: u8, bytes: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Request {
    method: Method,
    call: u8,
    target: Target,
    branch: u8,
    /// RFC 2543 peers send branches without the magic cookie.
    old_branch: bool,
    to_tag: ToTag,
    cseq: CSeq,
    session_expires: Option<(u32, bool)>,
    min_se: Option<u32>,
    require: Option<u8>,
    supported_timer: bool,
    extra_header: Option<String>,
    body: Body,
    /// A Content-Length that lies.
    content_length: Option<u16>,
    tcp: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Send(Request),
    Garbage(Vec<u8>),
    Advance {
        ms: u16,
    },
    Prepared {
        which: u8,
        ok: bool,
        unavailable: bool,
    },
    Stop {
        which: u8,
    },
    /// Answer a request the recorder sent (BYE, session refresh).
    Reply {
        which: u8,
        code: u16,
    },
    Drain,
}

struct CallState {
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
    invite_cseq: u32,
}

#[derive(Default)]
struct Lifecycle {
    /// `recording_prepared` was called: the recording layer does that exactly once.
    reported: bool,
    established: bool,
    ended: bool,
}

struct Harness {
    uas: Uas,
    now: Instant,
    capacity: usize,
    calls: Vec<CallState>,
    /// Recording ids in the order their Prepare was seen.
    recordings: Vec<String>,
    life: HashMap<String, Lifecycle>,
    /// Recordings prepared and not yet Ended/Discarded.
    live: usize,
    /// Requests the recorder sent, as (Via, From, To, Call-ID, CSeq) lines, for `Reply`.
    sent_requests: Vec<Vec<String>>,
}

fn flow(tcp: bool) -> Flow {
    Flow {
        transport: if tcp { Transport::Tcp } else { Transport::Udp },
        local: "127.0.0.1:5060".parse().expect("literal"),
        remote: "127.0.0.1:5070".parse().expect("literal"),
        listener: 0,
        connection: tcp.then_some(1),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    let mut h = Harness::new();
    // Reproducing a finding: FUZZ_DEBUG=1 prints each operation as it is applied.
    let debug = std::env::var_os("FUZZ_DEBUG").is_some();
    for op in ops {
        if debug {
            eprintln!("op: {op:?}");
        }
        h.apply(op);
        h.check();
    }
    h.quiesce();
});

impl Harness {
    fn new() -> Harness {
        let cfg = UasConfig {
            t1: T1,
            t2: Duration::from_secs(4),
            limits: Limits::default(),
            min_se: 90,
            // Small, so refusal at the session limit is reached.
            max_sessions: 2,
            retry_after_secs: 5,
            server_header: Some("sip-recorder".into()),
            report_acks: true,
            answer: AnswerConfig {
                media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                accept_video: false,
                srtp: Default::default(),
            },
            // A tight limit, so that refusals by rate are reached too.
            sources: SourcePolicyConfig {
                allow: vec![],
                reply_to_refused: true,
                rate_per_second: 50.0,
                burst: 20.0,
                reply_to_limited: true,
                scanner_user_agents: vec!["friendly-scanner".into()],
            },
        };
        // Six slots: three two-stream calls exhaust it.
        let pool = PortPool::new(20000, 20011);
        let capacity = pool.capacity();
        Harness {
            uas: Uas::new(cfg, pool, [7; 32]),
            now: Instant::now(),
            capacity,
            calls: (0..CALLS)
                .map(|n| CallState {
                    call_id: format!("fz-call-{n}@fuzz"),
                    from_tag: format!("ft{n}"),
                    to_tag: None,
                    cseq: 1,
                    invite_cseq: 1,
                })
                .collect(),
            recordings: Vec::new(),
            life: HashMap::new(),
            live: 0,
            sent_requests: Vec::new(),
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Send(req) => {
                let tcp = req.tcp;
                let bytes = self.build(req);
                self.uas
                    .handle_input(self.now, Bytes::from(bytes), flow(tcp));
            }
            Op::Garbage(bytes) => {
                self.uas
                    .handle_input(self.now, Bytes::from(bytes), flow(false));
            }
            Op::Advance { ms } => self.advance(Duration::from_millis(u64::from(ms))),
            Op::Prepared {
                which,
                ok,
                unavailable,
            } => {
                if let Some(id) = self.pick(which) {
                    let result = match (ok, unavailable) {
                        (true, _) => Ok(()),
                        (false, true) => Err(PrepareError::Unavailable),
                        (false, false) => Err(PrepareError::Failed),
                    };
                    let life = self.life.entry(id.clone()).or_default();
                    if !life.reported {
                        life.reported = true;
                        // A failed recording discards itself and expects no event for it
                        // (the UAS only refuses the INVITE), so it is over here.
                        if result.is_err() && !life.ended && self.recordings.contains(&id) {
                            life.ended = true;
                            self.live -= 1;
                        }
                        self.uas.recording_prepared(self.now, &id, result);
                    }
                }
            }
            Op::Stop { which } => {
                if let Some(id) = self.pick(which) {
                    self.uas
                        .stop_recording(self.now, &id, EndReason::MediaTimeout);
                }
            }
            Op::Reply { which, code } => {
                if !self.sent_requests.is_empty() {
                    let i = usize::from(which) % self.sent_requests.len();
                    let lines = self.sent_requests[i].clone();
                    let code = 100 + code % 600;
                    let mut resp = format!("SIP/2.0 {code} Fuzz\r\n");
                    for line in lines {
                        resp.push_str(&line);
                        resp.push_str("\r\n");
                    }
                    resp.push_str("Content-Length: 0\r\n\r\n");
                    self.uas
                        .handle_input(self.now, Bytes::from(resp), flow(false));
                }
            }
            Op::Drain => self.uas.start_drain(),
        }
        self.collect();
    }

    fn pick(&self, which: u8) -> Option<String> {
        if self.recordings.is_empty() {
            return None;
        }
        // Now and then an id the recorder never gave out.
        if which == u8::MAX {
            return Some("no-such-recording".into());
        }
        Some(self.recordings[usize::from(which) % self.recordings.len()].clone())
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0;
        // Every deadline fires at its own instant, as the server's timer loop does it.
        while let Some(at) = self.uas.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.uas.handle_timeout(self.now);
            self.collect();
            self.check();
            steps += 1;
            assert!(
                steps < MAX_TIMER_STEPS,
                "timer storm: {steps} firings in {d:?}"
            );
        }
        self.now = end;
    }

    fn collect(&mut self) {
        while let Some(out) = self.uas.poll_output() {
            match out {
                Output::Transmit { data, .. } => self.observe(data),
                Output::Recording(event) => self.event(event),
                // EDR input: nothing to check beyond not panicking while building it.
                Output::Transaction(_) => {}
            }
        }
    }

    /// Learns the recorder's To tags (so in-dialog requests can follow) and the requests
    /// it sends (so they can be answered).
    fn observe(&mut self, data: Bytes) {
        match parse_message(data.clone(), &Limits::default()) {
            Ok(SipMessage::Response(resp)) => {
                if let Some(call) = self.calls.iter_mut().find(|c| c.call_id == resp.call_id) {
                    if resp.to_tag.is_some() && (200..300).contains(&resp.code) {
                        call.to_tag = resp.to_tag.clone();
                    }
                }
            }
            Ok(SipMessage::Request(req)) => {
                let text = String::from_utf8_lossy(&data);
                let lines: Vec<String> = text
                    .split("\r\n")
                    .filter(|l| {
                        let name = l
                            .split(':')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase();
                        matches!(name.as_str(), "via" | "from" | "to" | "call-id" | "cseq")
                    })
                    .map(str::to_string)
                    .collect();
                if req.method.as_str() != "ACK" && self.sent_requests.len() < 64 {
                    self.sent_requests.push(lines);
                }
            }
            // A 400 echoes the fields it could not parse, as the peer needs them to match it.
            Err(_) if data.starts_with(b"SIP/2.0 400 ") => {}
            Err(e) => panic!(
                "the recorder sent a message it cannot parse: {e:?}\n{}",
                String::from_utf8_lossy(&data)
            ),
        }
    }

    fn event(&mut self, event: RecordingEvent) {
        if std::env::var_os("FUZZ_DEBUG").is_some() {
            eprintln!(
                "event: {}",
                format!("{event:?}").chars().take(160).collect::<String>()
            );
        }
        match event {
            RecordingEvent::Prepare { recording_id, .. } => {
                assert!(
                    !self.life.contains_key(&recording_id),
                    "recording id {recording_id} prepared twice"
                );
                self.life.insert(recording_id.clone(), Lifecycle::default());
                self.recordings.push(recording_id);
                self.live += 1;
            }
            RecordingEvent::Established { recording_id } => {
                let life = self.alive(&recording_id, "Established");
                assert!(!life.established, "{recording_id} established twice");
                life.established = true;
            }
            RecordingEvent::MediaChanged { recording_id, .. } => {
                self.alive(&recording_id, "MediaChanged");
            }
            RecordingEvent::MetadataUpdated { recording_id, .. } => {
                self.alive(&recording_id, "MetadataUpdated");
            }
            RecordingEvent::Discarded { recording_id } => {
                let life = self.alive(&recording_id, "Discarded");
                assert!(
                    !life.established,
                    "{recording_id} discarded after it was established"
                );
                life.ended = true;
                self.live -= 1;
            }
            RecordingEvent::Ended { recording_id, .. } => {
                self.alive(&recording_id, "Ended").ended = true;
                self.live -= 1;
            }
        }
    }

    fn alive(&mut self, id: &str, what: &str) -> &mut Lifecycle {
        let life = self
            .life
            .get_mut(id)
            .unwrap_or_else(|| panic!("{what} for {id}, which was never prepared"));
        assert!(!life.ended, "{what} for {id} after it was over");
        life
    }

    fn check(&self) {
        assert!(
            self.uas.active_sessions() <= self.live,
            "{} dialogs, {} recordings prepared and not over",
            self.uas.active_sessions(),
            self.live
        );
        assert!(self.uas.active_sessions() <= self.recordings.len());
        assert!(self.uas.free_rtp_ports() <= self.capacity);
    }

    /// Stop everything, let every transaction and timer run out, and check nothing is left.
    fn quiesce(&mut self) {
        for id in self.recordings.clone() {
            self.uas.stop_recording(self.now, &id, EndReason::Shutdown);
            self.collect();
        }
        self.advance(T1 * 64 + Duration::from_secs(1));
        self.check();
        assert_eq!(
            self.uas.active_sessions(),
            0,
            "dialogs left after stopping all"
        );
        assert_eq!(self.live, 0, "recordings never ended");
        assert_eq!(self.uas.free_rtp_ports(), self.capacity, "RTP ports leaked");
    }

    fn build(&mut self, req: Request) -> Vec<u8> {
        let call = &mut self.calls[usize::from(req.call) % CALLS];
        let method = req.method.as_str();
        let cseq = match req.cseq {
            CSeq::Next => {
                call.cseq = call.cseq.wrapping_add(1);
                call.cseq
            }
            CSeq::Same => call.cseq,
            CSeq::Invite => call.invite_cseq,
            CSeq::Raw(n) => n,
        };
        if matches!(req.method, Method::Invite) {
            call.invite_cseq = cseq;
        }
        let uri = match req.target {
            Target::Genesys => {
                "sip:record=REC1@127.0.0.1:5060;calluuid=CU1;dn=1001;otherDN=1002;recordDN=1001"
            }
            Target::Cms => "sip:recording@127.0.0.1:5060",
            Target::Siprec => "sip:srs@127.0.0.1:5060",
            Target::Tel => "tel:+15551234567",
        };
        let branch = if req.old_branch {
            format!("old{}", req.branch % 4)
        } else {
            format!("z9hG4bKfz{}", req.branch % 8)
        };
        let to_tag = match req.to_tag {
            ToTag::Learned => call.to_tag.as_ref().map(|t| format!(";tag={t}")),
            ToTag::None => None,
            ToTag::Bogus => Some(";tag=bogus".to_string()),
        }
        .unwrap_or_default();
        let transport = if req.tcp { "TCP" } else { "UDP" };
        let mut m = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:5070;branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:gms@127.0.0.1>;tag={}\r\nTo: <sip:record@127.0.0.1>{to_tag}\r\n\
             Call-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:gms@127.0.0.1:5070>\r\n",
            call.from_tag, call.call_id
        );
        if let Some((secs, uas)) = req.session_expires {
            let refresher = if uas { "uas" } else { "uac" };
            m.push_str(&format!(
                "Session-Expires: {secs};refresher={refresher}\r\n"
            ));
        }
        if let Some(secs) = req.min_se {
            m.push_str(&format!("Min-SE: {secs}\r\n"));
        }
        if req.supported_timer {
            m.push_str("Supported: timer\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n");
        }
        if let Some(r) = req.require {
            let tag = ["timer", "siprec", "100rel", "replaces"][usize::from(r % 4)];
            m.push_str(&format!("Require: {tag}\r\n"));
        }
        if let Some(h) = req.extra_header {
            // Header folding and injected lines are the parser target's job; keep framing.
            let h: String = h.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            m.push_str(&h);
            m.push_str("\r\n");
        }
        let (content_type, body) = match req.body {
            Body::None => (None, Vec::new()),
            Body::Sdp(spec) => (Some("application/sdp".to_string()), sdp(&spec).into_bytes()),
            Body::Siprec(spec) => {
                let boundary = "fuzz-boundary";
                let body = format!(
                    "--{boundary}\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--{boundary}\r\n\
                     Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{}\r\n--{boundary}--\r\n",
                    sdp(&spec),
                    METADATA
                );
                (
                    Some(format!("multipart/mixed;boundary={boundary}")),
                    body.into_bytes(),
                )
            }
            Body::Raw {
                content_type,
                bytes,
            } => {
                let ct = [
                    "application/sdp",
                    "multipart/mixed;boundary=x",
                    "application/rs-metadata+xml",
                    "text/plain",
                ][usize::from(content_type % 4)];
                (Some(ct.to_string()), bytes)
            }
        };
        if let Some(ct) = content_type {
            m.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        let len = req.content_length.map_or(body.len(), usize::from);
        m.push_str(&format!("Content-Length: {len}\r\n\r\n"));
        let mut bytes = m.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }
}

fn sdp(spec: &SdpSpec) -> String {
    let ip = if spec.ipv6 {
        "IN IP6 ::1"
    } else {
        "IN IP4 127.0.0.1"
    };
    let mut s = format!("v=0\r\no=fz 1000 {} {ip}\r\ns=-\r\n", spec.version % 4);
    if !spec.no_connection {
        s.push_str(&format!("c={ip}\r\n"));
    }
    s.push_str("t=0 0\r\n");
    for m in spec.media.iter().take(6) {
        let kind = ["audio", "video", "application", "audio"][usize::from(m.kind % 4)];
        let proto = if m.srtp { "RTP/SAVP" } else { "RTP/AVP" };
        let table = [
            ("0", "PCMU/8000"),
            ("8", "PCMA/8000"),
            ("9", "G722/8000"),
            ("101", "telephone-event/8000"),
            ("96", "AMR-WB/16000"),
        ];
        let chosen: Vec<_> = table
            .iter()
            .enumerate()
            .filter(|(i, _)| m.codecs & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        let fmts: Vec<&str> = chosen.iter().map(|c| c.0).collect();
        let fmts = if fmts.is_empty() {
            "0".to_string()
        } else {
            fmts.join(" ")
        };
        // Ports 0 and a few fixed values: declined lines and stable re-offers.
        let port = [0, 40000, 40002, m.port][usize::from(m.port % 4)];
        s.push_str(&format!("m={kind} {port} {proto} {fmts}\r\n"));
        for (pt, map) in &chosen {
            s.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        }
        let dir = ["sendonly", "sendrecv", "recvonly", "inactive"][usize::from(m.direction % 4)];
        s.push_str(&format!("a={dir}\r\n"));
        if let Some(p) = m.ptime {
            s.push_str(&format!("a=ptime:{p}\r\n"));
        }
        if m.rtcp_mux {
            s.push_str("a=rtcp-mux\r\n");
        }
        if let Some(l) = m.label {
            s.push_str(&format!("a=label:{}\r\n", l % 4));
        }
    }
    s
}

const METADATA: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">\r\n\
<datamode>complete</datamode>\r\n\
<session session_id=\"s1\"><sipSessionID>ab30317f</sipSessionID></session>\r\n\
<participant participant_id=\"p1\"><nameID aor=\"sip:alice@example.com\"><name>Alice</name></nameID></participant>\r\n\
<participant participant_id=\"p2\"><nameID aor=\"sip:bob@example.com\"/></participant>\r\n\
<stream stream_id=\"st1\" session_id=\"s1\"><label>1</label></stream>\r\n\
<stream stream_id=\"st2\" session_id=\"s1\"><label>2</label></stream>\r\n\
<participantstreamassoc participant_id=\"p1\"><send>st1</send><recv>st2</recv></participantstreamassoc>\r\n\
<participantstreamassoc participant_id=\"p2\"><send>st2</send><recv>st1</recv></participantstreamassoc>\r\n\
</recording>\r\n";
