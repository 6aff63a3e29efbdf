//! TCP through the dataplane between Linux hosts with their default
//! offloads (TSO, GSO and transmit checksum offload on), as every user's
//! hosts, containers and VMs have them:
//!
//! ```text
//!  h1 10.79.1.2 --- [p1 10.79.1.1  dataplane  10.79.2.1 p2] --- 10.79.2.2 h2
//! ```
//! The senders hand their veths (or taps) TCP super-packets of up to 64 KiB
//! with partial checksums; the dataplane must forward them as wire-sized
//! segments with complete checksums, or iperf3 moves nothing. One test
//! keeps the hosts' offloads off, the setting the tests once forced.
//! A Linux VXLAN peer with default offloads sends TCP super-packets inside
//! VXLAN; they are cut inside and out.
//! Bytes are asserted, never speeds: the figures are printed.

mod support;

use kernel_bypass::io::Backend;
use support::dataplane::{
    config_of, interface, kernel_vxlan, received_bytes, start, two_hosts, vxlan_interface, TwoHosts,
};
use support::netns::{is_root, Child, Netns, Veth};

/// Far more than the handful of retransmitted segments (or the 44 KB
/// through VXLAN) that moved before super-packets were handled, and far
/// less than any backend moves in the 2 s run even on a loaded machine
/// (VXLAN moved 6 MB while the whole suite and two builds shared 2 cores).
const ENOUGH_BYTES: u64 = 1 << 20;

/// Two hosts around a running dataplane, iperf3's server on h2; torn
/// down on drop.
struct Site {
    hosts: TwoHosts,
    _server: Child,
}

impl std::ops::Deref for Site {
    type Target = TwoHosts;

    fn deref(&self) -> &TwoHosts {
        &self.hosts
    }
}

fn site(backend: Backend) -> Site {
    let hosts = two_hosts(backend, 1, 79, |_| {});
    let server = hosts.h2.spawn(&["iperf3", "-s", "-B", "10.79.2.2"]);
    Site {
        hosts,
        _server: server,
    }
}

/// The bytes h2 received in a 2 s iperf3 TCP run from h1 (with `reverse`,
/// the bytes h1 received from h2). iperf3 may exit 0 with an error in its
/// report, or find the server not yet listening: retried until bytes
/// iperf3 for 2 s to h2 (10.79.2.2), `-R` to receive, with a JSON report;
/// `timeout` bounds a broken path.
fn iperf3_client(reverse: bool) -> Vec<&'static str> {
    let mut args = vec![
        "timeout",
        "15",
        "iperf3",
        "-c",
        "10.79.2.2",
        "-t",
        "2",
        "-J",
    ];
    if reverse {
        args.push("-R");
    }
    args
}

/// flowed or `SETTLE` passed; `timeout` bounds a broken path.
fn iperf3(s: &Site, backend: Backend, reverse: bool) -> u64 {
    assert!(
        s.h1.ping_ok("10.79.2.2"),
        "{backend}: h1 -> h2\n{}",
        s.dataplane.show_counters()
    );
    let args = iperf3_client(reverse);
    let report = s.h1.stdout_until(&args, |t| received_bytes(t) > 0);
    let bytes = received_bytes(&report);
    let direction = if reverse { "h2 -> h1" } else { "h1 -> h2" };
    eprintln!(
        "{backend} {direction}: {} bytes in 2 s, {:.0} Mbit/s",
        bytes,
        bytes as f64 * 8.0 / 2.0 / 1e6
    );
    assert!(
        bytes > ENOUGH_BYTES,
        "{backend} {direction}: iperf3 moved {bytes} bytes\n{report}\n{}",
        s.dataplane.show_counters()
    );
    bytes
}

/// What a host's interface offloads, as ethtool reports them.
fn offloads(ns: &Netns, iface: &str) -> String {
    ns.run(&["ethtool", "-k", iface])
}

