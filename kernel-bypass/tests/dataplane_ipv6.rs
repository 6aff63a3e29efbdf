//! IPv6 through the dataplane between Linux hosts in network namespaces:
//!
//! ```text
//!  h1 2001:db8:71::2 --- [p1 2001:db8:71::1  dataplane  2001:db8:72::1 p2] --- 2001:db8:72::2 h2
//!                                                                   h2 2001:db8:73::1 --- 2001:db8:73::2 h3
//! ```
//! h1's default route is the appliance's global address, h2's its
//! link-local one (fe80::/64 from the MAC); h3 is reached through a static
//! `ipv6 route` via h2, which forwards in its kernel.

mod support;

use grammar::config::{Ipv6Route, NextHop};
use kernel_bypass::io::Backend;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::link_local_for;
use support::dataplane::{config_of, start, v6_interface};
use support::netns::{is_root, run, Netns, Veth};

#[test]
fn hosts_ping_each_other_the_appliance_and_a_static_route_over_ipv6() {
    if !is_root() {
        return;
    }
    let (h1, h2, h3) = (Netns::new(), Netns::new(), Netns::new());
    let (v1, v2) = (Veth::into_ns(&h1), Veth::into_ns(&h2));
    let mut config = config_of([
        (v1.outer.as_str(), v6_interface("2001:db8:71::1/64")),
        (&v2.outer, v6_interface("2001:db8:72::1/64")),
    ]);
    config.routes_mut().add_ipv6(Ipv6Route {
        prefix: "2001:db8:73::/64".parse().unwrap(),
        next_hop: NextHop::Address("2001:db8:72::2".parse().unwrap()),
        distance: 1,
    });
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    h1.configure(&v1.inner, "2001:db8:71::2/64", Some("2001:db8:71::1"));
    let router_link_local = link_local_for(&mac_for(&v2.outer)).to_string();
    h2.configure(&v2.inner, "2001:db8:72::2/64", Some(&router_link_local));
    let behind = Veth::into_ns(&h3);
    run(&["ip", "link", "set", &behind.outer, "netns", &h2.name]);
    h2.configure(&behind.outer, "2001:db8:73::1/64", None);
    h2.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    h3.configure(&behind.inner, "2001:db8:73::2/64", Some("2001:db8:73::1"));

    let why = || {
        format!(
            "{}\n{}\n{}",
            dataplane.show_counters(),
            dataplane.show_ipv6_route(None),
            dataplane.show_ipv6_neighbors()
        )
    };
    assert!(h1.ping_ok("2001:db8:71::1"), "appliance address\n{}", why());
    assert!(h1.ping_ok("2001:db8:72::2"), "h1 -> h2\n{}", why());
    assert!(
        h2.ping_ok("2001:db8:71::2"),
        "h2 -> h1 via link-local\n{}",
        why()
    );
    let on_link = format!("{router_link_local}%{}", v2.inner);
    assert!(h2.ping_ok(&on_link), "appliance link-local\n{}", why());
    assert!(
        h1.ping_ok("2001:db8:73::2"),
        "static route to h3\n{}",
        why()
    );

    let text = h1.stdout_until(
        &[
            "ping",
            "-6",
            "-c",
            "1",
            "-W",
            "2",
            "-t",
            "1",
            "2001:db8:73::2",
        ],
        |t| t.contains("Time exceeded"),
    );
    assert!(
        text.contains("From 2001:db8:71::1") && text.contains("Time exceeded: Hop limit"),
        "hop limit 1 must give time exceeded from the appliance: {text}"
    );
    let unreachable = h1.output(&["ping", "-6", "-c", "1", "-W", "2", "2001:db8:99::1"]);
    let text = String::from_utf8_lossy(&unreachable.stdout);
    assert!(
        !unreachable.status.success() && text.contains("Destination unreachable: No route"),
        "no route: {text}"
    );

    let neighbors = dataplane.show_ipv6_neighbors();
    assert!(neighbors.contains("2001:db8:71::2"), "{neighbors}");
    assert!(neighbors.contains("2001:db8:72::2"), "{neighbors}");
    let routes = dataplane.show_ipv6_route(None);
    assert!(routes.contains("S    2001:db8:73::/64"), "{routes}");
    assert!(routes.contains("via 2001:db8:72::2"), "{routes}");
}
