//! The HTTP API (SPEC §7): health, Prometheus metrics, recordings, stop, the CMS events
//! WebSocket; authenticated by [`auth`] (all but `/health` and `/metrics`), optionally over
//! TLS ([`tls`]).

pub mod auth;
mod events;
mod metrics;
pub mod tls;

use crate::config::ApiRole;
use crate::telemetry::Telemetry;
use auth::{Auth, Denied};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A request from the API to the SIP core.
#[derive(Debug)]
pub enum ApiCommand {
    /// End a recording with BYE.
    Stop { recording_id: String },
}

#[derive(Clone)]
pub struct ApiState {
    pub telemetry: Arc<Telemetry>,
    pub commands: mpsc::UnboundedSender<ApiCommand>,
    pub auth: Arc<Auth>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/authTokens", post(auth_token))
        .route("/api/v1/recordings", get(list))
        .route("/api/v1/recordings/{id}", get(one))
        .route("/api/v1/recordings/{id}/stop", post(stop))
        .route("/events/v1", get(events::upgrade))
        .with_state(state)
}

/// Checks the request's credentials off the async threads (argon2 is deliberately slow).
async fn authorize(s: &ApiState, headers: &HeaderMap, needed: ApiRole) -> Result<ApiRole, Denied> {
    let (auth, headers) = (s.auth.clone(), headers.clone());
    let now = std::time::Instant::now();
    tokio::task::spawn_blocking(move || auth.require(&headers, needed, now))
        .await
        .unwrap_or(Err(Denied::Unauthenticated))
}

/// CMS events guide §4: a token for the events socket in `X-Cisco-CMS-Auth-Token`.
async fn auth_token(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    let role = match authorize(&s, &headers, ApiRole::Read).await {
        Ok(r) => r,
        Err(d) => return d.into_response(),
    };
    let token = s.auth.issue(role, std::time::Instant::now());
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&token) {
        r.headers_mut().insert("X-Cisco-CMS-Auth-Token", v);
    }
    r
}

/// 200 `ok` (503 `draining`), then one detail line per CDR receiver that is failing: a
/// failing receiver does not make the recorder unhealthy (records wait in the spool), but an
/// operator looking at `/health` sees it.
async fn health(State(s): State<ApiState>) -> Response {
    let (status, mut body) = if s.telemetry.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, String::from("draining\n"))
    } else {
        (StatusCode::OK, String::from("ok\n"))
    };
    for r in s.telemetry.cdr_receivers() {
        let failures = r.consecutive_failures();
        if failures > 0 {
            body.push_str(&format!(
                "cdr receiver {} failing: {} consecutive failures, {} records pending, last error: {}\n",
                r.receiver,
                failures,
                r.pending(),
                r.last_error().unwrap_or_default()
            ));
        }
    }
    (status, body).into_response()
}

async fn list(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(d) = authorize(&s, &headers, ApiRole::Read).await {
        return d.into_response();
    }
    let (active, recent) = s.telemetry.recordings().await;
    Json(serde_json::json!({ "active": active, "recent": recent })).into_response()
}

async fn one(State(s): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(d) = authorize(&s, &headers, ApiRole::Read).await {
        return d.into_response();
    }
    match s.telemetry.recording(&id).await {
        Some(doc) => Json(doc).into_response(),
        None => (StatusCode::NOT_FOUND, "no such recording\n").into_response(),
    }
}

async fn stop(State(s): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(d) = authorize(&s, &headers, ApiRole::Admin).await {
        return d.into_response();
    }
    if !s.telemetry.is_active(&id) {
        return (StatusCode::NOT_FOUND, "no such active recording\n").into_response();
    }
    if s.commands
        .send(ApiCommand::Stop { recording_id: id })
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    (StatusCode::ACCEPTED, "stopping\n").into_response()
}
