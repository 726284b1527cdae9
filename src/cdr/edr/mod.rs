//! SIP EDR log in the N-Squared format, merged mode (SPEC §6).
//!
//! One line per SIP transaction:
//!
//! ```text
//! 2026-11-21 10:00:00.123<srs1~SRS~1795255200~65e01e56>IN-INVITE-ALEG|CALL_ID=a84b4c76e66710|CODE=200|CSEQ=314159|...
//! ```
//!
//! - the timestamp is UTC, `YYYY-MM-DD HH:MM:SS.mmm`; `<instance>` is the key of the SIP
//!   call instance, the same on every line of one call, as in the seed's examples
//!   (`<vagabond~LHO~1660690948~205e010f>`: host, application, process start, call);
//! - `SHUTDOWN` is written only for a call instance that ended with an internal error, with
//!   its required `EXCEPTION`;
//! - fields are `KEY=VALUE` separated by `|`, in alphabetical key order, absent fields
//!   omitted;
//! - a `,` separates repeated values (several Via headers, several provisional codes);
//!   inside one value `%` `|` `,` CR LF and other control characters are percent-encoded
//!   (`%25` `%7C` `%2C` `%0D` `%0A`), so a line stays one line and splits unambiguously;
//! - `REQUEST_AT` / `RESPONSE_AT` use the same timestamp layout as the line itself;
//! - files open with `#HEADER|FILENAME=..|TIME_START=<epoch>|HOSTNAME=..` and, when rotated
//!   or closed, end with `#FOOTER|TIME_FINISH=<epoch>|NUM_EDRS=..|NUM_BYTES=..`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tracing::{error, warn};

pub mod mapping;

const EDR_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]");
const ROTATED_TIME: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:3]Z");
const FILE_NAME: &str = "sip-edr.log";
/// Queue depth between SIP handling and the writer; past it lines are dropped (and counted)
/// rather than slowing SIP down.
const QUEUE: usize = 65_536;
/// Lines reach the file at least this often (a busy writer's buffer fills sooner).
const FLUSH_EVERY: Duration = Duration::from_millis(900);
/// After a line wakes the writer, the lines that follow it (a call logs several) gather this
/// long and are written together: waking a thread costs more than formatting many lines.
/// With [`FLUSH_EVERY`] a line is on disk within a second.
const GATHER: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdrEvent {
    #[default]
    InInviteAleg,
    InReinviteAleg,
    InCancelAleg,
    InByeAleg,
    /// BYE for an unknown dialog (answered 481).
    InBye,
    InAckAleg,
    OutByeAleg,
    Shutdown,
}

impl EdrEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InInviteAleg => "IN-INVITE-ALEG",
            Self::InReinviteAleg => "IN-REINVITE-ALEG",
            Self::InCancelAleg => "IN-CANCEL-ALEG",
            Self::InByeAleg => "IN-BYE-ALEG",
            Self::InBye => "IN-BYE",
            Self::InAckAleg => "IN-ACK-ALEG",
            Self::OutByeAleg => "OUT-BYE-ALEG",
            Self::Shutdown => "SHUTDOWN",
        }
    }
}

/// One merged-mode EDR. `via_*` are parallel lists, one entry per Via header (top first);
/// an empty string marks a parameter that Via did not carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdrRecord {
    pub event: EdrEvent,
    /// Line timestamp; `None` = when [`EdrLog::log`] is called.
    pub at: Option<OffsetDateTime>,
    /// The call instance key (see [`call_instance`]); `None`: the process's own key.
    pub instance: Option<String>,
    pub call_id: Option<String>,
    /// The CSeq number (the seed: Integer).
    pub cseq: Option<u32>,
    pub from_uri: Option<String>,
    pub to_uri: Option<String>,
    pub transport: Option<String>,
    /// Top-most Via only (the seed: "Only the top-most Via header details are recorded").
    pub via_host: Option<String>,
    pub via_port: Option<u16>,
    pub via_branch: Option<String>,
    /// Inbound only: the source IP/port we stamped as `received`/`rport`.
    pub via_received: Option<String>,
    pub via_rport: Option<u16>,
    /// Outbound requests (and `IN-ACK-ALEG`): the peer address.
    pub remote_ip: Option<String>,
    pub remote_port: Option<u16>,
    /// Retransmissions of an outbound request.
    pub retry: Option<u32>,
    /// The retry timer expired without any response (Timer B/F): `TIMEOUT=1`, no `CODE`.
    pub timeout: bool,
    /// Local (recorder) tag.
    pub ltag: Option<String>,
    /// Remote (SRC) tag.
    pub rtag: Option<String>,
    /// `SDP_IN=1` / `SDP_OUT=1`: SDP went that way (the SDP itself is never logged).
    pub sdp_in: bool,
    pub sdp_out: bool,
    /// Provisional response codes sent before the final one (e.g. 100).
    pub pcodes: Vec<u16>,
    /// Final response code.
    pub code: Option<u16>,
    pub request_at: Option<OffsetDateTime>,
    pub response_at: Option<OffsetDateTime>,
    /// Additional fields (e.g. `EXCEPTION` on `SHUTDOWN`); keys are upper-cased and reduced
    /// to `[A-Z0-9_]`.
    pub extra: Vec<(String, String)>,
}

fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(EDR_TIME).unwrap_or_default()
}

/// Percent-encodes what would break the line or field structure.
pub fn encode_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '%' | '|' | ',' | '\r' | '\n' | '\u{7f}' => push_pct(out, c),
            c if (c as u32) < 0x20 => push_pct(out, c),
            c => out.push(c),
        }
    }
}

fn push_pct(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let _ = write!(out, "%{:02X}", c as u32);
}

/// The `<instance>` key of one call: the process key plus a hash of the Call-ID, so that
/// every line of a call (and only of that call) carries the same key.
pub fn call_instance(process: &str, call_id: &str) -> String {
    // FNV-1a: stable across builds and restarts.
    let mut h: u32 = 0x811c_9dc5;
    for b in call_id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{process}~{h:08x}")
}

fn encode_one(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    encode_value(&mut out, v);
    out
}

/// Formats one EDR line (without the trailing LF).
pub fn format_line(r: &EdrRecord, instance: &str) -> String {
    let at = r.at.unwrap_or_else(OffsetDateTime::now_utc);
    let mut line = fmt_time(at);
    line.push('<');
    for c in r.instance.as_deref().unwrap_or(instance).chars() {
        match c {
            '<' | '>' => push_pct(&mut line, c),
            c => encode_value(&mut line, c.encode_utf8(&mut [0; 4])),
        }
    }
    line.push('>');
    line.push_str(r.event.as_str());
    for (k, v) in fields_of(r) {
        line.push('|');
        line.push_str(&k);
        line.push('=');
        line.push_str(&v);
    }
    line
}

/// The `KEY=value` fields of one line, encoded, in key order (stable: equal keys keep the
/// order they were added in).
fn fields_of(r: &EdrRecord) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::with_capacity(20);
    text_fields(r, &mut fields);
    numeric_fields(r, &mut fields);
    extra_fields(r, &mut fields);
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
}

/// Header values and addresses, as received: percent-encoded.
fn text_fields(r: &EdrRecord, fields: &mut Vec<(String, String)>) {
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            fields.push((k.to_string(), encode_one(v)));
        }
    };
    opt("CALL_ID", &r.call_id);
    opt("FROM_URI", &r.from_uri);
    opt("TO_URI", &r.to_uri);
    opt("TRANSPORT", &r.transport);
    opt("LTAG", &r.ltag);
    opt("RTAG", &r.rtag);
    opt("VIA_HOST", &r.via_host);
    opt("VIA_BRANCH", &r.via_branch);
    opt("VIA_RECEIVED", &r.via_received);
    opt("REMOTE_IP", &r.remote_ip);
}

/// Numbers, flags (present only when set), response codes and times.
fn numeric_fields(r: &EdrRecord, fields: &mut Vec<(String, String)>) {
    let numbers = [
        ("CSEQ", r.cseq.map(u64::from)),
        ("VIA_PORT", r.via_port.map(u64::from)),
        ("VIA_RPORT", r.via_rport.map(u64::from)),
        ("REMOTE_PORT", r.remote_port.map(u64::from)),
        ("RETRY", r.retry.filter(|&n| n > 0).map(u64::from)),
    ];
    for (k, v) in numbers {
        if let Some(v) = v {
            fields.push((k.to_string(), v.to_string()));
        }
    }
    for (k, on) in [
        ("SDP_IN", r.sdp_in),
        ("SDP_OUT", r.sdp_out),
        ("TIMEOUT", r.timeout),
    ] {
        if on {
            fields.push((k.to_string(), "1".to_string()));
        }
    }
    if !r.pcodes.is_empty() {
        let codes: Vec<String> = r.pcodes.iter().map(u16::to_string).collect();
        fields.push(("PCODES".into(), codes.join(",")));
    }
    if let Some(c) = r.code {
        fields.push(("CODE".into(), c.to_string()));
    }
    if let Some(t) = r.request_at {
        fields.push(("REQUEST_AT".into(), fmt_time(t)));
    }
    if let Some(t) = r.response_at {
        fields.push(("RESPONSE_AT".into(), fmt_time(t)));
    }
}

