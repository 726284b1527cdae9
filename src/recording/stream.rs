//! One received audio stream: its sockets as bound for the answer ([`StreamSockets`]), and
//! what a media worker (`recording::workers`) does with each datagram, control message and
//! tick ([`StreamReceiver`]: source filter, SRTP, [`StreamTimeline`], accounting). The
//! receiver never touches a socket or reads the clock; the worker passes both in.

use crate::config::{FileSampleRate, MediaSource};
use crate::media::accounting::{AccountingReport, StreamAccounting};
use crate::media::srtp::SrtpReceiver;
use crate::media::{
    DtmfEvent, PausePolicy, PayloadDecoders, RtpPacket, StreamStats, StreamTimeline, TimelineConfig,
};
use crate::recording::prepare::PrepareFailure;
use crate::recording::writer::{FileId, WriterHandle};
use crate::sdp::NegotiatedStream;
use crate::sdp::crypto::CryptoAttribute;
use std::net::UdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How often finished PCM leaves a stream (one worker-wide tick). With the 60 ms reorder window and the
/// writer's flush interval (`FLUSH_INTERVAL`) it bounds how far a file on disk trails the
/// call: 100 + 60 + 800 ms < 1 s (SPEC §5).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Interval at which the WAV writer brings every open file up to date on disk.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(800);

/// Ticks between two [`StreamCounters`] of a stream: recording.json, the API and
/// `/metrics` see counters at most this many ticks (1 s) old, and the 100 ms blocks
/// between carry PCM only (no copies of the counters' vectors, no document update).
pub const COUNTERS_EVERY_TICKS: u32 = 10;

/// Where a stream's PCM goes every tick: straight to its file's WAV writer thread (which
/// also interleaves it into the stereo file), not through the recording task. Not `Clone`:
/// the shed audio it owes its file must be settled once.
pub struct PcmOutput {
    pub writer: WriterHandle,
    pub file: FileId,
    /// Samples shed while the writer was behind, not yet sent to become silence.
    shed_owed: usize,
}

impl PcmOutput {
    pub fn new(writer: WriterHandle, file: FileId) -> Self {
        PcmOutput {
            writer,
            file,
            shed_owed: 0,
        }
    }

    /// Hands `pcm` to the file's writer, or sheds it while the writer is behind its bound.
    /// The writer gone means shutdown, when nothing is kept.
    fn write(&mut self, pcm: &[i16]) {
        if let Ok(owed) = self.writer.append_or_shed(self.file, pcm, self.shed_owed) {
            self.shed_owed = owed;
        }
    }

    /// Sends what is still owed of shed audio: the stream's last write, before its close.
    fn settle(&mut self) {
        if self.writer.settle_shed(self.file, self.shed_owed).is_ok() {
            self.shed_owed = 0;
        }
    }
}

/// What a stream tells its recording task: its counters every [`COUNTERS_EVERY_TICKS`]
/// ticks, with the first packets and when it stops; DTMF when there is some.
#[derive(Debug)]
pub struct StreamBlock {
    /// Position of the stream among the recording's audio streams.
    pub index: usize,
    pub dtmf: Vec<DtmfEvent>,
    /// When the last RTP packet was accepted, if any (every block: the media timeout).
    pub last_packet: Option<Instant>,
    pub counters: Option<Box<StreamCounters>>,
    /// The stream ended; this is its last block.
    pub last: bool,
}

/// A stream's counters so far.
#[derive(Debug)]
pub struct StreamCounters {
    pub stats: StreamStats,
    /// SRTP packets dropped for failed authentication, and replays rejected.
    pub srtp_auth_failures: u64,
    pub srtp_replays: u64,
    /// RTCP-reported counts, loss bursts/gaps, media gaps and loudness so far.
    pub accounting: AccountingReport,
}

