//! Text of the dataplane's show commands, rendered from a snapshot, the
//! learned tables and the workers' counters (read while traffic runs).

use crate::counters::{event_total, interface_totals, Counter, WorkerCounters};
use crate::learned::Learned;
use crate::pipeline::{split_neighbor6_key, split_neighbor_key, split_vtep_key, Shared};
use crate::rates::Rates;
use crate::snapshot::{
    Entry, Iface, IfaceId, IfaceKind, RouteKind, RouteTable, Snapshot, ADMIN_DOWN, GLOBAL_TABLE,
};
use crate::wire::{format_mac, mac_from_u64, Mac};
use grammar::config::InterfaceKind;
use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;

fn interface_name(snap: &Snapshot, id: u16) -> String {
    snap.interface(id)
        .map_or_else(|| format!("#{id}"), |i| i.name.clone())
}

/// The interfaces in the running configuration's order (by name).
fn by_name(snap: &Snapshot) -> Vec<&Iface> {
    let mut all: Vec<&Iface> = snap.interfaces.iter().flatten().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// IOS's interface state and line protocol: `administratively down` when
/// shut down, `down` when it cannot carry traffic for another reason (see
/// `Iface::down_reason`), `up` otherwise.
fn line_state(iface: &Iface) -> (&'static str, &'static str) {
    match iface.down_reason {
        None => ("up", "up"),
        Some(ADMIN_DOWN) => (ADMIN_DOWN, "down"),
        Some(_) => ("down", "down"),
    }
}

/// A MAC as IOS writes it: `5254.0012.3456`.
fn dotted_mac(mac: &Mac) -> String {
    format!(
        "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

/// Where IOS's `show interfaces` counts a drop: a frame that was bad is an
/// input error, one the egress port could not take an output drop (no port
/// at all an output error), any other reason an input drop.
fn drop_column(c: Counter) -> usize {
    use Counter::*;
    match c {
        EthernetRunt
        | ArpMalformed
        | Ipv4Malformed
        | Ipv4BadChecksum
        | Ipv4FragmentMalformed
        | Ipv6Malformed
        | Icmp6Malformed
        | NdMalformed
        | VxlanMalformed => 0,
        TxNoPort => 2,
        TxFull | GeneratedOverflow => 3,
        _ => 1,
    }
}

/// `show interfaces [NAME]` in IOS's layout, with the drops by reason.
pub fn interfaces(
    snap: &Snapshot,
    workers: &[Arc<WorkerCounters>],
    rates: &Rates,
    name: Option<&str>,
) -> String {
    let mut out = String::new();
    for iface in by_name(snap) {
        if name.is_some_and(|n| n != iface.name) {
            continue;
        }
        let (status, protocol) = line_state(iface);
        let why = match iface.down_reason {
            Some(why) if why != ADMIN_DOWN => format!(" ({why})"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{} is {status}, line protocol is {protocol}{why}",
            iface.name
        );
        let kind = match &iface.kind {
            Some(IfaceKind::Port { port }) => format!("port {port}"),
            Some(IfaceKind::Vlan { port, vlan }) => format!("port {port}, 802.1Q VLAN {vlan}"),
            Some(IfaceKind::Vxlan(t)) => format!("VXLAN VNI {}", t.vni),
            Some(IfaceKind::Tunnel(t)) => format!("{} tunnel", t.0.name()),
            Some(IfaceKind::L2Domain(_)) => "bridge-domain interface".to_string(),
            None => "not forwarding".to_string(),
        };
        let _ = writeln!(
            out,
            "  Hardware is {kind}, address is {}",
            dotted_mac(&iface.mac)
        );
        for (i, a) in iface.addresses.iter().enumerate() {
            let which = if i == 0 { "Internet" } else { "Secondary" };
            let _ = writeln!(out, "  {which} address is {a}");
        }
        let _ = writeln!(out, "  IPv6 link-local address is {}", iface.link_local);
        for a in &iface.ipv6_addresses {
            let _ = writeln!(out, "  IPv6 address is {a}");
        }
        let _ = write!(out, "  MTU {} bytes", iface.mtu);
        if iface.vrf != GLOBAL_TABLE {
            let vrf = snap.tables.get(usize::from(iface.vrf));
            let vrf = vrf.and_then(|t| t.vrf.as_deref()).unwrap_or_default();
            let _ = write!(out, ", VRF {vrf}");
        }
        out.push('\n');
        let rate = rates.of(iface.id);
        let _ = writeln!(
            out,
            "  5 minute input rate {:.0} bits/sec, {:.0} packets/sec\n  \
             5 minute output rate {:.0} bits/sec, {:.0} packets/sec",
            rate.rx_bits, rate.rx_packets, rate.tx_bits, rate.tx_packets
        );
        let t = interface_totals(workers, iface.id);
        let mut columns = [0u64; 4];
        for (c, n) in &t.drops {
            columns[drop_column(*c)] += n;
        }
        let [in_errors, in_drops, out_errors, out_drops] = columns;
        let _ = writeln!(
            out,
            "     {} packets input, {} bytes, {in_drops} input drops\n     \
             {in_errors} input errors\n     \
             {} packets output, {} bytes, {out_drops} output drops\n     \
             {out_errors} output errors",
            t.rx_packets, t.rx_bytes, t.tx_packets, t.tx_bytes
        );
        if !t.drops.is_empty() {
            let reasons: Vec<String> = t
                .drops
                .iter()
                .map(|(c, n)| format!("{} {} {n}", c.node(), c.name()))
                .collect();
            let _ = writeln!(out, "  Drops by reason: {}", reasons.join(", "));
        }
    }
    match name {
        Some(name) if out.is_empty() => format!("% Interface {name} does not exist\n"),
        _ => out,
    }
}

/// `show ip interface brief`: IOS's columns, the primary address or
/// `unassigned`; every address is typed in the configuration (`manual`).
pub fn ip_interface_brief(snap: &Snapshot) -> String {
    let mut out = format!(
        "{:<22} {:<15} {:<3} {:<6} {:<21} Protocol\n",
        "Interface", "IP-Address", "OK?", "Method", "Status"
    );
    for iface in by_name(snap) {
        let (status, protocol) = line_state(iface);
        let (address, method) = match iface.addresses.first() {
            Some(a) => (a.addr().to_string(), "manual"),
            None => ("unassigned".to_string(), "unset"),
        };
        let _ = writeln!(
            out,
            "{:<22} {address:<15} YES {method:<6} {status:<21} {protocol}",
            iface.name
        );
    }
    out
}

/// `show ipv6 interface brief`: IOS's `NAME [status/protocol]` with the
/// interface's IPv6 addresses under it, link-local first (every interface
/// has one).
pub fn ipv6_interface_brief(snap: &Snapshot) -> String {
    let mut out = String::new();
    for iface in by_name(snap) {
        let (status, protocol) = line_state(iface);
        let _ = writeln!(out, "{:<22} [{status}/{protocol}]", iface.name);
        let _ = writeln!(out, "    {}", iface.link_local);
        for a in iface
            .ipv6_addresses
            .iter()
            .filter(|a| a.addr() != iface.link_local)
        {
            let _ = writeln!(out, "    {}", a.addr());
        }
    }
    out
}

/// `show version`'s interface lines, as IOS counts its hardware: how many
/// interfaces of each kind the configuration has.
pub fn interface_counts(snap: &Snapshot) -> String {
    let mut counts = [0usize; 5];
    for iface in snap.interfaces.iter().flatten() {
        counts[match InterfaceKind::of(&iface.name) {
            InterfaceKind::Physical => 0,
            InterfaceKind::SubInterface { .. } => 1,
            InterfaceKind::Vxlan => 2,
            InterfaceKind::WireGuard => 3,
            InterfaceKind::Bdi => 4,
        }] += 1;
    }
    let [ethernet, dot1q, vxlan, wireguard, bdi] = counts;
    let mut out = format!("{ethernet} Ethernet interfaces\n");
    if dot1q > 0 {
        let _ = writeln!(out, "{dot1q} 802.1Q sub-interfaces");
    }
    if vxlan > 0 {
        let _ = writeln!(out, "{vxlan} VXLAN interfaces");
    }
    if wireguard > 0 {
        let _ = writeln!(out, "{wireguard} WireGuard interfaces");
    }
    if bdi > 0 {
        let _ = writeln!(out, "{bdi} bridge-domain interfaces");
    }
    out
}

/// `show ip route [vrf NAME]`.
pub fn ip_route(snap: &Snapshot, vrf: Option<&str>) -> String {
    in_table(snap, vrf, |table| route_table(snap, table.routes()))
}

/// `show ipv6 route [vrf NAME]`: link-local subnets are per interface and
/// not listed.
pub fn ipv6_route(snap: &Snapshot, vrf: Option<&str>) -> String {
    in_table(snap, vrf, |table| {
        route_table(snap, table.routes6().iter().map(|(p, e)| (*p, e)))
    })
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

fn route_table<'t, P: Display, A: Display + 't>(
    snap: &Snapshot,
    routes: impl Iterator<Item = (P, &'t Entry<A>)>,
) -> String {
    let mut out = String::from("Codes: L - local, C - connected, S - static, B - BGP\n\n");
    for (prefix, r) in routes {
        match &r.kind {
            RouteKind::Local { iface } | RouteKind::Connected { iface, .. } => {
                let code = if matches!(r.kind, RouteKind::Local { .. }) {
                    'L'
                } else {
                    'C'
                };
                let _ = writeln!(
                    out,
                    "{code}    {prefix} is directly connected, {}",
                    interface_name(snap, *iface)
                );
            }
            RouteKind::Static { hops } => {
                for (i, hop) in hops.members().iter().enumerate() {
                    let first = if i == 0 {
                        format!("{}    {prefix}", r.source.code())
                    } else {
                        String::new()
                    };
                    let via = hop
                        .gateway
                        .as_ref()
                        .map_or_else(|| "directly connected".to_string(), |g| format!("via {g}"));
                    let _ = writeln!(
                        out,
                        "{first:<23} [{}/0] {via}, {}",
                        r.distance,
                        interface_name(snap, hop.iface)
                    );
                }
            }
        }
    }
    out
}

/// `show ip arp [vrf NAME]` in IOS's layout: the table's neighbours, ages
/// in minutes, and the own addresses of its interfaces that are up (age
/// `-`).
pub fn ip_arp(snap: &Snapshot, shared: &Shared, vrf: Option<&str>) -> String {
    let Some(table) = snap.vrf_id(vrf) else {
        return format!("% VRF {} does not exist\n", vrf.unwrap_or_default());
    };
    let now = shared.now_secs();
    let in_table = |id: IfaceId| snap.interface(id).filter(|i| i.vrf == table);
    let mut rows: Vec<(Ipv4Addr, String, Mac, &str)> = Vec::new();
    let up = snap.up_interfaces().filter(|i| i.vrf == table);
    for iface in up {
        for a in &iface.addresses {
            rows.push((a.addr(), "-".into(), iface.mac, &iface.name));
        }
    }
    for (key, e) in shared.neighbors.entries() {
        let (id, ip) = split_neighbor_key(key);
        if let Some(iface) = in_table(id) {
            let age = now.wrapping_sub(e.stamp) / 60;
            rows.push((ip, age.to_string(), mac_from_u64(e.value), &iface.name));
        }
    }
    rows.sort();
    let mut out =
        String::from("Protocol  Address          Age (min)  Hardware Addr   Type   Interface\n");
    for (ip, age, mac, name) in rows {
        let _ = writeln!(
            out,
            "Internet  {:<15} {age:>9}   {:<14}  ARPA   {name}",
            ip.to_string(),
            dotted_mac(&mac)
        );
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

/// `show dataplane workers`: per worker (pinned CPU, counters), its share
/// of each port (`shares`: by interface name, per worker) and the packets
/// it received and sent there.
pub fn workers(
    snap: &Snapshot,
    workers: &[(Option<usize>, Arc<WorkerCounters>)],
    shares: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::new();
    for (index, (cpu, counters)) in workers.iter().enumerate() {
        let cpu = cpu.map_or_else(|| "not pinned".to_string(), |c| format!("CPU {c}"));
        let _ = writeln!(out, "Worker {index}, {cpu}");
        let ports = by_name(snap)
            .into_iter()
            .filter(|i| matches!(i.kind, Some(IfaceKind::Port { .. })));
        for iface in ports {
            let what = shares
                .get(&iface.name)
                .and_then(|per_worker| per_worker.get(index))
                .map_or("no port", String::as_str);
            let t = interface_totals(std::slice::from_ref(counters), iface.id);
            let _ = writeln!(
                out,
                "  {}: {what}, {} packets input, {} packets output",
                iface.name, t.rx_packets, t.tx_packets
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::neighbor_key;
    use crate::snapshot::InterfaceIds;
    use grammar::config::{Config, Interface};
    use ipnet::Ipv4Net;

    /// eth0 up with a primary and a secondary address, eth1 shut down,
    /// eth2 not attached (no port) and without addresses; only eth0 and
    /// eth1 have ports.
    fn snapshot() -> Snapshot {
        let mut c = Config::default();
        let mut eth0 = Interface::default();
        let primary: Ipv4Net = "10.9.0.1/24".parse().unwrap();
        eth0.ipv4_addresses
            .extend([primary, "10.0.0.1/24".parse().unwrap()]);
        eth0.ipv4_primary = Some(primary);
        eth0.ipv6_addresses
            .insert("2001:db8::1/64".parse().unwrap());
        let mut eth1 = Interface::default();
        eth1.ipv4_addresses.insert("10.1.0.1/24".parse().unwrap());
        eth1.shutdown = true;
        let interfaces = c.interfaces_mut();
        interfaces.insert("eth0".into(), eth0);
        interfaces.insert("eth1".into(), eth1);
        interfaces.insert("eth2".into(), Interface::default());
        let port = |name: &str| match name {
            "eth0" => Some(0),
            "eth1" => Some(1),
            _ => None,
        };
        Snapshot::compile(&c, &mut InterfaceIds::default(), &port).unwrap()
    }

    #[test]
    fn ip_interface_brief_has_ios_columns_and_states() {
        let text = ip_interface_brief(&snapshot());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "Interface              IP-Address      OK? Method Status                Protocol",
                "eth0                   10.9.0.1        YES manual up                    up",
                "eth1                   10.1.0.1        YES manual administratively down down",
                "eth2                   unassigned      YES unset  down                  down",
            ],
            "{text}"
        );
    }

    #[test]
    fn ipv6_interface_brief_lists_addresses_under_each_state() {
        let snap = snapshot();
        let text = ipv6_interface_brief(&snap);
        let eth0 = snap.interfaces.iter().flatten().find(|i| i.name == "eth0");
        let link_local = eth0.unwrap().link_local;
        assert!(
            text.starts_with(&format!(
                "eth0                   [up/up]\n    {link_local}\n    2001:db8::1\n"
            )),
            "{text}"
        );
        assert!(text.contains("eth1                   [administratively down/down]\n"));
        assert!(text.contains("eth2                   [down/down]\n"));
    }

    #[test]
    fn show_interfaces_counts_in_ios_lines_and_names_each_drop() {
        let snap = snapshot();
        let worker = Arc::new(WorkerCounters::default());
        let eth0 = snap.interfaces.iter().flatten().find(|i| i.name == "eth0");
        let id = eth0.unwrap().id;
        worker.rx(id, 100);
        worker.rx(id, 60);
        worker.tx(id, 60);
        worker.on_interface(id, Counter::Ipv4BadChecksum);
        worker.on_interface(id, Counter::Ipv4NoRoute);
        worker.on_interface(id, Counter::Ipv4NoRoute);
        worker.on_interface(id, Counter::TxFull);
        let text = interfaces(&snap, &[worker], &Rates::default(), Some("eth0"));
        for line in [
            "eth0 is up, line protocol is up\n",
            "  Internet address is 10.9.0.1/24\n  Secondary address is 10.0.0.1/24\n",
            "  5 minute input rate 0 bits/sec, 0 packets/sec\n",
            "     2 packets input, 160 bytes, 2 input drops\n     1 input errors\n",
            "     1 packets output, 60 bytes, 1 output drops\n     0 output errors\n",
            "ip4-lookup no-route 2",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        assert!(!text.contains("eth1"), "only the interface asked for");
        let all = interfaces(&snap, &[], &Rates::default(), None);
        assert!(all.contains("eth1 is administratively down, line protocol is down\n"));
        assert!(all.contains("eth2 is down, line protocol is down (not attached)\n"));
        assert_eq!(
            interfaces(&snap, &[], &Rates::default(), Some("eth7")),
            "% Interface eth7 does not exist\n"
        );
        assert_eq!(interface_counts(&snap), "3 Ethernet interfaces\n");
    }

    #[test]
    fn show_workers_gives_each_worker_its_queue_and_its_own_counts() {
        let snap = snapshot();
        let eth0 = snap.interfaces.iter().flatten().find(|i| i.name == "eth0");
        let id = eth0.unwrap().id;
        let (first, second) = (
            Arc::new(WorkerCounters::default()),
            Arc::new(WorkerCounters::default()),
        );
        first.rx(id, 100);
        second.rx(id, 100);
        second.rx(id, 100);
        second.tx(id, 100);
        let all = [(Some(0), first), (None, second)];
        let shares = BTreeMap::from([(
            "eth0".to_string(),
            vec!["rx queues 0, 2".to_string(), "rx queue 1".to_string()],
        )]);
        let text = workers(&snap, &all, &shares);
        assert!(
            text.starts_with(
                "Worker 0, CPU 0\n  eth0: rx queues 0, 2, 1 packets input, 0 packets output\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Worker 1, not pinned\n  eth0: rx queue 1, 2 packets input, 1 packets output\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("eth2"),
            "an interface without a port: {text}"
        );
        let none = workers(&snap, &all[..1], &BTreeMap::new());
        assert!(none.contains("eth0: no port,"), "{none}");
    }

    #[test]
    fn ip_arp_has_ios_columns_with_own_addresses_aged_dash() {
        let snap = snapshot();
        let shared = Shared::default();
        let eth0 = snap.interfaces.iter().flatten().find(|i| i.name == "eth0");
        let eth0 = eth0.unwrap();
        let peer = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        shared.neighbors.learn(
            neighbor_key(eth0.id, "10.9.0.2".parse().unwrap()),
            crate::wire::mac_to_u64(&peer),
            shared.now_secs(),
        );
        let text = ip_arp(&snap, &shared, None);
        let own = dotted_mac(&eth0.mac);
        assert!(
            text.starts_with(
                "Protocol  Address          Age (min)  Hardware Addr   Type   Interface\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "Internet  10.9.0.1                -   {own}  ARPA   eth0\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("Internet  10.9.0.2                0   5254.0012.3456  ARPA   eth0\n"),
            "{text}"
        );
        assert_eq!(
            ip_arp(&snap, &shared, Some("blue")),
            "% VRF blue does not exist\n"
        );
    }
}
