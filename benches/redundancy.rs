//! The high-availability pair (`cargo bench -p gatehouse --bench
//! redundancy`, root), on the site of `tests/support/ha_pair.rs`:
//! - sync throughput: master A holds FLOWS NAT translations; standby B
//!   starts; the records per second of the bulk copy, from B hearing A to
//!   B holding them all (each box: one dataplane worker and the control
//!   runtime, on a 2-core machine shared with the hosts);
//! - failover: a ping every 10 ms from the inside host through the pair
//!   to the outside host; the master's two LAN links go down at once (the
//!   box is gone); the longest gap in the replies. The baseline, in the
//!   same run and the same way: two keepalived (VRRP version 3, the same
//!   1-second advertisements, one sync group) with Linux routing in
//!   namespaces of their own on LANs alike.
//!
//! One run; prints its figures.

#[path = "../tests/support/appliance.rs"]
mod appliance;
#[path = "../tests/support/ha_pair.rs"]
#[allow(dead_code)]
mod ha_pair;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use ha_pair::{dynamic, lan_port, Site};
use netns::{is_root, Child, Netns, Scratch};
use std::time::{Duration, Instant};

const FLOWS: usize = 200_000;
/// How long the ping runs, and when the master goes.
const PING_FOR: Duration = Duration::from_secs(10);
const MASTER_GOES_AFTER: Duration = Duration::from_secs(2);

/// FLOWS UDP flows from the inside host to the outside host (a socket
/// for each 50,000 of its ports): one translation each.
fn many_flows(inside: &Netns) {
    let script = format!(
        "import socket\nss=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range({FLOWS}//50000+1)]\n\
         for p in range({FLOWS}): ss[p//50000].sendto(b'x',('203.0.113.10',10000+p%50000))\n"
    );
    inside.run(&["python3", "-c", &script]);
}

/// Pings `target` from `ns` every 10 ms for PING_FOR while `cut` runs
/// after MASTER_GOES_AFTER; the longest time without a reply.
fn longest_gap(ns: &Netns, target: &str, cut: impl FnOnce()) -> Duration {
    let seconds = PING_FOR.as_secs().to_string();
    let child = (ns.command("ping"))
        .args(["-D", "-n", "-i", "0.01", "-w", &seconds, target])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(MASTER_GOES_AFTER);
    cut();
    let out = child.wait_with_output().expect("ping output");
    let stamps: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let gap = stamps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Duration::from_secs_f64(gap)
}

fn gatehouse(site: &mut Site) -> (f64, Duration) {
    let long_udp = "ip inspect udp idle-time 600\n";
    site.a.write_config_with(2, 3, 200, long_udp);
    site.b.write_config_with(3, 2, 100, long_udp);
    site.a.start();
    site.a
        .redundancy_until("A to be active", |t| t.contains("this box is active"));
    many_flows(&site.inside);
    let shown = site
        .a
        .show_until("ip nat statistics", "A's translations", |t| {
            dynamic(t) as usize >= FLOWS * 9 / 10
        });
    let made = dynamic(&shown);
    site.b.start();
    site.b
        .redundancy_until("B to hear A", |t| t.contains("Peer: up"));
    let heard = Instant::now();
    site.b
        .show_until("ip nat statistics", "B to hold them all", |t| {
            dynamic(t) >= made
        });
    let rate = made as f64 / heard.elapsed().as_secs_f64();
    let shown = site.a.redundancy_until("A's counters", |_| true);
    let sent = shown
        .lines()
        .find(|l| l.starts_with("Sent:"))
        .unwrap_or("")
        .to_string();
    println!("  A after the bulk copy: {sent}");

    site.b
        .redundancy_until("B to stand by", |t| t.contains("Peer: up, active"));
    let lans = &site.lans;
    let (inside, outside) = (&site.a.inside.inner, &site.a.outside.inner);
    let gap = longest_gap(&site.inside, "203.0.113.10", || {
        lans[0].run(&["ip", "link", "set", inside, "down"]);
        lans[1].run(&["ip", "link", "set", outside, "down"]);
    });
    (rate, gap)
}

