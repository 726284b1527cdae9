//! The events WebSocket of the Cisco Meeting Server events guide (seed `003_…`):
//! `GET /events/v1?authToken=…` with a token from `POST /api/v1/authTokens`.
//!
//! - The client sends `subscribeRequest` with the complete list of indexed subscriptions
//!   (`calls`, `callInfo` with a `call`, our extension `recordings`), each with the
//!   `elements` it wants; an empty list stops everything. The server acknowledges with a
//!   `messageAck`, then tells each subscription's state in `subscriptionUpdate` (`pending`,
//!   then `active` or `deactivated`) before any update for it.
//! - Updates carry `subscriptionIndex`: `callListUpdate` and `recordingListUpdate` with an
//!   `updates` list whose entries have `updateType` `add`/`update`/`remove` and only the
//!   requested elements (an `update` only the changed ones); `callInfoUpdate` with a
//!   `callInfo` object. A `callInfo` subscription is `deactivated` when its call ends.
//! - Every server message has a `messageId` the client acknowledges; the next message is
//!   sent only after that (the guide: "the client should ACK this message in order for the
//!   Meeting Server to send later updates"). A client that lets too much queue up is dropped,
//!   so a stuck subscriber costs bounded memory.
//!
//! The "calls" are the calls being recorded; their `call` id is the CDR `<call>` value.

use std::collections::{BTreeMap, HashMap, VecDeque};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::auth::Denied;
use crate::config::ApiRole;

/// Server messages queued behind an unacknowledged one before the client is dropped.
const MAX_QUEUED: usize = 1024;
/// The guide's limit per connection.
const MAX_SUBSCRIPTIONS: usize = 100;

pub async fn upgrade(
    State(s): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let now = std::time::Instant::now();
    let by_token = query
        .get("authToken")
        .and_then(|t| s.auth.token_role(t, now));
    let allowed = match by_token {
        Some(_) => true,
        None => super::authorize(&s, &headers, ApiRole::Read).await.is_ok(),
    };
    if !allowed {
        return Denied::Unauthenticated.into_response();
    }
    ws.on_upgrade(move |socket| serve(socket, s))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Calls,
    CallInfo(String),
    Recordings,
    /// A resource we do not serve (e.g. `callRoster`): deactivated at once.
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    Pending,
    Active,
    Deactivated,
}

impl SubState {
    fn as_str(self) -> &'static str {
        match self {
            SubState::Pending => "pending",
            SubState::Active => "active",
            SubState::Deactivated => "deactivated",
        }
    }
}

struct Subscription {
    index: u64,
    resource: Resource,
    elements: Vec<String>,
    state: SubState,
    /// What the client was last told, per item id (requested elements only).
    known: BTreeMap<String, Map<String, Value>>,
}

#[derive(Default)]
struct Session {
    next_id: u64,
    awaiting_ack: Option<u64>,
    outbox: VecDeque<(String, Map<String, Value>)>,
    subs: Vec<Subscription>,
}

impl Session {
    fn queue(&mut self, kind: &str, body: Map<String, Value>) {
        self.outbox.push_back((kind.to_string(), body));
    }

    /// The next message to send, if the previous one was acknowledged.
    fn next_message(&mut self) -> Option<Message> {
        if self.awaiting_ack.is_some() {
            return None;
        }
        let (kind, body) = self.outbox.pop_front()?;
        self.next_id += 1;
        self.awaiting_ack = Some(self.next_id);
        let mut message = Map::new();
        message.insert("messageId".into(), json!(self.next_id));
        message.insert("type".into(), json!(kind));
        message.extend(body);
        let text = json!({ "type": "message", "message": message }).to_string();
        Some(Message::Text(text.into()))
    }

    fn states(&mut self, changed: &[(u64, SubState)]) {
        if changed.is_empty() {
            return;
        }
        let subs: Vec<Value> = changed
            .iter()
            .map(|(i, s)| json!({ "index": i, "state": s.as_str() }))
            .collect();
        let mut body = Map::new();
        body.insert("subscriptions".into(), Value::Array(subs));
        self.queue("subscriptionUpdate", body);
    }
}

fn ack(message_id: &Value, ok: bool) -> Message {
    let status = if ok { "success" } else { "failure" };
    let text =
        json!({"type": "messageAck", "messageAck": {"messageId": message_id, "status": status}});
    Message::Text(text.to_string().into())
}

/// The CDR `<call>` of a recording: calluuid, else the SIPREC session id, else the Call-ID.
fn call_id(doc: &Value) -> String {
    ["calluuid", "siprec_session_id", "sip_call_id"]
        .iter()
        .find_map(|k| doc[*k].as_str().filter(|s| !s.is_empty()))
        .unwrap_or_default()
        .to_string()
}

