//! Offer/answer tests with offers shaped like those of the platforms that dial the recorder.

use super::*;
use rand::SeedableRng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The seeded generator the UAS would pass: answers are reproducible.
fn key_rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(1)
}

fn cfg() -> AnswerConfig {
    AnswerConfig {
        media_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        accept_video: false,
        srtp: Default::default(),
    }
}

fn sdp(lines: &[&str]) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

fn offer(lines: &[&str]) -> Offer {
    parse_offer(sdp(lines).as_bytes()).expect("test offer parses")
}

fn m_lines(answer: &str) -> Vec<&str> {
    answer.lines().filter(|l| l.starts_with("m=")).collect()
}

/// Checks the answer re-parses as SDP and returns it as an offer-shaped view.
fn reparse(answer: &str) -> Offer {
    assert!(answer.ends_with("\r\n"));
    assert!(
        !answer.replace("\r\n", "").contains('\n'),
        "bare LF in answer"
    );
    parse_offer(answer.as_bytes()).expect("answer is valid SDP")
}

const GENESYS: &[&str] = &[
    "v=0",
    "o=GMS 1706543210 1 IN IP4 10.1.1.5",
    "s=GMS recording",
    "c=IN IP4 10.1.1.5",
    "t=0 0",
    "m=audio 31000 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendonly",
    "m=audio 31002 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendonly",
];

