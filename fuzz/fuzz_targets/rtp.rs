//! RTP/RTCP parsing, and a stream timeline fed arbitrary packet sequences on a virtual clock.
//!
//! The raw input is first parsed as one datagram (RTP seeds reach the header parser
//! unchanged); the same bytes then drive a structured packet sequence. The timeline's
//! contract is that its output follows the wall clock whatever the packets claim: after
//! `poll(now)` it has emitted everything up to `now − reorder window − MAX_HELD` (a gap may
//! wait that long for a concealing decoder's next packet), and at most one
//! packet beyond; after `finish(now)` up to `now`, again plus at most one packet. Anything
//! else is either a gap in the recording or output that grows with hostile timestamps.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sip_recorder::media::rtp::{is_rtcp, parse_sender_report, write_packet};
use sip_recorder::media::timeline::{MAX_HELD, MAX_SSRCS};
use sip_recorder::media::{Decoder, PausePolicy, RtpPacket, StreamTimeline, TimelineConfig};
use std::time::{Duration, Instant};

const MAX_PAYLOAD: usize = 400;
const MAX_OPS: usize = 400;

#[derive(Arbitrary, Debug)]
enum CodecChoice {
    Pcmu,
    Pcma,
    G722,
}

impl CodecChoice {
    fn decoder(&self) -> (u8, Decoder) {
        let (pt, name) = match self {
            CodecChoice::Pcmu => (0, "PCMU"),
            CodecChoice::Pcma => (8, "PCMA"),
            CodecChoice::G722 => (9, "G722"),
        };
        (pt, Decoder::for_codec(name).expect("recordable codec"))
    }
}

#[derive(Arbitrary, Debug)]
struct Setup {
    codec: CodecChoice,
    /// Output at 16 kHz instead of the decoder's rate.
    wide_output: bool,
    ptime_ms: u8,
    window_ms: u16,
    max_reorder: u8,
    skip_pauses: bool,
    dtmf_pt: Option<u8>,
    cn_pt: Option<u8>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Packet {
        after_ms: u16,
        marker: bool,
        /// Index into the stream's known payload types, or any value.
        pt: u8,
        seq_step: i16,
        ts_step: i32,
        /// One of a few sources, so SSRC changes and strays both happen.
        ssrc: u8,
        payload_len: u16,
        fill: u8,
    },
    Poll {
        after_ms: u16,
    },
    /// A long silence (a held call, a dead network): up to a minute.
    Jump {
        secs: u8,
    },
    Pause,
    Resume,
    SetCodec(CodecChoice),
}

fuzz_target!(|data: &[u8]| {
    raw_datagram(data);
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    run(setup, ops);
});

fn raw_datagram(data: &[u8]) {
    // The receive path asks is_rtcp first; both views of any datagram must be safe.
    let _ = is_rtcp(data);
    let _ = parse_sender_report(data);
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload.len() <= data.len());
        assert!(p.csrcs.len() % 4 == 0);
        let _ = p.csrc_iter().count();
    }
}

struct Model {
    rate: u32,
    start: Instant,
    now: Instant,
    skip: bool,
    paused_at: Option<Instant>,
    skipped: Duration,
    window: i64,
    /// How long a gap may wait for a concealing decoder's next packet (`MAX_HELD`).
    held: i64,
    /// Most samples one packet can produce at the output rate.
    overhang: i64,
}

impl Model {
    fn samples(&self, d: Duration) -> i64 {
        i64::try_from(d.as_nanos() * u128::from(self.rate) / 1_000_000_000).unwrap_or(i64::MAX)
    }

    /// Output position of `now` per the timeline's documented model.
    fn wall(&self) -> i64 {
        let mut elapsed = self.now.saturating_duration_since(self.start);
        elapsed = elapsed.saturating_sub(self.skipped);
        if let (Some(at), true) = (self.paused_at, self.skip) {
            elapsed = elapsed.saturating_sub(self.now.saturating_duration_since(at));
        }
        self.samples(elapsed)
    }
}

