//! Every message of RFC 4475 (SIP Torture Test Messages), as bytes on the wire: CRLF line
//! ends, `<allOneLine>` joined, `<repeat>` expanded, `<hex>` decoded. Named by the RFC's file
//! names; `Expect` is what a recording UAS owes each one (see `tests/rfc4475_torture.rs`).

/// The final answer a message must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One of these final status codes.
    Status(&'static [u16]),
    /// A final status from the list, or no answer at all (an invalid request that cannot be
    /// answered reliably, or that a stream transport cannot even frame).
    StatusOrSilence(&'static [u16]),
    /// Nothing: responses are never answered, nor is a request whose Via is unreadable.
    Silence,
}

pub struct Torture {
    pub name: &'static str,
    /// RFC 4475 section.
    pub section: &'static str,
    pub bytes: Vec<u8>,
    /// The Call-ID its answers carry (responses are matched on it).
    pub call_id: &'static str,
    pub udp: Expect,
    pub tcp: Expect,
    /// Breaks Content-Length framing on a stream: sent over TCP on a connection of its own.
    pub own_tcp_connection: bool,
}

/// Head lines joined with CRLF, the empty line, then the body with CRLF line ends.
fn msg(head: &str, body: &str) -> Vec<u8> {
    let head = head.strip_prefix('\n').unwrap_or(head);
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.replace('\n', "\r\n").as_bytes());
    out
}

/// The SDP most messages carry.
fn sdp(o: &str, c: &str) -> String {
    format!(
        "v=0\no=mhandley 29739 7272939 IN IP4 {o}\ns=-\nc=IN IP4 {c}\nt=0 0\n\
m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
    )
}

pub fn hex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(digits, 16).expect("hex digit")
        })
        .collect()
}

/// The S/MIME signature in mpart01 (342 octets of DER, including NULs).
pub const MPART01_SIGNATURE: &str = "3082015206092A864886F70D010702A08201433082013F0201013109300706052B0E03021A300B06092A864886F70D010701318201203082011C020101307C3070310B3009060355040613025553311330110603550408130A43616C69666F726E69613111300F0603550407130853616E204A6F7365310E300C060355040A1305736970697431293027060355040B13205369706974205465737420436572746966696361746520417574686F7269747902080195007102330113300706052B0E03021A300D06092A864886F70D01010105000481808EF466F948F0522DD2E5978E9D95AAE9F2FE15A06659716292E8DA2AA8D8350A68CEFFAE3CBD2BFF1675DDD5648E593DD64728F26220F7E941749E330D9A15EDABDB93D10C42102E7B7289D29CC0C9AE2EFBC7C0CFF9172F3B027E4FC027E1546DE4B6AA3ABB3E66CCCB5DD6C64B8383149CB8E6FF182D944FE57B65BC99D005";

const OK: Expect = Expect::Status(&[200]);
const BAD: Expect = Expect::StatusOrSilence(&[400]);
const NOT_ALLOWED: Expect = Expect::Status(&[405]);

fn t(
    name: &'static str,
    section: &'static str,
    call_id: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
) -> Torture {
    Torture {
        name,
        section,
        bytes,
        call_id,
        udp: expect,
        tcp: expect,
        own_tcp_connection: false,
    }
}

/// A message whose Content-Length a stream cannot frame: over TCP the recorder waits for
/// bytes that never come, or closes the connection.
fn unframeable(mut torture: Torture, tcp: Expect) -> Torture {
    torture.tcp = tcp;
    torture.own_tcp_connection = true;
    torture
}

fn wsinv() -> Vec<u8> {
    msg(
        r#"
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33"#,
        &sdp("192.0.2.3", "192.0.2.4"),
    )
}

fn intmeth() -> Vec<u8> {
    let head = [
        "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0",
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
        "To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
        r#"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="работающий";tag=_token~1'+`*%!-."#,
        r#"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#,
        "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~",
        "Max-Forwards: 255",
        "extensionHeader-!.%*+_`'~:\u{FEFF}大停電",
        "Content-Length: 0",
    ];
    msg(&head.join("\n"), "")
}