fn genesys_with(version: &str, edit: impl Fn(&str) -> String) -> Offer {
    let lines: Vec<String> = GENESYS
        .iter()
        .map(|l| {
            if l.starts_with("o=") {
                format!("o=GMS 1706543210 {version} IN IP4 10.1.1.5")
            } else {
                edit(l)
            }
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    offer(&refs)
}

const CMS: &[&str] = &[
    "v=0",
    "o=- 4232 1 IN IP4 198.51.100.7",
    "s=-",
    "c=IN IP4 198.51.100.7",
    "b=AS:2000",
    "t=0 0",
    "m=audio 50000 RTP/AVP 0 8 9 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=sendrecv",
    "m=video 50002 RTP/AVP 97",
    "b=TIAS:1920000",
    "a=rtpmap:97 H264/90000",
    "a=fmtp:97 profile-level-id=42e016;max-mbps=108000;max-fs=3600",
    "a=rtcp-fb:* nack pli",
    "a=content:main",
    "a=label:11",
    "a=sendrecv",
    "m=application 5070 UDP/BFCP *",
    "a=floorctrl:c-s",
    "a=confid:1",
    "a=userid:2",
    "a=floorid:2 mstrm:12",
];

#[test]
fn genesys_two_parties_sendonly() {
    let o = offer(GENESYS);
    assert_eq!(o.origin_username, "GMS");
    assert_eq!(o.origin_version, "1");
    assert_eq!(o.media.len(), 2);
    let m = &o.media[0];
    assert_eq!(m.kind, MediaKind::Audio);
    assert_eq!(m.direction, Direction::SendOnly);
    assert_eq!(m.connection, Some(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 5))));
    assert_eq!(m.ptime, Some(20));
    assert_eq!(m.telephone_event, Some((101, 8000)));
    assert_eq!(m.codec.as_ref().map(|c| c.name.as_str()), Some("PCMU"));

    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 77, &mut key_rng()).unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(s.streams.len(), 2);
    let (a, b) = (&s.streams[0], &s.streams[1]);
    assert!(a.accepted && b.accepted);
    assert_ne!(a.local_port, b.local_port);
    assert_eq!(a.local_port % 2, 0);
    assert_eq!(b.local_port % 2, 0);
    assert_eq!(a.answered_direction, Direction::RecvOnly);
    assert_eq!((a.remote_port, b.remote_port), (31000, 31002));
    assert_eq!(pool.available(), pool.capacity() - 2);

    let text = &s.answer_sdp;
    assert!(text.starts_with(
        "v=0\r\no=sip-recorder 77 1 IN IP4 192.0.2.10\r\ns=sip-recorder\r\n\
         c=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    ));
    assert_eq!(
        m_lines(text),
        vec![
            format!("m=audio {} RTP/AVP 0 101", a.local_port),
            format!("m=audio {} RTP/AVP 0 101", b.local_port),
        ]
    );
    assert!(text.contains(
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=ptime:20\r\na=recvonly\r\n"
    ));
    let back = reparse(text);
    assert_eq!(back.media.len(), 2);
    assert!(
        back.media
            .iter()
            .all(|m| m.direction == Direction::RecvOnly)
    );
    assert_eq!(back.media[0].port, a.local_port);
}

#[test]
fn cms_audio_video_bfcp() {
    let o = offer(CMS);
    assert_eq!(o.media[2].kind, MediaKind::Application);
    assert_eq!(o.media[2].formats, vec!["*"]);
    assert_eq!(o.media[2].protocol, "UDP/BFCP");
    assert_eq!(o.media[1].label.as_deref(), Some("11"));

    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap();
    let lines = m_lines(&s.answer_sdp);
    let audio_port = s.streams[0].local_port;
    assert_eq!(
        lines,
        vec![
            format!("m=audio {audio_port} RTP/AVP 0 8 9 101").as_str(),
            "m=video 0 RTP/AVP 97",
            "m=application 0 UDP/BFCP *",
        ]
    );
    assert_eq!(s.streams[0].answered_direction, Direction::RecvOnly);
    assert!(!s.streams[1].accepted && !s.streams[2].accepted);
    assert_eq!(s.streams[1].local_port, 0);
    assert_eq!(pool.available(), pool.capacity() - 1);
    reparse(&s.answer_sdp);
}

#[test]
fn codec_is_first_storable_in_offer_order() {
    let base = |m: &str, maps: &[&str]| {
        let mut l = vec![
            "v=0",
            "o=- 1 1 IN IP4 10.0.0.1",
            "s=-",
            "c=IN IP4 10.0.0.1",
            "t=0 0",
        ];
        l.push(m);
        l.extend_from_slice(maps);
        offer(&l).media[0].codec.clone()
    };
    let c = base("m=audio 4000 RTP/AVP 96 0", &["a=rtpmap:96 H264-ish/90000"]).unwrap();
    assert_eq!((c.name.as_str(), c.payload_type), ("PCMU", 0));
    let c = base("m=audio 4000 RTP/AVP 9 0", &[]).unwrap();
    assert_eq!((c.name.as_str(), c.clock_rate), ("G722", 8000));
    let c = base("m=audio 4000 RTP/AVP 18 8", &["a=fmtp:18 annexb=no"]).unwrap();
    assert_eq!(c.name, "G729");
    let c = base("m=audio 4000 RTP/AVP 111 0", &["a=rtpmap:111 opus/48000/2"]).unwrap();
    assert_eq!(c.name.as_str(), "opus");
    let c = base("m=audio 4000 RTP/AVP 3 4 2 0", &[]).unwrap();
    assert_eq!(c.name.as_str(), "G721");
}

#[test]
fn answer_lists_every_storable_codec_in_offer_order() {
    // The field case: the SRC offers 0 8, the recorder once answered PCMU only and the
    // SRC's PCMA was recorded as silence.
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 18 0 8 3 111 101",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=sendonly",
    ]);
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap();
    let port = s.streams[0].local_port;
    assert_eq!(
        m_lines(&s.answer_sdp),
        vec![format!("m=audio {port} RTP/AVP 18 0 8 111 101").as_str()]
    );
    for line in [
        "a=rtpmap:18 G729/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 useinbandfec=1",
        "a=rtpmap:101 telephone-event/8000",
    ] {
        assert!(s.answer_sdp.contains(line), "{line} in {}", s.answer_sdp);
    }
    let names: Vec<_> = s.streams[0]
        .codecs
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["G729", "PCMU", "PCMA", "opus"]);
    assert_eq!(s.streams[0].codec.as_ref().unwrap().name, "G729");
    reparse(&s.answer_sdp);
}

