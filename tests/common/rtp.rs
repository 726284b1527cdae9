//! Real RTP for the media tests: G.711 / G.722 encoders, tone generators, RFC 4733
//! telephone-events, a real-time pacer, WAV analysis, and the recorder restarts a crash
//! test needs.

use super::Recorder;
use ezk_g722::libg722::Bitrate;
use ezk_g722::libg722::encoder::Encoder as G722Encoder;
use std::f64::consts::PI;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One packet interval (ptime 20).
pub const PACKET: Duration = Duration::from_millis(20);
/// RTP timestamp units per packet: PCMU, PCMA and G.722 all use an 8 kHz RTP clock.
pub const TS_PER_PACKET: u32 = 160;
/// Dynamic payload type of telephone-event in the offers built here.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Peak amplitude of the test tones (about −12 dBFS: far from clipping in every codec).
pub const TONE_AMPLITUDE: f64 = 8000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }

    /// Rate of the audio the codec carries (and of the recorder's file).
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::G722 => 16000,
        }
    }

    pub fn samples_per_packet(self) -> usize {
        (self.sample_rate() / 50) as usize
    }

    /// One audio m= section offering only this codec plus telephone-event.
    /// G.722's rtpmap says 8000 for historical reasons (RFC 3551 §4.5.2).
    pub fn sdp_media(self, port: u16, direction: &str) -> String {
        let pt = self.payload_type();
        format!(
            "m=audio {port} RTP/AVP {pt} {te}\r\na=rtpmap:{pt} {name}/8000\r\na=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\na=ptime:20\r\na={direction}\r\n",
            te = TELEPHONE_EVENT_PT,
            name = self.name()
        )
    }
}

