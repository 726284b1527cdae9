//! The durable side of the queue: one job file per recording under
//! `<spool_dir>/storage/jobs/`, written like the CDR spool (temporary file, fsync, rename,
//! fsync of the directory), plus the job's keys and file list.

use super::record::{Job, ObjectRecord};
use crate::config::StorageConfig;
use crate::recording::layout::{LayoutValues, recording_dir, sanitize_component};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RECORDING_JSON: &str = "recording.json";

#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    #[error("cannot write job file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the storage job directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The job directory.
#[derive(Debug, Clone)]
pub struct JobSpool {
    dir: PathBuf,
}

impl JobSpool {
    pub fn open(spool_dir: &Path) -> Result<JobSpool, JobFileError> {
        let dir = spool_dir.join("storage").join("jobs");
        std::fs::create_dir_all(&dir).map_err(|source| JobFileError::Dir {
            path: dir.clone(),
            source,
        })?;
        Ok(JobSpool { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, recording_id: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", sanitize_component(recording_id)))
    }

    pub fn exists(&self, recording_id: &str) -> bool {
        self.path(recording_id).exists()
    }

    /// Write (or replace) a job file durably: after `Ok` it survives a crash.
    pub fn save(&self, job: &Job) -> Result<(), JobFileError> {
        let path = self.path(&job.recording_id);
        let tmp = path.with_extension("json.tmp");
        let err = |source| JobFileError::Write {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(job).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_data().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }

    pub fn remove(&self, recording_id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(recording_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => std::fs::File::open(&self.dir).and_then(|d| d.sync_all()),
        }
    }

    /// Every job left by an earlier run, oldest first. An unreadable file is logged and
    /// left in place (an operator can look at it); it is never deleted.
    pub fn load_all(&self) -> Vec<Job> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut jobs: Vec<Job> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| match std::fs::read(&p).map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(job)) => Some(job),
                Ok(Err(e)) => {
                    tracing::error!(file = %p.display(), error = %e, "storage job file unreadable, left in place");
                    None
                }
                Err(e) => {
                    tracing::error!(file = %p.display(), error = %e, "cannot read storage job file");
                    None
                }
            })
            .collect();
        jobs.sort_by(|a, b| {
            (a.created_unix, &a.recording_id).cmp(&(b.created_unix, &b.recording_id))
        });
        jobs
    }
}

/// The key prefix of a recording: `storage.prefix` + `storage.key_template` rendered with
/// the recording's values (`{path}` = its directory below `recording.dir`).
pub fn key_prefix(
    config: &StorageConfig,
    recordings_dir: &Path,
    dir: &Path,
    doc: &Value,
) -> String {
    let text = |k: &str| doc.get(k).and_then(Value::as_str);
    let started_at = text("started_at")
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let recording_id = text("recording_id").unwrap_or_default();
    let values = LayoutValues {
        started_at,
        recording_id,
        record_id: text("record_id"),
        calluuid: text("calluuid"),
        kind: text("kind").unwrap_or("unknown"),
    };
    let relative: Vec<String> = dir
        .strip_prefix(recordings_dir)
        .unwrap_or(dir)
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(sanitize_component(&s.to_string_lossy())),
            _ => None,
        })
        .collect();
    let mut pieces: Vec<String> = config
        .prefix
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for piece in config.key_template.split('/').filter(|p| !p.is_empty()) {
        if piece == "{path}" {
            pieces.extend(relative.iter().cloned());
        } else {
            let rendered = recording_dir(Path::new(""), piece, &values);
            pieces.extend(rendered.iter().map(|c| c.to_string_lossy().into_owned()));
        }
    }
    pieces.join("/")
}