#[test]
fn offer_without_storable_codec_is_305() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 3 111 101",
        "a=rtpmap:111 speex/16000",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let mut pool = PortPool::new(20000, 20099);
    let err = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap_err();
    assert!(matches!(
        err,
        AnswerError::NotAcceptable {
            warning_code: 305,
            ..
        }
    ));
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn inactive_and_recvonly_offers_answer_inactive() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "a=inactive",
        "m=audio 4000 RTP/AVP 0",
        "m=audio 4002 RTP/AVP 8",
        "a=recvonly",
    ]);
    // Session-level direction applies where the m= line has none.
    assert_eq!(o.media[0].direction, Direction::Inactive);
    assert_eq!(o.media[1].direction, Direction::RecvOnly);
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap();
    assert!(s.streams.iter().all(|s| s.accepted));
    assert!(
        s.streams
            .iter()
            .all(|s| s.answered_direction == Direction::Inactive)
    );
    assert_eq!(s.answer_sdp.matches("a=inactive\r\n").count(), 2);
}

#[test]
fn default_direction_is_sendrecv() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
    ]);
    assert_eq!(o.media[0].direction, Direction::SendRecv);
    assert_eq!(o.media[0].connection, None);
}

#[test]
fn rtcp_mux_label_and_rtcp_port() {
    let o = offer(&[
        "v=0",
        "o=SRC 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 8",
        "c=IN IP4 10.0.0.2",
        "a=rtcp:4001",
        "a=rtcp-mux",
        "a=label:1",
        "a=sendonly",
    ]);
    let m = &o.media[0];
    assert!(m.rtcp_mux);
    assert_eq!(m.rtcp_port, Some(4001));
    assert_eq!(m.label.as_deref(), Some("1"));
    assert_eq!(m.connection, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap();
    assert!(s.streams[0].rtcp_mux);
    assert_eq!(s.streams[0].label.as_deref(), Some("1"));
    assert!(
        s.answer_sdp
            .contains("a=rtcp-mux\r\na=label:1\r\na=recvonly\r\n")
    );
}

#[test]
fn no_acceptable_codec_is_305() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 3 96",
        "a=rtpmap:96 AMR/8000",
    ]);
    let mut pool = PortPool::new(20000, 20099);
    match answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()) {
        Err(AnswerError::NotAcceptable {
            warning_code,
            warning,
        }) => {
            assert_eq!(warning_code, 305);
            assert!(warning.contains("codec"), "{warning}");
        }
        other => panic!("expected 488, got {other:?}"),
    }
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn no_audio_is_304() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=video 4000 RTP/AVP 97",
        "a=rtpmap:97 H264/90000",
        "m=audio 0 RTP/AVP 0",
    ]);
    let mut pool = PortPool::new(20000, 20099);
    let err = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap_err();
    assert!(
        matches!(
            err,
            AnswerError::NotAcceptable {
                warning_code: 304,
                ..
            }
        ),
        "{err:?}"
    );
    // No m= lines at all parses, and is then not acceptable.
    let empty = offer(&["v=0", "o=- 1 1 IN IP4 10.0.0.1", "s=-", "t=0 0"]);
    assert!(empty.media.is_empty());
    let err = answer_offer(&empty, &cfg(), &mut pool, 1, &mut key_rng()).unwrap_err();
    assert!(matches!(
        err,
        AnswerError::NotAcceptable {
            warning_code: 304,
            ..
        }
    ));
}

#[test]
fn srtp_line_with_mki_is_declined() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "m=audio 4002 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
    ]);
    assert_eq!(o.media[1].crypto.len(), 1);
    assert!(o.media[1].crypto[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap();
    assert!(s.streams[0].accepted);
    assert!(!s.streams[1].accepted);
    assert_eq!(m_lines(&s.answer_sdp)[1], "m=audio 0 RTP/SAVP 0");

    // The MKI line cannot be used (RFC 4568 MKI is unsupported): declined like any
    // undecryptable line, and the plain RTP line is still taken.
}

/// An offer with only an SRTP line, two crypto lines (the first supported one is taken).
fn savp_only_offer() -> Offer {
    offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4002 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    ])
}

