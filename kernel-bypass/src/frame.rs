//! Packet buffers and batches: preallocated once, reused for every packet.
//!
//! A `Frame` keeps headroom in front of the packet so that encapsulation
//! (VLAN tag, VXLAN outer headers) can prepend bytes without copying.

/// Bytes reserved in front of a received frame for headers pushed later.
pub const HEADROOM: usize = 128;
/// Largest frame a buffer holds after the headroom (MTU 9000 is not supported yet).
pub const MAX_FRAME: usize = 2048 - HEADROOM;
/// Default number of frames per batch.
pub const BATCH_SIZE: usize = 256;

/// One packet buffer.
pub struct Frame {
    buf: [u8; HEADROOM + MAX_FRAME],
    start: usize,
    len: usize,
    /// Index of the port the frame arrived on.
    pub port: u16,
}

impl Frame {
    fn new() -> Frame {
        Frame {
            buf: [0; HEADROOM + MAX_FRAME],
            start: HEADROOM,
            len: 0,
            port: 0,
        }
    }

    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Resets the frame to `len` bytes after the headroom and returns them
    /// for an I/O backend to fill. `len` is clamped to `MAX_FRAME`.
    pub fn reset(&mut self, len: usize) -> &mut [u8] {
        self.start = HEADROOM;
        self.len = len.min(MAX_FRAME);
        self.data_mut()
    }

    /// Replaces the contents with a copy of `bytes`; returns false (and leaves
    /// the frame empty) if they do not fit.
    pub fn fill_from(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > MAX_FRAME {
            self.reset(0);
            return false;
        }
        self.reset(bytes.len()).copy_from_slice(bytes);
        true
    }

    /// Grows the packet by `n` bytes at the front (for pushed headers) and
    /// returns the new front, or None if the headroom is exhausted.
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        self.len += n;
        Some(&mut self.buf[self.start..self.start + n])
    }

    /// Removes `n` bytes from the front (for popped headers); false if the
    /// packet is shorter than `n`.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Shortens the packet to `len` bytes (for trailing padding).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// A fixed set of frames allocated once; `len` of them hold packets.
pub struct Batch {
    frames: Box<[Frame]>,
    len: usize,
}

impl Batch {
    /// Allocates `capacity` frames up front (the only allocation a batch makes).
    pub fn new(capacity: usize) -> Batch {
        Batch {
            frames: (0..capacity).map(|_| Frame::new()).collect(),
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.frames.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.frames.len()
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The next free frame, to be filled and then committed with `push_filled`.
    pub fn next_free(&mut self) -> Option<&mut Frame> {
        self.frames.get_mut(self.len)
    }

    /// Counts the frame returned by `next_free` as holding a packet.
    pub fn push_filled(&mut self) {
        debug_assert!(self.len < self.frames.len());
        self.len += 1;
    }

    /// Copies `bytes` into the next free frame and counts it; false when the
    /// batch is full or the bytes do not fit a frame.
    pub fn push_copy(&mut self, bytes: &[u8]) -> bool {
        match self.next_free() {
            Some(f) if bytes.len() <= MAX_FRAME => {
                f.fill_from(bytes);
                self.push_filled();
                true
            }
            _ => false,
        }
    }

    pub fn frames(&self) -> &[Frame] {
        &self.frames[..self.len]
    }

    pub fn frames_mut(&mut self) -> &mut [Frame] {
        &mut self.frames[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_headers_within_headroom() {
        let mut batch = Batch::new(2);
        let f = batch.next_free().unwrap();
        assert!(f.fill_from(&[1, 2, 3]));
        f.push_front(2).unwrap().copy_from_slice(&[8, 9]);
        assert_eq!(f.data(), &[8, 9, 1, 2, 3]);
        assert!(f.pull_front(2));
        assert_eq!(f.data(), &[1, 2, 3]);
        assert!(f.push_front(HEADROOM + 1).is_none());
        assert!(!f.pull_front(4));
        batch.push_filled();
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn oversized_fill_is_refused() {
        let mut batch = Batch::new(1);
        let f = batch.next_free().unwrap();
        assert!(!f.fill_from(&vec![0u8; MAX_FRAME + 1]));
        assert!(f.is_empty());
    }
}