/// Every element the guide defines for `calls` / `callInfo`, for one recorded call.
fn call_elements(call: &str, docs: &[&Value], info: bool) -> Map<String, Value> {
    let first = docs.first().copied().unwrap_or(&Value::Null);
    let name = first["dn"]
        .as_str()
        .or_else(|| first["from"].as_str())
        .unwrap_or_default();
    let participants: usize = docs
        .iter()
        .map(|d| d["streams"].as_array().map_or(0, Vec::len))
        .sum();
    let recording = if docs.iter().any(|d| d["state"] == "active") {
        "active"
    } else {
        "inactive"
    };
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("participants".into(), json!(participants));
    m.insert("distributedInstances".into(), json!(0));
    m.insert("recording".into(), json!(recording));
    m.insert("endpointRecording".into(), json!("inactive"));
    m.insert("streaming".into(), json!("inactive"));
    // The guide spells the unlocked state differently in the two resources.
    let unlocked = if info { "unlocked" } else { "notLocked" };
    m.insert("lockState".into(), json!(unlocked));
    m.insert("callType".into(), json!("forwarding"));
    m.insert("callCorrelator".into(), json!(call));
    if info {
        m.insert("joinAudioMuteOverride".into(), json!(false));
    }
    m
}

fn pick(all: &Map<String, Value>, elements: &[String]) -> Map<String, Value> {
    elements
        .iter()
        .filter_map(|e| all.get(e).map(|v| (e.clone(), v.clone())))
        .collect()
}

/// What a subscription sees now: item id → its requested elements.
fn snapshot(
    resource: &Resource,
    elements: &[String],
    active: &[Value],
) -> BTreeMap<String, Map<String, Value>> {
    let mut by_call: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for d in active {
        by_call.entry(call_id(d)).or_default().push(d);
    }
    match resource {
        Resource::Calls => by_call
            .iter()
            .map(|(c, docs)| (c.clone(), pick(&call_elements(c, docs, false), elements)))
            .collect(),
        Resource::CallInfo(call) => by_call
            .get(call)
            .map(|docs| {
                (
                    call.clone(),
                    pick(&call_elements(call, docs, true), elements),
                )
            })
            .into_iter()
            .collect(),
        Resource::Recordings => active
            .iter()
            .filter_map(|d| {
                let id = d["recording_id"].as_str()?.to_string();
                Some((id, pick(d.as_object()?, elements)))
            })
            .collect(),
        Resource::Unsupported(_) => BTreeMap::new(),
    }
}

