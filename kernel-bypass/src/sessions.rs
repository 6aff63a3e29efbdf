//! The session table (connection tracking), shared by every worker: TCP,
//! UDP and ICMP echo flows of both families, keyed with the VRF.
//!
//! Design: one table for all workers, cut into shards by the hash of a
//! canonical key (the two endpoints in sorted order), each shard an
//! open-addressing table (linear probing, backward-shift deletion) under
//! its own lock. Both directions of a flow have the same canonical key,
//! so they find the same session whichever worker receives them; we chose
//! this over VPP's per-worker tables with handoff because AF_PACKET fanout
//! and veth queues give no symmetric flow steering to rely on. A lock is
//! held for one probe sequence; with a few workers and 64 shards two rarely
//! meet. A NAT that rewrites the tuple will add its translated key as a
//! second entry pointing at the same session.
//!
//! Memory is bounded: a shard holds at most its share of the configured
//! maximum; when full, new flows are refused and counted, old ones stay.
//! Shards grow by half as sessions arrive (an occasional rehash of one
//! shard, 1/64 of the table), so an idle appliance does not hold the
//! maximum's memory. A slot is one 64-byte cache line; shards are kept
//! between half and three quarters full: at most 128 bytes a session.
//!
//! Expiry never stops the world: an expired session found by a lookup is
//! removed there, and every insertion sweeps the few slots around its
//! home (a full shard sweeps many, in turn).

use crate::headers::{tcp_flags, FlowInfo};
use crate::open_table::{Entry, OpenTable, Sharded, SHARDS};
use crate::snapshot::VrfId;
use crate::state_sync::{Kind, SyncRecord};
use std::net::IpAddr;

/// Slots an insertion sweeps for expired sessions, and when the shard is full.
const SWEEP: usize = 4;
const SWEEP_FULL: usize = 256;

/// Idle timeouts in seconds, by state (from `ip inspect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_synwait: u32,
    pub tcp_idle: u32,
    pub tcp_finwait: u32,
    pub udp_idle: u32,
    pub icmp_idle: u32,
}

/// Where a TCP session is, as far as timeouts need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// The initiator's SYN seen.
    SynSent,
    /// The responder's SYN-ACK seen.
    SynReceived,
    Established,
    /// A FIN seen from either side.
    Closing,
    /// A RST seen.
    Closed,
}

impl Timeouts {
    /// The timeouts `ip inspect` sets (what the firewall, NAT and the
    /// load balancer expire their entries by).
    pub fn of(limits: &grammar::config::SessionLimits) -> Timeouts {
        Timeouts {
            tcp_synwait: limits.tcp_synwait,
            tcp_idle: limits.tcp_idle,
            tcp_finwait: limits.tcp_finwait,
            udp_idle: limits.udp_idle,
            icmp_idle: limits.icmp_idle,
        }
    }

    /// The idle timeout of a TCP flow in `state`.
    pub fn tcp(&self, state: TcpState) -> u32 {
        match state {
            TcpState::SynSent | TcpState::SynReceived => self.tcp_synwait,
            TcpState::Established => self.tcp_idle,
            TcpState::Closing | TcpState::Closed => self.tcp_finwait,
        }
    }
}

impl TcpState {
    /// The state kept in a record's low three bits.
    pub fn from_bits(bits: u8) -> TcpState {
        match bits & 0x7 {
            0 => TcpState::SynSent,
            1 => TcpState::SynReceived,
            2 => TcpState::Established,
            3 => TcpState::Closing,
            _ => TcpState::Closed,
        }
    }

    /// The state after a segment with `flags`; `from_initiator` says
    /// which side sent it.
    pub fn follow(self, flags: u8, from_initiator: bool) -> TcpState {
        use TcpState::*;
        match (self, from_initiator) {
            (_, _) if flags & tcp_flags::RST != 0 => Closed,
            (Established | Closing, _) if flags & tcp_flags::FIN != 0 => Closing,
            (SynSent, false) if flags & tcp_flags::SYN != 0 && flags & tcp_flags::ACK != 0 => {
                SynReceived
            }
            (SynReceived, true) if flags & tcp_flags::ACK != 0 => Established,
            (state, _) => state,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::Closing => "CLOSING",
            TcpState::Closed => "CLOSED",
        }
    }
}

