//! `ip address dhcp` on `gatehouse run`, the real binary, against a real
//! DHCP server: dnsmasq in a namespace serving a range on a veth.
//!
//! ```text
//!  [appliance] (DHCP) --- server 10.64.1.1 (dnsmasq: 10.64.1.100-150, router 10.64.1.1)
//! ```
//!
//! The lease is dnsmasq's shortest, 2 minutes: the test waits for its
//! renewal at T1 (1 minute), then stops dnsmasq and waits for its end.

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, Child, Netns, Scratch, Veth};
use std::time::{Duration, Instant};

/// Hang guard only: a DHCP exchange takes a second or two.
const PATIENCE: Duration = Duration::from_secs(60);
/// Beyond the lease's own times (renewal at 60 s, end at 120 s).
const LEASE_PATIENCE: Duration = Duration::from_secs(200);

/// A CLI line typed and its answer (see `appliance::answer`).
type Typed<'a> = dyn FnMut(&str, &dyn Fn(&str) -> bool) -> String + 'a;

/// Polls `show dhcp lease` until it shows what is `wanted`.
fn lease_until(typed: &mut Typed<'_>, wanted: &dyn Fn(&str) -> bool, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        let shown = typed("show dhcp lease", &|t| t.contains("Replies taken"));
        if wanted(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "not as awaited:\n{shown}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_interface_with_ip_address_dhcp_takes_a_lease_from_dnsmasq_and_answers_on_it() {
    if !is_root() {
        return;
    }
    let server = Netns::new();
    let veth = Veth::into_ns(&server);
    server.configure(&veth.inner, "10.64.1.1/24", None);
    let dir = Scratch::new("dhcp");
    let leases = dir.0.join("dnsmasq.leases");
    let dnsmasq = server.spawn(&[
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        "--user=root",
        "--bind-interfaces",
        &format!("--interface={}", veth.inner),
        "--dhcp-range=10.64.1.100,10.64.1.150,255.255.255.0,2m",
        &format!("--dhcp-leasefile={}", leases.display()),
        &format!("--pid-file={}", dir.0.join("dnsmasq.pid").display()),
    ]);
    let config = format!("interface {}\n ip address dhcp\n", veth.outer);
    std::fs::write(dir.0.join("startup-config"), config).unwrap();
    let (child, mut cli) = appliance::start(&dir.0, 1);
    let _appliance = Child(child);
    // The answer so far when `done` never holds (a lease still to come).
    let mut typed = |line: &str, done: &dyn Fn(&str) -> bool| {
        appliance::answer(&dir.0, &mut cli, line, done, Duration::from_secs(5))
            .unwrap_or_else(|text| text)
    };
    typed("enable", &|_| true);
    typed("terminal length 0", &|_| true);

    let lease = lease_until(&mut typed, &|t| t.contains("state: Bound"), PATIENCE);
    let address = lease
        .lines()
        .find_map(|l| l.strip_prefix("Temp IP addr: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("leased address")
        .to_string();
    let host: u8 = address
        .strip_prefix("10.64.1.")
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("{address} is not in the range:\n{lease}"));
    assert!((100..=150).contains(&host), "{lease}");
    assert!(
        lease.contains("Temp  sub net mask: 255.255.255.0"),
        "{lease}"
    );
    assert!(lease.contains("DHCP Lease server: 10.64.1.1"), "{lease}");
    assert!(
        lease.contains("Temp default-gateway addr: 10.64.1.1"),
        "{lease}"
    );
    assert!(lease.contains("Lease: 120 secs"), "{lease}");

    let routes = typed("show ip route", &|t| t.contains("0.0.0.0/0"));
    assert!(
        routes.contains("[254/0] via 10.64.1.1"),
        "a default route with DHCP's distance:\n{routes}"
    );
    assert!(routes.contains("C    10.64.1.0/24"), "{routes}");
    assert!(server.ping_ok(&address), "no answer at {address}");

    // The lease is the dataplane's, not the operator's configuration.
    let running = typed("show running-config", &|t| t.contains("\nend"));
    assert!(
        running.lines().any(|l| l.trim_end() == " ip address dhcp"),
        "{running}"
    );
    assert!(!running.contains(&address), "{running}");

    // Renewed at T1: the offer, the ACK and the renewal's ACK taken.
    let renewed = lease_until(
        &mut typed,
        &|t| t.contains("state: Bound") && t.contains("Replies taken: 3"),
        LEASE_PATIENCE,
    );
    assert!(
        renewed.contains(&format!("Temp IP addr: {address} ")),
        "{renewed}"
    );
    assert!(
        server.ping_ok(&address),
        "no answer at {address} after renewal"
    );

    // With the server gone the lease ends: address and route removed.
    drop(dnsmasq);
    lease_until(&mut typed, &|t| t.contains("no lease"), LEASE_PATIENCE);
    let routes = typed("show ip route", &|t| {
        t.contains("Codes") && t.trim_end().ends_with('#')
    });
    assert!(!routes.contains("[254/0]"), "{routes}");
    assert!(!routes.contains("10.64.1.0/24"), "{routes}");
}