/// add / update (changed elements only) / remove entries between two snapshots.
fn diff(
    id_key: &str,
    before: &BTreeMap<String, Map<String, Value>>,
    now: &BTreeMap<String, Map<String, Value>>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (id, elems) in now {
        let (kind, fields): (&str, Map<String, Value>) = match before.get(id) {
            None => ("add", elems.clone()),
            Some(old) => {
                let changed: Map<String, Value> = elems
                    .iter()
                    .filter(|(k, v)| old.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if changed.is_empty() {
                    continue;
                }
                ("update", changed)
            }
        };
        let mut u = Map::new();
        u.insert(id_key.into(), json!(id));
        u.insert("updateType".into(), json!(kind));
        u.extend(fields);
        out.push(Value::Object(u));
    }
    for id in before.keys().filter(|id| !now.contains_key(*id)) {
        out.push(json!({ id_key: id, "updateType": "remove" }));
    }
    out
}

/// Brings every active subscription up to date with `active`, queueing its updates.
fn refresh(session: &mut Session, active: &[Value]) {
    let mut ended = Vec::new();
    let mut queued = Vec::new();
    for sub in session
        .subs
        .iter_mut()
        .filter(|s| s.state == SubState::Active)
    {
        let now = snapshot(&sub.resource, &sub.elements, active);
        let mut body = Map::new();
        body.insert("subscriptionIndex".into(), json!(sub.index));
        match &sub.resource {
            Resource::CallInfo(_) => {
                let Some((_, elems)) = now.iter().next() else {
                    // The call ended (guide §1.1): the subscription is deactivated.
                    sub.state = SubState::Deactivated;
                    ended.push((sub.index, SubState::Deactivated));
                    continue;
                };
                let first = sub.known.is_empty();
                let changed: Map<String, Value> = elems
                    .iter()
                    .filter(|(k, v)| {
                        first || sub.known.values().next().and_then(|o| o.get(*k)) != Some(*v)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !first && changed.is_empty() {
                    continue;
                }
                body.insert("callInfo".into(), Value::Object(changed));
                queued.push(("callInfoUpdate", body));
            }
            Resource::Calls | Resource::Recordings => {
                let (kind, id_key) = if sub.resource == Resource::Calls {
                    ("callListUpdate", "call")
                } else {
                    ("recordingListUpdate", "recording")
                };
                let updates = diff(id_key, &sub.known, &now);
                if updates.is_empty() {
                    sub.known = now;
                    continue;
                }
                body.insert("updates".into(), Value::Array(updates));
                queued.push((kind, body));
            }
            Resource::Unsupported(_) => continue,
        }
        sub.known = now;
    }
    for (kind, body) in queued {
        session.queue(kind, body);
    }
    session.states(&ended);
}

fn parse_subscription(v: &Value) -> Option<(u64, Resource, Vec<String>)> {
    let index = v["index"].as_u64()?;
    let resource = match v["type"].as_str()? {
        "calls" => Resource::Calls,
        "recordings" => Resource::Recordings,
        "callInfo" => Resource::CallInfo(v["call"].as_str()?.to_string()),
        other => Resource::Unsupported(other.to_string()),
    };
    let elements = match &v["elements"] {
        Value::Null => vec![],
        Value::Array(a) => a
            .iter()
            .map(|e| e.as_str().map(str::to_string))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some((index, resource, elements))
}

/// Applies a subscribe request: the list replaces the previous set. Returns false when the
/// request is malformed (nothing changes).
fn subscribe(session: &mut Session, request: &Value, active: &[Value]) -> bool {
    let Some(list) = request["subscriptions"].as_array() else {
        return false;
    };
    let Some(wanted) = list
        .iter()
        .map(parse_subscription)
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    if wanted.len() > MAX_SUBSCRIPTIONS {
        return false;
    }
    let mut old = std::mem::take(&mut session.subs);
    let mut pending = Vec::new();
    for (index, resource, elements) in wanted {
        // Same index and resource: the same subscription, with the new elements.
        if let Some(pos) = old
            .iter()
            .position(|s| s.index == index && s.resource == resource)
        {
            let mut s = old.remove(pos);
            s.elements = elements;
            session.subs.push(s);
            continue;
        }
        pending.push(index);
        session.subs.push(Subscription {
            index,
            resource,
            elements,
            state: SubState::Pending,
            known: BTreeMap::new(),
        });
    }
    let mut first: Vec<(u64, SubState)> = pending.iter().map(|&i| (i, SubState::Pending)).collect();
    first.extend(
        old.iter()
            .filter(|s| s.state != SubState::Deactivated && !pending.contains(&s.index))
            .map(|s| (s.index, SubState::Deactivated)),
    );
    session.states(&first);
    let mut second = Vec::new();
    for sub in session
        .subs
        .iter_mut()
        .filter(|s| s.state == SubState::Pending)
    {
        sub.state = match &sub.resource {
            Resource::Unsupported(_) => SubState::Deactivated,
            Resource::CallInfo(call) if !active.iter().any(|d| call_id(d) == *call) => {
                SubState::Deactivated
            }
            _ => SubState::Active,
        };
        second.push((sub.index, sub.state));
    }
    session.states(&second);
    refresh(session, active);
    true
}

/// Handles one client frame; acknowledgements to send go to `replies`.
fn on_client(session: &mut Session, text: &str, state: &ApiState, replies: &mut Vec<Message>) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match v["type"].as_str() {
        Some("messageAck") if v["messageAck"]["messageId"].as_u64() == session.awaiting_ack => {
            session.awaiting_ack = None;
        }
        Some("message") => {
            let m = &v["message"];
            let ok = match m["type"].as_str() {
                Some("subscribeRequest") => {
                    let active = state.telemetry.published_active();
                    subscribe(session, m, &active)
                }
                _ => false,
            };
            replies.push(ack(&m["messageId"], ok));
        }
        _ => {}
    }
}

async fn serve(mut socket: WebSocket, state: ApiState) {
    let mut session = Session::default();
    // Subscribed before any snapshot is taken: no change falls in between.
    let mut changes = state.telemetry.subscribe();
    loop {
        while let Some(msg) = session.next_message() {
            if socket.send(msg).await.is_err() {
                return;
            }
        }
        if session.outbox.len() > MAX_QUEUED {
            tracing::warn!("events client dropped: too many unacknowledged messages");
            return;
        }
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let Message::Text(text) = msg else { continue };
                let mut replies = Vec::new();
                on_client(&mut session, &text, &state, &mut replies);
                for r in replies {
                    if socket.send(r).await.is_err() {
                        return;
                    }
                }
            }
            change = changes.recv() => match change {
                // Missed changes only cost a fuller diff: the snapshot is the truth.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    let active = state.telemetry.published_active();
                    refresh(&mut session, &active);
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}