/// A flow's identity with its endpoints in canonical (sorted) order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Addresses as two words each (not u128: its 16-byte alignment would
    /// make a slot two cache lines).
    pub a: [u64; 2],
    pub b: [u64; 2],
    pub a_port: u16,
    pub b_port: u16,
    pub vrf: VrfId,
    pub protocol: u8,
}

/// IPv4 addresses as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
pub fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address's bits as two words (high first).
pub fn words(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

fn addr_of([hi, lo]: [u64; 2]) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(u128::from(hi) << 64 | u128::from(lo));
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

impl SessionKey {
    /// The key of a packet's flow and whether the packet goes from `a` to `b`.
    pub fn of(vrf: VrfId, flow: &FlowInfo) -> (SessionKey, bool) {
        let src = (addr_bits(flow.src), flow.src_port);
        let dst = (addr_bits(flow.dst), flow.dst_port);
        let forward = src <= dst;
        let ((a, a_port), (b, b_port)) = if forward { (src, dst) } else { (dst, src) };
        let key = SessionKey {
            a: words(a),
            b: words(b),
            a_port,
            b_port,
            vrf,
            protocol: flow.protocol,
        };
        (key, forward)
    }

    /// Each word folded in through a full-width mix, so that flows that
    /// differ only in a port spread as well as random ones (a cheaper
    /// word-wise FNV left their hashes clustered: runs three times longer).
    fn hash(&self) -> u64 {
        let words = [
            self.a[0],
            self.a[1],
            self.b[0],
            self.b[1],
            u64::from(self.a_port)
                | u64::from(self.b_port) << 16
                | u64::from(self.vrf) << 32
                | u64::from(self.protocol) << 48,
        ];
        crate::open_table::mix_words(&words)
    }
}

// Bits of `Slot::state`.
const USED: u8 = 0x80;
/// The initiator is endpoint `a`.
const INITIATOR_A: u8 = 0x40;
/// Adopted from the HA peer (`crate::state_sync`) and not yet seen here:
/// the peer owns it, so this box does not send it back.
const ADOPTED: u8 = 0x20;

/// One session: a 64-byte cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Slot {
    key: SessionKey,
    state: u8,
    last_seen: u32,
    created: u32,
    /// Packets from the initiator, from the responder.
    packets: [u32; 2],
    /// The key's hash (the part that places it), kept so that moving
    /// entries on insertion and removal does not hash keys again.
    hash: u32,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl crate::open_table::Entry for Slot {
    fn is_used(&self) -> bool {
        self.state & USED != 0
    }

    fn hash(&self) -> u64 {
        u64::from(self.hash)
    }
}

impl Slot {
    fn tcp(&self) -> TcpState {
        TcpState::from_bits(self.state)
    }

    fn timeout(&self, t: &Timeouts) -> u32 {
        match self.key.protocol {
            crate::wire::PROTO_TCP => t.tcp(self.tcp()),
            crate::wire::PROTO_UDP => t.udp_idle,
            _ => t.icmp_idle,
        }
    }

    fn expired(&self, now: u32, t: &Timeouts) -> bool {
        now.saturating_sub(self.last_seen) > self.timeout(t)
    }

    /// Follows TCP flags; `from_initiator` says which side sent them.
    fn follow_tcp(&mut self, flags: u8, from_initiator: bool) {
        let next = self.tcp().follow(flags, from_initiator);
        self.state = self.state & !0x7 | next as u8;
    }
}

/// A session as `show sessions` lists it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub vrf: VrfId,
    pub protocol: u8,
    pub initiator: (IpAddr, u16),
    pub responder: (IpAddr, u16),
    /// TCP only.
    pub tcp: Option<TcpState>,
    pub age_secs: u32,
    pub idle_secs: u32,
    pub packets: [u32; 2],
}

/// What taking in an entry from the HA peer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adopted {
    New,
    /// The entry was there: refreshed if it was adopted, else left.
    Known,
}

/// Why a session was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The shard holds its share of the maximum.
    Full,
}

/// A session's shard: the top bits of its hash (the slot takes the bottom).
fn shard_of(hash: u64) -> usize {
    (hash >> 58) as usize
}

#[derive(Default)]
struct Shard {
    table: OpenTable<Slot>,
    sweep_at: usize,
}

pub struct SessionTable {
    shards: Sharded<Shard>,
}

impl SessionTable {
    /// An empty table for at most `max` sessions.
    pub fn new(max: usize) -> SessionTable {
        SessionTable {
            shards: Sharded::new(max),
        }
    }

