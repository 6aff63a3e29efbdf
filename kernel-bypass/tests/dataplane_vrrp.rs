//! VRRP version 3 against keepalived (the real peer), over IPv4 and over
//! IPv6, on one LAN: a Linux bridge joining the dataplane's port,
//! keepalived's namespace and a host whose gateway is the virtual address;
//! behind the dataplane a server.
//!
//! ```text
//!  host 10.70.1.10 --\                /-- [dataplane] 10.70.1.2 --- 10.70.2.1 --- server 10.70.2.2
//!  2001:db8:70::10    +-- bridge (lan)     2001:db8:70::2    2001:db8:71::1     2001:db8:71::2
//!  keepalived 10.70.1.3 /   virtual router 51: 10.70.1.254; fe80::1, 2001:db8:70::254
//! ```

mod support;

use grammar::parse_config;
use kernel_bypass::io::Backend;
use std::time::Duration;
use support::dataplane::{show, start};
use support::netns::{is_root, run, unique, Child, Netns, Scratch, Veth};
use support::wait_until;

const KEEPALIVED: &str = "global_defs {\n vrrp_version 3\n}\n\
    vrrp_instance GATEHOUSE {\n state BACKUP\n interface kr0\n virtual_router_id 51\n priority 100\n \
    advert_int 1\n virtual_ipaddress {\n  10.70.1.254/24\n }\n}\n";

/// The IPv6 virtual router: the link-local address first (RFC 5798 5.2.9),
/// the same list as the dataplane's.
const KEEPALIVED_IPV6: &str = "global_defs {\n vrrp_version 3\n}\n\
    vrrp_instance GATEHOUSE6 {\n state BACKUP\n interface kr0\n virtual_router_id 51\n priority 100\n \
    advert_int 1\n virtual_ipaddress {\n  fe80::1/64\n  2001:db8:70::254/64\n }\n}\n";

/// keepalived's master-down interval at priority 100 with 1 s adverts
/// (3 s and a 609 ms skew), and a margin: a backup still backup after it
/// has heard the master's adverts.
const KEEPALIVED_MASTER_DOWN: Duration = Duration::from_millis(4500);

const VRRP_IPV4: &str = " vrrp 51 address 10.70.1.254\n";
const VRRP_IPV6: &str = " vrrp 51 ipv6 FE80::1\n vrrp 51 ipv6 2001:db8:70::254\n";

/// Moves `ifname` into the LAN namespace's bridge.
fn into_bridge(lan: &Netns, ifname: &str) {
    run(&["ip", "link", "set", ifname, "netns", &lan.name]);
    lan.run(&["ip", "link", "set", ifname, "master", "br0"]);
    lan.run(&["ip", "link", "set", ifname, "up"]);
}

/// A veth whose `inner` end is named `name` in `ns` and whose other end
/// joins the bridge.
fn lan_port(lan: &Netns, ns: &Netns, name: &str) -> String {
    let a = unique("l");
    // The peer is made in `ns` at once: its name is only unique there.
    run(&[
        "ip", "link", "add", &a, "type", "veth", "peer", "name", name, "netns", &ns.name,
    ]);
    into_bridge(lan, &a);
    name.to_string()
}

struct Site {
    _lan: Netns,
    host: Netns,
    keepalived_ns: Netns,
    _server: Netns,
    port: Veth,
    far: Veth,
    dir: Scratch,
}

impl Site {
    fn new() -> Site {
        let (lan, host, keepalived_ns, server) =
            (Netns::new(), Netns::new(), Netns::new(), Netns::new());
        lan.run(&["ip", "link", "add", "br0", "type", "bridge"]);
        lan.run(&["ip", "link", "set", "br0", "up"]);
        // The dataplane's LAN port: its inner end joins the bridge.
        let port = Veth::into_ns(&lan);
        lan.run(&["ip", "link", "set", &port.inner, "master", "br0"]);
        lan.run(&["ip", "link", "set", &port.inner, "up"]);
        let host_if = lan_port(&lan, &host, "h0");
        host.configure(&host_if, "10.70.1.10/24", Some("10.70.1.254"));
        host.configure(&host_if, "2001:db8:70::10/64", Some("2001:db8:70::254"));
        let kr = lan_port(&lan, &keepalived_ns, "kr0");
        keepalived_ns.configure(&kr, "10.70.1.3/24", None);
        let far = Veth::into_ns(&server);
        server.configure(&far.inner, "10.70.2.2/24", Some("10.70.2.1"));
        server.configure(&far.inner, "2001:db8:71::2/64", Some("2001:db8:71::1"));
        let dir = Scratch::new("vrrp");
        Site {
            _lan: lan,
            host,
            keepalived_ns,
            _server: server,
            port,
            far,
            dir,
        }
    }

    /// The dataplane's config with group 51's `addresses` lines.
    fn config_with(&self, addresses: &str, priority: u8) -> grammar::config::Config {
        let text = format!(
            "interface {}\n ip address 10.70.1.2/24\n ipv6 address 2001:db8:70::2/64\n\
             {addresses} vrrp 51 priority {priority}\n\
             interface {}\n ip address 10.70.2.1/24\n ipv6 address 2001:db8:71::1/64\n",
            self.port.outer, self.far.outer
        );
        let (config, errors) = parse_config(&text);
        assert_eq!(errors, [], "{text}");
        assert_eq!(grammar::validate(&config), Vec::<String>::new());
        config
    }

