//! VRRP version 3 advertisements for IPv4 (RFC 5798 section 5): read
//! through a checked view and written whole, with the IPv4 header they
//! travel in (TTL 255, protocol 112, to 224.0.0.18) and the checksum over
//! the IPv4 pseudo-header, as RFC 5798 5.2.8 and keepalived compute it.

use crate::wire::{be16, checksum, put_be16, IPV4_HEADER};
use std::net::Ipv4Addr;

pub const PROTO_VRRP: u8 = 112;
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The MAC of 224.0.0.18.
pub const VRRP_GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// Adverts are sent, and accepted, with this TTL only (RFC 5798 7.1).
pub const VRRP_TTL: u8 = 255;
/// Version 3, type 1 (advertisement).
const VERSION_TYPE: u8 = 0x31;
const HEADER: usize = 8;

/// The virtual MAC of virtual router `vrid`: 00-00-5E-00-01-{VRID}.
pub fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// An advertisement's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds.
    pub interval_cs: u16,
    pub addresses: Vec<Ipv4Addr>,
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, message: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + message.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, PROTO_VRRP]);
    pseudo.extend_from_slice(&(message.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(message);
    checksum(&pseudo)
}

impl Advert {
    /// The advertisement in an IPv4 packet (header first, as the pipeline
    /// holds packets) from `src`; None when the IPv4 header is not
    /// VRRP's (protocol, TTL 255, the group) or the message is malformed
    /// (version, type, length, checksum).
    pub fn parse(packet: &[u8]) -> Option<(Ipv4Addr, Advert)> {
        let ip = crate::headers::Ipv4View::new_checked(packet)?;
        if ip.protocol() != PROTO_VRRP
            || packet[crate::wire::IPV4_TTL] != VRRP_TTL
            || ip.dst() != VRRP_GROUP
        {
            return None;
        }
        let m = ip.payload();
        if m.len() < HEADER || m[0] != VERSION_TYPE {
            return None;
        }
        let count = usize::from(m[3]);
        if m.len() < HEADER + 4 * count
            || pseudo_sum(ip.src(), ip.dst(), &m[..HEADER + 4 * count]) != 0
        {
            return None;
        }
        let addresses = (0..count)
            .map(|i| {
                let at = HEADER + 4 * i;
                Ipv4Addr::new(m[at], m[at + 1], m[at + 2], m[at + 3])
            })
            .collect();
        let advert = Advert {
            vrid: m[1],
            priority: m[2],
            interval_cs: be16(m, 4) & 0x0fff,
            addresses,
        };
        Some((ip.src(), advert))
    }

    /// The IPv4 packet carrying it from `src`.
    pub fn packet(&self, src: Ipv4Addr) -> Vec<u8> {
        let mut m = vec![
            VERSION_TYPE,
            self.vrid,
            self.priority,
            self.addresses.len() as u8,
        ];
        m.extend_from_slice(&(self.interval_cs & 0x0fff).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        for a in &self.addresses {
            m.extend_from_slice(&a.octets());
        }
        let sum = pseudo_sum(src, VRRP_GROUP, &m);
        put_be16(&mut m, 6, sum);
        let mut p = vec![0x45, 0xc0, 0, 0, 0, 0, 0, 0, VRRP_TTL, PROTO_VRRP, 0, 0];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&VRRP_GROUP.octets());
        p.extend_from_slice(&m);
        let len = p.len() as u16;
        put_be16(&mut p, 2, len);
        let sum = checksum(&p[..IPV4_HEADER]);
        put_be16(&mut p, crate::wire::IPV4_CHECKSUM, sum);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_advert_survives_its_own_encoding_and_a_flipped_bit_is_refused() {
        let advert = Advert {
            vrid: 51,
            priority: 200,
            interval_cs: 100,
            addresses: vec![Ipv4Addr::new(10, 70, 1, 254)],
        };
        let src = Ipv4Addr::new(10, 70, 1, 2);
        let mut p = advert.packet(src);
        assert_eq!(Advert::parse(&p), Some((src, advert)));
        p[22] ^= 1; // the priority
        assert_eq!(Advert::parse(&p), None, "checksum");
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Advert::parse(&bytes);
        }
    }
}
