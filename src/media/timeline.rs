//! One audio stream's packets → 16-bit PCM on the recording's wall-clock timeline.
//!
//! # Model
//!
//! Output is a sequence of samples at the stream's output rate (`sample_rate`), where sample
//! `n` belongs to wall-clock instant `start + n / sample_rate` (with `Skip` pauses removed).
//! Every audio packet gets a *position* on that axis, and [`StreamTimeline::poll`] emits
//! everything up to the *horizon* `wall_position(now) − reorder_window`: packets whose
//! position the horizon has passed are decoded in order, and whatever lies between them —
//! loss, DTX, comfort noise, telephone events, pauses, a late start — is silence. The output
//! length therefore follows the wall clock whatever the packets do: after `poll(now)` it is
//! `wall_position(now) − reorder_window` plus at most the overhang of one packet, and
//! [`StreamTimeline::finish`] emits what is left and pads to `wall_position(now)` (again
//! plus at most one packet). The one exception: behind a codec that conceals loss (G.729,
//! Opus) a gap after a lost packet is held open until the packet after it is played, so the
//! output may trail the horizon by up to [`MAX_HELD`] more.
//!
//! # Anchoring and drift
//!
//! A packet's position comes from its RTP timestamp relative to an *anchor* (an RTP timestamp
//! and the position it maps to). The first packet of a segment (first packet, SSRC change,
//! sequence restart, resume, clock-rate change) is anchored at its arrival position, or at
//! the end of the previous packet when that is within one packet interval (so a transfer
//! that keeps the media flowing stays seamless). Each in-order packet moves the anchor to
//! itself, so 32-bit timestamp differences stay small and wrap-around is seamless.
//!
//! For each in-order packet the tracker computes `d = arrival position − position`. Network
//! jitter only makes `d` larger, so the smallest `d` over one second measures the offset
//! between the sender's RTP clock and the wall clock. When that minimum leaves
//! ±2 packet intervals the anchor is shifted by it: a slow sender's packets move later (the
//! gap is silence), a fast sender's move earlier (the overlap is dropped). A single in-order
//! packet that would be late (`d` > reorder window) or implausibly early (timestamp jump
//! without a matching wall-clock gap) re-anchors at once.
//!
//! # Sources, codecs, pauses
//!
//! An SSRC change continues the stream: a new segment, new sequence space, the decoder reset
//! when the first packet of the new segment is played, the SSRC recorded. Stray packets of
//! the previous SSRC are counted late.
//!
//! Each packet is decoded by its own payload type ([`PayloadDecoders`]: every negotiated
//! type plus the RFC 3551 static ones), so a sender may switch codec at any packet;
//! [`StreamTimeline::set_codec`] adds or remaps a type on re-negotiation while earlier types
//! stay known for packets still in flight. A decoder whose rate differs from the output rate
//! is converted to it, so a file keeps one rate; a packet on another RTP clock (Opus' 48 kHz
//! after G.711's 8 kHz) re-anchors the timeline. A packet of a type nothing decodes is
//! counted per type ([`StreamStats::packets_undecodable`]) and its slot stays silent. A lost
//! packet of a codec with concealment (G.729; Opus, from the next packet's in-band FEC when
//! it has one) is concealed rather than left silent.
//!
//! Pauses: packets are ignored while
//! paused; with [`PausePolicy::Silence`] the paused interval is silence, with
//! [`PausePolicy::Skip`] the wall clock is stopped for it, so it is not in the output.
//! Telephone-event packets go to [`StreamTimeline::take_dtmf`] and comfort-noise packets only
//! count; both leave silence in the audio.
//!
//! # Resources
//!
//! The reorder buffer holds at most `max_reorder_packets` packets; payload buffers and decode
//! scratch space are recycled, so the steady state allocates nothing per packet, and nothing
//! grows with call length (the SSRC list and pending DTMF events are capped). The buffer and
//! its payload pool grow to what the stream needs rather than being sized for the bound up
//! front: packets in order hold a few slots, and 64 reserved slots were ~5 KiB per stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::codec::{Decoder, UnsupportedRatio};
use super::decode::{COMFORT_NOISE, PayloadDecoders};
use super::dtmf::{DtmfEvent, DtmfTracker};
use super::rtp::RtpPacket;
use super::sequence::{SeqState, SeqVerdict};