/// What the recording task tells a stream.
#[derive(Debug)]
pub enum StreamControl {
    Pause,
    Resume,
    /// Re-negotiated codecs and/or remote address (transfer, conference).
    Renegotiated {
        /// Every answered `(payload type, encoding name)`.
        codecs: Vec<(u8, String)>,
        remote: Option<IpAddr>,
        telephone_event: Option<(u8, u32)>,
        /// The sender's (possibly new) SRTP key.
        srtp: Option<CryptoAttribute>,
    },
    /// Finish the timeline up to now and end.
    Stop,
}

/// Sockets bound for one stream before the INVITE is answered (non-blocking; a media
/// worker registers them with its poller).
pub struct StreamSockets {
    pub rtp: UdpSocket,
    /// `None` with rtcp-mux.
    pub rtcp: Option<UdpSocket>,
}

/// Bind the RTP (and RTCP) ports the answer promised. Failing here turns into a 503
/// instead of an answered call that records nothing.
pub fn bind_stream(bind_ip: IpAddr, stream: &NegotiatedStream) -> std::io::Result<StreamSockets> {
    let rtp = bind_udp(SocketAddr::new(bind_ip, stream.local_port))?;
    let rtcp = if stream.rtcp_mux {
        None
    } else {
        Some(bind_udp(SocketAddr::new(
            bind_ip,
            stream.local_port.saturating_add(1),
        ))?)
    };
    Ok(StreamSockets { rtp, rtcp })
}

/// Room for bursts while the worker is busy: ~1 s of 20 ms packets with headroom.
const RTP_RECV_BUFFER: usize = 256 * 1024;

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    crate::net::bind_udp(addr, RTP_RECV_BUFFER)
}

/// The `(payload type, name)` pairs a stream was answered with, first codec first.
pub fn answered_codecs(stream: &NegotiatedStream) -> Vec<(u8, String)> {
    let mut codecs: Vec<(u8, String)> = stream
        .codecs
        .iter()
        .map(|c| (c.payload_type, c.name.clone()))
        .collect();
    if codecs.is_empty() {
        codecs.extend(
            stream
                .codec
                .iter()
                .map(|c| (c.payload_type, c.name.clone())),
        );
    }
    codecs
}

/// The file rate of a stream: fixed when it opens, from the widest answered codec.
pub fn file_rate_for(stream: &NegotiatedStream, setting: FileSampleRate) -> u32 {
    let widest = answered_codecs(stream)
        .iter()
        .filter_map(|(_, name)| crate::sdp::codec::storable_by_name(name))
        .map(|c| c.audio_rate)
        .max()
        .unwrap_or(8000);
    setting.for_widest(widest)
}

/// Decoders (one per answered payload type, plus the static ones) and timeline config for
/// a negotiated stream, writing `file_rate` Hz.
pub fn timeline_for(
    stream: &NegotiatedStream,
    policy: PausePolicy,
    file_rate: FileSampleRate,
    start: Instant,
) -> Result<StreamTimeline, PrepareFailure> {
    let codecs = answered_codecs(stream);
    if codecs.is_empty() {
        return Err(PrepareFailure::Codec(format!(
            "stream {} answered without a codec",
            stream.index
        )));
    }
    let mut decoders = PayloadDecoders::new(file_rate_for(stream, file_rate));
    let refused = decoders.insert_all(codecs.iter().map(|(pt, n)| (*pt, n.as_str())));
    if !refused.is_empty() {
        tracing::warn!(
            stream = stream.index,
            ?refused,
            "answered payload types without a decoder"
        );
    }
    let mut config = TimelineConfig::for_rate(decoders.rate());
    config.pause_policy = policy;
    config.dtmf = stream.telephone_event;
    Ok(StreamTimeline::with_decoders(config, decoders, start))
}

/// Which sources a stream accepts (SPEC §5): the SDP's address, port learned from the
/// first packet; or, with `media_source = "learn"`, whoever sends first.
#[derive(Debug, Clone, Copy)]
struct SourceFilter {
    expected_ip: Option<IpAddr>,
    learned: Option<SocketAddr>,
    learn_any: bool,
}

