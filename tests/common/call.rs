//! Builders for the raw SIP requests a recording client sends, kept per call (dialog).

use super::client::{SipClient, Transport};
use super::msg::Msg;
use std::net::SocketAddr;

pub fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn new_branch() -> String {
    format!("z9hG4bK{}", random_token())
}

/// The Genesys Media Server recording Request-URI (SPEC §1.1).
pub fn genesys_uri(server: SocketAddr, record_id: &str, calluuid: &str) -> String {
    format!(
        "sip:record={record_id}@{server};calluuid={calluuid};dn=1001;otherDN=1002;recordDN=1001"
    )
}

/// What the recorder is dialled as by CMS: the user part carries no meaning.
pub fn cms_uri(server: SocketAddr) -> String {
    format!("sip:recording@{server}")
}

pub fn siprec_uri(server: SocketAddr) -> String {
    format!("sip:srs@{server}")
}

fn sdp_head(version: u64) -> String {
    format!(
        "v=0\r\no=client 4242 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    )
}

fn pcmu_audio(port: u16, direction: &str) -> String {
    format!(
        "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n"
    )
}

/// Genesys offer: one audio m= line per party (dn, otherDN), PCMU + telephone-event.
pub fn genesys_sdp(version: u64, direction: &str) -> String {
    format!(
        "{}{}{}",
        sdp_head(version),
        pcmu_audio(41000, direction),
        pcmu_audio(41002, direction)
    )
}

/// One audio m= line.
pub fn single_audio_sdp(version: u64, direction: &str) -> String {
    format!("{}{}", sdp_head(version), pcmu_audio(41000, direction))
}

/// CMS offer: G722/PCMU/PCMA audio, H264 video and BFCP, all sendrecv.
pub fn cms_sdp(version: u64) -> String {
    format!(
        "{}m=audio 42000 RTP/AVP 9 0 8 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n\
m=video 42002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42801f;packetization-mode=1\r\na=content:main\r\na=sendrecv\r\n\
m=application 5070 UDP/BFCP *\r\na=floorctrl:c-s\r\na=confid:1\r\na=userid:2\r\na=floorid:1 mstrm:3\r\na=setup:actpass\r\na=connection:new\r\n",
        sdp_head(version)
    )
}

/// An offer whose only audio codec the recorder cannot store.
pub fn unsupported_codec_sdp(version: u64) -> String {
    format!(
        "{}m=audio 43000 RTP/AVP 96\r\na=rtpmap:96 AMR-WB/16000\r\na=fmtp:96 octet-align=1\r\na=sendonly\r\n",
        sdp_head(version)
    )
}

/// SIPREC offer: two audio streams tied to the metadata through `a=label`.
pub fn siprec_sdp(version: u64) -> String {
    format!(
        "{}m=audio 44000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=label:1\r\na=sendonly\r\n\
m=audio 44002 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=label:2\r\na=sendonly\r\n",
        sdp_head(version)
    )
}

/// RFC 7865 metadata for the two streams of `siprec_sdp`.
pub fn siprec_metadata() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
  </session>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:alice@example.com"><name xml:lang="en">Alice</name></nameID>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:bob@example.com"><name xml:lang="en">Bob</name></nameID>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>1</label>
  </stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>2</label>
  </stream>
  <sessionrecordingassoc session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2024-01-01T10:00:00Z</associate-time>
  </sessionrecordingassoc>
  <participantsessionassoc participant_id="srfBElmCRp2QB23b7Mpk0w==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2024-01-01T10:00:00Z</associate-time>
  </participantsessionassoc>
  <participantsessionassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2024-01-01T10:00:00Z</associate-time>
  </participantsessionassoc>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send>
    <recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send>
    <recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
</recording>
"#
    .replace('\n', "\r\n")
}

pub const SIPREC_BOUNDARY: &str = "OSS-unique-boundary-42";

/// `multipart/mixed` body: the SDP part and the metadata part.
pub fn siprec_body(version: u64) -> String {
    format!(
        "--{b}\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--{b}\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{meta}\r\n--{b}--\r\n",
        b = SIPREC_BOUNDARY,
        sdp = siprec_sdp(version),
        meta = siprec_metadata()
    )
}

/// One call (dialog) as the client sees it.
#[derive(Debug, Clone)]
pub struct Call {
    pub transport: Transport,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: Option<String>,
    pub request_uri: String,
    pub to_uri: String,
    /// CSeq of the last request this side sent.
    pub cseq: u32,
    pub invite_cseq: u32,
    pub invite_branch: String,
    pub invite_uri: String,
    /// The last INVITE as sent, for retransmission.
    pub last_invite: String,
    /// The recorder's Contact, where in-dialog requests go.
    pub remote_target: Option<String>,
    /// Extra Contact header parameters (`;+sip.src` for SIPREC).
    pub contact_params: String,
}

