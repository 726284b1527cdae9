//! Vendor ways of naming a recording's parties and tying recordings of one call together
//! when no SIPREC metadata says so:
//!
//! * Cisco CUBE network-based recording: `X-Cisco-Recording-Participant: <uri>;media-index="N"`
//!   names the party of the N-th m= line.
//! * Cisco Unified CM built-in-bridge (BiB) recording: one dialog per party, marked
//!   `x-nearend` / `x-farend` in the From URI, both carrying the near end's call reference
//!   `x-refci` and the far end's `x-farendrefci`.
//! * Genesys "one recording session per party": several INVITEs with one `calluuid`.

use super::classify::{RecordingKind, RecordingRequest};
use super::message::Header;

pub const CISCO_PARTICIPANT_HEADER: &str = "X-Cisco-Recording-Participant";

/// `(m= line index, party URI)` from every `X-Cisco-Recording-Participant` header.
pub fn cisco_recording_participants(headers: &[Header]) -> Vec<(usize, String)> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(CISCO_PARTICIPANT_HEADER))
        .flat_map(|h| h.value.split(','))
        .filter_map(cisco_participant)
        .collect()
}

fn cisco_participant(value: &str) -> Option<(usize, String)> {
    let value = value.trim();
    // `<uri>;params` or `uri;params`: the URI ends at `>` or at the first `;`.
    let (uri, params) = match value.strip_prefix('<') {
        Some(rest) => rest.split_once('>')?,
        None => value.split_once(';').unwrap_or((value, "")),
    };
    let index = header_params(params)
        .find(|(k, _)| k.eq_ignore_ascii_case("media-index"))
        .and_then(|(_, v)| v)?
        .parse()
        .ok()?;
    let uri = uri.trim();
    (!uri.is_empty()).then(|| (index, uri.to_string()))
}

/// `;name=value` pairs with quotes removed; a flag has no value.
fn header_params(params: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    params.split(';').filter_map(|p| {
        let p = p.trim();
        if p.is_empty() {
            return None;
        }
        Some(match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        })
    })
}

/// Which party a BiB recording dialog carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BibLeg {
    NearEnd,
    FarEnd,
}

/// The Cisco parameters of a BiB recording dialog (CUCM "SIP header enhancement").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiscoBib {
    pub leg: BibLeg,
    pub refci: String,
    pub far_end_refci: Option<String>,
    pub near_end_cluster: Option<String>,
    pub near_end_addr: Option<String>,
    pub far_end_addr: Option<String>,
    /// The user part of the URI: the near end's DN.
    pub user: Option<String>,
}

impl CiscoBib {
    /// Who this dialog's stream carries.
    pub fn party(&self) -> Option<String> {
        match self.leg {
            BibLeg::NearEnd => self.near_end_addr.clone().or_else(|| self.user.clone()),
            BibLeg::FarEnd => self.far_end_addr.clone(),
        }
    }

    /// Shared by the near-end and the far-end dialog of one recorded call.
    pub fn correlation_id(&self) -> String {
        format!(
            "cisco-bib:{}:{}:{}",
            self.near_end_cluster.as_deref().unwrap_or(""),
            self.refci,
            self.far_end_refci.as_deref().unwrap_or("")
        )
    }
}

/// The BiB parameters of a From (or To) header value, if it carries them.
pub fn cisco_bib(header: &str) -> Option<CiscoBib> {
    // URI parameters live inside `<>`; without brackets everything after `;` is the header's.
    let uri = match header.split_once('<') {
        Some((_, rest)) => rest.split_once('>').map_or(rest, |(u, _)| u),
        None => header,
    };
    let (address, params) = uri.split_once(';')?;
    let mut leg = None;
    let mut bib = CiscoBib {
        leg: BibLeg::NearEnd,
        refci: String::new(),
        far_end_refci: None,
        near_end_cluster: None,
        near_end_addr: None,
        far_end_addr: None,
        user: address
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(user, _)| user.to_string()),
    };
    for (name, value) in header_params(params) {
        let value = value.filter(|v| !v.is_empty()).map(str::to_string);
        match name.to_ascii_lowercase().as_str() {
            "x-nearend" => leg = Some(BibLeg::NearEnd),
            "x-farend" => leg = Some(BibLeg::FarEnd),
            "x-refci" => bib.refci = value.unwrap_or_default(),
            "x-farendrefci" => bib.far_end_refci = value,
            "x-nearendclusterid" => bib.near_end_cluster = value,
            "x-nearendaddr" => bib.near_end_addr = value,
            "x-farendaddr" => bib.far_end_addr = value,
            _ => {}
        }
    }
    bib.leg = leg?;
    (!bib.refci.is_empty()).then_some(bib)
}

