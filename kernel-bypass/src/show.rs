//! Text of the dataplane's show commands, rendered from a snapshot, the
//! learned tables and the workers' counters (read while traffic runs).

use crate::counters::{event_total, interface_totals, Counter, WorkerCounters};
use crate::learned::Learned;
use crate::pipeline::{split_neighbor6_key, split_neighbor_key, split_vtep_key, Shared};
use crate::snapshot::{IfaceId, IfaceKind, Route, RouteKind, RouteTable, Snapshot};
use crate::wire::{format_mac, mac_from_u64};
use std::fmt::{Display, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;

fn interface_name(snap: &Snapshot, id: u16) -> String {
    snap.interface(id)
        .map_or_else(|| format!("#{id}"), |i| i.name.clone())
}

pub fn interfaces(snap: &Snapshot, workers: &[Arc<WorkerCounters>]) -> String {
    let mut out = String::new();
    for iface in snap.interfaces.iter().flatten() {
        let state = match iface.down_reason {
            None => "up".to_string(),
            Some(why) => format!("down ({why})"),
        };
        let _ = writeln!(out, "{} is {state}", iface.name);
        let kind = match &iface.kind {
            Some(IfaceKind::Port { port }) => format!("port {port}"),
            Some(IfaceKind::Vlan { port, vlan }) => format!("port {port}, 802.1Q VLAN {vlan}"),
            Some(IfaceKind::Vxlan(t)) => format!("VXLAN VNI {}", t.vni),
            None => "not forwarding".to_string(),
        };
        let _ = writeln!(
            out,
            "  {kind}, MAC {}, MTU {}",
            format_mac(&iface.mac),
            iface.mtu
        );
        for a in &iface.addresses {
            let _ = writeln!(out, "  Internet address {a}");
        }
        let _ = writeln!(out, "  IPv6 link-local address {}", iface.link_local);
        for a in &iface.ipv6_addresses {
            let _ = writeln!(out, "  IPv6 address {a}");
        }
        let t = interface_totals(workers, iface.id);
        let _ = writeln!(
            out,
            "  rx {} packets, {} bytes; tx {} packets, {} bytes",
            t.rx_packets, t.rx_bytes, t.tx_packets, t.tx_bytes
        );
        let total: u64 = t.drops.iter().map(|(_, n)| n).sum();
        let _ = write!(out, "  drops {total}");
        for (c, n) in &t.drops {
            let _ = write!(out, ", {} {}: {n}", c.node(), c.name());
        }
        out.push('\n');
    }
    out
}

/// `show ip route [vrf NAME]`.
pub fn ip_route(snap: &Snapshot, vrf: Option<&str>) -> String {
    in_table(snap, vrf, |table| route_table(snap, &table.routes))
}

/// `show ipv6 route [vrf NAME]`: link-local subnets are per interface and
/// not listed.
pub fn ipv6_route(snap: &Snapshot, vrf: Option<&str>) -> String {
    in_table(snap, vrf, |table| route_table(snap, &table.routes6))
}

/// The text of `show` for the table of `vrf`, with IOS's header for a VRF.
fn in_table(snap: &Snapshot, vrf: Option<&str>, show: impl Fn(&RouteTable) -> String) -> String {
    match (snap.vrf_id(vrf), vrf) {
        (Some(id), None) => show(snap.table(id)),
        (Some(id), Some(name)) => format!("Routing Table: {name}\n{}", show(snap.table(id))),
        (None, name) => format!("% VRF {} does not exist\n", name.unwrap_or_default()),
    }
}

/// `show vrf`: each VRF with its route distinguisher and interfaces.
pub fn vrfs(snap: &Snapshot) -> String {
    let mut out = format!(
        "  {:<24} {:<20} {:<10} Interfaces\n",
        "Name", "Default RD", "Protocols"
    );
    for (id, table) in snap.tables.iter().enumerate().skip(1) {
        let Some(name) = &table.vrf else { continue };
        let members: Vec<&str> = snap
            .interfaces
            .iter()
            .flatten()
            .filter(|i| usize::from(i.vrf) == id)
            .map(|i| i.name.as_str())
            .collect();
        let rd = table.rd.as_deref().unwrap_or("<not set>");
        let _ = writeln!(
            out,
            "  {name:<24} {rd:<20} {:<10} {}",
            "ipv4,ipv6",
            members.join(" ")
        );
    }
    out
}

fn route_table<P: Display, A: Display>(snap: &Snapshot, routes: &[Route<P, A>]) -> String {
    let mut out = String::from("Codes: L - local, C - connected, S - static\n\n");
    for r in routes {
        match &r.kind {
            RouteKind::Local { iface } | RouteKind::Connected { iface } => {
                let code = if matches!(r.kind, RouteKind::Local { .. }) {
                    'L'
                } else {
                    'C'
                };
                let _ = writeln!(
                    out,
                    "{code}    {} is directly connected, {}",
                    r.prefix,
                    interface_name(snap, *iface)
                );
            }
            RouteKind::Static { hops } => {
                for (i, hop) in hops.members().iter().enumerate() {
                    let prefix = if i == 0 {
                        format!("S    {}", r.prefix)
                    } else {
                        String::new()
                    };
                    let via = hop
                        .gateway
                        .as_ref()
                        .map_or_else(|| "directly connected".to_string(), |g| format!("via {g}"));
                    let _ = writeln!(
                        out,
                        "{prefix:<23} [{}/0] {via}, {}",
                        r.distance,
                        interface_name(snap, hop.iface)
                    );
                }
            }
        }
    }
    out
}

pub fn arp(snap: &Snapshot, shared: &Shared) -> String {
    let rows = shared.neighbors.entries().into_iter();
    neighbor_table(snap, shared, rows.map(|(k, e)| (split_neighbor_key(k), e)))
}

/// `show ipv6 neighbors`.
pub fn ipv6_neighbors(snap: &Snapshot, shared: &Shared) -> String {
    let rows = shared.neighbors6.entries().into_iter();
    neighbor_table(snap, shared, rows.map(|(k, e)| (split_neighbor6_key(k), e)))
}

/// Neighbours sorted by interface and address, with their ages and MACs.
fn neighbor_table<A: Ord + Display>(
    snap: &Snapshot,
    shared: &Shared,
    rows: impl Iterator<Item = ((IfaceId, A), Learned)>,
) -> String {
    let now = shared.now_secs();
    let mut rows: Vec<_> = rows.collect();
    rows.sort_by(|(a, _), (b, _)| a.cmp(b));
    let width = rows
        .iter()
        .map(|((_, ip), _)| ip.to_string().len())
        .max()
        .unwrap_or(0)
        .max(16);
    let mut out = format!(
        "{:<width$} {:>9}  {:<17}  Interface\n",
        "Address", "Age (sec)", "Hardware Addr"
    );
    for ((iface, ip), e) in rows {
        let _ = writeln!(
            out,
            "{:<width$} {:>9}  {:<17}  {}",
            ip.to_string(),
            now.wrapping_sub(e.stamp),
            format_mac(&mac_from_u64(e.value)),
            interface_name(snap, iface)
        );
    }
    out
}

pub fn vxlan(snap: &Snapshot, shared: &Shared) -> String {
    let now = shared.now_secs();
    let learned: Vec<_> = shared
        .vteps
        .entries()
        .into_iter()
        .map(|(k, e)| (split_vtep_key(k), e))
        .collect();
    let mut out = String::new();
    for iface in snap.interfaces.iter().flatten() {
        let Some(IfaceKind::Vxlan(t)) = &iface.kind else {
            continue;
        };
        let remotes: Vec<String> = t.remotes.iter().map(Ipv4Addr::to_string).collect();
        let _ = writeln!(
            out,
            "{} VNI {} source {} UDP port {}\n  remote VTEPs: {}",
            iface.name,
            t.vni,
            t.source,
            t.udp_port,
            if remotes.is_empty() {
                "none".to_string()
            } else {
                remotes.join(" ")
            }
        );
        for ((_, mac), e) in learned.iter().filter(|((id, _), _)| *id == iface.id) {
            let _ = writeln!(
                out,
                "  MAC {} via VTEP {} (age {}s)",
                format_mac(mac),
                Ipv4Addr::from(e.value as u32),
                now.wrapping_sub(e.stamp)
            );
        }
    }
    out
}

pub fn counters(workers: &[Arc<WorkerCounters>]) -> String {
    let mut out = format!("{:<18} {:<22} {:>12}\n", "Node", "Counter", "Count");
    for c in Counter::ALL {
        let n = event_total(workers, *c);
        if n > 0 {
            let kind = if c.is_drop() { " (drop)" } else { "" };
            let _ = writeln!(out, "{:<18} {:<22} {:>12}{kind}", c.node(), c.name(), n);
        }
    }
    out
}
