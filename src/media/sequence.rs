//! RTP sequence-number bookkeeping for one source segment (RFC 3550 Appendix A.1).
//!
//! Extends 16-bit sequence numbers across wrap-around, tells new packets from duplicates and
//! from ones too old to place, and counts what is needed for the loss statistic. A
//! 128-packet bitmap behind the highest sequence number remembers what was received, so
//! duplicates are recognised even after the original was played out.

/// Largest forward gap still taken as loss rather than a restart (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
/// Largest backward step still taken as reordering (RFC 3550 A.1).
const MAX_MISORDER: u16 = 100;

/// What a sequence number means for the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    /// First arrival of this packet, with its extended sequence number; `newest` when it is
    /// beyond every packet seen so far (the in-order case).
    Fresh { ext: i64, newest: bool },
    /// Seen before.
    Duplicate,
    /// A large jump seen once: dropped until a second packet confirms it (A.1 probation).
    JumpPending,
    /// A large jump confirmed by the packet that follows it: the source restarted its
    /// numbering, so the caller starts a new segment with this packet.
    Restart,
}

/// Sequence state of one segment (one SSRC between restarts).
#[derive(Debug, Clone)]
pub(crate) struct SeqState {
    base: i64,
    max: i64,
    /// Bit `i` set: packet `max - i` was received.
    history: u128,
    received: u64,
    /// Sequence number expected after an unconfirmed jump.
    bad_seq: Option<u16>,
}

impl SeqState {
    /// A segment starting with `first`, which counts as received.
    pub(crate) fn new(first: u16) -> Self {
        let ext = i64::from(first);
        SeqState {
            base: ext,
            max: ext,
            history: 1,
            received: 1,
            bad_seq: None,
        }
    }

    /// The extended sequence number of the segment's first packet.
    pub(crate) fn first(&self) -> i64 {
        self.base
    }

    pub(crate) fn classify(&mut self, seq: u16) -> SeqVerdict {
        // `max` only ever grows from a u16, so its low 16 bits are the last wire value.
        let max16 = (self.max & 0xFFFF) as u16;
        let udelta = seq.wrapping_sub(max16);
        if udelta == 0 {
            return SeqVerdict::Duplicate;
        }
        if udelta < MAX_DROPOUT {
            let step = u32::from(udelta);
            self.history = if step >= 128 { 0 } else { self.history << step };
            self.history |= 1;
            self.max += i64::from(udelta);
            self.received += 1;
            self.bad_seq = None;
            return SeqVerdict::Fresh {
                ext: self.max,
                newest: true,
            };
        }
        let back = 0u16.wrapping_sub(udelta);
        if back <= MAX_MISORDER {
            let bit = 1u128 << back;
            if self.history & bit != 0 {
                return SeqVerdict::Duplicate;
            }
            self.history |= bit;
            self.received += 1;
            let ext = self.max - i64::from(back);
            self.base = self.base.min(ext);
            return SeqVerdict::Fresh { ext, newest: false };
        }
        if self.bad_seq == Some(seq) {
            SeqVerdict::Restart
        } else {
            self.bad_seq = Some(seq.wrapping_add(1));
            SeqVerdict::JumpPending
        }
    }

    /// Packets expected but never received so far (RFC 3550 A.3, late ones count as received).
    pub(crate) fn lost(&self) -> u64 {
        let expected = u64::try_from(self.max - self.base + 1).unwrap_or(0);
        expected.saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_with_wrap() {
        let mut s = SeqState::new(65534);
        assert_eq!(
            s.classify(65535),
            SeqVerdict::Fresh {
                ext: 65535,
                newest: true
            }
        );
        assert_eq!(
            s.classify(0),
            SeqVerdict::Fresh {
                ext: 65536,
                newest: true
            }
        );
        assert_eq!(
            s.classify(2),
            SeqVerdict::Fresh {
                ext: 65538,
                newest: true
            }
        );
        assert_eq!(s.lost(), 1);
        // The missing one arrives late, across the wrap.
        assert_eq!(
            s.classify(1),
            SeqVerdict::Fresh {
                ext: 65537,
                newest: false
            }
        );
        assert_eq!(s.lost(), 0);
        assert_eq!(s.classify(1), SeqVerdict::Duplicate);
        assert_eq!(s.classify(2), SeqVerdict::Duplicate);
        assert_eq!(s.classify(65535), SeqVerdict::Duplicate);
    }

    #[test]
    fn reorder_before_the_first_packet_moves_the_base() {
        let mut s = SeqState::new(10);
        assert_eq!(
            s.classify(9),
            SeqVerdict::Fresh {
                ext: 9,
                newest: false
            }
        );
        assert_eq!(s.first(), 9);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn large_jump_needs_confirmation() {
        let mut s = SeqState::new(100);
        assert_eq!(s.classify(40000), SeqVerdict::JumpPending);
        assert_eq!(
            s.classify(101),
            SeqVerdict::Fresh {
                ext: 101,
                newest: true
            }
        );
        assert_eq!(s.classify(40000), SeqVerdict::JumpPending);
        assert_eq!(s.classify(40001), SeqVerdict::Restart);
        // Too old to be reordering: also a (pending) jump, never a panic.
        let mut s = SeqState::new(5000);
        assert_eq!(s.classify(4000), SeqVerdict::JumpPending);
    }

    #[test]
    fn long_gap_clears_history() {
        let mut s = SeqState::new(0);
        assert_eq!(
            s.classify(2000),
            SeqVerdict::Fresh {
                ext: 2000,
                newest: true
            }
        );
        assert_eq!(s.lost(), 1999);
        assert_eq!(
            s.classify(1990),
            SeqVerdict::Fresh {
                ext: 1990,
                newest: false
            }
        );
    }
}
