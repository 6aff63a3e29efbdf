//! The unified userspace network stack of Gatehouse.
//!
//! [`Dataplane`] is the entry point: it opens a port ([`io`]) on every
//! physical interface of the config, compiles the config into an immutable
//! [`snapshot`] (interfaces, own addresses, [`fib`] routes) published with
//! arc-swap, and runs worker threads. Each worker owns its ports and a
//! [`pipeline`] that takes batches ([`frame`]) through Ethernet/802.1Q, ARP,
//! IPv4, ICMP, IPv6 (Neighbour Discovery, ICMPv6) and VXLAN, hands IPv4
//! packets for the appliance's own TCP/UDP sockets to the [`local`] stack
//! and routes that stack's output back out. ARP and IPv6 neighbours and
//! VXLAN MAC -> VTEP entries live in [`learned`] tables shared
//! lock-free by the workers; each worker writes its own [`counters`].
//! Network elements hook into the IPv4 and IPv6 paths at the named
//! [`features`] points.

pub mod bridge;
pub mod classify;
pub mod commands;
pub mod control_plane;
pub mod counters;
pub mod dataplane;
pub mod dhcp;
pub mod elements;
mod event_log;
pub use event_log::severity as log_severity;
pub mod features;
pub mod fib;
pub mod firewall;
pub mod frame;
pub mod headers;
pub mod io;
pub mod lb;
pub mod learned;
pub mod local;
pub mod nat;
mod open_table;
pub mod pipeline;
mod rates;
mod route_table;
mod routes;
pub mod sessions;
mod show;
pub mod snapshot;
mod spread;
pub mod state_sync;
pub mod stats;
mod tcp_mss;
mod token_bucket;
pub mod tunnel;
pub mod vrrp;
pub mod wire;
pub mod wireguard;
mod worker;

pub use dataplane::{Dataplane, DataplaneOptions};