impl SourceFilter {
    fn new(remote: Option<IpAddr>, mode: MediaSource) -> Self {
        // c=0.0.0.0 (RFC 3264 hold) names no source: learn it.
        let expected_ip = remote.filter(|ip| !ip.is_unspecified());
        SourceFilter {
            expected_ip,
            learned: None,
            learn_any: mode == MediaSource::Learn || expected_ip.is_none(),
        }
    }

    fn accept(&mut self, from: SocketAddr) -> bool {
        if let Some(learned) = self.learned {
            return learned == from;
        }
        let ok = self.learn_any || self.expected_ip.is_some_and(|ip| same_ip(ip, from.ip()));
        if ok {
            self.learned = Some(from);
        }
        ok
    }

    /// RTCP comes from the sender's RTCP port (usually RTP + 1): the address must match,
    /// the port need not.
    fn accept_rtcp(&self, from: SocketAddr) -> bool {
        match (self.learned, self.expected_ip) {
            (Some(learned), _) => same_ip(learned.ip(), from.ip()),
            (None, Some(ip)) if !self.learn_any => same_ip(ip, from.ip()),
            (None, _) => self.learn_any,
        }
    }
}

/// Comfort noise (RFC 3389 PT 13, the old PT 19) or a G.729 Annex B SID frame: after it a
/// sender may legitimately send nothing for a while.
fn is_comfort_noise(packet: &RtpPacket<'_>) -> bool {
    matches!(packet.payload_type, 13 | 19)
        || (packet.payload_type == 18 && packet.payload.len() == 2)
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// A stream ready to receive: its sockets and the state a media worker runs it with.
pub struct MediaStream {
    pub index: usize,
    pub sockets: StreamSockets,
    pub timeline: StreamTimeline,
    pub remote: Option<IpAddr>,
    pub media_source: MediaSource,
    /// Answered `inactive`: the timeline starts paused.
    pub paused: bool,
    /// Decrypts the sender's SRTP when the stream is `RTP/SAVP`.
    pub srtp: Option<Box<SrtpReceiver>>,
    pub accounting: StreamAccounting,
    pub output: PcmOutput,
}

impl MediaStream {
    /// Splits the sockets (for the worker's poller) from the receive state.
    pub fn into_parts(self, now: Instant) -> (StreamSockets, StreamReceiver) {
        let mut receiver = StreamReceiver {
            index: self.index,
            filter: SourceFilter::new(self.remote, self.media_source),
            media_source: self.media_source,
            timeline: self.timeline,
            srtp: self.srtp,
            accounting: self.accounting,
            last_packet: None,
            spoofed: 0,
            warned_undecodable: false,
            ticks_since_counters: 0,
            counted_packets: false,
            output: self.output,
        };
        if self.paused {
            receiver.timeline.pause(now);
        }
        (self.sockets, receiver)
    }
}

/// Build the SRTP receiver for a negotiated stream (the offerer's key decrypts its media).
pub fn srtp_for(stream: &NegotiatedStream) -> Result<Option<Box<SrtpReceiver>>, PrepareFailure> {
    let Some(keys) = &stream.srtp else {
        return Ok(None);
    };
    SrtpReceiver::new(keys.remote.suite, keys.remote.key_salt())
        .map(|r| Some(Box::new(r)))
        .map_err(PrepareFailure::Srtp)
}

/// One stream's receive state, driven by its media worker: datagrams in; PCM out to its
/// file every tick, news out to its recording task.
/// No sockets, no clock: `now` and the bytes are passed in.
pub struct StreamReceiver {
    index: usize,
    filter: SourceFilter,
    media_source: MediaSource,
    timeline: StreamTimeline,
    /// Boxed: its keys and replay window take ≈ 1 KB, which a plain RTP stream (most of
    /// them) would otherwise carry unused in its worker slot.
    srtp: Option<Box<SrtpReceiver>>,
    accounting: StreamAccounting,
    last_packet: Option<Instant>,
    /// Datagrams from an unexpected source (logged at powers of two).
    spoofed: u64,
    /// The undecodable-payload warning was logged (once per stream).
    warned_undecodable: bool,
    /// Ticks since the last block with [`StreamCounters`].
    ticks_since_counters: u32,
    /// The last counters sent showed packets (else the first packets send them at once).
    counted_packets: bool,
    output: PcmOutput,
}

impl StreamReceiver {
    pub fn index(&self) -> usize {
        self.index
    }

    /// A datagram on the RTP port: RTP, or RTCP when muxed. `plain` is scratch space for
    /// SRTP decryption (shared by every stream of a worker).
    pub fn on_rtp_port(
        &mut self,
        now: Instant,
        data: &[u8],
        from: SocketAddr,
        plain: &mut Vec<u8>,
    ) {
        if !self.filter.accept(from) {
            self.spoofed += 1;
            if self.spoofed.is_power_of_two() {
                tracing::warn!(stream = self.index, %from, dropped = self.spoofed, "RTP from an unexpected source dropped");
            }
            return;
        }
        if crate::media::rtp::is_rtcp(data) {
            self.take_rtcp(data, plain);
            return;
        }
        let data = match self.srtp.as_mut() {
            None => data,
            Some(srtp) => {
                // Failures are counted by the receiver; the call goes on.
                if srtp.unprotect_rtp(data, plain).is_err() {
                    return;
                }
                &plain[..]
            }
        };
        if let Ok(packet) = RtpPacket::parse(data) {
            let cn = is_comfort_noise(&packet);
            self.accounting
                .on_rtp(now, packet.ssrc, packet.sequence, cn);
            self.timeline.push(now, &packet);
            self.last_packet = Some(now);
        }
    }

    /// A datagram on the separate RTCP port (RTP + 1).
    pub fn on_rtcp_port(&mut self, data: &[u8], from: SocketAddr, plain: &mut Vec<u8>) {
        if self.filter.accept_rtcp(from) {
            self.take_rtcp(data, plain);
        }
    }

    /// Pause, resume or re-negotiation. `Stop` is the worker's (it drains the sockets first,
    /// then calls [`StreamReceiver::finish`]); here it is ignored.
    pub fn apply(&mut self, now: Instant, control: StreamControl) {
        match control {
            StreamControl::Pause => {
                self.timeline.pause(now);
                self.accounting.pause();
            }
            StreamControl::Resume => {
                self.timeline.resume(now);
                self.accounting.resume();
            }
            StreamControl::Renegotiated {
                codecs,
                remote,
                telephone_event: _,
                srtp,
            } => self.renegotiated(&codecs, remote, srtp),
            StreamControl::Stop => {}
        }
    }

    fn renegotiated(
        &mut self,
        codecs: &[(u8, String)],
        remote: Option<IpAddr>,
        srtp: Option<CryptoAttribute>,
    ) {
        match (srtp, self.srtp.as_mut()) {
            (Some(key), Some(receiver)) => {
                // New keys on re-INVITE; the same key keeps the state.
                if let Err(e) = receiver.rekey(key.suite, key.key_salt()) {
                    tracing::warn!(stream = self.index, error = %e, "SRTP re-key refused");
                }
            }
            (Some(key), None) => match SrtpReceiver::new(key.suite, key.key_salt()) {
                Ok(r) => self.srtp = Some(Box::new(r)),
                Err(e) => tracing::warn!(stream = self.index, error = %e, "SRTP key refused"),
            },
            (None, _) => self.srtp = None,
        }
        if remote != self.filter.expected_ip && remote.is_some_and(|ip| !ip.is_unspecified()) {
            self.filter = SourceFilter::new(remote, self.media_source);
        }
        let refused = self
            .timeline
            .set_codecs(codecs.iter().map(|(pt, n)| (*pt, n.as_str())));
        if !refused.is_empty() {
            tracing::warn!(stream = self.index, ?refused, "codec change not applied");
        }
    }

    /// The tick: PCM up to the horizon goes to the file; a block for the recording task
    /// when counters are due or DTMF came. `out` is worker scratch (its capacity is kept).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<i16>) -> Option<StreamBlock> {
        out.clear();
        self.timeline.poll(now, out);
        self.warn_undecodable();
        self.write_pcm(out);
        self.ticks_since_counters += 1;
        let first_packets = !self.counted_packets && self.last_packet.is_some();
        let due = first_packets || self.ticks_since_counters >= COUNTERS_EVERY_TICKS;
        (due || self.timeline.has_dtmf()).then(|| self.block(due, false))
    }

    /// The last block: everything up to `now`, padded to it, is written first.
    pub fn finish(&mut self, now: Instant, out: &mut Vec<i16>) -> StreamBlock {
        out.clear();
        self.timeline.finish(now, out);
        self.accounting.finish(now);
        self.write_pcm(out);
        self.output.settle();
        self.block(true, true)
    }

    /// One RTCP datagram from the SRC (SRTCP decrypted first when the stream is SRTP).
    fn take_rtcp(&mut self, data: &[u8], plain: &mut Vec<u8>) {
        let data = match self.srtp.as_mut() {
            None => data,
            Some(srtp) => {
                if srtp.unprotect_rtcp(data, plain).is_err() {
                    self.accounting.on_rtcp_error();
                    return;
                }
                &plain[..]
            }
        };
        self.accounting.on_rtcp(data);
    }

    /// One warning per stream when packets arrive that no decoder takes: their time is
    /// silence in the file, which recording.json and the metrics also show.
    fn warn_undecodable(&mut self) {
        if self.warned_undecodable {
            return;
        }
        if let Some((pt, n)) = self.timeline.first_undecodable() {
            self.warned_undecodable = true;
            tracing::warn!(
                stream = self.index,
                payload_type = pt,
                packets = n,
                "RTP payload type the recorder cannot decode: its audio is missing from the file"
            );
        }
    }

    fn write_pcm(&mut self, out: &mut Vec<i16>) {
        self.accounting.on_pcm(out);
        if !out.is_empty() {
            self.output.write(out);
        }
        out.clear();
    }

    fn block(&mut self, with_counters: bool, last: bool) -> StreamBlock {
        StreamBlock {
            index: self.index,
            dtmf: self.timeline.take_dtmf(),
            last_packet: self.last_packet,
            counters: with_counters.then(|| self.counters()),
            last,
        }
    }

    fn counters(&mut self) -> Box<StreamCounters> {
        self.ticks_since_counters = 0;
        self.counted_packets = self.last_packet.is_some();
        Box::new(StreamCounters {
            stats: self.timeline.stats(),
            srtp_auth_failures: self.srtp.as_deref().map_or(0, SrtpReceiver::auth_failures),
            srtp_replays: self.srtp.as_deref().map_or(0, SrtpReceiver::replays),
            accounting: self.accounting.report(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_source_learns_the_port_of_the_sdp_address() {
        let mut f = SourceFilter::new(Some("192.0.2.1".parse().unwrap()), MediaSource::Strict);
        assert!(!f.accept("192.0.2.9:4000".parse().unwrap()), "other IP");
        assert!(f.accept("192.0.2.1:4000".parse().unwrap()));
        assert!(
            !f.accept("192.0.2.1:4002".parse().unwrap()),
            "port is locked after the first packet"
        );
        assert!(f.accept("192.0.2.1:4000".parse().unwrap()));
    }

    #[test]
    fn learn_mode_and_hold_address_take_the_first_sender() {
        let mut f = SourceFilter::new(Some("192.0.2.1".parse().unwrap()), MediaSource::Learn);
        assert!(f.accept("198.51.100.7:5000".parse().unwrap()));
        assert!(!f.accept("192.0.2.1:4000".parse().unwrap()));
        let mut f = SourceFilter::new(Some("0.0.0.0".parse().unwrap()), MediaSource::Strict);
        assert!(f.accept("198.51.100.7:5000".parse().unwrap()));
    }

    #[test]
    fn mapped_ipv4_matches() {
        let mut f = SourceFilter::new(Some("127.0.0.1".parse().unwrap()), MediaSource::Strict);
        assert!(f.accept("[::ffff:127.0.0.1]:4000".parse().unwrap()));
    }
}
