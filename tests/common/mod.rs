//! Harness for the black-box tests: runs the real `sip-recorder` binary on free loopback
//! ports with its own directories, and talks raw SIP to it.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod api;
pub mod call;
pub mod cdr;
pub mod client;
pub mod codec_ref;
pub mod garage;
pub mod msg;
pub mod rtp;
pub mod sdp;
pub mod sipp;
pub mod srtp;
pub mod tls;
pub mod uas;

// Re-exported for the test files; each uses a different subset.
#[allow(unused_imports)]
pub use api::*;
#[allow(unused_imports)]
pub use call::*;
#[allow(unused_imports)]
pub use cdr::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use msg::*;
#[allow(unused_imports)]
pub use sdp::*;
#[allow(unused_imports)]
pub use sipp::*;

use serde_json::Value;
use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const SEC: Duration = Duration::from_secs(1);

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Polls `probe` every 100 ms until it gives `Ok`; after `timeout`, panics with its last
/// `Err` (what was there instead).
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(found) => return found,
            Err(e) if Instant::now() >= deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A port that is free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP :0");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// Size of the RTP port block each recorder gets: enough for the SIPp tests' 10 concurrent
/// two-stream calls (RTP + RTCP each) with room for ports still closing.
const RTP_BLOCK: u16 = 100;
/// Blocks live in 10000..30000, below the kernel's ephemeral range so that no client
/// socket of another test can sit on them.
const RTP_BASE: u16 = 10_000;
const RTP_BLOCKS: u16 = 200;

/// A claim on one RTP port block, shared between concurrently running test processes
/// through lock files; a claim whose process is gone is taken over.
struct RtpLease {
    path: PathBuf,
    pub min: u16,
    pub max: u16,
}

impl RtpLease {
    fn take(seed: u16) -> RtpLease {
        let dir = std::env::temp_dir().join("sip-recorder-tests-rtp");
        fs::create_dir_all(&dir).expect("create RTP lease dir");
        let me = std::process::id();
        for i in 0..RTP_BLOCKS * 2 {
            let block = (seed + i) % RTP_BLOCKS;
            let path = dir.join(format!("block-{block}"));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{me}");
                    let min = RTP_BASE + block * RTP_BLOCK;
                    return RtpLease {
                        path,
                        min,
                        max: min + RTP_BLOCK - 1,
                    };
                }
                Err(_) => {
                    let owner: Option<u32> = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                    let alive =
                        owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    // An empty file may be a claim being written right now: leave it.
                    if owner.is_some() && !alive {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        panic!("no free RTP port block");
    }
}

/// The first port of an RTP port block this test process holds until it exits, for a
/// client's media (SIPp binds its `-mp` port and that port + 2): an ephemeral port that was
/// free a moment ago may have a taken neighbour, a leased block has none.
pub fn media_port_block() -> u16 {
    let lease = RtpLease::take((std::process::id() % u32::from(RTP_BLOCKS)) as u16);
    let first = lease.min;
    // The lease file names this process: it is reclaimed once the process is gone.
    std::mem::forget(lease);
    first
}

impl Drop for RtpLease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Recorder settings that tests vary; written to the TOML config file.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub min_session_expires_secs: u32,
    pub grace_period_secs: u64,
    /// More keys or tables for the generated file (tables merge with the harness's own).
    pub extra_toml: String,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            // Short timers keep the ACK-timeout test at 64*T1 = 3.2 s.
            t1_ms: 50,
            t2_ms: 400,
            min_session_expires_secs: 1,
            grace_period_secs: 2,
            extra_toml: String::new(),
        }
    }
}

impl RecorderConfig {
    fn to_toml(&self) -> String {
        let text = format!(
            "[sip]\nt1_ms = {}\nt2_ms = {}\nmin_session_expires_secs = {}\n\n[shutdown]\ngrace_period_secs = {}\n",
            self.t1_ms, self.t2_ms, self.min_session_expires_secs, self.grace_period_secs
        );
        if self.extra_toml.is_empty() {
            return text;
        }
        // Tables in `extra_toml` that the harness also writes (`[sip]`) cannot simply follow
        // it (TOML forbids a table twice), so the two are merged key by key.
        let mut base: toml::Table = text.parse().expect("harness TOML");
        let extra: toml::Table = self
            .extra_toml
            .parse()
            .unwrap_or_else(|e| panic!("extra_toml is not TOML: {e}\n{}", self.extra_toml));
        merge_toml(&mut base, extra);
        toml::to_string(&base).expect("serialize TOML")
    }
}

