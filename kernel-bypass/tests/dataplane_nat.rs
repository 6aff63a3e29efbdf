//! NAT44 and elastic IPs between Linux hosts in network namespaces, with
//! their default offloads:
//!
//! ```text
//!  tenant A  10.40.1.2-7 --- pa \                                 / 192.0.2.2, .3 server
//!                                [dataplane] pout --- router ----
//!  tenant B  10.40.1.2   --- pb /  203.0.113.1   203.0.113.2      \ (192.0.2.1)
//!   (VRF B: the same addresses as A)
//! ```
//! Both tenants are masqueraded behind 203.0.113.1; 10.40.1.2:8080 is
//! published on 203.0.113.1:8080; 10.40.1.3 and .4 share a one-address
//! pool without overload; 10.40.1.5 and .6 have elastic IPs 198.18.1.5
//! (policed to 10 Mbit/s) and 198.18.1.6. The router routes 198.18.0.0/16
//! to the appliance, as a provider routes a customer's block.

mod support;

use grammar::config::Config;
use grammar::parse_config;
use kernel_bypass::io::Backend;
use kernel_bypass::Dataplane;
use support::dataplane::{show, start};
use support::netns::{is_root, Child, Netns, Veth};

/// A UDP server that answers who asked (address:port) and who answers.
const WHOAMI: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
    s.bind((sys.argv[1],int(sys.argv[2])))\n\
    while True:\n d,a=s.recvfrom(512)\n s.sendto(('%s:%d %s'%(a[0],a[1],sys.argv[1])).encode(),a)\n";
/// From one socket bound to argv[1]:argv[2], asks each ADDR:PORT that
/// follows and prints each answer on a line ("timeout" for none).
const ASK: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
    s.bind((sys.argv[1],int(sys.argv[2])))\n\
    s.settimeout(1)\n\
    for t in sys.argv[3:]:\n h,p=t.split(':')\n r='timeout'\n for _ in range(3):\n  s.sendto(b'who',(h,int(p)))\n  try:\n   r=s.recvfrom(512)[0].decode();break\n  except socket.timeout: pass\n print(r)\n";

struct Site {
    a: Netns,
    b: Netns,
    router: Netns,
    server: Netns,
    config: Config,
    dataplane: Dataplane,
    _links: Vec<Veth>,
    _runtime: tokio::runtime::Runtime,
}

impl Site {
    fn new() -> Site {
        let (a, b, router, server) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
        let (pa, pb, pout) = (Veth::into_ns(&a), Veth::into_ns(&b), Veth::into_ns(&router));
        // The router's link to the server: both ends in namespaces.
        let (rs, sr) = (support::netns::unique("r"), support::netns::unique("s"));
        router.run(&[
            "ip", "link", "add", &rs, "type", "veth", "peer", "name", &sr,
        ]);
        router.run(&["ip", "link", "set", &sr, "netns", &server.name]);
        let text = format!(
            "vrf definition B\n\
             ip access-list extended MASQ\n permit ip host 10.40.1.2 any\n\
             ip access-list extended POOLED\n permit ip host 10.40.1.3 any\n permit ip host 10.40.1.4 any\n\
             interface {pa}\n ip address 10.40.1.1/24\n ip nat inside\n\
             interface {pb}\n vrf forwarding B\n ip address 10.40.1.1/24\n ip nat inside\n\
             interface {pout}\n ip address 203.0.113.1/24\n ip nat outside\n\
             ip nat pool ONE 198.18.0.10 198.18.0.10 prefix-length 24\n\
             ip nat inside source list MASQ interface {pout} overload\n\
             ip nat inside source list MASQ interface {pout} vrf B overload\n\
             ip nat inside source list POOLED pool ONE\n\
             ip nat inside source static tcp 10.40.1.2 8080 203.0.113.1 8080\n\
             ip nat inside source static 10.40.1.5 198.18.1.5 police 10000000\n\
             ip nat inside source static 10.40.1.6 198.18.1.6\n\
             ip route 0.0.0.0/0 203.0.113.2\n\
             ip route vrf B 0.0.0.0/0 {pout}\n",
            pa = pa.outer,
            pb = pb.outer,
            pout = pout.outer
        );
        let (config, errors) = parse_config(&text);
        assert_eq!(errors, [], "{text}");
        assert_eq!(grammar::validate(&config), Vec::<String>::new());
        let (runtime, dataplane) = start(&config, Backend::AfPacket, 1);
        a.configure(&pa.inner, "10.40.1.2/24", Some("10.40.1.1"));
        for host in 3..=7 {
            a.run(&[
                "ip",
                "addr",
                "add",
                &format!("10.40.1.{host}/24"),
                "dev",
                &pa.inner,
            ]);
        }
        b.configure(&pb.inner, "10.40.1.2/24", Some("10.40.1.1"));
        router.configure(&pout.inner, "203.0.113.2/24", None);
        router.configure(&rs, "192.0.2.1/24", None);
        router.run(&["ip", "route", "add", "198.18.0.0/16", "via", "203.0.113.1"]);
        router.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // VRF B's default route names the interface only: the router
        // answers ARP for what lies behind it.
        router.run(&[
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{}.proxy_arp=1", pout.inner),
        ]);
        server.configure(&sr, "192.0.2.2/24", Some("192.0.2.1"));
        server.run(&["ip", "addr", "add", "192.0.2.3/24", "dev", &sr]);
        Site {
            a,
            b,
            router,
            server,
            config,
            dataplane,
            _links: vec![pa, pb, pout],
            _runtime: runtime,
        }
    }

