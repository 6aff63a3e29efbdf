//! The translation table: one record per translated flow (inside endpoint,
//! public endpoint, remote endpoint), found from either side.
//!
//! Design: translation leaves one endpoint of a flow alone, the remote
//! one, and both directions of the flow carry it; and a public port is
//! always given in the class (remainder modulo [`PORT_CLASSES`]) of the
//! inside port it stands for (`mappings`), so the inside-to-outside
//! direction knows the class from the inside port and the other from the
//! public port. The table is cut into shards by the remote endpoint's hash
//! plus that class: both lookups of one flow take the same shard's lock,
//! whichever worker receives them, a record and its two index entries live
//! under that one lock, and the flows of many hosts to one busy server
//! still spread over every shard. A shard is a slab of 32-byte records
//! and an open-addressing index (linear probing, backward-shift deletion)
//! of 20-byte entries, two per record, kept at most three quarters full.
//!
//! Timeouts are the session table's (`ip inspect`), by the same TCP
//! states. Expiry never stops the world: a lookup that finds an expired
//! record removes it, and every creation sweeps a few records of its
//! shard. Records give their public endpoint back through the caller
//! (`Released`), outside the shard's lock.
//!
//! One table holds one address family (`Address`): an IPv4 table's
//! records and index entries are the sizes above, an IPv6 one's wider.

use super::address::{Address, Endpoint, Packed};
use crate::open_table::{mix64 as mix, Entry, OpenTable, Sharded, SHARDS};
use crate::sessions::{Adopted, TcpState, Timeouts};
use crate::snapshot::VrfId;
use crate::wire::{PROTO_TCP, PROTO_UDP};
use std::net::Ipv4Addr;
use std::sync::MutexGuard;

/// Ports are given in the class of the port they stand for: one class per
/// shard.
pub const PORT_CLASSES: usize = SHARDS;
/// Records a creation sweeps for expired ones, and when the shard is full.
const SWEEP: usize = 4;
const SWEEP_FULL: usize = 256;

/// Which side a lookup comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Side {
    /// Keyed by the inside endpoint (inside-to-outside packets).
    Inside = 1,
    /// Keyed by the public endpoint (outside-to-inside packets).
    Outside = 2,
}

/// What an index entry is found by: 16 bytes (IPv4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Key<P> {
    local: P,
    remote: P,
    local_port: u16,
    remote_port: u16,
    vrf: VrfId,
    protocol: u8,
    /// 0 for an empty index slot, else a `Side`.
    side: u8,
}

impl<P: Packed> Key<P> {
    fn hash(&self) -> u64 {
        let a = self.local.fold().rotate_left(32) ^ self.remote.fold();
        let b = u64::from(self.local_port) << 48
            | u64::from(self.remote_port) << 32
            | u64::from(self.vrf) << 16
            | u64::from(self.protocol) << 8
            | u64::from(self.side);
        mix(a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b)
    }
}

/// The shard of a flow, from what both directions know: the remote
/// endpoint, and the class of the inside port (= of the public port).
fn shard_of<A: Address>(remote: Endpoint<A>, protocol: u8, port: u16) -> usize {
    let h =
        mix(remote.addr.fold().rotate_left(24) ^ u64::from(remote.port) << 8 | u64::from(protocol));
    ((h >> 58) as usize + usize::from(port) % PORT_CLASSES) % SHARDS
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct IndexSlot<P> {
    key: Key<P>,
    record: u32,
}

const _: () = assert!(std::mem::size_of::<IndexSlot<u32>>() == 20);

impl<P: Packed> Entry for IndexSlot<P> {
    fn is_used(&self) -> bool {
        self.key.side != 0
    }

    fn hash(&self) -> u64 {
        self.key.hash()
    }

    // Small entries: memory is within bounds either way, rehashing is not.
    const GROWTH: (usize, usize) = (2, 1);
}

// Bits of `Record::state`.
const USED: u8 = 0x80;
/// The flow was opened from the outside (a static translation's).
const FROM_OUTSIDE: u8 = 0x40;
/// Adopted from the HA peer (`crate::state_sync`) and not yet seen here:
/// the peer owns it, so this box does not send it back.
const ADOPTED: u8 = 0x20;

/// One translated flow: 32 bytes (IPv4).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Record<P> {
    inside: P,
    public: P,
    remote: P,
    inside_port: u16,
    public_port: u16,
    remote_port: u16,
    inside_vrf: VrfId,
    outside_vrf: VrfId,
    protocol: u8,
    state: u8,
    last_seen: u32,
    created: u32,
}