/// An offer with one audio m= line per codec, in order (stream 0 = `dn`, 1 = `otherDN`).
pub fn media_sdp(version: u64, codecs: &[Codec], direction: &str) -> String {
    let mut sdp = format!(
        "v=0\r\no=client 4242 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    );
    for (i, c) in codecs.iter().enumerate() {
        sdp.push_str(&c.sdp_media(41000 + 2 * i as u16, direction));
    }
    sdp
}

// ---------------------------------------------------------------------------------------
// G.711 encoders (ITU-T G.711, as in the classic Sun reference code)

pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign: u8 = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let top = (s >> 7) as u8;
    let exponent = if top == 0 {
        0
    } else {
        7 - top.leading_zeros() as u8
    };
    let mantissa = ((s >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

pub fn linear_to_alaw(sample: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = i32::from(sample) >> 3;
    let mask: i32 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(seg) = SEG_END.iter().position(|&end| pcm <= end) else {
        return (0x7F ^ mask) as u8;
    };
    let shift = if seg < 2 { 1 } else { seg };
    let aval = ((seg as i32) << 4) | ((pcm >> shift) & 0x0F);
    (aval ^ mask) as u8
}

// ---------------------------------------------------------------------------------------
// Pacing

/// Real-time clock for packet ticks: tick `n` is due at `start + n * 20 ms`.
pub struct Pacer {
    pub start: Instant,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            start: Instant::now(),
        }
    }

    pub fn at(&self, tick: u64) -> Instant {
        self.start + PACKET * tick as u32
    }

    /// Sleeps until tick `tick` is due (returns at once when it already is).
    pub fn wait(&self, tick: u64) {
        let due = self.at(tick);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }

    /// The first tick that is not yet in the past.
    pub fn next_tick(&self) -> u64 {
        let elapsed = self.start.elapsed().as_nanos();
        elapsed.div_ceil(PACKET.as_nanos()) as u64
    }

    /// Seconds from `origin` to tick `tick`.
    pub fn secs_since(&self, origin: Instant, tick: u64) -> f64 {
        self.at(tick).duration_since(origin).as_secs_f64()
    }
}

/// Sends tone packets on every sender for each tick of `ticks`, interleaved, in real time.
pub fn send_tones(pacer: &Pacer, ticks: std::ops::Range<u64>, senders: &mut [&mut RtpSender]) {
    for t in ticks {
        pacer.wait(t);
        for s in senders.iter_mut() {
            s.send_tone(t);
        }
    }
}

// ---------------------------------------------------------------------------------------
// RTP sender

/// One RTP stream from one UDP socket. Timestamps and the tone's phase follow the tick
/// (wall clock), so ticks without a packet (pause, DTMF) keep the sender's clock running
/// like a real SRC's; sequence numbers count packets actually sent.
pub struct RtpSender {
    sock: UdpSocket,
    pub dest: SocketAddr,
    pub codec: Codec,
    pub ssrc: u32,
    pub seq_base: u16,
    pub ts_base: u32,
    pub tone_hz: f64,
    g722: Option<G722Encoder>,
    seq: u16,
    /// Every packet sent (audio and telephone-event).
    pub sent: u64,
    pub audio_sent: u64,
    pub events_sent: u64,
    /// Packets built and counted as sent but never put on the wire (network loss).
    pub lost_in_network: u64,
    /// RTP payload octets of every packet counted as sent.
    pub octets_counted: u64,
    marker_pending: bool,
}

impl RtpSender {
    /// A sender on a fresh socket bound to 127.0.0.1:0.
    pub fn new(codec: Codec, dest: SocketAddr, tone_hz: f64) -> RtpSender {
        RtpSender::bound("127.0.0.1:0".parse().expect("addr"), codec, dest, tone_hz)
    }

    /// A sender on a fresh socket bound to `local` (another loopback IP for a spoofer).
    pub fn bound(local: SocketAddr, codec: Codec, dest: SocketAddr, tone_hz: f64) -> RtpSender {
        let sock = UdpSocket::bind(local).unwrap_or_else(|e| panic!("bind RTP {local}: {e}"));
        let seed = uuid::Uuid::new_v4().as_u128();
        RtpSender {
            sock,
            dest,
            codec,
            ssrc: seed as u32,
            // Random bases as RFC 3550 asks; they also exercise the recorder's arithmetic.
            seq_base: (seed >> 32) as u16,
            ts_base: (seed >> 64) as u32,
            tone_hz,
            g722: (codec == Codec::G722)
                .then(|| G722Encoder::new(Bitrate::Mode1_64000, false, false)),
            seq: (seed >> 32) as u16,
            sent: 0,
            audio_sent: 0,
            events_sent: 0,
            lost_in_network: 0,
            octets_counted: 0,
            marker_pending: true,
        }
    }

    /// Another socket at `local` that sends the same SSRC, sequence and timestamp pattern
    /// as `self`, with its own tone.
    pub fn impostor(&self, local: SocketAddr, tone_hz: f64) -> RtpSender {
        let mut s = RtpSender::bound(local, self.codec, self.dest, tone_hz);
        s.ssrc = self.ssrc;
        s.seq_base = self.seq_base;
        s.ts_base = self.ts_base;
        s.seq = self.seq;
        s
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    fn header(&mut self, pt: u8, marker: bool, ts: u32) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + 320);
        p.push(0x80);
        p.push(pt | if marker { 0x80 } else { 0 });
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        p
    }

    fn ts_of(&self, tick: u64) -> u32 {
        self.ts_base
            .wrapping_add((tick as u32).wrapping_mul(TS_PER_PACKET))
    }

    /// The tone's samples for one tick, phase-continuous across ticks.
    pub fn tone_samples(&self, tick: u64) -> Vec<i16> {
        let rate = f64::from(self.codec.sample_rate());
        let n = self.codec.samples_per_packet();
        let first = tick as usize * n;
        (first..first + n)
            .map(|i| (TONE_AMPLITUDE * (2.0 * PI * self.tone_hz * i as f64 / rate).sin()) as i16)
            .collect()
    }

    fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        match self.codec {
            Codec::Pcmu => pcm.iter().map(|&s| linear_to_ulaw(s)).collect(),
            Codec::Pcma => pcm.iter().map(|&s| linear_to_alaw(s)).collect(),
            Codec::G722 => self.g722.as_mut().expect("G.722 encoder").encode(pcm),
        }
    }

    /// The audio packet of tick `tick`, advancing the sequence number.
    pub fn tone_packet(&mut self, tick: u64) -> Vec<u8> {
        let pcm = self.tone_samples(tick);
        let payload = self.encode(&pcm);
        let marker = std::mem::take(&mut self.marker_pending);
        let ts = self.ts_of(tick);
        let mut p = self.header(self.codec.payload_type(), marker, ts);
        p.extend_from_slice(&payload);
        p
    }

    pub fn send_tone(&mut self, tick: u64) {
        let p = self.tone_packet(tick);
        self.send_raw(&p);
        self.audio_sent += 1;
    }

    /// One RFC 4733 packet of an event that began at tick `start_tick`: `elapsed` RTP
    /// units so far, `end` = the E bit. The first packet of an event carries the marker.
    pub fn send_event(&mut self, digit: u8, start_tick: u64, elapsed: u16, end: bool) {
        let first = elapsed <= TS_PER_PACKET as u16 && !end;
        let ts = self.ts_of(start_tick);
        let mut p = self.header(TELEPHONE_EVENT_PT, first, ts);
        let volume = 10u8;
        p.push(digit);
        p.push(if end { 0x80 | volume } else { volume });
        p.extend_from_slice(&elapsed.to_be_bytes());
        self.send_raw(&p);
        self.events_sent += 1;
        // Audio after an event starts a new talkspurt.
        self.marker_pending = true;
    }

    pub fn send_raw(&mut self, packet: &[u8]) {
        self.sock.send_to(packet, self.dest).expect("send RTP");
        self.sent += 1;
        self.octets_counted += packet.len().saturating_sub(12) as u64;
    }

    /// An audio packet for tick `tick` with `payload` as it is (not encoded from a tone).
    pub fn send_payload(&mut self, tick: u64, payload: &[u8]) {
        let marker = std::mem::take(&mut self.marker_pending);
        let ts = self.ts_of(tick);
        let mut p = self.header(self.codec.payload_type(), marker, ts);
        p.extend_from_slice(payload);
        self.send_raw(&p);
        self.audio_sent += 1;
    }

    /// Builds tick `tick`'s packet (its sequence number is used up) and drops it, as the
    /// network would: the sender counted it as sent.
    pub fn lose_tone(&mut self, tick: u64) {
        let p = self.tone_packet(tick);
        self.lost_in_network += 1;
        self.octets_counted += (p.len() - 12) as u64;
    }

    /// What this sender's RTCP SR says it sent (RFC 3550 §6.4.1 sender packet count).
    pub fn packets_counted(&self) -> u64 {
        self.sent + self.lost_in_network
    }

    /// A compound RTCP packet: SR with this sender's counts, then SDES with a CNAME.
    pub fn sender_report(&self, tick: u64) -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6];
        let ntp = 0xE000_0000u32.wrapping_add(tick as u32 / 50);
        for word in [
            self.ssrc,
            ntp,
            0,
            self.ts_of(tick),
            self.packets_counted() as u32,
            self.octets_counted as u32,
        ] {
            p.extend_from_slice(&word.to_be_bytes());
        }
        // SDES: one chunk, CNAME "src@127.0.0.1", end item, padding to a word.
        let cname = b"src@127.0.0.1";
        let start = p.len();
        p.extend_from_slice(&[0x81, 202, 0, 0]);
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(&[1, cname.len() as u8]);
        p.extend_from_slice(cname);
        p.push(0);
        while (p.len() - start) % 4 != 0 {
            p.push(0);
        }
        let words = ((p.len() - start) / 4 - 1) as u16;
        p[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
        p
    }

    /// Sends an SR to `dest` (the RTCP port, or the RTP port with rtcp-mux).
    pub fn send_sr(&mut self, tick: u64, dest: SocketAddr) {
        let sr = self.sender_report(tick);
        self.send_datagram(&sr, dest);
    }

    /// A datagram from this sender's socket that is not an RTP packet (not counted).
    pub fn send_datagram(&self, data: &[u8], dest: SocketAddr) {
        self.sock.send_to(data, dest).expect("send RTCP");
    }
}

