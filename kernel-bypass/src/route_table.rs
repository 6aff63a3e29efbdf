//! The routes of one routing table (the global one or a VRF's) as the
//! workers read them, and how learned routes change them in place of a
//! rebuild.
//!
//! The IPv4 FIB (`fib::Lpm`) maps each prefix to an interned [`Entry`]
//! (how to forward, without the prefix): a million BGP prefixes through a
//! few next hops share a few entries. A commit builds the configured routes
//! (local, connected, static: `routes::build`) and applies every learned
//! route on top as one batch. After that, a batch of learned changes
//! ([`RouteChange`]) is applied to a clone of the published table, which
//! is cheap: the clone shares the FIB's /8 groups and copies only those
//! the batch touches (copy on write), and shares the entries unless the
//! batch brings a new one. The changed table is published in a new
//! snapshot (`Snapshot::with_table`) through the same `ArcSwap` as a
//! commit (read-copy-update): workers never lock, finish the batch they
//! are on with the table they loaded, and look up with exactly the loads
//! they did before.
//!
//! At a prefix, the configured route wins over the learned one when it
//! ranks (distance, then static before BGP) not worse; local and connected
//! routes always win. A configured route a learned one displaced is kept
//! aside (`displaced`), so withdrawing the learned route gives its prefix
//! back; every other configured route is in the FIB itself, so the
//! configured routes are not stored twice. Learned next hops resolve
//! through the connected subnets as static ones do.
//!
//! IPv6 tables are built at commit only: no routing protocol learns IPv6
//! routes yet.

use crate::fib::{EcmpGroup, Lpm, Lpm6};
use crate::routes::{self, Entry, Entry6, RouteKind, Source};
use crate::snapshot::IfaceId;
use grammar::config::StaticRoute;
use ipnet::{Ipv4Net, Ipv6Net};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// A change of one prefix's learned route in one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// The prefix's learned route is now this one (added or replaced).
    Announce(StaticRoute),
    /// The prefix has no learned route any more.
    Withdraw(Ipv4Net),
}

impl RouteChange {
    fn prefix(&self) -> Ipv4Net {
        match self {
            RouteChange::Announce(route) => route.prefix.trunc(),
            RouteChange::Withdraw(prefix) => prefix.trunc(),
        }
    }
}

/// The routes the control plane's protocols handed over, one per prefix,
/// per table (by VRF name; None: the global table): what a commit applies
/// again after rebuilding the tables.
#[derive(Clone, Debug, Default)]
pub struct LearnedRoutes {
    tables: BTreeMap<Option<String>, BTreeMap<Ipv4Net, StaticRoute>>,
}

impl LearnedRoutes {
    /// Records a batch of changes of table `vrf`'s learned routes.
    pub fn apply(&mut self, vrf: Option<&str>, changes: &[RouteChange]) {
        let table = self.tables.entry(vrf.map(str::to_string)).or_default();
        for change in changes {
            match change {
                RouteChange::Announce(route) => table.insert(change.prefix(), route.clone()),
                RouteChange::Withdraw(_) => table.remove(&change.prefix()),
            };
        }
    }

    /// Every learned route of table `vrf`, as announcements.
    pub fn announcements(&self, vrf: Option<&str>) -> impl Iterator<Item = RouteChange> + '_ {
        let table = self.tables.get(&vrf.map(str::to_string));
        (table.into_iter().flat_map(BTreeMap::values)).map(|r| RouteChange::Announce(r.clone()))
    }
}

/// What the commit built that learned routes need to join the IPv4 table.
#[derive(Default)]
struct Configured {
    /// The prefixes of the configured routes, sorted.
    prefixes: Vec<Ipv4Net>,
    /// Connected subnets to their interface: where next hops resolve.
    connected: Lpm,
    /// The up interfaces (of every table) by name, for next hops that
    /// name an interface.
    interfaces: HashMap<String, IfaceId>,
}

/// The IPv6 routes, sorted by prefix, and their FIB (values index them).
#[derive(Default)]
struct Ipv6Routes {
    routes: Vec<(Ipv6Net, Entry6)>,
    fib: Lpm6,
}

