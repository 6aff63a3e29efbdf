//! BGP's commands in IOS's layouts: `show ip bgp summary`, `show ip bgp`,
//! `show ip bgp neighbors [A.B.C.D]`, `clear ip bgp *`, and the policy
//! objects BGP applies: `show ip prefix-list [NAME]`, `show route-map
//! [NAME]` (with their hit counts).

use super::fsm::State;
use super::session::PeerPolicy;
use super::{Bgp, PeerStatus, Shared};
use grammar::SyntaxError;
use ipnet::Ipv4Net;
use shell::ShellBuilder;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use tokio::time::Instant;

/// IOS's weight of a locally originated route.
const LOCAL_WEIGHT: u32 = 32768;

pub fn register_commands(builder: ShellBuilder, bgp: &Bgp) -> Result<ShellBuilder, SyntaxError> {
    let (summary, table, neighbors, clear) = (bgp.clone(), bgp.clone(), bgp.clone(), bgp.clone());
    let (lists, maps) = (bgp.clone(), bgp.clone());
    builder
        .show(
            "ip bgp summary",
            &[
                "IP information",
                "BGP information",
                "Summary of BGP neighbor status",
            ],
            move |_| render_summary(&summary.lock()),
        )?
        .show(
            "ip bgp",
            &["IP information", "BGP information"],
            move |_| render_table(&table.lock()),
        )?
        .show(
            "ip bgp neighbors [A.B.C.D$peer]",
            &[
                "IP information",
                "BGP information",
                "Detailed information on TCP and BGP neighbor connections",
                "Neighbor to display information about",
            ],
            move |args| render_neighbors(&neighbors.lock(), args.ipv4("peer")),
        )?
        .show(
            "ip prefix-list [WORD$name]",
            &[
                "IP information",
                "List IP prefix lists",
                "Name of a prefix list",
            ],
            move |args| {
                let policy = lists.lock().policy.clone();
                policy.show_prefix_lists(args.text("name"))
            },
        )?
        .show(
            "route-map [WORD$name]",
            &["route-map information", "route-map name"],
            move |args| {
                let policy = maps.lock().policy.clone();
                policy.show_route_maps(args.text("name"))
            },
        )?
        .exec(
            "clear ip bgp * [soft]",
            &[
                "Reset functions",
                "IP",
                "Clear BGP connections",
                "Clear all peers",
                "Soft reconfiguration: ask for the peers' routes again and resend ours, without a reset",
            ],
            move |args| {
                match args.has("soft") {
                    true => clear.refresh_all(),
                    false => clear.reset_all(),
                }
                Ok(String::new())
            },
        )
}

const NOT_RUNNING: &str = "% BGP not active\n";

/// `hh:mm:ss` under a day, `NdNNh` beyond, as IOS.
fn age(since: Instant) -> String {
    let s = since.elapsed().as_secs();
    match s {
        0..86400 => format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        _ => format!("{}d{:02}h", s / 86400, s / 3600 % 24),
    }
}

fn state_words(status: &PeerStatus) -> String {
    match status.state {
        State::Idle if status.admin_down => "Idle (Admin)".to_string(),
        State::Idle if status.prefix_limited => "Idle (PfxCt)".to_string(),
        state => state.name().to_string(),
    }
}

fn render_summary(shared: &Shared) -> String {
    let Some((asn, id)) = shared.local else {
        return NOT_RUNNING.to_string();
    };
    let mut out = format!("BGP router identifier {id}, local AS number {asn}\n");
    let entries = shared.rib.table().count() + shared.originated.prefixes.len();
    let _ = writeln!(out, "{entries} network entries\n");
    out.push_str("Neighbor        V           AS MsgRcvd MsgSent Up/Down  State/PfxRcd\n");
    for (peer, s) in &shared.peers {
        let up_down = s.since.map_or_else(|| "never".to_string(), age);
        let state = match s.state {
            State::Established => shared.rib.received_from(*peer).to_string(),
            _ => state_words(s),
        };
        let _ = writeln!(
            out,
            "{:<15} 4 {:>12} {:>7} {:>7} {:<8} {}",
            peer.to_string(),
            s.remote_as,
            s.received,
            s.sent,
            up_down,
            state
        );
    }
    out
}