/// A keepalived router with VRRP on both LANs: its namespace, the LAN
/// ends of its ports, the process.
fn keepalived(
    lans: &[Netns; 2],
    dir: &Scratch,
    host: u8,
    priority: u8,
) -> (Netns, [String; 2], Child) {
    let ns = Netns::new();
    let ports = [
        lan_port(&lans[0], &ns, "kin"),
        lan_port(&lans[1], &ns, "kout"),
    ];
    ns.configure("kin", &format!("10.81.1.{host}/24"), None);
    ns.configure("kout", &format!("203.0.114.{host}/24"), None);
    ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let instance = |name: &str, iface: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n state BACKUP\n interface {iface}\n virtual_router_id {vrid}\n \
             priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
        )
    };
    let conf = format!(
        "global_defs {{\n vrrp_version 3\n}}\nvrrp_sync_group PAIR {{\n group {{\n  IN\n  OUT\n }}\n}}\n{}{}",
        instance("IN", "kin", 1, "10.81.1.254/24"),
        instance("OUT", "kout", 2, "203.0.114.1/24"),
    );
    let file = |name: &str| {
        dir.0
            .join(format!("{name}{host}"))
            .to_string_lossy()
            .into_owned()
    };
    std::fs::write(file("keepalived.conf"), conf).unwrap();
    let child = ns.spawn(&[
        "keepalived",
        "--dont-fork",
        "--vrrp",
        "-f",
        &file("keepalived.conf"),
        "-p",
        &file("keepalived.pid"),
        "-r",
        &file("vrrp.pid"),
    ]);
    (ns, ports, child)
}

/// The same failover with two keepalived and Linux routing.
fn keepalived_pair() -> Duration {
    let lans = [Netns::new(), Netns::new()];
    for lan in &lans {
        lan.run(&["ip", "link", "add", "br0", "type", "bridge"]);
        lan.run(&["ip", "link", "set", "br0", "up"]);
    }
    let (inside, outside) = (Netns::new(), Netns::new());
    lan_port(&lans[0], &inside, "in0");
    inside.configure("in0", "10.81.1.10/24", Some("10.81.1.254"));
    lan_port(&lans[1], &outside, "out0");
    outside.configure("out0", "203.0.114.10/24", None);
    outside.run(&["ip", "route", "add", "10.81.1.0/24", "via", "203.0.114.1"]);
    let dir = Scratch::new("ka");
    let (_a, ports, _a_child) = keepalived(&lans, &dir, 2, 200);
    let _b = keepalived(&lans, &dir, 3, 100);
    let deadline = Instant::now() + ha_pair::PATIENCE;
    while !inside
        .output(&["ping", "-c", "1", "-W", "1", "203.0.114.10"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the keepalived pair never routed"
        );
    }
    longest_gap(&inside, "203.0.114.10", || {
        lans[0].run(&["ip", "link", "set", &ports[0], "down"]);
        lans[1].run(&["ip", "link", "set", &ports[1], "down"]);
    })
}

fn main() {
    if !is_root() {
        eprintln!("redundancy bench: needs root (namespaces); skipped");
        return;
    }
    let mut site = Site::new();
    let (rate, gap) = gatehouse(&mut site);
    drop(site);
    let keepalived_gap = keepalived_pair();
    println!("HA pair, one worker per box, 2-core machine");
    println!(
        "  sync, bulk copy of {FLOWS} NAT translations: {:.0} records/s",
        rate
    );
    println!(
        "  failover (master's links down, ping every 10 ms): gatehouse {:.2} s, keepalived + Linux {:.2} s (ratio {:.2})",
        gap.as_secs_f64(),
        keepalived_gap.as_secs_f64(),
        gap.as_secs_f64() / keepalived_gap.as_secs_f64().max(0.001)
    );
}
