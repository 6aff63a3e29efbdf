//! The dataplane's figures for a metrics scrape, as plain numbers: every
//! interface's traffic and drops, every node counter, each routing table's
//! size and the elements' table sizes. Read while traffic runs, as `show`
//! reads them: the workers' counters are relaxed loads, the snapshot is an
//! arc-swap load, and the elements' tables are summed a shard lock at a
//! time (each held for one length read, as a packet holds it for a lookup).

use crate::counters::{event_total, interface_totals, Counter, InterfaceTotals, WorkerCounters};
use crate::snapshot::Snapshot;
use std::sync::Arc;

/// One interface's totals over the workers.
pub struct InterfaceStats {
    pub name: String,
    /// Line protocol up (it can carry traffic).
    pub up: bool,
    pub totals: InterfaceTotals,
}

/// One routing table's size.
pub struct RouteTableSize {
    /// None: the global table.
    pub vrf: Option<String>,
    pub ipv4: usize,
    pub ipv6: usize,
}

/// A table an element keeps (sessions, translations): its name in
/// metrics and how many entries it holds now.
pub type TableSize = (&'static str, usize);

pub struct DataplaneStats {
    pub interfaces: Vec<InterfaceStats>,
    /// Every counter, zeros included (a series should not appear from
    /// nowhere at its first event).
    pub counters: Vec<(Counter, u64)>,
    pub routes: Vec<RouteTableSize>,
    pub tables: Vec<TableSize>,
}

impl DataplaneStats {
    /// Reads the counters and the snapshot's tables; `tables` are the
    /// elements' sizes, read by the caller.
    pub(crate) fn read(
        snap: &Snapshot,
        workers: &[Arc<WorkerCounters>],
        tables: Vec<TableSize>,
    ) -> DataplaneStats {
        let interfaces = (snap.interfaces.iter().flatten())
            .map(|i| InterfaceStats {
                name: i.name.clone(),
                up: i.down_reason.is_none(),
                totals: interface_totals(workers, i.id),
            })
            .collect();
        let counters = (Counter::ALL.iter())
            .map(|c| (*c, event_total(workers, *c)))
            .collect();
        let routes = (snap.tables.iter())
            .map(|t| RouteTableSize {
                vrf: t.vrf.clone(),
                ipv4: t.routes.len(),
                ipv6: t.routes.routes6().len(),
            })
            .collect();
        DataplaneStats {
            interfaces,
            counters,
            routes,
            tables,
        }
    }
}