#[test]
fn srtp_is_answered_with_the_recorders_own_key_and_a_same_key_reoffer_keeps_it() {
    let only = savp_only_offer();
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&only, &cfg(), &mut pool, 2, &mut key_rng()).unwrap();
    let keys = s.streams[0].srtp.as_ref().expect("SRTP negotiated");
    assert_eq!(
        keys.remote.suite.sdp_name(),
        "AES_CM_128_HMAC_SHA1_32",
        "first supported line"
    );
    assert_ne!(
        keys.local.key_salt(),
        keys.remote.key_salt(),
        "the recorder's own key"
    );
    assert!(
        s.answer_sdp.contains("m=audio 20000 RTP/SAVP 0\r\n"),
        "{}",
        s.answer_sdp
    );
    assert!(
        s.answer_sdp
            .contains("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"),
        "{}",
        s.answer_sdp
    );
    // A re-offer with a new o= version and the same key keeps our key: same answer body.
    let again = offer(&[
        "v=0",
        "o=- 1 2 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4002 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    ]);
    let Update::Changed(next) =
        answer_reoffer(&s, &again, &cfg(), &mut pool, &mut key_rng()).unwrap()
    else {
        panic!("new o= version")
    };
    assert_eq!(next.answer_sdp, s.answer_sdp);
    release_ports(&next, &mut pool);
}

#[test]
fn srtp_policy_off_refuses_an_encrypted_only_offer_and_required_a_plain_one() {
    let only = savp_only_offer();
    let mut pool = PortPool::new(20000, 20099);
    // Policy off: an encrypted-only offer gets 488, nothing left allocated.
    let off = AnswerConfig {
        srtp: SrtpPolicy::Off,
        ..cfg()
    };
    let before = pool.available();
    assert!(matches!(
        answer_offer(&only, &off, &mut pool, 3, &mut key_rng()),
        Err(AnswerError::NotAcceptable {
            warning_code: 305,
            ..
        })
    ));
    assert_eq!(pool.available(), before);
    // Policy required: a plain RTP offer gets 488.
    let required = AnswerConfig {
        srtp: SrtpPolicy::Required,
        ..cfg()
    };
    let plain = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
    ]);
    assert!(matches!(
        answer_offer(&plain, &required, &mut pool, 4, &mut key_rng()),
        Err(AnswerError::NotAcceptable {
            warning_code: 305,
            ..
        })
    ));
}

#[test]
fn an_encrypted_offer_whose_suites_are_all_unknown_is_refused() {
    let mut pool = PortPool::new(20000, 20099);
    // An encrypted offer whose suites are all unknown cannot be recorded: 488.
    let unknown = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4002 RTP/SAVP 0",
        "a=crypto:1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    ]);
    assert!(answer_offer(&unknown, &cfg(), &mut pool, 5, &mut key_rng()).is_err());
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn pool_exhaustion_is_no_ports_and_pool_unchanged() {
    let o = offer(GENESYS);
    let mut pool = PortPool::new(20000, 20001); // room for one stream only
    assert_eq!(pool.capacity(), 1);
    assert_eq!(
        answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()),
        Err(AnswerError::NoPorts)
    );
    assert_eq!(pool.available(), 1);
}

#[test]
fn ipv6_media_ip_and_offer() {
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP6 2001:db8::1",
        "s=-",
        "c=IN IP6 2001:db8::1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
    ]);
    let ip6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(o.media[0].connection, Some(ip6));
    let cfg6 = AnswerConfig {
        media_ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        accept_video: false,
        srtp: Default::default(),
    };
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg6, &mut pool, 9, &mut key_rng()).unwrap();
    assert!(s.answer_sdp.contains("o=sip-recorder 9 1 IN IP6 ::1\r\n"));
    assert!(s.answer_sdp.contains("c=IN IP6 ::1\r\n"));
    reparse(&s.answer_sdp);
}

#[test]
fn lf_line_ends_parse() {
    let text = sdp(GENESYS).replace("\r\n", "\n");
    let o = parse_offer(text.as_bytes()).unwrap();
    assert_eq!(o, offer(GENESYS));
}

