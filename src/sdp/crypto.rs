//! SDES key exchange (RFC 4568): parse `a=crypto` offers, pick one, answer with our own key.
//!
//! Only what the recorder can decrypt is accepted: three suites, a single inline key without
//! MKI, and no session parameter that changes the SRTP transform. Anything else is reported as
//! unsupported so that [`choose_crypto`] moves on to the next offered line.
//!
//! Key material never reaches a log: [`CryptoAttribute`]'s `Debug` redacts it, and errors never
//! echo the offered text.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use rand::CryptoRng;
use serde::Serialize;

/// Senders differ on whether they pad the base64 key, so accept both forms.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// RFC 4568 limits the tag to nine digits.
const MAX_TAG_DIGITS: usize = 9;

/// An SRTP crypto suite the recorder can decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SrtpSuite {
    /// RFC 4568: AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    #[serde(rename = "AES_CM_128_HMAC_SHA1_80")]
    AesCm128HmacSha1_80,
    /// RFC 4568: AES-128 counter mode, 32-bit HMAC-SHA1 tag on SRTP (80-bit on SRTCP).
    #[serde(rename = "AES_CM_128_HMAC_SHA1_32")]
    AesCm128HmacSha1_32,
    /// RFC 7714: AES-128 GCM, 128-bit AEAD tag.
    #[serde(rename = "AEAD_AES_128_GCM")]
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// Every suite, in our order of preference when we ever have to pick one ourselves.
    pub const ALL: [SrtpSuite; 3] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The suite named in an `a=crypto` line (names are case-sensitive in RFC 4568).
    pub fn from_sdp_name(name: &str) -> Option<Self> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Self::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Self::AesCm128HmacSha1_32),
            "AEAD_AES_128_GCM" => Some(Self::AeadAes128Gcm),
            _ => None,
        }
    }

    /// The name written in SDP and in `recording.json`.
    pub const fn sdp_name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// Master key length in bytes.
    pub const fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes.
    pub const fn salt_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => 14,
            Self::AeadAes128Gcm => 12,
        }
    }

    /// Length of the inline `key||salt` value once base64-decoded.
    pub const fn key_salt_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Bytes an SRTP packet carries after its payload to authenticate it.
    pub const fn srtp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => 10,
            Self::AesCm128HmacSha1_32 => 4,
            Self::AeadAes128Gcm => 16,
        }
    }

    /// Bytes an SRTCP packet carries to authenticate it (`_32` still uses 80 bits on SRTCP).
    pub const fn srtcp_tag_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => 10,
            Self::AeadAes128Gcm => 16,
        }
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdp_name())
    }
}

/// One parsed `a=crypto` line the recorder can use.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// Identifies the line; the answer repeats it.
    pub tag: u32,
    pub suite: SrtpSuite,
    /// Master key lifetime in packets, when the offer states one.
    pub lifetime: Option<u64>,
    /// Master key followed by master salt. Private so it is only reached on purpose.
    key_salt: Vec<u8>,
}

impl CryptoAttribute {
    /// Builds an attribute from raw key material, checking its length against the suite.
    pub fn new(tag: u32, suite: SrtpSuite, key_salt: Vec<u8>) -> Result<Self, CryptoError> {
        if key_salt.len() != suite.key_salt_len() {
            return Err(CryptoError::WrongKeyLength {
                expected: suite.key_salt_len(),
                got: key_salt.len(),
            });
        }
        Ok(Self {
            tag,
            suite,
            lifetime: None,
            key_salt,
        })
    }

    /// Master key followed by master salt, as `SrtpReceiver::new` takes it.
    pub fn key_salt(&self) -> &[u8] {
        &self.key_salt
    }

    /// The `a=crypto` value (without `a=crypto:`) for this attribute. Contains the key:
    /// it belongs in an SDP body and nowhere else.
    pub fn to_sdp_value(&self) -> String {
        let mut value = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.sdp_name(),
            STANDARD.encode(&self.key_salt)
        );
        if let Some(lifetime) = self.lifetime {
            value.push('|');
            value.push_str(&lifetime.to_string());
        }
        value
    }
}

