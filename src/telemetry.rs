//! What the running recorder knows about itself, shared between the SIP core, the recording
//! tasks and the HTTP API: counters, the active recordings' documents, and flags that drive
//! admission (draining, disk full).

use dashmap::DashMap;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How many ended recordings `GET /api/v1/recordings` keeps showing.
const RECENT: usize = 100;

#[derive(Debug, Clone, Copy, Default)]
pub struct RtpCounters {
    pub received: u64,
    pub lost: u64,
    pub late: u64,
}

/// A change to one recording, for the events WebSocket.
#[derive(Debug, Clone)]
pub struct RecordingChange {
    pub recording_id: String,
    /// The current recording.json; `None` when a recording was discarded.
    pub document: Option<Value>,
}

/// Changes buffered for slow event subscribers before they miss some (they then get a
/// fresh full list).
const EVENT_BUFFER: usize = 1024;

pub struct Telemetry {
    changes: tokio::sync::broadcast::Sender<RecordingChange>,
    pub draining: AtomicBool,
    pub disk_full: AtomicBool,
    pub disk_used_percent: AtomicU64,
    pub disk_free_bytes: AtomicU64,
    pub active_sessions: AtomicU64,
    pub free_rtp_ports: AtomicU64,
    pub recordings_started: AtomicU64,
    pub cdr_spool_depth: AtomicU64,
    /// Streams that ended without any sound (one-way or silent audio, or no RTP).
    pub silent_streams: AtomicU64,
    /// Recordings that ended incomplete (loss, media gaps, fewer packets than the SRC sent).
    pub incomplete_recordings: AtomicU64,
    /// Delivery state of each CDR receiver, set once at startup.
    pub cdr_receivers: std::sync::OnceLock<Arc<Vec<Arc<crate::cdr::ReceiverHealth>>>>,
    /// SIPREC metadata documents that could not be read (the calls were recorded anyway).
    pub metadata_unreadable: AtomicU64,
    /// Object storage upload counters, set once at startup when `[storage]` is configured.
    pub storage: std::sync::OnceLock<Arc<crate::storage::StorageStats>>,
    /// recording.json `storage` of recordings whose upload is not finished, by id.
    uploads: DashMap<String, Value>,
    responses: Mutex<BTreeMap<u16, u64>>,
    /// SIP requests taken despite an oddity (SPEC §3 tolerances), by kind.
    sip_tolerances: Mutex<BTreeMap<&'static str, u64>>,
    /// recording.json of every active recording, by recording id.
    active: DashMap<String, Value>,
    recent: Mutex<VecDeque<Value>>,
    /// RTP counters of ended recordings by codec (active ones are summed at render time).
    rtp_ended: Mutex<BTreeMap<String, RtpCounters>>,
    /// Undecodable RTP packets of ended recordings by payload type.
    undecodable_ended: Mutex<BTreeMap<u8, u64>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            changes: tokio::sync::broadcast::channel(EVENT_BUFFER).0,
            draining: AtomicBool::default(),
            disk_full: AtomicBool::default(),
            disk_used_percent: AtomicU64::default(),
            disk_free_bytes: AtomicU64::default(),
            active_sessions: AtomicU64::default(),
            free_rtp_ports: AtomicU64::default(),
            recordings_started: AtomicU64::default(),
            metadata_unreadable: AtomicU64::default(),
            cdr_spool_depth: AtomicU64::default(),
            silent_streams: AtomicU64::default(),
            incomplete_recordings: AtomicU64::default(),
            cdr_receivers: std::sync::OnceLock::new(),
            storage: std::sync::OnceLock::new(),
            uploads: DashMap::default(),
            responses: Mutex::default(),
            sip_tolerances: Mutex::default(),
            active: DashMap::default(),
            recent: Mutex::default(),
            rtp_ended: Mutex::default(),
            undecodable_ended: Mutex::default(),
        }
    }
}

