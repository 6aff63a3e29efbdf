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
//! gateway to a routed host.

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
    metal: Netns,
    vm: Netns,
    routed: Netns,
    links: Vec<Veth>,
    dir: Scratch,
    cli: Option<ChildStdin>,
}

impl Site {
    fn new() -> Site {
        let (metal, vm, routed) = (Netns::new(), Netns::new(), Netns::new());
        let links = vec![
            Veth::into_ns(&metal),
            Veth::into_ns(&vm),
            Veth::into_ns(&routed),
        ];
        for ns in [&metal, &vm, &routed] {
            // Quiet hosts: no IPv6 chatter to keep MACs learned.
            ns.run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ns.run(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        metal.configure(&links[0].inner, "10.30.0.10/24", Some("10.30.0.1"));
        vm.configure(&links[1].inner, "192.0.2.2/24", None);
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
            &links[1].inner,
        ]);
        vm.configure("vx0", "10.30.0.20/24", Some("10.30.0.1"));
        routed.configure(&links[2].inner, "10.40.0.2/24", Some("10.40.0.1"));
        let dir = Scratch::new("bridge");
        let config = [
            "hostname pv".to_string(),
            format!("interface {}", links[0].outer),
            format!("interface {}", links[1].outer),
            " ip address 192.0.2.1 255.255.255.0".into(),
            format!("interface {}", links[2].outer),
            " ip address 10.40.0.1 255.255.255.0".into(),
            "interface vxlan1".into(),
            " vni 5030".into(),
            format!(" source-interface {}", links[1].outer),
            " remote 192.0.2.2".into(),
            "interface bdi30".into(),
            " ip address 10.30.0.1 255.255.255.0".into(),
            "bridge-domain 30".into(),
            format!(" member {}", links[0].outer),
            " member vni 5030".into(),
            " mac aging-time 10".into(),
        ]
        .join("\n")
            + "\n";
        std::fs::write(dir.0.join("startup-config"), config).unwrap();
        Site {
            metal,
            vm,
            routed,
            links,
            dir,
            cli: None,
        }
    }

    /// `gatehouse run` with its CLI on a pipe.
    fn start(&mut self) -> Child {
        let (child, cli) = appliance::start(&self.dir.0);
        self.cli = Some(cli);
        self.typed(&["enable"]);
        child
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
    let mut site = Site::new();
    let _appliance = site.start();
    let counters = |site: &mut Site| {
        site.show("counters") + &site.show("bridge-domain") + &site.show("mac address-table")
    };
    if !site.metal.ping_ok("10.30.0.20") {
        let state = counters(&mut site);
        panic!("metal -> vm at L2\n{state}");
    }
    assert!(site.vm.ping_ok("10.30.0.10"), "vm -> metal at L2");

    let metal_mac = Site::mac_of(&site.metal, &site.links[0].inner);
    let vm_mac = Site::mac_of(&site.vm, "vx0");
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
    assert!(site.metal.ping_ok("10.30.0.1"), "metal -> its gateway");
    assert!(site.vm.ping_ok("10.30.0.1"), "vm -> its gateway");
    assert!(site.metal.ping_ok("10.40.0.2"), "metal -> routed host");
    assert!(site.vm.ping_ok("10.40.0.2"), "vm -> routed host");
    assert!(site.routed.ping_ok("10.30.0.20"), "routed host -> vm");

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
    assert!(site.metal.ping_ok("10.30.0.20"), "metal -> vm after ageing");
    site.typed(&["clear mac address-table dynamic"]);
    std::thread::sleep(Duration::from_millis(300));
    let table = site.show("mac address-table");
    assert!(!table.contains(&vm_mac), "cleared\n{table}");
}
