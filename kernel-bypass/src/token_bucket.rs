//! A token bucket in thousandths of a token, refilled from a millisecond
//! clock: the rate limiters of ICMP errors (one per worker), of the
//! control-plane classes (shared, behind a lock; a token is a packet) and
//! of elastic IPs (a token is a byte) are this one piece.

#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens per second and the most that can be saved up.
    pps: u64,
    burst: u64,
    milli_tokens: u64,
    refilled_ms: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(pps: u32, burst: u32) -> TokenBucket {
        TokenBucket::per_second(pps.into(), burst.into())
    }

    /// A full bucket of `burst` tokens earning `rate` a second.
    pub fn per_second(rate: u64, burst: u64) -> TokenBucket {
        let burst = burst.max(1);
        TokenBucket {
            pps: rate,
            burst,
            milli_tokens: burst.saturating_mul(1000),
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
        self.take_n(now_ms, 1)
    }

    /// Takes `n` tokens at `now_ms`; false (and none taken) when there
    /// are fewer.
    pub fn take_n(&mut self, now_ms: u64, n: u64) -> bool {
        let earned = now_ms
            .saturating_sub(self.refilled_ms)
            .saturating_mul(self.pps);
        let full = self.burst.saturating_mul(1000);
        self.milli_tokens = self.milli_tokens.saturating_add(earned).min(full);
        // Workers sharing a bucket read the clock at slightly different
        // moments: time never runs back for it.
        self.refilled_ms = self.refilled_ms.max(now_ms);
        let cost = n.saturating_mul(1000);
        let ok = self.milli_tokens >= cost;
        if ok {
            self.milli_tokens -= cost;
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

    #[test]
    fn byte_buckets_take_a_packet_whole_or_not_at_all() {
        // 10 Mbit/s, 125,000 bytes of burst.
        let mut b = TokenBucket::per_second(1_250_000, 125_000);
        let sent = (0..200).filter(|_| b.take_n(0, 1500)).count();
        assert_eq!(sent, 83);
        assert!(!b.take_n(0, 1000), "only 500 bytes left");
        assert!(b.take_n(1, 1500), "1 ms earns 1,250 bytes");
        assert!(
            b.take_n(u64::MAX / 2, 1500),
            "no overflow after a long idle"
        );
    }
}
