//! The `show` view of the local stack's sockets, one line per connection
//! and one per listened port (its pool of listening sockets folded).

use super::addr::socket_addr;
use super::engine::Engine;
use smoltcp::socket::{tcp, Socket};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use std::collections::BTreeMap;
use std::fmt::Write;

const ANY: &str = "*";

fn listen_text(endpoint: IpListenEndpoint) -> String {
    match endpoint.addr {
        Some(addr) => endpoint_text(Some(IpEndpoint::new(addr, endpoint.port))),
        None => format!("{ANY}:{}", endpoint.port),
    }
}

/// As std writes socket addresses: IPv6 ones in brackets.
fn endpoint_text(endpoint: Option<IpEndpoint>) -> String {
    endpoint.map_or_else(|| ANY.to_string(), |ep| socket_addr(ep).to_string())
}

/// Renders the socket table of `engine`.
pub(super) fn sockets(engine: &Engine) -> String {
    let mut listening: BTreeMap<u16, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    for (_, socket) in engine.sockets.iter() {
        match socket {
            Socket::Tcp(tcp) if tcp.state() == tcp::State::Listen => {
                *listening.entry(tcp.listen_endpoint().port).or_default() += 1;
            }
            Socket::Tcp(tcp) => rows.push((
                "tcp",
                endpoint_text(tcp.local_endpoint()),
                endpoint_text(tcp.remote_endpoint()),
                tcp.state().to_string(),
            )),
            Socket::Udp(udp) => rows.push((
                "udp",
                listen_text(udp.endpoint()),
                ANY.to_string(),
                String::new(),
            )),
            // A ping or traceroute running.
            Socket::Icmp(_) => rows.push(("icmp", ANY.to_string(), ANY.to_string(), String::new())),
        }
    }
    for (port, waiting) in listening {
        let local = listen_text(IpListenEndpoint { addr: None, port });
        let state = format!("LISTEN ({waiting} free)");
        rows.push(("tcp", local, ANY.to_string(), state));
    }
    rows.sort();
    let mut out = format!("{:<6}{:<24}{:<24}State\n", "Proto", "Local", "Remote");
    for (protocol, local, remote, state) in rows {
        let _ = writeln!(out, "{protocol:<6}{local:<24}{remote:<24}{state}");
    }
    out
}
