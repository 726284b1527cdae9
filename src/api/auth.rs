//! API authentication: configured users (HTTP Basic, argon2 password hashes), static bearer
//! tokens, the token the recorder generates when nothing is configured, and the short-lived
//! tokens `POST /api/v1/authTokens` issues for the events socket (CMS events guide §4).
//!
//! No credential: 401 with `WWW-Authenticate`. A valid credential whose role is too weak:
//! 403. `/health` and `/metrics` stay open (load balancers and scrapers).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::config::{ApiRole, HttpConfig};

/// How long an issued events token may be used to open a socket (CMS tokens are short-lived).
pub const ISSUED_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Issued tokens kept at once; the oldest go first.
const MAX_ISSUED: usize = 1024;

/// The file (in the spool directory) the generated token is written to.
pub const TOKEN_FILE: &str = "api-token";

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot write the API token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No or wrong credentials: 401.
    Unauthenticated,
    /// Authenticated, but the role may not do this: 403.
    Forbidden { role: ApiRole, needed: ApiRole },
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Unauthenticated => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    "authentication required: HTTP Basic (configured user) or Authorization: Bearer <token>\n",
                )
                    .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sip-recorder\", Bearer"),
                );
                r
            }
            Denied::Forbidden { role, needed } => (
                StatusCode::FORBIDDEN,
                format!("forbidden: role {role:?} may not do this, {needed:?} needed\n")
                    .to_lowercase(),
            )
                .into_response(),
        }
    }
}

struct User {
    name: String,
    hash: String,
    role: ApiRole,
}

pub struct Auth {
    users: Vec<User>,
    tokens: Vec<(String, ApiRole)>,
    issued: Mutex<HashMap<String, (ApiRole, Instant)>>,
}

/// A random token: 32 bytes, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares without an early exit, so timing does not tell how much of a token matched.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The PHC string for `password` (argon2id, default parameters, random salt).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

impl Auth {
    /// From the configuration; with no user and no token, generates an admin token into
    /// `<spool_dir>/api-token` (mode 0600) and logs the file's path, never the token.
    pub fn from_config(http: &HttpConfig, spool_dir: &Path) -> Result<Auth, AuthSetupError> {
        let mut tokens: Vec<(String, ApiRole)> = http
            .tokens
            .iter()
            .map(|t| (t.token.clone(), t.role))
            .collect();
        if http.users.is_empty() && tokens.is_empty() {
            let token = random_token();
            let path = spool_dir.join(TOKEN_FILE);
            write_secret(&path, &token).map_err(|source| AuthSetupError::TokenFile {
                path: path.clone(),
                source,
            })?;
            tracing::info!(token_file = %path.display(), "no API user or token configured: generated an admin token");
            tokens.push((token, ApiRole::Admin));
        }
        Ok(Auth {
            users: http
                .users
                .iter()
                .map(|u| User {
                    name: u.name.clone(),
                    hash: u.password_hash.clone(),
                    role: u.role,
                })
                .collect(),
            tokens,
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// A token valid for `role` (static, generated or issued and not expired).
    pub fn token_role(&self, token: &str, now: Instant) -> Option<ApiRole> {
        if let Some((_, role)) = self.tokens.iter().find(|(t, _)| same(t, token)) {
            return Some(*role);
        }
        let issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued
            .get(token)
            .filter(|(_, at)| now.saturating_duration_since(*at) < ISSUED_TOKEN_LIFETIME)
            .map(|(role, _)| *role)
    }

    /// Checks Basic against the users (argon2: run it off the async threads).
    fn basic_role(&self, value: &str) -> Option<ApiRole> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (name, password) = decoded.split_once(':')?;
        let user = self.users.iter().find(|u| u.name == name)?;
        let hash = PasswordHash::new(&user.hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|()| user.role)
    }

    /// The role the request's `Authorization` header grants.
    pub fn role_of(&self, headers: &HeaderMap, now: Instant) -> Option<ApiRole> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, rest) = value.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            self.token_role(rest.trim(), now)
        } else if scheme.eq_ignore_ascii_case("basic") {
            self.basic_role(rest)
        } else {
            None
        }
    }

    /// Whether the request may do what needs `needed`.
    pub fn require(
        &self,
        headers: &HeaderMap,
        needed: ApiRole,
        now: Instant,
    ) -> Result<ApiRole, Denied> {
        match self.role_of(headers, now) {
            None => Err(Denied::Unauthenticated),
            Some(role) if role < needed => Err(Denied::Forbidden { role, needed }),
            Some(role) => Ok(role),
        }
    }

    /// A new events token with `role`, valid for [`ISSUED_TOKEN_LIFETIME`].
    pub fn issue(&self, role: ApiRole, now: Instant) -> String {
        let token = uuid::Uuid::new_v4().to_string();
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.retain(|_, (_, at)| now.saturating_duration_since(*at) < ISSUED_TOKEN_LIFETIME);
        if issued.len() >= MAX_ISSUED
            && let Some(oldest) = issued
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            issued.remove(&oldest);
        }
        issued.insert(token.clone(), (role, now));
        token
    }
}

/// Writes `secret` readable by the owner only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{secret}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiToken, ApiUser};

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).expect("header"),
        );
        h
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
        );
        h
    }

    #[test]
    fn users_tokens_roles_and_issued_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let http = HttpConfig {
            users: vec![ApiUser {
                name: "bob".into(),
                password_hash: hash_password("beilder").expect("hash"),
                role: ApiRole::Read,
            }],
            tokens: vec![ApiToken {
                token: "0123456789abcdef-admin".into(),
                role: ApiRole::Admin,
            }],
            ..HttpConfig::default()
        };
        let auth = Auth::from_config(&http, dir.path()).expect("auth");
        assert!(
            !dir.path().join(TOKEN_FILE).exists(),
            "configured: nothing generated"
        );
        let now = Instant::now();
        assert_eq!(
            auth.require(&basic("bob", "beilder"), ApiRole::Read, now),
            Ok(ApiRole::Read)
        );
        assert_eq!(
            auth.require(&basic("bob", "beilder"), ApiRole::Admin, now),
            Err(Denied::Forbidden {
                role: ApiRole::Read,
                needed: ApiRole::Admin
            })
        );
        assert_eq!(
            auth.require(&basic("bob", "wrong"), ApiRole::Read, now),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            auth.require(&HeaderMap::new(), ApiRole::Read, now),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            auth.require(&bearer("0123456789abcdef-admin"), ApiRole::Admin, now),
            Ok(ApiRole::Admin)
        );
        let t = auth.issue(ApiRole::Read, now);
        assert_eq!(
            auth.token_role(&t, now + Duration::from_secs(10)),
            Some(ApiRole::Read)
        );
        assert_eq!(
            auth.token_role(&t, now + ISSUED_TOKEN_LIFETIME),
            None,
            "expired"
        );
    }

    #[test]
    fn nothing_configured_generates_a_private_token_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = Auth::from_config(&HttpConfig::default(), dir.path()).expect("auth");
        let path = dir.path().join(TOKEN_FILE);
        let token = std::fs::read_to_string(&path).expect("token file");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(token.trim().len() >= 40);
        assert_eq!(
            auth.require(&bearer(token.trim()), ApiRole::Admin, Instant::now()),
            Ok(ApiRole::Admin)
        );
    }
}