fn longreq() -> Vec<u8> {
    let mut head = vec![
        "INVITE sip:user@example.com SIP/2.0".to_string(),
        format!(
            "To: \"I have a user name of {} proportion\"<sip:user@example.com:6000;unknownparam1=very{}value;longparam{}=shortvalue;very{}ParameterNameWithNoValue>",
            "extreme".repeat(10),
            "long".repeat(20),
            "name".repeat(25),
            "long".repeat(25)
        ),
        format!(
            "F: sip:{}@example.net;tag=12{}424;unknownheaderparam{}=unknowheaderparam{};unknownValueless{}",
            "amazinglylongcallername".repeat(5),
            "982".repeat(50),
            "name".repeat(20),
            "value".repeat(15),
            "paramname".repeat(10)
        ),
        format!("Call-ID: longreq.one{}longcallid", "really".repeat(20)),
        "CSeq: 3882340 INVITE".to_string(),
        format!(
            "Unknown-{}-Name: unknown-{l}-value; unknown-{l}-parameter-name = unknown-{l}-parameter-value",
            "Long".repeat(20),
            l = "long".repeat(20)
        ),
    ];
    let via_names = [
        "Via: ", "v: ", "V: ", "Via: ", "ViA: ", "VIa: ", "VIA: ", "via: ", "viA: ", "vIa: ",
        "vIA: ", "V :  ", "v :  ", "V  : ", "v  : ", "Via : ", "Via  : ",
    ];
    for n in (1..=33).rev() {
        let name = via_names.get(33 - n).copied().unwrap_or("Via: ");
        head.push(format!("{name}SIP/2.0/TCP sip{n}.example.com"));
    }
    head.push(format!(
        "Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{}branchvalue",
        "long".repeat(50)
    ));
    head.push("Max-Forwards: 70".into());
    head.push(format!(
        "Contact: <sip:{}@host5.example.net>",
        "amazinglylongcallername".repeat(5)
    ));
    head.push("Content-Type: application/sdp".into());
    head.push("l: 150".into());
    msg(&head.join("\n"), &sdp("192.0.2.1", "192.0.2.1"))
}

fn mpart01() -> Vec<u8> {
    let mut body = b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nHello\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    body.extend(hex(MPART01_SIGNATURE));
    body.extend_from_slice(b"\r\n--7a9cbec02ceef655--\r\n");
    assert_eq!(body.len(), 553);
    let mut out = msg(
        "MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: 553",
        "",
    );
    out.extend(body);
    out
}

/// RFC 4475 §3.1.1 valid messages.
fn valid() -> Vec<Torture> {
    vec![
        // In-dialog (To tag) INVITE for a dialog the recorder does not know.
        t(
            "wsinv",
            "3.1.1.1",
            "wsinv.ndaksdj@192.0.2.1",
            wsinv(),
            Expect::Status(&[481]),
        ),
        t(
            "intmeth",
            "3.1.1.2",
            r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#,
            intmeth(),
            Expect::Status(&[501]),
        ),
        t(
            "esc01",
            "3.1.1.3",
            "esc01.239409asdfakjkn23onasd0-3234",
            msg(
                "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150",
                &sdp("192.0.2.1", "192.0.2.1"),
            ),
            OK,
        ),
        t(
            "escnull",
            "3.1.1.4",
            "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
            msg(
                "REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0",
                "",
            ),
            NOT_ALLOWED,
        ),
        t(
            "esc02",
            "3.1.1.5",
            "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
            msg(
                r#"RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0"#,
                "",
            ),
            Expect::Status(&[501]),
        ),
        t(
            "lwsdisp",
            "3.1.1.6",
            "lwsdisp.1234abcd@funky.example.com",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0",
                "",
            ),
            OK,
        ),
        t(
            "longreq",
            "3.1.1.7",
            "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
            longreq(),
            OK,
        ),
        // Over UDP the INVITE after the REGISTER is trailing noise (RFC 3261 §18.3); over TCP
        // it is a second message of its own.
        // Its INVITE's Content-Length is 3 short of its body: a stream stays out of step, so
        // over TCP it goes on a connection of its own.
        unframeable(
            t(
                "dblreq",
                "3.1.1.8",
                "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
                msg(
                    "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0

INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150",
                    "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.15\ns=-\nc=IN IP4 192.0.2.15\nt=0 0\nm=audio 49217 RTP/AVP 0 12\nm =video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n",
                ),
                NOT_ALLOWED,
            ),
            NOT_ALLOWED,
        ),
        t(
            "semiuri",
            "3.1.1.9",
            "semiuri.0ha0isndaksdj",
            msg(
                "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0",
                "",
            ),
            OK,
        ),
        t(
            "transports",
            "3.1.1.10",
            "transports.kijh4akdnaqjkwendsasfdj",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0",
                "",
            ),
            OK,
        ),
        t(
            "mpart01",
            "3.1.1.11",
            "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            mpart01(),
            NOT_ALLOWED,
        ),
        t(
            "unreason",
            "3.1.1.12",
            "unreason.1234ksdfak3j2erwedfsASdf",
            msg(
                "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>",
                &sdp("192.0.2.198", "192.0.2.198"),
            ),
            Expect::Silence,
        ),
        t(
            "noreason",
            "3.1.1.13",
            "noreason.asndj203insdf99223ndf",
            msg(
                "SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>",
                "",
            ),
            Expect::Silence,
        ),
    ]
}

