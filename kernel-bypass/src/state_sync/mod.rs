//! The dataplane's side of the high-availability pair's state
//! synchronisation (`redundancy`): what the pair keeps alike and how it
//! is read and written; the protocol between the two boxes is the
//! control plane's (`src/redundancy` of the binary).
//!
//! Design, after conntrackd and VPP's NAT HA:
//! - The workers note each entry they create (a firewall session, a NAT
//!   translation, a load-balancer session or full-NAT translation) in
//!   the [`Journal`], a bounded buffer per worker that costs one relaxed
//!   load while no peer is configured; the control plane drains it every
//!   few milliseconds into batches for the peer. When a worker's buffer
//!   is full the note is lost and counted; the refresh below carries the
//!   entry anyway.
//! - The control plane also walks the tables shard by shard
//!   ([`Synced::own_in_shard`]) at a bounded rate: that refresh carries
//!   TCP state changes, keeps the peer's copies from expiring while the
//!   flows live here, and is the bulk copy a (re)joining peer gets.
//! - The peer's entries are adopted ([`Synced::adopt`]) marked as its:
//!   nothing is sent back while no packet of theirs has passed here, and
//!   an entry this box made itself is never overwritten by the peer's, so
//!   after a split brain the box that stays master keeps its sessions.
//!   The first packet of an adopted entry makes it this box's (a
//!   takeover): the next refresh sends it back the other way.
//! - Deletions are not sent: each box expires entries by the same
//!   timeouts (`ip inspect`), and the refresh keeps live ones fresh.

mod record;

pub use record::{Kind, SyncRecord, RECORD_LEN};

use crate::counters::PerWorker;
use crate::elements::{DataplaneElement, ElementCommand};
use crate::sessions::Timeouts;
use crate::snapshot::Snapshot;
use grammar::config::{Config, SyncedTable};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Notes each worker's buffer holds until the control plane drains it
/// (every 10 ms: far more than a worker creates in that time).
const JOURNAL_DEPTH: usize = 8192;

/// A table the pair keeps alike.
pub trait Synced: Send + Sync {
    /// What it holds, and which `sync` word covers it.
    fn kind(&self) -> Kind;
    /// Calls `f` with the record of each live entry of shard `at` that
    /// this box owns (made, or took over by its traffic).
    fn own_in_shard(&self, at: usize, times: (u32, &Timeouts), f: &mut dyn FnMut(SyncRecord));
    /// Takes in the peer's entry: None when it is not of this table's
    /// address family, else whether it was taken (false: it conflicts
    /// with this box's own entries, or the table is full).
    fn adopt(&self, record: &SyncRecord, times: (u32, &Timeouts)) -> Option<bool>;
}

/// Shards a table is walked by.
pub const SHARDS: usize = crate::open_table::SHARDS;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the workers created since the control plane last looked.
#[derive(Default)]
pub struct Journal {
    enabled: AtomicBool,
    notes: PerWorker<Mutex<Vec<SyncRecord>>>,
    lost: AtomicU64,
}

