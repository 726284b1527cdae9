//! The HTTP API (SPEC §7): health, Prometheus metrics, recordings, stop, events WebSocket.

mod events;
mod metrics;

use crate::telemetry::Telemetry;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/recordings", get(list))
        .route("/api/v1/recordings/{id}", get(one))
        .route("/api/v1/recordings/{id}/stop", post(stop))
        .route("/api/v1/events", get(events::upgrade))
        .with_state(state)
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

async fn list(State(s): State<ApiState>) -> Json<serde_json::Value> {
    let (active, recent) = s.telemetry.recordings();
    Json(serde_json::json!({ "active": active, "recent": recent }))
}

async fn one(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    match s.telemetry.recording(&id) {
        Some(doc) => Json(doc).into_response(),
        None => (StatusCode::NOT_FOUND, "no such recording\n").into_response(),
    }
}

async fn stop(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let active = s
        .telemetry
        .recording(&id)
        .is_some_and(|d| d["state"] != "ended");
    if !active {
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
