//! VXLAN interop with the Linux kernel's vxlan device:
//!
//! ```text
//!  h1: vx0 10.78.100.2 (VNI 42) over 10.78.1.2 --- [p1 10.78.1.1, vxlan42 10.78.100.1  dataplane  10.78.2.1 p2] --- 10.78.2.2 h2
//! ```
//! h1 reaches h2 only through the overlay, and h2 reaches h1's overlay address.
//! With the tunnel's MTU raised to the underlay's, outer packets too big for
//! the underlay are fragmented and h1's kernel reassembles them.

mod support;

use kernel_bypass::io::Backend;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::format_mac;
use support::dataplane::{
    config_of, interface, kernel_vxlan, received_bytes, start, vxlan_interface,
};
use support::netns::{is_root, Netns, Veth};

#[test]
fn linux_vxlan_peer_reaches_routed_host_both_ways() {
    if !is_root() {
        return;
    }
    let (h1, h2) = (Netns::new(), Netns::new());
    let (v1, v2) = (Veth::into_ns(&h1), Veth::into_ns(&h2));

    let config = config_of([
        (v1.outer.as_str(), interface(&["10.78.1.1/24"])),
        (&v2.outer, interface(&["10.78.2.1/24"])),
        (
            "vxlan42",
            vxlan_interface("10.78.100.1/24", 42, &v1.outer, &["10.78.1.2"]),
        ),
    ]);
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);

    h1.configure(&v1.inner, "10.78.1.2/24", None);
    kernel_vxlan(
        &h1,
        &v1.inner,
        42,
        "10.78.1.2",
        "10.78.1.1",
        "10.78.100.2/24",
    );
    h1.run(&["ip", "route", "add", "10.78.2.0/24", "via", "10.78.100.1"]);
    h2.configure(&v2.inner, "10.78.2.2/24", Some("10.78.2.1"));

    assert!(
        h1.ping_ok("10.78.100.1"),
        "appliance over the overlay\n{}",
        dataplane.show_counters()
    );
    assert!(
        h1.ping_ok("10.78.2.2"),
        "overlay to routed host\n{}",
        dataplane.show_counters()
    );
    assert!(h2.ping_ok("10.78.100.2"), "routed host to overlay");

    // TCP both ways across the overlay: iperf3 from the routed host to the
    // overlay host, with the reverse direction (-R) too.
    let _server = h1.spawn(&["iperf3", "-s", "-B", "10.78.100.2"]);
    for direction in [None, Some("-R")] {
        // Bounded: a broken path must fail the test, not hang it.
        let mut args = vec![
            "timeout",
            "15",
            "iperf3",
            "-c",
            "10.78.100.2",
            "-t",
            "1",
            "-J",
        ];
        args.extend(direction);
        let report = h2.stdout_until(&args, |t| received_bytes(t) > 0);
        assert!(
            received_bytes(&report) > 0,
            "iperf3 {direction:?} over VXLAN: {report}"
        );
    }

    let neigh = h1.run(&["ip", "neigh", "show", "10.78.100.1", "dev", "vx0"]);
    let mac = format_mac(&mac_for("vxlan42"));
    assert!(neigh.contains(&mac), "h1 learned {neigh:?}, expected {mac}");
    let shown = dataplane.show_vxlan();
    assert!(
        shown.contains("VNI 42") && shown.contains("via VTEP 10.78.1.2"),
        "{shown}"
    );

    let mut config = config;
    config
        .interfaces_mut()
        .get_mut("vxlan42")
        .expect("vxlan42")
        .mtu = Some(1500);
    dataplane.apply(&config).expect("apply");
    // 1488-byte inner packets fit the tunnel; encapsulated they are 1538.
    let reply = support::retry("a reply over fragmented VXLAN", || {
        let text = h2.ping_sized("10.78.100.2", 1460, "dont");
        text.contains("1 received").then_some(text)
    });
    assert!(reply.contains("bytes from 10.78.100.2"), "{reply}");
    let counters = dataplane.show_counters();
    assert!(counters.contains("packets-fragmented"), "{counters}");
}
