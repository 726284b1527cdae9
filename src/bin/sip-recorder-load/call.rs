//! One recording call as a Genesys Media Server places it: INVITE (retransmitted over UDP,
//! RFC 3261 Timer A), ACK, media for the hold time with an optional pause and resume by
//! re-INVITE, BYE (retransmitted, Timer E). Requests from the recorder are answered: a BYE
//! ends the call, a re-INVITE or UPDATE gets the current offer.

use crate::cli::{Args, Transport};
use crate::rtp::{CallStreams, Pacer, StreamSpec};
use crate::sip::{Msg, answer_destinations};
use crate::tone::ToneFrames;
use crate::transport::{Incoming, SipTransport};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep_until};

/// RFC 3261 T2: the cap of non-INVITE retransmission intervals.
const T2: Duration = Duration::from_secs(4);

/// What every call shares.
pub struct Shared {
    pub args: Args,
    pub sip: Arc<SipTransport>,
    pub pacer: Pacer,
    /// Tone per stream index: 440 Hz for the first party, 880 Hz for the second.
    pub tones: Vec<Arc<ToneFrames>>,
    pub local_ip: IpAddr,
    pub run_id: String,
    pub active: AtomicUsize,
    pub peak: AtomicUsize,
}

#[derive(Debug, Clone)]
pub struct CallResult {
    pub record_id: String,
    /// `None` when the call went through INVITE, hold and BYE; else why not (a status
    /// code, `timeout`, `bye_timeout`, `remote_bye`, ...).
    pub failure: Option<String>,
    /// INVITE sent to 2xx received.
    pub setup: Option<Duration>,
    /// Packets sent per stream (empty when the call never got media).
    pub packets: Vec<u64>,
}

struct Dialog<'a> {
    shared: &'a Shared,
    rx: UnboundedReceiver<Incoming>,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    request_uri: String,
    to_uri: String,
    remote_target: String,
    cseq: u32,
    /// ACKs already sent, by CSeq, for retransmitted 2xx responses.
    acks: Vec<(u32, String)>,
    sdp_version: u64,
    direction: &'static str,
    ports: Vec<u16>,
}

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub async fn run_call(shared: Arc<Shared>, index: u64) -> CallResult {
    let args = &shared.args;
    let record_id = format!("{}-{index:06}", shared.run_id);
    let call_id = format!("{}@{}", token(), shared.local_ip);
    let target = args.target;
    let (task, ports) = shared.pacer.assign(index);
    let ports = ports[..usize::from(args.streams)].to_vec();
    let request_uri = format!(
        "sip:record={record_id}@{target};calluuid={};dn=7{index:06};otherDN=8{index:06};recordDN=7{index:06}",
        token()
    );
    let rx = shared.sip.register(&call_id);
    let mut d = Dialog {
        shared: &shared,
        rx,
        call_id: call_id.clone(),
        from_tag: token()[..12].to_string(),
        to_tag: None,
        to_uri: format!("sip:record={record_id}@{target}"),
        remote_target: request_uri.clone(),
        request_uri,
        cseq: 0,
        acks: Vec::new(),
        sdp_version: 1,
        direction: "sendonly",
        ports,
    };
    let mut result = CallResult {
        record_id,
        failure: None,
        setup: None,
        packets: Vec::new(),
    };
    let mut streams = None;
    result.failure = d.run(task, &mut result, &mut streams).await.err();
    if let Some(s) = streams {
        result.packets = shared.pacer.remove(s).await;
    }
    shared.sip.unregister(&call_id);
    result
}

