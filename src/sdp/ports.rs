//! The RTP port pool: even RTP ports, RTCP on port+1.

use std::collections::VecDeque;

/// Even ports from a range, handed out so that port+1 (RTCP) is inside the range too.
#[derive(Debug, Clone)]
pub struct PortPool {
    /// First even port of the range; slot `i` is port `base + 2 * i`.
    base: u16,
    /// Free slots, oldest-freed first: allocation takes the front and release pushes to the
    /// back, which gives round-robin reuse.
    free: VecDeque<u16>,
    /// Allocation state per slot, so that a double or foreign release is detected in O(1).
    allocated: Vec<bool>,
}

impl PortPool {
    /// `min..=max`; odd `min` is rounded up. Ports are handed out round-robin so a freed
    /// port is not reused at once (late packets of an old call must not land in a new one).
    pub fn new(min: u16, max: u16) -> Self {
        // Port 0 means "stream declined" in SDP, so it can never be handed out.
        let mut first = u32::from(min.max(2));
        if first % 2 == 1 {
            first += 1;
        }
        let max = u32::from(max);
        // Slots are even ports p with p + 1 <= max.
        let slots = if first < max {
            (max - first).div_ceil(2)
        } else {
            0
        };
        let base = u16::try_from(first).unwrap_or(0);
        let slots = u16::try_from(slots).unwrap_or(0);
        PortPool {
            base,
            free: (0..slots).collect(),
            allocated: vec![false; usize::from(slots)],
        }
    }

    /// An even RTP port (RTCP = port+1 is reserved with it), or `None` when exhausted.
    pub fn allocate(&mut self) -> Option<u16> {
        let slot = self.free.pop_front()?;
        // Free slots always index `allocated`; `get_mut` keeps even a broken invariant panic-free.
        if let Some(taken) = self.allocated.get_mut(usize::from(slot)) {
            *taken = true;
        }
        // slot < capacity, so base + 2 * slot <= max - 1: no overflow.
        Some(self.base + 2 * slot)
    }

    /// Give a port back. Releasing a port that is not allocated is a no-op.
    pub fn release(&mut self, port: u16) {
        let Some(slot) = self.slot_of(port) else {
            return;
        };
        if let Some(taken) = self.allocated.get_mut(usize::from(slot)) {
            if *taken {
                *taken = false;
                self.free.push_back(slot);
            }
        }
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn capacity(&self) -> usize {
        self.allocated.len()
    }

    /// Whether `port` is currently handed out.
    pub fn is_allocated(&self, port: u16) -> bool {
        self.slot_of(port)
            .and_then(|slot| self.allocated.get(usize::from(slot)).copied())
            .unwrap_or(false)
    }

    fn slot_of(&self, port: u16) -> Option<u16> {
        let offset = port.checked_sub(self.base)?;
        if offset % 2 != 0 {
            return None;
        }
        let slot = offset / 2;
        (usize::from(slot) < self.allocated.len()).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_with_rtcp_inside_range() {
        let mut pool = PortPool::new(20001, 20010);
        // 20002, 20004, 20006, 20008 (20010 has no room for RTCP 20011).
        assert_eq!(pool.capacity(), 4);
        let ports: Vec<u16> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(ports, vec![20002, 20004, 20006, 20008]);
        assert_eq!(pool.available(), 0);
    }

    #[test]
    fn inclusive_max_odd() {
        let pool = PortPool::new(20000, 20011);
        assert_eq!(pool.capacity(), 6);
    }

    #[test]
    fn exhaustion_and_reuse_round_robin() {
        let mut pool = PortPool::new(10000, 10005);
        assert_eq!(pool.capacity(), 3);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a, b), (10000, 10002));
        pool.release(a);
        // The freed port goes to the back: the never-used one comes first.
        assert_eq!(pool.allocate(), Some(10004));
        assert_eq!(pool.allocate(), Some(10000));
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.available(), 0);
    }

    #[test]
    fn double_and_foreign_release_are_noops() {
        let mut pool = PortPool::new(10000, 10009);
        let p = pool.allocate().unwrap();
        pool.release(p);
        pool.release(p);
        assert_eq!(pool.available(), pool.capacity());
        pool.release(10001); // odd
        pool.release(9998); // below range
        pool.release(10010); // above range
        pool.release(10004); // in range, never allocated
        assert_eq!(pool.available(), pool.capacity());
        // No duplicates in the free ring: capacity allocations, then exhaustion.
        for _ in 0..pool.capacity() {
            assert!(pool.allocate().is_some());
        }
        assert_eq!(pool.allocate(), None);
    }

    #[test]
    fn degenerate_ranges() {
        assert_eq!(PortPool::new(30000, 20000).capacity(), 0);
        assert_eq!(PortPool::new(20000, 20000).capacity(), 0);
        assert_eq!(PortPool::new(20000, 20001).capacity(), 1);
        let mut top = PortPool::new(65534, 65535);
        assert_eq!(top.allocate(), Some(65534));
        assert_eq!(PortPool::new(65535, 65535).capacity(), 0);
        // Port 0 is never handed out.
        let mut low = PortPool::new(0, 5);
        assert_eq!(low.allocate(), Some(2));
        assert_eq!(low.capacity(), 2);
        let full = PortPool::new(0, u16::MAX);
        assert_eq!(full.capacity(), 32767);
    }

    #[test]
    fn is_allocated_tracks_state() {
        let mut pool = PortPool::new(20000, 20003);
        let p = pool.allocate().unwrap();
        assert!(pool.is_allocated(p));
        assert!(!pool.is_allocated(p + 2));
        pool.release(p);
        assert!(!pool.is_allocated(p));
    }
}