impl Call {
    pub fn new(client: &SipClient, request_uri: &str) -> Call {
        Call::between(client.transport, client.local, client.server, request_uri)
    }

    /// A dialog from `local` to `server` (a TLS client builds its requests for TCP).
    pub fn between(
        transport: Transport,
        local: SocketAddr,
        server: SocketAddr,
        request_uri: &str,
    ) -> Call {
        Call {
            transport,
            local,
            server,
            call_id: format!("{}@127.0.0.1", random_token()),
            from_tag: random_token()[..10].to_string(),
            to_tag: None,
            request_uri: request_uri.to_string(),
            // The To URI is the Request-URI without its parameters.
            to_uri: request_uri
                .split(';')
                .next()
                .unwrap_or(request_uri)
                .to_string(),
            cseq: 0,
            invite_cseq: 0,
            invite_branch: String::new(),
            invite_uri: String::new(),
            last_invite: String::new(),
            remote_target: None,
            contact_params: String::new(),
        }
    }

    pub fn genesys(client: &SipClient) -> Call {
        let uri = genesys_uri(client.server, &random_token(), &random_token());
        Call::new(client, &uri)
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.transport.as_str(),
            self.local
        )
    }

    fn contact(&self) -> String {
        let tp = match self.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        format!("<sip:client@{}{tp}>{}", self.local, self.contact_params)
    }

    fn to_header(&self, with_tag: bool) -> String {
        match (&self.to_tag, with_tag) {
            (Some(t), true) => format!("<{}>;tag={t}", self.to_uri),
            _ => format!("<{}>", self.to_uri),
        }
    }

    /// A request of this dialog, `method` to `uri`: by default on a new branch, CSeq 1,
    /// without the To tag, without extra headers or body.
    pub fn request<'a>(&'a self, method: &'a str, uri: &str) -> Request<'a> {
        Request {
            call: self,
            method,
            uri: uri.to_string(),
            branch: new_branch(),
            cseq: 1,
            to_tag: false,
            headers: "",
            content_type: None,
            body: "",
        }
    }

    /// Initial INVITE (or any out-of-dialog INVITE) with the given body.
    pub fn invite(&mut self, extra: &str, content_type: Option<&str>, body: &str) -> String {
        self.cseq += 1;
        self.invite_cseq = self.cseq;
        self.invite_branch = new_branch();
        let uri = self.request_uri.clone();
        self.invite_uri = uri.clone();
        let msg = self
            .request("INVITE", &uri)
            .branch(&self.invite_branch)
            .cseq(self.cseq)
            .headers(extra)
            .body(content_type, body)
            .build();
        self.last_invite = msg.clone();
        msg
    }

    pub fn invite_sdp(&mut self, sdp: &str) -> String {
        self.invite("", Some("application/sdp"), sdp)
    }

    pub fn genesys_invite(&mut self) -> String {
        self.invite_sdp(&genesys_sdp(1, "sendonly"))
    }

    pub fn cms_invite(&mut self) -> String {
        self.invite(
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\nSupported: timer\r\n",
            Some("application/sdp"),
            &cms_sdp(1),
        )
    }

    pub fn siprec_invite(&mut self) -> String {
        self.contact_params = ";+sip.src".to_string();
        let ct = format!("multipart/mixed;boundary={SIPREC_BOUNDARY}");
        self.invite(
            "Require: siprec\r\nAccept: application/sdp, application/rs-metadata+xml, application/rs-metadata\r\n",
            Some(&ct),
            &siprec_body(1),
        )
    }

    /// Records the dialog state of a 2xx to our INVITE.
    pub fn learn(&mut self, resp: &Msg) {
        if let Some(tag) = resp.tag_of_to() {
            self.to_tag = Some(tag);
        }
        if let Some(c) = resp.contact_uri() {
            self.remote_target = Some(c);
        }
    }

    fn target(&self) -> String {
        self.remote_target
            .clone()
            .unwrap_or_else(|| self.request_uri.clone())
    }

    /// ACK for a 2xx: its own transaction (new branch), sent to the remote target, with the
    /// CSeq number of the INVITE that 2xx answers.
    pub fn ack_2xx(&mut self, resp: &Msg) -> String {
        self.learn(resp);
        let target = self.target();
        self.request("ACK", &target)
            .cseq(resp.cseq().0)
            .with_to_tag()
            .build()
    }

    /// ACK for a non-2xx final response: part of the INVITE transaction (same branch and
    /// Request-URI), To tag from the response (RFC 3261 §17.1.1.3).
    pub fn ack_non2xx(&self, resp: &Msg) -> String {
        let mut c = self.clone();
        c.to_tag = resp.tag_of_to();
        c.request("ACK", &self.invite_uri)
            .branch(&self.invite_branch)
            .cseq(resp.cseq().0)
            .with_to_tag()
            .build()
    }

    /// CANCEL of the pending INVITE (same branch, same CSeq number).
    pub fn cancel(&self) -> String {
        self.request("CANCEL", &self.invite_uri)
            .branch(&self.invite_branch)
            .cseq(self.invite_cseq)
            .build()
    }

    /// Any in-dialog request with a new CSeq and branch.
    pub fn in_dialog(
        &mut self,
        method: &str,
        extra: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> String {
        self.cseq += 1;
        let target = self.target();
        let branch = new_branch();
        let msg = self
            .request(method, &target)
            .branch(&branch)
            .cseq(self.cseq)
            .with_to_tag()
            .headers(extra)
            .body(content_type, body)
            .build();
        if method == "INVITE" {
            self.invite_cseq = self.cseq;
            self.invite_branch = branch;
            self.invite_uri = target;
            self.last_invite = msg.clone();
        }
        msg
    }

    pub fn bye(&mut self) -> String {
        self.in_dialog("BYE", "", None, "")
    }

    /// re-INVITE carrying `sdp` (whose o= version the caller controls).
    pub fn reinvite(&mut self, sdp: &str, extra: &str) -> String {
        self.in_dialog("INVITE", extra, Some("application/sdp"), sdp)
    }

    /// In-dialog INVITE with an explicit CSeq number (for the out-of-order check); becomes
    /// the pending INVITE for `ack_non2xx`.
    pub fn reinvite_with_cseq(&mut self, cseq: u32, sdp: &str) -> String {
        let target = self.target();
        let branch = new_branch();
        let msg = self
            .request("INVITE", &target)
            .branch(&branch)
            .cseq(cseq)
            .with_to_tag()
            .body(Some("application/sdp"), sdp)
            .build();
        self.invite_cseq = cseq;
        self.invite_branch = branch;
        self.invite_uri = target;
        msg
    }
}

