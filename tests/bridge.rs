//! The physical-to-virtual gateway in `gatehouse run`, the real binary,
//! between Linux hosts in network namespaces:
//!
//! ```text
//!  metal 10.30.0.10 ------------ [port member  \
//!                                              bridge-domain 30, bdi30 10.30.0.1   appliance
//!  vm 10.30.0.20 on vx0 (Linux vxlan, VNI 5030) [vxlan1 over 192.0.2.1 /            10.40.0.1] --- routed 10.40.0.2
//!     over 192.0.2.2 -------------------------- [192.0.2.1
//! ```
//! The bare-metal host (an untagged veth member: this kernel has no
//! 8021q, tagged members are tested in memory) and the VM behind a Linux
//! VXLAN device share one segment: they ping each other (ARP crosses),
//! their MACs are learned on both sides and age out; the BDI is their
//! gateway to a routed host. Then four hosts in four domains: two in two
//! VRFs with the same subnet never see each other's frames, two in the
//! global table reach each other through their BDIs, and one domain's
//! MAC limit holds under a flood of random source MACs while its host,
//! learned before, keeps reaching the other.

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, Child, Netns, Scratch, Veth};
use std::io::Write;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

/// Hang guard only.
const PATIENCE: Duration = Duration::from_secs(30);

struct Site {
    hosts: Vec<Netns>,
    links: Vec<Veth>,
    dir: Scratch,
    cli: Option<ChildStdin>,
}

impl Site {
    /// `n` hosts, each in its namespace on a veth whose outer end the
    /// appliance gets; `config` writes its startup configuration from the
    /// outer ends' names.
    fn new(n: usize, config: impl FnOnce(&[&str]) -> String) -> Site {
        let hosts: Vec<_> = (0..n).map(|_| Netns::new()).collect();
        let links: Vec<_> = hosts.iter().map(Veth::into_ns).collect();
        for (ns, link) in hosts.iter().zip(&links) {
            // Quiet links: no IPv6 chatter (the hosts', or the root
            // namespace's on the outer ends) to keep MACs learned.
            ns.run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            let outer = format!("net.ipv6.conf.{}.disable_ipv6=1", link.outer);
            netns::run(&["sysctl", "-qw", &outer]);
        }
        let dir = Scratch::new("pv");
        let outer: Vec<_> = links.iter().map(|l| l.outer.as_str()).collect();
        std::fs::write(dir.0.join("startup-config"), config(&outer)).unwrap();
        Site {
            hosts,
            links,
            dir,
            cli: None,
        }
    }

    /// Host `i` with `address` and `gateway` on its link.
    fn host(&self, i: usize, address: &str, gateway: Option<&str>) -> &Netns {
        self.hosts[i].configure(&self.links[i].inner, address, gateway);
        &self.hosts[i]
    }

    /// `gatehouse run` with its CLI on a pipe.
    fn start(&mut self) -> Child {
        let (child, cli) = appliance::start(&self.dir.0, 1);
        self.cli = Some(cli);
        self.typed(&["enable"]);
        Child(child)
    }

    fn console(&self) -> String {
        appliance::console(&self.dir.0)
    }

    fn typed(&mut self, lines: &[&str]) {
        if let Some(stdin) = &mut self.cli {
            for line in lines {
                let _ = writeln!(stdin, "{line}");
            }
            let _ = stdin.flush();
        }
    }

    /// The output of `show LINE` at the CLI: what the console printed
    /// after it was typed.
    fn show(&mut self, line: &str) -> String {
        let before = self.console().len();
        self.typed(&[&format!("show {line}")]);
        std::thread::sleep(Duration::from_millis(500));
        self.console().get(before..).unwrap_or_default().to_string()
    }

    fn mac_of(ns: &Netns, iface: &str) -> String {
        let text = ns.run(&["cat", &format!("/sys/class/net/{iface}/address")]);
        text.trim().to_string()
    }
}

