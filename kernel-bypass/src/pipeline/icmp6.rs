//! ICMPv6 the pipeline answers itself (RFC 4443): echo replies for own
//! addresses, and time-exceeded, destination-unreachable and packet-too-big
//! errors, rate-limited by the same per-worker budget as ICMP errors.

use super::icmp::ICMP_HEADER;
use super::output::egress;
use super::{Stage, Verdict};
use crate::counters::Counter;
use crate::frame::Frame;
use crate::snapshot::{Iface, Snapshot, VrfId};
use crate::wire::*;

/// The ICMPv6 errors the pipeline sends.
#[derive(Clone, Copy, Debug)]
pub(super) enum Icmp6Error {
    TimeExceeded,
    NoRoute,
    /// The next hop did not answer neighbour solicitations.
    AddressUnreachable,
    /// Too big for the egress MTU (path MTU discovery).
    PacketTooBig {
        mtu: u16,
    },
}

impl Icmp6Error {
    /// Type, code, checksum placeholder and the 32-bit word after it (the
    /// MTU for packet-too-big, else unused and zero).
    fn header(self) -> [u8; ICMP_HEADER] {
        let (kind, code, word) = match self {
            Icmp6Error::TimeExceeded => (ICMPV6_TIME_EXCEEDED, 0, 0),
            Icmp6Error::NoRoute => (ICMPV6_DEST_UNREACHABLE, ICMPV6_CODE_NO_ROUTE, 0),
            Icmp6Error::AddressUnreachable => {
                (ICMPV6_DEST_UNREACHABLE, ICMPV6_CODE_ADDRESS_UNREACHABLE, 0)
            }
            Icmp6Error::PacketTooBig { mtu } => (ICMPV6_PACKET_TOO_BIG, 0, u32::from(mtu)),
        };
        let [a, b, c, d] = word.to_be_bytes();
        [kind, code, 0, 0, a, b, c, d]
    }
}

/// Fills in the checksum of the ICMPv6 message after the IPv6 header.
pub(super) fn set_icmp6_checksum(packet: &mut [u8]) {
    put_be16(packet, IPV6_HEADER + 2, 0);
    let sum = ipv6_payload_checksum(packet);
    put_be16(packet, IPV6_HEADER + 2, sum);
}

impl Stage {
    /// Turns an echo request for one of our addresses into the reply, in
    /// place (the checksum already verified by the caller).
    pub(super) fn icmp6_echo(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
    ) -> Verdict {
        let d = frame.data_mut();
        let (src, dst) = (ipv6_at(d, IPV6_SRC), ipv6_at(d, IPV6_DST));
        d[IPV6_SRC..IPV6_SRC + 16].copy_from_slice(&dst.octets());
        d[IPV6_DST..IPV6_DST + 16].copy_from_slice(&src.octets());
        d[IPV6_HOP_LIMIT] = DEFAULT_TTL;
        // Swapping the addresses leaves the pseudo-header sum unchanged.
        let old = be16(d, IPV6_HEADER);
        d[IPV6_HEADER] = ICMPV6_ECHO_REPLY;
        let sum = checksum_adjust(be16(d, IPV6_HEADER + 2), old, be16(d, IPV6_HEADER));
        put_be16(d, IPV6_HEADER + 2, sum);
        self.counters.event(Counter::Icmp6EchoReplied);
        self.ip6_output(snap, frame, Some(iface))
    }

    /// Replaces a dropped packet with an ICMPv6 error to its sender,
    /// quoting as much of it as fits in the minimum MTU. Never answers
    /// errors, multicast packets or unspecified senders (RFC 4443 2.4).
    pub(super) fn icmp6_error(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        ingress: &Iface,
        error: Icmp6Error,
    ) -> Verdict {
        let d = frame.data();
        let (src, dst) = (ipv6_at(d, IPV6_SRC), ipv6_at(d, IPV6_DST));
        let is_error = d[IPV6_NEXT_HEADER] == PROTO_ICMPV6
            && d.get(IPV6_HEADER).is_none_or(|t| *t < ICMPV6_INFORMATIONAL);
        if is_error || src.is_unspecified() || src.is_multicast() || dst.is_multicast() {
            return Verdict::Done;
        }
        if !self.icmp_budget.take(self.now_ms) {
            self.counters.event(Counter::Icmp6RateLimited);
            return Verdict::Done;
        }
        let own = ingress.source_for_ipv6(src);
        let quoted = frame.len().min(IPV6_MIN_MTU - IPV6_HEADER - ICMP_HEADER);
        frame.truncate(quoted);
        if frame.push_front(IPV6_HEADER + ICMP_HEADER).is_none() {
            return Verdict::Done;
        }
        let packet = frame.data_mut();
        let payload = (ICMP_HEADER + quoted) as u16;
        write_ipv6_header(packet, payload, PROTO_ICMPV6, DEFAULT_TTL, own, src);
        packet[IPV6_HEADER..IPV6_HEADER + ICMP_HEADER].copy_from_slice(&error.header());
        set_icmp6_checksum(packet);
        self.counters.event(Counter::Icmp6ErrorSent);
        self.ip6_output(snap, frame, Some(ingress))
    }

    /// A packet whose next hop never answered: its sender (if reachable
    /// through the routes, not one of our own packets) hears so.
    pub(super) fn icmp6_unresolved(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        vrf: VrfId,
    ) -> Verdict {
        if frame.len() < IPV6_HEADER {
            return Verdict::Done;
        }
        let src = ipv6_at(frame.data(), IPV6_SRC);
        match snap
            .table(vrf)
            .route6(src)
            .and_then(|r| egress(snap, &r.kind))
        {
            Some(back) => self.icmp6_error(snap, frame, back, Icmp6Error::AddressUnreachable),
            None => Verdict::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_headers_carry_type_code_and_mtu() {
        assert_eq!(Icmp6Error::TimeExceeded.header(), [3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Icmp6Error::AddressUnreachable.header()[..2], [1, 3]);
        assert_eq!(
            Icmp6Error::PacketTooBig { mtu: 1400 }.header(),
            [2, 0, 0, 0, 0, 0, 0x05, 0x78]
        );
    }
}
