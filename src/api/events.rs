//! The events WebSocket (`GET /api/v1/events`), in the style of the Cisco Meeting Server
//! events API: the client subscribes to `recordings`; the server sends the full list, then
//! one `recordingUpdate` per change; every server message carries a `messageId` the client
//! acknowledges with a `messageAck`. A client that leaves too many unacknowledged is
//! disconnected, so a stuck subscriber costs bounded memory.

use super::ApiState;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

/// Server messages a client may leave unacknowledged before it is dropped.
const MAX_UNACKED: usize = 256;

pub async fn upgrade(State(s): State<ApiState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve(socket, s))
}

struct Session {
    next_id: u64,
    unacked: std::collections::BTreeSet<u64>,
}

impl Session {
    fn message(&mut self, kind: &str, body: Value) -> Message {
        self.next_id += 1;
        self.unacked.insert(self.next_id);
        let mut message = json!({ "messageId": self.next_id, "type": kind });
        if let (Some(m), Value::Object(b)) = (message.as_object_mut(), body) {
            m.extend(b);
        }
        Message::Text(
            json!({ "type": "message", "message": message })
                .to_string()
                .into(),
        )
    }
}

async fn serve(mut socket: WebSocket, state: ApiState) {
    let mut session = Session {
        next_id: 0,
        unacked: Default::default(),
    };
    let mut changes: Option<tokio::sync::broadcast::Receiver<crate::telemetry::RecordingChange>> =
        None;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    let _ = socket.send(Message::Text(json!({"type": "error", "reason": "not JSON"}).to_string().into())).await;
                    continue;
                };
                match v["type"].as_str() {
                    Some("messageAck") => {
                        if let Some(id) = v["messageAck"]["messageId"].as_u64() {
                            session.unacked.remove(&id);
                        }
                    }
                    Some("message") if v["message"]["type"] == "subscribeRequest" => {
                        let wants_recordings = v["message"]["subscriptions"]
                            .as_array()
                            .is_some_and(|subs| subs.iter().any(|s| s["type"] == "recordings"));
                        let id = v["message"]["messageId"].clone();
                        let ack = json!({"type": "messageAck", "messageAck": {"messageId": id, "status": if wants_recordings { "success" } else { "error" }}});
                        if socket.send(Message::Text(ack.to_string().into())).await.is_err() {
                            return;
                        }
                        if wants_recordings {
                            // Subscribe before taking the list: no change falls in between.
                            changes = Some(state.telemetry.subscribe());
                            let (active, _) = state.telemetry.recordings();
                            let msg = session.message("recordingsUpdate", json!({ "updateType": "full", "recordings": active }));
                            if socket.send(msg).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ => {}
                }
            }
            change = async {
                match changes.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let msg = match change {
                    Ok(c) => session.message("recordingUpdate", json!({
                        "recordingId": c.recording_id,
                        "recording": c.document,
                    })),
                    // Missed changes: send the whole list again.
                    Err(RecvError::Lagged(_)) => {
                        let (active, _) = state.telemetry.recordings();
                        session.message("recordingsUpdate", json!({ "updateType": "full", "recordings": active }))
                    }
                    Err(RecvError::Closed) => return,
                };
                if session.unacked.len() > MAX_UNACKED || socket.send(msg).await.is_err() {
                    tracing::warn!("events subscriber dropped: too many unacknowledged messages or gone");
                    return;
                }
            }
        }
    }
}