/// RFC 4475 §3.1.2 invalid messages.
fn invalid() -> Vec<Torture> {
    vec![
        // The Via cannot be read: there is nowhere to send an answer.
        t("badinv01", "3.1.2.1", "badinv01.0ha0isndaksdjasdf3234nas", msg(
            r#"INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 152
Content-Type: application/sdp"#, &sdp("192.0.2.15", "192.0.2.15")), Expect::Silence),
        unframeable(t("clerr", "3.1.2.2", "clerr.0ha0isndaksdjweiafasdk3", msg(
            "INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999", &sdp("192.0.2.155", "192.0.2.155")), Expect::Status(&[400])), Expect::Silence),
        unframeable(t("ncl", "3.1.2.3", "ncl.0ha0isndaksdj2193423r542w35", msg(
            "INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999", &sdp("192.0.2.53", "192.0.2.53")), Expect::Status(&[400])), BAD),
        t("scalar02", "3.1.2.4", "scalar02.23o0pd9vanlq3wnrlnewofjas9ui32", msg(
            &format!("REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1{}
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0", "0".repeat(100)), ""), BAD),
        t("scalarlg", "3.1.2.5", "scalarlg.noase0of0234hn2qofoaf0232aewf2394r", msg(
            r#"SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0"#, ""), Expect::Silence),
        t("quotbal", "3.1.2.6", "quotbal.aksdj", msg(
            r#"INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: 152"#, &sdp("192.0.2.15", "192.0.2.15")), BAD),
        t("ltgtruri", "3.1.2.7", "ltgtruri.1@192.0.2.5", msg(
            "INVITE <sip:user@example.com> SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 159", "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.5\ns=-\nc=IN IP4 192.0.2.5\nt=3149328700 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"), BAD),
        t("lwsruri", "3.1.2.8", "lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423", msg(
            "INVITE sip:user@example.com; lr SIP/2.0
To: sip:user@example.com;tag=3xfe-9921883-z9f
From: sip:caller@example.net;tag=231413434
Max-Forwards: 5
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423
CSeq: 2130706432 INVITE
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 159", "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=3149328700 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"), BAD),
        t("lwsstart", "3.1.2.9", "lwsstart.dfknq234oi243099adsdfnawe3@example.com", msg(
            "INVITE  sip:user@example.com  SIP/2.0
Max-Forwards: 8
To: sip:user@example.com
From: sip:caller@example.net;tag=8814
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com
CSeq: 1893884 INVITE
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 150", &sdp("192.0.2.1", "192.0.2.1")), BAD),
        t("trws", "3.1.2.10", "trws.oicu34958239neffasdhr2345r", msg(
            "OPTIONS sip:remote-target@example.com SIP/2.0  \nVia: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093
To: <sip:remote-target@example.com>
From: <sip:local-resource@example.com>;tag=329429089
Call-ID: trws.oicu34958239neffasdhr2345r
Accept: application/sdp
CSeq: 238923 OPTIONS
Max-Forwards: 70
Content-Length: 0", ""), BAD),
        // Escaped headers in a Request-URI: the recorder takes the request as it stands.
        t("escruri", "3.1.2.11", "escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5", msg(
            "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: 150", &sdp("192.0.2.1", "192.0.2.1")), Expect::Status(&[200, 400])),
        // A Date in another time zone is informational: the call is recorded.
        t("baddate", "3.1.2.12", "baddate.239423mnsadf3j23lj42--sedfnm234", msg(
            "INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150", &sdp("192.0.2.5", "192.0.2.5")), OK),
        // The recorder does not register anyone: 405 whatever the Contact, or 400.
        t("regbadct", "3.1.2.13", "regbadct.k345asrl3fdbv@10.0.0.1", msg(
            "REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0", ""), Expect::Status(&[400, 405])),
        t("badaspec", "3.1.2.14", "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3", msg(
            r#"OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0"#, ""), BAD),
        t("baddn", "3.1.2.15", "baddn.31415@c.example.com", msg(
            "OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0", ""), BAD),
        t("badvers", "3.1.2.16", "badvers.31417@c.example.com", msg(
            "OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0", ""), Expect::StatusOrSilence(&[400, 505])),
        t("mismatch01", "3.1.2.17", "mismatch01.dj0234sxdfl3", msg(
            "OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0", ""), BAD),
        t("mismatch02", "3.1.2.18", "mismatch02.dj0234sxdfl3", msg(
            "NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: 138", "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\nc=IN IP4 192.0.2.1\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"), Expect::StatusOrSilence(&[400, 501])),
        t("bigcode", "3.1.2.19", "bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i", msg(
            "SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>", ""), Expect::Silence),
    ]
}

/// RFC 4475 §3.2 transaction layer, §3.3 application layer, §3.4 backward compatibility.
fn semantics() -> Vec<Torture> {
    vec![
        // A branch of just the cookie: an unusual but usable transaction id.
        t(
            "badbranch",
            "3.2.1",
            "badbranch.sadonfo23i420jv0as0derf3j3n",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK
Accept: application/sdp
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0",
                "",
            ),
            OK,
        ),
        t(
            "insuf",
            "3.3.1",
            "",
            msg(
                "INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 152",
                &sdp("192.0.2.95", "192.0.2.95"),
            ),
            BAD,
        ),
        t(
            "unkscm",
            "3.3.2",
            "unkscm.nasdfasser0q239nwsdfasdkl34",
            msg(
                "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0",
                "",
            ),
            Expect::Status(&[416]),
        ),
        t(
            "novelsc",
            "3.3.3",
            "novelsc.asdfasser0q239nwsdfasdkl34",
            msg(
                "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0",
                "",
            ),
            Expect::Status(&[416]),
        ),
        t(
            "unksm2",
            "3.3.4",
            "unksm2.daksdj@hyphenated-host.example.com",
            msg(
                "REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0",
                "",
            ),
            Expect::Status(&[400, 405]),
        ),
        t(
            "bext01",
            "3.3.5",
            "bext01.0ha0isndaksdj",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.net;tag=242etr
Max-Forwards: 6
Call-ID: bext01.0ha0isndaksdj
Require: nothingSupportsThis, nothingSupportsThisEither
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis
CSeq: 8 OPTIONS
Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw
Content-Length: 0",
                "",
            ),
            Expect::Status(&[420]),
        ),
        t(
            "invut",
            "3.3.6",
            "invut.0ha0isndaksdjadsfij34n23d",
            msg(
                "INVITE sip:user@example.com SIP/2.0
Contact: <sip:caller@host5.example.net>
To: sip:j.user@example.com
From: sip:caller@example.net;tag=8392034
Max-Forwards: 70
Call-ID: invut.0ha0isndaksdjadsfij34n23d
CSeq: 235448 INVITE
Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw
Content-Type: application/unknownformat
Content-Length: 40",
                "<audio>\n <pcmu port=\"443\"/>\n</audio>\n",
            ),
            Expect::Status(&[415]),
        ),
        t(
            "regaut01",
            "3.3.7",
            "regaut01.0ha0isndaksdj",
            msg(
                "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=87321hj23128
Max-Forwards: 8
Call-ID: regaut01.0ha0isndaksdj
CSeq: 9338 REGISTER
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw
Authorization: NoOneKnowsThisScheme opaque-data=here
Content-Length:0",
                "",
            ),
            NOT_ALLOWED,
        ),
        t(
            "multi01",
            "3.3.8",
            "multi01.98asdh@192.0.2.1",
            msg(
                "INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: 154
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5",
                &sdp("192.0.2.25", "192.0.2.25"),
            ),
            BAD,
        ),
        unframeable(
            t(
                "mcl01",
                "3.3.9",
                "mcl01.fhn2323orihawfdoa3o4r52o3irsdf",
                msg(
                    "OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain",
                    "There's no way to know how many octets are supposed to be here.\n",
                ),
                BAD,
            ),
            BAD,
        ),
        t(
            "bcast",
            "3.3.10",
            "bcast.0384840201234ksdfak3j2erwedfsASdf",
            msg(
                "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>",
                &sdp("192.0.2.198", "192.0.2.198"),
            ),
            Expect::Silence,
        ),
        t(
            "zeromf",
            "3.3.11",
            "zeromf.jfasdlfnm2o2l43r5u0asdfas",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=3ghsd41
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
Content-Length: 0",
                "",
            ),
            Expect::Status(&[483]),
        ),
        t(
            "cparam01",
            "3.3.12",
            "cparam01.70710@saturn.example.com",
            msg(
                "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam01.70710@saturn.example.com
CSeq: 2 REGISTER
Contact: sip:+19725552222@gw1.example.net;unknownparam
l: 0",
                "",
            ),
            NOT_ALLOWED,
        ),
        t(
            "cparam02",
            "3.3.13",
            "cparam02.70710@saturn.example.com",
            msg(
                "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=838293
To: sip:watson@example.com
Call-ID: cparam02.70710@saturn.example.com
CSeq: 3 REGISTER
Contact: <sip:+19725552222@gw1.example.net;unknownparam>
l: 0",
                "",
            ),
            NOT_ALLOWED,
        ),
        t(
            "regescrt",
            "3.3.14",
            "regescrt.k345asrl3fdbv@192.0.2.1",
            msg(
                "REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=8
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>
L:0",
                "",
            ),
            NOT_ALLOWED,
        ),
        // Accept excludes SDP, but an answer is SDP: 406 (RFC 3261 §21.4.7).
        t(
            "sdp01",
            "3.3.15",
            "sdp01.ndaksdj9342dasdd",
            msg(
                "INVITE sip:user@example.com SIP/2.0
To: sip:j_user@example.com
Contact: <sip:caller@host15.example.net>
From: sip:caller@example.net;tag=234
Max-Forwards: 5
Call-ID: sdp01.ndaksdj9342dasdd
Accept: text/nobodyKnowsThis
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw
Content-Length: 150
Content-Type: application/sdp",
                &sdp("192.0.2.5", "192.0.2.5"),
            ),
            Expect::Status(&[406]),
        ),
        // RFC 2543 syntax: no branch, no From tag, no Content-Length (so over TCP the body is
        // not part of it: an INVITE without SDP, which gets the recorder's offer).
        unframeable(
            t(
                "inv2543",
                "3.4.1",
                "inv2543.1717@ift.client.example.com",
                msg(
                    "INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp",
                    "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.5\ns=-\nc=IN IP4 192.0.2.5\nt=0 0\nm=audio 49217 RTP/AVP 0\n",
                ),
                OK,
            ),
            OK,
        ),
    ]
}

/// All 49 messages of RFC 4475, in the RFC's order.
pub fn all() -> Vec<Torture> {
    let mut all = valid();
    all.extend(invalid());
    all.extend(semantics());
    all
}
