//! Command line of the load tool.

use clap::{Parser, ValueEnum};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }

    pub fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            // RFC 3551: G.722's RTP clock is 8000 although it samples at 16 kHz.
            Codec::G722 => "G722/8000",
        }
    }
}

/// Places Genesys-style recording calls against a sip-recorder and checks what it recorded.
#[derive(Debug, Clone, Parser)]
#[command(name = "sip-recorder-load", version)]
pub struct Args {
    /// The recorder's SIP address.
    #[arg(long)]
    pub target: SocketAddr,
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: Transport,
    /// New calls per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Total calls to place (default 10 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    pub calls: Option<u64>,
    /// Place calls for this many seconds instead of a fixed count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Most calls up at once; new calls wait for a slot.
    #[arg(long, default_value_t = 10_000)]
    pub concurrency: usize,
    /// Seconds each call sends media before its BYE.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Audio streams per call (1 = dn only, 2 = dn and otherDN).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub streams: u8,
    #[arg(long, value_enum, default_value = "pcmu")]
    pub codec: Codec,
    /// Seconds into the hold at which the call pauses (re-INVITE a=inactive).
    #[arg(long, requires = "pause_for")]
    pub pause_at: Option<f64>,
    /// Seconds the pause lasts before the resume (re-INVITE a=sendonly).
    #[arg(long, requires = "pause_at")]
    pub pause_for: Option<f64>,
    /// Address used in Via, Contact and SDP (default: the one routing to --target).
    #[arg(long)]
    pub local_ip: Option<IpAddr>,
    /// RTP pacing tasks (default: one per core).
    #[arg(long)]
    pub rtp_tasks: Option<usize>,
    /// RFC 3261 T1 in ms for INVITE/BYE retransmission over UDP.
    #[arg(long, default_value_t = 500)]
    pub t1_ms: u64,
    /// Before starting, probe the target with OPTIONS for up to this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub wait_ready: f64,
    /// Print the report as one JSON object instead of a human line.
    #[arg(long)]
    pub json: bool,
    /// After the run, check every call's recording under this directory.
    #[arg(long, value_name = "RECORDINGS_DIR")]
    pub verify: Option<PathBuf>,
    /// Seconds to wait for all recordings to reach `state: ended`.
    #[arg(long, default_value_t = 30.0)]
    pub verify_timeout: f64,
    /// Allowed difference in seconds between a file's duration and the hold time.
    #[arg(long, default_value_t = 0.5)]
    pub duration_tolerance: f64,
}

impl Args {
    /// Checks what clap cannot express; the message names the offending flag.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("--{name} must be a positive number"))
            }
        };
        positive("rate", self.rate)?;
        positive("hold", self.hold)?;
        if let Some(d) = self.duration {
            positive("duration", d)?;
        }
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if let (Some(at), Some(len)) = (self.pause_at, self.pause_for) {
            positive("pause-for", len)?;
            if !(at.is_finite() && at >= 0.0 && at + len < self.hold) {
                return Err("--pause-at + --pause-for must end before --hold".into());
            }
        }
        if self.rtp_tasks == Some(0) {
            return Err("--rtp-tasks must be at least 1".into());
        }
        Ok(())
    }
}
