//! Hostile input: tens of thousands of malformed and random-but-checksummed
//! TCP/UDP over IPv4 and IPv6 packets are fed to a stack with live services; afterwards
//! it must still answer a proper SYN (nothing panicked, nothing wedged).

mod support;

use kernel_bypass::local::{serve_echo, Liveness, LocalPort, LocalStack};
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber, UdpPacket,
};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use support::local::{runtime, stack_at, udp_echo};
use support::wait_until;

const STACK: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
const STACK6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const PACKETS: usize = 30_000;

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        bytes.iter_mut().for_each(|b| *b = self.next() as u8);
    }
}

/// An IPv4 packet with a `l4_len`-byte payload area, mostly well formed.
fn ipv4(noise: &mut Noise, protocol: IpProtocol, l4_len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 20 + l4_len];
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes);
    ip.set_version(4);
    ip.set_header_len(20);
    let total = if noise.chance(20) {
        noise.below(2000) as u16
    } else {
        (20 + l4_len) as u16
    };
    ip.set_total_len(total);
    ip.set_hop_limit(noise.below(256) as u8);
    ip.set_next_header(protocol);
    if noise.chance(30) {
        ip.set_more_frags(true);
        ip.set_frag_offset(noise.below(8000) as u16 * 8);
    }
    ip.set_src_addr(Ipv4Addr::new(10, 2, 0, 2 + noise.below(4) as u8));
    ip.set_dst_addr(if noise.chance(10) {
        Ipv4Addr::from(noise.next() as u32)
    } else {
        STACK
    });
    ip.fill_checksum();
    bytes
}

/// An IPv6 packet with a `l4_len`-byte payload area, mostly well formed,
/// from global and link-local peers.
fn ipv6(noise: &mut Noise, protocol: IpProtocol, l4_len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 40 + l4_len];
    let mut ip = Ipv6Packet::new_unchecked(&mut bytes);
    ip.set_version(6);
    ip.set_payload_len(if noise.chance(20) {
        noise.below(2000) as u16
    } else {
        l4_len as u16
    });
    ip.set_hop_limit(noise.below(256) as u8);
    ip.set_next_header(protocol);
    let prefix = if noise.chance(4) { 0xfe80 } else { 0x2001 };
    let host = 2 + noise.below(4) as u16;
    ip.set_src_addr(Ipv6Addr::new(prefix, 0xdb8, 2, 0, 0, 0, 0, host));
    ip.set_dst_addr(if noise.chance(10) {
        Ipv6Addr::from(u128::from(noise.next()) << 64 | u128::from(noise.next()))
    } else {
        STACK6
    });
    bytes
}

/// An IPv4 or IPv6 packet and its header length.
fn ip(noise: &mut Noise, protocol: IpProtocol, l4_len: usize) -> (Vec<u8>, usize) {
    if noise.chance(2) {
        (ipv6(noise, protocol, l4_len), 40)
    } else {
        (ipv4(noise, protocol, l4_len), 20)
    }
}

fn addresses(bytes: &[u8]) -> (IpAddress, IpAddress) {
    if bytes[0] >> 4 == 6 {
        let ip = Ipv6Packet::new_unchecked(bytes);
        return (ip.src_addr().into(), ip.dst_addr().into());
    }
    let ip = Ipv4Packet::new_unchecked(bytes);
    (ip.src_addr().into(), ip.dst_addr().into())
}

fn tcp(noise: &mut Noise) -> Vec<u8> {
    let options = 4 * noise.below(11) as usize;
    let payload = noise.below(300) as usize;
    let (mut bytes, header) = ip(noise, IpProtocol::Tcp, 20 + options + payload);
    let (src, dst) = addresses(&bytes);
    noise.fill(&mut bytes[header..]);
    let mut tcp = TcpPacket::new_unchecked(&mut bytes[header..]);
    tcp.set_src_port(40_000 + noise.below(4) as u16);
    tcp.set_dst_port(if noise.chance(8) { 81 } else { 80 });
    tcp.set_seq_number(TcpSeqNumber(noise.below(4096) as i32));
    tcp.set_ack_number(TcpSeqNumber(noise.below(4096) as i32));
    tcp.set_header_len(if noise.chance(20) {
        noise.below(16) as u8 * 4
    } else {
        (20 + options) as u8
    });
    if !noise.chance(50) {
        tcp.fill_checksum(&src, &dst);
    }
    bytes
}

