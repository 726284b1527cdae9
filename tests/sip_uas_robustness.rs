//! The recorder's SIP transports under odd and hostile input (SPEC §3): TCP framing, and
//! bad input while a call is up (nothing crashes, nothing is recorded, the call goes on).

mod common;

use common::uas::*;
use common::*;
use std::net::UdpSocket;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// TCP framing

#[test]
fn tcp_messages_split_into_tiny_segments() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    let opts = options_request(&c);
    c.send_split(&opts, 1, Duration::from_millis(2));
    c.expect_reply(&opts, 200, T);

    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    c.send_split(&invite, 7, Duration::from_millis(1));
    let ok = c.expect_reply(&invite, 200, T);
    assert_genesys_answer(&rec, &ok, "recvonly");
    let ack = call.ack_2xx(&ok);
    c.send_split(&ack, 5, Duration::from_millis(1));
    rec.wait_call_state(&call.call_id, "active", T);
    let bye = call.bye();
    c.send_split(&bye, 3, Duration::from_millis(1));
    c.expect_reply(&bye, 200, T);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn tcp_several_messages_in_one_segment() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    let o1 = options_request(&c);
    let o2 = options_request(&c);
    c.send(&format!("{o1}{o2}"));
    c.expect_reply(&o1, 200, T);
    c.expect_reply(&o2, 200, T);

    let mut call = Call::genesys(&c);
    let invite = call.genesys_invite();
    c.send(&invite);
    let ok = c.expect_reply(&invite, 200, T);
    let ack = call.ack_2xx(&ok);
    let bye = call.bye();
    c.send(&format!("{ack}{bye}"));
    c.expect_reply(&bye, 200, T);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
}

#[test]
fn tcp_crlfcrlf_keepalive_answered_with_crlf() {
    let rec = Recorder::start(&[]);
    let mut c = rec.tcp();
    c.send("\r\n\r\n");
    assert!(c.wait_pong(Duration::from_secs(2)), "no CRLF pong");
    assert!(!c.closed, "connection closed after a keep-alive");
    let opts = options_request(&c);
    c.send(&opts);
    c.expect_reply(&opts, 200, T);
}

// ---------------------------------------------------------------------------------------
// Bad input while a call is up: nothing crashes, nothing is recorded, the call goes on.

/// Sets up a Genesys call over UDP, runs `abuse`, then checks that the recorder still
/// answers, that the call can still be paused and hung up, and that nothing else was
/// recorded. `abuse` returns whatever must stay alive (connections) during those checks.
fn with_active_call<K>(abuse: impl FnOnce(&mut Recorder) -> K) {
    let mut rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let mut call = genesys_call_active(&rec, &mut c);

    let keep = abuse(&mut rec);

    rec.assert_alive();
    assert_eq!(options_status(rec.sip_addr).status(), Some(200));
    let pause = call.reinvite(&genesys_sdp(2, "inactive"), "");
    c.send(&pause);
    let ok = c.expect_reply(&pause, 200, T);
    let ack = call.ack_2xx(&ok);
    c.send(&ack);
    rec.wait_call_state(&call.call_id, "paused", T);
    hang_up(&mut c, &mut call);
    let (_, v) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(v["end_reason"], "bye");
    assert_eq!(rec.recordings().len(), 1, "{:#?}", rec.recordings());
    rec.assert_alive();
    drop(keep);
}

/// Deterministic pseudo-random bytes (xorshift), so a failure replays exactly.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_datagram_burst_is_survived() {
    with_active_call(|rec| {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let crafted: [&[u8]; 12] = [
            b"",
            b"\r\n",
            b"\r\n\r\n",
            b"\0\0\0\0",
            b"INVITE\r\n\r\n",
            b"INVITE sip:x SIP/2.0\r\n\r\n",
            b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nContent-Length: -5\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia SIP/2.0/UDP no-colon\r\n\r\n",
            b"BYE sip:x SIP/2.0\r\nCall-ID: \xff\xfe\r\nCSeq: 99999999999999 BYE\r\n\r\n",
            b"ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP [::1\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 4294967296\r\n\r\n",
        ];
        for d in crafted {
            sock.send_to(d, rec.sip_addr).expect("send");
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..300 {
            let len = 1 + (i * 37) % 1400;
            let mut d = noise(&mut seed, len);
            if i % 3 == 0 {
                // Mostly-SIP noise reaches deeper into the parser.
                let mut sip = b"INVITE sip:record=x@127.0.0.1 SIP/2.0\r\n".to_vec();
                sip.append(&mut d);
                d = sip;
            }
            sock.send_to(&d, rec.sip_addr).expect("send");
        }
    });
}