#[test]
fn field_sdp_ezk_rejects_still_parses() {
    // T.38 image line, a bare a=ssrc and an rtpmap without clock rate: the fallback path.
    let o = offer(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=ssrc:4294967295",
        "a=rtcp:4001 IN IP4 10.0.0.9",
        "a=sendonly",
        "m=image 0 udptl t38",
        "a=T38FaxVersion:0",
        "m=audio 4002 RTP/AVP 8",
        "c=IN IP4 10.0.0.3",
        "a=rtpmap:8 PCMA",
    ]);
    assert_eq!(o.media.len(), 3);
    assert_eq!(o.media[0].direction, Direction::SendOnly);
    assert_eq!(o.media[0].telephone_event, Some((101, 8000)));
    assert_eq!(o.media[0].rtcp_port, Some(4001));
    assert_eq!(o.media[1].kind, MediaKind::Other);
    assert_eq!(o.media[1].formats, vec!["t38"]);
    // An unreadable rtpmap is ignored: static PT 8 is PCMA by RFC 3551 anyway.
    assert_eq!(
        o.media[2].codec.as_ref().map(|c| c.name.as_str()),
        Some("PCMA")
    );
    assert_eq!(
        o.media[2].connection,
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)))
    );
    let mut pool = PortPool::new(20000, 20099);
    let s = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).unwrap();
    assert_eq!(m_lines(&s.answer_sdp)[1], "m=image 0 udptl t38");
}

#[test]
fn malformed_offers() {
    let bad = |body: &str| match parse_offer(body.as_bytes()) {
        Err(SdpError::Malformed(why)) => why,
        Ok(o) => panic!("accepted {body:?}: {o:?}"),
    };
    assert_eq!(bad(""), "missing v= line");
    assert_eq!(bad("<xml/>"), "missing v= line");
    assert_eq!(bad("v=0\r\ns=-\r\nt=0 0\r\n"), "missing o= line");
    assert_eq!(bad("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n"), "missing v= line");
    assert_eq!(bad("v=0\r\no=- 1 1\r\n"), "bad o= line");
    assert_eq!(
        bad("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n"),
        "unsupported SDP version"
    );
    let port = |p: &str| {
        bad(&format!(
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio {p} RTP/AVP 0\r\n"
        ))
    };
    assert_eq!(port("99999"), "bad m= port");
    assert_eq!(port("-1"), "bad m= port");
    assert_eq!(port("x"), "bad m= port");
    assert_eq!(
        bad("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n"),
        "short m= line"
    );
    let many = format!(
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n{}",
        "m=audio 0 RTP/AVP 0\r\n".repeat(65)
    );
    assert_eq!(bad(&many), "too many m= lines");
}

#[test]
fn hostile_bytes_never_panic() {
    // Deterministic mutations of a real offer: truncations and byte flips.
    let base = sdp(CMS).into_bytes();
    let mut seed: u32 = 0x1234_5678;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize
    };
    let mut pool = PortPool::new(20000, 20999);
    for _ in 0..2000 {
        let mut b = base.clone();
        b.truncate(next() % (b.len() + 1));
        for _ in 0..(next() % 8) {
            if !b.is_empty() {
                let i = next() % b.len();
                b[i] = (next() % 256) as u8;
            }
        }
        if let Ok(o) = parse_offer(&b) {
            if let Ok(s) = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()) {
                reparse(&s.answer_sdp);
                release_ports(&s, &mut pool);
            }
        }
        assert_eq!(pool.available(), pool.capacity());
    }
}

// --- re-offers -----------------------------------------------------------------------------

fn genesys_session(pool: &mut PortPool) -> MediaSession {
    answer_offer(&offer(GENESYS), &cfg(), pool, 42, &mut key_rng()).unwrap()
}

fn changed(u: Update) -> MediaSession {
    match u {
        Update::Changed(s) => s,
        Update::Unchanged => panic!("expected a changed session"),
    }
}

#[test]
fn reoffer_same_origin_version_is_unchanged() {
    let mut pool = PortPool::new(20000, 20099);
    let s = genesys_session(&mut pool);
    // Even a different body: RFC 3264 says the same version means the same SDP.
    let refresh = genesys_with("1", |l| l.replace("sendonly", "inactive"));
    assert_eq!(
        answer_reoffer(&s, &refresh, &cfg(), &mut pool, &mut key_rng()),
        Ok(Update::Unchanged)
    );
    assert_eq!(pool.available(), pool.capacity() - 2);
}

