//! The local stack behind the real forwarding pipeline: a Linux host
//! reaches the appliance's own TCP services on a physical interface and on
//! a VXLAN interface (through the kernel's vxlan device), and the appliance
//! connects out over the overlay; and the same services over IPv6, on a
//! global and on the link-local address.
//!
//! ```text
//!  h1: veth 10.79.1.2, vx0 10.79.100.2 (VNI 77) --- [p 10.79.1.1, vxlan77 10.79.100.1  dataplane + local stack]
//!  h2: veth 2001:db8:79::2 ------------------------ [p2 2001:db8:79::1, fe80::EUI-64  dataplane + local stack]
//!  h3: veth 2001:db8:7a::2 ------------------------ [p3 2001:db8:7a::1, fe80::EUI-64]
//! ```

mod support;

use kernel_bypass::io::Backend;
use kernel_bypass::local::{serve_echo, serve_status, LocalStack};
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::link_local_for;
use std::net::{SocketAddr, SocketAddrV4};
use support::dataplane::{
    config_of, interface, kernel_vxlan, start, v6_interface, vxlan_interface,
};
use support::local::{tcp_exchange, udp_echo};
use support::netns::{is_root, Netns, Veth};
use support::retry;

/// TCP and UDP echo on port 7, the status page on 80.
fn serve(runtime: &tokio::runtime::Runtime, stack: &LocalStack) {
    runtime.spawn(serve_echo(stack.clone(), 7));
    runtime.spawn(udp_echo(stack.clone(), 7));
    runtime.spawn(serve_status(stack.clone(), 80, || "gatehouse ok\n".into()));
}

#[test]
fn own_services_answer_on_physical_and_vxlan_interfaces() {
    if !is_root() {
        return;
    }
    let h1 = Netns::new();
    let veth = Veth::into_ns(&h1);
    let config = config_of([
        (veth.outer.as_str(), interface(&["10.79.1.1/24"])),
        (
            "vxlan77",
            vxlan_interface("10.79.100.1/24", 77, &veth.outer, &["10.79.1.2"]),
        ),
    ]);
    let (runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    let stack = dataplane.local_stack();
    serve(&runtime, &stack);

    h1.configure(&veth.inner, "10.79.1.2/24", None);
    kernel_vxlan(
        &h1,
        &veth.inner,
        77,
        "10.79.1.2",
        "10.79.1.1",
        "10.79.100.2/24",
    );

    let echoed = retry("echo on the physical interface", || {
        let out = h1.output(&["sh", "-c", "echo via-veth | nc -N -w 3 10.79.1.1 7"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text == "via-veth\n").then_some(text)
    });
    assert_eq!(echoed, "via-veth\n");

    let page = retry("status page over VXLAN", || {
        let out = h1.output(&["curl", "-sS", "-m", "3", "http://10.79.100.1/"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(page, "gatehouse ok\n", "{}", dataplane.show_counters());

    // Outgoing over the overlay: the source must be the tunnel's address.
    let _listener = h1.spawn(&["sh", "-c", "echo from-h1 | nc -N -l 10.79.100.2 7001"]);
    let target = SocketAddrV4::new("10.79.100.2".parse().unwrap(), 7001);
    let (local, received) = tcp_exchange(&runtime, &stack, target, b"from appliance\n");
    assert_eq!(local.ip().to_string(), "10.79.100.1");
    assert_eq!(received, "from-h1\n");
    dataplane.stop();
}

/// The status page at `url` as `host` gets it with curl (retried while
/// the paths come up).
fn page(host: &Netns, url: &str) -> String {
    retry(url, || {
        let out = host.output(&["curl", "-6", "-sS", "-m", "3", url]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

#[test]
fn own_services_answer_over_ipv6_on_global_and_link_local_addresses() {
    if !is_root() {
        return;
    }
    let (h2, h3) = (Netns::new(), Netns::new());
    let (v2, v3) = (Veth::into_ns(&h2), Veth::into_ns(&h3));
    let config = config_of([
        (v2.outer.as_str(), v6_interface("2001:db8:79::1/64")),
        (&v3.outer, v6_interface("2001:db8:7a::1/64")),
    ]);
    let (runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    let stack = dataplane.local_stack();
    serve(&runtime, &stack);
    h2.configure(&v2.inner, "2001:db8:79::2/64", None);
    h3.configure(&v3.inner, "2001:db8:7a::2/64", None);

    let echoed = retry("echo over IPv6", || {
        let out = h2.output(&["sh", "-c", "echo via-v6 | nc -6 -N -w 3 2001:db8:79::1 7"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text == "via-v6\n").then_some(text)
    });
    assert_eq!(echoed, "via-v6\n");
    let url = "http://[2001:db8:79::1]/";
    assert_eq!(page(&h2, url), "gatehouse ok\n");
    // Each host on its own link, so a reply leaving on the wrong interface
    // never arrives. The hosts' link-local sources stay tentative for a
    // moment (DAD): `page` retries.
    for (host, veth) in [(&h2, &v2), (&h3, &v3)] {
        let link_local = link_local_for(&mac_for(&veth.outer));
        let on_link = format!("http://[{link_local}%25{}]/", veth.inner);
        assert_eq!(page(host, &on_link), "gatehouse ok\n", "{on_link}");
        // A datagram's answer comes from the address asked, on the same link.
        let udp = format!("echo on-link | nc -6 -u -w 1 {link_local}%{} 7", veth.inner);
        let echoed = retry("UDP echo over link-local", || {
            let out = host.output(&["sh", "-c", &udp]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (text == "on-link\n").then_some(text)
        });
        assert_eq!(echoed, "on-link\n");
    }

    // Outgoing: the appliance connects to the host from its global address.
    let _listener = h2.spawn(&["sh", "-c", "echo from-h2 | nc -6 -N -l 2001:db8:79::2 7001"]);
    let target: SocketAddr = "[2001:db8:79::2]:7001".parse().unwrap();
    let (local, received) = tcp_exchange(&runtime, &stack, target, b"from appliance\n");
    assert_eq!(local.ip().to_string(), "2001:db8:79::1");
    assert_eq!(received, "from-h2\n");
    let counters = dataplane.show_counters();
    assert!(
        !counters.contains("no-route"),
        "all output routed: {counters}"
    );
    dataplane.stop();
}
