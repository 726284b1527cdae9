//! Per-stream packet accounting beside the timeline: what the SRC says it sent (RTCP SR),
//! loss bursts and gaps in the RFC 3611 §4.7.2 sense (what CMS CDRs carry as
//! `packetLossBursts` / `packetGap`), media gaps (wall-clock stretches without packets) and
//! whether the stream carried any sound. Sans-IO, fixed size, no allocation per packet.

use super::rtcp::{self, RtcpPacket};
use std::time::{Duration, Instant};

/// RFC 3611 §4.7.2 `Gmin`: a loss followed by fewer received packets than this before the
/// next loss belongs to a burst; an isolated loss belongs to a gap.
pub const GMIN: u64 = 16;

/// A stretch without any packet on a receiving stream at least this long is a media gap
/// (the default media timeout is far longer; DTX senders send at least every 400 ms).
pub const MEDIA_GAP: Duration = Duration::from_secs(1);

/// A 10 ms window whose level (see `Loudness`) exceeds this, about −60 dBFS, means the
/// stream carried sound.
pub const SILENCE_LEVEL: f64 = 32.0;

/// A sequence jump beyond this (60 s of 20 ms packets) is a restart, not a loss.
const MAX_LOSS_RUN: i64 = 3000;

/// Distinct senders whose SR counts are kept (an SSRC change adds one).
const MAX_SENDERS: usize = 8;

/// Packet interval assumed until one is measured.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(20);

/// Longest plausible packet interval (ptime); longer spacing is a sender gone quiet.
const MAX_INTERVAL: Duration = Duration::from_millis(200);

/// Mean duration and loss density of bursts or of gaps (CMS `<duration>` / `<density>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PeriodStats {
    /// How many periods there were.
    pub count: u64,
    /// Their mean duration, in seconds.
    pub duration_seconds: f64,
    /// Lost packets as a percentage of the packets expected in them.
    pub density_percent: f64,
}

/// Stretches of wall-clock time without packets while the stream was receiving.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct MediaGaps {
    pub count: u64,
    pub longest_ms: u64,
    pub total_ms: u64,
}

/// What [`StreamAccounting`] knows so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccountingReport {
    /// Sum over the stream's senders of their last SR packet count; `None` without SR.
    pub packets_sent: Option<u64>,
    pub octets_sent: Option<u64>,
    pub rtcp_packets: u64,
    /// RTCP datagrams that did not parse (or failed SRTCP authentication).
    pub rtcp_errors: u64,
    /// The SRC sent an RTCP BYE.
    pub rtcp_bye: bool,
    pub loss_bursts: PeriodStats,
    pub loss_gaps: PeriodStats,
    pub media_gaps: MediaGaps,
    /// Level of the loudest 10 ms window of the stream's audio (robust RMS estimate).
    pub peak_level: f64,
}