impl fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("lifetime", &self.lifetime)
            .field("key_salt", &"<redacted>")
            .finish()
    }
}

/// Why an `a=crypto` value was not accepted. Never carries offered text or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed a=crypto attribute: {0}")]
    Malformed(&'static str),
    #[error("unsupported SRTP crypto suite")]
    UnsupportedSuite,
    #[error("unsupported key method (only inline is defined)")]
    UnsupportedKeyMethod,
    #[error("master key identifiers (MKI) are not supported")]
    MkiNotSupported,
    #[error("more than one master key is not supported")]
    MultipleKeys,
    #[error("unsupported SDES session parameter")]
    UnsupportedSessionParam,
    #[error("key is not valid base64")]
    BadKeyEncoding,
    #[error("key||salt is {got} bytes, the suite needs {expected}")]
    WrongKeyLength { expected: usize, got: usize },
    #[error("bad key lifetime")]
    BadLifetime,
}

impl CryptoError {
    /// True when the line is well-formed but asks for something we do not implement, as
    /// opposed to a line that breaks RFC 4568.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedSuite
                | Self::UnsupportedKeyMethod
                | Self::MkiNotSupported
                | Self::MultipleKeys
                | Self::UnsupportedSessionParam
        )
    }
}

/// Parses an `a=crypto` value: `tag suite inline:key||salt[|lifetime][|mki:len] [params]`.
pub fn parse_crypto(attr_value: &str) -> Result<CryptoAttribute, CryptoError> {
    // A caller handing over the whole attribute line is harmless to accept.
    let value = attr_value.trim();
    let value = value.strip_prefix("a=").unwrap_or(value);
    let value = value.strip_prefix("crypto:").unwrap_or(value);

    let mut fields = value.split([' ', '\t']).filter(|f| !f.is_empty());
    let tag = parse_tag(fields.next().ok_or(CryptoError::Malformed("empty"))?)?;
    let suite_name = fields.next().ok_or(CryptoError::Malformed("no suite"))?;
    let key_params = fields.next().ok_or(CryptoError::Malformed("no key"))?;

    // Suite first: a line with a suite we do not know may use key params we cannot parse.
    let suite = SrtpSuite::from_sdp_name(suite_name).ok_or(CryptoError::UnsupportedSuite)?;
    let (key_salt, lifetime) = parse_key_params(key_params, suite)?;

    for param in fields {
        check_session_param(param)?;
    }

    Ok(CryptoAttribute {
        tag,
        suite,
        lifetime,
        key_salt,
    })
}

/// The first offered line we can use, in offer order (RFC 4568 §7.1.1: the offerer lists its
/// preference first).
pub fn choose_crypto<S: AsRef<str>>(offered: &[S]) -> Option<CryptoAttribute> {
    offered
        .iter()
        .find_map(|line| parse_crypto(line.as_ref()).ok())
}

/// Our side of the exchange: same tag and suite, a fresh random key. Returns the attribute
/// and the `a=crypto` value for the answer (which contains the key).
pub fn answer_crypto<R: CryptoRng + ?Sized>(
    chosen: &CryptoAttribute,
    rng: &mut R,
) -> (CryptoAttribute, String) {
    let mut key_salt = vec![0u8; chosen.suite.key_salt_len()];
    rng.fill_bytes(&mut key_salt);
    let ours = CryptoAttribute {
        tag: chosen.tag,
        suite: chosen.suite,
        lifetime: None,
        key_salt,
    };
    let value = ours.to_sdp_value();
    (ours, value)
}

fn parse_tag(field: &str) -> Result<u32, CryptoError> {
    if field.is_empty()
        || field.len() > MAX_TAG_DIGITS
        || !field.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CryptoError::Malformed("bad tag"));
    }
    field.parse().map_err(|_| CryptoError::Malformed("bad tag"))
}

