//! The recording target carried in a Request-URI (Genesys `record=` style).
//!
//! CONTRACT — the rest of the crate codes against these names.

use super::message::SipUriParts;
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
    todo!("{uri:?}")
}

/// Every Request-URI parameter, names as written, values percent-decoded (`""` for a bare
/// flag). A repeated name keeps its first value.
pub fn uri_params(uri: &SipUriParts) -> BTreeMap<String, String> {
    todo!("{uri:?}")
}