    fn state(&self) -> String {
        [
            show(&self.dataplane, "ip nat translations"),
            show(&self.dataplane, "ip nat statistics"),
            show(&self.dataplane, "ip nat elastic-ip"),
            show(&self.dataplane, "logging"),
            self.dataplane.show_counters(),
        ]
        .join("\n")
    }
}

/// The answers `ns` gets asking `targets` from `source`:`port`.
fn ask(ns: &Netns, source: &str, port: u16, targets: &[&str]) -> Vec<String> {
    let port = port.to_string();
    let mut args = vec!["python3", "-c", ASK, source, &port];
    args.extend_from_slice(targets);
    let out = ns.output(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn whoami(ns: &Netns, address: &str, port: &str) -> Child {
    ns.spawn(&["python3", "-c", WHOAMI, address, port])
}

/// The address:port the server saw in an answer.
fn seen(answer: &str) -> &str {
    answer.split(' ').next().unwrap_or("")
}

#[test]
fn tenants_share_one_address_by_port_with_endpoint_independent_mappings() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let (a, b, server) = (&site.a, &site.b, &site.server);
    let _servers = [
        whoami(server, "192.0.2.2", "5353"),
        whoami(server, "192.0.2.3", "5353"),
        server.spawn(&["python3", "-m", "http.server", "80", "--bind", "192.0.2.2"]),
        server.spawn(&["iperf3", "-s", "-B", "192.0.2.2"]),
        a.spawn(&[
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "10.40.1.2",
        ]),
        a.spawn(&[
            "python3",
            "-m",
            "http.server",
            "9090",
            "--bind",
            "10.40.1.2",
        ]),
    ];
    assert!(
        a.ping_ok("192.0.2.2"),
        "tenant A pings out\n{}",
        site.state()
    );
    assert!(
        b.ping_ok("192.0.2.2"),
        "tenant B pings out\n{}",
        site.state()
    );
    assert!(a.fetches("http://192.0.2.2/", 40), "{}", site.state());

    // The same private endpoint in both tenants, each to both servers.
    let from_a = ask(a, "10.40.1.2", 40000, &["192.0.2.2:5353", "192.0.2.3:5353"]);
    let from_b = ask(b, "10.40.1.2", 40000, &["192.0.2.2:5353", "192.0.2.3:5353"]);
    assert_eq!(from_a.len(), 2, "{from_a:?}\n{}", site.state());
    assert!(seen(&from_a[0]).starts_with("203.0.113.1:"), "{from_a:?}");
    assert_eq!(
        seen(&from_a[0]),
        seen(&from_a[1]),
        "endpoint-independent mapping"
    );
    assert_eq!(from_b.len(), 2, "{from_b:?}\n{}", site.state());
    assert!(seen(&from_b[0]).starts_with("203.0.113.1:"), "{from_b:?}");
    assert_eq!(
        seen(&from_b[0]),
        seen(&from_b[1]),
        "endpoint-independent mapping"
    );
    assert_ne!(
        seen(&from_a[0]),
        seen(&from_b[0]),
        "two tenants, two mappings"
    );

    // TCP at full speed with the hosts' offloads on: checksums survive.
    let iperf = a.output(&["iperf3", "-c", "192.0.2.2", "-t", "2", "-J"]);
    assert!(
        iperf.status.success(),
        "iperf3 through masquerade\n{}",
        site.state()
    );

    // The outside reaches the published port and nothing else.
    assert!(
        server.fetches("http://203.0.113.1:8080/", 40),
        "port forward\n{}",
        site.state()
    );
    assert!(
        !server.fetches("http://203.0.113.1:9090/", 1),
        "unpublished port"
    );
    // Hairpinning: the inside reaches its own published port by the public address.
    assert!(
        a.fetches("http://203.0.113.1:8080/", 10),
        "hairpin\n{}",
        site.state()
    );

    // Traceroute (UDP probes): the router's and the server's ICMP errors
    // come back through the translation.
    let trace = a.run(&["traceroute", "-n", "-q", "1", "-w", "2", "192.0.2.2"]);
    let hops: Vec<&str> = trace
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        hops,
        ["10.40.1.1", "203.0.113.2", "192.0.2.2"],
        "{trace}\n{}",
        site.state()
    );

    let translations = show(&site.dataplane, "ip nat translations");
    assert!(translations.contains("203.0.113.1:8080"), "{translations}");
    assert!(translations.contains("10.40.1.2:40000"), "{translations}");
}