const _: () = assert!(std::mem::size_of::<Record<u32>>() == 32);

impl<P: Packed> Record<P> {
    fn used(&self) -> bool {
        self.state & USED != 0
    }

    fn key(&self, side: Side) -> Key<P> {
        let (local, local_port, vrf) = match side {
            Side::Inside => (self.inside, self.inside_port, self.inside_vrf),
            Side::Outside => (self.public, self.public_port, self.outside_vrf),
        };
        Key {
            local,
            remote: self.remote,
            local_port,
            remote_port: self.remote_port,
            vrf,
            protocol: self.protocol,
            side: side as u8,
        }
    }

    fn tcp(&self) -> TcpState {
        TcpState::from_bits(self.state)
    }

    fn expired(&self, now: u32, t: &Timeouts) -> bool {
        let timeout = match self.protocol {
            PROTO_TCP => t.tcp(self.tcp()),
            PROTO_UDP => t.udp_idle,
            _ => t.icmp_idle,
        };
        now.saturating_sub(self.last_seen) > timeout
    }

    /// Follows a packet: TCP state, time.
    fn touch(&mut self, tcp: u8, from_inside: bool, now: u32) {
        self.state &= !ADOPTED;
        if self.protocol == PROTO_TCP {
            let from_initiator = from_inside == (self.state & FROM_OUTSIDE == 0);
            let next = self.tcp().follow(tcp, from_initiator);
            self.state = self.state & !0x7 | next as u8;
        }
        self.last_seen = now;
    }

    fn released<A: Address<Packed = P>>(&self) -> Released<A> {
        Released {
            inside_vrf: self.inside_vrf,
            protocol: self.protocol,
            inside: Endpoint::new(A::unpack(self.inside), self.inside_port),
            public: Endpoint::new(A::unpack(self.public), self.public_port),
            from_outside: self.state & FROM_OUTSIDE != 0,
        }
    }
}

/// A removed record's ends, for the caller to give its mapping back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released<A = Ipv4Addr> {
    pub inside_vrf: VrfId,
    pub protocol: u8,
    pub inside: Endpoint<A>,
    pub public: Endpoint<A>,
    pub from_outside: bool,
}

/// A translation to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation<A = Ipv4Addr> {
    pub protocol: u8,
    pub inside_vrf: VrfId,
    pub outside_vrf: VrfId,
    pub inside: Endpoint<A>,
    pub public: Endpoint<A>,
    pub remote: Endpoint<A>,
    /// Opened by the remote end (through a static translation).
    pub from_outside: bool,
}

/// A translation as `show ip nat translations` lists it.
#[derive(Clone, Debug)]
pub struct TranslationInfo<A = Ipv4Addr> {
    pub translation: Translation<A>,
    pub tcp: Option<TcpState>,
    pub age_secs: u32,
    pub idle_secs: u32,
}

/// Why a translation was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

struct Shard<A: Address> {
    index: OpenTable<IndexSlot<A::Packed>>,
    records: Vec<Record<A::Packed>>,
    free: Vec<u32>,
    sweep_at: usize,
}

impl<A: Address> Default for Shard<A> {
    fn default() -> Self {
        Shard {
            index: OpenTable::default(),
            records: Vec::new(),
            free: Vec::new(),
            sweep_at: 0,
        }
    }
}

