//! Startup recovery: recordings a crash left `active` or `paused` are finalized before the
//! recorder takes new calls — WAV headers repaired from the data on disk, `state = ended`,
//! `end_reason = "recovered"`, `ended_at` from the files' last write.

use super::mix::{MIXED_FILE, mix_files};
use super::recovery::repair_wav;
use super::session::rfc3339;
use super::task::write_atomic;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// A recording finalized by recovery.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub dir: PathBuf,
    pub document: RecoveredDocument,
}

/// What the closing CDRs of a recovered recording read from its `recording.json`. The
/// document may come from an older or newer recorder: fields it lacks, or holds in another
/// shape, read as their default, and fields not named here are ignored. (Recovery itself
/// edits the document as JSON, so that a rewrite keeps every field it does not know.)
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RecoveredDocument {
    #[serde(default, deserialize_with = "lenient")]
    pub recording_id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub call_leg_id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub sip_call_id: String,
    #[serde(default, deserialize_with = "lenient")]
    pub started_at: String,
    #[serde(default, deserialize_with = "lenient")]
    pub ended_at: String,
    #[serde(default, deserialize_with = "lenient")]
    pub mixed_file: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub streams: Vec<RecoveredStream>,
}

/// One entry of `streams` as `RecoveredDocument` reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RecoveredStream {
    #[serde(default, deserialize_with = "lenient")]
    pub file: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub codec: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub packets_received: u64,
    #[serde(default, deserialize_with = "lenient")]
    pub packets_lost: u64,
    /// Set by recovery from the repaired file.
    #[serde(default, deserialize_with = "lenient")]
    pub duration_seconds: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    pub jitter_ms: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    pub encrypted: bool,
    /// RFC 3611 accounting; absent in documents older than it.
    #[serde(default, deserialize_with = "lenient")]
    pub packet_loss_bursts: Option<KeptPeriod>,
    #[serde(default, deserialize_with = "lenient")]
    pub packet_gap: Option<KeptPeriod>,
}

/// A burst or gap figure a stream's recording.json kept (`media::accounting::PeriodStats`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct KeptPeriod {
    pub duration_seconds: f64,
    pub density_percent: f64,
}

impl RecoveredDocument {
    /// Reads the fields the CDRs need; never fails (see the type's comment).
    pub fn read(doc: &Value) -> RecoveredDocument {
        serde_json::from_value(doc.clone()).unwrap_or_default()
    }
}

/// A field whose value does not have the expected shape reads as its default, as the
/// field's absence does: one odd field costs only itself, not the recording's CDRs.
fn lenient<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let v = Value::deserialize(de)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// Directory depth searched below the recordings root (the default layout uses 4).
const MAX_DEPTH: usize = 8;

impl Recovered {
    /// A recording finalized by startup recovery still gets its callLegEnd and recordingEnd,
    /// stamped with the time its files were last written; `storage` says where its upload
    /// stands.
    pub fn send_cdrs(&self, cdr: &crate::cdr::CdrSink, storage: Option<crate::cdr::ObjectStorage>) {
        let (at, records) = crate::cdr::legs::recovered(&self.document);
        for mut record in records {
            if let crate::cdr::CdrEvent::RecordingEnd(end) = &mut record {
                end.storage = storage.clone();
            }
            cdr.record_at(record, at);
        }
    }
}

/// Find and finalize every unfinished recording under `root`. Problems with one recording
/// are logged and do not stop the others.
pub fn recover_unfinished(root: &Path) -> Vec<Recovered> {
    let mut found = Vec::new();
    collect(root, 0, &mut found);
    found.into_iter().filter_map(|dir| finalize(&dir)).collect()
}

fn collect(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && depth < MAX_DEPTH {
            collect(&path, depth + 1, found);
        } else if kind.is_file() && path.file_name().is_some_and(|n| n == "recording.json") {
            found.push(dir.to_path_buf());
        }
    }
}

