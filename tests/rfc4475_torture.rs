//! RFC 4475 (SIP torture test messages) against `parse_message`.
//!
//! §3.1.1 valid messages must parse; §3.1.2 invalid ones must either fail or come out in a
//! shape the UAS rejects (each case says which). Messages are reproduced from the RFC with
//! CRLF line ends; `<allOneLine>` sections are joined and `<repeat>` sections expanded.

use bytes::Bytes;
use sip_recorder::sip::message::*;

/// Joins lines with CRLF, ending the last one too (the RFC's message text).
fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// The SDP body most messages carry, with the given origin and connection addresses.
fn sdp(o: &str, c: &str) -> String {
    format!(
        "v=0\r\no=mhandley 29739 7272939 IN IP4 {o}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
    )
}

fn with_body(head: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = crlf(head);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

// Mirrors `parse_message`, whose error type is fixed by the module contract.
#[allow(clippy::result_large_err)]
fn parse(bytes: Vec<u8>) -> Result<SipMessage, ParseFailure> {
    parse_message(Bytes::from(bytes), &Limits::default())
}

fn request(bytes: Vec<u8>) -> SipRequest {
    match parse(bytes) {
        Ok(SipMessage::Request(req)) => req,
        other => panic!("request expected, got {other:?}"),
    }
}

fn failure(bytes: Vec<u8>) -> ParseFailure {
    match parse(bytes) {
        Err(failure) => failure,
        Ok(msg) => panic!("error expected, got {msg:?}"),
    }
}

fn sip_uri(req: &SipRequest) -> &SipUriParts {
    match &req.uri {
        RequestUri::Sip(uri) => uri,
        other => panic!("sip uri expected, got {other:?}"),
    }
}

/// The message of RFC 4475 with this file name, from `rfc4475/messages.rs`.
fn message(name: &str) -> Vec<u8> {
    torture_messages::all()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no RFC 4475 message {name}"))
        .bytes
}

// ---- §3.1.1 valid messages ----

/// §3.1.1.1 A Short Tortuous INVITE (wsinv).
#[test]
fn wsinv() {
    let msg = message("wsinv");
    let req = request(msg);
    assert_eq!(req.method, Method::Invite);
    let uri = sip_uri(&req);
    assert_eq!(uri.user.as_deref(), Some("vivekg"));
    assert_eq!(uri.params, vec![("unknownparam".to_string(), None)]);
    assert_eq!(req.to.uri, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(req.to.tag.as_deref(), Some("1918181833n"));
    assert_eq!(req.from.uri, "sip:jdrosen@example.com");
    assert_eq!(req.from.tag.as_deref(), Some("98asjd8"));
    assert_eq!(req.max_forwards, Some(68));
    assert_eq!((req.cseq, &req.cseq_method), (9, &Method::Invite));
    let vias: Vec<(&str, &str, Option<&str>)> = req
        .vias
        .iter()
        .map(|v| (v.transport.as_str(), v.host.as_str(), v.branch.as_deref()))
        .collect();
    assert_eq!(
        vias,
        vec![
            ("UDP", "192.0.2.2", Some("390skdjuw")),
            ("TCP", "spindle.example.com", Some("z9hG4bK9ikj8")),
            ("UDP", "192.168.255.111", Some("z9hG4bK30239")),
        ]
    );
    assert_eq!(req.header("Subject"), Some(""));
    assert_eq!(
        req.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        req.header("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    assert!(
        req.header("Contact")
            .is_some_and(|c| c.contains("newvalue"))
    );
    assert_eq!(req.body.len(), 150);
}

/// §3.1.1.2 Wide Range of Valid Characters (intmeth).
#[test]
fn intmeth() {
    let msg = message("intmeth");
    let req = request(msg);
    // An extension method: endpoints answer 501.
    assert_eq!(
        req.method,
        Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert_eq!(req.cseq_method, req.method);
    assert_eq!(req.cseq, 139122385);
    let uri = sip_uri(&req);
    assert_eq!(
        uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(uri.host, "example.com");
    // The branch is kept as written (`%66` not decoded): transactions match on it verbatim.
    assert_eq!(req.branch(), Some("z9hG4bK-.!%66*_+`'~"));
    assert_eq!(req.from.uri, "sip:mundane@example.com");
    assert_eq!(req.from.tag.as_deref(), Some("_token~1'+`*%!-."));
    assert_eq!(
        req.to.uri,
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com"
    );
    assert_eq!(req.call_id, r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#);
    assert_eq!(req.max_forwards, Some(255));
    assert_eq!(
        req.header("extensionHeader-!.%*+_`'~"),
        Some("\u{FEFF}大停電")
    );
}

/// §3.1.1.3 Valid Use of the % Escaping Mechanism (esc01).
#[test]
fn esc01() {
    let msg = message("esc01");
    let req = request(msg);
    let uri = sip_uri(&req);
    // The user part is decoded: it is a user named `sips:user@example.com`, not a sips URI.
    assert_eq!(uri.user.as_deref(), Some("sips:user@example.com"));
    assert!(!uri.sips);
    assert_eq!(uri.host, "example.net");
    assert_eq!(req.call_id, "esc01.239409asdfakjkn23onasd0-3234");
    assert_eq!(req.content_type.as_deref(), Some("application/sdp"));
    assert_eq!(req.to.uri, "sip:%75se%72@example.com");
    assert_eq!(
        req.header("Contact"),
        Some("<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>")
    );
}

/// §3.1.1.4 Escaped Nulls in URIs (escnull).
#[test]
fn escnull() {
    let msg = message("escnull");
    let req = request(msg);
    assert_eq!(req.method, Method::Register);
    assert_eq!(req.from.uri, "sip:null-%00-null@example.com");
    assert_eq!(req.from.tag.as_deref(), Some("839923423"));
    assert_eq!(req.header_values("m").count(), 2);
    assert_eq!(req.header("Content-Length"), Some("0"));
}

/// §3.1.1.5 Use of % When It Is Not an Escape (esc02).
#[test]
fn esc02() {
    let msg = message("esc02");
    let req = request(msg);
    // `%` is not an escape in a method: this is not REGISTER.
    assert_eq!(req.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(req.branch(), Some("z9hG4bK209%fzsnel234"));
    // Nor in a header name: `C%6Fntact` is an unknown header.
    assert_eq!(req.header_values("Contact").count(), 2);
    assert_eq!(
        req.header("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

/// §3.1.1.6 Message with No LWS between Display Name and < (lwsdisp).
#[test]
fn lwsdisp() {
    let msg = message("lwsdisp");
    let req = request(msg);
    assert_eq!(req.from.uri, "sip:caller@example.com");
    assert_eq!(req.from.tag.as_deref(), Some("323"));
    assert_eq!(req.method, Method::Options);
}

/// §3.1.1.7 Long Values in Header Fields (longreq).
#[test]
fn longreq() {
    let req = request(message("longreq"));
    let branch = format!("very{}branchvalue", "long".repeat(50));
    let tag = format!("12{}424", "982".repeat(50));
    let call_id = format!("longreq.one{}longcallid", "really".repeat(20));
    assert_eq!(req.vias.len(), 34);
    assert_eq!(req.vias[0].host, "sip33.example.com");
    assert_eq!(req.vias[33].branch.as_deref(), Some(branch.as_str()));
    assert_eq!(req.vias[33].received.as_deref(), Some("192.0.2.5"));
    assert_eq!(req.from.tag.as_deref(), Some(tag.as_str()));
    assert_eq!(req.to.tag, None);
    assert_eq!(req.call_id, call_id);
    assert_eq!(req.body.len(), 150);
}

/// §3.1.1.8 Extra Trailing Octets in a UDP Datagram (dblreq).
#[test]
fn dblreq() {
    let msg = message("dblreq");
    let req = request(msg);
    assert_eq!(req.method, Method::Register);
    assert_eq!(req.call_id, "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
    assert!(req.body.is_empty());
}

/// §3.1.1.9 Semicolon-Separated Parameters in URI User Part (semiuri).
#[test]
fn semiuri() {
    let msg = message("semiuri");
    let req = request(msg);
    let uri = sip_uri(&req);
    // The parameters belong to the user part, not to the URI.
    assert_eq!(uri.user.as_deref(), Some("user;par=u@example.net"));
    assert_eq!(uri.host, "example.com");
    assert!(uri.params.is_empty());
    assert_eq!(req.header_tokens("Accept").len(), 6);
}

/// §3.1.1.10 Varied and Unknown Transport Types (transports).
#[test]
fn transports() {
    let msg = message("transports");
    let req = request(msg);
    let transports: Vec<&str> = req.vias.iter().map(|v| v.transport.as_str()).collect();
    assert_eq!(transports, vec!["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(req.call_id, "transports.kijh4akdnaqjkwendsasfdj");
}

/// §3.1.1.11 Multipart MIME Message (mpart01): binary body with NULs.
#[test]
fn mpart01() {
    let mut body = crlf(&[
        "--7a9cbec02ceef655",
        "Content-Type: text/plain",
        "Content-Transfer-Encoding: binary",
        "",
        "Hello",
        "--7a9cbec02ceef655",
        "Content-Type: application/octet-stream",
        "Content-Transfer-Encoding: binary",
        "",
    ]);
    body.extend(torture_messages::hex(torture_messages::MPART01_SIGNATURE));
    body.extend_from_slice(b"\r\n--7a9cbec02ceef655--\r\n");
    assert_eq!(body.len(), 553);
    let msg = with_body(
        &[
            "MESSAGE sip:kumiko@example.org SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport",
            "Max-Forwards: 70",
            "Route: <sip:127.0.0.1:5080>",
            "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=",
            "Contact: <sip:fluffy@127.0.0.1:5070>",
            "To: <sip:kumiko@example.org>",
            "From: <sip:fluffy@example.com>;tag=2fb0dcc9",
            "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            "CSeq: 1 MESSAGE",
            "Content-Transfer-Encoding: binary",
            "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655",
            "Date: Sat, 15 Oct 2005 04:44:56 GMT",
            "User-Agent: SIPimp.org/0.2.5 (curses)",
            "Content-Length: 553",
        ],
        &body,
    );
    let req = request(msg);
    assert_eq!(req.method, Method::Message);
    assert_eq!(req.vias[0].rport, Some(None));
    assert_eq!(req.vias[0].port, Some(5070));
    assert_eq!(
        req.content_type.as_deref(),
        Some("multipart/mixed;boundary=7a9cbec02ceef655")
    );
    assert_eq!(&req.body[..], &body[..]);
}

/// §3.1.1.12 Unusual Reason Phrase (unreason): a response, parsed as one.
#[test]
fn unreason() {
    let msg = message("unreason");
    let Ok(SipMessage::Response(resp)) = parse(msg) else {
        panic!("response expected")
    };
    assert_eq!(resp.code, 200);
    assert_eq!((resp.cseq, resp.cseq_method), (35, Method::Invite));
    assert_eq!(resp.to_tag.as_deref(), Some("2229"));
    assert_eq!(resp.call_id, "unreason.1234ksdfak3j2erwedfsASdf");
}

// ---- §3.1.2 invalid messages ----

/// §3.1.2.1 Extraneous Header Field Separators (badinv01): the Via `;;,;,,` has empty
/// parameters and values. Yields `BadHeader("Via")`; with no readable Via it cannot be
/// answered, so the request is dropped.
#[test]
fn badinv01() {
    let msg = message("badinv01");
    let f = failure(msg);
    assert_eq!(f.error, ParseError::BadHeader("Via".into()));
    assert_eq!(f.reply, None);
}

/// §3.1.2.2 Content Length Larger Than Message (clerr): `BadContentLength`, answered 400.
#[test]
fn clerr() {
    let mut body = b"\r\n".to_vec();
    body.extend(sdp("192.0.2.155", "192.0.2.155").into_bytes());
    let msg = with_body(
        &[
            "INVITE sip:user@example.com SIP/2.0",
            "Max-Forwards: 80",
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=93942939o2",
            "Contact: <sip:caller@hungry.example.net>",
            "Call-ID: clerr.0ha0isndaksdjweiafasdk3",
            "CSeq: 8 INVITE",
            "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523",
            "Content-Type: application/sdp",
            "Content-Length: 9999",
        ],
        &body,
    );
    let f = failure(msg);
    assert_eq!(f.error, ParseError::BadContentLength);
    assert_eq!(f.error.status_code(), 400);
    let ctx = f.reply.expect("answerable");
    assert_eq!(ctx.call_id, "clerr.0ha0isndaksdjweiafasdk3");
    assert_eq!(ctx.cseq, "8 INVITE");
}

/// §3.1.2.3 Negative Content-Length (ncl): `BadContentLength`, answered 400.
#[test]
fn ncl() {
    let msg = message("ncl");
    let f = failure(msg);
    assert_eq!(f.error, ParseError::BadContentLength);
    assert!(f.reply.is_some());
}

/// §3.1.2.4 Request Scalar Fields with Overlarge Values (scalar02): the CSeq number does
/// not fit (and Max-Forwards is 300). `BadHeader("CSeq")`; the raw CSeq is still echoed in
/// the 400.
#[test]
fn scalar02() {
    let msg = message("scalar02");
    let f = failure(msg);
    assert_eq!(f.error, ParseError::BadHeader("CSeq".into()));
    assert_eq!(
        f.reply.map(|c| c.cseq),
        Some("36893488147419103232 REGISTER".into())
    );
}

/// §3.1.2.6 Unterminated Quoted String in Display Name (quotbal): `BadHeader("To")`.
#[test]
fn quotbal() {
    let msg = message("quotbal");
    let f = failure(msg);
    assert_eq!(f.error, ParseError::BadHeader("To".into()));
    assert!(f.reply.is_some());
}

/// §3.1.2.7–3.1.2.10 Request-Line damage (ltgtruri, lwsruri, lwsstart, trws) and
/// §3.1.2.16 Unknown Protocol Version (badvers): `BadStartLine`, answered 400 since the
/// method is known.
#[test]
fn broken_request_lines() {
    for line in [
        "INVITE <sip:user@example.com> SIP/2.0",
        "INVITE sip:user@example.com; lr SIP/2.0",
        "INVITE  sip:user@example.com  SIP/2.0",
        "INVITE sip:user@example.com SIP/2.0  ",
        "INVITE sip:user@example.com SIP/7.0",
    ] {
        let msg = crlf(&[
            line,
            "To: sip:user@example.com",
            "From: sip:caller@example.net;tag=39291",
            "Max-Forwards: 23",
            "Call-ID: ltgtruri.1@192.0.2.5",
            "CSeq: 1 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.5",
            "Content-Length: 0",
            "",
        ]);
        let f = failure(msg);
        assert_eq!(f.error, ParseError::BadStartLine, "{line}");
        assert_eq!(f.reply.map(|c| c.method), Some(Method::Invite), "{line}");
    }
}

/// §3.3.1 Missing Required Header Fields (insuf):
/// `MissingHeader("From")`, answered 400 (Via and CSeq are readable).
#[test]
fn insuf() {
    let msg = message("insuf");
    let f = failure(msg);
    assert_eq!(f.error, ParseError::MissingHeader("From"));
    assert!(f.reply.is_some());
}

/// §3.3.2 Request-URI with Unknown Scheme (unkscm) and §3.3.3 Known but Atypical Scheme
/// (novelsc): parsed, with
/// `RequestUri::Other` for the UAS to answer 416.
#[test]
fn unknown_schemes() {
    for (uri, scheme) in [
        (
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "nobodyknowsthisscheme",
        ),
        ("soap.beep://192.0.2.103:3002", "soap.beep"),
    ] {
        let msg = crlf(&[
            &format!("OPTIONS {uri} SIP/2.0"),
            "To: sip:user@example.com",
            "From: sip:caller@example.net;tag=384",
            "Max-Forwards: 3",
            "Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34",
            "CSeq: 3923423 OPTIONS",
            "Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234",
            "Content-Length: 0",
            "",
        ]);
        assert_eq!(
            request(msg).uri,
            RequestUri::Other {
                scheme: scheme.into()
            }
        );
    }
}

/// §3.3.8 Multiple Values in Single Value Required Fields (multi01). The RFC's body
/// is 152 octets against `l: 154`, so this yields `BadContentLength` before the duplicates
/// are looked at; with the length corrected it yields `BadHeader("From")` (the first
/// duplicated single-value field checked). Both are answered 400.
#[test]
fn multi01() {
    let multi01 = |length: &str| {
        with_body(
            &[
                "INVITE sip:user@company.com SIP/2.0",
                "Contact: <sip:caller@host25.example.net>",
                "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
                "Max-Forwards: 70",
                "CSeq: 5 INVITE",
                "Call-ID: multi01.98asdh@192.0.2.1",
                "CSeq: 59 INVITE",
                "Call-ID: multi01.98asdh@192.0.2.2",
                "From: sip:caller@example.com;tag=3413415",
                "To: sip:user@example.com",
                "To: sip:other@example.net",
                "From: sip:caller@example.net;tag=2923420123",
                "Content-Type: application/sdp",
                length,
                "Contact: <sip:caller@host36.example.net>",
                "Max-Forwards: 5",
            ],
            sdp("192.0.2.25", "192.0.2.25").as_bytes(),
        )
    };
    let f = failure(multi01("l: 154"));
    assert_eq!(f.error, ParseError::BadContentLength);
    assert!(f.reply.is_some());
    let f = failure(multi01("l: 152"));
    assert_eq!(f.error, ParseError::BadHeader("From".into()));
    assert!(f.reply.is_some());
}

/// §3.3.9 Multiple Content-Length Values (mcl01): `BadContentLength`.
#[test]
fn mcl01() {
    let msg = message("mcl01");
    assert_eq!(failure(msg).error, ParseError::BadContentLength);
}

/// §3.1.2.19 Overlarge Response Code (bigcode): `BadStartLine`, never answered.
#[test]
fn bigcode() {
    let msg = message("bigcode");
    let f = failure(msg);
    assert_eq!(f.error, ParseError::BadStartLine);
    assert_eq!(f.reply, None);
}

/// §3.1.2.17 Start Line and CSeq Method Mismatch (mismatch01) and §3.1.2.18 Unknown
/// Method with CSeq Method Mismatch (mismatch02):
/// `BadHeader("CSeq")`, answered 400.
#[test]
fn mismatch01_and_02() {
    let mismatch01 = crlf(&[
        "OPTIONS sip:user@example.com SIP/2.0",
        "To: sip:j.user@example.com",
        "From: sip:caller@example.net;tag=34525",
        "Max-Forwards: 6",
        "Call-ID: mismatch01.dj0234sxdfl3",
        "CSeq: 8 INVITE",
        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
        "l: 0",
        "",
    ]);
    let mismatch02 = with_body(
        &[
            "NEWMETHOD sip:user@example.com SIP/2.0",
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=34525",
            "Max-Forwards: 6",
            "Call-ID: mismatch02.dj0234sxdfl3",
            "CSeq: 8 INVITE",
            "Contact: <sip:caller@host.example.net>",
            "Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw",
            "Content-Type: application/sdp",
            "l: 138",
        ],
        b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\n\
m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
    );
    for (msg, method) in [
        (mismatch01, Method::Options),
        (mismatch02, Method::Extension("NEWMETHOD".into())),
    ] {
        let f = failure(msg);
        assert_eq!(f.error, ParseError::BadHeader("CSeq".into()));
        let ctx = f.reply.expect("answerable");
        assert_eq!(ctx.method, method);
        assert_eq!(ctx.cseq, "8 INVITE");
    }
}

/// §3.3.5 Proxy-Require and Require (bext01):
/// well-formed; the UAS reads the option tags and answers 420 with Unsupported.
#[test]
fn bext01() {
    let msg = message("bext01");
    let req = request(msg);
    assert_eq!(
        req.header_tokens("Require"),
        vec!["nothingsupportsthis", "nothingsupportsthiseither"]
    );
}

/// §3.3.11 Max-Forwards of Zero (zeromf) parses; the UAS answers 483.
#[test]
fn zeromf() {
    let msg = message("zeromf");
    assert_eq!(request(msg).max_forwards, Some(0));
}

// ---- Every message to the running recorder ----

mod common;
#[path = "rfc4475/messages.rs"]
mod torture_messages;

use common::rtp::{Codec, Pacer, RtpSender, send_tones};
use common::{Msg, Recorder, SipClient, Transport as ClientTransport};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use torture_messages::{Expect, Torture};

/// How long an answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How long silence is waited for (and for a second, wrong, final answer).
const SILENCE_WAIT: Duration = Duration::from_millis(250);

/// Over UDP the recorder answers at the source address and the Via sent-by port, 5060 for
/// nearly every torture message: the sender sits on port 5060 of an address of 127/8 of its
/// own, so that the responses reach it.
fn torture_udp_client(server: SocketAddr) -> SipClient {
    for attempt in 0..50u32 {
        let octet = 2 + (std::process::id() + attempt * 37) % 250;
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, (octet % 7) as u8 + 1, octet as u8));
        if let Ok(client) = SipClient::udp_bound(SocketAddr::new(ip, 5060), server) {
            return client;
        }
    }
    panic!("no 127/8 address with port 5060 free");
}

/// The final answers to `torture`: waits up to `ANSWER_WAIT` for the first, then
/// `SILENCE_WAIT` for another one (there must be none).
fn final_answers(client: &mut SipClient, torture: &Torture, expect: Expect) -> Vec<Msg> {
    let mut finals = Vec::new();
    let first_wait = match expect {
        Expect::Status(_) => ANSWER_WAIT,
        Expect::StatusOrSilence(_) | Expect::Silence => SILENCE_WAIT,
    };
    let mut deadline = Instant::now() + first_wait;
    while let Some(m) = client.recv(deadline.saturating_duration_since(Instant::now())) {
        let ours = if torture.call_id.is_empty() {
            m.header("cseq").is_some_and(|c| c.starts_with("193942 "))
        } else {
            m.call_id() == torture.call_id
        };
        // Retransmissions (Timer G, 2xx until ACK) are the same bytes: counted once.
        if ours && m.status().is_some_and(|s| s >= 200) && !finals.contains(&m) {
            finals.push(m);
            deadline = Instant::now() + SILENCE_WAIT;
        }
    }
    finals
}

/// ACK a 2xx and hang up, so that the torture calls end cleanly.
fn ack_and_bye(client: &mut SipClient, ok: &Msg) {
    let target = ok
        .contact_uri()
        .unwrap_or_else(|| "sip:recorder@127.0.0.1".into());
    let (cseq, _) = ok.cseq();
    let line = |name: &str| ok.header(name).unwrap_or_default().to_string();
    for (method, n) in [("ACK", cseq), ("BYE", cseq + 1)] {
        client.send(&format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/{} {};branch=z9hG4bK{}\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            client.transport.as_str(),
            client.local,
            common::random_token(),
            line("from"),
            line("to"),
            ok.call_id()
        ));
    }
}

/// Sends every torture message, one after another, and returns what did not get the answer
/// it is owed.
fn torture_run(rec: &Recorder, transport: ClientTransport) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut shared = match transport {
        ClientTransport::Udp => torture_udp_client(rec.sip_addr),
        ClientTransport::Tcp => rec.tcp(),
    };
    let all = torture_messages::all();
    assert_eq!(all.len(), 49, "RFC 4475 has 49 messages");
    for torture in &all {
        let (expect, own) = match transport {
            ClientTransport::Udp => (torture.udp, false),
            ClientTransport::Tcp => (torture.tcp, torture.own_tcp_connection),
        };
        let mut own_client = own.then(|| rec.tcp());
        let client = own_client.as_mut().unwrap_or(&mut shared);
        client.send_bytes(&torture.bytes);
        let finals = final_answers(client, torture, expect);
        let codes: Vec<u16> = finals.iter().filter_map(Msg::status).collect();
        let fine = match (expect, codes.as_slice()) {
            (Expect::Silence, []) => true,
            (Expect::Status(ok) | Expect::StatusOrSilence(ok), [code]) => ok.contains(code),
            (Expect::StatusOrSilence(_), []) => true,
            _ => false,
        };
        if !fine {
            wrong.push(format!(
                "{} ({} {}): got {codes:?}, owed {expect:?}",
                torture.name,
                torture.section,
                transport.as_str()
            ));
        }
        for ok in finals
            .iter()
            .filter(|m| m.status() == Some(200) && m.cseq().1 == "INVITE")
        {
            ack_and_bye(client, ok);
        }
    }
    wrong
}

/// A real call with RTP in the background, then every RFC 4475 message over `transport`:
/// each gets the answer a recording UAS owes it, and the call loses no packet.
fn torture_against_recorder(transport: ClientTransport) {
    let rec = Recorder::start(&[]);
    let mut client = rec.udp();
    let mut call = common::Call::genesys(&client);
    let invite = call.invite_sdp(&common::rtp::media_sdp(1, &[Codec::Pcmu], "sendonly"));
    let ok = common::establish(&mut client, &mut call, &invite);
    let port = common::sdp_of(&ok).audio()[0].port;
    let mut sender = RtpSender::new(Codec::Pcmu, SocketAddr::new(rec.sip_addr.ip(), port), 440.0);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let media_done = done.clone();
    let media = std::thread::spawn(move || {
        let pacer = Pacer::new();
        // 20 ms packets in 1 s batches until the torture run is over.
        let mut tick = 0;
        while !media_done.load(std::sync::atomic::Ordering::Relaxed) {
            send_tones(&pacer, tick..tick + 50, &mut [&mut sender]);
            tick += 50;
        }
        sender.sent
    });
    let wrong = torture_run(&rec, transport);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = media.join().expect("RTP sender");
    common::hang_up(&mut client, &mut call);
    let (_, doc) = rec.wait_call_state(&call.call_id, "ended", Duration::from_secs(5));
    let stream = &doc["streams"][0];
    assert!(
        wrong.is_empty(),
        "{} of 49 RFC 4475 messages without the answer owed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(stream["packets_received"].as_u64(), Some(sent), "{doc}");
    assert_eq!(stream["packets_lost"].as_u64(), Some(0), "{doc}");
    assert_eq!(doc["end_reason"], "bye", "{doc}");
}

#[test]
fn every_rfc4475_message_over_udp_gets_its_answer_while_a_call_records() {
    torture_against_recorder(ClientTransport::Udp);
}

#[test]
fn every_rfc4475_message_over_tcp_gets_its_answer_while_a_call_records() {
    torture_against_recorder(ClientTransport::Tcp);
}