pub struct TranslationTable<A: Address = Ipv4Addr> {
    shards: Sharded<Shard<A>>,
    /// Shard by the port class too (source NAT, where public ports keep
    /// it); a load balancer's table, whose public end is a virtual
    /// server's one port, shards by the remote (client) endpoint alone.
    by_port_class: bool,
}

impl<A: Address> TranslationTable<A> {
    /// A table whose public ports are in their inside port's class.
    pub fn new(max: usize) -> TranslationTable<A> {
        TranslationTable {
            shards: Sharded::new(max),
            by_port_class: true,
        }
    }

    /// A table sharded by the remote endpoint alone.
    pub fn by_remote(max: usize) -> TranslationTable<A> {
        TranslationTable {
            shards: Sharded::new(max),
            by_port_class: false,
        }
    }

    /// The shard of a flow from its remote end and one of its other ports.
    fn shard_at(&self, remote: Endpoint<A>, protocol: u8, port: u16) -> usize {
        let port = if self.by_port_class { port } else { 0 };
        shard_of(remote, protocol, port)
    }

    fn shard(&self, remote: Endpoint<A>, protocol: u8, port: u16) -> MutexGuard<'_, Shard<A>> {
        self.lock(self.shard_at(remote, protocol, port))
    }

    /// Warms the index slot where the lookup of a flow between `local` (the
    /// inside endpoint when `from_inside`, else the public one) and
    /// `remote` starts.
    pub fn prefetch(
        &self,
        from_inside: bool,
        (protocol, vrf): (u8, VrfId),
        local: Endpoint<A>,
        remote: Endpoint<A>,
    ) {
        let side = if from_inside {
            Side::Inside
        } else {
            Side::Outside
        };
        let hash = key(side, protocol, vrf, local, remote).hash();
        let at = self.shard_at(remote, protocol, local.port);
        self.shards.prefetch::<IndexSlot<A::Packed>>(at, hash);
    }

    pub fn set_max(&self, max: usize) {
        self.shards.set_max(max);
    }

    pub fn max(&self) -> usize {
        self.shards.max()
    }

    fn lock(&self, at: usize) -> MutexGuard<'_, Shard<A>> {
        self.shards.lock(at)
    }

    /// The public endpoint of an inside-to-outside packet's flow, following
    /// its TCP flags; `released` gets a record found expired.
    pub fn outbound(
        &self,
        (protocol, vrf): (u8, VrfId),
        inside: Endpoint<A>,
        remote: Endpoint<A>,
        tcp: u8,
        (now, t): (u32, &Timeouts),
        released: &mut Option<Released<A>>,
    ) -> Option<Endpoint<A>> {
        let key = key(Side::Inside, protocol, vrf, inside, remote);
        let mut shard = self.shard(remote, protocol, inside.port);
        let record = shard.follow(&key, tcp, true, (now, t), released)?;
        Some(Endpoint::new(A::unpack(record.public), record.public_port))
    }

    /// The inside endpoint and VRF of an outside-to-inside packet's flow.
    pub fn inbound(
        &self,
        (protocol, vrf): (u8, VrfId),
        public: Endpoint<A>,
        remote: Endpoint<A>,
        tcp: u8,
        (now, t): (u32, &Timeouts),
        released: &mut Option<Released<A>>,
    ) -> Option<(Endpoint<A>, VrfId)> {
        let key = key(Side::Outside, protocol, vrf, public, remote);
        let mut shard = self.shard(remote, protocol, public.port);
        let record = shard.follow(&key, tcp, false, (now, t), released)?;
        let inside = Endpoint::new(A::unpack(record.inside), record.inside_port);
        Some((inside, record.inside_vrf))
    }

    /// Adds a translation (its opening packet already counted); Ok also
    /// when another worker added the same one meanwhile. Records the sweep
    /// removed go to `released`. The public port must be in the inside
    /// port's class (or the inbound lookup would search another shard).
    pub fn create(
        &self,
        tr: &Translation<A>,
        times: (u32, &Timeouts),
        released: &mut Vec<Released<A>>,
    ) -> Result<(), Full> {
        (self.insert(tr, TcpState::SynSent as u8, times, released)).map(|_| ())
    }

    /// Takes in a translation the HA peer holds, or refreshes one adopted
    /// before; one this box made itself stays as it is.
    pub fn adopt(
        &self,
        tr: &Translation<A>,
        tcp: TcpState,
        times: (u32, &Timeouts),
        released: &mut Vec<Released<A>>,
    ) -> Result<Adopted, Full> {
        self.insert(tr, ADOPTED | tcp as u8, times, released)
    }

    /// Calls `f` with each live translation of shard `at` that this box
    /// made or has seen traffic of (not only adopted from its peer), and
    /// its TCP state.
    pub fn own_in_shard(
        &self,
        at: usize,
        (now, t): (u32, &Timeouts),
        f: &mut dyn FnMut(&Translation<A>, TcpState),
    ) {
        let shard = self.lock(at);
        let own = (shard.records.iter())
            .filter(|r| r.used() && r.state & ADOPTED == 0 && !r.expired(now, t));
        for r in own {
            f(&translation(r), r.tcp());
        }
    }

    fn insert(
        &self,
        tr: &Translation<A>,
        state: u8,
        (now, t): (u32, &Timeouts),
        released: &mut Vec<Released<A>>,
    ) -> Result<Adopted, Full> {
        debug_assert!(
            !self.by_port_class
                || usize::from(tr.inside.port) % PORT_CLASSES
                    == usize::from(tr.public.port) % PORT_CLASSES
        );
        let limit = self.shards.per_shard();
        let at = self.shard_at(tr.remote, tr.protocol, tr.inside.port);
        let mut shard = self.lock(at);
        let full = shard.live() >= limit;
        shard.sweep(if full { SWEEP_FULL } else { SWEEP }, (now, t), released);
        let record = Record {
            inside: tr.inside.addr.pack(),
            public: tr.public.addr.pack(),
            remote: tr.remote.addr.pack(),
            inside_port: tr.inside.port,
            public_port: tr.public.port,
            remote_port: tr.remote.port,
            inside_vrf: tr.inside_vrf,
            outside_vrf: tr.outside_vrf,
            protocol: tr.protocol,
            state: USED | state | if tr.from_outside { FROM_OUTSIDE } else { 0 },
            last_seen: now,
            created: now,
        };
        if let Some(found) = shard.find(&record.key(Side::Inside)) {
            let id = shard.index.slots()[found].record as usize;
            let kept = &mut shard.records[id];
            if kept.state & state & ADOPTED != 0 {
                kept.state = record.state;
                kept.last_seen = now;
            }
            return Ok(Adopted::Known);
        }
        if shard.live() >= limit {
            return Err(Full);
        }
        shard.add(record);
        self.shards.publish_index(at, &shard.index);
        Ok(Adopted::New)
    }

    /// Translations now held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards.sum(Shard::live)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the table holds now.
    pub fn memory_bytes(&self) -> usize {
        self.shards.sum(|shard| {
            shard.index.memory_bytes()
                + shard.records.capacity() * std::mem::size_of::<Record<A::Packed>>()
                + shard.free.capacity() * std::mem::size_of::<u32>()
        })
    }

    /// Removes the translations `doomed` accepts (all of them for `clear
    /// ip nat translation *`); their ends go to `released`.
    pub fn remove_where(
        &self,
        doomed: &dyn Fn(&Translation<A>) -> bool,
        released: &mut Vec<Released<A>>,
    ) {
        for s in 0..SHARDS {
            let mut shard = self.lock(s);
            for at in 0..shard.records.len() {
                let record = shard.records[at];
                if record.used() && doomed(&translation(&record)) {
                    released.push(shard.remove(at as u32));
                }
            }
        }
    }

    /// The live translations `keep` accepts, one shard locked at a time.
    pub fn translations(
        &self,
        (now, t): (u32, &Timeouts),
        keep: &dyn Fn(&Translation<A>) -> bool,
    ) -> Vec<TranslationInfo<A>> {
        let mut out = Vec::new();
        for s in 0..SHARDS {
            let shard = self.lock(s);
            let live = shard
                .records
                .iter()
                .filter(|r| r.used() && !r.expired(now, t));
            out.extend(
                live.map(|r| (translation(r), r))
                    .filter(|(tr, _)| keep(tr))
                    .map(|(translation, r)| TranslationInfo {
                        translation,
                        tcp: (r.protocol == PROTO_TCP).then(|| r.tcp()),
                        age_secs: now.saturating_sub(r.created),
                        idle_secs: now.saturating_sub(r.last_seen),
                    }),
            );
        }
        out
    }
}

