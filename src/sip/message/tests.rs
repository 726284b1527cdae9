//! Parser and serializer tests: well-formed and broken messages, limits, round trips.

use super::headers::{parse_name_addr, parse_via_line};
use super::*;

const INVITE: &str = "INVITE sip:record=42@srs.example.com;calluuid=abc SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Media Server\" <sip:gvp@example.com>;tag=f1\r\n\
To: <sip:srs@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 7 INVITE\r\n\
Supported: timer, 100rel\r\n\
Supported: Replaces\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

// Mirrors `parse_message`, whose error type the contract fixes.
#[allow(clippy::result_large_err)]
fn parse(text: &str) -> Result<SipMessage, ParseFailure> {
    parse_message(Bytes::copy_from_slice(text.as_bytes()), &Limits::default())
}

fn request(text: &str) -> SipRequest {
    match parse(text) {
        Ok(SipMessage::Request(req)) => req,
        other => panic!("request expected, got {other:?}"),
    }
}

fn failure(text: &str) -> ParseFailure {
    match parse(text) {
        Err(failure) => failure,
        Ok(msg) => panic!("error expected, got {msg:?}"),
    }
}

#[test]
fn parses_a_basic_invite() {
    let req = request(INVITE);
    assert_eq!(req.method, Method::Invite);
    assert_eq!(req.uri_raw, "sip:record=42@srs.example.com;calluuid=abc");
    let RequestUri::Sip(uri) = &req.uri else {
        panic!("sip uri")
    };
    assert_eq!(uri.user.as_deref(), Some("record=42"));
    assert_eq!(uri.host, "srs.example.com");
    assert_eq!(
        uri.params,
        vec![("calluuid".to_string(), Some("abc".to_string()))]
    );
    assert_eq!(req.vias.len(), 1);
    let via = &req.vias[0];
    assert_eq!(via.transport, "UDP");
    assert_eq!(via.host, "192.0.2.10");
    assert_eq!(via.port, Some(5060));
    assert_eq!(via.rport, Some(None));
    assert_eq!(req.branch(), Some("z9hG4bKa1"));
    assert_eq!(req.from.uri, "sip:gvp@example.com");
    assert_eq!(req.from.tag.as_deref(), Some("f1"));
    assert_eq!(req.to.tag, None);
    assert_eq!(req.call_id, "call-1@192.0.2.10");
    assert_eq!((req.cseq, &req.cseq_method), (7, &Method::Invite));
    assert_eq!(req.max_forwards, Some(70));
    assert_eq!(req.content_type.as_deref(), Some("application/sdp"));
    assert_eq!(&req.body[..], b"v=0\r");
    assert_eq!(req.header_tokens("k"), vec!["timer", "100rel", "replaces"]);
    assert_eq!(req.header_values("SUPPORTED").count(), 2);
    assert_eq!(req.header("i"), Some("call-1@192.0.2.10"));
    assert_eq!(req.header("X-Missing"), None);
}

#[test]
fn compact_headers_are_canonicalized() {
    let req = request(
        "OPTIONS sip:srs.example.com SIP/2.0\r\n\
v: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n\
f: <sip:a@example.com>;tag=1\r\nt: <sip:b@example.com>\r\ni: cid\r\n\
CSeq: 1 OPTIONS\r\nm: <sip:a@h.example.com>\r\nk: timer\r\nx: 1800;refresher=uac\r\n\
c: text/plain\r\ne: gzip\r\ns: hi\r\no: dialog\r\nu: talk\r\nr: <sip:c@example.com>\r\n\
b: <sip:d@example.com>\r\ny: abc\r\nX-Custom: 1\r\nl: 2\r\n\r\nok",
    );
    let names: Vec<&str> = req.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Supported",
            "Session-Expires",
            "Content-Type",
            "Content-Encoding",
            "Subject",
            "Event",
            "Allow-Events",
            "Refer-To",
            "Referred-By",
            "Identity",
            "X-Custom",
            "Content-Length",
        ]
    );
    assert_eq!(req.header("Session-Expires"), Some("1800;refresher=uac"));
    assert_eq!(req.header("x"), Some("1800;refresher=uac"));
    assert_eq!(req.header("x-custom"), Some("1"));
    assert_eq!(&req.body[..], b"ok");
}