impl AccountingReport {
    /// No window of the stream's audio rose above [`SILENCE_LEVEL`].
    pub fn silent(&self) -> bool {
        self.peak_level < SILENCE_LEVEL
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sender {
    ssrc: u32,
    packets: u64,
    octets: u64,
}

/// RFC 3611 burst/gap state of one SSRC's sequence space, fed in arrival order.
#[derive(Debug, Clone, Copy, Default)]
struct LossModel {
    first: i64,
    highest: i64,
    received_run: u64,
    /// Every loss of the segment, in bursts or not.
    lost: u64,
    /// A single loss not yet known to be isolated.
    pending: Option<i64>,
    /// Open burst: (first loss, last loss, lost packets in it).
    burst: Option<(i64, i64, u64)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct LossTotals {
    bursts: u64,
    burst_packets: u64,
    burst_lost: u64,
    expected: u64,
    lost: u64,
    segments: u64,
}

/// The accounting of one stream.
#[derive(Debug)]
pub struct StreamAccounting {
    senders: [Sender; MAX_SENDERS],
    sender_count: usize,
    rtcp_packets: u64,
    rtcp_errors: u64,
    rtcp_bye: bool,
    ssrc: Option<u32>,
    model: LossModel,
    totals: LossTotals,
    /// Arrival time and sequence advance summed over consecutive packets: their ratio is
    /// the packet interval (a burst of reads after a scheduling delay averages out).
    interval_sum: Duration,
    interval_packets: u64,
    last_arrival: Option<Instant>,
    last_was_comfort_noise: bool,
    paused: bool,
    media_gaps: MediaGaps,
    loudness: Loudness,
}

impl StreamAccounting {
    pub fn new(sample_rate: u32) -> Self {
        StreamAccounting {
            senders: [Sender::default(); MAX_SENDERS],
            sender_count: 0,
            rtcp_packets: 0,
            rtcp_errors: 0,
            rtcp_bye: false,
            ssrc: None,
            model: LossModel::default(),
            totals: LossTotals::default(),
            interval_sum: Duration::ZERO,
            interval_packets: 0,
            last_arrival: None,
            last_was_comfort_noise: false,
            paused: false,
            media_gaps: MediaGaps::default(),
            loudness: Loudness::new(sample_rate),
        }
    }

    /// One RTP packet accepted at `now`. `comfort_noise`: a CN/SID packet, after which a
    /// sender legitimately goes quiet.
    pub fn on_rtp(&mut self, now: Instant, ssrc: u32, sequence: u16, comfort_noise: bool) {
        let idle = self
            .last_arrival
            .map(|last| now.saturating_duration_since(last));
        if let Some(idle) = idle
            && !self.last_was_comfort_noise
        {
            self.note_idle(idle);
        }
        self.last_arrival = Some(now);
        self.last_was_comfort_noise = comfort_noise;
        if self.ssrc != Some(ssrc) {
            self.close_segment();
            self.ssrc = Some(ssrc);
            self.start_segment(sequence);
            return;
        }
        let delta = i64::from(sequence.wrapping_sub(self.model.highest as u16) as i16);
        if delta <= 0 {
            return; // duplicate or reordered: already counted as lost, the model keeps it
        }
        if delta > MAX_LOSS_RUN {
            self.close_segment();
            self.start_segment(sequence);
            return;
        }
        if let Some(idle) = idle {
            self.measure_interval(idle, delta as u64);
        }
        self.lose(delta as u64 - 1);
        self.model.highest += delta;
        self.receive();
    }

    /// `idle` between two packets `advance` sequence numbers apart. A sender that went
    /// quiet without loss (VAD, hold) says nothing about its packet interval.
    fn measure_interval(&mut self, idle: Duration, advance: u64) {
        if idle < MAX_INTERVAL * advance as u32 {
            self.interval_sum += idle;
            self.interval_packets += advance;
        }
    }

    fn note_idle(&mut self, idle: Duration) {
        if !self.paused && idle >= MEDIA_GAP {
            let ms = idle.as_millis() as u64;
            self.media_gaps.count += 1;
            self.media_gaps.total_ms += ms;
            self.media_gaps.longest_ms = self.media_gaps.longest_ms.max(ms);
        }
    }

    fn start_segment(&mut self, sequence: u16) {
        let first = i64::from(sequence);
        self.model = LossModel {
            first,
            highest: first,
            received_run: 1,
            lost: 0,
            pending: None,
            burst: None,
        };
        self.totals.segments += 1;
    }

    /// `k` consecutive losses after the highest sequence number.
    fn lose(&mut self, k: u64) {
        if k == 0 {
            return;
        }
        let m = &mut self.model;
        m.lost += k;
        let from = m.highest + 1;
        let to = m.highest + k as i64;
        m.burst = match (m.burst, m.pending) {
            (Some((first, _, lost)), _) => Some((first, to, lost + k)),
            (None, Some(p)) => Some((p, to, 1 + k)),
            (None, None) if k >= 2 => Some((from, to, k)),
            (None, None) => {
                m.pending = Some(from);
                None
            }
        };
        if m.burst.is_some() {
            m.pending = None;
        }
        m.received_run = 0;
    }

    fn receive(&mut self) {
        let m = &mut self.model;
        m.received_run += 1;
        if m.received_run >= GMIN {
            if let Some((first, last, lost)) = m.burst.take() {
                self.totals.bursts += 1;
                self.totals.burst_packets += (last - first + 1) as u64;
                self.totals.burst_lost += lost;
            }
            m.pending = None;
        }
    }

    /// Adds the current segment's expected/lost counts (and an open burst) to the totals.
    fn close_segment(&mut self) {
        if self.ssrc.is_none() {
            return;
        }
        let (expected, lost, open) = self.segment_counts();
        self.totals.expected += expected;
        self.totals.lost += lost;
        if let Some((packets, lost)) = open {
            self.totals.bursts += 1;
            self.totals.burst_packets += packets;
            self.totals.burst_lost += lost;
        }
        self.model = LossModel::default();
    }

    /// (expected, lost, open burst (packets, lost)) of the current segment.
    fn segment_counts(&self) -> (u64, u64, Option<(u64, u64)>) {
        let m = &self.model;
        if self.ssrc.is_none() {
            return (0, 0, None);
        }
        let expected = (m.highest - m.first + 1) as u64;
        (
            expected,
            m.lost,
            m.burst.map(|(f, l, lost)| ((l - f + 1) as u64, lost)),
        )
    }

    /// A (compound, decrypted) RTCP datagram from the SRC.
    pub fn on_rtcp(&mut self, datagram: &[u8]) {
        for packet in rtcp::packets(datagram) {
            match packet {
                Ok(RtcpPacket::SenderReport { info, .. }) => {
                    self.sender_report(info.ssrc, info.packet_count, info.octet_count)
                }
                Ok(RtcpPacket::Goodbye { .. }) => self.rtcp_bye = true,
                Ok(_) => {}
                Err(_) => {
                    self.rtcp_errors += 1;
                    return;
                }
            }
        }
        self.rtcp_packets += 1;
    }

    /// An RTCP datagram that could not be used (SRTCP authentication failed).
    pub fn on_rtcp_error(&mut self) {
        self.rtcp_errors += 1;
    }

    fn sender_report(&mut self, ssrc: u32, packets: u32, octets: u32) {
        // Counts are 32-bit and wrap; extend them against the last value seen.
        let extend = |prev: u64, now: u32| {
            let delta = now.wrapping_sub(prev as u32);
            prev + u64::from(delta)
        };
        let senders = &mut self.senders[..self.sender_count];
        if let Some(s) = senders.iter_mut().find(|s| s.ssrc == ssrc) {
            s.packets = extend(s.packets, packets);
            s.octets = extend(s.octets, octets);
        } else if self.sender_count < MAX_SENDERS {
            self.senders[self.sender_count] = Sender {
                ssrc,
                packets: u64::from(packets),
                octets: u64::from(octets),
            };
            self.sender_count += 1;
        }
    }

    /// Decoded audio as it leaves the timeline (gap fill included: it is recognised and
    /// left out).
    pub fn on_pcm(&mut self, samples: &[i16]) {
        self.loudness.push_block(samples);
    }

    pub fn pause(&mut self) {
        self.paused = true;
        self.last_arrival = None;
    }

    pub fn resume(&mut self) {
        self.paused = false;
        self.last_arrival = None;
    }

    /// The stream ends at `now`: a receiving stream quiet since its last packet ends in a gap.
    pub fn finish(&mut self, now: Instant) {
        if let Some(last) = self.last_arrival.take()
            && !self.last_was_comfort_noise
        {
            self.note_idle(now.saturating_duration_since(last));
        }
    }

    pub fn report(&self) -> AccountingReport {
        let senders = &self.senders[..self.sender_count];
        let (expected, lost, open) = self.segment_counts();
        let mut t = self.totals;
        t.expected += expected;
        t.lost += lost;
        if let Some((packets, lost)) = open {
            t.bursts += 1;
            t.burst_packets += packets;
            t.burst_lost += lost;
        }
        let interval = if self.interval_packets == 0 {
            DEFAULT_INTERVAL.as_secs_f64()
        } else {
            self.interval_sum.as_secs_f64() / self.interval_packets as f64
        };
        let gap_packets = t.expected.saturating_sub(t.burst_packets);
        // Every segment is gap around its bursts; a burst still open ends the last one.
        let gaps = if gap_packets == 0 {
            0
        } else {
            (t.segments + t.bursts).saturating_sub(u64::from(open.is_some()))
        };
        let density = |lost: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                (lost as f64 * 10_000.0 / of as f64).round() / 100.0
            }
        };
        let mean = |packets: u64, n: u64| {
            if n == 0 {
                0.0
            } else {
                (packets as f64 * interval / n as f64 * 1000.0).round() / 1000.0
            }
        };
        AccountingReport {
            packets_sent: (!senders.is_empty()).then(|| senders.iter().map(|s| s.packets).sum()),
            octets_sent: (!senders.is_empty()).then(|| senders.iter().map(|s| s.octets).sum()),
            rtcp_packets: self.rtcp_packets,
            rtcp_errors: self.rtcp_errors,
            rtcp_bye: self.rtcp_bye,
            loss_bursts: PeriodStats {
                count: t.bursts,
                duration_seconds: mean(t.burst_packets, t.bursts),
                density_percent: density(t.burst_lost, t.burst_packets),
            },
            loss_gaps: PeriodStats {
                count: gaps,
                duration_seconds: mean(gap_packets, gaps),
                density_percent: density(t.lost.saturating_sub(t.burst_lost), gap_packets),
            },
            media_gaps: self.media_gaps,
            peak_level: (self.loudness.peak() * 10.0).round() / 10.0,
        }
    }
}

/// A run of this many exact zeros (2 ms at 8 kHz) is gap fill, not audio: the timeline
/// writes digital silence for gaps, pauses and before a late join.
const FILL_RUN: usize = 16;

/// Blocks of a stream proven sound of which one is measured (see `Loudness::push_block`).
const SETTLED_SAMPLE_EVERY: u32 = 8;

/// Longest level window: 10 ms at 48 kHz.
const MAX_WINDOW: usize = 480;

/// Loudest 10 ms window of a stream's own audio, by a robust level: 1.4826 × the median
/// absolute deviation from the window's median (the RMS for noise; about 1.05 × the
/// amplitude for a tone). A constant level, such as an all-zero-byte PCMU payload decodes
/// to, is no sound; neither is a short glitch against it. Windows never touch gap fill:
/// they restart where fill ends, and a finished window counts once `FILL_RUN` further
/// samples showed it did not run into fill.
#[derive(Debug)]
struct Loudness {
    window: usize,
    /// The current window, sized once when the stream opens.
    buf: Box<[i16]>,
    n: usize,
    zero_run: usize,
    in_fill: bool,
    /// A finished window's level, and samples seen since it finished.
    pending: Option<f64>,
    since_pending: usize,
    peak: f64,
    windows: u64,
    /// Blocks since the stream proved sound.
    settled_blocks: u32,
}

impl Loudness {
    fn new(sample_rate: u32) -> Self {
        // 10 ms: every 20 ms packet covers at least one whole window.
        let window = (sample_rate as usize / 100).clamp(FILL_RUN, MAX_WINDOW);
        Loudness {
            window,
            buf: vec![0; window].into_boxed_slice(),
            n: 0,
            zero_run: 0,
            in_fill: false,
            pending: None,
            since_pending: 0,
            peak: 0.0,
            windows: 0,
            settled_blocks: 0,
        }
    }

