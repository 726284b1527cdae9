//! Offer parsing: `ezk-sdp-types` for the typed values, a light line scan for what its model
//! drops (media types it does not know, non-numeric formats, raw attribute values).

use super::answer::{Direction, MediaKind, Offer, OfferedMedia, SdpError};
use super::codec::{self, RtpMapEntry};
use ezk_sdp_types::{SessionDescription, TaggedAddress};
use std::net::IpAddr;

/// More m= lines than any recording source sends; bounds the work a hostile offer causes.
pub(crate) const MAX_MEDIA: usize = 64;

/// One `a=` line: name and optional value.
type Attr<'a> = (&'a str, Option<&'a str>);

/// The line-level view of an offer. Tolerant: only what the recorder needs is validated.
struct RawSdp<'a> {
    origin: [&'a str; 3],
    connection: Option<&'a str>,
    attrs: Vec<Attr<'a>>,
    media: Vec<RawMedia<'a>>,
}

struct RawMedia<'a> {
    media_type: &'a str,
    port: u16,
    protocol: &'a str,
    formats: Vec<&'a str>,
    connection: Option<&'a str>,
    attrs: Vec<Attr<'a>>,
}

/// Typed values of one m= section, from ezk when it accepts the SDP, else from the raw lines.
struct Typed {
    connection: Option<IpAddr>,
    direction: Direction,
    rtpmaps: Vec<RtpMapEntry>,
    rtcp_port: Option<u16>,
    rtcp_mux: bool,
}

pub(crate) fn parse(body: &[u8]) -> Result<Offer, SdpError> {
    // Lossy: a stray Latin-1 byte in s= or i= must not cost a recording.
    let text = String::from_utf8_lossy(body);
    let raw = scan(&text)?;

    // ezk rejects some SDP seen in the field (m=image for T.38, a=ssrc without attribute,
    // rtpmap without clock rate, missing s=/t=); those offers take the raw-line path.
    // a=crypto lines are read by our own scan (sdp/crypto.rs); ezk's crypto parser computes
    // `2^lifetime` without an overflow check, so it never sees them (a fuzz finding).
    let for_ezk: String = text
        .split_inclusive('\n')
        .filter(|line| {
            !line
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("a=crypto")
        })
        .collect();
    let typed: Vec<Typed> = match SessionDescription::parse(&for_ezk.into()) {
        Ok(sd) if sd.media_descriptions.len() == raw.media.len() => {
            let session_conn = sd.connection.as_ref().and_then(|c| tagged_ip(&c.address));
            sd.media_descriptions
                .iter()
                .map(|md| Typed {
                    connection: md
                        .connection
                        .as_ref()
                        .and_then(|c| tagged_ip(&c.address))
                        .or(session_conn),
                    direction: from_ezk_direction(md.direction),
                    rtpmaps: md
                        .rtpmap
                        .iter()
                        .map(|r| RtpMapEntry {
                            payload_type: r.payload,
                            encoding: r.encoding.to_string(),
                            clock_rate: r.clock_rate,
                            channels: r.params.as_ref().map_or(Some(1), |p| p.trim().parse().ok()),
                        })
                        .collect(),
                    rtcp_port: md.rtcp.as_ref().map(|r| r.port),
                    rtcp_mux: md.rtcp_mux,
                })
                .collect()
        }
        _ => raw.media.iter().map(|m| typed_from_raw(&raw, m)).collect(),
    };

    let media = raw
        .media
        .iter()
        .zip(typed)
        .map(|(m, t)| offered_media(m, t))
        .collect();
    let [username, session_id, version] = raw.origin;
    Ok(Offer {
        origin_username: username.to_owned(),
        origin_session_id: session_id.to_owned(),
        origin_version: version.to_owned(),
        media,
    })
}