/// The routes of one routing table and their FIBs. Cloning shares
/// everything; changing the clone copies only what changes.
#[derive(Clone, Default)]
pub struct RouteTable {
    /// Prefix -> index in `entries`.
    fib: Lpm,
    entries: Arc<[Entry]>,
    /// Where each entry is in `entries`.
    entry_index: Arc<HashMap<Entry, u32>>,
    configured: Arc<Configured>,
    /// The entry of each configured route a learned one displaced.
    displaced: Arc<HashMap<Ipv4Net, u32>>,
    ipv6: Arc<Ipv6Routes>,
}

impl RouteTable {
    /// The table of the configured routes (`routes::build`'s) with no
    /// learned route yet; `interfaces` are the up interfaces by name.
    pub(crate) fn new(
        routes: Vec<(Ipv4Net, Entry)>,
        routes6: Vec<(Ipv6Net, Entry6)>,
        interfaces: HashMap<String, IfaceId>,
    ) -> Result<RouteTable, String> {
        let mut table = RouteTable::default();
        let mut configured = Configured {
            interfaces,
            ..Configured::default()
        };
        let mut interned = Interner::new(&table);
        let mut fib_routes = Vec::with_capacity(routes.len());
        for (prefix, entry) in routes {
            if let RouteKind::Connected { iface, .. } = entry.kind {
                (configured.connected)
                    .insert(prefix, u32::from(iface))
                    .map_err(|e| format!("connected routes: {e}"))?;
            }
            fib_routes.push((prefix, interned.intern(entry)));
            configured.prefixes.push(prefix);
        }
        interned.finish(&mut table);
        // One bulk load: each touched block of the table is encoded once.
        (table.fib.insert_many(fib_routes)).map_err(|e| format!("routes: {e}"))?;
        let indexed = routes6.iter().enumerate();
        let fib6 = Lpm6::from_routes(indexed.map(|(i, (prefix, _))| (*prefix, i as u32)));
        table.ipv6 = Arc::new(Ipv6Routes {
            routes: routes6,
            fib: fib6,
        });
        table.configured = Arc::new(configured);
        Ok(table)
    }

    /// Applies learned route changes in order (a prefix changed twice
    /// ends as the last change says). Each touched block of the FIB is
    /// encoded once, so one batch of a million routes loads as fast as a
    /// commit does. On Err (a table of 2^32 entries) nothing changed.
    pub fn apply_learned(
        &mut self,
        changes: impl IntoIterator<Item = impl Borrow<RouteChange>>,
    ) -> Result<(), String> {
        let mut interned = Interner::new(self);
        let mut displaced = self.displaced.clone();
        let mut fib_changes = Vec::new();
        for change in changes {
            let change = change.borrow();
            let learned = match change {
                RouteChange::Announce(route) => learned_entry(&self.configured, route),
                RouteChange::Withdraw(_) => None,
            };
            let prefix = change.prefix();
            // The tables before the batch tell, as the commit left it.
            let configured = self.configured_at(prefix);
            let winner = match (configured, learned) {
                (Some((rank, index)), Some(learned)) if rank > learned.rank() => {
                    Arc::make_mut(&mut displaced).insert(prefix, index);
                    Some(interned.intern(learned))
                }
                (None, Some(learned)) => Some(interned.intern(learned)),
                (configured, _) => {
                    if displaced.contains_key(&prefix) {
                        Arc::make_mut(&mut displaced).remove(&prefix);
                    }
                    configured.map(|(_, index)| index)
                }
            };
            fib_changes.push((prefix, winner));
        }
        let mut fib = self.fib.clone();
        (fib.update_many(fib_changes)).map_err(|e| format!("learned routes: {e}"))?;
        interned.finish(self);
        self.fib = fib;
        self.displaced = displaced;
        Ok(())
    }

