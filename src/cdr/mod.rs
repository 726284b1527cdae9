//! CDRs in the Cisco Meeting Server format, delivered durably over HTTP(S), and the SIP EDR
//! log (SPEC §6).
//!
//! ```text
//! caller ── CdrSink::record() ──(unbounded channel, never blocks)──▶ writer thread
//!     writer: stamp correlatorIndex, serialize once, append the group to each receiver's
//!             segment log (spool_dir/cdr/<receiver-key>/, one fdatasync), wake delivery
//!     delivery task per receiver: batch ─▶ POST ─▶ 2xx: acknowledge │ anything else:
//!                                                  backoff, retry forever (capped)
//! ```
//!
//! Identity: `<records session>` is a GUID new on every start (guide §3: "created when the
//! Call Bridge restarts"); `<records callBridge>` is the instance GUID kept in
//! `<spool_dir>/cdr/instance`, the same across restarts, which tells apart recorders that
//! share receivers (the guide's Call Bridge GUID of a cluster).
//!
//! TLS: reqwest's `rustls` feature, which uses the **aws-lc-rs** crypto provider. Any other
//! rustls user in the process (SIP over TLS) should use aws-lc-rs too, so that only one
//! provider is compiled in and `CryptoProvider::get_default` is unambiguous.

pub mod delivery;
pub mod edr;
pub mod legs;
pub mod model;
pub mod spool;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Url;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use delivery::ReceiverHealth;
pub use edr::{EdrEvent, EdrLog, EdrRecord, EdrSettings, format_line};
pub use model::{
    BurstStats, CallLegEnd, CallLegEndReason, CallLegStart, CallLegUpdate, CdrEvent, ObjectStorage,
    RecordingEnd, RecordingStart, RxAudio, StoredObject,
};

use delivery::{DeliveryConfig, Receiver};
use spool::{Prepared, Spool};

/// CMS supports up to 4 CDR receivers; so do we.
pub const MAX_RECEIVERS: usize = 4;

/// Records written per spool group commit (one fdatasync per group).
const GROUP_MAX: usize = 512;

/// How long the writer lets records gather after the first one before it appends the group:
/// at 100 calls per second (five records each) this turns one fdatasync per record into one
/// per a few calls. Nothing waits for it (`record()` never blocks); it only delays delivery,
/// and a crash can lose at most this much more of the newest records.
const GROUP_WINDOW: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct CdrSettings {
    /// Spool root; CDRs live under `<spool_dir>/cdr/`.
    pub spool_dir: PathBuf,
    /// `http://` or `https://` URLs, at most [`MAX_RECEIVERS`].
    pub receivers: Vec<String>,
    /// Per-receiver bound; past it the oldest undelivered records are dropped.
    pub max_spool_records: usize,
    /// Retry backoff cap.
    pub max_backoff: Duration,
    /// Records per POST.
    pub batch_size: usize,
    /// Whole-request timeout; a receiver slower than this counts as failed and is retried.
    pub request_timeout: Duration,
    /// Per-receiver overrides, keyed by the receiver URL as listed in `receivers`.
    pub receiver_options: HashMap<String, ReceiverOptions>,
}

/// What one receiver may set differently from the [`CdrSettings`] defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverOptions {
    /// PEM CA bundle the receiver's certificate must chain to; when set it is the only
    /// trust anchor for that receiver (self-signed receivers, the guide's `-c/-k` mode).
    pub ca_file: Option<PathBuf>,
    pub request_timeout: Option<Duration>,
    pub batch_size: Option<usize>,
    pub max_backoff: Option<Duration>,
}

impl Default for CdrSettings {
    fn default() -> Self {
        CdrSettings {
            spool_dir: PathBuf::from("./spool"),
            receivers: Vec::new(),
            max_spool_records: 100_000,
            max_backoff: Duration::from_secs(30),
            batch_size: 100,
            request_timeout: Duration::from_secs(30),
            receiver_options: HashMap::new(),
        }
    }
}