    fn config(&self, priority: u8) -> grammar::config::Config {
        self.config_with(VRRP_IPV4, priority)
    }

    fn keepalived(&self) -> Child {
        self.keepalived_with(KEEPALIVED)
    }

    fn keepalived_with(&self, conf_text: &str) -> Child {
        let conf = self.dir.0.join("keepalived.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let pid = |name: &str| self.dir.0.join(name).to_string_lossy().into_owned();
        self.keepalived_ns.spawn(&[
            "keepalived",
            "--dont-fork",
            "--vrrp",
            "-f",
            &conf.to_string_lossy(),
            "-p",
            &pid("keepalived.pid"),
            "-r",
            &pid("vrrp.pid"),
        ])
    }

    /// Whether keepalived holds the virtual address (it is master).
    fn keepalived_is_master(&self) -> bool {
        self.keepalived_ns
            .run(&["ip", "-4", "addr", "show", "kr0"])
            .contains("10.70.1.254")
    }

    /// Whether keepalived holds the virtual IPv6 address.
    fn keepalived_is_ipv6_master(&self) -> bool {
        self.keepalived_ns
            .run(&["ip", "-6", "addr", "show", "kr0"])
            .contains("2001:db8:70::254")
    }
}

#[test]
fn gatehouse_and_keepalived_elect_fail_over_and_preempt() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let _keepalived = site.keepalived();
    let (runtime, dataplane) = start(&site.config(200), Backend::AfPacket, 1);
    let vrrp = |d: &kernel_bypass::Dataplane| show(d, "vrrp");
    wait_until("the dataplane to be master", || {
        vrrp(&dataplane).contains("State is Master")
    });
    wait_until("keepalived to stay backup", || !site.keepalived_is_master());
    // The host's gateway is the virtual address: the master routes it.
    assert!(
        site.host.ping_ok("10.70.2.2"),
        "through the virtual router\n{}",
        vrrp(&dataplane)
    );
    let neighbors = site.host.run(&["ip", "neigh", "show", "10.70.1.254"]);
    assert!(
        neighbors.contains("00:00:5e:00:01:33"),
        "the virtual MAC: {neighbors}"
    );
    assert!(vrrp(&dataplane).contains("Master Router is 10.70.1.2"));

    // The master goes away: keepalived takes over.
    dataplane.stop();
    drop(runtime);
    wait_until("keepalived to take over", || site.keepalived_is_master());

    // It comes back with the higher priority: it preempts.
    let (_runtime, dataplane) = start(&site.config(200), Backend::AfPacket, 1);
    wait_until("the dataplane to preempt", || {
        vrrp(&dataplane).contains("State is Master")
    });
    wait_until("keepalived to yield", || !site.keepalived_is_master());
    assert!(
        site.host.ping_ok("10.70.2.2"),
        "through the virtual router again"
    );
}

#[test]
fn a_lower_priority_gatehouse_stays_backup_behind_keepalived() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let _keepalived = site.keepalived();
    wait_until("keepalived to be master alone", || {
        site.keepalived_is_master()
    });
    let (_runtime, dataplane) = start(&site.config(50), Backend::AfPacket, 1);
    let detail = || show(&dataplane, "vrrp");
    wait_until("the dataplane to hear keepalived", || {
        detail().contains("Master Router is 10.70.1.3, priority is 100")
    });
    let detail = detail();
    assert!(
        detail.contains("State is Backup (0 transitions)"),
        "{detail}"
    );
    assert!(site.keepalived_is_master(), "keepalived keeps the address");
}

#[test]
fn a_tracked_interface_going_down_hands_the_master_role_to_keepalived_and_back() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let _keepalived = site.keepalived();
    // Priority 200, 50 while the uplink to the server is down: keepalived's
    // 100 is in between.
    let tracked = |shutdown: bool| {
        let mut config = site.config(200);
        let track = format!(
            "interface {}\n vrrp 51 track {} decrement 150\ninterface {}\n{}",
            site.port.outer,
            site.far.outer,
            site.far.outer,
            if shutdown { " shutdown\n" } else { "" }
        );
        assert_eq!(grammar::apply_text(&mut config, &track), []);
        config
    };
    let (_runtime, dataplane) = start(&tracked(false), Backend::AfPacket, 1);
    let vrrp = || show(&dataplane, "vrrp");
    wait_until("the dataplane to be master", || {
        vrrp().contains("State is Master")
    });
    wait_until("keepalived to stay backup", || !site.keepalived_is_master());

    dataplane.apply(&tracked(true)).unwrap();
    wait_until("keepalived to take over from the lowered master", || {
        site.keepalived_is_master() && vrrp().contains("State is Backup")
    });
    assert!(vrrp().contains("Priority is 50"), "{}", vrrp());

    dataplane.apply(&tracked(false)).unwrap();
    wait_until("the dataplane to preempt again", || {
        vrrp().contains("State is Master") && !site.keepalived_is_master()
    });
}

