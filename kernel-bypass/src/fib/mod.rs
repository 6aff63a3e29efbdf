//! Forwarding information base: the IPv4 and IPv6 route tables of the
//! pipeline and equal-cost multipath next-hop selection.

mod block;
pub mod ecmp;
pub mod lpm;
pub mod lpm6;

#[cfg(test)]
mod tests;

pub use ecmp::{flow_hash, EcmpError, EcmpGroup};
pub use lpm::{Lpm, LpmError, MAX_ROUTE_VALUE};
pub use lpm6::Lpm6;