#[test]
fn truncated_messages_get_400_or_nothing() {
    with_active_call(|rec| {
        let mut c = rec.udp();
        let mut call = Call::genesys(&c);
        let invite = call.genesys_invite();
        let cut = invite.find("Call-ID").expect("Call-ID") + 10;
        c.send(&invite[..cut]);
        // Whole head, body shorter than Content-Length: RFC 3261 §18.3 says discard or 400.
        let mut call2 = Call::genesys(&c);
        let invite2 = call2.genesys_invite();
        c.send(&invite2[..invite2.len() - 40]);
        let opts = options_request(&c);
        c.send(&opts);
        // Read until the OPTIONS answer, then until 300 ms of silence for late answers.
        let mut options_seen = false;
        loop {
            let wait = if options_seen {
                Duration::from_millis(300)
            } else {
                T
            };
            let Some(m) = c.recv(wait) else { break };
            if m.cseq_method() == "OPTIONS" {
                assert_eq!(m.status(), Some(200), "{}", text(&m));
                options_seen = true;
            } else if let Some(s) = m.status() {
                assert!(
                    s == 100 || s == 400,
                    "truncated INVITE answered:\n{}",
                    text(&m)
                );
            }
        }
        assert!(
            options_seen,
            "no answer to OPTIONS after truncated messages"
        );
    });
}

#[test]
fn oversize_messages_over_udp_and_tcp_are_refused() {
    with_active_call(|rec| {
        let ok_codes = [400, 413, 513];
        // UDP cannot carry more than 65507 bytes: this datagram is nearly that, and its
        // Content-Length declares a message over the 64 KiB limit.
        let mut c = rec.udp();
        let mut call = Call::genesys(&c);
        let head_only = call.invite("", Some("application/sdp"), "");
        let head = head_only.replace("Content-Length: 0\r\n", "Content-Length: 70000\r\n");
        let mut dgram = head.into_bytes();
        dgram.resize(65_000, b'a');
        c.send_bytes(&dgram);
        if let Some((_, m)) = c.wait_response(&call.call_id, "INVITE", 200, Duration::from_secs(1))
        {
            assert!(
                ok_codes.contains(&m.status().unwrap_or(0)),
                "oversize UDP message answered:\n{}",
                text(&m)
            );
        }

        // TCP: a complete message of 70 000 + bytes.
        let mut t = rec.tcp();
        let mut call = Call::genesys(&t);
        let mut body = genesys_sdp(1, "sendonly");
        while body.len() < 70_000 {
            body.push_str("a=x-padding:0123456789012345678901234567890123456789\r\n");
        }
        let invite = call.invite_sdp(&body);
        let _ = t.try_send_bytes(invite.as_bytes());
        // Refused (413/513/400), or dropped: the connection closed, or the message
        // discarded without an answer. Never accepted.
        if let Some((_, m)) = t.wait_reply(&invite, 200, Duration::from_secs(2)) {
            assert!(
                ok_codes.contains(&m.status().unwrap_or(0)),
                "oversize TCP message answered:\n{}",
                text(&m)
            );
        }
        // A fresh connection is served as usual.
        let mut fresh = rec.tcp();
        let opts = options_request(&fresh);
        fresh.send(&opts);
        fresh.expect_reply(&opts, 200, T);
    });
}

#[test]
fn half_open_tcp_connections_do_not_block_anything() {
    with_active_call(|rec| {
        let mut held = Vec::new();
        for _ in 0..20 {
            let mut t = rec.tcp();
            let mut call = Call::genesys(&t);
            let invite = call.genesys_invite();
            t.send(&invite[..invite.len() / 2]);
            held.push(t);
        }
        // Another TCP client is served while those wait for the rest of their message.
        let mut fresh = rec.tcp();
        let opts = options_request(&fresh);
        fresh.send(&opts);
        fresh.expect_reply(&opts, 200, T);
        held
    });
}

/// RFC 3261 §17.2.3 / §18.2.2: an INVITE retransmitted on a new TCP connection (the first one
/// broke) gets its 2xx on that connection, and is still one call and one recording.
#[test]
fn invite_retransmitted_on_a_new_tcp_connection_is_answered_there() {
    let rec = Recorder::start(&[]);
    let mut first = rec.tcp();
    let mut call = Call::new(&first, &cms_uri(rec.sip_addr));
    let invite = call.cms_invite();
    first.send(&invite);
    let ok = first.expect_reply(&invite, 200, T);
    let mut second = rec.tcp();
    second.send(&invite);
    let again = second.expect_reply(&invite, 200, T);
    assert_eq!(again.tag_of_to(), ok.tag_of_to(), "the same dialog");
    let ack = call.ack_2xx(&again);
    second.send(&ack);
    let bye = call.bye();
    second.send(&bye);
    second.expect_reply(&bye, 200, T);
    let (_, doc) = rec.wait_call_state(&call.call_id, "ended", T);
    assert_eq!(doc["end_reason"], "bye", "{doc}");
    assert_eq!(rec.recordings_of_call(&call.call_id).len(), 1);
}

/// The same branch and sent-by from another request (RFC 4475 reuses them): not a
/// retransmission, each gets its own answer.
#[test]
fn a_reused_branch_in_another_request_gets_its_own_answer() {
    let rec = Recorder::start(&[]);
    let mut c = rec.udp();
    let options = |call_id: &str| {
        format!(
            "OPTIONS sip:rec@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreused;rport\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:rec@example.com>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            server = rec.sip_addr,
            local = c.local
        )
    };
    let first = options("reused-1");
    let second = options("reused-2");
    c.send(&first);
    c.expect_reply(&first, 200, T);
    c.send(&second);
    let answer = c.expect_reply(&second, 200, T);
    assert_eq!(answer.call_id(), "reused-2");
}
