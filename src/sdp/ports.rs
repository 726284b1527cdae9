//! The RTP port pool: even RTP ports, RTCP on port+1.

/// Even ports from a range, handed out so that port+1 (RTCP) is inside the range too.
#[derive(Debug, Clone)]
pub struct PortPool {
    _private: (),
}

impl PortPool {
    /// `min..=max`; odd `min` is rounded up. Ports are handed out round-robin so a freed
    /// port is not reused at once (late packets of an old call must not land in a new one).
    pub fn new(min: u16, max: u16) -> Self {
        todo!("{min} {max}")
    }
    /// An even RTP port (RTCP = port+1 is reserved with it), or `None` when exhausted.
    pub fn allocate(&mut self) -> Option<u16> {
        todo!()
    }
    /// Give a port back. Releasing a port that is not allocated is a no-op.
    pub fn release(&mut self, port: u16) {
        todo!("{port}")
    }
    pub fn available(&self) -> usize {
        todo!()
    }
    pub fn capacity(&self) -> usize {
        todo!()
    }
}