impl Dialog<'_> {
    async fn run(
        &mut self,
        task: usize,
        result: &mut CallResult,
        streams: &mut Option<CallStreams>,
    ) -> Result<(), String> {
        let shared = self.shared;
        let args = &shared.args;
        let started = Instant::now();
        let ok = self.invite().await?;
        result.setup = Some(started.elapsed());
        let dests = answer_destinations(&ok.body);
        let dests: Vec<SocketAddr> = dests
            .iter()
            .take(self.ports.len())
            .flatten()
            .copied()
            .collect();
        if dests.len() < self.ports.len() {
            self.bye().await?;
            return Err("answer_without_media".into());
        }
        let specs = dests
            .into_iter()
            .enumerate()
            .map(|(i, dest)| StreamSpec {
                dest,
                payload_type: args.codec.payload_type(),
                ssrc: rand::random(),
                socket: i,
                tone: shared.tones[i % shared.tones.len()].clone(),
            })
            .collect();
        *streams = Some(shared.pacer.add(task, specs));
        let active = shared.active.fetch_add(1, Ordering::Relaxed) + 1;
        shared.peak.fetch_max(active, Ordering::Relaxed);
        let held = self.hold(streams).await;
        // Media stops before the BYE, as with a real SRC, so every packet counted as sent
        // has left before the recorder finalizes.
        if let Some(s) = streams.take() {
            result.packets = shared.pacer.remove(s).await;
        }
        let ended = match held {
            Ok(()) => self.bye().await,
            Err(e) => Err(e),
        };
        shared.active.fetch_sub(1, Ordering::Relaxed);
        ended
    }

    /// The hold time, with the optional pause and resume.
    async fn hold(&mut self, streams: &Option<CallStreams>) -> Result<(), String> {
        let args = &self.shared.args;
        let start = Instant::now();
        if let (Some(at), Some(len), Some(s)) = (args.pause_at, args.pause_for, streams) {
            self.idle_until(start + Duration::from_secs_f64(at)).await?;
            // Media stops first, as a pausing SRC's does.
            self.shared.pacer.pause(s).await;
            self.reinvite("inactive").await?;
            self.idle_until(start + Duration::from_secs_f64(at + len))
                .await?;
            self.reinvite("sendonly").await?;
            self.shared.pacer.resume(s);
        }
        self.idle_until(start + Duration::from_secs_f64(args.hold))
            .await
    }

    fn t1(&self) -> Duration {
        Duration::from_millis(self.shared.args.t1_ms.max(1))
    }

    fn offer(&self) -> String {
        let ip = self.shared.local_ip;
        let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
        let codec = self.shared.args.codec;
        let pt = codec.payload_type();
        let mut sdp = format!(
            "v=0\r\no=gvp 1 {} IN {family} {ip}\r\ns=recording\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
            self.sdp_version
        );
        for port in &self.ports {
            sdp.push_str(&format!(
                "m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {}\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={}\r\n",
                codec.rtpmap(),
                self.direction
            ));
        }
        sdp
    }

    fn contact(&self) -> String {
        let tp = match self.shared.sip.kind {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        format!("<sip:gvp@{}{tp}>", self.shared.sip.local)
    }

    fn request(&self, method: &str, uri: &str, branch: &str, cseq: u32, body: &str) -> String {
        let sip = &self.shared.sip;
        let to = match &self.to_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.to_uri),
            None => format!("<{}>", self.to_uri),
        };
        let mut m = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:gvp@{}>;tag={}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            sip.kind.via_name(),
            sip.local,
            self.shared.local_ip,
            self.from_tag,
            self.call_id,
        );
        if method == "INVITE" {
            m.push_str(&format!("Contact: {}\r\n", self.contact()));
        }
        m.push_str("User-Agent: sip-recorder-load\r\n");
        if !body.is_empty() {
            m.push_str("Content-Type: application/sdp\r\n");
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        m
    }

    fn branch() -> String {
        format!("z9hG4bK{}", token())
    }

    /// Initial INVITE; returns the 2xx (already ACKed).
    async fn invite(&mut self) -> Result<Msg, String> {
        self.cseq += 1;
        let branch = Self::branch();
        let uri = self.request_uri.clone();
        let req = self.request("INVITE", &uri, &branch, self.cseq, &self.offer());
        let resp = self.transact(&req, "INVITE").await?;
        self.finish_invite(&resp, &uri, &branch).await?;
        if let Some(tag) = resp.to_tag() {
            self.to_tag = Some(tag.to_string());
        }
        if let Some(c) = resp.contact_uri() {
            self.remote_target = c.to_string();
        }
        Ok(resp)
    }

    /// ACKs a final response to an INVITE; a non-2xx becomes the call's failure.
    async fn finish_invite(&mut self, resp: &Msg, uri: &str, branch: &str) -> Result<(), String> {
        let code = resp.status().unwrap_or(0);
        let cseq = resp.cseq().map(|(n, _)| n).unwrap_or(self.cseq);
        if (200..300).contains(&code) {
            // 2xx ACK: its own transaction, to the remote target, dialog To tag.
            if self.to_tag.is_none() {
                self.to_tag = resp.to_tag().map(str::to_string);
            }
            let target = resp
                .contact_uri()
                .unwrap_or(&self.remote_target)
                .to_string();
            let ack = self.request("ACK", &target, &Self::branch(), cseq, "");
            self.shared.sip.send(&ack).await;
            self.acks.push((cseq, ack));
            return Ok(());
        }
        // Non-2xx ACK: same branch and Request-URI, the response's To (RFC 3261 §17.1.1.3).
        let saved = self.to_tag.clone();
        if self.to_tag.is_none() {
            self.to_tag = resp.to_tag().map(str::to_string);
        }
        let ack = self.request("ACK", uri, branch, cseq, "");
        self.to_tag = saved;
        self.shared.sip.send(&ack).await;
        Err(code.to_string())
    }

    /// re-INVITE changing every stream's direction; 491 is retried (RFC 3261 §14.1).
    async fn reinvite(&mut self, direction: &'static str) -> Result<(), String> {
        self.direction = direction;
        self.sdp_version += 1;
        for _ in 0..5 {
            self.cseq += 1;
            let branch = Self::branch();
            let uri = self.remote_target.clone();
            let req = self.request("INVITE", &uri, &branch, self.cseq, &self.offer());
            let resp = self.transact(&req, "INVITE").await?;
            match self.finish_invite(&resp, &uri, &branch).await {
                Ok(()) => return Ok(()),
                Err(code) if code == "491" => {
                    let wait = Duration::from_millis(rand::random_range(100..=2000));
                    self.idle_until(Instant::now() + wait).await?;
                }
                Err(code) => return Err(format!("reinvite_{code}")),
            }
        }
        Err("reinvite_491".into())
    }

    async fn bye(&mut self) -> Result<(), String> {
        self.cseq += 1;
        let target = self.remote_target.clone();
        let req = self.request("BYE", &target, &Self::branch(), self.cseq, "");
        match self.transact(&req, "BYE").await {
            Ok(r) if r.status().is_some_and(|c| (200..300).contains(&c)) => Ok(()),
            Ok(r) => Err(format!("bye_{}", r.status().unwrap_or(0))),
            Err(e) if e == "timeout" => Err("bye_timeout".into()),
            Err(e) => Err(e),
        }
    }

    /// Sends `req` and waits for its final response, retransmitting over UDP (Timer A/E)
    /// until 64*T1 (Timer B/F).
    async fn transact(&mut self, req: &str, method: &str) -> Result<Msg, String> {
        let sip = self.shared.sip.clone();
        let cseq = self.cseq;
        let t1 = self.t1();
        let deadline = Instant::now() + t1 * 64;
        let mut interval = t1;
        let mut resend_at = Some(Instant::now() + interval);
        sip.send(req).await;
        loop {
            let wake = resend_at.map_or(deadline, |r| r.min(deadline));
            let incoming = tokio::select! {
                m = self.rx.recv() => m,
                () = sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        return Err("timeout".into());
                    }
                    if sip.kind == Transport::Udp {
                        sip.send(req).await;
                    }
                    interval = if method == "INVITE" { interval * 2 } else { (interval * 2).min(T2) };
                    resend_at = Some(Instant::now() + interval);
                    continue;
                }
            };
            let Some(Incoming { msg, from }) = incoming else {
                return Err("transport".into());
            };
            if msg.method().is_some() {
                self.answer(&msg, from).await?;
                continue;
            }
            let Some(code) = msg.status() else { continue };
            match msg.cseq() {
                Some((n, m)) if n == cseq && m == method => {
                    if code >= 200 {
                        return Ok(msg);
                    }
                    // A provisional response ends INVITE retransmission (Proceeding).
                    if method == "INVITE" {
                        resend_at = None;
                    }
                }
                Some((n, "INVITE")) if (200..300).contains(&code) => self.reack(n).await,
                _ => {}
            }
        }
    }

    /// A retransmitted 2xx means our ACK was lost: send it again.
    async fn reack(&self, cseq: u32) {
        if let Some((_, ack)) = self.acks.iter().find(|(n, _)| *n == cseq) {
            self.shared.sip.send(ack).await;
        }
    }

    /// Waits until `deadline`, answering whatever the recorder sends meanwhile.
    async fn idle_until(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            let incoming = tokio::select! {
                m = self.rx.recv() => m,
                () = sleep_until(deadline) => return Ok(()),
            };
            let Some(Incoming { msg, from }) = incoming else {
                return Err("transport".into());
            };
            if msg.method().is_some() {
                self.answer(&msg, from).await?;
            } else if let (Some(code), Some((n, "INVITE"))) = (msg.status(), msg.cseq())
                && (200..300).contains(&code)
            {
                self.reack(n).await;
            }
        }
    }

    /// Answers a request from the recorder; a BYE ends the call (`remote_bye`).
    async fn answer(&mut self, req: &Msg, from: SocketAddr) -> Result<(), String> {
        let sip = self.shared.sip.clone();
        match req.method() {
            Some("ACK") => Ok(()),
            Some("BYE") => {
                sip.send_to(&req.response(200, "OK", None), from).await;
                Err("remote_bye".into())
            }
            Some("INVITE") | Some("UPDATE") => {
                // Session refresh or offerless re-INVITE: our current offer answers it.
                let base = req.response(200, "OK", None);
                let head = base.trim_end_matches("Content-Length: 0\r\n\r\n");
                let body = self.offer();
                let resp = format!(
                    "{head}Contact: {}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    self.contact(),
                    body.len()
                );
                sip.send_to(&resp, from).await;
                Ok(())
            }
            _ => {
                sip.send_to(&req.response(200, "OK", None), from).await;
                Ok(())
            }
        }
    }
}