/// Fields a caller added by name; the name becomes an upper-case `[A-Z0-9_]` key.
fn extra_fields(r: &EdrRecord, fields: &mut Vec<(String, String)>) {
    for (k, v) in &r.extra {
        let key: String = k
            .chars()
            .map(|c| c.to_ascii_uppercase())
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if !key.is_empty() {
            fields.push((key, encode_one(v)));
        }
    }
}

#[derive(Debug, Clone)]
pub struct EdrSettings {
    /// Directory of `sip-edr.log` (SPEC: `<spool_dir>/edr`).
    pub dir: PathBuf,
    /// The process part of every line's `<instance>` key (`<host>~SRS~<start epoch>`); each
    /// call adds its own part, see [`call_instance`].
    pub instance: String,
    /// Rotate when the file reaches this size.
    pub max_bytes: u64,
    /// Rotate when the file is this old (and holds at least one EDR).
    pub max_age: Duration,
    /// Log `IN-ACK-ALEG` lines (off by default: one per call, little value).
    pub log_ack: bool,
}

impl EdrSettings {
    pub fn new(spool_dir: &Path) -> Self {
        EdrSettings {
            dir: spool_dir.join("edr"),
            instance: format!(
                "{}~SRS~{}",
                hostname().replace(['~', '<', '>', '|'], "_"),
                OffsetDateTime::now_utc().unix_timestamp()
            ),
            max_bytes: 100 * 1024 * 1024,
            max_age: Duration::from_secs(3600),
            log_ack: false,
        }
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

enum Cmd {
    // Boxed: a record is large, the channel slot should not be.
    Line(Box<EdrRecord>),
    Stop,
}

/// Cloneable, non-blocking handle to the EDR writer thread.
#[derive(Clone)]
pub struct EdrLog {
    tx: SyncSender<Cmd>,
    /// The process part of the `<instance>` key.
    instance: Arc<str>,
    log_ack: bool,
    dropped: Arc<AtomicU64>,
}

/// Owns the writer thread; [`EdrService::shutdown`] flushes and closes the file.
pub struct EdrService {
    tx: SyncSender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EdrLog {
    /// Queues a record; never blocks. Dropped (and counted) if the writer is far behind.
    pub fn log(&self, mut record: EdrRecord) {
        if record.event == EdrEvent::InAckAleg && !self.log_ack {
            return;
        }
        record.at.get_or_insert_with(OffsetDateTime::now_utc);
        match self.tx.try_send(Cmd::Line(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) % 10_000 == 0 {
                    warn!("EDR writer behind, EDR lines dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// The `<instance>` key of the call with this Call-ID.
    pub fn instance_for(&self, call_id: &str) -> String {
        call_instance(&self.instance, call_id)
    }

    /// Whether `IN-ACK-ALEG` lines are wanted (lets callers skip building them).
    pub fn logs_ack(&self) -> bool {
        self.log_ack
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl EdrService {
    /// Writes everything queued, closes the file with its footer and stops the thread.
    /// Blocks briefly (disk I/O); from async code call it inside `spawn_blocking`.
    pub fn shutdown(mut self) {
        let _ = self.tx.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EdrService {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.tx.try_send(Cmd::Stop);
        }
    }
}

/// Opens `dir/sip-edr.log` (rotating any file a previous run left) and starts the writer.
pub fn start(settings: EdrSettings) -> io::Result<(EdrLog, EdrService)> {
    fs::create_dir_all(&settings.dir)?;
    let mut file = EdrFile::new(settings.clone());
    file.rotate_leftover()?;
    file.open()?;
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("sip-edr".into())
        .spawn(move || file.run(rx))?;
    let log = EdrLog {
        tx: tx.clone(),
        instance: settings.instance.as_str().into(),
        log_ack: settings.log_ack,
        dropped: Arc::new(AtomicU64::new(0)),
    };
    Ok((
        log,
        EdrService {
            tx,
            thread: Some(thread),
        },
    ))
}

struct EdrFile {
    settings: EdrSettings,
    out: Option<BufWriter<File>>,
    opened: Instant,
    bytes: u64,
    edrs: u64,
}

impl EdrFile {
    fn new(settings: EdrSettings) -> Self {
        EdrFile {
            settings,
            out: None,
            opened: Instant::now(),
            bytes: 0,
            edrs: 0,
        }
    }

    fn path(&self) -> PathBuf {
        self.settings.dir.join(FILE_NAME)
    }

    fn rotated_path(&self) -> PathBuf {
        let stamp = OffsetDateTime::now_utc()
            .format(ROTATED_TIME)
            .unwrap_or_default();
        let mut p = self.settings.dir.join(format!("sip-edr-{stamp}.log"));
        let mut n = 1;
        while p.exists() {
            p = self.settings.dir.join(format!("sip-edr-{stamp}-{n}.log"));
            n += 1;
        }
        p
    }

    fn rotate_leftover(&mut self) -> io::Result<()> {
        match fs::metadata(self.path()) {
            Ok(m) if m.len() > 0 => fs::rename(self.path(), self.rotated_path()),
            _ => Ok(()),
        }
    }

    fn open(&mut self) -> io::Result<()> {
        let path = self.path();
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut out = BufWriter::with_capacity(64 * 1024, f);
        let header = format!(
            "#HEADER|FILENAME={}|TIME_START={}|HOSTNAME={}\n",
            encode_one(&path.display().to_string()),
            OffsetDateTime::now_utc().unix_timestamp(),
            encode_one(&hostname())
        );
        out.write_all(header.as_bytes())?;
        self.bytes = header.len() as u64;
        self.edrs = 0;
        self.opened = Instant::now();
        self.out = Some(out);
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            let footer = format!(
                "#FOOTER|TIME_FINISH={}|NUM_EDRS={}|NUM_BYTES={}\n",
                OffsetDateTime::now_utc().unix_timestamp(),
                self.edrs,
                self.bytes
            );
            out.write_all(footer.as_bytes())?;
            out.flush()?;
            out.get_ref().sync_all()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close()?;
        fs::rename(self.path(), self.rotated_path())?;
        self.open()
    }

    fn due(&self) -> bool {
        self.edrs > 0
            && (self.bytes >= self.settings.max_bytes
                || self.opened.elapsed() >= self.settings.max_age)
    }

    fn write(&mut self, r: &EdrRecord) -> io::Result<()> {
        if self.out.is_none() {
            self.open()?;
        }
        let mut line = format_line(r, &self.settings.instance);
        line.push('\n');
        if let Some(out) = self.out.as_mut() {
            out.write_all(line.as_bytes())?;
        }
        self.bytes += line.len() as u64;
        self.edrs += 1;
        if self.due() {
            self.rotate()?;
        }
        Ok(())
    }

    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let mut last_err: Option<Instant> = None;
        let mut report = |e: io::Error| {
            // One line per minute at most: a full disk must not flood the log.
            if last_err.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                error!(error = %e, "EDR log write failed");
                last_err = Some(Instant::now());
            }
        };
        let mut last_flush = Instant::now();
        loop {
            let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            let first = match rx.recv_timeout(wait) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Cmd::Stop),
            };
            if let Some(first) = first {
                // The queue fills without waking this thread while it sleeps here.
                if matches!(first, Cmd::Line(_)) {
                    std::thread::sleep(GATHER);
                }
                let queued =
                    std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()));
                if self.take(queued, &mut report) {
                    return;
                }
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                // At most ~1 s behind on disk, busy or idle; rotation by age is checked here.
                last_flush = Instant::now();
                let res = match self.out.as_mut() {
                    Some(out) => out.flush(),
                    None => Ok(()),
                };
                let res = res.and_then(|()| if self.due() { self.rotate() } else { Ok(()) });
                if let Err(e) = res {
                    report(e);
                }
            }
        }
    }

    /// Writes the lines of `queued` in order. After a `Stop` among them (the rest of the
    /// queue still written), closes the file with its footer and returns `true`.
    fn take(
        &mut self,
        queued: impl Iterator<Item = Cmd>,
        report: &mut impl FnMut(io::Error),
    ) -> bool {
        let mut stopped = false;
        for cmd in queued {
            match cmd {
                Cmd::Line(r) => {
                    if let Err(e) = self.write(&r) {
                        // Reopen on the next line: the file may have been removed.
                        self.out = None;
                        report(e);
                    }
                }
                Cmd::Stop => stopped = true,
            }
        }
        if stopped && let Err(e) = self.close() {
            report(e);
        }
        stopped
    }
}

#[cfg(test)]
mod tests;