    /// Changes the maximum; sessions above a lowered one stay until they expire.
    pub fn set_max(&self, max: usize) {
        self.shards.set_max(max);
    }

    /// The configured maximum (rounded up to the shards).
    pub fn max(&self) -> usize {
        self.shards.max()
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards.lock(shard_of(hash))
    }

    /// Finds the packet's session and updates it (state, counters, time);
    /// false when there is none (or it had expired, and is now gone).
    pub fn track(
        &self,
        key: &SessionKey,
        forward: bool,
        flow: &FlowInfo,
        now: u32,
        t: &Timeouts,
    ) -> bool {
        let hash = key.hash();
        let mut shard = self.shard(hash);
        let Some(at) = shard.table.find(hash, |s| s.key == *key) else {
            return false;
        };
        if shard.table.slots()[at].expired(now, t) {
            shard.table.remove(at);
            return false;
        }
        let slot = shard.table.slot_mut(at);
        slot.state &= !ADOPTED;
        let from_initiator = (slot.state & INITIATOR_A != 0) == forward;
        if key.protocol == crate::wire::PROTO_TCP {
            slot.follow_tcp(flow.tcp_flags, from_initiator);
        }
        slot.last_seen = now;
        let dir = usize::from(!from_initiator);
        slot.packets[dir] = slot.packets[dir].wrapping_add(1);
        true
    }

    /// Warms the slot a lookup of `key` starts at.
    #[inline]
    pub fn prefetch(&self, key: &SessionKey) {
        let hash = key.hash();
        self.shards.prefetch::<Slot>(shard_of(hash), hash);
    }

    /// Whether the table holds a live session with `key` (left as it is).
    pub fn contains(&self, key: &SessionKey, now: u32, t: &Timeouts) -> bool {
        let hash = key.hash();
        let shard = self.shard(hash);
        let found = shard.table.find(hash, |s| s.key == *key);
        found.is_some_and(|at| !shard.table.slots()[at].expired(now, t))
    }

    /// Creates the session of a packet that opens a flow (its sender is the
    /// initiator); Ok also when another worker created it meanwhile.
    pub fn create(
        &self,
        key: &SessionKey,
        forward: bool,
        now: u32,
        t: &Timeouts,
    ) -> Result<(), Refused> {
        let initiator = if forward { INITIATOR_A } else { 0 };
        let opened = USED | initiator | TcpState::SynSent as u8;
        self.insert(key, opened, [1, 0], now, t).map(|_| ())
    }

    /// Takes in a session the HA peer holds (`initiator_a`: its initiator
    /// is endpoint `a`), or refreshes one adopted before; a session this
    /// box made itself stays as it is.
    pub fn adopt(
        &self,
        key: &SessionKey,
        initiator_a: bool,
        tcp: TcpState,
        now: u32,
        t: &Timeouts,
    ) -> Result<Adopted, Refused> {
        let initiator = if initiator_a { INITIATOR_A } else { 0 };
        let state = USED | ADOPTED | initiator | tcp as u8;
        self.insert(key, state, [0, 0], now, t)
    }

    fn insert(
        &self,
        key: &SessionKey,
        state: u8,
        packets: [u32; 2],
        now: u32,
        t: &Timeouts,
    ) -> Result<Adopted, Refused> {
        let hash = key.hash();
        let limit = self.shards.per_shard();
        let mut shard = self.shard(hash);
        let full = shard.table.len() >= limit;
        shard.sweep_for(hash, full, now, t);
        if let Some(at) = shard.table.find(hash, |s| s.key == *key) {
            let slot = shard.table.slot_mut(at);
            if slot.state & state & ADOPTED != 0 {
                slot.state = state;
                slot.last_seen = now;
            }
            return Ok(Adopted::Known);
        }
        if shard.table.len() >= limit {
            return Err(Refused::Full);
        }
        shard.table.insert(Slot {
            key: *key,
            state,
            last_seen: now,
            created: now,
            packets,
            hash: hash as u32,
        });
        self.shards.publish_index(shard_of(hash), &shard.table);
        Ok(Adopted::New)
    }

    /// Calls `f` with each live session of shard `at` that this box made
    /// or has seen traffic of (not only adopted from its peer): its key,
    /// whether `a` is the initiator, its TCP state.
    pub fn own_in_shard(
        &self,
        at: usize,
        now: u32,
        t: &Timeouts,
        f: &mut dyn FnMut(&SessionKey, bool, TcpState),
    ) {
        let shard = self.shards.lock(at);
        let own = (shard.table.slots().iter())
            .filter(|s| s.is_used() && s.state & ADOPTED == 0 && !s.expired(now, t));
        for s in own {
            f(&s.key, s.state & INITIATOR_A != 0, s.tcp());
        }
    }

