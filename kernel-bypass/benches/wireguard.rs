//! WireGuard benchmark (issue 13), in memory on one core, each figure
//! beside baselines measured in the same run:
//! - encryption: packets from the LAN routed into wg0 and sent encrypted
//!   out of the WAN port, 64-byte and 1420-byte inner packets;
//! - decryption: the remote's packets (encrypted beforehand by boringtun,
//!   each once: the replay window takes a message only once) received on
//!   the WAN port and routed decrypted onto the LAN;
//! - baselines: plain routing of the same packets in the same pipeline,
//!   and boringtun's own `Tunn::encapsulate` alone (the cryptography
//!   without a pipeline: the ceiling for this core);
//!
//! then over veths (root only, wireguard-go installed): iperf3 TCP from a
//! LAN host through the dataplane's wg0 (af-xdp, one worker) to a host
//! running wireguard-go, against iperf3 between two wireguard-go hosts
//! on the same machine, as a ratio.

#[path = "../tests/support/mod.rs"]
mod support;

use boringtun::noise::{Tunn, TunnResult};
use kernel_bypass::io::Backend;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::ETHERTYPE_IPV4;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::dataplane::{received_bytes, two_hosts};
use support::netns::{is_root, run, Netns, Veth};
use support::packets::{ethernet, udp_packet};
use support::wireguard::{
    addr, appliance_tunn, connected, encrypted, from_remote, message, remote_tunn, LAN_HOST,
};

const RUN: Duration = Duration::from_secs(2);
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

/// A UDP packet of `size` bytes (IP header included) from `src` to `dst`.
fn packet(src: Ipv4Addr, dst: Ipv4Addr, size: usize, flow: u16) -> Vec<u8> {
    udp_packet(src, dst, 10_000 + flow, 9, &vec![0; size - 28])
}

fn frame(port: &str, packet: &[u8]) -> Vec<u8> {
    ethernet(mac_for(port), HOST_MAC, ETHERTYPE_IPV4, packet)
}

/// Packets per second through the pipeline from `ports.0` out of
/// `ports.1`, cycling through `batches` for `RUN`.
fn rate(h: &mut support::harness::Harness, ports: (u16, u16), batches: &[Vec<Vec<u8>>]) -> f64 {
    let start = Instant::now();
    let mut passed = 0;
    while start.elapsed() < RUN {
        passed += h.pass_batches(ports, batches);
    }
    passed as f64 / start.elapsed().as_secs_f64()
}