impl Telemetry {
    /// Every change of any recording from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RecordingChange> {
        self.changes.subscribe()
    }

    fn changed(&self, recording_id: &str, document: Option<Value>) {
        // No subscriber is not an error.
        let _ = self.changes.send(RecordingChange {
            recording_id: recording_id.to_string(),
            document,
        });
    }

    pub fn set_responses(&self, by_code: &std::collections::HashMap<u16, u64>) {
        if let Ok(mut r) = self.responses.lock() {
            r.clear();
            r.extend(by_code.iter().map(|(k, v)| (*k, *v)));
        }
    }

    pub fn set_sip_tolerances(&self, by_kind: &std::collections::HashMap<&'static str, u64>) {
        if let Ok(mut t) = self.sip_tolerances.lock() {
            t.clear();
            t.extend(by_kind.iter().map(|(k, v)| (*k, *v)));
        }
    }

    pub fn sip_tolerances(&self) -> BTreeMap<&'static str, u64> {
        self.sip_tolerances
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    pub fn responses(&self) -> BTreeMap<u16, u64> {
        self.responses.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn publish_active(&self, recording_id: &str, document: Value) {
        // Events on state changes only: counters move every second and would drown them.
        let changed = self.active.get(recording_id).is_none_or(|old| {
            old["state"] != document["state"] || old["pauses"] != document["pauses"]
        });
        if changed {
            self.changed(recording_id, Some(document.clone()));
        }
        self.active.insert(recording_id.to_string(), document);
    }

    /// A recording ended (or was discarded, `document = None`): move it to the recent list.
    pub fn publish_ended(&self, recording_id: &str, document: Option<Value>) {
        self.active.remove(recording_id);
        self.changed(recording_id, document.clone());
        let Some(doc) = document else { return };
        if let Ok(mut totals) = self.rtp_ended.lock() {
            add_rtp(&mut totals, &doc);
        }
        if let Ok(mut totals) = self.undecodable_ended.lock() {
            add_undecodable(&mut totals, &doc);
        }
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(doc);
        }
    }

    pub fn recording(&self, recording_id: &str) -> Option<Value> {
        if let Some(doc) = self.active.get(recording_id) {
            return Some(doc.clone());
        }
        let recent = self.recent.lock().ok()?;
        recent
            .iter()
            .rev()
            .find(|d| d["recording_id"] == recording_id)
            .cloned()
            .map(|d| self.with_upload(d))
    }

    /// Active recordings first, then the most recent ended ones.
    pub fn recordings(&self) -> (Vec<Value>, Vec<Value>) {
        let active = self.active.iter().map(|e| e.value().clone()).collect();
        let recent: Vec<Value> = self
            .recent
            .lock()
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default();
        (
            active,
            recent.into_iter().map(|d| self.with_upload(d)).collect(),
        )
    }

    /// An ended recording's upload state (recording.json `storage`) changed. A finished
    /// upload is written into the recent document and no longer tracked apart.
    pub fn publish_storage(&self, recording_id: &str, storage: Value, finished: bool) {
        if !finished {
            self.uploads.insert(recording_id.to_string(), storage);
            return;
        }
        self.uploads.remove(recording_id);
        if let Ok(mut recent) = self.recent.lock()
            && let Some(doc) = recent
                .iter_mut()
                .find(|d| d["recording_id"] == recording_id)
        {
            doc["storage"] = storage;
        }
    }

    fn with_upload(&self, mut doc: Value) -> Value {
        if let Some(id) = doc["recording_id"].as_str()
            && let Some(storage) = self.uploads.get(id)
        {
            doc["storage"] = storage.clone();
        }
        doc
    }

    pub fn active_recordings(&self) -> usize {
        self.active.len()
    }

    pub fn rtp_by_codec(&self) -> BTreeMap<String, RtpCounters> {
        let mut totals = self.rtp_ended.lock().map(|t| t.clone()).unwrap_or_default();
        for doc in self.active.iter() {
            add_rtp(&mut totals, doc.value());
        }
        totals
    }

    /// The CDR receivers (none configured: empty).
    pub fn cdr_receivers(&self) -> &[Arc<crate::cdr::ReceiverHealth>] {
        self.cdr_receivers.get().map_or(&[], |r| r.as_slice())
    }

    /// RTP packets no decoder took, by payload type, over all recordings.
    pub fn rtp_undecodable(&self) -> BTreeMap<u8, u64> {
        let mut totals = self
            .undecodable_ended
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        for doc in self.active.iter() {
            add_undecodable(&mut totals, doc.value());
        }
        totals
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

fn add_undecodable(totals: &mut BTreeMap<u8, u64>, doc: &Value) {
    let Some(streams) = doc["streams"].as_array() else {
        return;
    };
    for s in streams {
        let Some(by_pt) = s["packets_undecodable"].as_object() else {
            continue;
        };
        for (pt, n) in by_pt {
            if let Ok(pt) = pt.parse::<u8>() {
                *totals.entry(pt).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }
}

fn add_rtp(totals: &mut BTreeMap<String, RtpCounters>, doc: &Value) {
    let Some(streams) = doc["streams"].as_array() else {
        return;
    };
    for s in streams {
        let codec = s["codec"].as_str().unwrap_or("unknown").to_string();
        let t = totals.entry(codec).or_default();
        t.received += s["packets_received"].as_u64().unwrap_or(0);
        t.lost += s["packets_lost"].as_u64().unwrap_or(0);
        t.late += s["packets_late"].as_u64().unwrap_or(0);
    }
}
