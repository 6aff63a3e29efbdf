//! Forwarding information base: the IPv4 route table of the pipeline and
//! equal-cost multipath next-hop selection.

mod block;
pub mod ecmp;
pub mod lpm;

#[cfg(test)]
mod tests;

pub use ecmp::{flow_hash, EcmpError, EcmpGroup};
pub use lpm::{Lpm, LpmError, MAX_ROUTE_VALUE};
