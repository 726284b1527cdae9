//! One task per received audio stream: it owns the stream's RTP (and RTCP) sockets and its
//! [`StreamTimeline`], and hands finished PCM to its recording task a few times a second.

use crate::config::{FileSampleRate, MediaSource};
use crate::media::accounting::{AccountingReport, StreamAccounting};
use crate::media::srtp::SrtpReceiver;
use crate::media::{
    DtmfEvent, PausePolicy, PayloadDecoders, RtpPacket, StreamStats, StreamTimeline, TimelineConfig,
};
use crate::recording::prepare::PrepareFailure;
use crate::sdp::NegotiatedStream;
use crate::sdp::crypto::CryptoAttribute;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How often finished PCM leaves the stream task. With the 60 ms reorder window and the
/// writer's flush interval (`FLUSH_INTERVAL`) it bounds how far a file on disk trails the
/// call: 100 + 60 + 800 ms < 1 s (SPEC §5).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Interval at which the WAV writer brings every open file up to date on disk.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(800);

/// PCM and counters from a stream task.
#[derive(Debug)]
pub struct StreamBlock {
    /// Position of the stream among the recording's audio streams.
    pub index: usize,
    pub samples: Vec<i16>,
    pub stats: StreamStats,
    pub dtmf: Vec<DtmfEvent>,
    /// When the last RTP packet was accepted, if any.
    pub last_packet: Option<Instant>,
    /// SRTP packets dropped for failed authentication, and replays rejected.
    pub srtp_auth_failures: u64,
    pub srtp_replays: u64,
    /// RTCP-reported counts, loss bursts/gaps, media gaps and loudness so far.
    pub accounting: AccountingReport,
    /// The stream task ended; this is its last block.
    pub last: bool,
}

/// What the recording task tells a stream task.
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

/// Sockets bound for one stream before the INVITE is answered.
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

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    // Room for bursts while the task is busy: ~1 s of 20 ms packets with headroom.
    let _ = socket.set_recv_buffer_size(256 * 1024);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
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

pub struct StreamTask {
    pub index: usize,
    pub sockets: StreamSockets,
    pub timeline: StreamTimeline,
    pub remote: Option<IpAddr>,
    pub media_source: MediaSource,
    pub paused: bool,
    /// Decrypts the sender's SRTP when the stream is `RTP/SAVP`.
    pub srtp: Option<SrtpReceiver>,
    pub accounting: StreamAccounting,
    /// The undecodable-payload warning was logged (once per stream).
    pub warned_undecodable: bool,
}

/// Build the SRTP receiver for a negotiated stream (the offerer's key decrypts its media).
pub fn srtp_for(stream: &NegotiatedStream) -> Result<Option<SrtpReceiver>, PrepareFailure> {
    let Some(keys) = &stream.srtp else {
        return Ok(None);
    };
    SrtpReceiver::new(keys.remote.suite, keys.remote.key_salt())
        .map(Some)
        .map_err(PrepareFailure::Srtp)
}

