//! The recorder's own offer, for an initial INVITE that came without SDP (delayed offer,
//! SPEC §3): one recvonly audio stream offering every storable codec. The answer arrives in
//! the ACK and is applied with [`super::answer_reoffer`].

use super::PortPool;
use super::answer::{
    AnswerConfig, AnswerError, Codec, Direction, MediaKind, MediaSession, NegotiatedStream,
};
use super::codec::{offer_codecs, storable_by_name};
use std::fmt::Write as _;
use std::net::IpAddr;

/// `telephone-event` (RFC 4733) at 8 kHz, offered so that DTMF is recorded
/// (`offer_codecs` keeps 101 free for it).
const TELEPHONE_EVENT_PT: u8 = 101;

/// Our offer for an INVITE without SDP. The session's one stream holds an allocated port and,
/// until the answer names the codec the SRC picked, the first storable codec.
pub fn offer_for_offerless_invite(
    cfg: &AnswerConfig,
    pool: &mut PortPool,
    session_id: u64,
) -> Result<MediaSession, AnswerError> {
    let codecs = offer_codecs();
    let port = pool.allocate().ok_or(AnswerError::NoPorts)?;
    let stream = NegotiatedStream {
        index: 0,
        kind: MediaKind::Audio,
        accepted: true,
        local_port: port,
        rtcp_mux: false,
        remote_addr: None,
        remote_port: 0,
        codec: codecs.first().cloned(),
        codecs: codecs.clone(),
        telephone_event: Some((TELEPHONE_EVENT_PT, 8000)),
        offered_direction: Direction::SendOnly,
        answered_direction: Direction::RecvOnly,
        label: None,
        srtp: None,
    };
    Ok(MediaSession {
        session_id,
        version: 1,
        // Empty: any answer differs from it, so `answer_reoffer` applies it.
        remote_origin: (String::new(), String::new(), String::new()),
        streams: vec![stream],
        answer_sdp: render_offer(session_id, cfg.media_ip, port, &codecs),
    })
}

fn render_offer(session_id: u64, media_ip: IpAddr, port: u16, codecs: &[Codec]) -> String {
    let family = match media_ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let mut out = format!(
        "v=0\r\no=sip-recorder {session_id} 1 IN {family} {media_ip}\r\n\
         s=sip-recorder\r\nc=IN {family} {media_ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP"
    );
    for c in codecs {
        let _ = write!(out, " {}", c.payload_type);
    }
    let _ = write!(out, " {TELEPHONE_EVENT_PT}\r\n");
    for c in codecs {
        let _ = write!(
            out,
            "a=rtpmap:{} {}/{}",
            c.payload_type, c.name, c.clock_rate
        );
        if c.channels != 1 {
            let _ = write!(out, "/{}", c.channels);
        }
        out.push_str("\r\n");
        if let Some(fmtp) = storable_by_name(&c.name).and_then(|s| s.fmtp) {
            let _ = write!(out, "a=fmtp:{} {fmtp}\r\n", c.payload_type);
        }
    }
    let _ = write!(
        out,
        "a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000\r\na=fmtp:{TELEPHONE_EVENT_PT} 0-16\r\n\
         a=recvonly\r\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::codec::{STORABLE, storable_by_static_pt};
    use crate::sdp::parse_offer;

    fn cfg() -> AnswerConfig {
        AnswerConfig {
            media_ip: "127.0.0.1".parse().expect("literal"),
            accept_video: false,
            srtp: Default::default(),
        }
    }

    #[test]
    fn offer_lists_every_storable_codec_recvonly() {
        let mut pool = PortPool::new(20000, 20009);
        let session = offer_for_offerless_invite(&cfg(), &mut pool, 42).expect("offer");
        let offer = parse_offer(session.answer_sdp.as_bytes()).expect("our offer parses");
        assert_eq!(offer.media.len(), 1);
        let m = &offer.media[0];
        assert_eq!(m.direction, Direction::RecvOnly);
        assert_eq!(m.port, session.streams[0].local_port);
        // One format per storable codec plus telephone-event, each with its rtpmap.
        assert_eq!(
            m.formats.len(),
            STORABLE.len() + 1,
            "{}",
            session.answer_sdp
        );
        for name in STORABLE.iter().map(|c| c.name) {
            assert!(
                session.answer_sdp.contains(&format!(" {name}/")),
                "{name} missing: {}",
                session.answer_sdp
            );
        }
        assert!(pool.is_allocated(m.port));
    }

    #[test]
    fn payload_types_are_unique_and_static_where_rfc_3551_has_one() {
        let codecs = offer_codecs();
        let mut pts: Vec<u8> = codecs.iter().map(|c| c.payload_type).collect();
        pts.push(TELEPHONE_EVENT_PT);
        let n = pts.len();
        pts.sort_unstable();
        pts.dedup();
        assert_eq!(pts.len(), n, "{codecs:?}");
        for c in &codecs {
            if let Some(s) = storable_by_static_pt(c.payload_type) {
                assert_eq!(s.name, c.name);
            }
        }
        // The table's order of preference: its first entry leads the offer.
        assert_eq!(codecs[0].name, STORABLE[0].name);
    }

    #[test]
    fn no_port_is_503_material() {
        let mut pool = PortPool::new(20000, 20000);
        let _taken = pool.allocate();
        assert_eq!(
            offer_for_offerless_invite(&cfg(), &mut pool, 1),
            Err(AnswerError::NoPorts)
        );
    }
}
