//! A bounded queue of packets between the dataplane worker and the local
//! stack's driver. Every buffer is allocated when the queue is built; pushing
//! and popping only move buffers between a free list and a FIFO, so no packet
//! ever allocates.

use crate::snapshot::VrfId;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// One packet: a buffer of the queue's slot size, how much of it is used,
/// and the routing table it came from or goes to.
pub struct PacketBuf {
    bytes: Box<[u8]>,
    len: usize,
    vrf: VrfId,
}

impl PacketBuf {
    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn vrf(&self) -> VrfId {
        self.vrf
    }
}

struct Slots {
    filled: VecDeque<PacketBuf>,
    free: Vec<PacketBuf>,
}

/// A bounded FIFO of packets backed by preallocated buffers.
pub struct PacketQueue {
    slots: Mutex<Slots>,
    slot_size: usize,
}

impl PacketQueue {
    /// A queue holding up to `capacity` packets of at most `slot_size` bytes.
    pub fn new(capacity: usize, slot_size: usize) -> PacketQueue {
        let free = (0..capacity)
            .map(|_| PacketBuf {
                bytes: vec![0; slot_size].into_boxed_slice(),
                len: 0,
                vrf: 0,
            })
            .collect();
        PacketQueue {
            slots: Mutex::new(Slots {
                filled: VecDeque::with_capacity(capacity),
                free,
            }),
            slot_size,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // A panic elsewhere while holding the lock leaves the lists consistent
        // (each operation is a single move), so a poisoned lock is still usable.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copies `packet` of table `vrf` into a free buffer and appends it.
    /// Returns `None` when the queue is full or the packet is larger than a
    /// slot; otherwise whether the queue was empty before (so the caller
    /// knows to wake the consumer).
    pub fn push(&self, packet: &[u8], vrf: VrfId) -> Option<bool> {
        let fill = |buf: &mut [u8]| buf.copy_from_slice(packet);
        self.push_with(packet.len(), fill, |_| Some(vrf))
            .ok()
            .map(|((), was_empty)| was_empty)
    }

    /// Like `push`, but lets `fill` write the `len` packet bytes in place,
    /// then `table` say which table the packet goes to (it may rewrite it;
    /// None drops it); `fill`'s result comes back with the was-empty flag.
    /// When the packet cannot be queued, `fill` is handed back uncalled.
    pub fn push_with<R, F: FnOnce(&mut [u8]) -> R>(
        &self,
        len: usize,
        fill: F,
        table: impl FnOnce(&mut [u8]) -> Option<VrfId>,
    ) -> Result<(R, bool), F> {
        if len > self.slot_size {
            return Err(fill);
        }
        let mut slots = self.lock();
        let Some(mut buf) = slots.free.pop() else {
            return Err(fill);
        };
        buf.len = len;
        let result = fill(&mut buf.bytes[..len]);
        let Some(vrf) = table(&mut buf.bytes[..len]) else {
            slots.free.push(buf);
            return Ok((result, false));
        };
        buf.vrf = vrf;
        let was_empty = slots.filled.is_empty();
        slots.filled.push_back(buf);
        Ok((result, was_empty))
    }

    /// Takes the oldest packet; hand it back with `recycle` once consumed.
    pub fn pop(&self) -> Option<PacketBuf> {
        self.lock().filled.pop_front()
    }

    /// Returns a buffer taken with `pop` to the free list.
    pub fn recycle(&self, buf: PacketBuf) {
        self.lock().free.push(buf);
    }

    /// Whether a packet is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().filled.is_empty()
    }

    /// Whether a packet could be pushed right now.
    pub fn has_room(&self) -> bool {
        !self.lock().free.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_bounds() {
        let queue = PacketQueue::new(2, 4);
        assert_eq!(queue.push(&[1], 0), Some(true));
        assert_eq!(queue.push(&[2, 2], 3), Some(false));
        assert_eq!(queue.push(&[3], 0), None, "full queue refuses");
        let first = queue.pop().unwrap();
        assert_eq!(first.data(), &[1]);
        queue.recycle(first);
        assert_eq!(queue.push(&[4, 4, 4, 4, 4], 0), None, "oversized refused");
        assert_eq!(queue.push(&[4], 0), Some(false));
        let second = queue.pop().unwrap();
        assert_eq!((second.data(), second.vrf()), (&[2, 2][..], 3));
        assert_eq!(queue.pop().unwrap().data(), &[4]);
        assert!(queue.pop().is_none());
        assert!(queue.is_empty());
    }
}
