//! Per-class policers for traffic to the appliance itself: token buckets
//! shared by every worker, so a flood of one kind (UDP to a closed port,
//! pings) cannot take the capacity management traffic needs.

use crate::headers::{tcp_flags, FlowInfo};
use crate::token_bucket::TokenBucket;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use grammar::config::CpClass;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The SSH port, which has a class of its own.
pub const SSH_PORT: u16 = 22;

/// The class a packet to the appliance belongs to.
pub fn class_of(flow: &FlowInfo) -> CpClass {
    match flow.protocol {
        _ if flow.is_neighbor_discovery() => CpClass::ArpNd,
        PROTO_ICMP | PROTO_ICMPV6 => CpClass::Icmp,
        PROTO_TCP if flow.dst_port == SSH_PORT || flow.src_port == SSH_PORT => CpClass::Ssh,
        PROTO_TCP | PROTO_UDP => CpClass::TcpUdp,
        _ => CpClass::Other,
    }
}

/// A SYN without ACK: the first packet of a connection attempt.
pub fn is_syn(flow: &FlowInfo) -> bool {
    flow.protocol == PROTO_TCP && flow.has_transport && tcp_flags::is_syn(flow.tcp_flags)
}

/// A class's policer: a token bucket the workers share, and what it let
/// through and dropped.
pub struct Bucket {
    bucket: Mutex<TokenBucket>,
    pub pps: u64,
    pub burst: u64,
    pub passed: AtomicU64,
    pub dropped: AtomicU64,
}

impl Bucket {
    pub fn new(pps: u32, burst: u32) -> Bucket {
        let bucket = TokenBucket::new(pps, burst);
        Bucket {
            pps: bucket.pps(),
            burst: bucket.burst(),
            bucket: Mutex::new(bucket),
            passed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Takes one token at `now_ms`; false (and counted) when there is none.
    pub fn take(&self, now_ms: u64) -> bool {
        let ok = self
            .bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(now_ms);
        let counter = if ok { &self.passed } else { &self.dropped };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_passes_its_burst_then_its_rate() {
        let bucket = Bucket::new(100, 10);
        let passed = (0..50).filter(|_| bucket.take(0)).count();
        assert_eq!(passed, 10, "the burst at once");
        let passed = (0..50).filter(|_| bucket.take(100)).count();
        assert_eq!(passed, 10, "100 pps for 100 ms");
        assert_eq!(bucket.dropped.load(Ordering::Relaxed), 80);
    }
}