    /// One block of PCM (a worker tick's). Once the stream has proven sound its verdict
    /// is settled and only one block in [`SETTLED_SAMPLE_EVERY`] is measured, each from a
    /// fresh window: the peak stays a sample of the loud windows at an eighth of the cost.
    fn push_block(&mut self, samples: &[i16]) {
        if self.peak >= SILENCE_LEVEL {
            self.settled_blocks = self.settled_blocks.wrapping_add(1);
            if self.settled_blocks % SETTLED_SAMPLE_EVERY != 0 {
                return;
            }
            self.restart();
        }
        for &x in samples {
            self.push(x);
        }
    }

    /// Starts a new window, as after gap fill: a finished window not yet confirmed is
    /// dropped (what followed it was not seen).
    fn restart(&mut self) {
        self.n = 0;
        self.zero_run = 0;
        self.in_fill = false;
        self.pending = None;
        self.since_pending = 0;
    }

    fn push(&mut self, x: i16) {
        if self.pending.is_some() {
            self.since_pending += 1;
        }
        self.zero_run = if x == 0 { self.zero_run + 1 } else { 0 };
        if self.zero_run == FILL_RUN {
            self.in_fill = true;
            // The run began inside the finished window: that window ends in fill.
            if self.zero_run > self.since_pending {
                self.pending = None;
            }
            self.n = 0;
        }
        if self.since_pending >= FILL_RUN
            && let Some(level) = self.pending.take()
        {
            self.peak = self.peak.max(level);
        }
        if self.in_fill {
            if x == 0 {
                return;
            }
            self.in_fill = false;
        }
        self.buf[self.n] = x;
        self.n += 1;
        if self.n == self.window {
            if let Some(level) = self.pending.take() {
                self.peak = self.peak.max(level);
            }
            self.windows += 1;
            // Once the stream has proven sound the verdict is settled: the peak is then
            // sampled on every 8th window only (the median is most of this path's cost).
            if self.peak < SILENCE_LEVEL || self.windows % 8 == 0 {
                self.pending = Some(self.level());
                self.since_pending = 0;
            }
            self.n = 0;
        }
    }

    /// 1.4826 × median(|x − median(x)|) of the finished window, selected in place (the
    /// window is done with). Deviations beyond i16 are clipped: only a median deviation
    /// near full scale could notice.
    fn level(&mut self) -> f64 {
        let s = &mut self.buf[..self.n];
        let mid = s.len() / 2;
        let median = i32::from(*s.select_nth_unstable(mid).1);
        for d in s.iter_mut() {
            *d = (i32::from(*d) - median).abs().min(i32::from(i16::MAX)) as i16;
        }
        f64::from(*s.select_nth_unstable(mid).1) * 1.4826
    }

    fn peak(&self) -> f64 {
        self.peak.max(self.pending.unwrap_or(0.0))
    }
}

#[cfg(test)]
#[path = "accounting_tests.rs"]
mod tests;