#[test]
fn over_ipv6_gatehouse_and_keepalived_elect_fail_over_and_preempt() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let _keepalived = site.keepalived_with(KEEPALIVED_IPV6);
    let config = site.config_with(VRRP_IPV6, 200);
    let (runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    let vrrp = |d: &kernel_bypass::Dataplane| show(d, "vrrp");
    wait_until("the dataplane to be master", || {
        vrrp(&dataplane).contains("Address-Family IPv6\n  State is Master")
    });
    std::thread::sleep(KEEPALIVED_MASTER_DOWN);
    assert!(
        !site.keepalived_is_ipv6_master(),
        "keepalived takes the dataplane's adverts"
    );
    // The host's gateway is the virtual address: the master answers its
    // solicitation with the virtual MAC and routes it.
    assert!(
        site.host.ping_ok("2001:db8:71::2"),
        "through the virtual router\n{}",
        vrrp(&dataplane)
    );
    let neighbors = site
        .host
        .run(&["ip", "-6", "neigh", "show", "2001:db8:70::254"]);
    assert!(
        neighbors.contains("00:00:5e:00:02:33") && neighbors.contains("router"),
        "the virtual MAC, a router: {neighbors}"
    );
    assert!(site.host.ping_ok("2001:db8:70::254"), "the virtual address");
    let brief = show(&dataplane, "vrrp");
    assert!(
        brief.contains("Virtual IP address is fe80::1, 2001:db8:70::254"),
        "{brief}"
    );

    // The master goes away: keepalived takes over, and the host's next
    // packets reach it (its unsolicited advertisement moved the address).
    dataplane.stop();
    drop(runtime);
    wait_until("keepalived to take over", || {
        site.keepalived_is_ipv6_master()
    });
    assert!(
        site.host.ping_ok("2001:db8:70::254"),
        "keepalived as master"
    );

    // It comes back with the higher priority: it preempts, and its own
    // unsolicited advertisement moves the address back to the virtual MAC.
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    wait_until("the dataplane to preempt", || {
        vrrp(&dataplane).contains("State is Master")
    });
    wait_until("keepalived to yield", || !site.keepalived_is_ipv6_master());
    assert!(
        site.host.ping_ok("2001:db8:71::2"),
        "through the virtual router again"
    );
}

#[test]
fn over_ipv6_a_backup_gatehouse_takes_over_when_keepalived_fails() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let keepalived = site.keepalived_with(KEEPALIVED_IPV6);
    wait_until("keepalived to be master alone", || {
        site.keepalived_is_ipv6_master()
    });
    let (_runtime, dataplane) = start(&site.config_with(VRRP_IPV6, 50), Backend::AfPacket, 1);
    let detail = || show(&dataplane, "vrrp");
    wait_until("the dataplane to hear keepalived", || {
        detail().contains("Master Router is fe80::") && detail().contains("priority is 100")
    });
    assert!(
        detail().contains("State is Backup (0 transitions)"),
        "{}",
        detail()
    );
    // A backup answers no solicitation for the address: keepalived does.
    assert!(
        site.host.ping_ok("2001:db8:70::254"),
        "keepalived as master"
    );
    let neighbors = site
        .host
        .run(&["ip", "-6", "neigh", "show", "2001:db8:70::254"]);
    assert!(!neighbors.contains("00:00:5e:00:02:33"), "{neighbors}");

    // keepalived dies without a word (no priority-0 advert): the dataplane
    // takes over after the master-down interval and routes the host.
    drop(keepalived);
    wait_until("the dataplane to take over", || {
        detail().contains("State is Master")
    });
    assert!(
        site.host.ping_ok("2001:db8:71::2"),
        "through the new master\n{}",
        detail()
    );
}

#[test]
fn a_dual_stack_group_is_master_in_both_families_and_hands_both_over() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    // keepalived runs one instance per family, as RFC 5798 has them.
    let both = format!(
        "{KEEPALIVED}{}",
        KEEPALIVED_IPV6.trim_start_matches("global_defs {\n vrrp_version 3\n}\n")
    );
    let _keepalived = site.keepalived_with(&both);
    let config = site.config_with(&format!("{VRRP_IPV4}{VRRP_IPV6}"), 200);
    let (runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    let master_in = |family: &str| {
        show(&dataplane, "vrrp").contains(&format!("Address-Family {family}\n  State is Master"))
    };
    wait_until("the dataplane to be master in both families", || {
        master_in("IPv4") && master_in("IPv6")
    });
    assert!(
        site.host.ping_ok("10.70.2.2"),
        "IPv4 through the virtual router"
    );
    assert!(site.host.ping_ok("2001:db8:71::2"), "IPv6 through it");
    std::thread::sleep(KEEPALIVED_MASTER_DOWN);
    assert!(!site.keepalived_is_master() && !site.keepalived_is_ipv6_master());

    dataplane.stop();
    drop(runtime);
    wait_until("keepalived to take over both", || {
        site.keepalived_is_master() && site.keepalived_is_ipv6_master()
    });
}
