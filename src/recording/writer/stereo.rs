//! A stereo file built at flush time from its two mono files' buffers.
//!
//! The stereo file keeps no buffer of its own: when its group (the stereo file and its two
//! sources) flushes, the audio the mono files have buffered since the last flush is
//! interleaved into a staging buffer the writer thread shares among all its files, written,
//! and then the mono files are flushed. A live third buffer cost as much memory as the two
//! mono buffers together.

use super::{FileId, StereoInterleaver};

/// Input fed to the interleaver per side and turn, in milliseconds of audio: both sides
/// advance together, so neither leads by more than this plus the real arrival lag (far
/// under the interleaver's 2 s bound, whatever the flush interval).
const TURN_MS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channel {
    Left,
    Right,
}

/// What a stereo file is built from.
#[derive(Debug)]
pub(super) struct StereoFeed {
    pub interleaver: StereoInterleaver,
    /// The left and right mono files; `None` once closed.
    pub sources: [Option<FileId>; 2],
    /// Little-endian samples of a source whose own file could not be created: its audio
    /// still belongs in the stereo file.
    orphaned: [Vec<u8>; 2],
}

impl StereoFeed {
    pub fn new(interleaver: StereoInterleaver, sources: [Option<FileId>; 2]) -> Self {
        StereoFeed {
            interleaver,
            sources,
            orphaned: [Vec::new(), Vec::new()],
        }
    }

    /// Keeps `samples` of a source that has no file, until the next flush.
    pub fn keep_orphaned(&mut self, channel: Channel, samples: &[i16]) {
        let kept = &mut self.orphaned[channel as usize];
        kept.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    }

    /// Interleaves what the sources buffered (`None`: a source without a file, whose
    /// samples were kept here) into `out`.
    pub fn interleave_sources(
        &mut self,
        left: Option<&[u8]>,
        right: Option<&[u8]>,
        out: &mut Vec<i16>,
    ) {
        let orphaned = std::mem::take(&mut self.orphaned);
        let [left_kept, right_kept] = &orphaned;
        self.interleave(left.unwrap_or(left_kept), right.unwrap_or(right_kept), out);
        self.interleaver.trim();
        self.orphaned = orphaned.map(|mut kept| {
            kept.clear();
            kept
        });
    }

    /// Interleaves `left` and `right` (little-endian 16-bit samples, each at its source's
    /// rate) into `out`, both sides a turn at a time. Frames one side is still missing stay
    /// in the interleaver for the next flush.
    fn interleave(&mut self, left: &[u8], right: &[u8], out: &mut Vec<i16>) {
        let (left_rate, right_rate) = self.interleaver.input_rates();
        let turn = |rate: u32| (rate as usize * TURN_MS / 1000).max(1) * 2;
        let mut left = left.chunks(turn(left_rate));
        let mut right = right.chunks(turn(right_rate));
        let mut samples = Vec::new();
        loop {
            let (l, r) = (left.next(), right.next());
            if l.is_none() && r.is_none() {
                return;
            }
            if let Some(l) = l {
                decode_le(l, &mut samples);
                self.interleaver.push_left(&samples, out);
            }
            if let Some(r) = r {
                decode_le(r, &mut samples);
                self.interleaver.push_right(&samples, out);
            }
        }
    }
}

fn decode_le(bytes: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]])),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn unequal_buffers_leave_the_longer_sides_excess_for_the_next_flush() {
        let mut feed = StereoFeed::new(StereoInterleaver::new(8000, 8000).unwrap(), [None, None]);
        let left: Vec<i16> = (0..1000).collect();
        let right: Vec<i16> = (0..700).map(|i| -i).collect();
        let mut out = Vec::new();
        feed.interleave(&le(&left), &le(&right), &mut out);
        assert_eq!(out.len(), 2 * 700);
        let more_right: Vec<i16> = (700..1000).map(|i| -i).collect();
        feed.interleave(&[], &le(&more_right), &mut out);
        assert_eq!(out.len(), 2 * 1000);
        for (i, frame) in out.chunks(2).enumerate() {
            assert_eq!(frame, [i as i16, -(i as i16)]);
        }
    }

    #[test]
    fn a_second_of_16_khz_beside_8_khz_is_taken_in_turns_not_as_a_lead() {
        // One flush of a second at different rates: with a 50 ms bound on the lead,
        // feeding one side whole before the other would pad the other with silence.
        let interleaver = StereoInterleaver::new(16000, 8000)
            .unwrap()
            .with_max_lag(800);
        let mut feed = StereoFeed::new(interleaver, [None, None]);
        let left = vec![1000i16; 16000];
        let right = vec![-1000i16; 8000];
        let mut out = Vec::new();
        feed.interleave(&le(&left), &le(&right), &mut out);
        assert_eq!(feed.interleaver.padded_frames(), (0, 0));
        assert!(out.len() >= 2 * 15_990, "{} frames", out.len() / 2);
        assert!(out.chunks(2).all(|f| f == [1000, -1000]));
    }
}