/// A new job for a recording in `dir` (files not listed yet).
pub fn new_job(config: &StorageConfig, recordings_dir: &Path, dir: &Path, doc: &Value) -> Job {
    Job {
        recording_id: doc
            .get("recording_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        dir: dir.to_path_buf(),
        bucket: config.bucket.clone(),
        key_prefix: key_prefix(config, recordings_dir, dir, doc),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        objects: None,
        attempts: 0,
        last_error: None,
    }
}

/// The recording's regular files, sorted, `recording.json` last (so that the document in
/// the bucket arrives once everything it names is there). Temporary files are left out.
pub fn list_objects(job: &Job) -> std::io::Result<Vec<ObjectRecord>> {
    let mut files: Vec<(String, u64)> = Vec::new();
    for entry in std::fs::read_dir(&job.dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.is_file() && !name.ends_with(".tmp") && name != RECORDING_JSON {
            files.push((name, meta.len()));
        }
    }
    files.sort();
    let json = std::fs::metadata(job.dir.join(RECORDING_JSON))?;
    files.push((RECORDING_JSON.to_string(), json.len()));
    Ok(files
        .into_iter()
        .map(|(file, size)| ObjectRecord {
            key: format!("{}/{file}", job.key_prefix),
            file,
            size,
            sha256: None,
            etag: None,
            uploaded: false,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefix: &str, template: &str) -> StorageConfig {
        StorageConfig {
            bucket: "b".into(),
            prefix: prefix.into(),
            key_template: template.into(),
            ..StorageConfig::default()
        }
    }

    fn doc() -> Value {
        serde_json::json!({
            "recording_id": "rec-1",
            "started_at": "2026-12-01T10:20:30Z",
            "kind": "genesys",
            "calluuid": "c/u",
        })
    }

    #[test]
    fn the_default_key_is_the_directory_below_the_recordings_root_under_the_prefix() {
        let root = Path::new("/var/rec");
        let dir = root.join("2026/12/01/rec-1");
        assert_eq!(
            key_prefix(&config("archive/", "{path}"), root, &dir, &doc()),
            "archive/2026/12/01/rec-1"
        );
        assert_eq!(
            key_prefix(&config("", "{path}"), root, &dir, &doc()),
            "2026/12/01/rec-1"
        );
    }

    #[test]
    fn a_template_uses_the_layout_placeholders_with_network_values_sanitized() {
        let root = Path::new("/var/rec");
        let dir = root.join("x");
        assert_eq!(
            key_prefix(
                &config("p", "{kind}/{yyyy}-{mm}/{calluuid}/{recording_id}"),
                root,
                &dir,
                &doc()
            ),
            "p/genesys/2026-12/c_u/rec-1"
        );
    }

    #[test]
    fn job_files_survive_a_reload_and_an_unreadable_one_is_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spool = JobSpool::open(tmp.path()).expect("open");
        let mut a = new_job(
            &config("", "{path}"),
            tmp.path(),
            &tmp.path().join("a"),
            &doc(),
        );
        a.created_unix = 5;
        let mut b = a.clone();
        b.recording_id = "rec-0".into();
        b.created_unix = 1;
        spool.save(&a).expect("save a");
        spool.save(&b).expect("save b");
        std::fs::write(spool.dir().join("junk.json"), b"{").expect("junk");
        let loaded = spool.load_all();
        assert_eq!(loaded, vec![b.clone(), a.clone()], "oldest first");
        assert!(spool.dir().join("junk.json").exists());
        spool.remove("rec-1").expect("remove");
        assert_eq!(spool.load_all(), vec![b]);
    }

    #[test]
    fn the_file_list_puts_recording_json_last_and_skips_temporary_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("r");
        std::fs::create_dir_all(&dir).expect("dir");
        for (name, len) in [
            ("stream-1.wav", 3),
            ("recording.json", 2),
            ("stereo.wav", 5),
            ("recording.json.tmp", 1),
            ("metadata-1.xml", 4),
        ] {
            std::fs::write(dir.join(name), vec![0u8; len]).expect("write");
        }
        let job = new_job(&config("p", "{path}"), tmp.path(), &dir, &doc());
        let objects = list_objects(&job).expect("list");
        let names: Vec<(&str, u64)> = objects.iter().map(|o| (o.file.as_str(), o.size)).collect();
        assert_eq!(
            names,
            [
                ("metadata-1.xml", 4),
                ("stereo.wav", 5),
                ("stream-1.wav", 3),
                ("recording.json", 2)
            ]
        );
        assert_eq!(objects[3].key, "p/r/recording.json");
    }
}