fn render_table(shared: &Shared) -> String {
    let Some((_, id)) = shared.local else {
        return NOT_RUNNING.to_string();
    };
    let mut out = format!(
        "BGP local router ID is {id}\n\
         Status codes: * valid, > best, i - internal\n\
         Origin codes: i - IGP, e - EGP, ? - incomplete\n\n\
         \x20    Network          Next Hop            Metric LocPrf Weight Path\n"
    );
    // Per prefix: our own first (IOS's weight makes it the best), then
    // the peers' paths, best first.
    let mut rows: BTreeMap<Ipv4Net, Vec<Row>> = BTreeMap::new();
    for (prefix, origin) in &shared.originated.prefixes {
        rows.entry(*prefix).or_default().push(Row {
            mark: "*>",
            next_hop: Ipv4Addr::UNSPECIFIED,
            metric: Some(0),
            local_pref: None,
            weight: LOCAL_WEIGHT,
            path: origin.code().to_string(),
        });
    }
    for (prefix, paths) in shared.rib.table() {
        let own = rows.contains_key(&prefix);
        let rows = rows.entry(prefix).or_default();
        for (i, path) in paths.iter().enumerate() {
            let a = &path.attributes;
            let best = i == 0 && !own;
            let path_text = format!("{} {}", a.path_text(), a.origin.code());
            rows.push(Row {
                mark: match (best, path.peer.ebgp) {
                    (true, true) => "*>",
                    (true, false) => "*>i",
                    (false, true) => "*",
                    (false, false) => "* i",
                },
                next_hop: a.next_hop,
                metric: a.med,
                local_pref: a.local_pref,
                weight: 0,
                path: path_text.trim_start().to_string(),
            });
        }
    }
    for (prefix, rows) in rows {
        for (i, row) in rows.iter().enumerate() {
            let network = if i == 0 {
                prefix.to_string()
            } else {
                String::new()
            };
            let text = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                " {:<4}{network:<17}{:<20}{:>6} {:>6} {:>6} {}",
                row.mark,
                row.next_hop.to_string(),
                text(row.metric),
                text(row.local_pref),
                row.weight,
                row.path
            );
        }
    }
    out
}

/// A neighbour's filters and prefix limit, IOS's words.
fn policy_lines(out: &mut String, policy: &PeerPolicy) {
    for (filter, way) in [
        (&policy.inbound, "incoming"),
        (&policy.outbound, "outgoing"),
    ] {
        if let Some(list) = &filter.prefix_list {
            let capital = way[..1].to_uppercase() + &way[1..];
            let _ = writeln!(out, "  {capital} update prefix filter list is {list}");
        }
        if let Some(map) = &filter.route_map {
            let _ = writeln!(out, "  Route map for {way} advertisements is {map}");
        }
    }
    if let Some(limit) = policy.maximum_prefix {
        let warning = if limit.warning_only {
            " (warning-only)"
        } else {
            ""
        };
        let _ = writeln!(out, "  Maximum prefixes allowed {}{warning}", limit.max);
        let _ = writeln!(out, "  Threshold for warning message {}%", limit.threshold);
    }
}

/// One line of `show ip bgp`.
struct Row {
    mark: &'static str,
    next_hop: Ipv4Addr,
    metric: Option<u32>,
    local_pref: Option<u32>,
    weight: u32,
    path: String,
}

fn render_neighbors(shared: &Shared, only: Option<Ipv4Addr>) -> String {
    let Some((asn, _)) = shared.local else {
        return NOT_RUNNING.to_string();
    };
    if let Some(peer) = only.filter(|p| !shared.peers.contains_key(p)) {
        return format!("% No such neighbor {peer}\n");
    }
    let mut out = String::new();
    let shown = (shared.peers.iter()).filter(|(p, _)| only.is_none_or(|o| o == **p));
    for (peer, s) in shown {
        let link = if s.remote_as == asn {
            "internal"
        } else {
            "external"
        };
        let _ = writeln!(
            out,
            "BGP neighbor is {peer},  remote AS {}, {link} link",
            s.remote_as
        );
        if let Some(d) = &s.description {
            let _ = writeln!(out, " Description: {d}");
        }
        let remote_id = s
            .peer
            .as_ref()
            .map_or(Ipv4Addr::UNSPECIFIED, |p| p.router_id);
        let _ = writeln!(out, "  BGP version 4, remote router ID {remote_id}");
        let _ = match (s.state, s.since) {
            (State::Established, Some(since)) => {
                writeln!(out, "  BGP state = Established, up for {}", age(since))
            }
            _ => writeln!(out, "  BGP state = {}", state_words(s)),
        };
        if let Some(p) = &s.peer {
            let _ = writeln!(
                out,
                "  Hold time is {}, keepalive interval is {} seconds",
                p.hold_time, p.keepalive
            );
        }
        let _ = writeln!(
            out,
            "  Messages: {} received, {} sent; prefixes received {}",
            s.received,
            s.sent,
            shared.rib.received_from(*peer)
        );
        policy_lines(&mut out, &s.policy);
        let _ = writeln!(out, "  Connections established {}", s.established_count);
        if let Some((sent, n)) = &s.last_error {
            let way = if *sent { "sent" } else { "received" };
            let _ = writeln!(out, "  Last notification {way}: {}", n.describe());
        }
        out.push('\n');
    }
    out
}