#[test]
fn pools_run_out_cleanly_and_elastic_ips_are_policed_and_move() {
    if !is_root() {
        return;
    }
    let site = Site::new();
    let (a, server) = (&site.a, &site.server);
    let _servers = [
        whoami(server, "192.0.2.2", "5353"),
        whoami(a, "10.40.1.6", "7000"),
        whoami(a, "10.40.1.7", "7000"),
        a.spawn(&["iperf3", "-s", "-B", "10.40.1.5", "-p", "5201"]),
        a.spawn(&["iperf3", "-s", "-B", "10.40.1.6", "-p", "5202"]),
    ];
    assert!(a.ping_ok("192.0.2.2"), "{}", site.state());

    // A one-address pool without overload: the first host gets it, ports kept.
    let first = ask(a, "10.40.1.3", 41000, &["192.0.2.2:5353"]);
    assert_eq!(
        first.first().map(|s| seen(s)),
        Some("198.18.0.10:41000"),
        "{}",
        site.state()
    );
    let second = ask(a, "10.40.1.4", 41000, &["192.0.2.2:5353"]);
    assert_eq!(second, ["timeout"], "the pool is spent\n{}", site.state());
    let statistics = show(&site.dataplane, "ip nat statistics");
    assert!(
        statistics.contains("dropped, addresses or ports exhausted: "),
        "{statistics}"
    );
    assert!(!statistics.contains("exhausted: 0"), "{statistics}");
    assert!(show(&site.dataplane, "logging").contains("ADDR_ALLOC_FAILURE"));

    // An elastic IP both ways: reached at it, and leaving from it.
    let reached = ask(server, "192.0.2.2", 0, &["198.18.1.6:7000"]);
    assert_eq!(
        reached.first().map(|s| s.ends_with(" 10.40.1.6")),
        Some(true),
        "{reached:?}\n{}",
        site.state()
    );
    let left = ask(a, "10.40.1.6", 42000, &["192.0.2.2:5353"]);
    assert_eq!(
        left.first().map(|s| seen(s)),
        Some("198.18.1.6:42000"),
        "{}",
        site.state()
    );

    // Policed to 10 Mbit/s; the other EIP is not.
    let rate = |port: &str, eip: &str| {
        let out = server.output(&["iperf3", "-c", eip, "-p", port, "-t", "3", "-J"]);
        assert!(out.status.success(), "iperf3 to {eip}\n{}", site.state());
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        support::dataplane::received_bytes(&report) as f64 * 8.0 / 3.0
    };
    let policed = rate("5201", "198.18.1.5");
    let free = rate("5202", "198.18.1.6");
    eprintln!("EIP policed to 10 Mbit/s: {policed:.0} bit/s; unpoliced EIP: {free:.0} bit/s");
    assert!(policed < 20e6, "policed EIP: {policed} bit/s");
    assert!(
        free > 2.0 * policed,
        "unpoliced EIP {free} bit/s vs policed {policed} bit/s"
    );
    let eips = show(&site.dataplane, "ip nat elastic-ip");
    assert!(eips.contains("198.18.1.5       10000000"), "{eips}");

    // Moving an EIP is one commit: new flows reach the new host at once.
    let mut moved = site.config.clone();
    let errors = grammar::apply_text(
        &mut moved,
        "no ip nat inside source static 10.40.1.6 198.18.1.6\nip nat inside source static 10.40.1.7 198.18.1.6\n",
    );
    assert_eq!(errors, []);
    site.dataplane.apply(&moved).expect("commit");
    let reached = ask(server, "192.0.2.2", 0, &["198.18.1.6:7000"]);
    assert_eq!(
        reached.first().map(|s| s.ends_with(" 10.40.1.7")),
        Some(true),
        "{reached:?}\n{}",
        site.state()
    );
    let _ = &site.router;
}