fn scan(text: &str) -> Result<RawSdp<'_>, SdpError> {
    let malformed = |why: &str| SdpError::Malformed(why.to_owned());
    let mut lines = text
        .split(['\r', '\n'])
        .map(str::trim_end)
        .filter(|l| !l.is_empty());

    match lines.next() {
        Some("v=0") => {}
        Some(l) if l.starts_with("v=") => return Err(malformed("unsupported SDP version")),
        _ => return Err(malformed("missing v= line")),
    }

    let mut origin = None;
    let mut connection = None;
    let mut attrs = Vec::new();
    let mut media: Vec<RawMedia<'_>> = Vec::new();
    for line in lines {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match (kind, media.last_mut()) {
            ("o", None) if origin.is_none() => {
                let f: Vec<&str> = value.split_ascii_whitespace().collect();
                if f.len() < 6 {
                    return Err(malformed("bad o= line"));
                }
                origin = Some([f[0], f[1], f[2]]);
            }
            ("m", _) => {
                if media.len() == MAX_MEDIA {
                    return Err(malformed("too many m= lines"));
                }
                media.push(scan_media_line(value)?);
            }
            ("c", None) => connection = Some(value),
            ("c", Some(m)) => m.connection = Some(value),
            ("a", None) => attrs.push(split_attr(value)),
            ("a", Some(m)) => m.attrs.push(split_attr(value)),
            _ => {}
        }
    }
    let origin = origin.ok_or_else(|| malformed("missing o= line"))?;
    Ok(RawSdp {
        origin,
        connection,
        attrs,
        media,
    })
}

fn scan_media_line(value: &str) -> Result<RawMedia<'_>, SdpError> {
    let mut f = value.split_ascii_whitespace();
    let (Some(media_type), Some(port), Some(protocol)) = (f.next(), f.next(), f.next()) else {
        return Err(SdpError::Malformed("short m= line".to_owned()));
    };
    // `port/count` (RFC 8866 §5.14): the first port is the one media goes to.
    let port = port
        .split('/')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| SdpError::Malformed("bad m= port".to_owned()))?;
    Ok(RawMedia {
        media_type,
        port,
        protocol,
        formats: f.collect(),
        connection: None,
        attrs: Vec::new(),
    })
}

fn split_attr(value: &str) -> Attr<'_> {
    match value.split_once(':') {
        Some((name, v)) => (name.trim(), Some(v.trim())),
        None => (value.trim(), None),
    }
}

fn tagged_ip(addr: &TaggedAddress) -> Option<IpAddr> {
    match addr {
        TaggedAddress::IP4(ip) => Some(IpAddr::V4(*ip)),
        TaggedAddress::IP6(ip) => Some(IpAddr::V6(*ip)),
        // A host name cannot be used to filter RTP sources; the media layer learns it instead.
        TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => None,
    }
}

fn from_ezk_direction(d: ezk_sdp_types::Direction) -> Direction {
    match d {
        ezk_sdp_types::Direction::SendRecv => Direction::SendRecv,
        ezk_sdp_types::Direction::SendOnly => Direction::SendOnly,
        ezk_sdp_types::Direction::RecvOnly => Direction::RecvOnly,
        ezk_sdp_types::Direction::Inactive => Direction::Inactive,
    }
}

/// `IN IP4 192.0.2.1[/ttl[/n]]` → the address, if it is a literal IP.
fn raw_connection_ip(value: &str) -> Option<IpAddr> {
    let mut f = value.split_ascii_whitespace();
    let (_net, _family, addr) = (f.next()?, f.next()?, f.next()?);
    addr.split('/').next()?.parse().ok()
}

