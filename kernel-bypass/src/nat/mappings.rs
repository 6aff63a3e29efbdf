//! Public endpoints for dynamic translation, endpoint-independent (RFC
//! 4787 REQ-1, RFC 5382 REQ-1): an inside endpoint keeps one public
//! endpoint for all its flows, whatever their destinations, while any of
//! them lives. Filtering stays address-and-port-dependent: a packet from
//! outside finds a translation only from a remote endpoint the inside one
//! has sent to (the table's key holds the remote), the stricter choice
//! RFC 4787 allows (REQ-8).
//!
//! Port translation (overload): an inside address is paired with one
//! public address of the pool while it can (REQ-2), chosen by its hash so
//! hosts spread over the pool; the ports 1024-49151 of each public
//! address are cut into classes by their remainder modulo
//! [`PORT_CLASSES`], and an inside port gets a public port of its own
//! class (the translation table's sharding needs it), from the shard of
//! mappings that owns the class: two workers allocating for ports of
//! different classes never share a lock. Address translation (a pool
//! without overload): an inside address gets a whole pool address of its
//! own, ports kept (so in their class too).

use super::address::{Address, Endpoint};
use super::table::PORT_CLASSES;
use crate::snapshot::VrfId;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = PORT_CLASSES;
/// The ports given out: above the well-known ones, below the appliance's
/// own stack's ephemeral ports (its probes and sessions use the same
/// addresses, and their replies must not be taken for a mapping's).
pub const FIRST_PORT: u16 = 1024;
pub const LAST_PORT: u16 = *crate::local::EPHEMERAL_PORTS.start() - 1;

/// An inside endpoint of one protocol in one VRF.
type Inside<A> = (VrfId, u8, Endpoint<A>);

/// Ports of one class in use on one public address: one bit each.
type PortBits = [u64; 65536 / SHARDS / 64];

struct Shard<A> {
    mappings: HashMap<Inside<A>, (Endpoint<A>, u32)>,
    ports: HashMap<(u8, A), Box<PortBits>>,
    /// Where the next free-port search of an address starts.
    cursor: u32,
}

impl<A> Default for Shard<A> {
    fn default() -> Self {
        Shard {
            mappings: HashMap::new(),
            ports: HashMap::new(),
            cursor: 0,
        }
    }
}

struct Addresses<A> {
    /// (vrf, inside address) -> (public address, flows).
    bound: HashMap<(VrfId, A), (A, u32)>,
    taken: HashSet<A>,
}

impl<A> Default for Addresses<A> {
    fn default() -> Self {
        Addresses {
            bound: HashMap::new(),
            taken: HashSet::new(),
        }
    }
}

/// The public endpoints of one address family.
pub struct Mappings<A = Ipv4Addr> {
    shards: Box<[Mutex<Shard<A>>]>,
    addresses: Mutex<Addresses<A>>,
}

impl<A> Default for Mappings<A> {
    fn default() -> Self {
        Mappings {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            addresses: Mutex::default(),
        }
    }
}

