//! ICMP the pipeline answers itself: echo replies for own addresses, and
//! rate-limited time-exceeded / destination-unreachable errors.

use super::{Stage, Verdict};
use crate::counters::Counter;
use crate::frame::Frame;
use crate::snapshot::{Iface, Snapshot};
use crate::wire::*;

/// ICMP and ICMPv6 errors a worker may send per second (and in a burst).
pub(super) const ERRORS_PER_SEC: u32 = 100;
/// ICMP and ICMPv6 headers: type, code, checksum and one 32-bit word.
pub(super) const ICMP_HEADER: usize = 8;

/// The ICMP errors the pipeline sends.
#[derive(Clone, Copy, Debug)]
pub(super) enum IcmpError {
    TimeExceeded,
    NetUnreachable,
    /// The next hop did not answer ARP.
    HostUnreachable,
    /// Too big for the next hop's MTU with DF set (path MTU discovery).
    FragmentationNeeded {
        mtu: u16,
    },
}

impl IcmpError {
    /// Type, code, checksum placeholder and the type-specific word (the
    /// next-hop MTU for fragmentation needed, else unused and zero).
    fn header(self) -> [u8; ICMP_HEADER] {
        let (kind, code, mtu) = match self {
            IcmpError::TimeExceeded => (ICMP_TIME_EXCEEDED, 0, 0),
            IcmpError::NetUnreachable => (ICMP_DEST_UNREACHABLE, ICMP_CODE_NET_UNREACHABLE, 0),
            IcmpError::HostUnreachable => (ICMP_DEST_UNREACHABLE, ICMP_CODE_HOST_UNREACHABLE, 0),
            IcmpError::FragmentationNeeded { mtu } => {
                (ICMP_DEST_UNREACHABLE, ICMP_CODE_FRAGMENTATION_NEEDED, mtu)
            }
        };
        let [hi, lo] = mtu.to_be_bytes();
        [kind, code, 0, 0, 0, 0, hi, lo]
    }
}

impl Stage {
    /// Turns an echo request for one of our addresses into the reply, in place.
    pub(super) fn icmp_echo(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
        header_len: usize,
    ) -> Verdict {
        let d = frame.data_mut();
        if d.len() < header_len + ICMP_HEADER {
            return self.count(iface.id, Counter::Ipv4Malformed);
        }
        let (src, dst) = (ipv4_at(d, IPV4_SRC), ipv4_at(d, IPV4_DST));
        d[IPV4_SRC..IPV4_SRC + 4].copy_from_slice(&dst.octets());
        d[IPV4_DST..IPV4_DST + 4].copy_from_slice(&src.octets());
        d[IPV4_TTL] = DEFAULT_TTL;
        put_be16(d, IPV4_CHECKSUM, 0);
        let sum = checksum(&d[..header_len]);
        put_be16(d, IPV4_CHECKSUM, sum);
        let icmp = &mut d[header_len..];
        let old = be16(icmp, 0);
        icmp[0] = ICMP_ECHO_REPLY;
        let sum = checksum_adjust(be16(icmp, 2), old, be16(icmp, 0));
        put_be16(icmp, 2, sum);
        self.counters.event(Counter::IcmpEchoReplied);
        self.ip_output(snap, frame, iface.vrf, 0)
    }

    /// Replaces a dropped packet with an ICMP error to its sender (RFC 792:
    /// the original IP header and 8 bytes of payload). Never answers ICMP
    /// errors, non-first fragments or non-unicast senders.
    pub(super) fn icmp_error(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        ingress: &Iface,
        error: IcmpError,
    ) -> Verdict {
        let d = frame.data();
        let header_len = ipv4_header_len(d);
        let src = ipv4_at(d, IPV4_SRC);
        let is_error = d[IPV4_PROTOCOL] == PROTO_ICMP
            && !matches!(
                d.get(header_len),
                Some(&ICMP_ECHO_REQUEST) | Some(&ICMP_ECHO_REPLY)
            );
        let later_fragment = !is_first_fragment(d);
        if is_error || later_fragment || src.is_unspecified() {
            return Verdict::Done;
        }
        let Some(own) = ingress.source_for(src) else {
            return Verdict::Done;
        };
        if !self.icmp_budget.take(self.now_ms) {
            self.counters.event(Counter::IcmpRateLimited);
            return Verdict::Done;
        }
        let quoted = frame.len().min(header_len + 8);
        frame.truncate(quoted);
        let Some(h) = frame.push_front(IPV4_HEADER + ICMP_HEADER) else {
            return Verdict::Done;
        };
        let total = (IPV4_HEADER + ICMP_HEADER + quoted) as u16;
        write_ipv4_header(h, total, DEFAULT_TTL, PROTO_ICMP, own, src);
        let icmp = &mut frame.data_mut()[IPV4_HEADER..];
        icmp[..ICMP_HEADER].copy_from_slice(&error.header());
        let sum = checksum(icmp);
        put_be16(icmp, 2, sum);
        self.counters.event(Counter::IcmpErrorSent);
        self.ip_output(snap, frame, ingress.vrf, 0)
    }
}