fn finalize(dir: &Path) -> Option<Recovered> {
    let json_path = dir.join("recording.json");
    let mut doc: Value = match std::fs::read(&json_path).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!(dir = %dir.display(), error = %e, "recording.json unreadable, left as is");
            return None;
        }
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read recording.json");
            return None;
        }
    };
    if doc.get("state").and_then(Value::as_str) == Some("ended") {
        return None;
    }
    let mut last_write = std::fs::metadata(&json_path)
        .and_then(|m| m.modified())
        .ok();
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect()
        })
        .unwrap_or_default();
    wavs.sort();
    for wav in &wavs {
        if let Ok(modified) = std::fs::metadata(wav).and_then(|m| m.modified()) {
            last_write = Some(last_write.map_or(modified, |t| t.max(modified)));
        }
        match repair_wav(wav) {
            Ok(report) => {
                let name = wav
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                set_stream_duration(&mut doc, &name, report.duration_seconds);
            }
            Err(e) => tracing::error!(file = %wav.display(), error = %e, "cannot repair WAV"),
        }
    }
    mix_if_conference(dir, &mut doc);
    let ended_at = rfc3339(
        last_write
            .map(OffsetDateTime::from)
            .unwrap_or_else(OffsetDateTime::now_utc),
    );
    if let Some(pauses) = doc.get_mut("pauses").and_then(Value::as_array_mut)
        && let Some(last) = pauses.last_mut()
        && last.get("ended_at").is_none_or(Value::is_null)
    {
        last["ended_at"] = Value::String(ended_at.clone());
    }
    // SIPREC participants still present when the process stopped leave at its end.
    for p in doc
        .get_mut("participants")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter(|p| p.get("left_at").is_none_or(Value::is_null))
    {
        p["left_at"] = Value::String(ended_at.clone());
    }
    doc["state"] = Value::String("ended".into());
    doc["end_reason"] = Value::String("recovered".into());
    doc["ended_at"] = Value::String(ended_at);
    let bytes = serde_json::to_vec_pretty(&doc).ok()?;
    if let Err(e) = write_atomic(&json_path, &bytes) {
        tracing::error!(dir = %dir.display(), error = %e, "cannot write recovered recording.json");
        return None;
    }
    tracing::info!(dir = %dir.display(), files = wavs.len(), "recording recovered after an unclean stop");
    Some(Recovered {
        dir: dir.to_path_buf(),
        document: RecoveredDocument::read(&doc),
    })
}

/// A recording with more than two streams gets its `mixed.wav` at the end; a crash took
/// that end away, so recovery writes it (again, should a crash have cut it short).
fn mix_if_conference(dir: &Path, doc: &mut Value) {
    let files: Vec<PathBuf> = doc
        .get("streams")
        .and_then(Value::as_array)
        .map(|streams| {
            streams
                .iter()
                .filter_map(|s| s.get("file").and_then(Value::as_str))
                .map(|f| dir.join(f))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    let streams = doc
        .get("streams")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if streams <= 2 || files.is_empty() {
        return;
    }
    let out = dir.join(MIXED_FILE);
    let _ = std::fs::remove_file(&out);
    match mix_files(&files, &out) {
        Ok(summary) => {
            doc["mixed_file"] = MIXED_FILE.into();
            doc["mixed_duration_seconds"] =
                ((summary.duration_seconds * 1000.0).round() / 1000.0).into();
        }
        Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot write mixed.wav"),
    }
}

fn set_stream_duration(doc: &mut Value, file: &str, seconds: f64) {
    if doc.get("mixed_file").and_then(Value::as_str) == Some(file) {
        doc["mixed_duration_seconds"] = seconds.into();
    }
    if doc.get("stereo_file").and_then(Value::as_str) == Some(file) {
        doc["stereo_duration_seconds"] = seconds.into();
    }
    let Some(streams) = doc.get_mut("streams").and_then(Value::as_array_mut) else {
        return;
    };
    for s in streams {
        if s.get("file").and_then(Value::as_str) == Some(file) {
            s["duration_seconds"] = seconds.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovered_siprec_participants_leave_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let doc = serde_json::json!({
            "recording_id": "r",
            "state": "active",
            "pauses": [],
            "streams": [],
            "participants": [
                {"participant_id": "a", "joined_at": "T0", "left_at": null},
                {"participant_id": "b", "joined_at": "T0", "left_at": "T1"},
            ],
        });
        std::fs::write(dir.path().join("recording.json"), doc.to_string()).expect("write");
        assert!(finalize(dir.path()).is_some());
        let text = std::fs::read_to_string(dir.path().join("recording.json")).expect("read");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["end_reason"], "recovered");
        assert_eq!(v["participants"][0]["left_at"], v["ended_at"]);
        assert_eq!(
            v["participants"][1]["left_at"], "T1",
            "a stated leave is kept"
        );
    }
}