    /// The rank and entry of the configured route at `prefix`: in the
    /// FIB unless a learned route displaced it.
    fn configured_at(&self, prefix: Ipv4Net) -> Option<((u8, Source), u32)> {
        let index = match self.fib.get(prefix) {
            Some(index) if self.entries.get(index as usize)?.source != Source::Bgp => index,
            _ => *self.displaced.get(&prefix)?,
        };
        Some((self.entries.get(index as usize)?.rank(), index))
    }

    /// Longest-prefix match.
    #[inline]
    pub fn route(&self, dst: Ipv4Addr) -> Option<&Entry> {
        self.fib
            .lookup(u32::from(dst))
            .and_then(|i| self.entries.get(i as usize))
    }

    /// Longest-prefix match for IPv6 (link-local destinations are not in it).
    #[inline]
    pub fn route6(&self, dst: Ipv6Addr) -> Option<&Entry6> {
        let ipv6 = &self.ipv6;
        (ipv6.fib.lookup(u128::from(dst)))
            .and_then(|i| ipv6.routes.get(i as usize))
            .map(|(_, entry)| entry)
    }

    /// Every IPv4 route in prefix order.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Net, &Entry)> + '_ {
        (self.fib.iter()).filter_map(|(prefix, i)| Some((prefix, self.entries.get(i as usize)?)))
    }

    /// The configured IPv4 routes that no learned route displaced, in
    /// prefix order: what a routing protocol originates from.
    pub fn configured_routes(&self) -> impl Iterator<Item = (Ipv4Net, &Entry)> + '_ {
        (self.configured.prefixes.iter())
            .filter_map(|prefix| {
                Some((*prefix, self.entries.get(self.fib.get(*prefix)? as usize)?))
            })
            .filter(|(_, entry)| entry.source != Source::Bgp)
    }

    /// Every IPv6 route in prefix order.
    pub fn routes6(&self) -> &[(Ipv6Net, Entry6)] {
        &self.ipv6.routes
    }

    /// The number of IPv4 routes.
    pub fn len(&self) -> usize {
        self.fib.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fib.is_empty()
    }
}

/// The entry of a learned route, if its next hop resolves.
fn learned_entry(configured: &Configured, route: &StaticRoute) -> Option<Entry> {
    let connected = |gw: &Ipv4Addr| {
        let iface = configured.connected.lookup(u32::from(*gw))?;
        IfaceId::try_from(iface).ok()
    };
    let interface = |name: &str| configured.interfaces.get(name).copied();
    let hop = routes::resolve(&route.next_hop, connected, &interface)?;
    Some(Entry {
        distance: route.distance,
        kind: RouteKind::Static {
            hops: EcmpGroup::new(vec![hop]).ok()?,
        },
        source: Source::Bgp,
    })
}

/// Gives entries their index in a table's `entries`, adding the new ones
/// at the end when the batch is done (the table keeps its entries until
/// then, so a failed batch leaves it as it was).
struct Interner {
    index: Arc<HashMap<Entry, u32>>,
    known: usize,
    added: Vec<Entry>,
    /// The entry interned last: routes in a row often share it, and
    /// comparing is cheaper than hashing.
    last: Option<(Entry, u32)>,
}

impl Interner {
    fn new(table: &RouteTable) -> Interner {
        Interner {
            index: table.entry_index.clone(),
            known: table.entries.len(),
            added: Vec::new(),
            last: None,
        }
    }

    fn intern(&mut self, entry: Entry) -> u32 {
        match &self.last {
            Some((last, index)) if *last == entry => return *index,
            _ => {}
        }
        let index = match self.index.get(&entry) {
            Some(&index) => index,
            None => {
                // Past u32::MAX the FIB refuses the value: the batch fails whole.
                let index = u32::try_from(self.known + self.added.len()).unwrap_or(u32::MAX);
                Arc::make_mut(&mut self.index).insert(entry.clone(), index);
                self.added.push(entry.clone());
                index
            }
        };
        self.last = Some((entry, index));
        index
    }

    fn finish(self, table: &mut RouteTable) {
        if self.added.is_empty() {
            return;
        }
        let entries = table.entries.iter().cloned().chain(self.added);
        table.entries = entries.collect();
        table.entry_index = self.index;
    }
}

#[cfg(test)]
mod tests;
