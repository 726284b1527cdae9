//! Offer parsing and answering: the per-INVITE SDP cost.

use criterion::{Criterion, criterion_group, criterion_main};
use sip_recorder::sdp::{AnswerConfig, PortPool, answer_offer, parse_offer, release_ports};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const CMS_OFFER: &str = "v=0\r\no=- 4232 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n\
    b=AS:2000\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
    a=fmtp:101 0-15\r\na=sendrecv\r\nm=video 50002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n\
    a=fmtp:97 profile-level-id=42e016\r\na=sendrecv\r\nm=application 5070 UDP/BFCP *\r\n\
    a=floorctrl:c-s\r\n";

fn bench(c: &mut Criterion) {
    let cfg = AnswerConfig {
        media_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        accept_video: false,
        srtp: Default::default(),
    };
    let mut pool = PortPool::new(20000, 39999);
    c.bench_function("parse_offer cms", |b| {
        b.iter(|| parse_offer(black_box(CMS_OFFER.as_bytes())))
    });
    // The offer is a fixed, valid SDP: parsing it cannot fail.
    let offer = parse_offer(CMS_OFFER.as_bytes()).expect("valid offer");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    c.bench_function("answer_offer cms", |b| {
        b.iter(|| {
            // A 10k-port pool never runs dry here: every port is released at once.
            let s =
                answer_offer(black_box(&offer), &cfg, &mut pool, 1, &mut rng).expect("ports free");
            release_ports(&s, &mut pool);
            s.answer_sdp.len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