#[test]
fn folded_headers_are_unfolded() {
    let req = request(
        "OPTIONS sip:srs.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP\r\n  192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>\r\n  ;tag=1\r\n\
To: <sip:b@example.com>\r\nCall-ID: c\r\n\
CSeq: 1\r\n\tOPTIONS\r\n\
Subject: one\r\n two \r\n\t three\r\n\
Content-Length: 0\r\n\r\n",
    );
    assert_eq!(req.vias[0].host, "192.0.2.1");
    assert_eq!(req.from.tag.as_deref(), Some("1"));
    assert_eq!(req.cseq, 1);
    assert_eq!(req.header("Subject"), Some("one two three"));
}

#[test]
fn ipv6_via_and_uri_hosts() {
    let req = request(
        "INVITE sip:rec@[2001:db8::1]:5060;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/TCP [2001:db8::2]:5070;branch=z9hG4bK6\r\n\
From: <sip:a@[2001:db8::2]>;tag=1\r\nTo: <sip:rec@[2001:db8::1]>\r\n\
Call-ID: v6\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    let RequestUri::Sip(uri) = &req.uri else {
        panic!("sip uri")
    };
    assert_eq!(uri.host, "2001:db8::1");
    assert_eq!(uri.port, Some(5060));
    assert_eq!(uri.params, vec![("transport".into(), Some("tcp".into()))]);
    assert_eq!(req.vias[0].host, "2001:db8::2");
    assert_eq!(req.vias[0].port, Some(5070));
    assert_eq!(req.to.uri, "sip:rec@[2001:db8::1]");
}

#[test]
fn extension_methods_and_sips() {
    let req = request(
        "FOOBAR sips:srs.example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 3 FOOBAR\r\n\r\n",
    );
    assert_eq!(req.method, Method::Extension("FOOBAR".into()));
    assert_eq!(req.method.as_str(), "FOOBAR");
    let RequestUri::Sip(uri) = &req.uri else {
        panic!("sip uri")
    };
    assert!(uri.sips);
    // Methods are case-sensitive.
    assert_eq!(Method::parse("invite"), Method::Extension("invite".into()));
    for m in [
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "PRACK",
    ] {
        assert_eq!(Method::parse(m).as_str(), m);
    }
}

#[test]
fn multiple_vias_per_line() {
    let req = request(
        "BYE sip:srs.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/TCP p2.example.com:5080;branch=z9hG4bKp2;received=192.0.2.2\r\n\
Via: SIP/2.0/UDP uac.example.com;branch=z9hG4bKu;maddr=239.1.1.1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n",
    );
    let hosts: Vec<&str> = req.vias.iter().map(|v| v.host.as_str()).collect();
    assert_eq!(
        hosts,
        vec!["p1.example.com", "p2.example.com", "uac.example.com"]
    );
    assert_eq!(
        req.vias[0].raw,
        "SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1"
    );
    assert_eq!(req.vias[1].received.as_deref(), Some("192.0.2.2"));
    assert_eq!(req.vias[1].transport, "TCP");
    assert_eq!(req.vias[2].maddr.as_deref(), Some("239.1.1.1"));
    assert_eq!(req.branch(), Some("z9hG4bKp1"));
}

#[test]
fn tel_request_uri_is_other() {
    let req = request(
        "INVITE tel:+15551234567 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <tel:+15550000000>;tag=1\r\nTo: tel:+15551234567\r\nCall-ID: c\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        req.uri,
        RequestUri::Other {
            scheme: "tel".into()
        }
    );
    assert_eq!(req.from.uri, "tel:+15550000000");
    assert_eq!(req.to.uri, "tel:+15551234567");
    let other =
        request(&INVITE.replace("sip:record=42@srs.example.com;calluuid=abc", "HTTP://x/y"));
    assert_eq!(
        other.uri,
        RequestUri::Other {
            scheme: "http".into()
        }
    );
}

