//! Tenants in VRFs between Linux hosts in network namespaces. Both tenants
//! use the same addresses on both sides of one appliance:
//!
//! ```text
//!  a1 10.1.1.2 --- [pa1 10.1.1.1  VRF A  10.2.2.1 pa2] --- a2 10.2.2.2, 10.2.2.3
//!  b1 10.1.1.2 --- [pb1 10.1.1.1  VRF B  10.2.2.1 pb2] --- b2 10.2.2.2, 10.2.2.4
//!  s 10.50.0.2 --- [ps 10.50.0.1  global table]             (shared services)
//! ```
//! Each tenant reaches its own far side and never the other's; tenant A,
//! and only A, reaches the shared services through routes that leak
//! between tables by naming an interface of the other one.

mod support;

use grammar::parse_config;
use kernel_bypass::io::Backend;
use support::dataplane::start;
use support::netns::{is_root, Netns, Veth};

/// Whether a ping from `from` to `target` gets no answer (the paths were
/// proven up before, so two tries are enough).
fn unreachable(from: &Netns, target: &str) -> bool {
    !from
        .output(&["ping", "-c", "2", "-W", "1", target])
        .status
        .success()
}

#[test]
fn tenants_with_the_same_addresses_never_meet_and_leak_only_where_routed() {
    if !is_root() {
        return;
    }
    let hosts: Vec<Netns> = (0..5).map(|_| Netns::new()).collect();
    let [a1, a2, b1, b2, s] = &hosts[..] else {
        unreachable!()
    };
    let links: Vec<Veth> = hosts.iter().map(Veth::into_ns).collect();
    let port = |i: usize| links[i].outer.as_str();
    let text = format!(
        "vrf definition A\n rd 65000:1\nvrf definition B\n rd 65000:2\n\
         interface {pa1}\n vrf forwarding A\n ip address 10.1.1.1/24\n\
         interface {pa2}\n vrf forwarding A\n ip address 10.2.2.1/24\n\
         interface {pb1}\n vrf forwarding B\n ip address 10.1.1.1/24\n\
         interface {pb2}\n vrf forwarding B\n ip address 10.2.2.1/24\n\
         interface {ps}\n ip address 10.50.0.1/24\n\
         ip route vrf A 10.50.0.0/24 {ps}\n\
         ip route 10.1.1.0/24 {pa1}\n",
        pa1 = port(0),
        pa2 = port(1),
        pb1 = port(2),
        pb2 = port(3),
        ps = port(4),
    );
    let (config, errors) = parse_config(&text);
    assert_eq!(errors, [], "{text}");
    assert_eq!(grammar::validate(&config), Vec::<String>::new());
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    for (host, link, address, gateway) in [
        (a1, &links[0], "10.1.1.2/24", "10.1.1.1"),
        (a2, &links[1], "10.2.2.2/24", "10.2.2.1"),
        (b1, &links[2], "10.1.1.2/24", "10.1.1.1"),
        (b2, &links[3], "10.2.2.2/24", "10.2.2.1"),
        (s, &links[4], "10.50.0.2/24", "10.50.0.1"),
    ] {
        host.configure(&link.inner, address, Some(gateway));
    }
    // One address each far host has and the other tenant's has not.
    a2.run(&["ip", "addr", "add", "10.2.2.3/24", "dev", &links[1].inner]);
    b2.run(&["ip", "addr", "add", "10.2.2.4/24", "dev", &links[3].inner]);

    let counters = || dataplane.show_counters();
    for (host, tenant) in [(a1, "A"), (b1, "B")] {
        assert!(
            host.ping_ok("10.1.1.1"),
            "{tenant}: its gateway\n{}",
            counters()
        );
        assert!(
            host.ping_ok("10.2.2.2"),
            "{tenant}: its far side\n{}",
            counters()
        );
    }
    assert!(a1.ping_ok("10.2.2.3"), "A reaches a2's own address");
    assert!(b1.ping_ok("10.2.2.4"), "B reaches b2's own address");
    assert!(unreachable(a1, "10.2.2.4"), "A must not reach B's host");
    assert!(unreachable(b1, "10.2.2.3"), "B must not reach A's host");

    assert!(
        a1.ping_ok("10.50.0.2"),
        "A leaks to the shared services\n{}",
        counters()
    );
    assert!(unreachable(b1, "10.50.0.2"), "B has no route there");
    assert!(
        unreachable(s, "10.2.2.2"),
        "the global table has no route into either tenant's far side"
    );

    let routes = dataplane.show_ip_route(Some("A"));
    assert!(
        routes.starts_with("Routing Table: A\n") && routes.contains("10.50.0.0/24"),
        "{routes}"
    );
    assert!(!dataplane.show_ip_route(Some("B")).contains("10.50.0.0/24"));
    assert!(dataplane
        .show_ip_route(Some("C"))
        .contains("% VRF C does not exist"));
    let vrfs = dataplane.show_vrf();
    assert!(vrfs.contains("65000:1") && vrfs.contains(port(0)), "{vrfs}");
}
