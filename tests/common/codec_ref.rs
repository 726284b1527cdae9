//! Independent codecs for the codec tests: `tests/tools/codec_ref.py` drives bcg729 (G.729),
//! libopus (Opus) and spandsp (G.726) through ctypes, so what the recorder decodes was
//! encoded by code it shares nothing with. Plus a raw RTP sender for such payloads.

use std::f64::consts::PI;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Peak amplitude of the test tones (about −12 dBFS).
pub const AMPLITUDE: f64 = 8000.0;

/// `seconds` of a `hz` tone at `rate`, `channels` interleaved (right channel = left).
pub fn tone(hz: f64, rate: u32, seconds: f64, channels: usize) -> Vec<i16> {
    let n = (seconds * f64::from(rate)) as usize;
    (0..n)
        .flat_map(|i| {
            let s = (AMPLITUDE * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as i16;
            std::iter::repeat_n(s, channels)
        })
        .collect()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/codec_ref.py")
}

fn run(args: &[&str]) {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 (installed by scripts/test): {e}"));
    assert!(
        out.status.success(),
        "codec_ref.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_pcm(path: &Path, pcm: &[i16]) {
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write PCM");
}

fn read_pcm(path: &Path) -> Vec<i16> {
    std::fs::read(path)
        .expect("read PCM")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn read_packets(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("read packets");
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= data.len() {
        let n = usize::from(u16::from_be_bytes([data[i], data[i + 1]]));
        out.push(data[i + 2..i + 2 + n].to_vec());
        i += 2 + n;
    }
    out
}

fn write_packets(path: &Path, packets: &[Vec<u8>]) {
    let mut data = Vec::new();
    for p in packets {
        data.extend_from_slice(&(p.len() as u16).to_be_bytes());
        data.extend_from_slice(p);
    }
    std::fs::write(path, data).expect("write packets");
}

/// Encodes `pcm` with the independent encoder of `codec` (`g729`, `opus`, `g726`,
/// `g726-aal2`); one payload per packet interval. `options` go to codec_ref.py.
pub fn encode(codec: &str, pcm: &[i16], options: &[&str]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (dir.path().join("in.pcm"), dir.path().join("out.pk"));
    write_pcm(&src, pcm);
    let mut args = vec![
        "encode",
        codec,
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    run(&args);
    read_packets(&dst)
}

/// Decodes `packets` with the independent decoder of `codec`.
pub fn decode(codec: &str, packets: &[Vec<u8>], options: &[&str]) -> Vec<i16> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (dir.path().join("in.pk"), dir.path().join("out.pcm"));
    write_packets(&src, packets);
    let mut args = vec![
        "decode",
        codec,
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    run(&args);
    read_pcm(&dst)
}

/// Raw RTP from one socket: the caller says payload type, timestamp step and payload.
pub struct RawRtp {
    sock: UdpSocket,
    pub dest: SocketAddr,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub sent: u64,
}

impl RawRtp {
    pub fn new(dest: SocketAddr) -> RawRtp {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
        let seed = uuid::Uuid::new_v4().as_u128();
        RawRtp {
            sock,
            dest,
            ssrc: seed as u32,
            seq: (seed >> 32) as u16,
            ts: (seed >> 64) as u32,
            sent: 0,
        }
    }

    /// Sends one packet at the current timestamp, then advances it by `ts_step`.
    pub fn send(&mut self, pt: u8, payload: &[u8], ts_step: u32) {
        self.send_at(pt, payload);
        self.ts = self.ts.wrapping_add(ts_step);
    }

    /// Sends one packet at the current timestamp without advancing it.
    pub fn send_at(&mut self, pt: u8, payload: &[u8]) {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push(pt & 0x7F);
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.sock.send_to(&p, self.dest).expect("send RTP");
        self.seq = self.seq.wrapping_add(1);
        self.sent += 1;
    }

    /// A sequence number is used up without a packet (a loss on the way).
    pub fn skip(&mut self, ts_step: u32) {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(ts_step);
    }
}