    /// Sessions now in the table (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards.sum(|s| s.table.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the table holds now.
    pub fn memory_bytes(&self) -> usize {
        self.shards.sum(|s| s.table.memory_bytes())
    }

    /// Empties the table (`clear sessions`).
    pub fn clear(&self) {
        for at in 0..SHARDS {
            self.shards.lock(at).table.clear();
        }
    }

    /// The live sessions that `keep` accepts, one shard locked at a time.
    pub fn sessions(
        &self,
        now: u32,
        t: &Timeouts,
        keep: &dyn Fn(&SessionInfo) -> bool,
    ) -> Vec<SessionInfo> {
        let mut out = Vec::new();
        for at in 0..SHARDS {
            let shard = self.shards.lock(at);
            let live = (shard.table.slots().iter()).filter(|s| s.is_used() && !s.expired(now, t));
            out.extend(live.map(|s| info(s, now)).filter(|i| keep(i)));
        }
        out
    }
}

fn info(s: &Slot, now: u32) -> SessionInfo {
    let a = (addr_of(s.key.a), s.key.a_port);
    let b = (addr_of(s.key.b), s.key.b_port);
    let (initiator, responder) = if s.state & INITIATOR_A != 0 {
        (a, b)
    } else {
        (b, a)
    };
    SessionInfo {
        vrf: s.key.vrf,
        protocol: s.key.protocol,
        initiator,
        responder,
        tcp: (s.key.protocol == crate::wire::PROTO_TCP).then(|| s.tcp()),
        age_secs: now.saturating_sub(s.created),
        idle_secs: now.saturating_sub(s.last_seen),
        packets: s.packets,
    }
}

impl Shard {
    /// Removes expired sessions among `count` slots from `from`; returns
    /// the slot after the last one looked at.
    fn sweep(&mut self, from: usize, count: usize, now: u32, t: &Timeouts) -> usize {
        let size = self.table.slots().len();
        let mut at = from % size.max(1);
        for _ in 0..count.min(size) {
            let slot = &self.table.slots()[at];
            if slot.is_used() && slot.expired(now, t) {
                // The backward shift may pull an unswept entry into `at`:
                // look at the same slot again.
                self.table.remove(at);
            } else {
                at = (at + 1) % size;
            }
        }
        at
    }

    /// Makes room for an insertion of `hash`: a full shard sweeps many
    /// slots in turn; otherwise the few around the new entry's home, which
    /// the lookup before it has just brought into the cache (insertions
    /// land anywhere, so over time these samples reach every slot).
    fn sweep_for(&mut self, hash: u64, full: bool, now: u32, t: &Timeouts) {
        if full {
            self.sweep_at = self.sweep(self.sweep_at, SWEEP_FULL, now, t);
        } else {
            let home = self.table.home(hash);
            self.sweep(home, SWEEP, now, t);
        }
    }
}

/// The firewall's sessions as the HA pair keeps them alike.
impl crate::state_sync::Synced for SessionTable {
    fn kind(&self) -> Kind {
        Kind::Session
    }

    fn own_in_shard(&self, at: usize, (now, t): (u32, &Timeouts), f: &mut dyn FnMut(SyncRecord)) {
        SessionTable::own_in_shard(self, at, now, t, &mut |key, initiator_a, tcp| {
            f(SyncRecord::of_session(key, initiator_a, tcp))
        });
    }

    /// Sessions hold both families: every record is this table's.
    fn adopt(&self, record: &SyncRecord, (now, t): (u32, &Timeouts)) -> Option<bool> {
        let (key, initiator_a) = record.session();
        Some(SessionTable::adopt(self, &key, initiator_a, record.tcp, now, t).is_ok())
    }
}

