//! The appliance's own TCP/UDP sockets: a smoltcp interface on the dataplane.
//!
//! The forwarding pipeline hands packets for the appliance's own addresses
//! to [`LocalPort::deliver`] and routes what [`LocalPort::drain_outgoing`]
//! returns, so the appliance answers on any interface. Tokio tasks use
//! [`LocalStack`] to listen, connect and bind; streams implement tokio's
//! `AsyncRead`/`AsyncWrite`.

mod addr;
mod device;
mod engine;
mod eventfd;
mod link;
mod port;
mod queue;
mod services;
mod show;
mod stack;
mod tcp;
mod udp;
mod wire;

pub use engine::Liveness;
pub use link::IP_MTU;
pub use port::LocalPort;
pub use services::{serve_echo, serve_status};
pub use stack::{local_stack, LocalStack};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use wire::BackToBack;