impl StreamTask {
    pub async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<StreamControl>,
        blocks: mpsc::UnboundedSender<StreamBlock>,
    ) {
        let mut filter = SourceFilter::new(self.remote, self.media_source);
        let mut buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        let mut plain = Vec::with_capacity(2048);
        let mut out: Vec<i16> = Vec::with_capacity(8192);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_packet = None;
        let mut spoofed: u64 = 0;
        if self.paused {
            self.timeline.pause(Instant::now());
        }
        loop {
            tokio::select! {
                r = self.sockets.rtp.recv_from(&mut buf) => {
                    let Ok((len, from)) = r else { continue };
                    if !filter.accept(from) {
                        spoofed += 1;
                        if spoofed.is_power_of_two() {
                            tracing::warn!(stream = self.index, %from, dropped = spoofed, "RTP from an unexpected source dropped");
                        }
                        continue;
                    }
                    let data = &buf[..len];
                    if crate::media::rtp::is_rtcp(data) {
                        self.take_rtcp(data, &mut plain);
                        continue;
                    }
                    let data = match self.srtp.as_mut() {
                        None => data,
                        Some(srtp) => {
                            // Failures are counted by the receiver; the call goes on.
                            if srtp.unprotect_rtp(data, &mut plain).is_err() {
                                continue;
                            }
                            &plain[..]
                        }
                    };
                    if let Ok(packet) = RtpPacket::parse(data) {
                        let now = Instant::now();
                        self.accounting.on_rtp(now, packet.ssrc, packet.sequence, is_comfort_noise(&packet));
                        self.timeline.push(now, &packet);
                        last_packet = Some(now);
                    }
                }
                r = recv_optional(self.sockets.rtcp.as_ref(), &mut rtcp_buf) => {
                    if let Ok((len, from)) = r && filter.accept_rtcp(from) {
                        self.take_rtcp(&rtcp_buf[..len], &mut plain);
                    }
                }
                cmd = control.recv() => {
                    let now = Instant::now();
                    match cmd {
                        Some(StreamControl::Pause) => {
                            self.timeline.pause(now);
                            self.accounting.pause();
                        }
                        Some(StreamControl::Resume) => {
                            self.timeline.resume(now);
                            self.accounting.resume();
                        }
                        Some(StreamControl::Renegotiated { codecs, remote, telephone_event, srtp }) => {
                            match (srtp, self.srtp.as_mut()) {
                                (Some(key), Some(receiver)) => {
                                    // New keys on re-INVITE; the same key keeps the state.
                                    if let Err(e) = receiver.rekey(key.suite, key.key_salt()) {
                                        tracing::warn!(stream = self.index, error = %e, "SRTP re-key refused");
                                    }
                                }
                                (Some(key), None) => match SrtpReceiver::new(key.suite, key.key_salt()) {
                                    Ok(r) => self.srtp = Some(r),
                                    Err(e) => tracing::warn!(stream = self.index, error = %e, "SRTP key refused"),
                                },
                                (None, _) => self.srtp = None,
                            }
                            if remote != filter.expected_ip && remote.is_some_and(|ip| !ip.is_unspecified()) {
                                filter = SourceFilter::new(remote, self.media_source);
                            }
                            let refused = self.timeline.set_codecs(codecs.iter().map(|(pt, n)| (*pt, n.as_str())));
                            if !refused.is_empty() {
                                tracing::warn!(stream = self.index, ?refused, "codec change not applied");
                            }
                            let _ = telephone_event;
                        }
                        Some(StreamControl::Stop) | None => {
                            // Packets that came before the BYE may still sit in the socket.
                            let mut drained = 0;
                            while drained < 1024 {
                                let Ok((len, from)) = self.sockets.rtp.try_recv_from(&mut buf) else { break };
                                drained += 1;
                                if !filter.accept(from) {
                                    continue;
                                }
                                if crate::media::rtp::is_rtcp(&buf[..len]) {
                                    self.take_rtcp(&buf[..len], &mut plain);
                                    continue;
                                }
                                let data = match self.srtp.as_mut() {
                                    None => &buf[..len],
                                    Some(srtp) => {
                                        if srtp.unprotect_rtp(&buf[..len], &mut plain).is_err() {
                                            continue;
                                        }
                                        &plain[..]
                                    }
                                };
                                if let Ok(packet) = RtpPacket::parse(data) {
                                    self.accounting.on_rtp(now, packet.ssrc, packet.sequence, is_comfort_noise(&packet));
                                    self.timeline.push(now, &packet);
                                }
                            }
                            while let Some(socket) = self.sockets.rtcp.as_ref() {
                                let Ok((len, from)) = socket.try_recv_from(&mut rtcp_buf) else { break };
                                if filter.accept_rtcp(from) {
                                    self.take_rtcp(&rtcp_buf[..len], &mut plain);
                                }
                            }
                            self.timeline.finish(now, &mut out);
                            self.accounting.finish(now);
                            let _ = blocks.send(self.block(&mut out, last_packet, true));
                            return;
                        }
                    }
                }
                _ = tick.tick() => {
                    self.timeline.poll(Instant::now(), &mut out);
                    self.warn_undecodable();
                    if blocks.send(self.block(&mut out, last_packet, false)).is_err() {
                        return;
                    }
                }
            }
        }
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

    fn block(
        &mut self,
        out: &mut Vec<i16>,
        last_packet: Option<Instant>,
        last: bool,
    ) -> StreamBlock {
        self.accounting.on_pcm(out);
        StreamBlock {
            index: self.index,
            samples: std::mem::replace(out, Vec::with_capacity(8192)),
            stats: self.timeline.stats(),
            dtmf: self.timeline.take_dtmf(),
            last_packet,
            srtp_auth_failures: self.srtp.as_ref().map_or(0, SrtpReceiver::auth_failures),
            srtp_replays: self.srtp.as_ref().map_or(0, SrtpReceiver::replays),
            accounting: self.accounting.report(),
            last,
        }
    }
}

async fn recv_optional(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
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