fn key<A: Address>(
    side: Side,
    protocol: u8,
    vrf: VrfId,
    local: Endpoint<A>,
    remote: Endpoint<A>,
) -> Key<A::Packed> {
    Key {
        local: local.addr.pack(),
        remote: remote.addr.pack(),
        local_port: local.port,
        remote_port: remote.port,
        vrf,
        protocol,
        side: side as u8,
    }
}

fn translation<A: Address>(r: &Record<A::Packed>) -> Translation<A> {
    Translation {
        protocol: r.protocol,
        inside_vrf: r.inside_vrf,
        outside_vrf: r.outside_vrf,
        inside: Endpoint::new(A::unpack(r.inside), r.inside_port),
        public: Endpoint::new(A::unpack(r.public), r.public_port),
        remote: Endpoint::new(A::unpack(r.remote), r.remote_port),
        from_outside: r.state & FROM_OUTSIDE != 0,
    }
}

impl<A: Address> Shard<A> {
    fn live(&self) -> usize {
        self.records.len() - self.free.len()
    }

    fn find(&self, key: &Key<A::Packed>) -> Option<usize> {
        self.index.find(key.hash(), |slot| slot.key == *key)
    }

    /// The record `key` finds, updated by the packet; an expired one is
    /// removed and given to `released`.
    fn follow(
        &mut self,
        key: &Key<A::Packed>,
        tcp: u8,
        from_inside: bool,
        (now, t): (u32, &Timeouts),
        released: &mut Option<Released<A>>,
    ) -> Option<Record<A::Packed>> {
        let at = self.find(key)?;
        let id = self.index.slots()[at].record;
        let record = &mut self.records[id as usize];
        if record.expired(now, t) {
            *released = Some(self.remove(id));
            return None;
        }
        record.touch(tcp, from_inside, now);
        Some(*record)
    }

