//! BGP's commands in IOS's layouts: `show ip bgp summary`, `show ip bgp`,
//! `show ip bgp neighbors [A.B.C.D]`, `clear ip bgp *`.

use super::fsm::State;
use super::{Bgp, PeerStatus, Shared};
use grammar::SyntaxError;
use shell::ShellBuilder;
use std::fmt::Write;
use std::net::Ipv4Addr;
use tokio::time::Instant;

/// IOS's weight of a locally originated route.
const LOCAL_WEIGHT: u32 = 32768;

pub fn register_commands(builder: ShellBuilder, bgp: &Bgp) -> Result<ShellBuilder, SyntaxError> {
    let (summary, table, neighbors, clear) = (bgp.clone(), bgp.clone(), bgp.clone(), bgp.clone());
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
        .exec(
            "clear ip bgp *",
            &[
                "Reset functions",
                "IP",
                "Clear BGP connections",
                "Clear all peers",
            ],
            move |_| {
                clear.reset_all();
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
    let row = |out: &mut String,
               mark: &str,
               network: &str,
               hop: String,
               a: (&str, String, u32, String)| {
        let (metric, local_pref, weight, path) = a;
        let _ = writeln!(
            out,
            " {mark:<4}{network:<17}{hop:<20}{metric:>6} {local_pref:>6} {weight:>6} {path}"
        );
    };
    let mut rows: Vec<(ipnet::Ipv4Net, bool)> = Vec::new();
    rows.extend(shared.originated.prefixes.keys().map(|p| (*p, true)));
    rows.extend(shared.rib.table().map(|(p, _)| (p, false)));
    rows.sort();
    let table: std::collections::BTreeMap<_, _> = shared.rib.table().collect();
    for (prefix, local) in rows {
        let network = prefix.to_string();
        if local {
            let origin = shared.originated.prefixes[&prefix].code();
            row(
                &mut out,
                "*>",
                &network,
                "0.0.0.0".into(),
                ("0", String::new(), LOCAL_WEIGHT, origin.to_string()),
            );
            continue;
        }
        for (i, path) in table[&prefix].iter().enumerate() {
            let a = &path.attributes;
            let mark = match (i, path.peer.ebgp) {
                (0, true) => "*>",
                (0, false) => "*>i",
                (_, true) => "*",
                (_, false) => "* i",
            };
            let metric = a.med.map(|m| m.to_string()).unwrap_or_default();
            let local_pref = a.local_pref.map(|l| l.to_string()).unwrap_or_default();
            let path_text = format!("{} {}", a.path_text(), a.origin.code());
            let network = if i == 0 { network.as_str() } else { "" };
            row(
                &mut out,
                mark,
                network,
                a.next_hop.to_string(),
                (&metric, local_pref, 0, path_text.trim_start().to_string()),
            );
        }
    }
    out
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
        let _ = writeln!(out, "  Connections established {}", s.established_count);
        if let Some((sent, n)) = &s.last_error {
            let way = if *sent { "sent" } else { "received" };
            let _ = writeln!(out, "  Last notification {way}: {}", n.describe());
        }
        out.push('\n');
    }
    out
}
