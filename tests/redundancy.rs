//! The high-availability pair: two `gatehouse run` (the real binary)
//! between an inside LAN and an outside LAN, VRRP on both, their state
//! synchronised over a link of their own. Long-lived TCP connections
//! through NAT and through a load-balanced virtual server keep working
//! when the master is killed (SIGKILL) and when it comes back and
//! preempts; new connections work at once.
//! (The site: `support/ha_pair.rs`.) A late standby gets thousands of
//! translations, and a split brain with the sync link cut converges.

#[path = "support/appliance.rs"]
mod appliance;
#[path = "support/ha_pair.rs"]
#[allow(dead_code)]
mod ha_pair;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use ha_pair::{dynamic, figure, settled_translations, udp_flows, Connection, Site};
use netns::is_root;

#[test]
fn connections_through_nat_and_a_virtual_server_survive_failover_and_fail_back() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let (inside, outside) = (&site.inside, &site.outside);
    let (mut a, mut b) = (site.a, site.b);
    a.write_config(2, 3, 200);
    b.write_config(3, 2, 100);
    a.start();
    b.start();
    a.redundancy_until("A to be active with B up", |t| {
        t.contains("this box is active") && t.contains("Peer: up, standby")
    });

    // Through NAT, and to the virtual server, before failover.
    let mut nat = Connection::open(inside, "203.0.113.10", "7000");
    let public = nat.ask();
    assert!(
        public.starts_with("203.0.113.100:"),
        "translated by the pool: {public:?}"
    );
    let mut balanced = Connection::open(outside, "203.0.113.80", "80");
    let backend = balanced.ask();
    assert!(backend.starts_with("web2"), "{backend:?}");
    b.redundancy_until("B to hold A's NAT and load-balancer entries", |t| {
        figure(t, "records (") >= 2
    });
    b.show_until("ip nat translations", "A's translation on B", |t| {
        t.contains(&public) && t.contains("203.0.113.10:7000")
    });
    b.show_until("ip slb sessions", "A's balanced session on B", |t| {
        t.contains("203.0.113.10")
    });

    // A dies: B takes over with the sessions.
    a.kill();
    b.redundancy_until("B to be active", |t| t.contains("this box is active"));
    assert_eq!(
        nat.ask(),
        public,
        "the NAT connection keeps its public endpoint"
    );
    assert_eq!(
        balanced.ask(),
        backend,
        "the balanced connection keeps its backend"
    );
    let mut fresh = Connection::open(inside, "203.0.113.10", "7000");
    assert!(
        fresh.ask().starts_with("203.0.113.100:"),
        "a new connection through B"
    );

    // A comes back: B's bulk copy reaches it before it preempts.
    a.start();
    let shown = a.redundancy_until("A to preempt", |t| t.contains("this box is active"));
    assert!(
        figure(&shown, "records (") >= 2,
        "A adopted B's entries:\n{shown}"
    );
    b.redundancy_until("B to stand by", |t| t.contains("this box is standby"));
    assert_eq!(nat.ask(), public, "after fail back");
    assert_eq!(balanced.ask(), backend, "after fail back");
    assert!(fresh.ask().starts_with("203.0.113.100:"));

    // A's inside link goes down: its failover group takes its outside
    // group down with it, and B takes both.
    site.lans[0].run(&["ip", "link", "set", &a.inside.inner, "down"]);
    b.redundancy_until("B to take over from A's dead link", |t| {
        t.contains("this box is active")
    });
    assert_eq!(nat.ask(), public, "after A's link went down");
    assert_eq!(balanced.ask(), backend, "after A's link went down");
    let shown = b.redundancy_until("the counters", |_| true);
    assert!(shown.contains("Split brain: 0 times"), "{shown}");
}

#[test]
fn a_late_standby_gets_every_translation_and_the_pair_converges_after_a_split_brain() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    // UDP translations live long enough for the whole test.
    let long_udp = "ip inspect udp idle-time 600\n";
    site.a.write_config_with(2, 3, 200, long_udp);
    site.b.write_config_with(3, 2, 100, long_udp);
    site.a.start();
    site.a.redundancy_until("A to be active alone", |t| {
        t.contains("this box is active") && t.contains("Peer: never heard")
    });
    udp_flows(&site.inside, 3000, 7001);
    let made = settled_translations(&mut site.a, 2000);

    // B starts after them: the bulk copy brings them all.
    site.b.start();
    site.b
        .show_until("ip nat statistics", "every translation on B", |t| {
            dynamic(t) >= made
        });

    // The sync link and B's LAN ports go: both boxes become active.
    site.plug(2, &site.b.sync, false);
    site.plug(0, &site.b.inside, false);
    site.plug(1, &site.b.outside, false);
    site.b.redundancy_until("B alone and active", |t| {
        t.contains("this box is active") && t.contains("Peer: DOWN")
    });
    // A makes more translations that B cannot hear of now.
    udp_flows(&site.inside, 500, 7002);
    let made = settled_translations(&mut site.a, made);
    let mut kept = Connection::open(&site.inside, "203.0.113.10", "7000");
    let public = kept.ask();

    // The sync link returns first: each box hears the other active.
    site.plug(2, &site.b.sync, true);
    let shown = site.a.redundancy_until("A to see the split brain", |t| {
        t.contains("Split brain: 1 times")
    });
    assert!(shown.contains("Peer: up, active"), "{shown}");
    // Then the LANs: B yields, and has every translation.
    site.plug(0, &site.b.inside, true);
    site.plug(1, &site.b.outside, true);
    site.b
        .redundancy_until("B to stand by", |t| t.contains("this box is standby"));
    site.b
        .show_until("ip nat statistics", "the cut's translations on B", |t| {
            dynamic(t) >= made
        });
    assert_eq!(kept.ask(), public, "A kept its sessions through it all");
    let log = site.a.show_until("logging", "the log", |_| true);
    assert!(log.contains("%REDUNDANCY-3-SPLIT_BRAIN"), "{log}");
    assert!(log.contains("%REDUNDANCY-4-PEER_DOWN"), "{log}");
}
