//! The unified userspace network stack of Gatehouse.

pub mod frame;
pub mod io;
pub mod local;