/// What a pause does to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PausePolicy {
    /// The paused interval is silence: the timeline keeps wall-clock time.
    #[default]
    Silence,
    /// The paused interval is left out of the output.
    Skip,
}

/// Static payload type of comfort noise (RFC 3389) at 8 kHz.
pub const COMFORT_NOISE_PT: u8 = 13;

/// Settings of one stream's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineConfig {
    /// Output rate; the decoder's output is converted to it when they differ.
    pub sample_rate: u32,
    /// Expected packet interval (SDP `ptime`); sets the drift bound and the seam tolerance.
    pub ptime_hint: Duration,
    /// How long a packet is waited for before its slot is played as silence.
    pub reorder_window: Duration,
    /// Bound on buffered packets; past it the oldest is dropped and counted late.
    pub max_reorder_packets: usize,
    pub pause_policy: PausePolicy,
    /// Payload type and RTP clock rate of `telephone-event`, when negotiated.
    pub dtmf: Option<(u8, u32)>,
    /// Payload type carrying comfort noise (RFC 3389); its packets only count.
    pub comfort_noise: Option<u8>,
}

impl TimelineConfig {
    /// Defaults for a stream decoded by `decoder`: output at the decoder's rate, 20 ms
    /// packets, a 60 ms reorder window, static comfort noise, no DTMF.
    pub fn for_decoder(decoder: &Decoder) -> Self {
        Self::for_rate(decoder.sample_rate())
    }

    /// The same defaults with output at `sample_rate`.
    pub fn for_rate(sample_rate: u32) -> Self {
        TimelineConfig {
            sample_rate,
            ptime_hint: Duration::from_millis(20),
            reorder_window: Duration::from_millis(60),
            max_reorder_packets: 64,
            pause_policy: PausePolicy::Silence,
            dtmf: None,
            comfort_noise: Some(COMFORT_NOISE_PT),
        }
    }
}

/// Per-stream counters (SPEC §5 `streams[]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Every RTP packet handed to [`StreamTimeline::push`].
    pub packets_received: u64,
    /// Expected by sequence number but never received.
    pub packets_lost: u64,
    pub packets_duplicate: u64,
    /// Received after their place in the output was already played (or pushed out).
    pub packets_late: u64,
    /// RFC 3550 interarrival jitter of the audio packets, in milliseconds.
    pub jitter_ms: f64,
    /// Sources seen, in order (at most [`MAX_SSRCS`]).
    pub ssrcs: Vec<u32>,
    /// Packets of a payload type no decoder takes, by payload type (ascending): their slots
    /// are silence in the file, and the recording says so.
    pub packets_undecodable: Vec<(u8, u64)>,
    /// Audio packets received, by payload type and the codec that decodes it: what the
    /// sender actually sent, which need not be the first codec of the answer.
    pub audio_by_payload_type: Vec<(u8, &'static str, u64)>,
}

impl StreamStats {
    /// All undecodable packets.
    pub fn undecodable_total(&self) -> u64 {
        self.packets_undecodable.iter().map(|(_, n)| n).sum()
    }

    /// The codec and payload type most of the audio came in, if any came.
    pub fn dominant_codec(&self) -> Option<(u8, &'static str)> {
        self.audio_by_payload_type
            .iter()
            .max_by_key(|(_, _, n)| *n)
            .map(|(pt, name, _)| (*pt, *name))
    }

    fn count_audio(&mut self, pt: u8, name: &'static str) {
        match self
            .audio_by_payload_type
            .iter_mut()
            .find(|(p, n, _)| *p == pt && *n == name)
        {
            Some(entry) => entry.2 += 1,
            None => self.audio_by_payload_type.push((pt, name, 1)),
        }
    }

    fn count_undecodable(&mut self, pt: u8) {
        match self
            .packets_undecodable
            .binary_search_by_key(&pt, |(p, _)| *p)
        {
            Ok(i) => self.packets_undecodable[i].1 += 1,
            Err(i) => self.packets_undecodable.insert(i, (pt, 1)),
        }
    }
}

/// Bound on recorded SSRCs, so a source that changes SSRC constantly cannot grow memory.
pub const MAX_SSRCS: usize = 32;

