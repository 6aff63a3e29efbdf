//! The local stack behind the real forwarding pipeline: a Linux host
//! reaches the appliance's own TCP services on a physical interface and on
//! a VXLAN interface (through the kernel's vxlan device), and the appliance
//! connects out over the overlay.
//!
//! ```text
//!  h1: veth 10.79.1.2, vx0 10.79.100.2 (VNI 77) --- [p 10.79.1.1, vxlan77 10.79.100.1  dataplane + local stack]
//! ```

mod support;

use kernel_bypass::io::Backend;
use kernel_bypass::local::{serve_echo, serve_status};
use std::net::SocketAddrV4;
use support::dataplane::{config_of, interface, kernel_vxlan, start, vxlan_interface};
use support::local::tcp_exchange;
use support::netns::{is_root, Netns, Veth};
use support::retry;

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
    runtime.spawn(serve_echo(stack.clone(), 7));
    runtime.spawn(serve_status(stack.clone(), 8080, || {
        "gatehouse ok\n".into()
    }));

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
        let out = h1.output(&["curl", "-sS", "-m", "3", "http://10.79.100.1:8080/"]);
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
