//! The unified userspace network stack of Gatehouse.

pub mod counters;
pub mod dataplane;
mod fanout;
pub mod fib;
pub mod frame;
pub mod io;
pub mod learned;
pub mod local;
pub mod pipeline;
mod show;
pub mod snapshot;
pub mod wire;
mod worker;

pub use dataplane::{Dataplane, DataplaneOptions};
