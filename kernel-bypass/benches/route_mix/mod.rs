//! The route set the table benchmarks share: random distinct IPv4
//! prefixes in a realistic length mix.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use kernel_bypass::classify::synth::Rng;

/// `count` distinct prefixes in a realistic length mix: 85% /24,
/// 10% /16-/23, 5% /25-/32, each with a random value below 2^16.
pub fn random_routes(rng: &mut Rng, count: usize) -> Vec<(Ipv4Net, u32)> {
    let mut seen = HashSet::with_capacity(count);
    let mut routes = Vec::with_capacity(count);
    while routes.len() < count {
        let len = match rng.below(100) {
            0..=84 => 24,
            85..=94 => 16 + rng.below(8) as u8,
            _ => 25 + rng.below(8) as u8,
        };
        let addr = Ipv4Addr::from(rng.next_u64() as u32);
        let prefix = Ipv4Net::new(addr, len).expect("length below 33").trunc();
        if seen.insert(prefix) {
            routes.push((prefix, rng.below(1 << 16)));
        }
    }
    routes
}
