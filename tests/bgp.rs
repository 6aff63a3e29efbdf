//! BGP against a real peer, FRR's bgpd, in the site of
//! `tests/support/bgp.rs` (the appliance between host_a and FRR, host_b
//! behind FRR): eBGP and iBGP sessions come up, routes go both ways and
//! carry pings, a withdrawal and a redistributed static route arrive,
//! `clear ip bgp *` resets, `neighbor ... shutdown` takes routes down;
//! prefix lists and route maps change what is taken and what FRR gets,
//! and `maximum-prefix` tears the session down until `clear ip bgp`.

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "support/bgp.rs"]
#[allow(dead_code)]
mod site;

use netns::is_root;
use site::{established_with, Site};

#[test]
fn an_ebgp_session_with_frr_exchanges_routes_that_carry_traffic_until_shut_down() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65000, 65001);
    let (cli, frr, host_a) = (&mut site.cli, &site.frr, &site.host_a);

    // Both sides say Established; the appliance has FRR's two prefixes.
    let summary = cli.until("show ip bgp summary", |t| established_with(t, 2));
    assert!(
        summary.contains("BGP router identifier 10.64.2.1, local AS number 65000"),
        "{summary}"
    );
    frr.until("show bgp summary json", |t| {
        t.contains("\"state\":\"Established\"")
    });
    let table = cli.until("show ip bgp", |t| t.contains("10.64.99.0/24"));
    assert!(
        table.lines().any(|l| l.contains("*>")
            && l.contains("10.64.3.0/24")
            && l.contains("10.64.2.2")
            && l.contains("65001 i")),
        "{table}"
    );
    assert!(table.contains("10.64.1.0/24"), "our network: {table}");
    let routes = cli.until("show ip route", |t| t.contains("B    10.64.3.0/24"));
    assert!(routes.contains("[20/0] via 10.64.2.2"), "{routes}");

    // The appliance's network reaches FRR's table, from AS 65000, and
    // traffic follows both directions' BGP routes.
    frr.until("show ip bgp 10.64.1.0/24", |t| {
        t.contains("65000") && t.contains("10.64.2.1")
    });
    frr.until("show ip route 10.64.1.0/24", |t| t.contains("bgp"));
    assert!(
        host_a.ping_ok("10.64.3.2"),
        "host_b is reached through the appliance's BGP route"
    );
    let neighbor = cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("BGP state = Established")
    });
    assert!(
        neighbor.contains("remote AS 65001, external link"),
        "{neighbor}"
    );
    assert!(
        neighbor.contains("Hold time is 9, keepalive interval is 3 seconds"),
        "{neighbor}"
    );

    // A prefix FRR withdraws leaves the appliance's table.
    frr.vtysh(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        "no network 10.64.99.0/24",
    ]);
    cli.until("show ip route", |t| {
        t.contains("B    10.64.3.0/24") && !t.contains("10.64.99.0/24")
    });

    // A static route of the appliance's, redistributed, reaches FRR as
    // incomplete from AS 65000.
    cli.type_lines(&[
        "configure terminal",
        "ip route 10.64.50.0/24 10.64.1.2",
        "router bgp 65000",
        "address-family ipv4 unicast",
        "redistribute static",
        "commit",
        "end",
    ]);
    frr.until("show ip bgp 10.64.50.0/24", |t| {
        t.contains("65000") && t.contains("incomplete")
    });

    // `clear ip bgp *` resets the session; it comes back by itself.
    cli.type_lines(&["clear ip bgp *"]);
    cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("Connections established 2") && t.contains("BGP state = Established")
    });

    // `neighbor ... shutdown` takes the session down (Cease, administrative
    // shutdown) and the routes out.
    cli.type_lines(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor 10.64.2.2 shutdown",
        "commit",
        "end",
    ]);
    cli.until("show ip bgp summary", |t| t.contains("Idle (Admin)"));
    cli.until("show ip route", |t| {
        t.contains("Codes:") && !t.contains("10.64.3.0/24")
    });
    frr.until("show bgp summary json", |t| {
        t.contains("\"peers\"") && !t.contains("\"state\":\"Established\"")
    });
    frr.until("show bgp neighbors 10.64.2.1 json", |t| {
        t.contains("Administrative Shutdown")
    });
}