/// The BiB parameters of a recording INVITE: CUCM puts them in From; To is checked too.
pub fn request_bib(req: &RecordingRequest) -> Option<CiscoBib> {
    cisco_bib(&req.from).or_else(|| cisco_bib(&req.to))
}

/// What ties this recording to others of the same call, if anything does.
pub fn correlation_id(req: &RecordingRequest) -> Option<String> {
    if req.kind == RecordingKind::Genesys {
        let calluuid = req.genesys.as_ref()?.calluuid.as_deref()?;
        return (!calluuid.is_empty()).then(|| format!("genesys:{calluuid}"));
    }
    request_bib(req).map(|b| b.correlation_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn cube_recording_participants() {
        // As CUBE sends them (Cisco's network-based recording guide).
        let headers = vec![
            header("Via", "SIP/2.0/TCP 10.42.30.10:5060;branch=z9hG4bKB622CF"),
            header(
                "X-Cisco-Recording-Participant",
                "sip:708090@10.42.30.5;media-index=\"0\"",
            ),
            header(
                "x-cisco-recording-participant",
                "<sip:10000@10.42.30.32>;media-index=1",
            ),
            header("X-Cisco-Recording-Participant", "sip:nobody@x"),
        ];
        assert_eq!(
            cisco_recording_participants(&headers),
            vec![
                (0, "sip:708090@10.42.30.5".to_string()),
                (1, "sip:10000@10.42.30.32".to_string())
            ]
        );
        let joined = vec![header(
            "X-Cisco-Recording-Participant",
            "sip:a@h;media-index=\"1\", sip:b@h;media-index=\"0\"",
        )];
        assert_eq!(
            cisco_recording_participants(&joined),
            vec![(1, "sip:a@h".into()), (0, "sip:b@h".into())]
        );
    }

    #[test]
    fn bib_near_and_far_end_share_a_correlation_id() {
        // CUCM recording use cases guide, steps 5 and 6.
        let near = cisco_bib("<sip:2000@ucm1;x-nearend;x-refci=ci2;x-nearenddevice=deviceB; x-farendrefci=ci1;x-farenddevice=deviceA;x-farendaddr=1000>;tag=fromtag1").expect("near end");
        let far = cisco_bib("<sip:2000@ucm1;x-farend;x-refci=ci2;x-nearenddevice=deviceB; x-farendrefci=ci1;x-farenddevice=deviceA;x-farendaddr=1000>;tag=fromtag2").expect("far end");
        assert_eq!(near.leg, BibLeg::NearEnd);
        assert_eq!(far.leg, BibLeg::FarEnd);
        assert_eq!(near.party().as_deref(), Some("2000"));
        assert_eq!(far.party().as_deref(), Some("1000"));
        assert_eq!(near.correlation_id(), far.correlation_id());
        assert_eq!(near.correlation_id(), "cisco-bib::ci2:ci1");

        let full = cisco_bib("\"abcd\" <sip:198101@10.200.25.137;x-nearend;x-refci=27298698;x-nearendclusterid=NY-NJ-Labcluster;x-nearenddevice=SEP2834A28318CE;x-nearendaddr=198101;x-farendrefci=27298699;x-farendclusterid=NY-NJ-Labcluster;x-farenddevice=AFIFIM-VI1;x-farendaddr=172001>;tag=14087~b35a").expect("bib");
        assert_eq!(full.party().as_deref(), Some("198101"));
        assert_eq!(
            full.correlation_id(),
            "cisco-bib:NY-NJ-Labcluster:27298698:27298699"
        );
        // Another call of the same agent: another group.
        let other = cisco_bib("<sip:198101@h;x-nearend;x-refci=27298702;x-nearendclusterid=NY-NJ-Labcluster;x-farendrefci=27298703>").expect("bib");
        assert_ne!(other.correlation_id(), full.correlation_id());
    }

    #[test]
    fn ordinary_uris_are_not_bib() {
        assert_eq!(cisco_bib("<sip:alice@example.com>;tag=1"), None);
        assert_eq!(cisco_bib("<sip:alice@example.com;transport=tcp>"), None);
        assert_eq!(cisco_bib("<sip:a@h;x-nearend>"), None, "no call reference");
        assert_eq!(
            cisco_bib("sip:a@h;x-nearend;x-refci=1"),
            cisco_bib("<sip:a@h;x-nearend;x-refci=1>"),
            "brackets are optional"
        );
        assert_eq!(cisco_bib(""), None);
    }
}
