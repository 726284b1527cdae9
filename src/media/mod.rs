//! Sans-IO media core: RTP/RTCP parsing, decoders, DTMF and the per-stream timeline.
//!
//! Nothing here touches a socket, a file or the clock: the receive task hands datagrams and
//! their arrival `Instant` to [`timeline::StreamTimeline`] and writes out the PCM it polls.
//!
//! - [`rtp`]: RTP header parsing, RTCP recognition on muxed ports, sender reports.
//! - [`rtcp`]: compound RTCP walking (SR, RR, SDES, BYE) as borrowed views.
//! - [`accounting`]: SR packet counts, RFC 3611 loss bursts/gaps, media gaps, silence.
//! - [`codec`]: PCMU, PCMA, G.722, G.729, G.726, Opus decoders and rate conversion.
//! - [`decode`]: one decoder per payload type, the static types included.
//! - [`dtmf`]: RFC 4733 telephone events, one per key press.
//! - [`timeline`]: reorder, loss, wrap, SSRC change, pause and drift → wall-clock PCM.

pub mod accounting;
pub mod codec;
pub mod decode;
pub mod dtmf;
pub mod rtcp;
pub mod rtp;
mod sequence;
pub mod srtp;
pub mod timeline;

pub use codec::{Decoder, UnsupportedCodec};
pub use decode::PayloadDecoders;
pub use dtmf::DtmfEvent;
pub use rtp::{RtpError, RtpPacket};
pub use timeline::{PausePolicy, StreamStats, StreamTimeline, TimelineConfig};
