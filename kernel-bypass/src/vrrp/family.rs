//! What differs between VRRP over IPv4 and over IPv6 (RFC 5798 5.1, 5.2.9,
//! 6.4.1, 7.3): the address, the IP header adverts travel in, the
//! group and the virtual MAC, the configuration a router takes its
//! addresses and source from, and how a new master announces an address
//! (gratuitous ARP, unsolicited Neighbor Advertisement). The state
//! machine, the advert codec and the element are written once over it.

use crate::features::Family;
use crate::headers::{Ipv4View, Ipv6View};
use crate::pipeline::{write_unsolicited_advert, ND_PACKET};
use crate::snapshot::Iface;
use crate::wire::{
    checksum, multicast_mac, put_be16, write_arp, write_ipv4_header, write_ipv6_header, Mac,
    ARP_PACKET, ARP_REQUEST, BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    IPV4_CHECKSUM, IPV4_HEADER, IPV4_PROTOCOL, IPV4_TTL, IPV6_ALL_NODES, IPV6_HEADER,
    IPV6_HOP_LIMIT, IPV6_NEXT_HEADER,
};
use grammar::config::{Interface, VrrpGroup};
use std::fmt::{Debug, Display};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTO_VRRP: u8 = 112;
/// Adverts are sent, and accepted, with this TTL or hop limit only (RFC
/// 5798 7.1).
pub const VRRP_TTL: u8 = 255;
/// The longest announcement a family writes (a Neighbor Advertisement).
pub const ANNOUNCEMENT_MAX: usize = ND_PACKET;

/// An address family VRRP runs over, implemented by its address type.
pub trait VrrpFamily: Copy + Ord + Debug + Display + Into<IpAddr> + Send + Sync + 'static {
    /// `IPv4`, `IPv6`: as `show vrrp` names the family.
    const NAME: &'static str;
    const FEATURE_FAMILY: Family;
    const ETHERTYPE: u16;
    /// Bytes of an address in an advert.
    const LEN: usize;
    /// Where the header says which protocol follows.
    const PROTOCOL_AT: usize;
    /// 224.0.0.18, ff02::12.
    const GROUP: Self;
    const GROUP_MAC: Mac;
    /// The fifth byte of the virtual MAC 00-00-5E-00-{01,02}-{VRID}.
    const MAC_FAMILY: u8;

    /// Writes the address into `out` (exactly `LEN` bytes).
    fn write(self, out: &mut [u8]);

    /// The source and the payload of an IP packet that travels as an
    /// advert must (protocol 112, TTL 255, to the group); None otherwise.
    fn advert_payload(packet: &[u8]) -> Option<(Self, &[u8])>;
    /// Bytes of the IP header `write_header` writes.
    const HEADER: usize;
    fn write_header(packet: &mut [u8], src: Self, payload_len: usize);

    /// The group's virtual addresses of this family, in advert order
    /// (IPv6: the link-local one first, RFC 5798 5.2.9).
    fn addresses(group: &VrrpGroup) -> Vec<Self>;
    /// The interface's address adverts come from, which also breaks
    /// ties between equal priorities.
    fn primary(configured: &Interface, iface: &Iface) -> Option<Self>;

    /// Writes into `buf` the frame payload that tells the link `mac` now
    /// has `address`; returns its destination MAC, EtherType and length.
    fn announcement(address: Self, mac: &Mac, buf: &mut [u8]) -> (Mac, u16, usize);
}

impl VrrpFamily for Ipv4Addr {
    const NAME: &'static str = "IPv4";
    const FEATURE_FAMILY: Family = Family::Ipv4;
    const ETHERTYPE: u16 = ETHERTYPE_IPV4;
    const LEN: usize = 4;
    const PROTOCOL_AT: usize = IPV4_PROTOCOL;
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    const GROUP_MAC: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
    const MAC_FAMILY: u8 = 1;

    fn write(self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }

    fn advert_payload(packet: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
        let ip = Ipv4View::new_checked(packet)?;
        let is_advert =
            ip.protocol() == PROTO_VRRP && packet[IPV4_TTL] == VRRP_TTL && ip.dst() == Self::GROUP;
        is_advert.then(|| (ip.src(), ip.payload()))
    }

    const HEADER: usize = IPV4_HEADER;

    fn write_header(packet: &mut [u8], src: Ipv4Addr, payload_len: usize) {
        let total = (IPV4_HEADER + payload_len) as u16;
        write_ipv4_header(packet, total, VRRP_TTL, PROTO_VRRP, src, Self::GROUP);
        // Precedence "internetwork control", as routing protocols send.
        packet[1] = 0xc0;
        put_be16(packet, IPV4_CHECKSUM, 0);
        let sum = checksum(&packet[..IPV4_HEADER]);
        put_be16(packet, IPV4_CHECKSUM, sum);
    }

    fn addresses(group: &VrrpGroup) -> Vec<Ipv4Addr> {
        group.addresses.iter().copied().collect()
    }

    fn primary(configured: &Interface, _: &Iface) -> Option<Ipv4Addr> {
        configured.primary_ipv4().map(|net| net.addr())
    }

    /// Gratuitous ARP: a request for one's own address.
    fn announcement(address: Ipv4Addr, mac: &Mac, buf: &mut [u8]) -> (Mac, u16, usize) {
        let arp = &mut buf[..ARP_PACKET];
        write_arp(arp, ARP_REQUEST, (mac, address), (&[0; 6], address));
        (BROADCAST_MAC, ETHERTYPE_ARP, ARP_PACKET)
    }
}

impl VrrpFamily for Ipv6Addr {
    const NAME: &'static str = "IPv6";
    const FEATURE_FAMILY: Family = Family::Ipv6;
    const ETHERTYPE: u16 = ETHERTYPE_IPV6;
    const LEN: usize = 16;
    const PROTOCOL_AT: usize = IPV6_NEXT_HEADER;
    const GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
    const GROUP_MAC: Mac = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];
    const MAC_FAMILY: u8 = 2;

    fn write(self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }

    /// Extension headers are not walked: adverts carry none.
    fn advert_payload(packet: &[u8]) -> Option<(Ipv6Addr, &[u8])> {
        let ip = Ipv6View::new_checked(packet)?;
        let is_advert = packet[IPV6_NEXT_HEADER] == PROTO_VRRP
            && packet[IPV6_HOP_LIMIT] == VRRP_TTL
            && ip.dst() == Self::GROUP;
        is_advert.then(|| (ip.src(), &packet[IPV6_HEADER..ip.total_len()]))
    }

    const HEADER: usize = IPV6_HEADER;

    fn write_header(packet: &mut [u8], src: Ipv6Addr, payload_len: usize) {
        let len = payload_len as u16;
        write_ipv6_header(packet, len, PROTO_VRRP, VRRP_TTL, src, Self::GROUP);
    }

    fn addresses(group: &VrrpGroup) -> Vec<Ipv6Addr> {
        group.ipv6_in_advert_order()
    }

    /// The interface's link-local address (RFC 5798 5.1.2.1).
    fn primary(_: &Interface, iface: &Iface) -> Option<Ipv6Addr> {
        Some(iface.link_local)
    }

    /// An unsolicited Neighbor Advertisement to all nodes, router and
    /// override flags set (RFC 5798 6.4.1).
    fn announcement(address: Ipv6Addr, mac: &Mac, buf: &mut [u8]) -> (Mac, u16, usize) {
        write_unsolicited_advert(&mut buf[..ND_PACKET], address, mac);
        (multicast_mac(IPV6_ALL_NODES), ETHERTYPE_IPV6, ND_PACKET)
    }
}

/// The virtual MAC of virtual router `vrid` of family `A`:
/// 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6).
pub fn virtual_mac<A: VrrpFamily>(vrid: u8) -> Mac {
    [0x00, 0x00, 0x5e, 0x00, A::MAC_FAMILY, vrid]
}
