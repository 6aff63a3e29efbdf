//! The dataplane forwarding between Linux hosts in network namespaces:
//!
//! ```text
//!  h1 10.77.1.2 --- [p1 10.77.1.1  dataplane  10.77.2.1 p2] --- 10.77.2.2 h2 10.77.3.1 --- 10.77.3.2 h3
//! ```
//! h3 is reached through a static route via h2 (which forwards in its kernel).
//! With p2's MTU lowered, h1's big pings are fragmented (DF clear) or
//! refused with fragmentation needed (DF set).

mod support;

use grammar::config::{NextHop, StaticRoute};
use kernel_bypass::io::Backend;
use std::time::Duration;
use support::dataplane::{interface, received_bytes, two_hosts, TwoHosts};
use support::netns::{is_root, run, unique, Netns, Veth};

/// Two hosts around a running dataplane, and h3 behind h2; everything is
/// torn down on drop.
struct Site {
    hosts: TwoHosts,
    _h3: Netns,
    _behind: Veth,
}

impl std::ops::Deref for Site {
    type Target = TwoHosts;

    fn deref(&self) -> &TwoHosts {
        &self.hosts
    }
}

fn site(backend: Backend, workers: usize) -> Site {
    let hosts = two_hosts(backend, workers, 77, |config| {
        config.routes_mut().add_ipv4(StaticRoute {
            prefix: "10.77.3.0/24".parse().unwrap(),
            next_hop: NextHop::Address("10.77.2.2".parse().unwrap()),
            distance: 1,
        })
    });
    let h3 = Netns::new();
    let behind = Veth::into_ns(&h3);
    let h2 = &hosts.h2;
    run(&["ip", "link", "set", &behind.outer, "netns", &h2.name]);
    h2.configure(&behind.outer, "10.77.3.1/24", None);
    h2.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    h3.configure(&behind.inner, "10.77.3.2/24", Some("10.77.3.1"));
    Site {
        hosts,
        _h3: h3,
        _behind: behind,
    }
}

/// The checks every backend must pass: the appliance answers ping, routes
/// between its links and via a static route, and reports TTL expiry.
fn ping_paths(s: &Site, backend: Backend) {
    assert!(
        s.h1.ping_ok("10.77.1.1"),
        "{backend}: appliance address\n{}",
        s.dataplane.show_counters()
    );
    assert!(
        s.h1.ping_ok("10.77.2.2"),
        "{backend}: h1 -> h2\n{}",
        s.dataplane.show_counters()
    );
    assert!(s.h2.ping_ok("10.77.1.2"), "{backend}: h2 -> h1");
    assert!(
        s.h1.ping_ok("10.77.3.2"),
        "{backend}: static route to h3\n{}",
        s.dataplane.show_ip_route(None)
    );
    let text = s.h1.stdout_until(
        &["ping", "-c", "1", "-W", "2", "-t", "1", "10.77.3.2"],
        |t| t.contains("Time to live exceeded"),
    );
    assert!(
        text.contains("Time to live exceeded") && text.contains("10.77.1.1"),
        "{backend}: ttl 1 must give time exceeded from the appliance: {text}"
    );
    assert!(s.dataplane.show_arp().contains("10.77.1.2"));
}

/// A site on `backend` that has passed `ping_paths`; None (the test is
/// skipped) unless root.
fn forwarding_site(backend: Backend, workers: usize) -> Option<Site> {
    if !is_root() {
        return None;
    }
    let s = site(backend, workers);
    ping_paths(&s, backend);
    Some(s)
}

#[test]
fn af_packet_forwards_pings_http_and_iperf() {
    let Some(s) = forwarding_site(Backend::AfPacket, 1) else {
        return;
    };

    let _web = s.h2.spawn(&[
        "python3",
        "-m",
        "http.server",
        "8080",
        "--bind",
        "10.77.2.2",
    ]);
    let page =
        s.h1.stdout_until(&["curl", "-sf", "-m", "2", "http://10.77.2.2:8080/"], |t| {
            t.contains("Directory listing")
        });
    assert!(page.contains("Directory listing"), "curl across: {page:?}");

    let _iperf = s.h2.spawn(&["iperf3", "-s", "-B", "10.77.2.2", "-1"]);
    // iperf3 may exit 0 with an error in its report: retry until bytes
    // flowed; `timeout` bounds a broken path.
    let report = s.h1.stdout_until(
        &[
            "timeout",
            "15",
            "iperf3",
            "-c",
            "10.77.2.2",
            "-t",
            "2",
            "-J",
        ],
        |t| received_bytes(t) > 0,
    );
    assert!(received_bytes(&report) > 0, "iperf3 across: {report}");

    // A neighbour that never answers ARP: the sender hears so from the appliance.
    let text =
        s.h1.stdout_until(&["ping", "-c", "1", "-W", "6", "10.77.2.99"], |t| {
            t.contains("Destination Host Unreachable")
        });
    assert!(
        text.contains("From 10.77.1.1") && text.contains("Destination Host Unreachable"),
        "{text}"
    );

    // The appliance's own TCP service, over the local stack.
    s.runtime.spawn(kernel_bypass::local::serve_echo(
        s.dataplane.local_stack(),
        7,
    ));
    let echoed = s.h1.stdout_until(
        &["sh", "-c", "echo gatehouse-echo | nc -N -w 2 10.77.1.1 7"],
        |t| t.contains("gatehouse-echo"),
    );
    assert!(
        echoed.contains("gatehouse-echo"),
        "echo service: {echoed:?}\n{}",
        s.dataplane.show_counters()
    );

    let shown = s.dataplane.show_interfaces(None);
    assert!(
        shown.contains("Internet address is 10.77.1.1/24"),
        "{shown}"
    );
    assert!(!shown.contains(" 0 packets input"), "{shown}");
}

