//! The recording target carried in a Request-URI (Genesys `record=` style).

use super::message::SipUriParts;
use percent_encoding::percent_decode_str;
use std::collections::BTreeMap;

/// Fields of a Genesys Media Server recording Request-URI:
/// `sip:record=<id>@host;calluuid=..;dn=..;otherDN=..;recordDN=..`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenesysTarget {
    pub record_id: String,
    pub calluuid: Option<String>,
    pub dn: Option<String>,
    pub other_dn: Option<String>,
    pub record_dn: Option<String>,
}

/// `Some` when the user part is `record=<id>`. Parameter names are matched
/// case-insensitively, values percent-decoded.
pub fn genesys_target(uri: &SipUriParts) -> Option<GenesysTarget> {
    // `SipUriParts::user` is already percent-decoded: decoding again would turn a literal
    // `%` in the id into something else.
    let (key, id) = uri.user.as_deref()?.split_once('=')?;
    if !key.trim().eq_ignore_ascii_case("record") || id.trim().is_empty() {
        return None;
    }
    let mut target = GenesysTarget {
        record_id: id.trim().to_string(),
        ..Default::default()
    };
    for (name, value) in &uri.params {
        let name = decode(name);
        let slot = if name.eq_ignore_ascii_case("calluuid") {
            &mut target.calluuid
        } else if name.eq_ignore_ascii_case("dn") {
            &mut target.dn
        } else if name.eq_ignore_ascii_case("otherdn") {
            &mut target.other_dn
        } else if name.eq_ignore_ascii_case("recorddn") {
            &mut target.record_dn
        } else {
            continue;
        };
        // The first occurrence wins, as in `uri_params`.
        if slot.is_none() {
            *slot = Some(value.as_deref().map(decode).unwrap_or_default());
        }
    }
    Some(target)
}

/// Every Request-URI parameter, names as written, values percent-decoded (`""` for a bare
/// flag). A repeated name keeps its first value.
pub fn uri_params(uri: &SipUriParts) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in &uri.params {
        out.entry(name.clone())
            .or_insert_with(|| value.as_deref().map(decode).unwrap_or_default());
    }
    out
}

/// Percent-decoding that never fails: invalid UTF-8 becomes U+FFFD rather than losing the
/// whole value.
fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Limits, RequestUri, SipMessage, parse_message};
    use bytes::Bytes;

    fn parts(user: Option<&str>, params: &[(&str, Option<&str>)]) -> SipUriParts {
        SipUriParts {
            sips: false,
            user: user.map(str::to_string),
            host: "srs.example.com".into(),
            port: None,
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn genesys_target_mixed_case_and_escapes() {
        let uri = parts(
            Some("Record=00F0020A6B2C1B38"),
            &[
                ("CALLUUID", Some("01NQ1V0LQOA3B2QK%2D0001")),
                ("dn", Some("7001")),
                ("otherdn", Some("%2B15551234567")),
                ("RecordDN", Some("7001")),
                ("transport", Some("tcp")),
            ],
        );
        let target = genesys_target(&uri).expect("a Genesys target");
        assert_eq!(
            target,
            GenesysTarget {
                record_id: "00F0020A6B2C1B38".into(),
                calluuid: Some("01NQ1V0LQOA3B2QK-0001".into()),
                dn: Some("7001".into()),
                other_dn: Some("+15551234567".into()),
                record_dn: Some("7001".into()),
            }
        );
    }

    #[test]
    fn not_a_genesys_target() {
        assert_eq!(genesys_target(&parts(None, &[])), None);
        assert_eq!(genesys_target(&parts(Some("recorder"), &[])), None);
        assert_eq!(genesys_target(&parts(Some("record="), &[])), None);
        assert_eq!(genesys_target(&parts(Some("play=1"), &[])), None);
    }

    #[test]
    fn genesys_target_from_a_parsed_request() {
        let msg = "INVITE sip:record=AB%43@[2001:db8::1]:5060;callUUID=x%20y;OtherDN=%2B1;dn SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bK1\r\n\
From: <sip:gvp@example.com>;tag=1\r\nTo: <sip:srs@example.com>\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let Ok(SipMessage::Request(req)) = parse_message(Bytes::from(msg), &Limits::default())
        else {
            panic!("request expected");
        };
        let RequestUri::Sip(uri) = &req.uri else {
            panic!("sip uri expected")
        };
        assert_eq!(uri.host, "2001:db8::1");
        assert_eq!(uri.port, Some(5060));
        let target = genesys_target(uri).expect("target");
        assert_eq!(target.record_id, "ABC");
        assert_eq!(target.calluuid.as_deref(), Some("x y"));
        assert_eq!(target.other_dn.as_deref(), Some("+1"));
        // A bare flag decodes to an empty value.
        assert_eq!(target.dn.as_deref(), Some(""));
        assert_eq!(target.record_dn, None);
    }

    #[test]
    fn uri_params_decoded_first_wins() {
        let uri = parts(
            Some("x"),
            &[
                ("a", Some("1%3B2")),
                ("lr", None),
                ("a", Some("second")),
                ("B", Some("%ZZ")),
            ],
        );
        let params = uri_params(&uri);
        assert_eq!(params.get("a").map(String::as_str), Some("1;2"));
        assert_eq!(params.get("lr").map(String::as_str), Some(""));
        // An invalid escape stays as written.
        assert_eq!(params.get("B").map(String::as_str), Some("%ZZ"));
        assert_eq!(params.len(), 3);
    }
}