#[test]
fn metal_and_vm_share_a_segment_learn_each_other_age_out_and_route_through_the_bdi() {
    if !is_root() {
        return;
    }
    let mut site = Site::new(3, |links| {
        [
            "hostname pv".to_string(),
            format!("interface {}", links[0]),
            format!("interface {}", links[1]),
            " ip address 192.0.2.1 255.255.255.0".into(),
            format!("interface {}", links[2]),
            " ip address 10.40.0.1 255.255.255.0".into(),
            "interface vxlan1".into(),
            " vni 5030".into(),
            format!(" source-interface {}", links[1]),
            " remote 192.0.2.2".into(),
            "interface bdi30".into(),
            " ip address 10.30.0.1 255.255.255.0".into(),
            "bridge-domain 30".into(),
            format!(" member {}", links[0]),
            " member vni 5030".into(),
            " mac aging-time 10".into(),
        ]
        .join("\n")
            + "\n"
    });
    site.host(0, "10.30.0.10/24", Some("10.30.0.1"));
    let vm = site.host(1, "192.0.2.2/24", None);
    vm.run(&[
        "ip",
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "5030",
        "local",
        "192.0.2.2",
        "remote",
        "192.0.2.1",
        "dstport",
        "4789",
        "dev",
        &site.links[1].inner,
    ]);
    vm.configure("vx0", "10.30.0.20/24", Some("10.30.0.1"));
    site.host(2, "10.40.0.2/24", Some("10.40.0.1"));
    let _appliance = site.start();
    let counters = |site: &mut Site| {
        site.show("counters") + &site.show("bridge-domain") + &site.show("mac address-table")
    };
    if !site.hosts[0].ping_ok("10.30.0.20") {
        let state = counters(&mut site);
        panic!("metal -> vm at L2\n{state}");
    }
    assert!(site.hosts[1].ping_ok("10.30.0.10"), "vm -> metal at L2");

    let metal_mac = Site::mac_of(&site.hosts[0], &site.links[0].inner);
    let vm_mac = Site::mac_of(&site.hosts[1], "vx0");
    let table = site.show("mac address-table bridge-domain 30");
    assert!(
        table.contains(&metal_mac) && table.contains(&site.links[0].outer),
        "metal learned on its port\n{table}"
    );
    assert!(
        table.contains(&vm_mac) && table.contains("vxlan1 192.0.2.2"),
        "vm learned behind its VTEP\n{table}"
    );
    let domain = site.show("bridge-domain 30");
    assert!(
        domain.contains("BDI interface: bdi30 (10.30.0.1/24)"),
        "{domain}"
    );
    assert!(
        domain.contains("vxlan1 (VNI 5030, 1 remote VTEPs)"),
        "{domain}"
    );

    // The BDI is both sides' gateway: to itself and to a routed host.
    assert!(site.hosts[0].ping_ok("10.30.0.1"), "metal -> its gateway");
    assert!(site.hosts[1].ping_ok("10.30.0.1"), "vm -> its gateway");
    assert!(site.hosts[0].ping_ok("10.40.0.2"), "metal -> routed host");
    assert!(site.hosts[1].ping_ok("10.40.0.2"), "vm -> routed host");
    assert!(site.hosts[2].ping_ok("10.30.0.20"), "routed host -> vm");

    // Silence: both MACs age out (aging-time 10 s, then the sweep).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let table = site.show("mac address-table bridge-domain 30");
        if !table.contains(&metal_mac) && !table.contains(&vm_mac) {
            break;
        }
        assert!(Instant::now() < deadline, "MACs never aged out\n{table}");
        std::thread::sleep(Duration::from_secs(2));
    }
    // And come back with traffic.
    assert!(
        site.hosts[0].ping_ok("10.30.0.20"),
        "metal -> vm after ageing"
    );
    site.typed(&["clear mac address-table dynamic"]);
    std::thread::sleep(Duration::from_millis(300));
    let table = site.show("mac address-table");
    assert!(!table.contains(&vm_mac), "cleared\n{table}");
}