#[test]
fn reoffer_transfer_keeps_ports_and_bumps_version() {
    let mut pool = PortPool::new(20000, 20099);
    let s = genesys_session(&mut pool);
    let moved = genesys_with("2", |l| {
        l.replace("10.1.1.5", "10.9.9.9")
            .replace("31000 RTP/AVP 0 101", "32000 RTP/AVP 8 101")
            .replace("rtpmap:0 PCMU", "rtpmap:8 PCMA")
    });
    let n = changed(answer_reoffer(&s, &moved, &cfg(), &mut pool, &mut key_rng()).unwrap());
    assert_eq!(n.version, 2);
    assert_eq!(n.remote_origin.2, "2");
    assert_eq!(n.streams[0].local_port, s.streams[0].local_port);
    assert_eq!(n.streams[1].local_port, s.streams[1].local_port);
    assert_eq!(n.streams[0].remote_port, 32000);
    assert_eq!(
        n.streams[0].remote_addr,
        Some(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)))
    );
    assert_eq!(n.streams[0].codec.as_ref().unwrap().name, "PCMA");
    assert!(n.answer_sdp.contains("o=sip-recorder 42 2 IN IP4"));
    assert_eq!(pool.available(), pool.capacity() - 2);
    reparse(&n.answer_sdp);
}

#[test]
fn reoffer_new_remote_address_only_keeps_answer_version() {
    let mut pool = PortPool::new(20000, 20099);
    let s = genesys_session(&mut pool);
    let moved = genesys_with("2", |l| l.replace("10.1.1.5", "10.9.9.9"));
    let n = changed(answer_reoffer(&s, &moved, &cfg(), &mut pool, &mut key_rng()).unwrap());
    // Our answer text is the same: our o= version stays (RFC 3264 §8).
    assert_eq!(n.version, 1);
    assert_eq!(n.answer_sdp, s.answer_sdp);
    assert_eq!(
        n.streams[0].remote_addr,
        Some(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)))
    );
}

