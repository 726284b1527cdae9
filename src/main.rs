//! `sip-recorder` command line: parse flags, load and validate the configuration, start the
//! server (SPEC §2). Exit codes: 0 done, 1 the server failed, 2 bad configuration or flags.
#![forbid(unsafe_code)]

use clap::Parser;
use sip_recorder::config::{self, Config, ListenAddr, LogFormat, Overrides};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

/// SIP recording server: records Genesys, Cisco Meeting Server and SIPREC calls.
///
/// Flags override the configuration file; with neither, built-in defaults are used.
#[derive(Debug, Parser)]
#[command(name = "sip-recorder", version, about)]
struct Cli {
    /// TOML configuration file (see config/sip-recorder.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate the configuration, print "configuration OK" and exit.
    #[arg(long)]
    check_config: bool,

    /// Read a password from stdin (first line), print its argon2id hash for
    /// `[[http.users]] password_hash` and exit.
    #[arg(long)]
    hash_password: bool,

    /// SIP listener, repeatable; replaces the file's whole list. IPv6 as udp:[::1]:5060.
    #[arg(long, value_name = "udp|tcp|tls:IP:PORT")]
    sip_listen: Vec<ListenAddr>,

    /// RTP port range; RTP takes even ports, RTCP the odd one above.
    #[arg(long, value_name = "MIN-MAX", value_parser = config::parse_port_range)]
    rtp_ports: Option<(u16, u16)>,

    /// Address put in SDP answers.
    #[arg(long, value_name = "IP")]
    media_ip: Option<IpAddr>,

    /// Root directory for recordings.
    #[arg(long, value_name = "DIR")]
    recordings_dir: Option<PathBuf>,

    /// Directory for the CDR spool and EDR logs.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,

    /// CDR receiver URL (http or https), repeatable up to 4; replaces the file's list.
    #[arg(long, value_name = "URL")]
    cdr_receiver: Vec<String>,

    /// HTTP API address.
    #[arg(long, value_name = "IP:PORT")]
    http_listen: Option<SocketAddr>,

    /// Most concurrent recordings; beyond it INVITEs get 503.
    #[arg(long, value_name = "N")]
    max_sessions: Option<usize>,

    /// Log output format.
    #[arg(long, value_name = "text|json")]
    log_format: Option<LogFormat>,

    /// Log filter (tracing EnvFilter syntax, e.g. "info,sip_recorder=debug"); RUST_LOG wins.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            sip_listen: self.sip_listen.clone(),
            rtp_ports: self.rtp_ports,
            media_ip: self.media_ip,
            recordings_dir: self.recordings_dir.clone(),
            spool_dir: self.spool_dir.clone(),
            cdr_receivers: self.cdr_receiver.clone(),
            http_listen: self.http_listen,
            max_sessions: self.max_sessions,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
        }
    }
}

/// `--hash-password`: stdin's first line → PHC string on stdout.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("error: cannot read the password from stdin: {e}");
        return ExitCode::from(2);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("error: empty password on stdin");
        return ExitCode::from(2);
    }
    match sip_recorder::api::auth::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.hash_password {
        return hash_password();
    }
    let config = match Config::load(cli.config.as_deref(), &cli.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = sip_recorder::logging::init(&config.log) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The message names what failed (listener, directory, key); the chain says why.
    match runtime.block_on(sip_recorder::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", sip_recorder::error::Chain(&e));
            ExitCode::FAILURE
        }
    }
}
