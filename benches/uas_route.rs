//! Parse + route through the sans-IO UAS: an initial INVITE up to its 200 OK, and a
//! pause re-INVITE on an established dialog.

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sip_recorder::sdp::{AnswerConfig, PortPool};
use sip_recorder::sip::Flow;
use sip_recorder::sip::Transport;
use sip_recorder::sip::message::Limits;
use sip_recorder::sip::source_policy::SourcePolicyConfig;
use sip_recorder::sip::uas::{Output, RecordingEvent, Uas, UasConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn config() -> UasConfig {
    UasConfig {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        limits: Limits::default(),
        min_se: 90,
        max_sessions: 1_000_000,
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
            media_ip: "127.0.0.1".parse().unwrap(),
            accept_video: false,
            srtp: Default::default(),
        },
    }
}

fn flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:5070".parse().unwrap(),
        listener: 0,
        connection: None,
    }
}

fn sdp(version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=GMS 1000 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n\
         m=audio 30002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n"
    )
}

fn request(method: &str, n: u64, to_tag: Option<&str>, cseq: u32, body: &str) -> Bytes {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    Bytes::from(format!(
        "{method} sip:record=REC{n}@127.0.0.1:5060;calluuid=00F1{n};dn=1001;otherDN=1002;recordDN=1001 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{method}{n}x{cseq};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:gms@127.0.0.1:5070>;tag=gms{n}\r\nTo: <sip:record@127.0.0.1:5060>{to_tag}\r\n\
         Call-ID: {n}-bench@127.0.0.1\r\nCSeq: {cseq} {method}\r\nContact: <sip:gms@127.0.0.1:5070>\r\n\
         Supported: timer\r\nSession-Expires: 1800\r\nUser-Agent: GVP\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn drain(uas: &mut Uas) -> (Option<String>, Option<String>) {
    let (mut id, mut tag) = (None, None);
    while let Some(out) = uas.poll_output() {
        match out {
            Output::Recording(RecordingEvent::Prepare { recording_id, .. }) => {
                id = Some(recording_id)
            }
            Output::Transmit { data, .. } => {
                let text = String::from_utf8_lossy(&data);
                if let Some(pos) = text
                    .find(";tag=")
                    .filter(|_| text.starts_with("SIP/2.0 200"))
                {
                    // The To tag is the second `;tag=` (From's comes first).
                    let rest = &text[pos + 5..];
                    if let Some(p2) = rest.find(";tag=") {
                        tag = Some(
                            rest[p2 + 5..]
                                .split(['\r', ';', '>'])
                                .next()
                                .unwrap_or("")
                                .to_string(),
                        );
                    }
                }
                black_box(data);
            }
            Output::Transaction(t) => {
                black_box(t);
            }
            Output::Recording(e) => {
                black_box(e);
            }
        }
    }
    (id, tag)
}

fn bench(c: &mut Criterion) {
    let initial_sdp = sdp(1, "sendonly");
    // Parse + route of an initial INVITE: 100 Trying out, recording prepared. The 200,
    // the BYE and the cleanup that keep state from piling up are outside the timing.
    c.bench_function("uas_route_initial_invite", |b| {
        let mut uas = Uas::new(config(), PortPool::new(10000, 65000), [1; 32]);
        let mut n = 0u64;
        let now = Instant::now();
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let msg = request("INVITE", n, None, 1, &initial_sdp);
                let t = Instant::now();
                uas.handle_input(now, msg, flow());
                let (id, _) = drain(&mut uas);
                timed += t.elapsed();
                let id = id.expect("prepare event");
                uas.recording_prepared(now, &id, Ok(()));
                drain(&mut uas);
                uas.stop_recording(now, &id, sip_recorder::recording::EndReason::Shutdown);
                drain(&mut uas);
            }
            timed
        });
    });

    // A pause or resume re-INVITE on an established dialog (offer → answer → 200), then
    // its ACK: two messages per iteration.
    c.bench_function("uas_route_reinvite_and_ack", |b| {
        let mut uas = Uas::new(config(), PortPool::new(10000, 65000), [1; 32]);
        let now = Instant::now();
        uas.handle_input(now, request("INVITE", 1, None, 1, &initial_sdp), flow());
        let (id, _) = drain(&mut uas);
        uas.recording_prepared(now, &id.expect("prepare"), Ok(()));
        let (_, tag) = drain(&mut uas);
        let tag = tag.expect("to tag in 200");
        uas.handle_input(now, request("ACK", 1, Some(&tag), 1, ""), flow());
        drain(&mut uas);
        let mut cseq = 1u32;
        b.iter(|| {
            cseq += 1;
            let direction = if cseq % 2 == 0 {
                "inactive"
            } else {
                "sendonly"
            };
            uas.handle_input(
                now,
                request("INVITE", 1, Some(&tag), cseq, &sdp(cseq, direction)),
                flow(),
            );
            drain(&mut uas);
            uas.handle_input(now, request("ACK", 1, Some(&tag), cseq, ""), flow());
            drain(&mut uas);
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