fn hash<A: Address>(vrf: VrfId, addr: A) -> u64 {
    let mut h = addr.fold().rotate_left(16) ^ u64::from(vrf);
    h = (h ^ h >> 31).wrapping_mul(0x7fb5_d329_728e_a185);
    h ^ h >> 27
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<A: Address> Mappings<A> {
    /// The shard that owns `inside`'s port class.
    fn shard(&self, inside: Endpoint<A>) -> (usize, MutexGuard<'_, Shard<A>>) {
        let class = usize::from(inside.port) % SHARDS;
        (class, lock(&self.shards[class]))
    }

    /// The public endpoint of `inside` with port translation over `pool`,
    /// one more flow on it; None when every port of the class is taken.
    /// `reserved` holds the static translations' global ports.
    pub fn map(
        &self,
        (vrf, protocol): (VrfId, u8),
        inside: Endpoint<A>,
        pool: &[A],
        reserved: &HashSet<(u8, A, u16)>,
    ) -> Option<Endpoint<A>> {
        let (class, mut shard) = self.shard(inside);
        // An existing mapping stays while it has flows, even if a commit
        // took its address out of the pool: its flows keep working.
        if let Some((public, flows)) = shard.mappings.get_mut(&(vrf, protocol, inside)) {
            *flows += 1;
            return Some(*public);
        }
        if pool.is_empty() {
            return None;
        }
        // Paired pooling: the same public address for an inside address.
        let first = (hash(vrf, inside.addr) % pool.len() as u64) as usize;
        let start = shard.cursor;
        for i in 0..pool.len() {
            let addr = pool[(first + i) % pool.len()];
            if let Some(port) = shard.take_port(protocol, addr, class, start, reserved) {
                shard.cursor = shard.cursor.wrapping_add(1);
                let public = Endpoint::new(addr, port);
                shard.mappings.insert((vrf, protocol, inside), (public, 1));
                return Some(public);
            }
        }
        None
    }

    /// Takes in the HA peer's mapping of `inside` to `public` for one
    /// more flow (held as a port mapping, whatever the peer's rule was:
    /// its release is the same); false when this box maps either end
    /// otherwise, or `public` is not in `inside`'s port class.
    pub fn adopt(
        &self,
        (vrf, protocol): (VrfId, u8),
        inside: Endpoint<A>,
        public: Endpoint<A>,
    ) -> bool {
        let (class, mut shard) = self.shard(inside);
        if usize::from(public.port) % SHARDS != class {
            return false;
        }
        if let Some((mapped, flows)) = shard.mappings.get_mut(&(vrf, protocol, inside)) {
            if *mapped != public {
                return false;
            }
            *flows += 1;
            return true;
        }
        let bits = shard.port_bits(protocol, public.addr);
        let slot = usize::from(public.port) / SHARDS;
        if bits[slot / 64] & 1 << (slot % 64) != 0 {
            return false;
        }
        bits[slot / 64] |= 1 << (slot % 64);
        shard.mappings.insert((vrf, protocol, inside), (public, 1));
        true
    }

    /// One flow of `inside` ended: the last gives its public port back.
    pub fn unmap(&self, (vrf, protocol): (VrfId, u8), inside: Endpoint<A>) {
        let (_, mut shard) = self.shard(inside);
        let key = (vrf, protocol, inside);
        let Some((public, flows)) = shard.mappings.get_mut(&key) else {
            return;
        };
        *flows -= 1;
        if *flows > 0 {
            return;
        }
        let public = *public;
        shard.mappings.remove(&key);
        if let Some(bits) = shard.ports.get_mut(&(protocol, public.addr)) {
            let slot = usize::from(public.port) / SHARDS;
            bits[slot / 64] &= !(1 << (slot % 64));
        }
    }

    /// A pool address of `inside`'s own (address translation), one more
    /// flow on it; None when every address is bound to another host.
    pub fn bind(&self, vrf: VrfId, inside: A, pool: &[A]) -> Option<A> {
        let mut a = lock(&self.addresses);
        if let Some((public, flows)) = a.bound.get_mut(&(vrf, inside)) {
            *flows += 1;
            return Some(*public);
        }
        let free = *pool.iter().find(|p| !a.taken.contains(p))?;
        a.taken.insert(free);
        a.bound.insert((vrf, inside), (free, 1));
        Some(free)
    }

    /// One flow of a bound inside address ended; true when it was one (so
    /// not a port mapping).
    pub fn unbind(&self, vrf: VrfId, inside: A, public: A) -> bool {
        let mut a = lock(&self.addresses);
        let Some((bound, flows)) = a.bound.get_mut(&(vrf, inside)) else {
            return false;
        };
        if *bound != public {
            return false;
        }
        *flows -= 1;
        if *flows == 0 {
            a.bound.remove(&(vrf, inside));
            a.taken.remove(&public);
        }
        true
    }

    /// (port mappings, bound addresses) now held.
    pub fn counts(&self) -> (usize, usize) {
        let ports = self.shards.iter().map(|s| lock(s).mappings.len()).sum();
        (ports, lock(&self.addresses).bound.len())
    }
}

impl<A: Address> Shard<A> {
    /// The taken ports of this class on `addr`.
    fn port_bits(&mut self, protocol: u8, addr: A) -> &mut PortBits {
        (self.ports.entry((protocol, addr))).or_insert_with(|| Box::new([0; 65536 / SHARDS / 64]))
    }

    /// A free port of `class` on `addr`, searched from `start`, marked taken.
    fn take_port(
        &mut self,
        protocol: u8,
        addr: A,
        class: usize,
        start: u32,
        reserved: &HashSet<(u8, A, u16)>,
    ) -> Option<u16> {
        let bits = self.port_bits(protocol, addr);
        let first_slot = usize::from(FIRST_PORT).div_ceil(SHARDS);
        let slots = (usize::from(LAST_PORT) + 1) / SHARDS - first_slot;
        for i in 0..slots {
            let slot = first_slot + (start as usize + i) % slots;
            let port = (slot * SHARDS + class) as u16;
            if bits[slot / 64] & 1 << (slot % 64) == 0
                && !reserved.contains(&(protocol, addr, port))
            {
                bits[slot / 64] |= 1 << (slot % 64);
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PROTO_TCP, PROTO_UDP};

    fn ep(a: &str, port: u16) -> Endpoint {
        Endpoint::new(a.parse().unwrap(), port)
    }

    #[test]
    fn an_inside_endpoint_keeps_its_public_endpoint_until_its_last_flow_ends() {
        let m = Mappings::default();
        let pool = ["203.0.113.1".parse().unwrap()];
        let none = HashSet::new();
        let inside = ep("10.0.0.2", 5000);
        let first = m.map((0, PROTO_UDP), inside, &pool, &none).unwrap();
        assert!(first.port >= FIRST_PORT);
        assert_eq!(m.map((0, PROTO_UDP), inside, &pool, &none), Some(first));
        let other = m.map((1, PROTO_UDP), inside, &pool, &none).unwrap();
        assert_ne!(other, first, "another VRF's host is another mapping");
        m.unmap((0, PROTO_UDP), inside);
        assert_eq!(m.counts().0, 2);
        m.unmap((0, PROTO_UDP), inside);
        assert_eq!(m.counts().0, 1);
    }

    #[test]
    fn ports_run_out_per_class_and_reserved_ports_are_never_given() {
        let m = Mappings::default();
        let pool = ["203.0.113.1".parse().unwrap()];
        let reserved: HashSet<_> = (0..65535u16).map(|p| (PROTO_TCP, pool[0], p)).collect();
        assert_eq!(
            m.map((0, PROTO_TCP), ep("10.0.0.2", 1), &pool, &reserved),
            None
        );
        let none = HashSet::new();
        let mut given = HashSet::new();
        for host in 0..70_000u32 {
            let inside = Endpoint::new(Ipv4Addr::from(0x0a00_0000 + host), host as u16);
            match m.map((0, PROTO_TCP), inside, &pool, &none) {
                Some(p) => {
                    assert_eq!(p.port % 64, inside.port % 64, "in the inside port's class");
                    assert!(given.insert(p), "{p:?} given twice");
                }
                None => break,
            }
        }
        assert!(given.len() > 40_000, "{}", given.len());
        assert!(given.len() <= usize::from(LAST_PORT - FIRST_PORT) + 1);
        assert!(given
            .iter()
            .all(|p| (FIRST_PORT..=LAST_PORT).contains(&p.port)));
    }

    #[test]
    fn a_pool_without_overload_binds_one_address_per_inside_host() {
        let m = Mappings::default();
        let pool: [Ipv4Addr; 1] = ["198.51.100.10".parse().unwrap()];
        let a = "10.0.0.2".parse().unwrap();
        let b = "10.0.0.3".parse().unwrap();
        assert_eq!(m.bind(0, a, &pool), Some(pool[0]));
        assert_eq!(m.bind(0, a, &pool), Some(pool[0]));
        assert_eq!(m.bind(0, b, &pool), None, "exhausted");
        assert!(m.unbind(0, a, pool[0]));
        assert!(m.unbind(0, a, pool[0]));
        assert!(!m.unbind(0, a, pool[0]));
        assert_eq!(m.bind(0, b, &pool), Some(pool[0]));
    }
}