    fn add(&mut self, record: Record<A::Packed>) {
        let id = match self.free.pop() {
            Some(id) => {
                self.records[id as usize] = record;
                id
            }
            None => {
                self.records.push(record);
                (self.records.len() - 1) as u32
            }
        };
        for side in [Side::Inside, Side::Outside] {
            self.index.insert(IndexSlot {
                key: record.key(side),
                record: id,
            });
        }
    }

    /// Frees record `id` and both its index entries.
    fn remove(&mut self, id: u32) -> Released<A> {
        let record = self.records[id as usize];
        for side in [Side::Inside, Side::Outside] {
            if let Some(at) = self.find(&record.key(side)) {
                self.index.remove(at);
            }
        }
        self.records[id as usize] = Record::default();
        self.free.push(id);
        record.released()
    }

    /// Removes expired records among the next `count`.
    fn sweep(&mut self, count: usize, (now, t): (u32, &Timeouts), released: &mut Vec<Released<A>>) {
        for _ in 0..count.min(self.records.len()) {
            let at = self.sweep_at % self.records.len();
            self.sweep_at = at + 1;
            let record = self.records[at];
            if record.used() && record.expired(now, t) {
                released.push(self.remove(at as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PROTO_UDP;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const T: Timeouts = crate::sessions::TEST_TIMEOUTS;

    fn ep(a: &str, port: u16) -> Endpoint {
        Endpoint::new(a.parse().unwrap(), port)
    }

    fn udp(inside_port: u16, public_port: u16) -> Translation {
        Translation {
            protocol: PROTO_UDP,
            inside_vrf: 1,
            outside_vrf: 0,
            inside: ep("10.0.0.2", inside_port),
            public: ep("203.0.113.1", public_port),
            remote: ep("198.51.100.7", 53),
            from_outside: false,
        }
    }

    #[test]
    fn both_directions_find_the_translation_with_their_own_vrf() {
        let table = TranslationTable::new(1000);
        let tr = udp(5000, 5000 + 64 * 800);
        table.create(&tr, (0, &T), &mut Vec::new()).unwrap();
        let mut gone = None;
        let out = table.outbound((PROTO_UDP, 1), tr.inside, tr.remote, 0, (1, &T), &mut gone);
        assert_eq!(out, Some(tr.public));
        let back = table.inbound((PROTO_UDP, 0), tr.public, tr.remote, 0, (1, &T), &mut gone);
        assert_eq!(back, Some((tr.inside, 1)));
        assert_eq!(
            table.inbound((PROTO_UDP, 1), tr.public, tr.remote, 0, (1, &T), &mut gone),
            None
        );
        let other_remote = ep("198.51.100.8", 53);
        assert_eq!(
            table.inbound(
                (PROTO_UDP, 0),
                tr.public,
                other_remote,
                0,
                (1, &T),
                &mut gone
            ),
            None
        );
        assert_eq!(gone, None);
        assert_eq!(
            table.outbound((PROTO_UDP, 1), tr.inside, tr.remote, 0, (40, &T), &mut gone),
            None
        );
        assert_eq!(gone.map(|r| r.public), Some(tr.public), "expired, released");
        assert!(table.is_empty());
    }

    #[test]
    fn a_full_table_refuses_new_translations_and_keeps_the_old() {
        let table = TranslationTable::new(SHARDS);
        let mut kept = 0;
        for port in 1..2000u16 {
            let mut tr = udp(port, port);
            tr.remote.port = port;
            if table.create(&tr, (0, &T), &mut Vec::new()).is_ok() {
                kept += 1;
            }
        }
        assert!(kept <= SHARDS && kept > 0, "{kept}");
        assert_eq!(table.len(), kept);
    }

    proptest! {
        /// Creations, lookups from both sides and expiry agree with a map,
        /// and every removed record is released exactly once.
        #[test]
        fn the_table_agrees_with_a_map(ops in proptest::collection::vec((1u16..200, 0u32..40), 1..400)) {
            let table = TranslationTable::new(100_000);
            let mut model: HashMap<u16, u32> = HashMap::new();
            let mut now = 0;
            for (port, step) in ops {
                now += step / 10;
                let tr = udp(port, port + 64 * 100);
                let mut gone = None;
                let found = table.inbound((PROTO_UDP, 0), tr.public, tr.remote, 0, (now, &T), &mut gone);
                let live = model.get(&port).is_some_and(|seen| now - seen <= T.udp_idle);
                prop_assert_eq!(found.is_some(), live);
                prop_assert_eq!(gone.is_some(), model.contains_key(&port) && !live);
                if !live {
                    model.remove(&port);
                    let mut swept = Vec::new();
                    table.create(&tr, (now, &T), &mut swept).unwrap();
                    for r in swept {
                        let p = r.inside.port;
                        prop_assert!(model.remove(&p).is_some(), "released {} twice", p);
                    }
                }
                model.insert(port, now);
            }
            prop_assert_eq!(table.len(), model.len());
        }
    }
}
