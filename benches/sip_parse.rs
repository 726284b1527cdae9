//! Parsing cost of the messages a recorder sees most: a Genesys recording INVITE with a
//! two-stream SDP offer, the re-INVITE that pauses it, and the same INVITE framed from a
//! TCP stream.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_recorder::sip::framing::{Frame, StreamFramer};
use sip_recorder::sip::message::{Limits, RequestUri, SipMessage, parse_message};
use sip_recorder::sip::uri::genesys_target;
use std::hint::black_box;

const SDP: &str = "v=0\r\n\
o=GVP 1711111111 1711111112 IN IP4 10.10.20.31\r\n\
s=GVP recording\r\n\
c=IN IP4 10.10.20.31\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=label:1\r\n\
a=sendonly\r\n\
a=ptime:20\r\n\
m=audio 40002 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=label:2\r\n\
a=sendonly\r\n\
a=ptime:20\r\n";

fn invite(cseq: u32, to_tag: &str, sdp: &str) -> Vec<u8> {
    format!(
        "INVITE sip:record=00F0020A6B2C1B38@10.10.20.50:5060;calluuid=01NQ1V0LQOA3B2QK2C0001;dn=7001;otherDN=%2B15551234567;recordDN=7001 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.10.20.31:5070;branch=z9hG4bK-524287-1---6fd3a1c9e0b7{cseq};rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:GVP@10.10.20.31:5070>\r\n\
To: <sip:record=00F0020A6B2C1B38@10.10.20.50:5060>{to_tag}\r\n\
From: \"GVP\" <sip:GVP@10.10.20.31:5070>;tag=2f6b8c1a\r\n\
Call-ID: 8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d@10.10.20.31\r\n\
CSeq: {cseq} INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
Supported: timer, replaces\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Min-SE: 90\r\n\
User-Agent: GVP 8.1.7\r\n\
X-Genesys-CallUUID: 01NQ1V0LQOA3B2QK2C0001\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n\
{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let initial = Bytes::from(invite(1, "", SDP));
    let reinvite = Bytes::from(invite(
        2,
        ";tag=srs-1",
        &SDP.replace("sendonly", "inactive"),
    ));

    // Measuring the error path by accident would be meaningless.
    for msg in [&initial, &reinvite] {
        let parsed = parse_message(msg.clone(), &limits);
        assert!(matches!(parsed, Ok(SipMessage::Request(_))), "{parsed:?}");
    }
    assert!(
        (1100..1400).contains(&initial.len()),
        "{} octets",
        initial.len()
    );

    let mut group = c.benchmark_group("sip_parse");
    group.throughput(Throughput::Bytes(initial.len() as u64));
    group.bench_function("genesys_invite", |b| {
        b.iter(|| {
            let msg = parse_message(black_box(initial.clone()), &limits);
            // Include the Request-URI interpretation the UAS does on every INVITE.
            if let Ok(SipMessage::Request(req)) = &msg {
                if let RequestUri::Sip(uri) = &req.uri {
                    black_box(genesys_target(uri));
                }
            }
            msg.is_ok()
        })
    });
    group.throughput(Throughput::Bytes(reinvite.len() as u64));
    group.bench_function("genesys_reinvite", |b| {
        b.iter(|| parse_message(black_box(reinvite.clone()), &limits).is_ok())
    });
    group.throughput(Throughput::Bytes(initial.len() as u64));
    group.bench_function("frame_genesys_invite_tcp", |b| {
        // Segments of 536 octets: a default TCP MSS without options.
        b.iter(|| {
            let mut framer = StreamFramer::new(limits.max_message_size);
            let mut frames = 0;
            for segment in initial.chunks(536) {
                framer.push(black_box(segment));
                while let Ok(Some(Frame::Message(msg))) = framer.next_frame() {
                    frames += black_box(msg).len();
                }
            }
            frames
        })
    });
    group.finish();
}

criterion_group!(sip_parse, benches);
criterion_main!(sip_parse);
