//! Dataplane setups: interface configs, starting a dataplane, the Linux
//! kernel's own vxlan device as a peer, and reading iperf3 reports.

use super::netns::{run, unique, Netns, Veth};
use grammar::config::{Config, Interface, Vxlan};
use kernel_bypass::io::Backend;
use kernel_bypass::{Dataplane, DataplaneOptions};

/// An interface config with these IPv4 addresses (`10.0.0.1/24`).
pub fn interface(addresses: &[&str]) -> Interface {
    Interface {
        ipv4_addresses: addresses
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect(),
        ..Interface::default()
    }
}

/// An interface with one IPv6 address.
pub fn v6_interface(address: &str) -> Interface {
    Interface {
        ipv6_addresses: [address.parse().expect("address")].into(),
        ..Default::default()
    }
}

/// A VXLAN interface config: `address` on VNI `vni`, sourced from
/// `source_interface`, with these static remote VTEPs.
pub fn vxlan_interface(
    address: &str,
    vni: u32,
    source_interface: &str,
    remotes: &[&str],
) -> Interface {
    let mut tunnel = interface(&[address]);
    tunnel.vxlan = Some(Vxlan {
        vni: Some(vni),
        source_interface: Some(source_interface.to_owned()),
        remotes: remotes.iter().map(|r| r.parse().expect("remote")).collect(),
        ..Vxlan::default()
    });
    tunnel
}

/// A config with just these interfaces, by name.
pub fn config_of<'a>(interfaces: impl IntoIterator<Item = (&'a str, Interface)>) -> Config {
    let mut config = Config::default();
    for (name, iface) in interfaces {
        config.interfaces_mut().insert(name.to_owned(), iface);
    }
    config
}

/// Starts a dataplane for `config` on its own runtime (kept alive by the
/// caller for as long as the dataplane runs).
pub fn start(
    config: &Config,
    backend: Backend,
    workers: usize,
) -> (tokio::runtime::Runtime, Dataplane) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let options = DataplaneOptions { backend, workers };
    let dataplane = Dataplane::start(config, options, runtime.handle().clone())
        .unwrap_or_else(|e| panic!("start on {backend}: {e}"));
    (runtime, dataplane)
}

/// Gives `ns` a Linux vxlan device `vx0` for `vni` over `lower` (from
/// `local` to the appliance's VTEP `remote`, standard port) with `address`.
pub fn kernel_vxlan(ns: &Netns, lower: &str, vni: u32, local: &str, remote: &str, address: &str) {
    let vni = vni.to_string();
    ns.run(&[
        "ip", "link", "add", "vx0", "type", "vxlan", "id", &vni, "local", local, "remote", remote,
        "dstport", "4789", "dev", lower,
    ]);
    ns.configure("vx0", address, None);
}

/// `end.sum_received.bytes` of an iperf3 JSON report (0 if absent).
pub fn received_bytes(report: &str) -> u64 {
    let Some(at) = report.find("\"sum_received\"") else {
        return 0;
    };
    let rest = &report[at..];
    let Some(b) = rest.find("\"bytes\":") else {
        return 0;
    };
    rest[b + 8..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// Two hosts routed through a running dataplane: h1 on 10.<net>.1.2/24 and
/// h2 on 10.<net>.2.2/24, the dataplane .1 on both (its ends of veths, or
/// for the tap backend taps it creates and hands the hosts). Everything is
/// torn down on drop.
pub struct TwoHosts {
    pub dataplane: Dataplane,
    pub config: Config,
    pub h1: Netns,
    pub h2: Netns,
    /// The hosts' interfaces towards the dataplane.
    pub h1_if: String,
    pub h2_if: String,
    pub links: Vec<Veth>,
    pub runtime: tokio::runtime::Runtime,
}

/// Sets up [`TwoHosts`] on `backend` with `workers` workers; `more` adds to
/// the dataplane's configuration before it starts.
pub fn two_hosts(
    backend: Backend,
    workers: usize,
    net: u8,
    more: impl FnOnce(&mut Config),
) -> TwoHosts {
    let (h1, h2) = (Netns::new(), Netns::new());
    let mut links = Vec::new();
    // The dataplane's ends (p1, p2) and the hosts' (h1_if, h2_if).
    let (p1, p2, h1_if, h2_if) = match backend {
        Backend::Tap => {
            let (t1, t2) = (unique("t"), unique("t"));
            (t1.clone(), t2.clone(), t1, t2)
        }
        _ => {
            let (v1, v2) = (Veth::into_ns(&h1), Veth::into_ns(&h2));
            let names = (
                v1.outer.clone(),
                v2.outer.clone(),
                v1.inner.clone(),
                v2.inner.clone(),
            );
            links.extend([v1, v2]);
            names
        }
    };
    let mut config = config_of([
        (p1.as_str(), interface(&[&format!("10.{net}.1.1/24")])),
        (&p2, interface(&[&format!("10.{net}.2.1/24")])),
    ]);
    more(&mut config);
    let (runtime, dataplane) = start(&config, backend, workers);
    if backend == Backend::Tap {
        // The dataplane created the taps; the hosts get the kernel side.
        run(&["ip", "link", "set", &p1, "netns", &h1.name]);
        run(&["ip", "link", "set", &p2, "netns", &h2.name]);
    }
    h1.configure(
        &h1_if,
        &format!("10.{net}.1.2/24"),
        Some(&format!("10.{net}.1.1")),
    );
    h2.configure(
        &h2_if,
        &format!("10.{net}.2.2/24"),
        Some(&format!("10.{net}.2.1")),
    );
    TwoHosts {
        dataplane,
        config,
        h1,
        h2,
        h1_if,
        h2_if,
        links,
        runtime,
    }
}

/// The text of the element show command whose syntax starts with `syntax`
/// (run with no arguments).
pub fn show(dataplane: &Dataplane, syntax: &str) -> String {
    dataplane
        .element_commands()
        .into_iter()
        .find_map(|c| match c {
            kernel_bypass::elements::ElementCommand::Show { syntax: s, run, .. }
                if s.starts_with(syntax) =>
            {
                Some(run(&grammar::Args::default()))
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// The dataplane's drop counters on one line ("none" without drops).
pub fn drop_counters(dataplane: &Dataplane) -> String {
    let drops: Vec<String> = (dataplane.show_counters().lines())
        .filter(|l| l.ends_with("(drop)"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    match drops.is_empty() {
        true => "none".to_string(),
        false => drops.join("; "),
    }
}
