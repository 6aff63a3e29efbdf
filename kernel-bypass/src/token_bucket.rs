//! A token bucket in thousandths of a packet, refilled from a millisecond
//! clock: the rate limiters of ICMP errors (one per worker) and of the
//! control-plane classes (shared, behind a lock) are this one piece.

#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Packets per second and the most that can be saved up.
    pps: u64,
    burst: u64,
    milli_tokens: u64,
    refilled_ms: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(pps: u32, burst: u32) -> TokenBucket {
        let burst = u64::from(burst.max(1));
        TokenBucket {
            pps: u64::from(pps),
            burst,
            milli_tokens: burst * 1000,
            refilled_ms: 0,
        }
    }

    pub fn pps(&self) -> u64 {
        self.pps
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Takes one token at `now_ms`; false when there is none.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let earned = now_ms.saturating_sub(self.refilled_ms) * self.pps;
        self.milli_tokens = (self.milli_tokens + earned).min(self.burst * 1000);
        // Workers sharing a bucket read the clock at slightly different
        // moments: time never runs back for it.
        self.refilled_ms = self.refilled_ms.max(now_ms);
        let ok = self.milli_tokens >= 1000;
        if ok {
            self.milli_tokens -= 1000;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;

    #[test]
    fn bucket_limits_bursts_and_refills() {
        let mut b = TokenBucket::new(100, 100);
        let sent = (0..1000).filter(|_| b.take(0)).count();
        assert_eq!(sent, 100);
        assert!(!b.take(5), "5 ms earn no token at 100/s");
        assert!(b.take(20));
    }
}