fn udp(noise: &mut Noise) -> Vec<u8> {
    let payload = noise.below(600) as usize;
    let (mut bytes, header) = ip(noise, IpProtocol::Udp, 8 + payload);
    let (src, dst) = addresses(&bytes);
    noise.fill(&mut bytes[header..]);
    let mut udp = UdpPacket::new_unchecked(&mut bytes[header..]);
    udp.set_src_port(noise.below(65536) as u16);
    udp.set_dst_port(if noise.chance(4) { 54 } else { 53 });
    udp.set_len((8 + payload) as u16);
    udp.fill_checksum(&src, &dst);
    if noise.chance(20) {
        udp.set_len(noise.below(2000) as u16);
    }
    bytes
}

fn garbage(noise: &mut Noise) -> Vec<u8> {
    let mut bytes = vec![0u8; noise.below(1600) as usize];
    noise.fill(&mut bytes);
    let version = if noise.chance(2) { 0x40 } else { 0x60 };
    if let Some(first) = bytes.first_mut() {
        *first = version | (*first & 0x0f);
    }
    bytes
}

/// A proper SYN to port 80 from the prober's `source_port`.
fn syn(source_port: u16) -> Vec<u8> {
    let mut noise = Noise(u64::from(source_port) | 1);
    let mut bytes = ipv4(&mut Noise(7), IpProtocol::Tcp, 20);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes);
        ip.set_total_len(40);
        ip.set_hop_limit(64);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.set_src_addr(Ipv4Addr::new(10, 2, 0, 99));
        ip.set_dst_addr(STACK);
        ip.fill_checksum();
    }
    let (src, dst) = addresses(&bytes);
    let mut tcp = TcpPacket::new_unchecked(&mut bytes[20..]);
    tcp.set_src_port(source_port);
    tcp.set_dst_port(80);
    tcp.set_seq_number(TcpSeqNumber(noise.next() as i32));
    tcp.set_header_len(20);
    tcp.set_syn(true);
    tcp.set_window_len(8192);
    tcp.fill_checksum(&src, &dst);
    bytes
}

fn is_syn_ack_to_prober(packet: &[u8]) -> bool {
    let Ok(ip) = Ipv4Packet::new_checked(packet) else {
        return false;
    };
    if ip.next_header() != IpProtocol::Tcp || ip.dst_addr() != Ipv4Addr::new(10, 2, 0, 99) {
        return false;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return false;
    };
    tcp.src_port() == 80 && tcp.dst_port() == 50_000 && tcp.syn() && tcp.ack()
}

fn drain(port: &LocalPort) -> bool {
    let mut found = false;
    port.drain_outgoing(&mut |packet, _| found |= is_syn_ack_to_prober(packet));
    found
}

/// A stack with a TCP echo on port 80 and a UDP echo on port 53.
fn stack_with_services(liveness: Liveness) -> (tokio::runtime::Runtime, LocalStack, LocalPort) {
    let runtime = runtime();
    let (stack, port) = stack_at(&runtime, STACK);
    let own = [format!("{STACK}/24"), format!("{STACK6}/64")];
    stack.set_addresses(&own.map(|net| net.parse().unwrap()));
    stack.set_liveness(liveness);
    runtime.spawn(serve_echo(stack.clone(), 80));
    runtime.spawn(udp_echo(stack.clone(), 53));
    wait_until("the services to start", || stack.socket_count() >= 2);
    (runtime, stack, port)
}

/// Sends a proper SYN until its SYN-ACK comes back.
fn assert_answers_a_syn(port: &LocalPort) {
    let probe = syn(50_000);
    wait_until("a SYN-ACK", || {
        port.deliver(&probe);
        std::thread::sleep(Duration::from_millis(20));
        drain(port)
    });
}

#[test]
fn survives_hostile_packets_and_still_answers() {
    let (_runtime, _stack, port) = stack_with_services(Liveness::default());
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut delivered = 0;
    for i in 0..PACKETS {
        let packet = match noise.below(3) {
            0 => tcp(&mut noise),
            1 => udp(&mut noise),
            _ => garbage(&mut noise),
        };
        delivered += usize::from(port.deliver(&packet));
        if i % 64 == 0 {
            drain(&port);
            std::thread::yield_now();
        }
    }
    assert!(delivered > PACKETS / 10, "only {delivered} packets went in");
    assert_answers_a_syn(&port);
}

#[test]
fn a_syn_flood_holds_the_port_only_until_handshakes_time_out() {
    let liveness = Liveness {
        handshake_timeout: Duration::from_secs(1),
        ..Liveness::default()
    };
    let (_runtime, stack, port) = stack_with_services(liveness);
    // More half-open handshakes than the listening pool holds.
    for source_port in 1000..1100 {
        port.deliver(&syn(source_port));
        drain(&port);
        std::thread::sleep(Duration::from_millis(1));
    }
    wait_until("the flood to arrive", || {
        stack.show_sockets().contains("SYN-RECEIVED")
    });
    assert_answers_a_syn(&port);
}