fn run(setup: Setup, ops: Vec<Op>) {
    let (pt0, decoder) = setup.codec.decoder();
    let mut cfg = TimelineConfig::for_decoder(&decoder);
    if setup.wide_output {
        cfg.sample_rate = 16000;
    }
    cfg.ptime_hint = Duration::from_millis(u64::from(setup.ptime_ms));
    cfg.reorder_window = Duration::from_millis(u64::from(setup.window_ms % 1000));
    cfg.max_reorder_packets = usize::from(setup.max_reorder % 128);
    cfg.pause_policy = if setup.skip_pauses {
        PausePolicy::Skip
    } else {
        PausePolicy::Silence
    };
    cfg.dtmf = setup.dtmf_pt.map(|pt| (pt & 0x7F, 8000));
    cfg.comfort_noise = setup.cn_pt.map(|pt| pt & 0x7F);
    let max_reorder = cfg.max_reorder_packets.max(1);
    let known_pts = [
        pt0,
        cfg.dtmf.map_or(101, |d| d.0),
        cfg.comfort_noise.unwrap_or(13),
        0,
        8,
        9,
    ];

    let start = Instant::now();
    let Ok(mut tl) = StreamTimeline::new(cfg.clone(), pt0, decoder, start) else {
        return;
    };
    let rate = tl.sample_rate();
    let mut model = Model {
        rate,
        start,
        now: start,
        skip: setup.skip_pauses,
        paused_at: None,
        skipped: Duration::ZERO,
        window: 0,
        held: 0,
        overhang: 0,
    };
    model.window = model.samples(cfg.reorder_window);
    model.held = model.samples(MAX_HELD);
    // G.729 (static type 18, decoded whatever was answered) yields the most: 80 samples per
    // 10-byte frame; a 16 kHz output doubles 8 kHz codecs.
    model.overhang = i64::try_from(MAX_PAYLOAD).unwrap_or(0) * 8 * 2;

    let mut out = Vec::new();
    let mut total: i64 = 0;
    let mut wire = Vec::new();
    let (mut seq, mut ts) = (0u16, 0u32);
    let ssrcs = [0x1111_1111u32, 0x2222_2222, 0x3333_3333, 0];

    for op in ops {
        match op {
            Op::Packet {
                after_ms,
                marker,
                pt,
                seq_step,
                ts_step,
                ssrc,
                payload_len,
                fill,
            } => {
                model.now += Duration::from_millis(u64::from(after_ms % 500));
                seq = seq.wrapping_add_signed(seq_step);
                ts = ts.wrapping_add_signed(ts_step);
                let pt = known_pts.get(usize::from(pt)).copied().unwrap_or(pt & 0x7F);
                let len = usize::from(payload_len) % (MAX_PAYLOAD + 1);
                let payload: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                let ssrc = ssrcs[usize::from(ssrc) % ssrcs.len()];
                write_packet(&mut wire, marker, pt, seq, ts, ssrc, &payload);
                let packet = RtpPacket::parse(&wire).expect("a packet we wrote parses");
                tl.push(model.now, &packet);
                assert!(
                    tl.buffered_packets() <= max_reorder,
                    "reorder buffer over its bound"
                );
            }
            Op::Poll { after_ms } => {
                model.now += Duration::from_millis(u64::from(after_ms % 2000));
            }
            Op::Jump { secs } => {
                model.now += Duration::from_secs(u64::from(secs % 61));
            }
            Op::Pause => {
                tl.pause(model.now);
                model.paused_at.get_or_insert(model.now);
            }
            Op::Resume => {
                tl.resume(model.now);
                if let Some(at) = model.paused_at.take() {
                    if model.skip {
                        model.skipped += model.now.saturating_duration_since(at);
                    }
                }
            }
            Op::SetCodec(c) => {
                let (pt, d) = c.decoder();
                let _ = tl.set_codec(pt, d);
            }
        }
        // The stream task polls after every packet and on a timer.
        out.clear();
        tl.poll(model.now, &mut out);
        total += out.len() as i64;
        let horizon = model.wall() - model.window;
        check_position(&tl, &model, total, horizon, model.held, "poll");
        let _ = tl.take_dtmf();
    }
    out.clear();
    tl.finish(model.now, &mut out);
    total += out.len() as i64;
    check_position(&tl, &model, total, model.wall(), 0, "finish");
    assert_eq!(tl.buffered_packets(), 0, "packets left after finish");
    let stats = tl.stats();
    assert!(stats.ssrcs.len() <= MAX_SSRCS);
    assert!(stats.jitter_ms.is_finite());
}

/// Emitted samples are at the horizon: behind it by at most `held`, ahead by at most one
/// packet's output.
fn check_position(
    tl: &StreamTimeline,
    model: &Model,
    total: i64,
    horizon: i64,
    held: i64,
    what: &str,
) {
    assert_eq!(
        tl.position(),
        u64::try_from(total).unwrap_or(0),
        "position and emitted samples disagree after {what}"
    );
    let horizon = horizon.max(0);
    assert!(
        total >= horizon - held,
        "{what}: {total} samples emitted, the wall clock is at {horizon}: a gap"
    );
    assert!(
        total <= horizon + model.overhang,
        "{what}: {total} samples emitted, the wall clock is at {horizon}: output ahead of time"
    );
}
