//! sip-recorder-load: places Genesys-style recording calls against a sip-recorder at a given
//! rate and concurrency, sends their RTP, reports setup latency and packet counts, and can
//! verify afterwards that every recording on disk holds exactly what was sent.
#![forbid(unsafe_code)]

// A binary crate root looks for modules beside itself; they live in their own directory.

#[path = "sip-recorder-load/call.rs"]
mod call;
#[path = "sip-recorder-load/cli.rs"]
mod cli;
#[path = "sip-recorder-load/report.rs"]
mod report;
#[path = "sip-recorder-load/rtp.rs"]
mod rtp;
#[path = "sip-recorder-load/sip.rs"]
mod sip;
#[path = "sip-recorder-load/tone.rs"]
mod tone;
#[path = "sip-recorder-load/transport.rs"]
mod transport;
#[path = "sip-recorder-load/verify.rs"]
mod verify;

use call::{CallResult, Shared, run_call};
use clap::Parser;
use cli::{Args, Codec, Transport};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("sip-recorder-load: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sip-recorder-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sip-recorder-load: {e}");
            ExitCode::from(2)
        }
    }
}

/// The address this host sends from towards `target` (no packet is sent).
fn route_ip(target: SocketAddr) -> std::io::Result<IpAddr> {
    let any: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any)?;
    s.connect(target)?;
    Ok(s.local_addr()?.ip())
}

/// Polls the target with OPTIONS (UDP) or connection attempts (TCP) until it answers.
async fn wait_ready(args: &Args, local_ip: IpAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.wait_ready);
    let sock = tokio::net::UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65_536];
    loop {
        let ready = match args.transport {
            Transport::Tcp => tokio::net::TcpStream::connect(args.target).await.is_ok(),
            Transport::Udp => {
                let options = format!(
                    "OPTIONS sip:probe@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{b};rport\r\nMax-Forwards: 70\r\nFrom: <sip:load@{local}>;tag={b}\r\nTo: <sip:probe@{t}>\r\nCall-ID: {b}@{local}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                    t = args.target,
                    b = uuid::Uuid::new_v4().simple()
                );
                let _ = sock.send_to(options.as_bytes(), args.target).await;
                matches!(
                    tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await,
                    Ok(Ok((n, _))) if sip::Msg::parse(&buf[..n]).and_then(|m| m.status()) == Some(200)
                )
            }
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} not ready after {} s",
                args.target, args.wait_ready
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let shared = connect(&args).await?;
    let (results, elapsed) = place_calls(&args, &shared).await?;
    let report = report::Report::new(
        &results,
        &shared.pacer.stats,
        shared.peak.load(Ordering::Relaxed),
        elapsed,
    );
    let mut ok = report.failed_total() == 0;
    let verification = match &args.verify {
        Some(dir) => {
            let expect = verify::Expectation {
                streams: usize::from(args.streams),
                hold: args.hold,
                tolerance: args.duration_tolerance,
            };
            let timeout = Duration::from_secs_f64(args.verify_timeout.max(0.0));
            let v = verify::verify(dir, &results, &expect, timeout).await;
            ok &= v.ok();
            Some(v)
        }
        None => None,
    };
    print_report(&args, &report, verification.as_ref(), ok);
    Ok(ok)
}

/// Waits for the target if asked, opens the SIP transport and the RTP pacer, and draws the
/// tones and run id every call shares.
async fn connect(args: &Args) -> Result<Arc<Shared>, String> {
    let local_ip = match args.local_ip {
        Some(ip) => ip,
        None => route_ip(args.target).map_err(|e| format!("no route to {}: {e}", args.target))?,
    };
    if args.wait_ready > 0.0 {
        wait_ready(args, local_ip).await?;
    }
    let sip = transport::SipTransport::open(args.transport, args.target, local_ip)
        .await
        .map_err(|e| format!("SIP transport to {}: {e}", args.target))?;
    let tasks = args.rtp_tasks.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let pacer = rtp::Pacer::start(tasks, usize::from(args.streams), local_ip)
        .map_err(|e| format!("RTP sockets: {e}"))?;
    let codec: Codec = args.codec;
    Ok(Arc::new(Shared {
        tones: vec![
            Arc::new(tone::ToneFrames::new(codec, 440.0)),
            Arc::new(tone::ToneFrames::new(codec, 880.0)),
        ],
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        args: args.clone(),
        sip,
        pacer,
        local_ip,
        active: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    }))
}

/// Places calls at `--rate`, at most `--concurrency` at once, until `--calls` are placed or
/// `--duration` has passed (10 calls if neither is given); returns every call's result and
/// the time from the first call to the end of the last.
async fn place_calls(
    args: &Args,
    shared: &Arc<Shared>,
) -> Result<(Vec<CallResult>, Duration), String> {
    let total = match (args.calls, args.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(10),
    };
    let place_for = args.duration.map(Duration::from_secs_f64);
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let mut calls = JoinSet::new();
    let started = Instant::now();
    let mut next = started;
    let mut index = 0u64;
    loop {
        if total.is_some_and(|n| index >= n) || place_for.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        tokio::time::sleep_until(next).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        // Waiting for a slot does not earn a burst afterwards: the rate is a ceiling.
        next = next.max(Instant::now() - period) + period;
        let shared = shared.clone();
        calls.spawn(async move {
            let r = run_call(shared, index).await;
            drop(slot);
            r
        });
        index += 1;
    }
    let mut results: Vec<CallResult> = Vec::with_capacity(index as usize);
    while let Some(r) = calls.join_next().await {
        match r {
            Ok(r) => results.push(r),
            Err(e) => return Err(format!("call task failed: {e}")),
        }
    }
    Ok((results, started.elapsed()))
}

/// The report on stdout: one JSON document with `--json`, else text for a person.
fn print_report(
    args: &Args,
    report: &report::Report,
    verification: Option<&verify::Verification>,
    ok: bool,
) {
    if args.json {
        let mut j = report.to_json();
        if let Some(v) = verification {
            j["verify"] = v.to_json();
        }
        j["ok"] = ok.into();
        println!("{j}");
    } else {
        println!("{}", report.human());
        if let Some(v) = verification {
            println!("{}", v.human());
        }
    }
}