/// boringtun's encapsulation alone, packets per second.
fn boringtun_rate(tunn: &mut Tunn, inner: &[u8]) -> f64 {
    let mut out = vec![0u8; 2048];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..1000 {
            if let TunnResult::WriteToNetwork(m) = tunn.encapsulate(inner, &mut out) {
                std::hint::black_box(m);
                n += 1;
            }
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn line(what: &str, pps: f64, size: usize, baseline: Option<(&str, f64)>) {
    let gbits = pps * size as f64 * 8.0 / 1e9;
    let ratio = baseline.map_or(String::new(), |(name, b)| {
        format!("  ({:.2}x {name})", pps / b)
    });
    println!(
        "{what:<44} {:>7.3} Mpps {gbits:>6.2} Gbit/s{ratio}",
        pps / 1e6
    );
}

/// A `wg genkey` key and its public key.
fn key_pair() -> (String, String) {
    let private = run(&["wg", "genkey"]).trim().to_string();
    let public = run(&["sh", "-c", &format!("echo {private} | wg pubkey")]);
    (private, public.trim().to_string())
}

/// wireguard-go interface `name` in `ns`: key `private`, port 51820,
/// `address`, a peer (public key, endpoint, allowed-ips).
fn wireguard_go(ns: &Netns, name: &str, private: &str, address: &str, peer: (&str, &str, &str)) {
    ns.command("wireguard-go")
        .arg(name)
        .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
        .output()
        .expect("wireguard-go");
    let key = format!("/tmp/{name}.key");
    std::fs::write(&key, private).unwrap();
    ns.run(&[
        "wg",
        "set",
        name,
        "private-key",
        &key,
        "listen-port",
        "51820",
    ]);
    let _ = std::fs::remove_file(&key);
    let (public, endpoint, allowed) = peer;
    ns.run(&[
        "wg",
        "set",
        name,
        "peer",
        public,
        "endpoint",
        endpoint,
        "allowed-ips",
        allowed,
    ]);
    ns.run(&["ip", "addr", "add", address, "dev", name]);
    ns.run(&["ip", "link", "set", name, "up"]);
}

/// Mbit/s `client` sends `server` (already listening) in 5 s of iperf3.
fn iperf3(client: &Netns, server: &str) -> f64 {
    let args = ["timeout", "30", "iperf3", "-c", server, "-t", "5", "-J"];
    let report = client.stdout_until(&args, |t| received_bytes(t) > 0);
    received_bytes(&report) as f64 * 8.0 / 5.0 / 1e6
}

/// iperf3 between two wireguard-go hosts over a veth.
fn wireguard_go_pair() -> f64 {
    let (a, b) = (Netns::new(), Netns::new());
    let link = Veth::into_ns(&a);
    run(&["ip", "link", "set", &link.outer, "netns", &b.name]);
    a.configure(&link.inner, "10.97.0.1/24", None);
    b.configure(&link.outer, "10.97.0.2/24", None);
    let (ka, kb) = (key_pair(), key_pair());
    let (wa, wb) = (support::netns::unique("a"), support::netns::unique("b"));
    wireguard_go(
        &a,
        &wa,
        &ka.0,
        "10.98.0.1/24",
        (&kb.1, "10.97.0.2:51820", "10.98.0.2/32"),
    );
    wireguard_go(
        &b,
        &wb,
        &kb.0,
        "10.98.0.2/24",
        (&ka.1, "10.97.0.1:51820", "10.98.0.1/32"),
    );
    let _server = b.spawn(&["iperf3", "-s", "-B", "10.98.0.2"]);
    a.ping_ok("10.98.0.2");
    iperf3(&a, "10.98.0.2")
}

/// iperf3 from a LAN host through the dataplane's wg0 to a wireguard-go host.
fn dataplane_to_wireguard_go() -> f64 {
    let (appliance, remote) = (key_pair(), key_pair());
    let text = [
        "interface wg0".to_string(),
        " ip address 10.98.0.1/24".into(),
        format!(" wireguard private-key {}", appliance.0),
        format!(" wireguard peer {}", remote.1),
        "  endpoint 10.82.2.2 51820".into(),
        "  allowed-ips 10.98.0.2/32\n".into(),
    ]
    .join("\n");
    let hosts = two_hosts(Backend::AfXdp, 1, 82, |config| {
        assert_eq!(grammar::apply_text(config, &text), []);
    });
    let wg = support::netns::unique("w");
    let peer = (
        appliance.1.as_str(),
        "10.82.2.1:51820",
        "10.98.0.1/32,10.82.1.0/24",
    );
    wireguard_go(&hosts.h2, &wg, &remote.0, "10.98.0.2/24", peer);
    hosts
        .h2
        .run(&["ip", "route", "add", "10.82.1.0/24", "dev", &wg]);
    let _server = hosts.h2.spawn(&["iperf3", "-s", "-B", "10.98.0.2"]);
    hosts.h1.ping_ok("10.98.0.2");
    iperf3(&hosts.h1, "10.98.0.2")
}

/// Handshakes per second the appliance answers for one initiator that
/// starts a new one each time (cookies, when its limiter asks for them,
/// taken by the initiator and used), and the cookie replies sent.
fn handshakes_through_the_pipeline() -> (f64, u64) {
    let (mut h, mut remote) = connected();
    let (mut init, mut scratch) = (vec![0u8; 256], vec![0u8; 256]);
    let (mut answered, mut cookies) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < RUN {
        let TunnResult::WriteToNetwork(m) = remote.format_handshake_initiation(&mut init, true)
        else {
            break;
        };
        let verdicts = h.feed(1, &[from_remote(m)]);
        for reply in h.sent_on(&verdicts, 1) {
            let m = message(&reply);
            match m.len() {
                92 => answered += 1,
                _ => {
                    cookies += 1;
                    let _ = remote.decapsulate(None, m, &mut scratch);
                }
            }
        }
    }
    (answered as f64 / start.elapsed().as_secs_f64(), cookies)
}

/// The same handshakes answered by a boringtun `Tunn` alone, cookies
/// taken and used the same way.
fn handshakes_alone() -> f64 {
    let (mut remote, mut local) = (remote_tunn(), appliance_tunn());
    let (mut init, mut out) = (vec![0u8; 256], vec![0u8; 256]);
    let mut answered = 0u64;
    let start = Instant::now();
    while start.elapsed() < RUN {
        let TunnResult::WriteToNetwork(m) = remote.format_handshake_initiation(&mut init, true)
        else {
            break;
        };
        let from = Some(std::net::IpAddr::V4(addr("192.0.2.2")));
        match local.decapsulate(from, m, &mut out) {
            TunnResult::WriteToNetwork(r) if r.len() == 92 => answered += 1,
            TunnResult::WriteToNetwork(cookie) => {
                let _ = remote.decapsulate(None, cookie, &mut init);
            }
            _ => {}
        }
        local.update_timers(&mut out);
    }
    answered as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    in_memory();
    let (through, cookies) = handshakes_through_the_pipeline();
    let alone = handshakes_alone();
    println!(
        "{:<44} {through:>7.0} /s ({cookies} cookie replies; boringtun alone {alone:.0} /s, {:.2}x)",
        "handshakes answered, one core",
        through / alone
    );
    let installed = run(&["sh", "-c", "command -v wireguard-go || true"]);
    if !is_root() || installed.is_empty() {
        return;
    }
    let pair = wireguard_go_pair();
    let ours = dataplane_to_wireguard_go();
    println!("iperf3 TCP through WireGuard over veths, one stream, 5 s:");
    println!("  wireguard-go <-> wireguard-go:                 {pair:.0} Mbit/s");
    println!(
        "  gatehouse (af-xdp, 1 worker) <-> wireguard-go: {ours:.0} Mbit/s, ratio {:.2}",
        ours / pair.max(1.0)
    );
}

fn in_memory() {
    println!(
        "WireGuard, in memory, one core ({} s per figure)",
        RUN.as_secs()
    );
    for size in [64usize, 1420] {
        let (mut h, mut remote) = connected();
        let lan = addr(LAN_HOST);
        // Routing only: LAN -> the remote's WAN address, no tunnel.
        let routed: Vec<_> = (0..64)
            .map(|f| frame("eth0", &packet(lan, addr("192.0.2.2"), size, f)))
            .collect();
        let routing = rate(&mut h, (0, 1), &[routed]);
        line(
            &format!("routing, {size}-byte packets"),
            routing,
            size,
            None,
        );
        let into_tunnel: Vec<_> = (0..64)
            .map(|f| frame("eth0", &packet(lan, Ipv4Addr::new(10, 9, 0, 5), size, f)))
            .collect();
        let encrypt = rate(&mut h, (0, 1), &[into_tunnel]);
        line(
            &format!("encrypt into wg0, {size}-byte inner"),
            encrypt,
            size,
            Some(("routing", routing)),
        );
        // Each message decrypts once: as many as a run takes, made first.
        let count = match size {
            64 => 1_000_000,
            _ => 300_000,
        };
        let messages: Vec<_> = (0..count)
            .map(|i| {
                let inner = packet(Ipv4Addr::new(10, 9, 0, 5), lan, size, i as u16);
                frame("eth1", &encrypted(&mut remote, &inner))
            })
            .collect();
        let batches: Vec<_> = messages.chunks(64).map(<[Vec<u8>]>::to_vec).collect();
        let start = Instant::now();
        let passed = h.pass_batches((1, 0), &batches);
        let decrypt = passed as f64 / start.elapsed().as_secs_f64();
        assert!(
            passed as usize > count * 9 / 10,
            "decrypted {passed} of {count}: {}",
            h.show("wireguard")
        );
        line(
            &format!("decrypt out of wg0, {size}-byte inner"),
            decrypt,
            size,
            Some(("routing", routing)),
        );
        let inner = packet(lan, Ipv4Addr::new(10, 9, 0, 5), size, 0);
        let library = boringtun_rate(&mut remote, &inner);
        line(
            &format!("boringtun encapsulate alone, {size}-byte"),
            library,
            size,
            None,
        );
        println!(
            "{:<44} {:.2}x boringtun alone",
            "  encrypt in the pipeline against",
            encrypt / library
        );
    }
}