/// Window over which the drift tracker takes its minimum.
const DRIFT_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Slot {
    /// Playout order: segment, then extended sequence number.
    key: (u32, i64),
    pos: i64,
    payload_type: u8,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    timestamp: u32,
    pos: i64,
    /// RTP clock the timestamp counts in.
    clock: u32,
}

/// Longest loss a decoder conceals; beyond it the gap is silence (PLC would only ring).
pub const MAX_CONCEALED: Duration = Duration::from_millis(120);

/// How far behind the horizon the output may stay while a gap waits for concealment: with
/// the 100 ms hand-over, the 60 ms reorder window and the 800 ms flush, a file on disk then
/// still trails the call by less than 1 s (SPEC §5).
pub const MAX_HELD: Duration = Duration::from_millis(30);

/// One stream's reorder buffer, decoder and wall-clock placement. See the module docs.
#[derive(Debug)]
pub struct StreamTimeline {
    cfg: TimelineConfig,
    start: Instant,
    decoders: PayloadDecoders,
    /// Payload type, segment and sequence of the last packet played (for concealment).
    last_played: Option<(u8, u32, i64)>,

    ssrc: Option<u32>,
    prev_ssrc: Option<u32>,
    seq: SeqState,
    epoch: u32,
    /// The next packet starts a new segment (resume, clock-rate change).
    resegment: bool,
    lost_before: u64,

    anchor: Option<Anchor>,
    /// End position of the newest placed packet.
    last_end: Option<i64>,
    drift_start: i64,
    drift_min: i64,

    buf: VecDeque<Slot>,
    pool: Vec<Vec<u8>>,
    /// Samples emitted so far (the output position).
    cursor: i64,
    scratch: Vec<i16>,
    converted: Vec<i16>,
    concealed: Vec<i16>,

    paused_at: Option<Instant>,
    skipped: Duration,

    stats: StreamStats,
    jitter: f64,
    last_transit: Option<u32>,
    dtmf: DtmfTracker,
}

fn samples(d: Duration, rate: u32) -> i64 {
    // Saturates after ~36 million years at 8 kHz.
    i64::try_from(d.as_nanos() * u128::from(rate) / 1_000_000_000).unwrap_or(i64::MAX)
}

impl StreamTimeline {
    /// A timeline whose sample 0 is `start` (the recording's start), decoding payload type
    /// `payload_type` with `decoder` (and the static payload types).
    pub fn new(
        config: TimelineConfig,
        payload_type: u8,
        decoder: Decoder,
        start: Instant,
    ) -> Result<Self, UnsupportedRatio> {
        let mut decoders = PayloadDecoders::new(config.sample_rate.max(1));
        decoders.insert(payload_type, decoder)?;
        Ok(Self::with_decoders(config, decoders, start))
    }

    /// A timeline decoding with `decoders`, whose rate is the output rate (it overrides
    /// `config.sample_rate`).
    pub fn with_decoders(
        config: TimelineConfig,
        decoders: PayloadDecoders,
        start: Instant,
    ) -> Self {
        let mut cfg = config;
        cfg.sample_rate = decoders.rate();
        cfg.max_reorder_packets = cfg.max_reorder_packets.max(1);
        let dtmf_rate = cfg.dtmf.map_or(8000, |(_, rate)| rate);
        StreamTimeline {
            start,
            decoders,
            last_played: None,
            ssrc: None,
            prev_ssrc: None,
            seq: SeqState::new(0),
            epoch: 0,
            resegment: false,
            lost_before: 0,
            anchor: None,
            last_end: None,
            drift_start: 0,
            drift_min: i64::MAX,
            buf: VecDeque::new(),
            pool: Vec::new(),
            cursor: 0,
            scratch: Vec::new(),
            converted: Vec::new(),
            concealed: Vec::new(),
            paused_at: None,
            skipped: Duration::ZERO,
            stats: StreamStats::default(),
            jitter: 0.0,
            last_transit: None,
            dtmf: DtmfTracker::new(dtmf_rate),
            cfg,
        }
    }