/// TCP both ways between hosts with default offloads through `backend`.
fn carries_tcp_with_default_offloads(backend: Backend) {
    if !is_root() {
        return;
    }
    let s = site(backend);
    let shown = offloads(&s.h1, &s.h1_if);
    assert!(
        shown.contains("tx-checksumming: on"),
        "{backend}: the host must keep checksum offload on: {shown}"
    );
    iperf3(&s, backend, false);
    iperf3(&s, backend, true);
}

#[test]
fn af_packet_carries_tcp_between_hosts_with_default_offloads() {
    carries_tcp_with_default_offloads(Backend::AfPacket);
}

#[test]
fn af_xdp_carries_tcp_between_hosts_with_default_offloads() {
    carries_tcp_with_default_offloads(Backend::AfXdp);
}

#[test]
fn tap_carries_tcp_between_hosts_with_default_offloads() {
    carries_tcp_with_default_offloads(Backend::Tap);
}

/// The one test that keeps the setting every namespace test once forced:
/// hosts that segment and checksum everything themselves.
#[test]
fn af_packet_carries_tcp_between_hosts_with_offloads_off() {
    if !is_root() {
        return;
    }
    let s = site(Backend::AfPacket);
    s.h1.offloads_off(&s.h1_if);
    s.h2.offloads_off(&s.h2_if);
    let shown = offloads(&s.h1, &s.h1_if);
    assert!(shown.contains("tcp-segmentation-offload: off"), "{shown}");
    iperf3(&s, Backend::AfPacket, false);
    iperf3(&s, Backend::AfPacket, true);
}

/// TCP both ways between a host behind a Linux VXLAN peer (VNI 42 over
/// h1's veth, default offloads) and a routed host:
///
/// ```text
///  h1: vx0 10.79.100.2 over 10.79.1.2 --- [p1, vxlan42 10.79.100.1  dataplane  p2] --- 10.79.2.2 h2
/// ```
#[test]
fn af_packet_carries_tcp_to_and_from_a_vxlan_peer_with_default_offloads() {
    if !is_root() {
        return;
    }
    let (h1, h2) = (Netns::new(), Netns::new());
    let (v1, v2) = (Veth::into_ns(&h1), Veth::into_ns(&h2));
    let config = config_of([
        (v1.outer.as_str(), interface(&["10.79.1.1/24"])),
        (&v2.outer, interface(&["10.79.2.1/24"])),
        (
            "vxlan42",
            vxlan_interface("10.79.100.1/24", 42, &v1.outer, &["10.79.1.2"]),
        ),
    ]);
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    h1.configure(&v1.inner, "10.79.1.2/24", None);
    kernel_vxlan(
        &h1,
        &v1.inner,
        42,
        "10.79.1.2",
        "10.79.1.1",
        "10.79.100.2/24",
    );
    h1.run(&["ip", "route", "add", "10.79.2.0/24", "via", "10.79.100.1"]);
    h2.configure(&v2.inner, "10.79.2.2/24", Some("10.79.2.1"));
    let _server = h2.spawn(&["iperf3", "-s", "-B", "10.79.2.2"]);
    assert!(
        h1.ping_ok("10.79.2.2"),
        "over the overlay\n{}",
        dataplane.show_counters()
    );
    for reverse in [false, true] {
        let args = iperf3_client(reverse);
        let report = h1.stdout_until(&args, |t| received_bytes(t) > 0);
        let bytes = received_bytes(&report);
        let direction = if reverse {
            "into VXLAN"
        } else {
            "out of VXLAN"
        };
        eprintln!(
            "af-packet {direction}: {bytes} bytes in 2 s, {:.0} Mbit/s",
            bytes as f64 * 8.0 / 2.0 / 1e6
        );
        assert!(
            bytes > ENOUGH_BYTES,
            "{direction}: iperf3 moved {bytes} bytes\n{report}\n{}",
            dataplane.show_counters()
        );
    }
}