fn parse_key_params(
    key_params: &str,
    suite: SrtpSuite,
) -> Result<(Vec<u8>, Option<u64>), CryptoError> {
    // Several keys are only distinguishable by MKI, which we do not support.
    if key_params.contains(';') {
        return Err(CryptoError::MultipleKeys);
    }
    let (method, info) = key_params
        .split_once(':')
        .ok_or(CryptoError::Malformed("no key method"))?;
    if !method.eq_ignore_ascii_case("inline") {
        return Err(CryptoError::UnsupportedKeyMethod);
    }

    let mut parts = info.split('|');
    // split always yields at least one item.
    let key_b64 = parts.next().unwrap_or_default();
    let mut lifetime = None;
    for (i, part) in parts.enumerate() {
        if part.contains(':') {
            return Err(CryptoError::MkiNotSupported);
        }
        // Only the first item after the key may be a lifetime, and MKI would come after it.
        if i > 0 {
            return Err(CryptoError::Malformed("extra key info"));
        }
        lifetime = Some(parse_lifetime(part)?);
    }

    let key_salt = decode_key(key_b64, suite)?;
    Ok((key_salt, lifetime))
}

fn decode_key(key_b64: &str, suite: SrtpSuite) -> Result<Vec<u8>, CryptoError> {
    let expected = suite.key_salt_len();
    // Bound the work before decoding: anything longer cannot be the right length.
    if key_b64.len() > expected.div_ceil(3) * 4 {
        return Err(CryptoError::WrongKeyLength {
            expected,
            got: key_b64.len() / 4 * 3,
        });
    }
    let key_salt = KEY_BASE64
        .decode(key_b64)
        .map_err(|_| CryptoError::BadKeyEncoding)?;
    if key_salt.len() != expected {
        return Err(CryptoError::WrongKeyLength {
            expected,
            got: key_salt.len(),
        });
    }
    Ok(key_salt)
}

/// `1048576` or `2^20`, in packets.
fn parse_lifetime(text: &str) -> Result<u64, CryptoError> {
    let (digits, power) = match text.strip_prefix("2^") {
        Some(exp) => (exp, true),
        None => (text, false),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::BadLifetime);
    }
    let n: u64 = digits.parse().map_err(|_| CryptoError::BadLifetime)?;
    let packets = if power {
        // 2^64 does not fit, and nothing needs more than 2^48 (RFC 3711 §9.2).
        if n > 63 {
            return Err(CryptoError::BadLifetime);
        }
        1u64 << n
    } else {
        n
    };
    if packets == 0 {
        return Err(CryptoError::BadLifetime);
    }
    Ok(packets)
}

