//! Realistic random ACLs and traffic for tests and benchmarks, in the spirit
//! of ClassBench's ACL seeds: addresses cluster in a few hundred sites with
//! mixed prefix lengths, destination ports are mostly well-known services
//! or ranges, source ports mostly any, a few ICMP and any-protocol rules.

use super::{ipv4_mapped, ipv4_mask, FlowKey, Rule};

/// SplitMix64: small, deterministic, so runs and both classifiers see the
/// same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }

    /// True `percent` times in a hundred.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u16, hi: u16) -> u16 {
        lo + self.below(u32::from(hi - lo) + 1) as u16
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }
}

/// Shares of rule features, in percent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mix {
    /// TCP rules with `established`.
    pub established: u32,
    /// Address masks that are IOS wildcards rather than prefixes.
    pub wildcards: u32,
}

const SERVICES: [u16; 16] = [
    21, 22, 23, 25, 53, 80, 110, 123, 143, 179, 443, 445, 993, 3306, 3389, 8080,
];
const SITES: u32 = 256;

/// `count` IPv4 rules in priority order, ids 0, 1, ...
pub fn acl_rules(count: usize, seed: u64, mix: Mix) -> Vec<Rule> {
    let mut rng = Rng::new(seed);
    let sites: Vec<u32> = (0..SITES)
        .map(|_| rng.next_u64() as u32 & 0xffff_0000)
        .collect();
    (0..count as u32)
        .map(|id| {
            let src_len = pick_len(&mut rng, [20, 20, 25, 35]);
            // `any any` belongs at the end of an ACL: mid-list it would
            // shadow every rule after it.
            let dst_len = match pick_len(&mut rng, [5, 15, 30, 50]) {
                0 if src_len == 0 => 24,
                len => len,
            };
            let (src, src_mask) = address(&mut rng, &sites, src_len, mix);
            let (dst, dst_mask) = address(&mut rng, &sites, dst_len, mix);
            let protocol = match rng.below(100) {
                0..55 => Some(6),
                55..80 => Some(17),
                80..85 => Some(1),
                _ => None,
            };
            let any = (0, u16::MAX);
            let (src_ports, dst_ports) = match protocol {
                None => (any, any),
                Some(1) => (
                    icmp_field(&mut rng, &[0, 3, 8, 11]),
                    icmp_field(&mut rng, &[0, 1]),
                ),
                Some(_) => (source_ports(&mut rng), destination_ports(&mut rng)),
            };
            Rule {
                src,
                src_mask,
                dst,
                dst_mask,
                protocol,
                src_ports,
                dst_ports,
                established: protocol == Some(6) && rng.percent(mix.established),
                id,
            }
        })
        .collect()
}

/// Prefix lengths: /0, /8-/23, /24-/31, /32 with these weights.
fn pick_len(rng: &mut Rng, weights: [u32; 4]) -> u8 {
    match rng.below(100) {
        w if w < weights[0] => 0,
        w if w < weights[0] + weights[1] => 8 + rng.below(16) as u8,
        w if w < weights[0] + weights[1] + weights[2] => 24 + rng.below(8) as u8,
        _ => 32,
    }
}

/// An address in one of the sites and its mask; a wildcard mask frees one
/// whole octet inside the prefix, below the first (IOS `0.0.255.0`-style).
fn address(rng: &mut Rng, sites: &[u32], len: u8, mix: Mix) -> (u128, u128) {
    let addr = ipv4_mapped(rng.pick(sites) | (rng.next_u64() as u32 & 0xffff));
    let mask = ipv4_mask(len);
    if len >= 16 && rng.percent(mix.wildcards) {
        let octets = u32::from(len) / 8;
        let shift = 32 - 8 * octets + 8 * rng.below(octets - 1);
        return (addr, mask & !(0xff << shift));
    }
    (addr & mask, mask)
}

fn icmp_field(rng: &mut Rng, values: &[u16]) -> (u16, u16) {
    if rng.percent(50) {
        return (0, u16::MAX);
    }
    let v = rng.pick(values);
    (v, v)
}

fn source_ports(rng: &mut Rng) -> (u16, u16) {
    match rng.below(100) {
        0..80 => (0, u16::MAX),
        80..90 => (1024, u16::MAX),
        _ => {
            let p = rng.pick(&SERVICES);
            (p, p)
        }
    }
}

fn destination_ports(rng: &mut Rng) -> (u16, u16) {
    match rng.below(100) {
        0..15 => (0, u16::MAX),
        15..70 => {
            let p = rng.pick(&SERVICES);
            (p, p)
        }
        70..80 => (1024, u16::MAX),
        80..90 => (0, 1023),
        _ => {
            let lo = rng.range(1024, 60000);
            (lo, lo + rng.range(1, 2000))
        }
    }
}

/// `count` keys: nine in ten inside a random rule's box (as ClassBench
/// traces are), the rest random IPv4 traffic.
pub fn trace(rules: &[Rule], count: usize, seed: u64) -> Vec<FlowKey> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let random = FlowKey {
                src: ipv4_mapped(rng.next_u64() as u32),
                dst: ipv4_mapped(rng.next_u64() as u32),
                protocol: rng.pick(&[1, 6, 17]),
                src_port: rng.next_u64() as u16,
                dst_port: rng.next_u64() as u16,
                tcp_flags: rng.next_u64() as u8,
            };
            if rules.is_empty() || rng.percent(10) {
                return random;
            }
            let rule = rng.pick(rules);
            FlowKey {
                src: rule.src & rule.src_mask | random.src & !rule.src_mask,
                dst: rule.dst & rule.dst_mask | random.dst & !rule.dst_mask,
                protocol: rule.protocol.unwrap_or(random.protocol),
                src_port: rng.range(rule.src_ports.0, rule.src_ports.1),
                dst_port: rng.range(rule.dst_ports.0, rule.dst_ports.1),
                tcp_flags: random.tcp_flags,
            }
        })
        .collect()
}
