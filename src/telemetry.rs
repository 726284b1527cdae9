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

/// How a recording task is asked for its current document: the API and `/metrics` ask only
/// when they are read, instead of every task serializing its document every second.
pub type SnapshotRequests = tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<Value>>;

/// How long a read waits for a busy recording task before it shows the last published state.
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A recording's document as the recording tasks hand it over: serialized once, to compact
/// JSON text, and never built as a `Value` unless an event subscriber is there to take one
/// (a `Value` of a call's document costs tens of allocations to build and to drop). The
/// recording task gives its typed document; the tests give `Value`s.
pub trait PublishedDocument: serde::Serialize {
    /// What events follow (`state`, `pauses`), as text: a change of it is an event, any
    /// other change is a refresh.
    fn followed(&self) -> String;
    /// Adds the streams' RTP counters to `totals`, by codec.
    fn add_rtp(&self, totals: &mut BTreeMap<String, RtpCounters>);
    /// Adds the streams' undecodable packets to `totals`, by payload type.
    fn add_undecodable(&self, totals: &mut BTreeMap<u8, u64>);
}

/// An active recording: its document as of its last state change, and how to ask it for
/// the current one (counters included).
struct ActiveRecording {
    /// Compact JSON text: a parsed `Value` of the same document takes about seven times the
    /// memory, and there is one per active call. Parsed again only when it is read.
    document: Arc<str>,
    /// What events follow, to tell a state change from a refresh.
    followed: String,
    snapshots: SnapshotRequests,
}

/// A recently ended recording, kept as text for the reason `ActiveRecording` is.
struct RecentRecording {
    recording_id: String,
    document: Arc<str>,
}

impl ActiveRecording {
    fn document(&self) -> Value {
        parse_published(&self.document)
    }
}

fn parse_published(text: &str) -> Value {
    // Text this module serialized from a `Value` parses back to it.
    serde_json::from_str(text).unwrap_or_default()
}