/// An out-of-dialog OPTIONS.
pub fn options_request(client: &SipClient) -> String {
    let call = Call::new(client, &format!("sip:recorder@{}", client.server));
    call.request("OPTIONS", &call.request_uri)
        .headers("Accept: application/sdp\r\n")
        .build()
}

/// A request of a `Call` being put together (`Call::request`); `build` writes it out.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    call: &'a Call,
    method: &'a str,
    uri: String,
    branch: String,
    cseq: u32,
    to_tag: bool,
    headers: &'a str,
    content_type: Option<&'a str>,
    body: &'a str,
}

impl<'a> Request<'a> {
    pub fn branch(mut self, branch: &str) -> Request<'a> {
        self.branch = branch.to_string();
        self
    }

    pub fn cseq(mut self, cseq: u32) -> Request<'a> {
        self.cseq = cseq;
        self
    }

    /// The To header carries the tag the recorder gave the dialog.
    pub fn with_to_tag(mut self) -> Request<'a> {
        self.to_tag = true;
        self
    }

    /// Raw header lines, each ending in CRLF.
    pub fn headers(mut self, extra: &'a str) -> Request<'a> {
        self.headers = extra;
        self
    }

    pub fn body(mut self, content_type: Option<&'a str>, body: &'a str) -> Request<'a> {
        self.content_type = content_type;
        self.body = body;
        self
    }

    /// The complete request text.
    pub fn build(self) -> String {
        let (call, method, cseq) = (self.call, self.method, self.cseq);
        let mut m = format!(
            "{method} {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: \"Client\" <sip:client@{}>;tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            self.uri,
            call.via(&self.branch),
            call.local,
            call.from_tag,
            call.to_header(self.to_tag),
            call.call_id,
        );
        if method != "CANCEL" && method != "ACK" && method != "BYE" {
            m.push_str(&format!("Contact: {}\r\n", call.contact()));
        }
        m.push_str("User-Agent: sip-recorder-tests\r\n");
        m.push_str(self.headers);
        if let Some(ct) = self.content_type {
            m.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        m.push_str(&format!(
            "Content-Length: {}\r\n\r\n{}",
            self.body.len(),
            self.body
        ));
        m
    }
}