#[test]
fn apply_refuses_unknown_interfaces_and_publishes_changes_live() {
    if !is_root() {
        return;
    }
    let s = site(Backend::AfPacket, 1);
    assert!(s.h1.ping_ok("10.77.2.2"));
    let mut config = s.config.clone();
    config
        .interfaces_mut()
        .insert(unique("x"), interface(&["10.77.9.1/24"]));
    let before = s.dataplane.show_ip_route(None);
    let err = s.dataplane.apply(&config).expect_err("missing interface");
    assert!(err.contains("no such interface"), "{err}");
    assert_eq!(
        s.dataplane.show_ip_route(None),
        before,
        "a refused config changes nothing"
    );

    // Commits while traffic runs lose nothing: 200 pings across 20 commits.
    let pings = std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            s.h1.run(&["ping", "-c", "200", "-i", "0.01", "-W", "2", "10.77.2.2"])
        });
        for i in 0..20u8 {
            let mut config = s.config.clone();
            config.system_mut().hostname = Some(format!("commit{i}"));
            config.routes_mut().tables.clear();
            s.dataplane
                .apply(if i % 2 == 0 { &config } else { &s.config })
                .expect("apply");
            std::thread::sleep(Duration::from_millis(100));
        }
        pinger.join().expect("ping thread")
    });
    assert!(pings.contains("200 received"), "{pings}");

    // Remove the static route while traffic runs: h3 becomes unreachable
    // (ICMP net unreachable from the appliance), h2 stays reachable.
    let mut config = s.config.clone();
    config.routes_mut().tables.clear();
    s.dataplane.apply(&config).expect("apply");
    let text =
        s.h1.stdout_until(&["ping", "-c", "1", "-W", "2", "10.77.3.2"], |t| {
            t.contains("Destination Net Unreachable")
        });
    assert!(text.contains("Destination Net Unreachable"), "{text}");
    assert!(s.h1.ping_ok("10.77.2.2"));
    assert!(!s.dataplane.show_ip_route(None).contains("10.77.3.0/24"));
}

#[test]
fn af_xdp_forwards_pings() {
    forwarding_site(Backend::AfXdp, 1);
}

#[test]
fn tap_forwards_pings() {
    forwarding_site(Backend::Tap, 1);
}

#[test]
fn two_af_packet_workers_share_the_traffic() {
    let Some(s) = forwarding_site(Backend::AfPacket, 2) else {
        return;
    };
    // Each frame reaches exactly one worker: no duplicates, no losses.
    let out = s.h1.run(&["ping", "-c", "5", "-i", "0.2", "10.77.2.2"]);
    assert!(out.contains("5 received") && !out.contains("DUP!"), "{out}");
}

#[test]
fn big_pings_are_fragmented_without_df_and_refused_with_df() {
    let Some(s) = forwarding_site(Backend::AfPacket, 1) else {
        return;
    };
    let mut config = s.config.clone();
    let p2 = config
        .interfaces_mut()
        .values_mut()
        .find(|i| i.ipv4_addresses.contains(&"10.77.2.1/24".parse().unwrap()))
        .expect("p2");
    p2.mtu = Some(1280);
    s.dataplane.apply(&config).expect("apply");
    // 1428-byte packets: h2 reassembles the fragments and its replies
    // come back through p1's MTU of 1500 whole.
    let ping = |df| s.h1.ping_sized("10.77.2.2", 1400, df);
    let fragmented = support::retry("a reply to a fragmented ping", || {
        Some(ping("dont")).filter(|t| t.contains("1 received"))
    });
    assert!(fragmented.contains("bytes from 10.77.2.2"), "{fragmented}");
    let counters = s.dataplane.show_counters();
    assert!(counters.contains("fragments-created"), "{counters}");
    // With DF the appliance reports the MTU; once h1's kernel has learnt
    // it, ping fails locally with "message too long".
    let refused = support::retry("fragmentation needed", || {
        Some(ping("do")).filter(|t| t.contains("mtu = 1280") || t.contains("mtu=1280"))
    });
    assert!(
        refused.contains("Frag needed") || refused.contains("message too long"),
        "{refused}"
    );
}