/// Compact JSON text of a document this module takes.
fn to_text(document: &impl serde::Serialize) -> Arc<str> {
    // Documents are maps with string keys and plain values: serializing them cannot fail.
    serde_json::to_string(document).unwrap_or_default().into()
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
    /// The WAV writer, whose counters `/metrics` shows; set once at startup.
    pub writer: std::sync::OnceLock<crate::recording::writer::WriterHandle>,
    /// recording.json `storage` of recordings whose upload is not finished, by id.
    uploads: DashMap<String, Value>,
    responses: Mutex<BTreeMap<u16, u64>>,
    /// SIP requests taken despite an oddity (SPEC §3 tolerances), by kind.
    sip_tolerances: Mutex<BTreeMap<&'static str, u64>>,
    /// Every active recording, by recording id.
    active: DashMap<String, ActiveRecording>,
    recent: Mutex<VecDeque<RecentRecording>>,
    /// RTP counters of ended recordings by codec (active ones are summed at scrape time).
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
            writer: std::sync::OnceLock::new(),
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

    /// Tells event subscribers of a change (`None`: discarded); with none, nothing is built.
    fn changed(&self, recording_id: &str, document: Option<&str>) {
        if self.changes.receiver_count() == 0 {
            return;
        }
        // A subscriber that leaves meanwhile is not an error.
        let _ = self.changes.send(RecordingChange {
            recording_id: recording_id.to_string(),
            document: document.map(parse_published),
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

    /// A recording's state changed (started, paused, resumed, streams or metadata changed):
    /// its document is published and told to event subscribers.
    pub fn publish_active(
        &self,
        recording_id: &str,
        document: &impl PublishedDocument,
        snapshots: &SnapshotRequests,
    ) {
        // Events for what subscribers follow (state, pauses), not for a metadata refresh.
        let followed = document.followed();
        let changed = self
            .active
            .get(recording_id)
            .is_none_or(|old| old.followed != followed);
        let text = to_text(document);
        if changed {
            self.changed(recording_id, Some(&text));
        }
        self.active.insert(
            recording_id.to_string(),
            ActiveRecording {
                document: text,
                followed,
                snapshots: snapshots.clone(),
            },
        );
    }

    /// A recording ended: it moves to the recent list, its counters to the totals.
    pub fn publish_ended(&self, recording_id: &str, document: &impl PublishedDocument) {
        self.active.remove(recording_id);
        let text = to_text(document);
        self.changed(recording_id, Some(&text));
        if let Ok(mut totals) = self.rtp_ended.lock() {
            document.add_rtp(&mut totals);
        }
        if let Ok(mut totals) = self.undecodable_ended.lock() {
            document.add_undecodable(&mut totals);
        }
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(RecentRecording {
                recording_id: recording_id.to_string(),
                document: text,
            });
        }
    }

    /// A recording was cancelled before it was answered: nothing of it is kept.
    pub fn publish_discarded(&self, recording_id: &str) {
        self.active.remove(recording_id);
        self.changed(recording_id, None);
    }

    /// The current document of an active recording (asked from its task), else of a recent
    /// ended one.
    pub async fn recording(&self, recording_id: &str) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT;
        let asked = self
            .active
            .get(recording_id)
            .map(|a| (a.document.clone(), ask(&a.snapshots)));
        if let Some((published, answer)) = asked {
            return Some(answer_or(published, answer, deadline).await);
        }
        self.ended(recording_id).map(|d| self.with_upload(d))
    }

    /// The final document of a recently ended recording.
    fn ended(&self, recording_id: &str) -> Option<Value> {
        let recent = self.recent.lock().ok()?;
        recent
            .iter()
            .rev()
            .find(|r| r.recording_id == recording_id)
            .map(|r| parse_published(&r.document))
    }

    /// A recording's document as last published (active) or as it ended (recent), without
    /// asking its task: for the fields that do not change during a call.
    pub fn published(&self, recording_id: &str) -> Option<Value> {
        if let Some(a) = self.active.get(recording_id) {
            return Some(a.document());
        }
        self.ended(recording_id)
    }

    /// Whether a recording is active (the API's stop refuses others).
    pub fn is_active(&self, recording_id: &str) -> bool {
        self.active.contains_key(recording_id)
    }

    /// Active recordings' documents as of their last state change: what events report.
    pub fn published_active(&self) -> Vec<Value> {
        self.active.iter().map(|e| e.value().document()).collect()
    }

    /// Active recordings' current documents (asked from their tasks), then the most recent
    /// ended ones.
    pub async fn recordings(&self) -> (Vec<Value>, Vec<Value>) {
        let active = self.current_active().await;
        let recent: Vec<Arc<str>> = self
            .recent
            .lock()
            .map(|r| r.iter().rev().map(|r| r.document.clone()).collect())
            .unwrap_or_default();
        (
            active,
            recent
                .iter()
                .map(|d| self.with_upload(parse_published(d)))
                .collect(),
        )
    }

    /// Every active recording's current document. All are asked at once and share one
    /// deadline: tasks too busy to answer cost one wait in all, not one wait each.
    pub async fn current_active(&self) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT;
        let asked: Vec<_> = self
            .active
            .iter()
            .map(|e| (e.value().document.clone(), ask(&e.value().snapshots)))
            .collect();
        let mut docs = Vec::with_capacity(asked.len());
        for (published, answer) in asked {
            docs.push(answer_or(published, answer, deadline).await);
        }
        docs
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
            && let Some(r) = recent.iter_mut().find(|r| r.recording_id == recording_id)
        {
            let mut doc = parse_published(&r.document);
            doc["storage"] = storage;
            r.document = to_text(&doc);
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

    /// RTP counters by codec: ended recordings plus `active` (their current documents).
    pub fn rtp_by_codec(&self, active: &[Value]) -> BTreeMap<String, RtpCounters> {
        let mut totals = self.rtp_ended.lock().map(|t| t.clone()).unwrap_or_default();
        for doc in active {
            doc.add_rtp(&mut totals);
        }
        totals
    }

    /// The CDR receivers (none configured: empty).
    pub fn cdr_receivers(&self) -> &[Arc<crate::cdr::ReceiverHealth>] {
        self.cdr_receivers.get().map_or(&[], |r| r.as_slice())
    }

    /// RTP packets no decoder took, by payload type, over all recordings.
    pub fn rtp_undecodable(&self, active: &[Value]) -> BTreeMap<u8, u64> {
        let mut totals = self
            .undecodable_ended
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        for doc in active {
            doc.add_undecodable(&mut totals);
        }
        totals
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

type Answer = tokio::sync::oneshot::Receiver<Value>;

/// Asks a recording task for its current document; `None` when the task is gone.
fn ask(snapshots: &SnapshotRequests) -> Option<Answer> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    snapshots.send(tx).is_ok().then_some(rx)
}

/// The task's answer, or its published document when it does not answer by `deadline`.
async fn answer_or(
    published: Arc<str>,
    answer: Option<Answer>,
    deadline: tokio::time::Instant,
) -> Value {
    let Some(answer) = answer else {
        return parse_published(&published);
    };
    match tokio::time::timeout_at(deadline, answer).await {
        Ok(Ok(doc)) => doc,
        _ => parse_published(&published),
    }
}

/// A recording task's current document, as its snapshot answers give it.
impl PublishedDocument for Value {
    fn followed(&self) -> String {
        serde_json::to_string(&(&self["state"], &self["pauses"])).unwrap_or_default()
    }

    fn add_rtp(&self, totals: &mut BTreeMap<String, RtpCounters>) {
        for s in self["streams"].as_array().into_iter().flatten() {
            let codec = s["codec"].as_str().unwrap_or("unknown");
            add_stream_rtp(
                totals,
                codec,
                [
                    &s["packets_received"],
                    &s["packets_lost"],
                    &s["packets_late"],
                ]
                .map(|n| n.as_u64().unwrap_or(0)),
            );
        }
    }

    fn add_undecodable(&self, totals: &mut BTreeMap<u8, u64>) {
        for s in self["streams"].as_array().into_iter().flatten() {
            for (pt, n) in s["packets_undecodable"].as_object().into_iter().flatten() {
                add_stream_undecodable(totals, pt, n.as_u64().unwrap_or(0));
            }
        }
    }
}

impl PublishedDocument for crate::recording::session::RecordingDocument {
    fn followed(&self) -> String {
        serde_json::to_string(&(&self.state, &self.pauses)).unwrap_or_default()
    }

    fn add_rtp(&self, totals: &mut BTreeMap<String, RtpCounters>) {
        for s in &self.streams {
            let codec = s.codec.as_deref().unwrap_or("unknown");
            add_stream_rtp(
                totals,
                codec,
                [s.packets_received, s.packets_lost, s.packets_late],
            );
        }
    }

    fn add_undecodable(&self, totals: &mut BTreeMap<u8, u64>) {
        for s in &self.streams {
            for (pt, n) in &s.packets_undecodable {
                add_stream_undecodable(totals, pt, *n);
            }
        }
    }
}

/// One stream's `[received, lost, late]` packets into the totals of its codec.
fn add_stream_rtp(
    totals: &mut BTreeMap<String, RtpCounters>,
    codec: &str,
    [received, lost, late]: [u64; 3],
) {
    if !totals.contains_key(codec) {
        totals.insert(codec.to_string(), RtpCounters::default());
    }
    if let Some(t) = totals.get_mut(codec) {
        t.received += received;
        t.lost += lost;
        t.late += late;
    }
}

/// One stream's undecodable packets of payload type `pt` (a document's map key).
fn add_stream_undecodable(totals: &mut BTreeMap<u8, u64>, pt: &str, n: u64) {
    if let Ok(pt) = pt.parse::<u8>() {
        *totals.entry(pt).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A recording task's side of the snapshot channel: answers every request with `doc`
    /// and counts the requests.
    fn task_answering(doc: Value) -> (SnapshotRequests, Arc<AtomicU64>) {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<Value>>();
        let asked = Arc::new(AtomicU64::new(0));
        let counter = asked.clone();
        tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = reply.send(doc.clone());
            }
        });
        (tx, asked)
    }

    #[tokio::test]
    async fn reads_ask_the_task_for_its_current_document_and_only_when_read() {
        let t = Telemetry::default();
        let published = json!({"recording_id": "r1", "state": "active", "pauses": 0,
            "streams": [{"codec": "PCMU", "packets_received": 0}]});
        let current = json!({"recording_id": "r1", "state": "active", "pauses": 0,
            "streams": [{"codec": "PCMU", "packets_received": 250}]});
        let (snapshots, asked) = task_answering(current.clone());
        t.publish_active("r1", &published, &snapshots);
        assert_eq!(asked.load(Ordering::Relaxed), 0, "publishing asks nothing");
        assert_eq!(t.recording("r1").await, Some(current.clone()));
        let (active, _) = t.recordings().await;
        assert_eq!(active, vec![current.clone()]);
        let rtp = t.rtp_by_codec(&t.current_active().await);
        assert_eq!(rtp["PCMU"].received, 250);
        assert_eq!(asked.load(Ordering::Relaxed), 3, "one question per read");
        // Events and the EDR see the published document, without asking.
        assert_eq!(t.published_active(), vec![published.clone()]);
        assert_eq!(t.published("r1"), Some(published));
        assert_eq!(asked.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_task_that_does_not_answer_shows_its_published_document() {
        let t = Telemetry::default();
        let published = json!({"recording_id": "r2", "state": "paused", "pauses": 1});
        // A task busy past the wait: requests are taken and never answered.
        let (snapshots, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let held = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Some(reply) = rx.recv().await {
                kept.push(reply);
            }
        });
        t.publish_active("r2", &published, &snapshots);
        assert_eq!(t.recording("r2").await, Some(published.clone()));
        assert!(t.is_active("r2"));
        // Several such tasks cost one wait in all, not one each.
        for id in ["r4", "r5", "r6", "r7"] {
            t.publish_active(
                id,
                &json!({"recording_id": id, "state": "active"}),
                &snapshots,
            );
        }
        let started = std::time::Instant::now();
        assert_eq!(t.current_active().await.len(), 5);
        assert!(
            started.elapsed() < SNAPSHOT_WAIT * 2,
            "five unanswering recordings took {:?}",
            started.elapsed()
        );
        t.publish_ended("r2", &json!({"recording_id": "r2", "state": "ended"}));
        assert!(!t.is_active("r2"));
        assert_eq!(t.recording("r2").await.unwrap()["state"], "ended");
        held.abort();
    }

    #[tokio::test]
    async fn a_published_document_reads_back_exactly_as_published() {
        let t = Telemetry::default();
        let (snapshots, _asked) = task_answering(json!({}));
        // Floats whose shortest text is long, strings that need escaping, nesting.
        let published = json!({"recording_id": "r8", "state": "active", "pauses": [],
            "streams": [{"jitter_ms": 0.1 + 0.2, "mos": 4.123_456_789_012_345,
            "loudness_dbfs": -63.999_999_999_999_99, "party": "\"Ann\" <sip:a@b>\n"}]});
        t.publish_active("r8", &published, &snapshots);
        assert_eq!(t.published("r8"), Some(published.clone()));
        assert_eq!(t.published_active(), vec![published]);
        // Every float, not most: jitter and loudness figures span many magnitudes.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let floats: Vec<f64> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f64::from_bits(x >> 2) // finite, positive, from tiny to huge
            })
            .collect();
        let published = json!({"recording_id": "r9", "state": "active", "floats": floats});
        t.publish_active("r9", &published, &snapshots);
        assert_eq!(t.published("r9"), Some(published));
    }

    #[tokio::test]
    async fn an_ended_recording_reads_back_counts_in_the_totals_and_takes_its_upload() {
        let t = Telemetry::default();
        let (snapshots, _asked) = task_answering(json!({}));
        let ended = json!({"recording_id": "r10", "state": "ended", "pauses": [],
            "streams": [{"codec": "PCMA", "packets_received": 40, "packets_lost": 2,
                "packets_late": 1, "packets_undecodable": {"18": 5}},
                {"codec": null, "packets_received": 7}]});
        t.publish_active(
            "r10",
            &json!({"recording_id": "r10", "state": "active"}),
            &snapshots,
        );
        let mut changes = t.subscribe();
        t.publish_ended("r10", &ended);
        assert_eq!(changes.try_recv().unwrap().document, Some(ended.clone()));
        assert!(!t.is_active("r10"));
        assert_eq!(t.recording("r10").await, Some(ended.clone()));
        assert_eq!(t.recordings().await.1, vec![ended.clone()]);
        let rtp = t.rtp_by_codec(&[]);
        assert_eq!(
            (rtp["PCMA"].received, rtp["PCMA"].lost, rtp["PCMA"].late),
            (40, 2, 1)
        );
        assert_eq!(rtp["unknown"].received, 7);
        assert_eq!(t.rtp_undecodable(&[]), BTreeMap::from([(18, 5)]));
        // An upload in flight shows beside the document; a finished one is written into it.
        t.publish_storage("r10", json!({"state": "uploading"}), false);
        assert_eq!(
            t.recording("r10").await.unwrap()["storage"]["state"],
            "uploading"
        );
        t.publish_storage("r10", json!({"state": "uploaded"}), true);
        let mut expected = ended;
        expected["storage"] = json!({"state": "uploaded"});
        assert_eq!(t.recordings().await.1, vec![expected]);
        // A discarded recording leaves no trace but the event.
        t.publish_active(
            "r11",
            &json!({"recording_id": "r11", "state": "active"}),
            &snapshots,
        );
        t.publish_discarded("r11");
        assert_eq!(t.recording("r11").await, None);
        let discarded = std::iter::from_fn(|| changes.try_recv().ok())
            .last()
            .unwrap();
        assert_eq!(
            (discarded.recording_id.as_str(), discarded.document),
            ("r11", None)
        );
    }

    #[tokio::test]
    async fn events_follow_state_and_pauses_not_every_publish() {
        let t = Telemetry::default();
        let mut changes = t.subscribe();
        let (snapshots, _asked) = task_answering(json!({}));
        let doc = |state: &str, pauses: u64, meta: u64| json!({"recording_id": "r3", "state": state, "pauses": pauses, "metadata_updates": meta});
        t.publish_active("r3", &doc("active", 0, 0), &snapshots);
        t.publish_active("r3", &doc("active", 0, 1), &snapshots);
        t.publish_active("r3", &doc("paused", 1, 1), &snapshots);
        let mut states = Vec::new();
        while let Ok(c) = changes.try_recv() {
            states.push(c.document.unwrap()["state"].as_str().unwrap().to_string());
        }
        assert_eq!(states, ["active", "paused"]);
    }
}