// ---------------------------------------------------------------------------------------
// WAV analysis

pub struct Wav {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    pub fn channel(&self, c: u16) -> Vec<i16> {
        self.samples
            .iter()
            .skip(usize::from(c))
            .step_by(usize::from(self.channels.max(1)))
            .copied()
            .collect()
    }
}

/// Opens a WAV with `hound` (a reader independent of the recorder's writer) and reads every
/// sample its header declares.
pub fn read_wav(path: &Path) -> Result<Wav, String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format!("{}: not 16-bit PCM: {spec:?}", path.display()));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Wav {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        samples,
    })
}

/// Frames and sample rate a WAV's header declares, without reading the samples.
pub fn wav_header_frames(path: &Path) -> Result<(u32, u32), String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((reader.duration(), reader.spec().sample_rate))
}

pub fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
}

/// The part of `s` between `from` and `to` seconds, clamped to the signal.
pub fn window(s: &[i16], rate: u32, from: f64, to: f64) -> &[i16] {
    let idx = |t: f64| ((t.max(0.0) * f64::from(rate)) as usize).min(s.len());
    let (a, b) = (idx(from), idx(to));
    &s[a.min(b)..b]
}

/// Amplitude of the `hz` component (Hann-windowed Goertzel): a pure tone of peak amplitude
/// A at `hz` gives about A; a tone a few bins away gives almost nothing.
pub fn tone_amplitude(s: &[i16], rate: u32, hz: f64) -> f64 {
    let n = s.len();
    if n < 2 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * PI * hz / f64::from(rate)).cos();
    let (mut s1, mut s2, mut wsum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in s.iter().enumerate() {
        let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos();
        wsum += w;
        let s0 = f64::from(x) * w + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / wsum
}

/// Frequency estimate from sign changes (ignores exact zeros).
pub fn zero_crossing_hz(s: &[i16], rate: u32) -> f64 {
    let mut crossings = 0usize;
    let mut last = 0i16;
    for &x in s {
        if x != 0 {
            if last != 0 && (x > 0) != (last > 0) {
                crossings += 1;
            }
            last = x;
        }
    }
    if s.is_empty() {
        return 0.0;
    }
    crossings as f64 / 2.0 / (s.len() as f64 / f64::from(rate))
}

/// Per-window measurements over `[from, to)` seconds in 20 ms windows with a 10 ms hop:
/// (window start in seconds, RMS, amplitude at `hz`).
pub fn windows(s: &[i16], rate: u32, from: f64, to: f64, hz: f64) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    let mut t = from;
    while t + 0.020 <= to + 1e-9 {
        let w = window(s, rate, t, t + 0.020);
        if w.len() < (rate / 50) as usize {
            break;
        }
        out.push((t, rms(w), tone_amplitude(w, rate, hz)));
        t += 0.010;
    }
    out
}