fn raw_direction(attrs: &[Attr<'_>]) -> Option<Direction> {
    attrs
        .iter()
        .rev()
        .find_map(|(name, value)| match (*name, value) {
            ("sendrecv", None) => Some(Direction::SendRecv),
            ("sendonly", None) => Some(Direction::SendOnly),
            ("recvonly", None) => Some(Direction::RecvOnly),
            ("inactive", None) => Some(Direction::Inactive),
            _ => None,
        })
}

fn typed_from_raw(raw: &RawSdp<'_>, m: &RawMedia<'_>) -> Typed {
    Typed {
        connection: m.connection.or(raw.connection).and_then(raw_connection_ip),
        direction: raw_direction(&m.attrs)
            .or_else(|| raw_direction(&raw.attrs))
            .unwrap_or(Direction::SendRecv),
        rtpmaps: attr_values(&m.attrs, "rtpmap")
            .filter_map(codec::parse_rtpmap)
            .collect(),
        rtcp_port: attr_values(&m.attrs, "rtcp")
            .next()
            .and_then(|v| v.split_ascii_whitespace().next()?.parse().ok()),
        rtcp_mux: m.attrs.iter().any(|(n, _)| *n == "rtcp-mux"),
    }
}

fn attr_values<'a>(attrs: &'a [Attr<'a>], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    attrs
        .iter()
        .filter(move |(n, _)| *n == name)
        .filter_map(|(_, v)| *v)
}

fn offered_media(m: &RawMedia<'_>, t: Typed) -> OfferedMedia {
    let kind = match m.media_type {
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        "application" => MediaKind::Application,
        _ => MediaKind::Other,
    };
    let formats: Vec<String> = m.formats.iter().map(|f| (*f).to_owned()).collect();
    let payload_types: Vec<u8> = m.formats.iter().filter_map(|f| f.parse().ok()).collect();
    // Only RTP audio carries codecs the recorder stores.
    let (codecs, telephone_event) = if kind == MediaKind::Audio {
        let codecs = codec::choose_all(&payload_types, &t.rtpmaps);
        let te = codec::telephone_event(
            &payload_types,
            &t.rtpmaps,
            codecs.first().map(|c| c.clock_rate),
        );
        (codecs, te)
    } else {
        (Vec::new(), None)
    };
    OfferedMedia {
        kind,
        media_type: m.media_type.to_owned(),
        port: m.port,
        protocol: m.protocol.to_owned(),
        formats,
        connection: t.connection,
        direction: hold_direction(t.connection, t.direction),
        rtcp_mux: t.rtcp_mux,
        rtcp_port: t.rtcp_port,
        label: attr_values(&m.attrs, "label")
            .find(|v| !v.is_empty())
            .map(str::to_owned),
        ptime: attr_values(&m.attrs, "ptime").find_map(parse_ptime),
        crypto: attr_values(&m.attrs, "crypto").map(str::to_owned).collect(),
        codec: codecs.first().cloned(),
        codecs,
        telephone_event,
    }
}

/// RFC 2543 hold, still sent by BroadWorks and Metaswitch: `c=0.0.0.0` (session or media
/// level) means "send nothing here" whatever the direction attribute says. The recorder
/// takes it as `inactive` (SPEC §5 pause); the next offer with a real address resumes.
fn hold_direction(connection: Option<IpAddr>, direction: Direction) -> Direction {
    if connection.is_some_and(|ip| ip.is_unspecified()) {
        Direction::Inactive
    } else {
        direction
    }
}

/// `20`, and the `20.0` some gateways write.
fn parse_ptime(v: &str) -> Option<u32> {
    if let Ok(ms) = v.parse::<u32>() {
        return (ms > 0).then_some(ms);
    }
    let ms = v.parse::<f64>().ok()?;
    (1.0..=10_000.0).contains(&ms).then(|| ms.round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer_with(session_c: &str, media_c: Option<&str>, direction: &str) -> Offer {
        let mut sdp = format!(
            "v=0\r\no=BroadWorks 7 2 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 {session_c}\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0 101\r\n"
        );
        if let Some(c) = media_c {
            sdp.push_str(&format!("c=IN IP4 {c}\r\n"));
        }
        sdp.push_str(&format!(
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n\
             m=audio 40002 RTP/AVP 0\r\na=sendonly\r\n"
        ));
        parse(sdp.as_bytes()).expect("parses")
    }

    #[test]
    fn rfc2543_hold_at_session_level_makes_every_stream_inactive() {
        let o = offer_with("0.0.0.0", None, "sendonly");
        assert!(
            o.media.iter().all(|m| m.direction == Direction::Inactive),
            "{o:?}"
        );
        assert_eq!(o.media[0].connection, Some("0.0.0.0".parse().unwrap()));
    }

    #[test]
    fn rfc2543_hold_at_media_level_holds_only_that_stream() {
        let o = offer_with("192.0.2.5", Some("0.0.0.0"), "sendrecv");
        assert_eq!(o.media[0].direction, Direction::Inactive);
        assert_eq!(o.media[1].direction, Direction::SendOnly);
        // A real media-level address under a held session: that stream is live.
        let o = offer_with("0.0.0.0", Some("192.0.2.9"), "sendonly");
        assert_eq!(o.media[0].direction, Direction::SendOnly);
        assert_eq!(o.media[1].direction, Direction::Inactive);
    }

    #[test]
    fn resume_is_the_next_offer_with_a_real_address() {
        let o = offer_with("192.0.2.5", None, "sendonly");
        assert!(o.media.iter().all(|m| m.direction == Direction::SendOnly));
        // The raw-line path (an SDP ezk refuses: no s= line) reads hold the same way.
        let raw = "v=0\r\no=x 1 1 IN IP4 192.0.2.5\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
        let o = parse(raw.as_bytes()).expect("parses");
        assert_eq!(o.media[0].direction, Direction::Inactive);
    }
}