/// Session parameters that would change the transform (KDR, UNENCRYPTED_*, FEC_*) make the
/// line unusable. A window-size hint only tunes the replay window, so it is harmless.
fn check_session_param(param: &str) -> Result<(), CryptoError> {
    match param.strip_prefix("WSH=") {
        Some(size)
            if !size.is_empty() && size.len() <= 10 && size.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(CryptoError::UnsupportedSessionParam),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn key_b64(len: usize) -> String {
        STANDARD.encode((0..len as u8).collect::<Vec<u8>>())
    }

    #[test]
    fn parses_aes_cm_80() {
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", key_b64(30));
        let attr = parse_crypto(&line).unwrap();
        assert_eq!(attr.tag, 1);
        assert_eq!(attr.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(attr.key_salt(), (0..30).collect::<Vec<u8>>().as_slice());
        assert_eq!(attr.lifetime, None);
    }

    #[test]
    fn parses_aes_cm_32() {
        let line = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{}", key_b64(30));
        let attr = parse_crypto(&line).unwrap();
        assert_eq!(attr.tag, 2);
        assert_eq!(attr.suite, SrtpSuite::AesCm128HmacSha1_32);
        assert_eq!(attr.key_salt().len(), 30);
    }

    #[test]
    fn parses_aead_aes_128_gcm() {
        let line = format!("3 AEAD_AES_128_GCM inline:{}", key_b64(28));
        let attr = parse_crypto(&line).unwrap();
        assert_eq!(attr.suite, SrtpSuite::AeadAes128Gcm);
        assert_eq!(attr.key_salt().len(), 28);
    }

    #[test]
    fn accepts_unpadded_base64_and_full_attribute_line() {
        let unpadded = key_b64(28).trim_end_matches('=').to_owned();
        let line = format!("a=crypto:3 AEAD_AES_128_GCM inline:{unpadded}");
        assert_eq!(parse_crypto(&line).unwrap().key_salt().len(), 28);
    }

    #[test]
    fn rfc4568_example_line() {
        // RFC 4568 §4 example, minus the MKI it carries.
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let attr = parse_crypto(line).unwrap();
        assert_eq!(attr.lifetime, Some(1 << 20));
    }

    #[test]
    fn unknown_suite_is_unsupported() {
        let line = format!("1 AES_256_CM_HMAC_SHA1_80 inline:{}", key_b64(46));
        assert_eq!(parse_crypto(&line), Err(CryptoError::UnsupportedSuite));
        let line = format!("1 F8_128_HMAC_SHA1_80 inline:{}", key_b64(30));
        assert!(parse_crypto(&line).unwrap_err().is_unsupported());
    }

    #[test]
    fn bad_base64_is_rejected() {
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!notbase64!!!!notbase64!!!!notbase";
        assert_eq!(parse_crypto(line), Err(CryptoError::BadKeyEncoding));
    }

    #[test]
    fn wrong_key_length_is_rejected() {
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", key_b64(28));
        assert_eq!(
            parse_crypto(&line),
            Err(CryptoError::WrongKeyLength {
                expected: 30,
                got: 28
            })
        );
        // A GCM-sized key offered for AES_CM and the reverse.
        let line = format!("1 AEAD_AES_128_GCM inline:{}", key_b64(30));
        assert!(matches!(
            parse_crypto(&line),
            Err(CryptoError::WrongKeyLength { expected: 28, .. })
        ));
        // Very long keys are refused without decoding them.
        let line = format!("1 AEAD_AES_128_GCM inline:{}", "A".repeat(10_000));
        assert!(matches!(
            parse_crypto(&line),
            Err(CryptoError::WrongKeyLength { .. })
        ));
    }

    #[test]
    fn mki_lines_are_unsupported() {
        let with_lifetime = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20|1:4", key_b64(30));
        assert_eq!(
            parse_crypto(&with_lifetime),
            Err(CryptoError::MkiNotSupported)
        );
        let mki_only = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}|1:4", key_b64(30));
        assert_eq!(parse_crypto(&mki_only), Err(CryptoError::MkiNotSupported));
        let two_keys = format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4;inline:{k}|2^20|2:4",
            k = key_b64(30)
        );
        assert!(parse_crypto(&two_keys).unwrap_err().is_unsupported());
    }

    #[test]
    fn session_params() {
        let key = key_b64(30);
        for param in [
            "UNENCRYPTED_SRTP",
            "UNENCRYPTED_SRTCP",
            "UNAUTHENTICATED_SRTP",
            "KDR=10",
            "FEC_ORDER=SRTP_FEC",
            "WSH=",
            "SOMETHING_NEW",
        ] {
            let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key} {param}");
            assert_eq!(
                parse_crypto(&line),
                Err(CryptoError::UnsupportedSessionParam),
                "{param}"
            );
        }
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key} WSH=128");
        assert!(parse_crypto(&line).is_ok());
    }

    #[test]
    fn lifetime_forms() {
        let key = key_b64(30);
        let parse = |suffix: &str| {
            parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}{suffix}"))
                .map(|a| a.lifetime)
        };
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("|2^20"), Ok(Some(1 << 20)));
        assert_eq!(parse("|2^31"), Ok(Some(1 << 31)));
        assert_eq!(parse("|1048576"), Ok(Some(1_048_576)));
        assert_eq!(parse("|2^64"), Err(CryptoError::BadLifetime));
        assert_eq!(parse("|0"), Err(CryptoError::BadLifetime));
        assert_eq!(parse("|2^"), Err(CryptoError::BadLifetime));
        assert_eq!(parse("|"), Err(CryptoError::BadLifetime));
        assert_eq!(parse("|-5"), Err(CryptoError::BadLifetime));
        assert_eq!(
            parse("|99999999999999999999999"),
            Err(CryptoError::BadLifetime)
        );
        assert_eq!(
            parse("|2^20|2^20"),
            Err(CryptoError::Malformed("extra key info"))
        );
    }

    #[test]
    fn malformed_lines() {
        let key = key_b64(30);
        for line in [
            String::new(),
            "1".to_owned(),
            "1 AES_CM_128_HMAC_SHA1_80".to_owned(),
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{key}"),
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key}"),
        ] {
            let err = parse_crypto(&line).unwrap_err();
            assert!(!err.is_unsupported(), "{line}: {err}");
        }
        assert_eq!(
            parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 uri:{key}")),
            Err(CryptoError::UnsupportedKeyMethod)
        );
    }

    #[test]
    fn choose_takes_first_supported_in_offer_order() {
        let offered = vec![
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{}", key_b64(46)),
            format!("2 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20|1:4", key_b64(30)),
            format!("3 AES_CM_128_HMAC_SHA1_80 inline:{} KDR=1", key_b64(30)),
            format!("4 AES_CM_128_HMAC_SHA1_32 inline:{}", key_b64(30)),
            format!("5 AES_CM_128_HMAC_SHA1_80 inline:{}", key_b64(30)),
        ];
        let chosen = choose_crypto(&offered).unwrap();
        assert_eq!(chosen.tag, 4);
        assert_eq!(chosen.suite, SrtpSuite::AesCm128HmacSha1_32);
        assert!(choose_crypto(&offered[..3]).is_none());
        assert!(choose_crypto::<String>(&[]).is_none());
    }

    #[test]
    fn answer_has_same_tag_and_suite_and_a_fresh_key() {
        let mut rng = StdRng::seed_from_u64(7);
        for suite in SrtpSuite::ALL {
            let offer = format!(
                "9 {} inline:{}|2^31",
                suite.sdp_name(),
                key_b64(suite.key_salt_len())
            );
            let chosen = parse_crypto(&offer).unwrap();
            let (ours, value) = answer_crypto(&chosen, &mut rng);
            assert_eq!(ours.tag, 9);
            assert_eq!(ours.suite, suite);
            assert_eq!(ours.key_salt().len(), suite.key_salt_len());
            assert_ne!(ours.key_salt(), chosen.key_salt());
            // The answer line parses back to exactly our attribute.
            assert_eq!(parse_crypto(&value).unwrap(), ours);
            let (again, _) = answer_crypto(&chosen, &mut rng);
            assert_ne!(again.key_salt(), ours.key_salt());
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = key_b64(30);
        let attr = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}")).unwrap();
        let shown = format!("{attr:?} {attr:#?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&key));
        assert!(!shown.contains("[0, 1, 2"));
        assert!(!shown.contains("0, 1, 2, 3"));
    }

    #[test]
    fn suite_lengths_and_names() {
        for suite in SrtpSuite::ALL {
            assert_eq!(SrtpSuite::from_sdp_name(suite.sdp_name()), Some(suite));
            assert_eq!(suite.to_string(), suite.sdp_name());
            assert_eq!(
                serde_json::to_string(&suite).unwrap(),
                format!("\"{}\"", suite.sdp_name())
            );
        }
        assert_eq!(SrtpSuite::AesCm128HmacSha1_80.key_salt_len(), 30);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_32.key_salt_len(), 30);
        assert_eq!(SrtpSuite::AeadAes128Gcm.key_salt_len(), 28);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_32.srtp_tag_len(), 4);
        assert_eq!(SrtpSuite::AesCm128HmacSha1_32.srtcp_tag_len(), 10);
    }

    #[test]
    fn garbage_never_panics() {
        let seed = format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^20 WSH=64",
            key_b64(30)
        );
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20_000 {
            let mut bytes = seed.clone().into_bytes();
            for _ in 0..rand::Rng::random_range(&mut rng, 1..8) {
                let i = rand::Rng::random_range(&mut rng, 0..bytes.len());
                bytes[i] = rand::Rng::random(&mut rng);
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_crypto(&text);
        }
    }
}
