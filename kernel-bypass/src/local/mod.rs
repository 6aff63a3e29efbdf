//! The appliance's own TCP/UDP sockets: a smoltcp interface on the dataplane.
//!
//! The forwarding pipeline hands packets for the appliance's own addresses
//! to [`LocalPort::deliver`] and routes what [`LocalPort::drain_outgoing`]
//! returns, so the appliance answers on any interface (VXLAN included).
//! Tokio tasks use [`LocalStack`] to listen, connect and bind; streams
//! implement tokio's `AsyncRead`/`AsyncWrite`.
//!
//! Inside: the worker and the stack exchange bare IPv4 and IPv6 packets through two
//! bounded queues of preallocated buffers (`link`, `queue`); smoltcp reads
//! and writes them as a `Medium::Ip` device (`device`). The interface and
//! all sockets sit behind one lock (`engine`); a driver task (`stack`)
//! polls them when packets arrive, when sockets have output, and when a
//! smoltcp timer is due. Socket futures register their wakers with the
//! smoltcp sockets (`tcp`, `udp`, `icmp`).
//!
//! ```no_run
//! # async fn example(runtime: tokio::runtime::Handle) -> std::io::Result<()> {
//! use kernel_bypass::local::{local_stack, serve_echo};
//! let (stack, port) = local_stack(runtime.clone())?;
//! stack.set_addresses(&["192.0.2.1/24".parse().unwrap()]);
//! // Worker thread: port.deliver(packet) for own addresses; between batches
//! // port.drain_outgoing_max(room, &mut |packet, vrf| route(packet, vrf)); add
//! // port.wake_fd() to the idle poll set.
//! runtime.spawn(serve_echo(stack.clone(), 7));
//! let listener = stack.tcp_listen(22).await?;
//! let (stream, peer) = listener.accept().await?;
//! # drop((port, stream, peer));
//! # Ok(())
//! # }
//! ```

mod addr;
mod device;
mod engine;
mod eventfd;
mod flows;
mod icmp;
mod link;
mod port;
mod queue;
mod scope;
mod services;
mod show;
mod stack;
mod tcp;
mod udp;
mod wire;

pub use engine::{Liveness, SourceSelector, EPHEMERAL_PORTS};
pub use icmp::{IcmpBinding, IcmpSocket};
pub use link::IP_MTU;
pub use port::LocalPort;
pub use scope::{OwnInterface, OwnTables, Scope, Source};
pub use services::{answer_http, serve_echo, serve_status, HttpResponse};
pub use stack::{local_stack, LocalStack};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use wire::BackToBack;
