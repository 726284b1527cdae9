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
    /// Samples of a source whose own file could not be created: its audio still belongs in
    /// the stereo file.
    orphaned: [Vec<i16>; 2],
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
        self.orphaned[channel as usize].extend_from_slice(samples);
    }

    /// Interleaves what the sources buffered (`None`: a source without a file, whose
    /// samples were kept here) into `out`.
    pub fn interleave_sources(
        &mut self,
        left: Option<&[Vec<i16>]>,
        right: Option<&[Vec<i16>]>,
        out: &mut Vec<i16>,
    ) {
        let orphaned = std::mem::take(&mut self.orphaned);
        let [left_kept, right_kept] = &orphaned;
        let left = left.unwrap_or(std::slice::from_ref(left_kept));
        let right = right.unwrap_or(std::slice::from_ref(right_kept));
        self.interleave(left, right, out);
        self.interleaver.trim();
        self.orphaned = orphaned.map(|mut kept| {
            kept.clear();
            kept
        });
    }

    /// Interleaves `left` and `right` (blocks of samples, each side at its source's rate)
    /// into `out`, both sides a turn at a time. Frames one side is still missing stay in
    /// the interleaver for the next flush.
    fn interleave(&mut self, left: &[Vec<i16>], right: &[Vec<i16>], out: &mut Vec<i16>) {
        let (left_rate, right_rate) = self.interleaver.input_rates();
        let turn = |rate: u32| (rate as usize * TURN_MS / 1000).max(1);
        let mut left = Turns::new(left, turn(left_rate));
        let mut right = Turns::new(right, turn(right_rate));
        while !(left.is_done() && right.is_done()) {
            left.take_turn(|samples| self.interleaver.push_left(samples, out));
            right.take_turn(|samples| self.interleaver.push_right(samples, out));
        }
    }
}

/// One side's blocks, handed out a turn (a number of samples) at a time; a turn may span
/// blocks.
struct Turns<'a> {
    blocks: &'a [Vec<i16>],
    /// Position in the first of `blocks`.
    at: usize,
    turn: usize,
}

impl<'a> Turns<'a> {
    fn new(blocks: &'a [Vec<i16>], turn: usize) -> Self {
        let mut turns = Turns {
            blocks,
            at: 0,
            turn,
        };
        turns.skip_spent();
        turns
    }

    fn is_done(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Passes up to one turn of samples to `push`, as one slice per block it spans.
    fn take_turn(&mut self, mut push: impl FnMut(&[i16]) -> usize) {
        let mut left = self.turn;
        while left > 0
            && let Some(block) = self.blocks.first()
        {
            let end = block.len().min(self.at + left);
            push(&block[self.at..end]);
            left -= end - self.at;
            self.at = end;
            self.skip_spent();
        }
    }

    fn skip_spent(&mut self) {
        while let Some(block) = self.blocks.first()
            && self.at >= block.len()
        {
            self.blocks = &self.blocks[1..];
            self.at = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `samples` cut into blocks of `size`, as a mono file buffers them.
    fn blocks(samples: &[i16], size: usize) -> Vec<Vec<i16>> {
        samples.chunks(size).map(<[i16]>::to_vec).collect()
    }

    #[test]
    fn unequal_buffers_leave_the_longer_sides_excess_for_the_next_flush() {
        let mut feed = StereoFeed::new(StereoInterleaver::new(8000, 8000).unwrap(), [None, None]);
        let left: Vec<i16> = (0..1000).collect();
        let right: Vec<i16> = (0..700).map(|i| -i).collect();
        let mut out = Vec::new();
        feed.interleave(&blocks(&left, 800), &blocks(&right, 300), &mut out);
        assert_eq!(out.len(), 2 * 700);
        let more_right: Vec<i16> = (700..1000).map(|i| -i).collect();
        feed.interleave(&[], &blocks(&more_right, 130), &mut out);
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
        feed.interleave(&blocks(&left, 1600), &blocks(&right, 800), &mut out);
        assert_eq!(feed.interleaver.padded_frames(), (0, 0));
        assert!(out.len() >= 2 * 15_990, "{} frames", out.len() / 2);
        assert!(out.chunks(2).all(|f| f == [1000, -1000]));
    }

    #[test]
    fn a_turn_spans_blocks_and_skips_empty_ones() {
        let blocks = vec![vec![1, 2, 3], vec![], vec![4], vec![5, 6, 7, 8, 9]];
        let mut turns = Turns::new(&blocks, 4);
        let mut seen = Vec::new();
        while !turns.is_done() {
            let mut turn = Vec::new();
            turns.take_turn(|s| {
                turn.extend_from_slice(s);
                s.len()
            });
            seen.push(turn);
        }
        assert_eq!(seen, [vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9]]);
        assert!(Turns::new(&[vec![], vec![]], 4).is_done());
    }
}
