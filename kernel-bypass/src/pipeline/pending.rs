//! Packets waiting for neighbour resolution (ARP for IPv4, Neighbour
//! Discovery for IPv6): a bounded, preallocated queue per worker.
//! Each round, waiting packets whose neighbour got resolved are released
//! into the generated batch, due ARP requests or neighbour solicitations are
//! emitted, and packets that waited too long are dropped. Neighbours in use
//! whose entries near expiry are requested again while their entry still
//! serves traffic.

use super::{Generated, Stage, ARP_REFRESH_SECS};
use crate::counters::Counter;
use crate::frame::{Batch, MAX_FRAME};
use crate::snapshot::{IfaceId, Snapshot};
use crate::wire::{write_arp, ARP_PACKET, ARP_REQUEST};
use std::net::{IpAddr, Ipv4Addr};

/// Packets one worker keeps waiting for resolution.
const CAPACITY: usize = 64;
/// Neighbours one worker refreshes at the same time.
const REFRESH_CAPACITY: usize = 16;
/// Requests for one neighbour are repeated this often (ms)...
const RETRY_MS: u64 = 1000;
/// ...until its waiting packets are dropped (ms).
const GIVE_UP_MS: u64 = 3000;

struct Waiting {
    used: bool,
    iface: IfaceId,
    next_hop: IpAddr,
    since_ms: u64,
    requested_ms: Option<u64>,
    len: usize,
    bytes: Box<[u8; MAX_FRAME]>,
}

/// A neighbour in use whose entry is old enough to be asked again.
#[derive(Clone, Copy)]
struct Refresh {
    iface: IfaceId,
    next_hop: IpAddr,
    requested_ms: Option<u64>,
}

pub(super) struct Pending {
    slots: Box<[Waiting]>,
    refreshing: [Option<Refresh>; REFRESH_CAPACITY],
}

impl Pending {
    pub(super) fn new() -> Pending {
        Pending {
            slots: (0..CAPACITY)
                .map(|_| Waiting {
                    used: false,
                    iface: 0,
                    next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    since_ms: 0,
                    requested_ms: None,
                    len: 0,
                    bytes: Box::new([0; MAX_FRAME]),
                })
                .collect(),
            refreshing: [None; REFRESH_CAPACITY],
        }
    }

    /// Notes that an old entry is in use; the next round re-requests it.
    pub(super) fn refresh(&mut self, iface: IfaceId, next_hop: IpAddr) {
        let same = |r: &Option<Refresh>| matches!(r, Some(r) if r.iface == iface && r.next_hop == next_hop);
        if self.refreshing.iter().any(same) {
            return;
        }
        if let Some(free) = self.refreshing.iter_mut().find(|r| r.is_none()) {
            *free = Some(Refresh {
                iface,
                next_hop,
                requested_ms: None,
            });
        }
    }

    /// Copies a packet into a free slot; false when all are taken.
    pub(super) fn park(
        &mut self,
        iface: IfaceId,
        next_hop: IpAddr,
        packet: &[u8],
        now_ms: u64,
    ) -> bool {
        let Some(slot) = self.slots.iter_mut().find(|s| !s.used) else {
            return false;
        };
        let len = packet.len().min(MAX_FRAME);
        slot.bytes[..len].copy_from_slice(&packet[..len]);
        slot.used = true;
        slot.iface = iface;
        slot.next_hop = next_hop;
        slot.since_ms = now_ms;
        slot.requested_ms = None;
        slot.len = len;
        true
    }
}

impl Stage {
    /// Releases, re-requests or expires waiting packets (see module doc).
    pub(super) fn service_pending(
        &mut self,
        snap: &Snapshot,
        generated: &mut Batch,
        kinds: &mut Vec<Generated>,
    ) {
        for i in 0..self.pending.slots.len() {
            let slot = &self.pending.slots[i];
            if !slot.used {
                continue;
            }
            let (iface, next_hop) = (slot.iface, slot.next_hop);
            if self
                .shared
                .neighbor(iface, next_hop, self.now_secs)
                .is_some()
            {
                if !generated.push_copy(&slot.bytes[..slot.len]) {
                    // No room this round: try again next round.
                    continue;
                }
                kinds.push(Generated::Released(iface));
                self.counters.event(Counter::NeighborReleased);
                self.pending.slots[i].used = false;
            } else if self.now_ms.saturating_sub(slot.since_ms) > GIVE_UP_MS {
                self.counters.on_interface(iface, Counter::NeighborTimeout);
                if generated.push_copy(&slot.bytes[..slot.len]) {
                    kinds.push(Generated::Unresolved(iface));
                }
                self.pending.slots[i].used = false;
            } else if slot
                .requested_ms
                .is_none_or(|t| self.now_ms.saturating_sub(t) >= RETRY_MS)
            {
                self.request(snap, iface, next_hop, generated, kinds);
            }
        }
    }

    /// Re-requests old neighbours in use until a reply renews them (or they
    /// expire and ordinary resolution takes over).
    pub(super) fn service_refresh(
        &mut self,
        snap: &Snapshot,
        generated: &mut Batch,
        kinds: &mut Vec<Generated>,
    ) {
        for i in 0..REFRESH_CAPACITY {
            let Some(r) = self.pending.refreshing[i] else {
                continue;
            };
            let renewed = match self.shared.neighbor(r.iface, r.next_hop, self.now_secs) {
                Some((_, age)) => age < ARP_REFRESH_SECS,
                None => true,
            };
            if renewed {
                self.pending.refreshing[i] = None;
            } else if r
                .requested_ms
                .is_none_or(|t| self.now_ms.saturating_sub(t) >= RETRY_MS)
            {
                self.request(snap, r.iface, r.next_hop, generated, kinds);
                self.pending.refreshing[i] = Some(Refresh {
                    requested_ms: Some(self.now_ms),
                    ..r
                });
            }
        }
    }

    /// Emits one ARP request or neighbour solicitation and marks every
    /// packet waiting for the same neighbour as requested.
    fn request(
        &mut self,
        snap: &Snapshot,
        iface: IfaceId,
        next_hop: IpAddr,
        generated: &mut Batch,
        kinds: &mut Vec<Generated>,
    ) {
        let Some(out) = snap.interface(iface) else {
            return;
        };
        let Some(f) = generated.next_free() else {
            return;
        };
        match next_hop {
            IpAddr::V4(next_hop) => {
                let Some(own) = out.source_for(next_hop) else {
                    return;
                };
                write_arp(
                    f.reset(ARP_PACKET),
                    ARP_REQUEST,
                    (&out.mac, own),
                    (&[0; 6], next_hop),
                );
                kinds.push(Generated::ArpRequest(iface));
                self.counters.event(Counter::ArpRequestSent);
            }
            IpAddr::V6(next_hop) => {
                super::nd::write_solicitation(f, out, next_hop);
                kinds.push(Generated::NeighborSolicit(iface));
                self.counters.event(Counter::NdSolicitSent);
            }
        }
        generated.push_filled();
        for s in self.pending.slots.iter_mut() {
            if s.used && s.iface == iface && s.next_hop == next_hop {
                s.requested_ms = Some(self.now_ms);
            }
        }
    }
}
