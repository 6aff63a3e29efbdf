//! VRRP version 3 advertisements (RFC 5798 section 5) for either family:
//! read in place (no allocation) and written whole, with the IP header
//! they travel in and the checksum over the family's pseudo-header, as
//! RFC 5798 5.2.8 and keepalived compute it.

use super::family::{VrrpFamily, PROTO_VRRP};
use crate::wire::{be16, fold, ones_sum, put_be16};

/// Version 3, type 1 (advertisement).
const VERSION_TYPE: u8 = 0x31;
const HEADER: usize = 8;
const CHECKSUM_AT: usize = 6;

/// An advertisement's fields; the addresses it lists are checked by the
/// checksum but not kept (RFC 5798 7.1 makes comparing them optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds.
    pub interval_cs: u16,
}

/// The checksum of `message` (checksum field included) under the
/// pseudo-header from `src` to the group: the same shape for both
/// families (addresses, length, protocol).
fn pseudo_sum<A: VrrpFamily>(src: A, message: &[u8]) -> u16 {
    let mut addresses = [0u8; 32];
    src.write(&mut addresses[..A::LEN]);
    A::GROUP.write(&mut addresses[A::LEN..2 * A::LEN]);
    let pseudo = u32::from(PROTO_VRRP) + message.len() as u32;
    let sum = ones_sum(&addresses[..2 * A::LEN], pseudo);
    !fold(ones_sum(message, sum))
}

impl Advert {
    /// The advertisement in an IP packet of family `A` (header first, as
    /// the pipeline holds packets) and its source; None when the header is
    /// not VRRP's (protocol, TTL 255, the group) or the message is
    /// malformed (version, type, length, checksum).
    pub fn parse<A: VrrpFamily>(packet: &[u8]) -> Option<(A, Advert)> {
        let (src, m) = A::advert_payload(packet)?;
        if m.len() < HEADER || m[0] != VERSION_TYPE {
            return None;
        }
        let len = HEADER + A::LEN * usize::from(m[3]);
        if m.len() < len || pseudo_sum(src, &m[..len]) != 0 {
            return None;
        }
        let advert = Advert {
            vrid: m[1],
            priority: m[2],
            interval_cs: be16(m, 4) & 0x0fff,
        };
        Some((src, advert))
    }

    /// The IP packet carrying it from `src` and listing `addresses` (at
    /// most 255: the configuration holds fewer).
    pub fn packet<A: VrrpFamily>(&self, src: A, addresses: &[A]) -> Vec<u8> {
        let message_len = HEADER + A::LEN * addresses.len();
        let mut p = vec![0; A::HEADER + message_len];
        A::write_header(&mut p, src, message_len);
        let m = &mut p[A::HEADER..];
        m[..4].copy_from_slice(&[
            VERSION_TYPE,
            self.vrid,
            self.priority,
            addresses.len() as u8,
        ]);
        put_be16(m, 4, self.interval_cs & 0x0fff);
        for (a, slot) in addresses.iter().zip(m[HEADER..].chunks_exact_mut(A::LEN)) {
            a.write(slot);
        }
        let sum = pseudo_sum(src, m);
        put_be16(m, CHECKSUM_AT, sum);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IPV4_CHECKSUM, IPV4_HEADER, IPV6_HEADER, IPV6_HOP_LIMIT};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ADVERT: Advert = Advert {
        vrid: 51,
        priority: 200,
        interval_cs: 100,
    };

    #[test]
    fn an_ipv4_advert_survives_its_own_encoding_and_a_flipped_bit_is_refused() {
        let src = Ipv4Addr::new(10, 70, 1, 2);
        let mut p = ADVERT.packet(src, &[Ipv4Addr::new(10, 70, 1, 254)]);
        assert_eq!(crate::wire::checksum(&p[..IPV4_HEADER]), 0);
        assert_eq!(Advert::parse(&p), Some((src, ADVERT)));
        p[IPV4_HEADER + 2] ^= 1; // the priority
        assert_eq!(Advert::parse::<Ipv4Addr>(&p), None, "checksum");
        assert_ne!(p[IPV4_CHECKSUM], 0);
    }

    #[test]
    fn an_ipv6_advert_matches_rfc_5798_and_its_checksum_covers_the_pseudo_header() {
        let src: Ipv6Addr = "fe80::2".parse().unwrap();
        let addresses: [Ipv6Addr; 2] = ["fe80::1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let p = ADVERT.packet(src, &addresses);
        assert_eq!(p.len(), IPV6_HEADER + 8 + 32);
        assert_eq!((p[6], p[7]), (112, 255), "next header, hop limit");
        assert_eq!(&p[24..40], &Ipv6Addr::GROUP.octets());
        assert_eq!(&p[IPV6_HEADER..IPV6_HEADER + 4], &[0x31, 51, 200, 2]);
        // The pipeline's own IPv6 upper-layer checksum agrees.
        assert_eq!(crate::wire::ipv6_payload_checksum(&p), 0);
        assert_eq!(Advert::parse(&p), Some((src, ADVERT)));
        // Another source changes the pseudo-header: refused.
        let mut moved = p.clone();
        moved[23] ^= 1;
        assert_eq!(Advert::parse::<Ipv6Addr>(&moved), None);
        let mut hop = p.clone();
        hop[IPV6_HOP_LIMIT] = 64;
        assert_eq!(Advert::parse::<Ipv6Addr>(&hop), None, "hop limit");
        // An IPv4 advert is not an IPv6 one, nor the reverse.
        assert_eq!(Advert::parse::<Ipv4Addr>(&p), None);
        let v4 = ADVERT.packet(Ipv4Addr::new(10, 0, 0, 1), &[]);
        assert_eq!(Advert::parse::<Ipv6Addr>(&v4), None);
    }

    #[test]
    fn an_ipv6_advert_listing_more_addresses_than_it_holds_is_refused() {
        let src: Ipv6Addr = "fe80::2".parse().unwrap();
        let mut p = ADVERT.packet(src, &["fe80::1".parse().unwrap()]);
        p[IPV6_HEADER + 3] = 2;
        assert_eq!(Advert::parse::<Ipv6Addr>(&p), None);
        assert_eq!(Advert::parse::<Ipv6Addr>(&p[..IPV6_HEADER + 4]), None);
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Advert::parse::<Ipv4Addr>(&bytes);
            let _ = Advert::parse::<Ipv6Addr>(&bytes);
        }

        /// A valid IPv6 advert with any bytes changed, cut or extended
        /// (the payload length then disagrees): never a panic, and what
        /// still parses is still VRRP from the group.
        #[test]
        fn mangled_ipv6_adverts_never_make_the_parser_panic(
            count in 0usize..4,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let addresses = vec![Ipv6Addr::LOCALHOST; count];
            let mut p = ADVERT.packet("fe80::2".parse::<Ipv6Addr>().unwrap(), &addresses);
            for (at, byte) in edits {
                let at = at % p.len();
                p[at] = byte;
            }
            p.truncate(cut % (p.len() + 1));
            p.extend_from_slice(&tail);
            if Advert::parse::<Ipv6Addr>(&p).is_some() {
                prop_assert_eq!(p[6], 112);
                prop_assert_eq!(&p[24..40], &Ipv6Addr::GROUP.octets()[..]);
            }
        }
    }
}