/// The CDR settings a validated [`crate::config::Config`] asks for.
pub fn settings_from(config: &crate::config::Config) -> CdrSettings {
    let c = &config.cdr;
    CdrSettings {
        spool_dir: config.spool.dir.clone(),
        receivers: c.receivers.clone(),
        batch_size: c.batch_size,
        request_timeout: c.request_timeout,
        max_backoff: c.max_backoff,
        receiver_options: c
            .receiver_options
            .iter()
            .map(|o| {
                let options = ReceiverOptions {
                    ca_file: o.ca_file.clone(),
                    request_timeout: o.request_timeout,
                    batch_size: o.batch_size,
                    max_backoff: o.max_backoff,
                };
                (o.url.clone(), options)
            })
            .collect(),
        ..CdrSettings::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    #[error("at most {MAX_RECEIVERS} CDR receivers are supported, {0} configured")]
    TooManyReceivers(usize),
    #[error("CDR receiver {url:?}: {reason}")]
    BadReceiver { url: String, reason: String },
    #[error("CDR spool {path}: {source}")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CDR receiver {url:?}: CA bundle {path}: {reason}")]
    CaFile {
        url: String,
        path: PathBuf,
        reason: String,
    },
    #[error("CDR instance GUID {path}: {source}")]
    Instance {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cdr::start must be called inside a Tokio runtime")]
    NoRuntime,
    #[error("cannot start the CDR writer thread: {0}")]
    Thread(std::io::Error),
}

enum Msg {
    // Boxed: events are large, the channel slot should not be.
    Record(OffsetDateTime, Box<CdrEvent>),
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

struct Target {
    spool: Arc<Spool>,
    notify: Option<Arc<Notify>>,
}

/// Cheap, cloneable handle; every method returns without touching disk or network.
#[derive(Clone)]
pub struct CdrSink {
    tx: mpsc::UnboundedSender<Msg>,
    session: Arc<str>,
    instance: Arc<str>,
    receivers: Arc<Vec<Arc<ReceiverHealth>>>,
    /// Recordings being stopped through the API: their callLegEnd says
    /// `apiInitiatedTeardown`.
    api_stops: Arc<dashmap::DashSet<String>>,
}

impl std::fmt::Debug for CdrSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdrSink")
            .field("session", &self.session)
            .field("instance", &self.instance)
            .finish()
    }
}

impl CdrSink {
    /// Records `event` with the current time. Never blocks.
    pub fn record(&self, event: CdrEvent) {
        self.record_at(event, OffsetDateTime::now_utc());
    }

    /// Records `event` with an explicit time (e.g. a recording finalized by recovery).
    pub fn record_at(&self, event: CdrEvent, time: OffsetDateTime) {
        if let Err(mpsc::error::SendError(Msg::Record(_, ev))) =
            self.tx.send(Msg::Record(time, Box::new(event)))
        {
            error!(
                record_type = ev.record_type(),
                xml = %ev.inner_xml(),
                "CDR recorded after CDR shutdown, not spooled"
            );
        }
    }

    /// Resolves once every record recorded before this call is on disk.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// This process session's GUID (`<records session>`).
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The API asked to stop `recording_id` (guide §5 `apiInitiatedTeardown`).
    pub fn mark_api_stop(&self, recording_id: &str) {
        self.api_stops.insert(recording_id.to_string());
    }

    /// Whether the API stopped `recording_id`; forgets it.
    pub fn take_api_stop(&self, recording_id: &str) -> bool {
        self.api_stops.remove(recording_id).is_some()
    }

    /// The persistent instance GUID (`<records callBridge>`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Delivery state per configured receiver.
    pub fn receivers(&self) -> Arc<Vec<Arc<ReceiverHealth>>> {
        self.receivers.clone()
    }

    /// Records waiting for delivery, summed over receivers (0 with no receiver: the local
    /// archive is not a backlog).
    pub fn spool_depth(&self) -> usize {
        self.receivers.iter().map(|r| r.pending()).sum()
    }
}

/// Owns the writer thread and the delivery tasks.
pub struct CdrService {
    tx: mpsc::UnboundedSender<Msg>,
    writer: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cancel: CancellationToken,
    stopping: Arc<AtomicBool>,
}

impl CdrService {
    /// Spools everything recorded so far, then stops delivery. Undelivered records stay in
    /// the spool for the next run.
    pub async fn shutdown(mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for CdrService {
    fn drop(&mut self) {
        // Without shutdown(): stop delivery; the writer still drains what was queued.
        self.cancel.cancel();
        if self.writer.is_some() {
            let (tx, _rx) = oneshot::channel();
            let _ = self.tx.send(Msg::Stop(tx));
        }
    }
}

/// Stable directory name for a receiver: readable host/port plus a hash of the whole URL.
fn receiver_key(url: &Url) -> String {
    let host: String = url
        .host_str()
        .unwrap_or("receiver")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let port = url.port_or_known_default().unwrap_or(0);
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{host}_{port}-{h:016x}")
}

fn parse_receiver(s: &str) -> Result<Url, CdrError> {
    let bad = |reason: &str| CdrError::BadReceiver {
        url: s.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(bad("no host"));
    }
    Ok(url)
}

/// Starts the CDR subsystem: loads the spools, starts the writer thread and one delivery
/// task per receiver (records left by a previous run are re-sent first).
pub fn start(settings: CdrSettings) -> Result<(CdrSink, CdrService), CdrError> {
    let rt = tokio::runtime::Handle::try_current().map_err(|_| CdrError::NoRuntime)?;
    if settings.receivers.len() > MAX_RECEIVERS {
        return Err(CdrError::TooManyReceivers(settings.receivers.len()));
    }
    let urls = settings
        .receivers
        .iter()
        .map(|r| parse_receiver(r))
        .collect::<Result<Vec<_>, _>>()?;
    let root = settings.spool_dir.join("cdr");

    let session: Arc<str> = uuid::Uuid::new_v4().to_string().into();
    let instance = load_instance(&root)?;
    let cancel = CancellationToken::new();
    let Spools { targets, receivers } = open_receiver_spools(&settings, &root, urls)?;
    let health: Vec<Arc<ReceiverHealth>> =
        receivers.iter().map(|(r, _)| r.health.clone()).collect();
    let tasks = spawn_deliveries(&rt, &settings, receivers, &instance, &cancel)?;

    let (tx, rx) = mpsc::unbounded_channel();
    let stopping = Arc::new(AtomicBool::new(false));
    let writer = {
        let session = session.clone();
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("cdr-spool".into())
            .spawn(move || writer_loop(rx, session, targets, stopping))
            .map_err(CdrError::Thread)?
    };
    info!(%session, %instance, receivers = tasks.len(), "CDR delivery started");
    let sink = CdrSink {
        tx: tx.clone(),
        session,
        instance,
        receivers: Arc::new(health),
        api_stops: Arc::default(),
    };
    let service = CdrService {
        tx,
        writer: Some(writer),
        tasks,
        cancel,
        stopping,
    };
    Ok((sink, service))
}

/// What [`open_receiver_spools`] opened: the writer's targets, and each receiver with its
/// options for its delivery task.
struct Spools {
    targets: Vec<Target>,
    receivers: Vec<(Receiver, ReceiverOptions)>,
}

fn open_spool(dir: PathBuf, max: Option<usize>) -> Result<Spool, CdrError> {
    Spool::open(dir.clone(), max).map_err(|source| CdrError::Spool { path: dir, source })
}

/// Opens one spool per receiver under `root`, or the `local` one when there is none.
fn open_receiver_spools(
    settings: &CdrSettings,
    root: &Path,
    urls: Vec<Url>,
) -> Result<Spools, CdrError> {
    let mut targets = Vec::new();
    let mut receivers = Vec::new();
    let mut keys = Vec::new();
    for (raw, url) in settings.receivers.iter().zip(urls) {
        let options = settings
            .receiver_options
            .get(raw)
            .cloned()
            .unwrap_or_default();
        let key = receiver_key(&url);
        let spool = Arc::new(open_spool(
            root.join(&key),
            Some(settings.max_spool_records),
        )?);
        if !spool.is_empty() {
            info!(receiver = %url, pending = spool.len(), "re-sending spooled CDRs");
        }
        let notify = Arc::new(Notify::new());
        // Wake the task once so a reloaded spool is sent without waiting for a new record.
        notify.notify_one();
        targets.push(Target {
            spool: spool.clone(),
            notify: Some(notify.clone()),
        });
        let health = Arc::new(ReceiverHealth::new(&url, spool.clone()));
        receivers.push((
            Receiver {
                url,
                spool,
                notify,
                health,
            },
            options,
        ));
        keys.push(key);
    }
    if receivers.is_empty() {
        targets.push(Target {
            spool: Arc::new(open_spool(root.join("local"), None)?),
            notify: None,
        });
        keys.push("local".into());
    }
    warn_orphans(root, &keys);
    Ok(Spools { targets, receivers })
}

/// One delivery task per receiver, each with its own HTTP client and overrides applied.
fn spawn_deliveries(
    rt: &tokio::runtime::Handle,
    settings: &CdrSettings,
    receivers: Vec<(Receiver, ReceiverOptions)>,
    instance: &Arc<str>,
    cancel: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, CdrError> {
    let mut tasks = Vec::new();
    for (rx, options) in receivers {
        let cfg = DeliveryConfig {
            batch_size: options.batch_size.unwrap_or(settings.batch_size),
            max_backoff: options.max_backoff.unwrap_or(settings.max_backoff),
            instance: instance.clone(),
        };
        let client = http_client(&rx.url, &options, settings.request_timeout)?;
        tasks.push(rt.spawn(delivery::run(rx, client, cfg, cancel.clone())));
    }
    Ok(tasks)
}

fn http_client(
    url: &Url,
    options: &ReceiverOptions,
    default_timeout: Duration,
) -> Result<reqwest::Client, CdrError> {
    let timeout = options.request_timeout.unwrap_or(default_timeout);
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .http1_only()
        .pool_max_idle_per_host(1)
        // Backstop for receivers that answer with a length: an idle connection must not
        // hold a receiver that serves one connection at a time.
        .pool_idle_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sip-recorder/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &options.ca_file {
        let bad = |reason: String| CdrError::CaFile {
            url: url.to_string(),
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        builder = builder.tls_certs_only(certs);
    }
    Ok(builder.build()?)
}

/// The instance GUID: read from `<root>/instance`, created on first start.
fn load_instance(root: &Path) -> Result<Arc<str>, CdrError> {
    let path = root.join("instance");
    let err = |source| CdrError::Instance {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => match uuid::Uuid::parse_str(text.trim()) {
            Ok(id) => return Ok(id.to_string().into()),
            Err(e) => {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not a GUID ({e}); delete the file to get a new one"),
                )));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(root).map_err(err)?;
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = root.join("instance.tmp");
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(err)?;
    info!(instance = %id, path = %path.display(), "new CDR instance GUID");
    Ok(id.into())
}

/// Records spooled for a receiver that is no longer configured are not sent anywhere.
fn warn_orphans(root: &std::path::Path, keys: &[String]) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for de in rd.flatten() {
        let name = de.file_name().to_string_lossy().into_owned();
        if keys.contains(&name) || name == "local" || !de.path().is_dir() {
            continue;
        }
        let pending = spool::read_records(&de.path()).map_or(0, |r| r.len());
        if pending > 0 {
            warn!(dir = %de.path().display(), pending, "CDR spool of a receiver no longer configured");
        }
    }
}

fn writer_loop(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    session: Arc<str>,
    targets: Vec<Target>,
    stopping: Arc<AtomicBool>,
) {
    let mut correlator = 0u64;
    let mut stop = false;
    let prepare = |time: OffsetDateTime, ev: Box<CdrEvent>, correlator: &mut u64| {
        let p = Prepared {
            session: session.clone(),
            correlator: *correlator,
            record_type: ev.record_type().into(),
            time: model::format_time(time).into(),
            inner_xml: ev.inner_xml(),
        };
        *correlator += 1;
        p
    };
    while !stop {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        if matches!(first, Msg::Record(..)) {
            std::thread::sleep(GROUP_WINDOW);
        }
        let mut group = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(time, ev) => group.push(prepare(time, ev, &mut correlator)),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop(ack) => {
                    acks.push(ack);
                    if !stop {
                        stop = true;
                        // Anything already queued was recorded before the stop: keep it.
                        rx.close();
                    }
                }
            }
            if group.len() < GROUP_MAX || stop {
                next = rx.try_recv().ok();
            }
        }
        if !group.is_empty() {
            for t in &targets {
                write_with_retry(&t.spool, &group, &stopping);
                if let Some(n) = &t.notify {
                    n.notify_one();
                }
            }
        }
        for a in acks {
            let _ = a.send(());
        }
    }
}

/// A full or failing disk must not lose records while the process lives: retry until it
/// works, except at shutdown where we give up after a few attempts and log the records.
fn write_with_retry(spool: &Spool, group: &[Prepared], stopping: &AtomicBool) {
    let mut attempts = 0u32;
    loop {
        match spool.append(group) {
            Ok(()) => return,
            Err(err) => {
                attempts += 1;
                if stopping.load(Ordering::Relaxed) && attempts >= 3 {
                    for r in group {
                        error!(spool = %spool.dir().display(), session = %r.session,
                            correlator_index = r.correlator, record_type = %r.record_type,
                            xml = %r.inner_xml, %err, "CDR could not be spooled at shutdown, lost");
                    }
                    return;
                }
                error!(spool = %spool.dir().display(), %err, attempts, "CDR spool write failed, retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_keys_are_stable_and_distinct() {
        let a = receiver_key(&parse_receiver("http://cdr.example.com/x").expect("url"));
        let b = receiver_key(&parse_receiver("http://cdr.example.com/y").expect("url"));
        assert_ne!(a, b);
        assert!(a.starts_with("cdr.example.com_80-"));
        assert_eq!(
            a,
            receiver_key(&parse_receiver("http://cdr.example.com/x").expect("url"))
        );
    }

    #[test]
    fn receiver_validation() {
        assert!(parse_receiver("ftp://x/").is_err());
        assert!(parse_receiver("not a url").is_err());
        assert!(parse_receiver("https://[::1]:8443/cdr").is_ok());
    }

    #[tokio::test]
    async fn no_receiver_keeps_records_locally() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sink, svc) = start(CdrSettings {
            spool_dir: dir.path().into(),
            ..CdrSettings::default()
        })
        .expect("start");
        for i in 0..3 {
            sink.record(CdrEvent::CallLegUpdate(CallLegUpdate {
                call_leg: format!("leg{i}"),
                deactivated: i % 2 == 0,
                ..CallLegUpdate::default()
            }));
        }
        svc.shutdown().await;
        let records = spool::read_records(&dir.path().join("cdr/local")).expect("local dir");
        assert_eq!(records.len(), 3);
        assert!(
            records
                .iter()
                .all(|(e, _)| &*e.record_type == "callLegUpdate")
        );
        assert!(records[2].1.contains("leg2"), "{:?}", records[2]);
        assert_eq!(sink.spool_depth(), 0);
    }

    #[tokio::test]
    async fn too_many_receivers() {
        let r = start(CdrSettings {
            receivers: vec!["http://a/".into(); 5],
            ..CdrSettings::default()
        });
        assert!(matches!(r, Err(CdrError::TooManyReceivers(5))));
    }
}
