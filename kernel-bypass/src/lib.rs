//! The unified userspace network stack of Gatehouse.

pub mod counters;
pub mod fib;
pub mod frame;
pub mod io;
pub mod learned;
pub mod local;
pub mod pipeline;
pub mod snapshot;
pub mod wire;