#[test]
fn an_ibgp_session_with_frr_installs_its_routes_at_ibgp_distance_until_removed() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65001, 65001);
    let cli = &mut site.cli;
    cli.until("show ip bgp summary", |t| established_with(t, 2));
    site.frr.until("show bgp summary json", |t| {
        t.contains("\"state\":\"Established\"")
    });
    let table = cli.until("show ip bgp", |t| t.contains("10.64.99.0/24"));
    assert!(
        table.lines().any(|l| l.starts_with(" *>i 10.64.3.0/24")
            && l.contains("100")
            && l.trim_end().ends_with(" i")),
        "internal, LOCAL_PREF 100, empty path: {table}"
    );
    let routes = cli.until("show ip route", |t| t.contains("B    10.64.3.0/24"));
    assert!(routes.contains("[200/0] via 10.64.2.2"), "{routes}");
    // FRR's way back is what the appliance announces over iBGP: our
    // `network`, with LOCAL_PREF 100, an empty path and us as next hop.
    let ours = site.frr.until("show ip bgp 10.64.1.0/24 json", |t| {
        t.contains("\"locPrf\":100")
    });
    assert!(
        ours.contains("\"locPrf\":100")
            && ours.contains("\"ip\":\"10.64.2.1\"")
            && ours.contains("\"type\":\"internal\""),
        "{ours}"
    );
    assert!(
        site.host_a.ping_ok("10.64.3.2"),
        "host_b is reached through the iBGP routes both ways"
    );
    let neighbor = cli.until("show ip bgp neighbors", |t| {
        t.contains("BGP state = Established")
    });
    assert!(
        neighbor.contains("remote AS 65001, internal link"),
        "{neighbor}"
    );

    cli.type_lines(&[
        "configure terminal",
        "router bgp 65001",
        "no neighbor 10.64.2.2",
        "commit",
        "end",
    ]);
    // Removing the neighbour says goodbye (Cease, peer de-configured)
    // and takes its routes.
    site.frr.until("show bgp neighbors 10.64.2.1 json", |t| {
        t.contains("Peer De-configured")
    });
    cli.until("show ip route", |t| {
        t.contains("Codes:") && !t.contains("10.64.3.0/24")
    });
    let summary = cli.until("show ip bgp summary", |t| t.contains("local AS number"));
    assert!(!summary.contains("10.64.2.2"), "{summary}");
}

/// A BGP peer that opens a session, sends one UPDATE whose ORIGIN is
/// three bytes long (RFC 7606: its route is withdrawn, the session
/// lives), waits for a KEEPALIVE, then one UPDATE whose NLRI is 40 bits
/// long (no safe reading: a reset), and writes the code and subcode of the
/// NOTIFICATION it gets back to the file `argv[1]`.
const HOSTILE_PEER: &str = r#"
import socket, struct, sys
def message(kind, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body
def exactly(c, n):
    data = b""
    while len(data) < n:
        more = c.recv(n - len(data))
        if not more:
            raise SystemExit("closed")
        data += more
    return data
def read(c):
    head = exactly(c, 19)
    length, kind = struct.unpack("!HB", head[16:19])
    return kind, exactly(c, length - 19)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.64.1.2", 179))
s.listen(1)
c, _ = s.accept()
c.settimeout(60)
caps = bytes([65, 4]) + struct.pack("!I", 65003)
params = bytes([2, len(caps)]) + caps
c.sendall(message(1, struct.pack("!BHH4sB", 4, 65003, 9, socket.inet_aton("10.64.1.2"), len(params)) + params))
c.sendall(message(4, b""))
kind = None
while kind != 4:
    kind, body = read(c)
attributes = bytes([0x40, 1, 3, 0, 0, 0])
update = struct.pack("!HH", 0, len(attributes)) + attributes + bytes([24, 10, 9, 9])
c.sendall(message(2, update))
kind = None
while kind not in (3, 4):
    kind, body = read(c)
if kind == 3:
    open(sys.argv[1], "w").write("NOTIFICATION %d/%d for the attribute\n" % (body[0], body[1]))
    raise SystemExit
origin = bytes([0x40, 1, 1, 0])
path = bytes([0x40, 2, 6, 2, 1]) + struct.pack("!I", 65003)
hop = bytes([0x40, 3, 4]) + socket.inet_aton("10.64.1.2")
attributes = origin + path + hop
c.sendall(message(2, struct.pack("!HH", 0, len(attributes)) + attributes + bytes([40, 10, 9, 9, 9, 9])))
while kind != 3:
    kind, body = read(c)
open(sys.argv[1], "w").write("NOTIFICATION %d/%d\n" % (body[0], body[1]))
"#;

#[test]
fn a_malformed_attribute_withdraws_a_malformed_prefix_resets_and_the_appliance_carries_on() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65000, 65001);
    let seen = netns::Scratch::new("bad");
    let result = seen.0.join("result");
    let result_arg = result.display().to_string();
    let _peer = site
        .host_a
        .spawn(&["/usr/bin/python3", "-c", HOSTILE_PEER, &result_arg]);
    let cli = &mut site.cli;
    cli.type_lines(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor 10.64.1.2 remote-as 65003",
        "commit",
        "end",
    ]);
    let answer = site::poll(
        "the hostile peer's NOTIFICATION",
        || std::fs::read_to_string(&result).unwrap_or_default(),
        |t| t.contains("NOTIFICATION"),
    );
    assert_eq!(
        answer, "NOTIFICATION 3/10\n",
        "no reset for the attribute; UPDATE error, invalid network field for the NLRI"
    );
    let neighbor = cli.until("show ip bgp neighbors 10.64.1.2", |t| {
        t.contains("Last notification sent")
    });
    assert!(
        neighbor.contains("Last notification sent: 3/10 (UPDATE message error)"),
        "{neighbor}"
    );
    let log = cli.until("show logging", |t| t.contains("MALFORMED_ATTR"));
    assert!(log.contains("its routes are withdrawn (RFC 7606)"), "{log}");
    // The other session is untouched.
    cli.until("show ip bgp summary", |t| established_with(t, 2));
}