/// Adds `extra` to `base`; tables merge, other values replace.
fn merge_toml(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge_toml(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// A running `sip-recorder` process; killed (SIGKILL) on drop, its log printed when the
/// test failed.
pub struct Recorder {
    child: Child,
    exit: Option<ExitStatus>,
    pub sip_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub rtp_min: u16,
    pub rtp_max: u16,
    pub config: RecorderConfig,
    pub recordings_dir: PathBuf,
    pub spool_dir: PathBuf,
    pub log_path: PathBuf,
    /// The extra flags it was started with (a restart passes them again).
    pub extra_args: Vec<String>,
    _rtp: RtpLease,
    // Dropped last: holds the directories above.
    dir: tempfile::TempDir,
}

impl Recorder {
    pub fn start(extra_args: &[&str]) -> Recorder {
        Recorder::start_with(RecorderConfig::default(), extra_args)
    }

    /// A recorder whose configuration file also holds `extra_toml` (e.g. a `[media]` table).
    pub fn with_toml(extra_toml: &str) -> Recorder {
        Recorder::with_toml_args(extra_toml, &[])
    }

    /// `with_toml`, started with extra flags.
    pub fn with_toml_args(extra_toml: &str, extra_args: &[&str]) -> Recorder {
        Recorder::start_with(
            RecorderConfig {
                extra_toml: extra_toml.to_string(),
                ..RecorderConfig::default()
            },
            extra_args,
        )
    }

    pub fn start_with(config: RecorderConfig, extra_args: &[&str]) -> Recorder {
        // The ports come from `free_port`, free when picked; another test's socket may take
        // one before the recorder binds it. Only that is retried, with fresh ports.
        for _ in 0..3 {
            let mut rec = Recorder::spawn(config.clone(), extra_args);
            match rec.wait_ready() {
                Ok(()) => return rec,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("{log}"),
            }
        }
        panic!("sip-recorder found its ports taken three times in a row")
    }

    fn spawn(config: RecorderConfig, extra_args: &[&str]) -> Recorder {
        let dir = tempfile::Builder::new()
            .prefix("sip-recorder-test")
            .tempdir()
            .expect("tempdir");
        let recordings_dir = dir.path().join("recordings");
        let spool_dir = dir.path().join("spool");
        let config_path = dir.path().join("recorder.toml");
        let log_path = dir.path().join("recorder.log");
        fs::write(&config_path, config.to_toml()).expect("write config");

        let sip_port = free_port();
        let http_port = free_port();
        let rtp = RtpLease::take(sip_port % RTP_BLOCKS);
        let log = fs::File::create(&log_path).expect("create log file");
        let log2 = log.try_clone().expect("clone log file");

        let sip_addr = SocketAddr::from(([127, 0, 0, 1], sip_port));
        let http_addr = SocketAddr::from(([127, 0, 0, 1], http_port));
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let child = recorder_command(
            dir.path(),
            sip_addr,
            (rtp.min, rtp.max),
            http_addr,
            &extra_args,
        )
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .expect("spawn sip-recorder");
        Recorder {
            child,
            exit: None,
            sip_addr,
            http_addr,
            rtp_min: rtp.min,
            rtp_max: rtp.max,
            config,
            recordings_dir,
            spool_dir,
            log_path,
            extra_args,
            _rtp: rtp,
            dir,
        }
    }

    /// Ready = answers OPTIONS over UDP with 200; otherwise what went wrong, with the log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let mut client = SipClient::udp(self.sip_addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "sip-recorder exited during startup with {status}\n{}",
                    self.log()
                ));
            }
            client.send(&options_request(&client));
            if let Some(m) = client.recv(Duration::from_millis(50))
                && m.status() == Some(200)
            {
                return Ok(());
            }
        }
        Err(format!(
            "sip-recorder did not answer OPTIONS with 200 within 10 s\n{}",
            self.log()
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn udp(&self) -> SipClient {
        SipClient::udp(self.sip_addr)
    }

    pub fn tcp(&self) -> SipClient {
        SipClient::tcp(self.sip_addr)
    }

    pub fn client(&self, transport: Transport) -> SipClient {
        SipClient::new(transport, self.sip_addr)
    }

    /// Panics (with the log) when the process is no longer running.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exit = Some(status);
            panic!("sip-recorder died: {status}\n{}", self.log());
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit; `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exit = Some(s);
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.sigterm();
        self.wait_exit(timeout)
    }

    /// Every `recording.json` under the recordings dir, parsed (files caught mid-rewrite are
    /// left out; callers poll).
    pub fn recordings(&self) -> Vec<(PathBuf, Value)> {
        let mut out = Vec::new();
        for file in walk_files(&self.recordings_dir) {
            if file.file_name().is_some_and(|n| n == "recording.json")
                && let Ok(text) = fs::read_to_string(&file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
            {
                out.push((file.parent().unwrap_or(&file).to_path_buf(), v));
            }
        }
        out
    }

    /// Every file anywhere under the recordings dir.
    pub fn recording_files(&self) -> Vec<PathBuf> {
        walk_files(&self.recordings_dir)
    }

    /// Directories at the recording level of the `{yyyy}/{mm}/{dd}/{recording_id}` layout.
    pub fn recording_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_dirs_at_depth(&self.recordings_dir, 4, &mut out);
        out
    }

    /// Polls until a recording satisfies `pred`; panics with what exists on timeout.
    pub fn wait_recording(
        &self,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> (PathBuf, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.recordings().into_iter().find(|(_, v)| pred(v)) {
                return found;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no matching recording.json within {timeout:?}; present:\n{:#?}\n{}",
                    self.recordings(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The recording of a SIP Call-ID once it is in `state`: its directory and document.
    pub fn wait_call_state(
        &self,
        call_id: &str,
        state: &str,
        timeout: Duration,
    ) -> (PathBuf, Value) {
        self.wait_recording(
            |v| v["sip_call_id"] == call_id && v["state"] == state,
            timeout,
        )
    }

    /// The recording of a SIP Call-ID once it is `ended` (finalizing the files may take a
    /// moment after the BYE's 200), with its directory.
    pub fn wait_ended(&self, call_id: &str) -> (PathBuf, Value) {
        self.wait_call_state(call_id, "ended", Duration::from_secs(10))
    }

    /// Waits (10 s) until exactly `n` recordings exist and all are ended; returns them.
    pub fn wait_all_ended(&self, n: usize) -> Vec<(PathBuf, Value)> {
        wait_for(Duration::from_secs(10), || {
            let all = self.recordings();
            let ended = all.iter().filter(|(_, v)| v["state"] == "ended").count();
            if all.len() == n && ended == n {
                return Ok(all);
            }
            Err(format!(
                "{} recordings, {ended} ended; expected {n} ended: {all:#?}\n{}",
                all.len(),
                self.log()
            ))
        })
    }

    pub fn recordings_of_call(&self, call_id: &str) -> Vec<Value> {
        self.recordings()
            .into_iter()
            .filter(|(_, v)| v["sip_call_id"] == call_id)
            .map(|(_, v)| v)
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            // The tail is what matters; keep the output readable.
            let tail = &log[log.len().saturating_sub(64 * 1024)..];
            let start = (0..=tail.len().min(4))
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(0);
            eprintln!(
                "---- sip-recorder log ({}) ----\n{}\n---- end of log ----",
                self.log_path.display(),
                &tail[start..]
            );
        }
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = &self.dir;
    }
}

/// The `sip-recorder` command line of a test recorder living in `dir` (its config file,
/// recordings and spool), listening on UDP and TCP at `sip_addr`; stdout/stderr are the
/// caller's.
fn recorder_command(
    dir: &Path,
    sip_addr: SocketAddr,
    (rtp_min, rtp_max): (u16, u16),
    http_addr: SocketAddr,
    extra_args: &[String],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sip-recorder"));
    cmd.arg("--config")
        .arg(dir.join("recorder.toml"))
        .arg("--sip-listen")
        .arg(format!("udp:{sip_addr}"))
        .arg("--sip-listen")
        .arg(format!("tcp:{sip_addr}"))
        .arg("--rtp-ports")
        .arg(format!("{rtp_min}-{rtp_max}"))
        .arg("--media-ip")
        .arg("127.0.0.1")
        .arg("--recordings-dir")
        .arg(dir.join("recordings"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .arg("--http-listen")
        .arg(http_addr.to_string())
        .arg("--log-format")
        .arg("text")
        // SIP_RECORDER_TEST_LOG=debug makes a failing test's recorder log verbose.
        .args(
            std::env::var("SIP_RECORDER_TEST_LOG")
                .map(|l| vec!["--log-level".to_string(), l])
                .unwrap_or_default(),
        )
        .args(extra_args)
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn collect_dirs_at_depth(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if depth == 1 {
                out.push(p);
            } else {
                collect_dirs_at_depth(&p, depth - 1, out);
            }
        }
    }
}

/// Sends an INVITE and returns the provisional responses and the final one.
pub fn invite_and_wait(client: &mut SipClient, call: &Call, msg: &str) -> (Vec<Msg>, Msg) {
    client.send(msg);
    client
        .wait_reply(msg, 200, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final response to INVITE {}", call.call_id))
}

/// INVITE → 200 → ACK; returns the 200.
pub fn establish(client: &mut SipClient, call: &mut Call, invite: &str) -> Msg {
    let (_, ok) = invite_and_wait(client, call, invite);
    assert_eq!(
        ok.status(),
        Some(200),
        "INVITE not accepted:\n{}",
        String::from_utf8_lossy(&ok.raw)
    );
    let ack = call.ack_2xx(&ok);
    client.send(&ack);
    ok
}

/// re-INVITE with `sdp` → 200 → ACK (a Genesys pause or resume); returns the 200.
pub fn reoffer(client: &mut SipClient, call: &mut Call, sdp: &str) -> Msg {
    let reinvite = call.reinvite(sdp, "");
    client.send(&reinvite);
    let ok = client.expect_reply(&reinvite, 200, Duration::from_secs(5));
    client.send(&call.ack_2xx(&ok));
    ok
}

/// A Genesys call on `client` (INVITE → 200 → ACK), waited until its recording is active.
pub fn genesys_call_active(rec: &Recorder, client: &mut SipClient) -> Call {
    let mut call = Call::genesys(client);
    let invite = call.genesys_invite();
    establish(client, &mut call, &invite);
    rec.wait_call_state(&call.call_id, "active", Duration::from_secs(5));
    call
}

/// A Genesys pause (re-INVITE `a=inactive`, o= version `version`), waited until the
/// recording is paused.
pub fn pause(rec: &Recorder, client: &mut SipClient, call: &mut Call, version: u64) {
    reoffer(client, call, &genesys_sdp(version, "inactive"));
    rec.wait_call_state(&call.call_id, "paused", Duration::from_secs(5));
}

/// A Genesys resume (re-INVITE `a=sendonly`), waited until the recording is active again.
pub fn resume(rec: &Recorder, client: &mut SipClient, call: &mut Call, version: u64) {
    reoffer(client, call, &genesys_sdp(version, "sendonly"));
    rec.wait_call_state(&call.call_id, "active", Duration::from_secs(5));
}

/// Sends BYE and expects 200.
pub fn hang_up(client: &mut SipClient, call: &mut Call) -> Msg {
    let bye = call.bye();
    client.send(&bye);
    client.expect_reply(&bye, 200, Duration::from_secs(5))
}

/// Sends OPTIONS from a fresh UDP socket and returns the final response.
/// Like a real UAC over UDP (RFC 3261 Timer E), the request is retransmitted until answered:
/// a burst the test itself sent may have filled the recorder's socket buffer.
pub fn options_status(addr: SocketAddr) -> Msg {
    let mut c = SipClient::udp(addr);
    let request = options_request(&c);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut interval = Duration::from_millis(250);
    while Instant::now() < deadline {
        c.send(&request);
        let resend_at = Instant::now() + interval;
        while let Some(m) = c.recv(resend_at.saturating_duration_since(Instant::now())) {
            if m.status().is_some_and(|s| s >= 200) {
                return m;
            }
        }
        interval = (interval * 2).min(Duration::from_secs(1));
    }
    panic!("no response to OPTIONS within 3 s");
}

/// Polls OPTIONS until it returns `code`; panics on timeout.
pub fn wait_options_status(addr: SocketAddr, code: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let m = options_status(addr);
        if m.status() == Some(code) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "OPTIONS never answered {code}; last:\n{}",
            String::from_utf8_lossy(&m.raw)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