    /// The output sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.cfg.sample_rate
    }

    /// Samples emitted so far.
    pub fn position(&self) -> u64 {
        u64::try_from(self.cursor).unwrap_or(0)
    }

    /// Packets waiting in the reorder buffer.
    pub fn buffered_packets(&self) -> usize {
        self.buf.len()
    }

    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    fn rate_samples(&self, d: Duration) -> i64 {
        samples(d, self.cfg.sample_rate)
    }

    /// Output position of wall-clock `now` (paused time removed under `Skip`).
    fn wall_position(&self, now: Instant) -> i64 {
        let mut elapsed = now.saturating_duration_since(self.start);
        elapsed = elapsed.saturating_sub(self.skipped);
        if let (Some(at), PausePolicy::Skip) = (self.paused_at, self.cfg.pause_policy) {
            elapsed = elapsed.saturating_sub(now.saturating_duration_since(at));
        }
        self.rate_samples(elapsed)
    }

    fn window(&self) -> i64 {
        self.rate_samples(self.cfg.reorder_window)
    }

    fn ptime(&self) -> i64 {
        self.rate_samples(self.cfg.ptime_hint).max(1)
    }

    /// Takes one received RTP packet.
    pub fn push(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        self.stats.packets_received += 1;
        if self.paused_at.is_some() {
            return; // the sender should be silent; its audio is not part of the recording
        }
        let pt = packet.payload_type;
        let is_dtmf = self.cfg.dtmf.is_some_and(|(p, _)| p == pt);
        let is_cn = !is_dtmf && (self.cfg.comfort_noise == Some(pt) || COMFORT_NOISE.contains(&pt));
        let codec = (!is_dtmf && !is_cn)
            .then(|| self.decoders.get(pt).map(|d| d.decoder.name()))
            .flatten();
        let is_audio = codec.is_some();
        if let Some(name) = codec {
            self.stats.count_audio(pt, name);
        }
        if !(is_audio || is_dtmf || is_cn) {
            self.stats.count_undecodable(pt);
            // Still part of the source's numbering (so not counted lost), but another
            // source's stray packets must not move this stream to a new segment.
            if self.ssrc == Some(packet.ssrc) && !self.resegment {
                let _ = self.seq.classify(packet.sequence);
            }
            return;
        }

        let (ext, newest) = match self.ssrc {
            Some(s) if s == packet.ssrc && !self.resegment => {
                match self.seq.classify(packet.sequence) {
                    SeqVerdict::Fresh { ext, newest } => (ext, newest),
                    SeqVerdict::Duplicate => {
                        self.stats.packets_duplicate += 1;
                        return;
                    }
                    SeqVerdict::JumpPending => {
                        self.stats.packets_late += 1;
                        return;
                    }
                    SeqVerdict::Restart => self.start_segment(packet),
                }
            }
            Some(_) if self.prev_ssrc == Some(packet.ssrc) && !self.resegment => {
                // A straggler from before a source change: its segment is closed.
                self.stats.packets_late += 1;
                return;
            }
            _ => self.start_segment(packet),
        };

        if is_dtmf {
            let at = now.saturating_duration_since(self.start).as_secs_f64();
            self.dtmf.push(packet.timestamp, packet.payload, at);
        } else if is_audio {
            self.update_jitter(now, packet);
            self.place(now, packet, ext, newest);
        }
    }

    /// Begins a segment with `packet`: a new source, a restart of its numbering, a resume.
    fn start_segment(&mut self, packet: &RtpPacket<'_>) -> (i64, bool) {
        if self.ssrc.is_some() {
            self.lost_before += self.seq.lost();
        }
        if self.ssrc != Some(packet.ssrc) {
            self.prev_ssrc = self.ssrc;
            self.ssrc = Some(packet.ssrc);
            if !self.stats.ssrcs.contains(&packet.ssrc) && self.stats.ssrcs.len() < MAX_SSRCS {
                self.stats.ssrcs.push(packet.ssrc);
            }
        }
        self.seq = SeqState::new(packet.sequence);
        self.epoch = self.epoch.wrapping_add(1);
        self.resegment = false;
        self.anchor = None;
        self.last_transit = None;
        self.dtmf.close();
        (self.seq.first(), true)
    }

    fn update_jitter(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        // RFC 3550 §6.4.1 / A.8, in RTP clock units; wrapping arithmetic keeps it exact
        // across timestamp wrap.
        let clock = self
            .decoders
            .get(packet.payload_type)
            .map_or(8000, |d| d.clock_rate);
        let arrival = samples(now.saturating_duration_since(self.start), clock) as u32;
        let transit = arrival.wrapping_sub(packet.timestamp);
        if let Some(last) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
            self.stats.jitter_ms = self.jitter * 1000.0 / f64::from(clock);
        }
        self.last_transit = Some(transit);
    }

    /// Computes an audio packet's position and queues it.
    fn place(&mut self, now: Instant, packet: &RtpPacket<'_>, ext: i64, newest: bool) {
        let Some(codec) = self.decoders.get(packet.payload_type) else {
            return;
        };
        let len = codec.output_len(packet.payload) as i64;
        let clock_rate = codec.clock_rate;
        let clock = i64::from(clock_rate);
        let rate = i64::from(self.cfg.sample_rate);
        let arrival = self.wall_position(now);

        // A payload type on another RTP clock counts its timestamps differently: re-anchor.
        let mut pos = match self.anchor.filter(|a| a.clock == clock_rate) {
            Some(a) => {
                let ticks = i64::from(packet.timestamp.wrapping_sub(a.timestamp) as i32);
                a.pos + (ticks * rate).div_euclid(clock)
            }
            None => {
                let p = self.seam(arrival);
                self.restart_drift(arrival);
                p
            }
        };

        if newest {
            let d = arrival - pos;
            let window = self.window();
            let bound = 2 * self.ptime();
            if d > window || d < -(window + bound) {
                // Late in order, or a timestamp jump the wall clock does not show.
                pos = self.seam(arrival);
                self.restart_drift(arrival);
            } else {
                self.drift_min = self.drift_min.min(d);
                if arrival - self.drift_start >= self.rate_samples(DRIFT_PERIOD) {
                    if self.drift_min.abs() > bound {
                        pos += self.drift_min;
                    }
                    self.restart_drift(arrival);
                }
            }
            self.anchor = Some(Anchor {
                timestamp: packet.timestamp,
                pos,
                clock: clock_rate,
            });
            self.last_end = Some(pos + len);
        }

        if pos + len <= self.cursor {
            self.stats.packets_late += 1;
            return;
        }
        let key = (self.epoch, ext);
        // In order (the common case): after the newest buffered packet, no search.
        let in_order = self.buf.back().is_none_or(|s| s.key < key);
        let found = if in_order {
            Err(self.buf.len())
        } else {
            self.buf.binary_search_by_key(&key, |s| s.key)
        };
        let at = match found {
            Ok(_) => {
                self.stats.packets_duplicate += 1;
                return;
            }
            Err(at) => at,
        };
        let mut payload = self.pool.pop().unwrap_or_default();
        payload.clear();
        payload.extend_from_slice(packet.payload);
        let slot = Slot {
            key,
            pos,
            payload_type: packet.payload_type,
            payload,
        };
        if at == self.buf.len() {
            self.buf.push_back(slot);
        } else {
            self.buf.insert(at, slot);
        }
        if self.buf.len() > self.cfg.max_reorder_packets {
            // Nobody polled for a while, or a burst: keep the newest audio.
            if let Some(old) = self.buf.pop_front() {
                self.stats.packets_late += 1;
                self.pool.push(old.payload);
            }
        }
    }

    /// Where a new segment starts: seamlessly after the previous packet when the arrival is
    /// within one packet interval of it, else at the arrival.
    fn seam(&self, arrival: i64) -> i64 {
        match self.last_end {
            Some(end) if (arrival - end).abs() <= self.ptime() => end,
            _ => arrival,
        }
    }

    fn restart_drift(&mut self, arrival: i64) {
        self.drift_start = arrival;
        self.drift_min = i64::MAX;
    }

    /// Appends the samples that are final at `now` (older than the reorder window).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<i16>) {
        let horizon = self.wall_position(now) - self.window();
        self.drain(horizon, out);
    }

    /// Flushes every buffered packet placed before `now` and pads with silence to `now`.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<i16>) {
        self.dtmf.close();
        let end = self.wall_position(now);
        // Every buffered packet arrived before `now`; its RTP timestamp may still place it a
        // little after `end` (its anchor is the first packet's arrival, jitter included).
        // Such a packet belongs to the recording, but the file may not run more than one
        // packet past the wall clock: what would is cut.
        // One packet interval, but never more than 20 ms: the hint comes from the SDP and may
        // be far larger than the packets actually sent.
        let limit = end
            + self
                .ptime()
                .min(self.rate_samples(Duration::from_millis(20)).max(1));
        while self.buf.front().is_some_and(|s| s.pos < limit) {
            if let Some(slot) = self.buf.pop_front() {
                self.emit(&slot, out);
                self.pool.push(slot.payload);
            }
        }
        if self.cursor > limit {
            let excess = usize::try_from(self.cursor - limit)
                .unwrap_or(0)
                .min(out.len());
            out.truncate(out.len() - excess);
            self.cursor -= excess as i64;
        }
        if end > self.cursor {
            self.silence(end - self.cursor, out);
        }
        // What is left lies further out (a fast sender's clock): not part of the recording.
        while let Some(slot) = self.buf.pop_front() {
            self.pool.push(slot.payload);
        }
    }

    fn drain(&mut self, horizon: i64, out: &mut Vec<i16>) {
        while self.buf.front().is_some_and(|s| s.pos < horizon) {
            if let Some(slot) = self.buf.pop_front() {
                self.emit(&slot, out);
                self.pool.push(slot.payload);
            }
        }
        if horizon > self.cursor && !self.concealment_pending(horizon) {
            self.silence(horizon - self.cursor, out);
        }
    }

    /// Whether the gap after the cursor is held open rather than filled with silence: the
    /// packets before the next buffered one were lost and its codec conceals loss, so that
    /// packet fills the gap with concealment (or the lost packet's FEC copy) when played.
    /// With nothing buffered right after a concealing codec's packet the gap is held too: the
    /// next packet may still sit in the socket (a receive task that ran late), and whether
    /// the gap is loss or DTX is known only when it comes. Never more than [`MAX_HELD`]
    /// behind `horizon` (what the horizon passes then is silence; a longer loss is
    /// concealed only in the part still open when its next packet plays).
    fn concealment_pending(&mut self, horizon: i64) -> bool {
        if horizon - self.cursor > self.rate_samples(MAX_HELD) {
            return false;
        }
        let pt = match self.buf.front() {
            Some(front) => {
                let (pt, key, pos) = (front.payload_type, front.key, front.pos);
                if pos <= self.cursor || self.lost_before_slot(pt, key) == 0 {
                    return false;
                }
                pt
            }
            None => match self.last_played {
                // Only right after the packet played last: a DTX pause is held once.
                Some((pt, _, _)) if self.last_end == Some(self.cursor) => pt,
                _ => return false,
            },
        };
        self.decoders
            .get(pt)
            .is_some_and(|d| d.decoder.conceals_loss())
    }

    /// Packets missing between the last one played and a slot of `payload_type` at `key`
    /// (0 across a segment or payload-type change: that is not loss of this codec's audio).
    fn lost_before_slot(&self, payload_type: u8, (epoch, ext): (u32, i64)) -> i64 {
        match self.last_played {
            Some((pt, e, last)) if pt == payload_type && e == epoch => (ext - last - 1).max(0),
            _ => 0,
        }
    }

    fn silence(&mut self, n: i64, out: &mut Vec<i16>) {
        let n = usize::try_from(n).unwrap_or(0);
        out.resize(out.len() + n, 0);
        self.cursor += n as i64;
    }

    fn emit(&mut self, slot: &Slot, out: &mut Vec<i16>) {
        let (epoch, ext) = slot.key;
        let lost = self.lost_before_slot(slot.payload_type, slot.key);
        self.last_played = Some((slot.payload_type, epoch, ext));
        if lost > 0 && slot.pos > self.cursor {
            self.conceal(slot, lost, out);
        }
        if slot.pos > self.cursor {
            self.silence(slot.pos - self.cursor, out);
        }
        let Some(codec) = self.decoders.get(slot.payload_type) else {
            return;
        };
        if codec.epoch != epoch {
            codec.decoder.reset();
            codec.converter.reset();
            codec.epoch = epoch;
        }
        self.scratch.clear();
        codec.decoder.decode(&slot.payload, &mut self.scratch);
        let pcm = if codec.converter.is_identity() {
            &self.scratch
        } else {
            self.converted.clear();
            codec.converter.process(&self.scratch, &mut self.converted);
            &self.converted
        };
        // Overlap with what is already out is dropped: that is how a drift correction or a
        // re-anchor removes samples (not a late packet, so not counted as one).
        let skip = usize::try_from(self.cursor - slot.pos).unwrap_or(0);
        if let Some(rest) = pcm.get(skip..).filter(|r| !r.is_empty()) {
            out.extend_from_slice(rest);
            self.cursor = slot.pos + pcm.len() as i64;
        }
    }

    /// Fills the gap before `slot`, left by `lost` missing packets (their sequence numbers
    /// are missing, so it is loss, not DTX), with the codec's concealment when it has one.
    /// One lost packet comes back from `slot`'s in-band FEC where the codec carries it.
    fn conceal(&mut self, slot: &Slot, lost: i64, out: &mut Vec<i16>) {
        let gap = slot.pos - self.cursor;
        let rate = i64::from(self.cfg.sample_rate);
        if gap > self.rate_samples(MAX_CONCEALED) {
            return;
        }
        let Some(codec) = self.decoders.get(slot.payload_type) else {
            return;
        };
        if !codec.decoder.conceals_loss() {
            return;
        }
        let need =
            usize::try_from(gap * i64::from(codec.decoder.sample_rate()) / rate).unwrap_or(0);
        let next = (lost == 1).then_some(&slot.payload[..]);
        self.scratch.clear();
        codec.decoder.conceal(need, next, &mut self.scratch);
        self.concealed.clear();
        codec.converter.process(&self.scratch, &mut self.concealed);
        let n = self.concealed.len().min(usize::try_from(gap).unwrap_or(0));
        out.extend_from_slice(&self.concealed[..n]);
        self.cursor += n as i64;
    }

    /// Stops taking audio at `now` (SDP `inactive`).
    pub fn pause(&mut self, now: Instant) {
        if self.paused_at.is_none() {
            self.paused_at = Some(now);
            self.dtmf.close();
        }
    }

    /// Takes audio again at `now`; the next packet starts a new segment.
    pub fn resume(&mut self, now: Instant) {
        if let Some(at) = self.paused_at.take() {
            if self.cfg.pause_policy == PausePolicy::Skip {
                self.skipped += now.saturating_duration_since(at);
            }
            self.resegment = true;
        }
    }

    /// Maps payload type `payload_type` to `decoder` after a re-negotiation.
    ///
    /// The same payload type with the same codec is a no-op (a session refresh). Other
    /// payload types stay mapped, so packets already buffered or still in flight decode
    /// correctly; a packet on another RTP clock re-anchors the timeline. The output rate never
    /// changes: a decoder at another rate is converted to it, which fails for rates that are
    /// not integer multiples.
    pub fn set_codec(
        &mut self,
        payload_type: u8,
        decoder: Decoder,
    ) -> Result<(), UnsupportedRatio> {
        self.decoders.insert(payload_type, decoder)
    }

    /// Maps every `(payload type, encoding name)` of a (re-)negotiation; returns the ones
    /// refused (no decoder, or a rate that does not convert), for the caller's warning.
    pub fn set_codecs<'a>(
        &mut self,
        codecs: impl IntoIterator<Item = (u8, &'a str)>,
    ) -> Vec<String> {
        self.decoders.insert_all(codecs)
    }

    /// The counters so far.
    pub fn stats(&self) -> StreamStats {
        let mut stats = self.stats.clone();
        stats.packets_lost = self.lost_before
            + if self.ssrc.is_some() {
                self.seq.lost()
            } else {
                0
            };
        stats
    }

    /// The first payload type (lowest) no decoder took, and its packet count, if any.
    pub fn first_undecodable(&self) -> Option<(u8, u64)> {
        self.stats.packets_undecodable.first().copied()
    }

    /// DTMF digits completed since the last call.
    pub fn take_dtmf(&mut self) -> Vec<DtmfEvent> {
        self.dtmf.take()
    }

    /// Finished DTMF events wait for [`StreamTimeline::take_dtmf`].
    pub fn has_dtmf(&self) -> bool {
        self.dtmf.has_done()
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