/// Smallest RMS of a 20 ms window that counts as the sent tone being there (half the
/// tone's: a missing or garbled packet shows as a weak window).
pub const TONE_RMS: f64 = TONE_AMPLITUDE / std::f64::consts::SQRT_2 / 2.0;

/// Slack at the edges of a region whose position comes from the sender's clock: the
/// recording starts a little before the 200 OK reaches the test, packets are placed on
/// whole packet boundaries, and the first packet after a gap re-anchors.
pub const EDGE_S: f64 = 0.060;

/// Over `[from, to)` seconds: every 20 ms window holds the tone (no hole), the whole region
/// is `hz` by zero crossings (±5 %) and by Goertzel (near the sent amplitude), and
/// `other_hz` is absent.
pub fn assert_tone(what: &str, s: &[i16], rate: u32, from: f64, to: f64, hz: f64, other_hz: f64) {
    assert!(
        to - from >= 0.1,
        "{what}: region {from:.3}..{to:.3} too short"
    );
    let region = window(s, rate, from, to);
    let expected = ((to - from) * f64::from(rate)) as usize;
    assert!(
        region.len() + 1 >= expected,
        "{what}: file ends before {to:.3} s ({} samples at {rate} Hz)",
        s.len()
    );
    let zc = zero_crossing_hz(region, rate);
    assert!(
        (zc - hz).abs() <= hz * 0.05,
        "{what}: {from:.3}..{to:.3} s is {zc:.1} Hz by zero crossings, expected {hz} Hz"
    );
    let a = tone_amplitude(region, rate, hz);
    let b = tone_amplitude(region, rate, other_hz);
    assert!(
        a >= TONE_AMPLITUDE * 0.6 && b <= a * 0.05,
        "{what}: {from:.3}..{to:.3} s amplitude at {hz} Hz {a:.0} (sent {TONE_AMPLITUDE}), at {other_hz} Hz {b:.0}"
    );
    let weakest = windows(s, rate, from, to, hz)
        .into_iter()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .expect("windows");
    assert!(
        weakest.1 >= TONE_RMS,
        "{what}: hole in the tone: 20 ms window at {:.3} s has RMS {:.0} (< {TONE_RMS:.0})",
        weakest.0,
        weakest.1
    );
}

impl Wav {
    /// `assert_tone` on this mono file's samples.
    pub fn assert_tone(&self, what: &str, from: f64, to: f64, hz: f64, other_hz: f64) {
        assert_tone(
            what,
            &self.samples,
            self.sample_rate,
            from,
            to,
            hz,
            other_hz,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Recorder process control beyond the harness: SIGKILL, restart on the same directories,
// extra configuration.

impl Recorder {
    /// SIGKILL (not SIGTERM): nothing in the recorder runs after it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL sip-recorder");
        let status = self.child.wait().expect("reap sip-recorder");
        self.exit = Some(status);
    }

    /// Runs a new process with the same flags, ports and directories (so it finds what
    /// the previous one left in the recordings dir) and waits until it answers OPTIONS.
    pub fn restart(&mut self) {
        assert!(self.exit.is_some(), "restart of a recorder that still runs");
        let log = fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .expect("open log file");
        let log2 = log.try_clone().expect("clone log file");
        self.child = super::recorder_command(
            self.dir.path(),
            self.sip_addr,
            (self.rtp_min, self.rtp_max),
            self.http_addr,
            &self.extra_args,
        )
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .expect("respawn sip-recorder");
        self.exit = None;
        if let Err(log) = self.wait_ready() {
            panic!("{log}");
        }
    }
}
