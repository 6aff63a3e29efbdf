//! Dataplane setups: interface configs, starting a dataplane, the Linux
//! kernel's own vxlan device as a peer, and reading iperf3 reports.

use super::netns::Netns;
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