impl Journal {
    /// Notes a new entry (`record` runs only while a peer is configured).
    #[inline]
    pub fn note(&self, record: impl FnOnce() -> SyncRecord) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut notes = lock(self.notes.here());
        if notes.len() < notes.capacity() {
            notes.push(record());
        } else {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts or stops noting; buffers are made (and freed) here, so that
    /// noting never allocates.
    fn enable(&self, on: bool) {
        if self.enabled.swap(on, Ordering::Relaxed) == on {
            return;
        }
        for notes in self.notes.each() {
            *lock(notes) = Vec::with_capacity(if on { JOURNAL_DEPTH } else { 0 });
        }
    }

    /// Moves every worker's notes to `out`.
    pub fn drain(&self, out: &mut Vec<SyncRecord>) {
        for notes in self.notes.each() {
            out.extend(lock(notes).drain(..));
        }
    }

    /// Notes lost to full buffers.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// The synchronised tables and the journal, shared by the elements that
/// own the tables and the control plane that sends and receives them.
#[derive(Default)]
pub struct StateSync {
    pub journal: Journal,
    tables: Mutex<Vec<Arc<dyn Synced>>>,
    /// `ip inspect`'s timeouts and the tables `sync` covers, from the
    /// last commit.
    settings: Mutex<(Option<Timeouts>, Vec<SyncedTable>)>,
}

impl StateSync {
    /// Adds a table (its element does, once, when it is made).
    pub fn register(&self, table: Arc<dyn Synced>) {
        lock(&self.tables).push(table);
    }

    /// The tables `sync` covers now, and the timeouts to walk and adopt
    /// them by; None before the first commit.
    pub fn tables(&self) -> Option<(Vec<Arc<dyn Synced>>, Timeouts)> {
        let (timeouts, covered) = lock(&self.settings).clone();
        let tables = lock(&self.tables).clone();
        let covered = tables
            .into_iter()
            .filter(|t| covered.contains(&word_of(t.kind())));
        Some((covered.collect(), timeouts?))
    }

    /// Takes in one of the peer's records: whether it was taken (false
    /// also when no table covered by `sync` is of its kind and family).
    pub fn adopt(
        &self,
        tables: &[Arc<dyn Synced>],
        record: &SyncRecord,
        times: (u32, &Timeouts),
    ) -> bool {
        let mine = tables.iter().filter(|t| t.kind() == record.kind);
        mine.filter_map(|t| t.adopt(record, times))
            .next()
            .unwrap_or(false)
    }
}

/// The `sync` word that covers a kind of record.
fn word_of(kind: Kind) -> SyncedTable {
    match kind {
        Kind::Session => SyncedTable::Sessions,
        Kind::Nat => SyncedTable::Nat,
        Kind::SlbSession | Kind::SlbSnat => SyncedTable::Slb,
    }
}

/// The element: a commit turns the journal on or off and publishes the
/// timeouts and covered tables.
pub struct StateSyncElement(pub Arc<StateSync>);

impl DataplaneElement for StateSyncElement {
    fn compile(&self, config: &Config, _snap: &mut Snapshot) -> Result<(), String> {
        let r = &config.redundancy;
        let covered: Vec<_> = SyncedTable::ALL
            .into_iter()
            .filter(|t| r.syncs(*t))
            .collect();
        self.0.journal.enable(!covered.is_empty());
        let timeouts = Timeouts::of(&config.inspect.effective());
        *lock(&self.0.settings) = (Some(timeouts), covered);
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        Vec::new() // `show redundancy` is the control plane's
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::{Endpoint, Translation};
    use crate::sessions::TcpState;
    use std::net::Ipv4Addr;

    fn note(n: u16) -> SyncRecord {
        let tr = Translation::<Ipv4Addr> {
            protocol: 17,
            inside_vrf: 0,
            outside_vrf: 0,
            inside: Endpoint::new(Ipv4Addr::new(10, 0, 0, 1), n),
            public: Endpoint::new(Ipv4Addr::new(192, 0, 2, 1), n),
            remote: Endpoint::new(Ipv4Addr::new(198, 51, 100, 1), 53),
            from_outside: false,
        };
        SyncRecord::of_translation(Kind::Nat, &tr, TcpState::SynSent)
    }

    /// Everything `box_a` owns, as its walk sends it.
    fn walk(tables: &[Arc<dyn Synced>], t: &Timeouts) -> Vec<SyncRecord> {
        let mut out = Vec::new();
        for table in tables {
            for at in 0..SHARDS {
                table.own_in_shard(at, (1, t), &mut |r| out.push(r));
            }
        }
        out
    }

    #[test]
    fn the_peer_adopts_translations_with_their_ports_and_owns_them_after_a_takeover() {
        use crate::nat::NatState;
        let t = crate::sessions::TEST_TIMEOUTS;
        let (box_a, box_b) = (StateSync::default(), StateSync::default());
        let (nat_a, nat_b) = (Arc::new(NatState::new(1024)), Arc::new(NatState::new(1024)));
        box_a.register(crate::nat::SyncedTranslations::<Ipv4Addr, _>::new(
            Kind::Nat,
            nat_a.clone(),
        ));
        box_b.register(crate::nat::SyncedTranslations::<Ipv4Addr, _>::new(
            Kind::Nat,
            nat_b.clone(),
        ));
        let tables = |s: &StateSync| lock(&s.tables).clone();

        // Box A translates a flow: its port is taken there.
        let tr = note(4000).translation::<Ipv4Addr>().unwrap();
        let public = Endpoint::new(Ipv4Addr::new(192, 0, 2, 1), 4000);
        assert!(nat_a.mappings.adopt((0, 17), tr.inside, public));
        nat_a.table.create(&tr, (1, &t), &mut Vec::new()).unwrap();

        let sent = walk(&tables(&box_a), &t);
        assert_eq!(sent, [note(4000)]);
        assert!(sent
            .iter()
            .all(|r| box_b.adopt(&tables(&box_b), r, (1, &t))));
        assert_eq!(nat_b.table.len(), 1);
        assert_eq!(
            nat_b.mappings.counts(),
            (1, 0),
            "the public port is taken on B too"
        );
        assert_eq!(
            walk(&tables(&box_b), &t),
            [],
            "B does not send A's entry back"
        );
        assert!(
            box_b.adopt(&tables(&box_b), &note(4000), (2, &t)),
            "a refresh is taken"
        );
        assert_eq!(
            nat_b.mappings.counts(),
            (1, 0),
            "and holds no second mapping"
        );

        // B takes over: the flow's next packet finds the translation and
        // makes it B's, so B's walk now carries it.
        let found = nat_b
            .table
            .outbound((17, 0), tr.inside, tr.remote, 0, (3, &t), &mut None);
        assert_eq!(found, Some(public));
        assert_eq!(walk(&tables(&box_b), &t).len(), 1);

        // A port B gave another inside endpoint is not taken from it.
        let mut clash = tr;
        clash.inside.port = 4000 + SHARDS as u16;
        clash.public = public;
        let clash = SyncRecord::of_translation(Kind::Nat, &clash, TcpState::SynSent);
        assert!(!box_b.adopt(&tables(&box_b), &clash, (3, &t)));
        assert_eq!(nat_b.table.len(), 1);
    }

    #[test]
    fn the_journal_notes_only_while_enabled_and_counts_what_does_not_fit() {
        let journal = Journal::default();
        journal.note(|| unreachable!("not enabled: the record is not even made"));
        journal.enable(true);
        for n in 0..JOURNAL_DEPTH as u16 + 5 {
            journal.note(|| note(n));
        }
        let mut out = Vec::new();
        journal.drain(&mut out);
        assert_eq!(out.len(), JOURNAL_DEPTH);
        assert_eq!(out[0], note(0));
        assert_eq!(journal.lost(), 5);
        journal.note(|| note(1));
        out.clear();
        journal.drain(&mut out);
        assert_eq!(out, [note(1)], "drained buffers take notes again");
    }
}