/// Sends `n` broadcast frames with random source MACs out of `iface`.
const MAC_FLOOD: &str = "import os,socket,sys\n\
    s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((sys.argv[1],0))\n\
    for _ in range(int(sys.argv[2])):\n \
     s.send(b'\\xff'*6+bytes([2])+os.urandom(5)+b'\\x88\\xb5'+bytes(46))\n";

#[test]
fn domains_in_two_vrfs_stay_apart_bdis_route_between_domains_and_the_mac_limit_holds() {
    if !is_root() {
        return;
    }
    // red and blue: the same subnet in two tenants; left and right: two
    // domains of the global table, right's limited to 5 MACs.
    let mut site = Site::new(4, |links| {
        let mut lines = vec![
            "vrf definition RED".to_string(),
            "vrf definition BLUE".into(),
        ];
        let bdis = [
            (1, Some("RED"), "10.50.0.1"),
            (2, Some("BLUE"), "10.50.0.1"),
            (3, None, "10.31.0.1"),
            (4, None, "10.32.0.1"),
        ];
        for ((n, vrf, address), link) in bdis.into_iter().zip(links) {
            lines.push(format!("interface {link}"));
            lines.push(format!("interface bdi{n}"));
            lines.extend(vrf.map(|v| format!(" vrf forwarding {v}")));
            lines.push(format!(" ip address {address} 255.255.255.0"));
            lines.push(format!("bridge-domain {n}\n member {link}"));
        }
        lines.push(" mac limit 5".into());
        lines.join("\n") + "\n"
    });
    site.host(0, "10.50.0.10/24", Some("10.50.0.1"));
    site.host(1, "10.50.0.10/24", Some("10.50.0.1"));
    site.host(2, "10.31.0.10/24", Some("10.31.0.1"));
    site.host(3, "10.32.0.10/24", Some("10.32.0.1"));
    let _appliance = site.start();

    let rx_packets = |site: &Site, i: usize| {
        let path = format!(
            "/sys/class/net/{}/statistics/rx_packets",
            site.links[i].inner
        );
        let text = site.hosts[i].run(&["cat", &path]);
        text.trim().parse::<u64>().unwrap_or(0)
    };
    assert!(site.hosts[1].ping_ok("10.50.0.1"), "blue -> its gateway");
    let blue_before = rx_packets(&site, 1);
    assert!(site.hosts[0].ping_ok("10.50.0.1"), "red -> its gateway");
    // Unanswered (the appliance does not answer broadcast pings): flooded only.
    let _ = site.hosts[0].output(&["ping", "-c", "3", "-i", "0.2", "-b", "10.50.0.255"]);
    assert_eq!(
        rx_packets(&site, 1),
        blue_before,
        "nothing of red's, broadcasts included, reaches blue"
    );
    let red_mac = Site::mac_of(&site.hosts[0], &site.links[0].inner);
    let blue_mac = Site::mac_of(&site.hosts[1], &site.links[1].inner);
    let red_table = site.show("mac address-table bridge-domain 1");
    assert!(
        red_table.contains(&red_mac) && !red_table.contains(&blue_mac),
        "{red_table}"
    );

    assert!(
        site.hosts[2].ping_ok("10.32.0.10"),
        "left -> right, bdi3 -> bdi4"
    );
    assert!(site.hosts[3].ping_ok("10.31.0.10"), "right -> left");

    let right = &site.links[3].inner;
    site.hosts[3].run(&["python3", "-c", MAC_FLOOD, right, "300"]);
    let domain = site.show("bridge-domain 4");
    assert!(domain.contains("MAC addresses learned: 5,"), "{domain}");
    assert!(!domain.contains("not learned (limit): 0\n"), "{domain}");
    assert!(
        site.hosts[3].ping_ok("10.31.0.10"),
        "right, learned before the flood, still reaches left"
    );
}