/// The appliance's `show ip bgp` row of `prefix`, if it has one.
fn bgp_row<'t>(table: &'t str, prefix: &str) -> Option<&'t str> {
    table.lines().find(|l| l.contains(&format!(" {prefix} ")))
}

#[test]
fn an_inbound_prefix_list_drops_and_a_route_map_prefers_without_a_reset() {
    if !is_root() {
        return;
    }
    let extra = ["10.64.100.0/24", "10.64.101.0/24", "10.64.102.0/25"].map(String::from);
    let mut site = Site::start_with(65000, 65001, &extra, |_| ());
    let cli = &mut site.cli;
    cli.until("show ip bgp summary", |t| established_with(t, 5));
    cli.configure(&[
        "ip prefix-list FROM-FRR seq 5 deny 10.64.100.0/24",
        "ip prefix-list FROM-FRR seq 10 deny 10.64.102.0/24 ge 25",
        "ip prefix-list FROM-FRR seq 15 permit 0.0.0.0/0 le 32",
        "ip prefix-list PREFER permit 10.64.101.0/24",
        "route-map FROM-FRR permit 10",
        " match ip address prefix-list PREFER",
        " set local-preference 300",
        "route-map FROM-FRR permit 20",
        "router bgp 65000",
        " neighbor 10.64.2.2 prefix-list FROM-FRR in",
        " neighbor 10.64.2.2 route-map FROM-FRR in",
    ]);
    // FRR sends its routes again (route refresh): the denied two go,
    // the preferred one carries LOCAL_PREF 300, the session stays up.
    let table = cli.until("show ip bgp", |t| {
        bgp_row(t, "10.64.100.0/24").is_none()
            && bgp_row(t, "10.64.101.0/24").is_some_and(|r| r.contains(" 300 "))
    });
    assert!(bgp_row(&table, "10.64.102.0/25").is_none(), "{table}");
    for kept in ["10.64.3.0/24", "10.64.99.0/24"] {
        let row = bgp_row(&table, kept).unwrap_or_else(|| panic!("{kept}: {table}"));
        assert!(!row.contains(" 300 "), "only PREFER's prefix: {row}");
    }
    let routes = cli.until("show ip route", |t| {
        t.contains("B    10.64.101.0/24") && !t.contains("10.64.100.0")
    });
    assert!(!routes.contains("10.64.102.0"), "{routes}");
    assert!(routes.contains("B    10.64.3.0/24"), "{routes}");
    cli.until("show ip bgp summary", |t| established_with(t, 3));
    let neighbor = cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("BGP state = Established")
    });
    assert!(neighbor.contains("Connections established 1"), "{neighbor}");
    assert!(
        neighbor.contains("  Incoming update prefix filter list is FROM-FRR")
            && neighbor.contains("  Route map for incoming advertisements is FROM-FRR"),
        "{neighbor}"
    );
    let lists = cli.until("show ip prefix-list FROM-FRR", |t| {
        t.contains("seq 5 deny 10.64.100.0/24 (hit count: ")
    });
    assert!(
        !lists.contains("seq 5 deny 10.64.100.0/24 (hit count: 0)"),
        "{lists}"
    );
    let maps = cli.until("show route-map FROM-FRR", |t| t.contains("sequence 20"));
    assert!(
        maps.contains("route-map FROM-FRR, permit, sequence 10"),
        "{maps}"
    );

    // Without the prefix list, FRR's routes all come back.
    cli.configure(&[
        "router bgp 65000",
        " no neighbor 10.64.2.2 prefix-list FROM-FRR in",
    ]);
    cli.until("show ip bgp summary", |t| established_with(t, 5));
}