/// The default timeouts, for tests of the tables.
#[cfg(test)]
pub const TEST_TIMEOUTS: Timeouts = Timeouts {
    tcp_synwait: 30,
    tcp_idle: 3600,
    tcp_finwait: 5,
    udp_idle: 30,
    icmp_idle: 10,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PROTO_TCP, PROTO_UDP};
    use proptest::prelude::*;
    use std::collections::HashMap;

    const T: Timeouts = TEST_TIMEOUTS;

    fn flow(src: &str, sport: u16, dst: &str, dport: u16, protocol: u8, flags: u8) -> FlowInfo {
        FlowInfo {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            src_port: sport,
            dst_port: dport,
            tcp_flags: flags,
            icmp: (0, 0),
            has_transport: true,
            fragment: None,
        }
    }

    #[test]
    fn both_directions_find_one_session_and_tcp_state_follows_the_handshake() {
        use tcp_flags::*;
        let table = SessionTable::new(1000);
        let syn = flow("10.0.0.2", 40000, "192.0.2.1", 443, PROTO_TCP, SYN);
        let (key, forward) = SessionKey::of(0, &syn);
        assert!(!table.track(&key, forward, &syn, 0, &T));
        table.create(&key, forward, 0, &T).unwrap();
        let reply = flow("192.0.2.1", 443, "10.0.0.2", 40000, PROTO_TCP, SYN | ACK);
        let (reply_key, reply_forward) = SessionKey::of(0, &reply);
        assert_eq!(reply_key, key);
        assert!(table.track(&reply_key, reply_forward, &reply, 1, &T));
        let ack = flow("10.0.0.2", 40000, "192.0.2.1", 443, PROTO_TCP, ACK);
        assert!(table.track(&key, forward, &ack, 1, &T));
        let all = table.sessions(1, &T, &|_| true);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].tcp, Some(TcpState::Established));
        assert_eq!(all[0].initiator, ("10.0.0.2".parse().unwrap(), 40000));
        assert_eq!(all[0].packets, [2, 1]);
        let other_vrf = SessionKey::of(1, &syn).0;
        assert!(
            !table.track(&other_vrf, forward, &ack, 1, &T),
            "keyed with the VRF"
        );
    }

    #[test]
    fn sessions_expire_by_their_state_timeouts() {
        let table = SessionTable::new(1000);
        let udp = flow("10.0.0.2", 5000, "192.0.2.1", 53, PROTO_UDP, 0);
        let (key, forward) = SessionKey::of(0, &udp);
        table.create(&key, forward, 100, &T).unwrap();
        assert!(table.track(&key, forward, &udp, 130, &T));
        assert!(!table.track(&key, forward, &udp, 161, &T), "31 s idle");
        assert!(table.is_empty(), "removed where it was found expired");
    }

    #[test]
    fn a_full_table_refuses_new_flows_and_keeps_the_old_ones() {
        let table = SessionTable::new(SHARDS);
        let mut kept = Vec::new();
        let mut refused = 0;
        for port in 0..1000u16 {
            let f = flow("10.0.0.2", port, "192.0.2.1", 53, PROTO_UDP, 0);
            let (key, forward) = SessionKey::of(0, &f);
            match table.create(&key, forward, 0, &T) {
                Ok(()) => kept.push((key, forward, f)),
                Err(Refused::Full) => refused += 1,
            }
        }
        assert!(
            table.len() <= SHARDS && refused >= 1000 - SHARDS,
            "{}",
            table.len()
        );
        for (key, forward, f) in &kept {
            assert!(table.track(key, *forward, f, 1, &T));
        }
        // Once they expire, new flows get room again.
        let late = flow("10.0.0.9", 1, "192.0.2.1", 53, PROTO_UDP, 0);
        let (key, forward) = SessionKey::of(0, &late);
        assert_eq!(table.create(&key, forward, 100, &T), Ok(()));
    }

    proptest! {
        /// Inserts, lookups and removals (by expiry) agree with a map.
        #[test]
        fn the_table_agrees_with_a_map(ops in proptest::collection::vec((0u16..300, 0u32..60), 1..600)) {
            let table = SessionTable::new(100_000);
            let mut model: HashMap<u16, u32> = HashMap::new();
            let mut now = 0;
            for (port, step) in ops {
                now += step / 20;
                let f = flow("10.0.0.2", port, "192.0.2.1", 53, PROTO_UDP, 0);
                let (key, forward) = SessionKey::of(0, &f);
                model.retain(|_, seen| now - *seen <= T.udp_idle);
                let found = table.track(&key, forward, &f, now, &T);
                prop_assert_eq!(found, model.contains_key(&port));
                if found {
                    model.insert(port, now);
                } else {
                    table.create(&key, forward, now, &T).unwrap();
                    model.insert(port, now);
                }
            }
            let live = table.sessions(now, &T, &|_| true).len();
            prop_assert_eq!(live, model.len());
        }
    }
}
