//! SIPp as the SRC: running a scenario of `scripts/sipp/` and reading its outcome.

use super::client::Transport;
use super::{free_port, media_port_block};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A file of `scripts/sipp/` (scenarios and the audio they stream).
pub fn sipp_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/sipp")
        .join(name)
}

/// One SIPp UAC run against `target`: `calls` calls of a scenario of `scripts/sipp/`.
#[derive(Debug, Clone)]
pub struct SippRun {
    target: SocketAddr,
    scenario: PathBuf,
    calls: usize,
    rate: usize,
    limit: usize,
    timeout: &'static str,
    transport: Transport,
    extra: Vec<String>,
}

/// How long a run may take before the test kills SIPp: its own `-timeout` bounds the run,
/// this is the backstop should SIPp hang.
const WATCHDOG: Duration = Duration::from_secs(90);

impl SippRun {
    /// 10 calls per second, at most 10 at once, a 60 s SIPp timeout, over UDP.
    pub fn new(target: SocketAddr, scenario: &str, calls: usize) -> SippRun {
        SippRun {
            target,
            scenario: sipp_file(scenario),
            calls,
            rate: 10,
            limit: 10,
            timeout: "60s",
            transport: Transport::Udp,
            extra: Vec::new(),
        }
    }

    /// Calls per second (`-r`) and at most this many at once (`-l`).
    pub fn rate(mut self, rate: usize, limit: usize) -> SippRun {
        self.rate = rate;
        self.limit = limit;
        self
    }

    /// SIPp's own `-timeout` for the whole run (`"30s"`).
    pub fn timeout(mut self, timeout: &'static str) -> SippRun {
        self.timeout = timeout;
        self
    }

    /// TCP is one connection for all calls (`-t t1`), as CMS keeps.
    pub fn transport(mut self, transport: Transport) -> SippRun {
        self.transport = transport;
        self
    }

    /// More SIPp flags (`-s rec`).
    pub fn args(mut self, extra: &[&str]) -> SippRun {
        self.extra.extend(extra.iter().map(|a| a.to_string()));
        self
    }

    /// Starts SIPp in `work`, where it finds the audio of `scripts/sipp/` (rtp_stream reads
    /// its file relative to the working directory) and writes `stats.csv`.
    pub fn spawn(&self, work: &Path) -> Child {
        for entry in std::fs::read_dir(sipp_file(""))
            .expect("scripts/sipp")
            .flatten()
        {
            if entry.path().extension().is_some_and(|x| x == "wav") {
                std::fs::copy(entry.path(), work.join(entry.file_name())).expect("copy audio");
            }
        }
        let mut cmd = Command::new("sipp");
        cmd.arg(self.target.to_string())
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string(), "-l", &self.limit.to_string()])
            .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &media_port_block().to_string()])
            .args(["-timeout", self.timeout, "-timeout_error", "-nostdin"])
            .arg("-trace_stat")
            .arg("-stf")
            .arg(work.join("stats.csv"))
            .args(&self.extra)
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.transport == Transport::Tcp {
            cmd.args(["-t", "t1"]);
        }
        match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`sipp` is not installed: install the Debian package sip-tester (scripts/test does)"
            ),
            Err(e) => panic!("cannot run sipp: {e}"),
        }
    }

    /// Runs SIPp in `work` to its end (killed after `WATCHDOG`).
    pub fn run_in(&self, work: &Path) -> SippOutcome {
        let child = self.spawn(work);
        let pid = child.id();
        let watchdog = std::thread::spawn(move || {
            let deadline = Instant::now() + WATCHDOG;
            while Instant::now() < deadline {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        });
        let outcome = SippOutcome::of(child, work);
        let _ = watchdog.join();
        outcome
    }

    /// Runs SIPp in a temporary directory and asserts that every call succeeded.
    pub fn run_ok(&self) {
        let work = tempfile::tempdir().expect("tempdir");
        self.run_in(work.path())
            .assert_all_succeeded(self.calls, "");
    }
}

/// What a finished SIPp run left: its exit, its screen and its statistics file.
pub struct SippOutcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub stats: PathBuf,
}

impl SippOutcome {
    /// Waits for `child` (started by `SippRun::spawn` in `work`) to exit.
    pub fn of(child: Child, work: &Path) -> SippOutcome {
        let out = child.wait_with_output().expect("wait for sipp");
        SippOutcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stats: work.join("stats.csv"),
        }
    }

    /// The last `n` lines of SIPp's screen.
    pub fn screen_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.stdout.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIPp exited with success and counted `calls` successful calls, none failed;
    /// `context` (logs of the servers) is shown on failure.
    pub fn assert_all_succeeded(&self, calls: usize, context: &str) {
        let tail = self.screen_tail(60);
        assert!(
            self.status.success(),
            "sipp exited with {}\n{tail}\n{}\n{context}",
            self.status,
            self.stderr
        );
        assert_eq!(
            final_counts(&self.stats),
            (calls as u64, 0),
            "SIPp calls (successful, failed)\n{tail}\n{context}"
        );
    }
}

/// Final counters from SIPp's `-trace_stat` CSV: (successful, failed) calls.
pub fn final_counts(stat_file: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(stat_file)
        .unwrap_or_else(|e| panic!("SIPp statistics file {}: {e}", stat_file.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .expect("statistics header")
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .expect("statistics row")
        .split(';')
        .collect();
    let column = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"));
        last[i].trim().parse().expect("numeric counter")
    };
    (column("SuccessfulCall(C)"), column("FailedCall(C)"))
}
