//! `ping` and `traceroute` at the CLI of `gatehouse run`, the real binary,
//! from the appliance's own stack, to Linux hosts in namespaces: two Linux
//! routers forwarding between the appliance and a host.
//!
//! ```text
//!  [appliance] 10.63.1.1 --- r1 10.63.1.2 | 10.63.2.1 --- r2 10.63.2.2 | 10.63.3.1 --- host 10.63.3.2
//!  fd63:1::1                 fd63:1::2
//! ```

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, run, Child, Netns, Scratch, Veth};
use std::time::Duration;

/// Hang guard only.
const PATIENCE: Duration = Duration::from_secs(60);

/// A veth between two namespaces: `a`'s end, `b`'s end.
fn link(a: &Netns, b: &Netns) -> (Veth, String, String) {
    let veth = Veth::into_ns(a);
    run(&["ip", "link", "set", &veth.outer, "netns", &b.name]);
    let (a_end, b_end) = (veth.inner.clone(), veth.outer.clone());
    (veth, a_end, b_end)
}

#[test]
fn ping_and_traceroute_reach_a_host_behind_two_linux_routers() {
    if !is_root() {
        return;
    }
    let (r1, r2, host) = (Netns::new(), Netns::new(), Netns::new());
    let first = Veth::into_ns(&r1);
    let (_l2, r1_b, r2_a) = link(&r1, &r2);
    let (_l3, r2_b, host_if) = link(&r2, &host);
    r1.configure(&first.inner, "10.63.1.2/24", None);
    r1.run(&[
        "ip",
        "addr",
        "add",
        "fd63:1::2/64",
        "dev",
        &first.inner,
        "nodad",
    ]);
    r1.configure(&r1_b, "10.63.2.1/24", None);
    r1.run(&["ip", "route", "add", "default", "via", "10.63.1.1"]);
    r1.run(&["ip", "route", "add", "10.63.3.0/24", "via", "10.63.2.2"]);
    r2.configure(&r2_a, "10.63.2.2/24", Some("10.63.2.1"));
    r2.configure(&r2_b, "10.63.3.1/24", None);
    host.configure(&host_if, "10.63.3.2/24", Some("10.63.3.1"));
    for ns in [&r1, &r2, &host] {
        // Every probe answered: no ICMP rate limit in the test's hosts.
        ns.run(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
        ns.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    }
    let dir = Scratch::new("ping");
    let config = [
        format!("interface {}", first.outer),
        " ip address 10.63.1.1/24".into(),
        " ipv6 address fd63:1::1/64".into(),
        "ip route 10.63.0.0/16 10.63.1.2".into(),
        String::new(),
    ]
    .join("\n");
    std::fs::write(dir.0.join("startup-config"), config).unwrap();
    let (child, mut cli) = appliance::start(&dir.0, 1);
    let _appliance = Child(child);
    let mut typed = |line: &str, done: &dyn Fn(&str) -> bool| {
        appliance::answer(&dir.0, &mut cli, line, done, PATIENCE)
            .unwrap_or_else(|text| panic!("no answer to {line}:\n{text}"))
    };
    typed("enable", &|_| true);
    let finished = |t: &str| t.contains("Success rate");

    let reached = typed("ping 10.63.3.2", &finished);
    assert!(
        reached.contains("Sending 5, 100-byte ICMP Echos to 10.63.3.2"),
        "{reached}"
    );
    // The first echo may wait for ARP on the way; the others cannot fail.
    assert!(reached.contains("!!!!"), "{reached}");
    assert!(
        reached.contains("Success rate is 100 percent (5/5)")
            || reached.contains("Success rate is 80 percent (4/5)"),
        "{reached}"
    );
    assert!(reached.contains("round-trip min/avg/max"), "{reached}");

    let lost = typed("ping 10.63.9.9 repeat 3 timeout 1", &finished);
    assert!(lost.lines().any(|l| l.trim_end() == "..."), "{lost}");
    assert!(lost.contains("Success rate is 0 percent (0/3)"), "{lost}");

    let six = typed("ping fd63:1::2", &finished);
    assert!(six.contains("!!!!"), "{six}");

    let trace = typed("traceroute 10.63.3.2", &|t| t.contains("  3 10.63.3.2"));
    let hops: Vec<_> = trace.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(hops[0].starts_with("  1 10.63.1.2 "), "{trace}");
    assert!(hops[1].starts_with("  2 10.63.2.2 "), "{trace}");
    assert!(hops[2].starts_with("  3 10.63.3.2 "), "{trace}");
    assert!(hops[2].contains(" msec"), "{trace}");
}
