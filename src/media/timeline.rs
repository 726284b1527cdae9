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
//! plus at most one packet).
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
//! the previous SSRC are counted late. [`StreamTimeline::set_codec`] switches the payload type
//! and decoder on re-negotiation; the previous codec stays known so that packets already
//! buffered still decode, and a decoder whose rate differs from the output rate is converted
//! to it ([`RateConverter`]), so a file keeps one rate. Pauses: packets are ignored while
//! paused; with [`PausePolicy::Silence`] the paused interval is silence, with
//! [`PausePolicy::Skip`] the wall clock is stopped for it, so it is not in the output.
//! Telephone-event packets go to [`StreamTimeline::take_dtmf`] and comfort-noise packets only
//! count; both leave silence in the audio.
//!
//! # Resources
//!
//! The reorder buffer holds at most `max_reorder_packets` packets; payload buffers and decode
//! scratch space are recycled, so the steady state allocates nothing per packet, and nothing
//! grows with call length (the SSRC list and pending DTMF events are capped).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::codec::{Decoder, RateConverter, UnsupportedRatio};
use super::dtmf::{DtmfEvent, DtmfTracker};
use super::rtp::RtpPacket;
use super::sequence::{SeqState, SeqVerdict};

/// What a pause does to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
        TimelineConfig {
            sample_rate: decoder.sample_rate(),
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
}

/// Bound on recorded SSRCs, so a source that changes SSRC constantly cannot grow memory.
pub const MAX_SSRCS: usize = 32;

/// Window over which the drift tracker takes its minimum.
const DRIFT_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Codec {
    payload_type: u8,
    clock_rate: u32,
    decoder: Decoder,
    converter: RateConverter,
    /// Segment whose state the decoder holds; another segment's packet resets it.
    epoch: u32,
}

impl Codec {
    fn new(payload_type: u8, decoder: Decoder, sample_rate: u32) -> Result<Self, UnsupportedRatio> {
        Ok(Codec {
            payload_type,
            clock_rate: decoder.clock_rate().max(1),
            converter: RateConverter::new(decoder.sample_rate(), sample_rate)?,
            decoder,
            epoch: 0,
        })
    }

    fn output_len(&self, payload_len: usize) -> usize {
        self.converter
            .output_len(self.decoder.samples_for(payload_len))
    }
}

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
}

/// One stream's reorder buffer, decoder and wall-clock placement. See the module docs.
#[derive(Debug)]
pub struct StreamTimeline {
    cfg: TimelineConfig,
    start: Instant,
    codec: Codec,
    prev_codec: Option<Codec>,

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
    /// `payload_type` with `decoder`.
    pub fn new(
        config: TimelineConfig,
        payload_type: u8,
        decoder: Decoder,
        start: Instant,
    ) -> Result<Self, UnsupportedRatio> {
        let mut cfg = config;
        cfg.sample_rate = cfg.sample_rate.max(1);
        cfg.max_reorder_packets = cfg.max_reorder_packets.max(1);
        let codec = Codec::new(payload_type, decoder, cfg.sample_rate)?;
        let dtmf_rate = cfg.dtmf.map_or(8000, |(_, rate)| rate);
        Ok(StreamTimeline {
            start,
            codec,
            prev_codec: None,
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
            buf: VecDeque::with_capacity(cfg.max_reorder_packets),
            pool: Vec::with_capacity(cfg.max_reorder_packets + 1),
            cursor: 0,
            scratch: Vec::new(),
            converted: Vec::new(),
            paused_at: None,
            skipped: Duration::ZERO,
            stats: StreamStats::default(),
            jitter: 0.0,
            last_transit: None,
            dtmf: DtmfTracker::new(dtmf_rate),
            cfg,
        })
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
        let is_audio = pt == self.codec.payload_type
            || self
                .prev_codec
                .as_ref()
                .is_some_and(|c| c.payload_type == pt);
        let is_dtmf = self.cfg.dtmf.is_some_and(|(p, _)| p == pt);
        let is_cn = self.cfg.comfort_noise == Some(pt);
        if !(is_audio || is_dtmf || is_cn) {
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
        let clock = if packet.payload_type == self.codec.payload_type {
            self.codec.clock_rate
        } else {
            self.prev_codec.as_ref().map_or(8000, |c| c.clock_rate)
        };
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
        let codec = if packet.payload_type == self.codec.payload_type {
            &self.codec
        } else {
            match &self.prev_codec {
                Some(c) => c,
                None => return,
            }
        };
        let len = codec.output_len(packet.payload.len()) as i64;
        let clock = i64::from(codec.clock_rate);
        let rate = i64::from(self.cfg.sample_rate);
        let arrival = self.wall_position(now);

        let mut pos = match self.anchor {
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
            });
            self.last_end = Some(pos + len);
        }

        if pos + len <= self.cursor {
            self.stats.packets_late += 1;
            return;
        }
        let key = (self.epoch, ext);
        let at = match self.buf.binary_search_by_key(&key, |s| s.key) {
            Ok(_) => {
                self.stats.packets_duplicate += 1;
                return;
            }
            Err(at) => at,
        };
        let mut payload = self.pool.pop().unwrap_or_default();
        payload.clear();
        payload.extend_from_slice(packet.payload);
        self.buf.insert(
            at,
            Slot {
                key,
                pos,
                payload_type: packet.payload_type,
                payload,
            },
        );
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
        if horizon > self.cursor {
            self.silence(horizon - self.cursor, out);
        }
    }

    fn silence(&mut self, n: i64, out: &mut Vec<i16>) {
        let n = usize::try_from(n).unwrap_or(0);
        out.resize(out.len() + n, 0);
        self.cursor += n as i64;
    }

    fn emit(&mut self, slot: &Slot, out: &mut Vec<i16>) {
        if slot.pos > self.cursor {
            self.silence(slot.pos - self.cursor, out);
        }
        let epoch = slot.key.0;
        let codec = if slot.payload_type == self.codec.payload_type {
            &mut self.codec
        } else {
            match self.prev_codec.as_mut() {
                Some(c) => c,
                None => return,
            }
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

    /// Switches to `decoder` for payload type `payload_type` after a re-negotiation.
    ///
    /// The same payload type with the same codec is a no-op (a session refresh). Otherwise
    /// the current codec is kept as the previous one so that packets already buffered or
    /// still in flight decode correctly, and a clock-rate change re-anchors the timeline at
    /// the next packet. The output rate never changes: a decoder at another rate is converted
    /// to it, which fails for rates that are not integer multiples.
    pub fn set_codec(
        &mut self,
        payload_type: u8,
        decoder: Decoder,
    ) -> Result<(), UnsupportedRatio> {
        if payload_type == self.codec.payload_type && decoder.name() == self.codec.decoder.name() {
            return Ok(());
        }
        let codec = Codec::new(payload_type, decoder, self.cfg.sample_rate)?;
        if codec.clock_rate != self.codec.clock_rate {
            self.resegment = true;
        }
        let old = std::mem::replace(&mut self.codec, codec);
        if old.payload_type != payload_type {
            self.prev_codec = Some(old);
        }
        Ok(())
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

    /// DTMF digits completed since the last call.
    pub fn take_dtmf(&mut self) -> Vec<DtmfEvent> {
        self.dtmf.take()
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