#[test]
fn reoffer_adding_and_removing_streams() {
    let mut pool = PortPool::new(20000, 20099);
    let one = offer(&GENESYS[..11]);
    let s = answer_offer(&one, &cfg(), &mut pool, 5, &mut key_rng()).unwrap();
    assert_eq!(s.streams.len(), 1);
    let two = genesys_with("2", str::to_owned);
    let n = changed(answer_reoffer(&s, &two, &cfg(), &mut pool, &mut key_rng()).unwrap());
    assert_eq!(n.streams.len(), 2);
    assert_eq!(n.streams[0].local_port, s.streams[0].local_port);
    assert!(n.streams[1].accepted);
    assert_ne!(n.streams[1].local_port, n.streams[0].local_port);
    assert_eq!(n.version, 2);
    assert_eq!(pool.available(), pool.capacity() - 2);

    // Second party leaves: port 0 on its line releases its port.
    let gone = genesys_with("3", |l| l.replace("31002", "0"));
    let r = changed(answer_reoffer(&n, &gone, &cfg(), &mut pool, &mut key_rng()).unwrap());
    assert!(!r.streams[1].accepted);
    assert_eq!(m_lines(&r.answer_sdp)[1], "m=audio 0 RTP/AVP 0");
    assert_eq!(r.version, 3);
    assert_eq!(pool.available(), pool.capacity() - 1);
    assert!(!pool.is_allocated(n.streams[1].local_port));

    release_ports(&r, &mut pool);
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn reoffer_pause_and_resume() {
    let mut pool = PortPool::new(20000, 20099);
    let s = genesys_session(&mut pool);
    let paused = genesys_with("2", |l| l.replace("sendonly", "inactive"));
    let p = changed(answer_reoffer(&s, &paused, &cfg(), &mut pool, &mut key_rng()).unwrap());
    assert_eq!(p.version, 2);
    assert!(
        p.streams
            .iter()
            .all(|s| s.answered_direction == Direction::Inactive)
    );
    assert_eq!(p.streams[0].local_port, s.streams[0].local_port);
    assert_eq!(p.streams[1].local_port, s.streams[1].local_port);
    assert_eq!(p.answer_sdp.matches("a=inactive").count(), 2);

    let resumed = genesys_with("3", str::to_owned);
    let r = changed(answer_reoffer(&p, &resumed, &cfg(), &mut pool, &mut key_rng()).unwrap());
    assert_eq!(r.version, 3);
    assert!(
        r.streams
            .iter()
            .all(|s| s.answered_direction == Direction::RecvOnly)
    );
    assert_eq!(r.streams[0].local_port, s.streams[0].local_port);
    assert_eq!(pool.available(), pool.capacity() - 2);
}

#[test]
fn reoffer_without_audio_leaves_session_untouched() {
    let mut pool = PortPool::new(20000, 20099);
    let s = genesys_session(&mut pool);
    let bad = genesys_with("2", |l| l.replace("RTP/AVP 0 101", "RTP/AVP 3"));
    let err = answer_reoffer(&s, &bad, &cfg(), &mut pool, &mut key_rng()).unwrap_err();
    assert!(matches!(
        err,
        AnswerError::NotAcceptable {
            warning_code: 305,
            ..
        }
    ));
    assert_eq!(pool.available(), pool.capacity() - 2);
    assert!(pool.is_allocated(s.streams[0].local_port));
    assert!(pool.is_allocated(s.streams[1].local_port));
}

#[test]
fn reoffer_pool_exhausted_gives_back_new_ports() {
    let mut pool = PortPool::new(20000, 20003); // two streams' worth
    let one = offer(&GENESYS[..11]);
    let s = answer_offer(&one, &cfg(), &mut pool, 5, &mut key_rng()).unwrap();
    let three = {
        let mut l: Vec<&str> = GENESYS.to_vec();
        l.extend_from_slice(&GENESYS[11..]);
        l[1] = "o=GMS 1706543210 2 IN IP4 10.1.1.5";
        offer(&l)
    };
    assert_eq!(three.media.len(), 3);
    assert_eq!(
        answer_reoffer(&s, &three, &cfg(), &mut pool, &mut key_rng()),
        Err(AnswerError::NoPorts)
    );
    assert_eq!(pool.available(), 1);
    assert!(pool.is_allocated(s.streams[0].local_port));
}

#[test]
fn absurd_ptime_and_ports_do_not_overflow() {
    // ptime and port arithmetic from the network must never overflow or panic.
    let o = parse_offer(
        sdp(&[
            "v=0",
            "o=- 1 1 IN IP4 10.0.0.1",
            "s=-",
            "c=IN IP4 10.0.0.1",
            "t=0 0",
            "m=audio 65535 RTP/AVP 0",
            "a=ptime:4294967295",
            "a=rtcp:65535",
        ])
        .as_bytes(),
    );
    if let Ok(o) = o {
        let mut pool = PortPool::new(20000, 20099);
        let _ = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng());
    }
    for bad in ["a=ptime:99999999999999999999", "a=ptime:-5", "a=ptime:0"] {
        let text = sdp(&[
            "v=0",
            "o=- 1 1 IN IP4 10.0.0.1",
            "s=-",
            "c=IN IP4 10.0.0.1",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0",
            bad,
        ]);
        if let Ok(o) = parse_offer(text.as_bytes()) {
            let mut pool = PortPool::new(20000, 20099);
            let _ = answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng());
        }
    }
}

/// Found by fuzzing: a crypto lifetime of `2^64` overflowed inside the SDP library.
#[test]
fn huge_crypto_lifetime_is_no_panic() {
    let text = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 4002 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^64",
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^99999",
    ]);
    let o = parse_offer(text.as_bytes()).expect("parses");
    assert_eq!(o.media[0].crypto.len(), 2);
    let mut pool = PortPool::new(20000, 20099);
    // Both lifetimes are out of range: no usable key, so 488, and no panic on the way.
    assert!(answer_offer(&o, &cfg(), &mut pool, 1, &mut key_rng()).is_err());
}