#[test]
fn an_outbound_route_map_prepends_and_tags_and_a_prefix_list_withdraws() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65000, 65001);
    let (cli, frr) = (&mut site.cli, &site.frr);
    cli.until("show ip bgp summary", |t| established_with(t, 2));
    frr.until("show ip bgp json", |t| t.contains("10.64.1.0/24"));
    cli.configure(&[
        "route-map TO-FRR permit 10",
        " set as-path prepend 65000 65000",
        " set community 65000:42 no-export",
        " set metric 7",
        "router bgp 65000",
        " neighbor 10.64.2.2 route-map TO-FRR out",
    ]);
    frr.until("show ip bgp json", |t| t.contains("\"65000 65000 65000\""));
    let route = frr.until("show ip bgp 10.64.1.0/24 json", |t| t.contains("65000:42"));
    assert!(route.contains("noExport"), "{route}");
    assert!(route.contains("\"metric\":7"), "{route}");

    // An outbound prefix list that denies it takes it out of FRR's table.
    cli.configure(&[
        "ip prefix-list TO-FRR deny 10.64.1.0/24",
        "router bgp 65000",
        " neighbor 10.64.2.2 prefix-list TO-FRR out",
    ]);
    frr.until("show ip bgp json", |t| {
        t.contains("10.64.3.0/24") && !t.contains("10.64.1.0/24")
    });
    // `clear ip bgp * soft` asks FRR for its routes again (a ROUTE-REFRESH
    // FRR counts) and keeps the session.
    let asked = |t: &str| -> u64 {
        (t.split("\"routeRefreshRecv\":").nth(1))
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = asked(&frr.until("show bgp neighbors 10.64.2.1 json", |t| {
        t.contains("routeRefreshRecv")
    }));
    cli.type_lines(&["clear ip bgp * soft"]);
    let after = frr.until("show bgp neighbors 10.64.2.1 json", |t| asked(t) > before);
    assert!(asked(&after) > before, "{after}");
    let neighbor = cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("BGP state = Established")
    });
    assert!(neighbor.contains("Connections established 1"), "{neighbor}");
}

#[test]
fn maximum_prefix_tears_the_session_down_until_clear_ip_bgp() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65000, 65001);
    let (cli, frr) = (&mut site.cli, &site.frr);
    cli.until("show ip bgp summary", |t| established_with(t, 2));
    cli.configure(&["router bgp 65000", " neighbor 10.64.2.2 maximum-prefix 1"]);
    // FRR's two prefixes, sent again, are one too many: Cease/1.
    frr.until("show bgp neighbors 10.64.2.1 json", |t| {
        t.contains("Maximum Number of Prefixes Reached")
    });
    cli.until("show ip bgp summary", |t| t.contains("Idle (PfxCt)"));
    cli.until("show ip route", |t| {
        t.contains("Codes:") && !t.contains("10.64.3.0/24")
    });
    let log = cli.until("show logging", |t| t.contains("MAXPFXEXCEED"));
    assert!(
        log.contains(
            "%BGP-3-MAXPFXEXCEED: No. of prefix received from 10.64.2.2 (afi 0): 2 exceed limit 1"
        ),
        "{log}"
    );
    assert!(
        log.contains("%BGP-3-NOTIFICATION: sent to neighbor 10.64.2.2 6/1"),
        "{log}"
    );
    let neighbor = cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("Last notification sent")
    });
    assert!(
        neighbor.contains("Last notification sent: 6/1 (cease)"),
        "{neighbor}"
    );

    // It stays down past the connect-retry time, policy edits included.
    cli.configure(&[
        "router bgp 65000",
        " neighbor 10.64.2.2 maximum-prefix 1 warning-only",
    ]);
    std::thread::sleep(std::time::Duration::from_secs(8));
    let summary = cli.until("show ip bgp summary", |t| t.contains("10.64.2.2"));
    assert!(summary.contains("Idle (PfxCt)"), "{summary}");

    // `clear ip bgp *` brings it back; warning-only now lets it stay.
    cli.type_lines(&["clear ip bgp *"]);
    cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("Connections established 2") && t.contains("BGP state = Established")
    });
    cli.until("show ip bgp summary", |t| established_with(t, 2));
    frr.until("show bgp summary json", |t| {
        t.contains("\"state\":\"Established\"")
    });

    // Under the limit, its threshold (here 50%) is logged.
    cli.configure(&[
        "router bgp 65000",
        " neighbor 10.64.2.2 maximum-prefix 4 50",
    ]);
    cli.until("show logging", |t| {
        t.contains("%BGP-4-MAXPFX: No. of prefix received from 10.64.2.2 (afi 0) reaches 2, max 4")
    });
    let neighbor = cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("Maximum prefixes allowed 4")
    });
    assert!(
        neighbor.contains("Threshold for warning message 50%")
            && neighbor.contains("Connections established 2"),
        "{neighbor}"
    );
}