#[test]
fn missing_headers_with_and_without_reply_context() {
    // Missing From: Via and CSeq are readable, so a 400 can be sent.
    let f = failure(
        "INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(f.error, ParseError::MissingHeader("From"));
    assert_eq!(f.error.status_code(), 400);
    let ctx = f.reply.expect("reply context");
    assert_eq!(ctx.method, Method::Invite);
    assert_eq!(ctx.cseq, "1 INVITE");
    assert_eq!(ctx.from, "");
    let bytes = OutgoingResponse::from_context(&ctx, 400, Some("t1")).to_bytes();
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
    assert!(text.contains("\r\nTo: <sip:b@h>;tag=t1\r\n"));
    assert!(!text.contains("From:"));

    // Missing Via: nowhere to send a response.
    let f = failure(
        "INVITE sip:a@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
    );
    assert_eq!(f.error, ParseError::MissingHeader("Via"));
    assert_eq!(f.reply, None);

    // Missing CSeq: the client could not match a response.
    let f = failure(
        "INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\n\r\n",
    );
    assert_eq!(f.error, ParseError::MissingHeader("CSeq"));
    assert_eq!(f.reply, None);
}

#[test]
fn bad_request_line_can_still_be_answered() {
    let f = failure(&INVITE.replace("sip:record=42@srs.example.com;calluuid=abc", "<sip:x@h>"));
    assert_eq!(f.error, ParseError::BadStartLine);
    assert_eq!(f.reply.map(|c| c.method), Some(Method::Invite));
    let f = failure(&INVITE.replace(" SIP/2.0\r\nVia", " SIP/3.0\r\nVia"));
    assert_eq!(f.error, ParseError::BadStartLine);
}

#[test]
fn oversize_message_and_content_length() {
    let limits = Limits {
        max_message_size: 200,
        ..Limits::default()
    };
    let f = parse_message(Bytes::from(INVITE.to_string() + &"x".repeat(200)), &limits)
        .expect_err("too large");
    assert_eq!(f.error, ParseError::TooLarge { limit: 200 });
    assert_eq!(f.error.status_code(), 413);
    assert!(f.reply.is_some());

    let limits = Limits {
        max_content_length: 3,
        ..Limits::default()
    };
    let f = parse_message(Bytes::from(INVITE), &limits).expect_err("body too large");
    assert_eq!(f.error, ParseError::TooLarge { limit: 3 });
}

#[test]
fn too_many_headers() {
    let limits = Limits {
        max_headers: 5,
        ..Limits::default()
    };
    let f = parse_message(Bytes::from(INVITE), &limits).expect_err("too many");
    assert_eq!(f.error, ParseError::TooManyHeaders { limit: 5 });
    assert_eq!(f.error.status_code(), 400);
}

#[test]
fn content_length_mismatch() {
    // Declared longer than what arrived.
    let f = failure(&INVITE.replace("Content-Length: 4", "Content-Length: 40"));
    assert_eq!(f.error, ParseError::BadContentLength);
    assert!(f.reply.is_some());
    // Extra octets after the declared body are dropped (UDP).
    let req = request(&INVITE.replace("Content-Length: 4", "Content-Length: 2"));
    assert_eq!(&req.body[..], b"v=");
    // No Content-Length on a datagram: the rest is the body.
    let req = request(&INVITE.replace("Content-Length: 4\r\n", ""));
    assert_eq!(&req.body[..], b"v=0\r\n");
    for bad in ["-4", "four", "4 4"] {
        let f = failure(&INVITE.replace("Content-Length: 4", &format!("Content-Length: {bad}")));
        assert_eq!(f.error, ParseError::BadContentLength, "{bad}");
    }
}

#[test]
fn garbage_is_rejected() {
    for input in [
        &b""[..],
        b"\r\n\r\n",
        b"\x00\x01\x02\xff\xfe",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"INVITE",
        b"SIP/2.0 99 Low\r\n\r\n",
        b"SIP/2.0 4294967301 big\r\nVia: SIP/2.0/UDP h\r\n\r\n",
        b"INVITE sip:a@h SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n",
        b"INVITE sip:a@h SIP/2.0\r\n\xff\xfe: x\r\n\r\n",
        b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n",
    ] {
        let result = parse_message(Bytes::copy_from_slice(input), &Limits::default());
        assert!(result.is_err(), "{input:?}");
    }
    assert_eq!(failure("").error, ParseError::NotSip);
    assert_eq!(failure("hello world\r\n\r\n").error, ParseError::NotSip);
}

#[test]
fn pseudo_random_inputs_never_panic() {
    // xorshift64: deterministic, so a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] =
        b"\r\n :;,=<>\"\\@[]/SIP2.0%abcINVITEViaFromToCall-IDCSeqtagbranch\t\x00\xff";
    let seed = INVITE.as_bytes();
    for round in 0..4000 {
        let input: Vec<u8> = if round % 2 == 0 {
            let len = (next() % 300) as usize;
            (0..len)
                .map(|_| alphabet[(next() as usize) % alphabet.len()])
                .collect()
        } else {
            // Mutate a valid message so that parsing goes deep.
            let mut bytes = seed.to_vec();
            for _ in 0..(next() % 8) + 1 {
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
            bytes
        };
        let _ = parse_message(Bytes::from(input), &Limits::default());
    }
}

#[test]
fn stamp_source_cases() {
    let via = |raw: &str| {
        let mut vias = Vec::new();
        parse_via_line(raw, &mut vias).expect("via");
        vias.remove(0)
    };
    // Same IP, no rport: nothing added.
    let mut v = via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
    v.stamp_source("192.0.2.1:5060".parse().expect("addr"));
    assert_eq!(v.received, None);
    assert_eq!(v.raw, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");

    // Different IP: received added.
    let mut v = via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
    v.stamp_source("198.51.100.7:5060".parse().expect("addr"));
    assert_eq!(v.received.as_deref(), Some("198.51.100.7"));
    assert_eq!(
        v.raw,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;received=198.51.100.7"
    );

    // Host name: received always added.
    let mut v = via("SIP/2.0/TCP pc.example.com;branch=z9hG4bK1");
    v.stamp_source("192.0.2.9:40000".parse().expect("addr"));
    assert_eq!(v.received.as_deref(), Some("192.0.2.9"));

    // Bare rport: filled, and received added even for the same IP (RFC 3581 §4).
    let mut v = via("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1");
    v.stamp_source("192.0.2.1:61000".parse().expect("addr"));
    assert_eq!(v.rport, Some(Some(61000)));
    assert_eq!(v.received.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        v.raw,
        "SIP/2.0/UDP 192.0.2.1:5060;rport=61000;branch=z9hG4bK1;received=192.0.2.1"
    );

    // IPv6 and an IPv4 peer seen through a dual-stack socket.
    let mut v = via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1");
    v.stamp_source("[2001:db8::1]:5060".parse().expect("addr"));
    assert_eq!(v.received, None);
    v.stamp_source("[2001:db8::2]:5060".parse().expect("addr"));
    assert_eq!(v.received.as_deref(), Some("2001:db8::2"));
    let mut v = via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
    v.stamp_source("[::ffff:192.0.2.1]:5060".parse().expect("addr"));
    assert_eq!(v.received, None);

    // An existing received is replaced, not duplicated.
    let mut v = via("SIP/2.0/UDP h.example.com;received=10.0.0.1;branch=z9hG4bK1");
    v.stamp_source("192.0.2.3:5060".parse().expect("addr"));
    assert_eq!(
        v.raw,
        "SIP/2.0/UDP h.example.com;received=192.0.2.3;branch=z9hG4bK1"
    );
}

#[test]
fn response_round_trip() {
    let mut req = request(INVITE);
    req.vias[0].stamp_source("203.0.113.5:5062".parse().expect("addr"));
    let resp = OutgoingResponse::to_request(&req, 200, Some("srs-1"))
        .with_header("Contact", "<sip:srs@192.0.2.50>")
        .with_header("Session-Expires", "1800;refresher=uac")
        .with_body("application/sdp", Bytes::from_static(b"v=0\r\n"));
    assert_eq!(resp.reason, "OK");
    assert_eq!(resp.cseq, "7 INVITE");
    assert_eq!(resp.to, "<sip:srs@example.com>;tag=srs-1");
    let bytes = resp.to_bytes();
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    assert!(text.starts_with(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa1;rport=5062;received=203.0.113.5\r\n"
        ));
    assert!(text.ends_with("Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"));

    let Ok(SipMessage::Response(parsed)) = parse_message(bytes, &Limits::default()) else {
        panic!("response expected");
    };
    assert_eq!(parsed.code, 200);
    assert_eq!(parsed.call_id, req.call_id);
    assert_eq!((parsed.cseq, parsed.cseq_method), (7, Method::Invite));
    assert_eq!(parsed.to_tag.as_deref(), Some("srs-1"));
    assert_eq!(parsed.vias[0].rport, Some(Some(5062)));
    assert_eq!(parsed.vias[0].received.as_deref(), Some("203.0.113.5"));

    // An existing To tag is kept.
    let mut tagged = req.clone();
    tagged.to = parse_name_addr("<sip:srs@example.com>;tag=old").expect("to");
    let resp = OutgoingResponse::to_request(&tagged, 481, Some("new"));
    assert_eq!(resp.to, "<sip:srs@example.com>;tag=old");
    assert_eq!(resp.reason, "Call/Transaction Does Not Exist");
}

#[test]
fn request_serialization_round_trip() {
    let bye = OutgoingRequest {
        method: Method::Bye,
        uri: "sip:gvp@192.0.2.10:5060".into(),
        via: "SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKsrs1;rport".into(),
        route: vec![
            "<sip:p1.example.com;lr>".into(),
            "<sip:p2.example.com;lr>".into(),
        ],
        from: "<sip:srs@example.com>;tag=srs-1".into(),
        to: "\"Media Server\" <sip:gvp@example.com>;tag=f1".into(),
        call_id: "call-1@192.0.2.10".into(),
        cseq: 1,
        headers: vec![(
            "Reason".into(),
            "SIP;cause=200;text=\"session timeout\"".into(),
        )],
        body: None,
    };
    let bytes = bye.to_bytes();
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    assert!(text.starts_with(
            "BYE sip:gvp@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKsrs1;rport\r\n\
Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\nMax-Forwards: 70\r\n"
        ));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    let req = request(text);
    assert_eq!(req.method, Method::Bye);
    assert_eq!(req.cseq_method, Method::Bye);
    assert_eq!(req.to.tag.as_deref(), Some("f1"));
    assert_eq!(req.header_values("Route").count(), 2);
    assert_eq!(req.max_forwards, Some(70));
}

#[test]
fn serialization_never_splits_lines() {
    let resp = OutgoingResponse::from_context(
        &ReplyContext {
            method: Method::Options,
            vias: Vec::new(),
            from: "a".into(),
            to: "b".into(),
            call_id: "c".into(),
            cseq: "1 OPTIONS".into(),
        },
        500,
        None,
    )
    .with_header("Warning", "399 srs \"bad\r\nInjected: yes\"");
    let bytes = resp.to_bytes();
    assert!(
        !std::str::from_utf8(&bytes)
            .expect("utf-8")
            .contains("\r\nInjected")
    );
}

#[test]
fn reason_phrases() {
    for (code, phrase) in [
        (100, "Trying"),
        (183, "Session Progress"),
        (413, "Request Entity Too Large"),
        (416, "Unsupported URI Scheme"),
        (420, "Bad Extension"),
        (422, "Session Interval Too Small"),
        (491, "Request Pending"),
        (505, "Version Not Supported"),
        (513, "Message Too Large"),
        (299, "Success"),
        (499, "Client Error"),
        (999, "Unknown"),
    ] {
        assert_eq!(reason_phrase(code), phrase);
    }
}

#[test]
fn name_addr_forms() {
    let na = parse_name_addr("\"A \\\"quoted\\\" <name>\" <sip:a@h;lr>;tag=x;other").expect("na");
    assert_eq!(na.uri, "sip:a@h;lr");
    assert_eq!(na.tag.as_deref(), Some("x"));
    let na = parse_name_addr("sip:a@h ; TAG = y").expect("na");
    assert_eq!((na.uri.as_str(), na.tag.as_deref()), ("sip:a@h", Some("y")));
    assert!(parse_name_addr("\"unterminated <sip:a@h>").is_none());
    assert!(parse_name_addr("<sip:a@h").is_none());
    assert!(parse_name_addr("no-scheme@h").is_none());
}
