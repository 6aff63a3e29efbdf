//! A stateful firewall between Linux hosts in network namespaces, IPv4 and
//! IPv6, with default offloads:
//!
//! ```text
//!  inside 10.31.1.2, 2001:db8:31::2 --- [pin  dataplane  pout] --- outside 10.31.2.2, 2001:db8:32::2
//! ```
//! The inside may open TCP, UDP and ICMP to the outside (UDP datagrams
//! larger than the MTU too, whose fragments come back); the outside may
//! reach only the inside server's port 443 (a web server also listens on
//! 8080 there, unreachable from outside).

mod support;

use grammar::parse_config;
use kernel_bypass::io::Backend;
use support::dataplane::{show, start};
use support::netns::{is_root, Netns, Veth};

/// A UDP echo server and a client that exits 0 when its datagram (of
/// argv[2] bytes) comes back whole.
const UDP_ECHO: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET,socket.SOCK_DGRAM)\n\
    s.bind((sys.argv[1],5353))\n\
    while True:\n d,a=s.recvfrom(65535)\n s.sendto(d,a)\n";
const UDP_ASK: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET,socket.SOCK_DGRAM)\n\
    s.settimeout(1)\n\
    d=bytes(range(256))*(int(sys.argv[2])//256)\n\
    for _ in range(5):\n s.sendto(d,(sys.argv[1],5353))\n try:\n  sys.exit(0 if s.recvfrom(65535)[0]==d else 1)\n except socket.timeout: pass\n\
    sys.exit(1)\n";

#[test]
fn inside_opens_flows_outside_reaches_only_the_published_port() {
    if !is_root() {
        return;
    }
    let (inside, outside) = (Netns::new(), Netns::new());
    let (pin, pout) = (Veth::into_ns(&inside), Veth::into_ns(&outside));
    let text = format!(
        "ip access-list extended OUTSIDE-IN\n 10 permit tcp any host 10.31.1.2 eq 443\n\
         ipv6 access-list OUTSIDE-IN6\n permit tcp any host 2001:db8:31::2 eq 443\n\
         interface {}\n ip address 10.31.1.1/24\n ipv6 address 2001:db8:31::1/64\n\
         interface {}\n ip address 10.31.2.1/24\n ipv6 address 2001:db8:32::1/64\n \
         ip access-group OUTSIDE-IN in\n ipv6 traffic-filter OUTSIDE-IN6 in\n",
        pin.outer, pout.outer
    );
    let (config, errors) = parse_config(&text);
    assert_eq!(errors, [], "{text}");
    let (_runtime, dataplane) = start(&config, Backend::AfPacket, 1);
    inside.configure(&pin.inner, "10.31.1.2/24", Some("10.31.1.1"));
    inside.configure(&pin.inner, "2001:db8:31::2/64", Some("2001:db8:31::1"));
    outside.configure(&pout.inner, "10.31.2.2/24", Some("10.31.2.1"));
    outside.configure(&pout.inner, "2001:db8:32::2/64", Some("2001:db8:32::1"));
    let _servers = [
        inside.spawn(&["python3", "-m", "http.server", "443", "--bind", "::"]),
        inside.spawn(&["python3", "-m", "http.server", "8080", "--bind", "::"]),
        outside.spawn(&["python3", "-m", "http.server", "80", "--bind", "::"]),
        outside.spawn(&["python3", "-c", UDP_ECHO, "10.31.2.2"]),
        outside.spawn(&["python3", "-c", UDP_ECHO, "2001:db8:32::2"]),
    ];
    let counters = || {
        format!(
            "{}\n{}",
            show(&dataplane, "access-lists"),
            dataplane.show_counters()
        )
    };
    for (near, far, far_url) in [
        ("10.31.1.2", "10.31.2.2", "http://10.31.2.2/"),
        (
            "2001:db8:31::2",
            "2001:db8:32::2",
            "http://[2001:db8:32::2]/",
        ),
    ] {
        assert!(
            inside.ping_ok(far),
            "inside pings out to {far}\n{}",
            counters()
        );
        assert!(
            inside.fetches(far_url, 40),
            "inside fetches {far_url}\n{}",
            counters()
        );
        // 3072 bytes go as fragments both ways (MTU 1500): the answer's
        // later pieces pass with their first, not by the outside's list.
        for size in ["256", "3072"] {
            let udp = inside.output(&["python3", "-c", UDP_ASK, far, size]);
            assert!(
                udp.status.success(),
                "inside's {size}-byte UDP to {far} is answered\n{}",
                counters()
            );
        }
        let https = format!("http://{}:443/", bracketed(near));
        let other = format!("http://{}:8080/", bracketed(near));
        assert!(
            outside.fetches(&https, 40),
            "outside reaches {https}\n{}",
            counters()
        );
        assert!(
            !outside.fetches(&other, 1),
            "outside must not reach {other}"
        );
        assert!(
            !outside
                .output(&["ping", "-c", "2", "-W", "1", near])
                .status
                .success(),
            "outside must not ping {near}"
        );
    }
    let lists = show(&dataplane, "access-lists");
    assert!(
        !lists.contains("eq 443 (0 matches)"),
        "hit counters move:\n{lists}"
    );
    let sessions = show(&dataplane, "sessions");
    assert!(
        sessions.contains("tcp") && sessions.contains("udp"),
        "{sessions}"
    );
}

fn bracketed(addr: &str) -> String {
    match addr.contains(':') {
        true => format!("[{addr}]"),
        false => addr.to_string(),
    }
}
