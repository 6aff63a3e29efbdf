//! The WireGuard element: `wgN` interfaces are point-to-point tunnels
//! (`crate::tunnel`) whose encapsulation is boringtun's, one `Tunn` per
//! peer (`tunnel`). A commit builds a new tunnel per interface and keeps
//! the state of every peer whose keys did not change, so its sessions and
//! its learned endpoint survive commits.
//!
//! Commands: `show wireguard [IFNAME]` (what `wg show` gives, and the
//! rejected packets by reason), `show wireguard peer KEY client-config`
//! (a wg-quick file for a remote-access peer, without its private key).

mod counters;
mod tunnel;

use crate::elements::{DataplaneElement, ElementCommand};
use crate::snapshot::{Snapshot, GLOBAL_TABLE};
use crate::tunnel::TunnelRef;
use counters::Reject;
use grammar::config::{Config, InterfaceKind, WgKey, WgPeer};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
pub use tunnel::{Peer, PeerState, TunnelSettings, WgTunnel};

/// boringtun keeps the upper 24 bits of a session index for the peer.
const MAX_PEER_INDEX: u32 = (1 << 24) - 1;

#[derive(Default)]
pub struct WireGuard {
    /// The tunnels of the running snapshot, by interface name.
    tunnels: Mutex<BTreeMap<String, Arc<WgTunnel>>>,
    /// The configuration they were compiled from (for client configs).
    config: Mutex<Config>,
    next_index: AtomicU32,
}

impl WireGuard {
    pub fn new() -> WireGuard {
        WireGuard::default()
    }

    fn tunnels(&self) -> BTreeMap<String, Arc<WgTunnel>> {
        self.tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A peer index no other peer of this dataplane has.
    fn new_index(&self) -> u32 {
        (self.next_index.fetch_add(1, Ordering::Relaxed) % MAX_PEER_INDEX) + 1
    }

    /// `show wireguard [IFNAME]`.
    fn show(&self, only: Option<&str>) -> String {
        let mut out = String::new();
        for (name, t) in self.tunnels() {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let _ = writeln!(out, "interface: {name}");
            let _ = writeln!(out, "  public key: {}", WgKey(t.public.to_bytes()));
            let _ = writeln!(out, "  private key: (hidden)");
            let _ = writeln!(out, "  listening port: {}", t.port);
            let _ = writeln!(
                out,
                "  handshakes: {}",
                t.counters.handshakes.load(Ordering::Relaxed)
            );
            let rejects: Vec<_> = (Reject::ALL.iter())
                .filter(|r| t.counters.get(**r) > 0)
                .map(|r| format!("{} {}", r.name(), t.counters.get(*r)))
                .collect();
            let rejects = match rejects.is_empty() {
                true => "none".to_string(),
                false => rejects.join(", "),
            };
            let _ = writeln!(out, "  rejected: {rejects}");
            for (peer, settings) in &t.peers {
                let state = peer.lock();
                let (since, tx, rx, _, _) = state.tunn.stats();
                let _ = writeln!(out, "\npeer: {}", WgKey(peer.key));
                if let Some(d) = &settings.description {
                    let _ = writeln!(out, "  description: {d}");
                }
                if let Some(e) = state.endpoint {
                    let _ = writeln!(out, "  endpoint: {e}");
                }
                let allowed: Vec<_> = settings.allowed_ips.iter().map(|n| n.to_string()).collect();
                let allowed = match allowed.is_empty() {
                    true => "(none)".to_string(),
                    false => allowed.join(", "),
                };
                let _ = writeln!(out, "  allowed ips: {allowed}");
                match since {
                    Some(d) => {
                        let _ = writeln!(out, "  latest handshake: {} seconds ago", d.as_secs());
                    }
                    None => {
                        let _ = writeln!(out, "  latest handshake: (none)");
                    }
                }
                let _ = writeln!(out, "  transfer: {rx} B received, {tx} B sent");
                if let Some(k) = settings.persistent_keepalive {
                    let _ = writeln!(out, "  persistent keepalive: every {k} seconds");
                }
            }
            out.push('\n');
        }
        out
    }

    /// `show wireguard peer KEY client-config`: a wg-quick file for the
    /// peer, to which it adds its own private key.
    fn client_config(&self, key: &str) -> Result<String, String> {
        let key = WgKey::parse(key)?;
        let config = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let config = &config;
        for (name, t) in self.tunnels() {
            let Some((_, settings)) = t.peers.iter().find(|(p, _)| p.key == key.0) else {
                continue;
            };
            let iface = config.interfaces.get(&name);
            let mut out = String::from("[Interface]\n");
            let _ = writeln!(
                out,
                "PrivateKey = (the private key of {key}, which only the client has)"
            );
            let addresses: Vec<_> = settings.allowed_ips.iter().map(|n| n.to_string()).collect();
            if !addresses.is_empty() {
                let _ = writeln!(out, "Address = {}", addresses.join(", "));
            }
            let _ = writeln!(out, "\n[Peer]");
            let _ = writeln!(out, "PublicKey = {}", WgKey(t.public.to_bytes()));
            if let Some(psk) = &settings.preshared_key {
                let _ = writeln!(out, "PresharedKey = {psk}");
            }
            // What the client routes into the tunnel: the tunnel's subnets.
            let subnets: Vec<_> = iface
                .map(|i| {
                    let v4 = i.ipv4_addresses.iter().map(|a| a.trunc().to_string());
                    let v6 = i.ipv6_addresses.iter().map(|a| a.trunc().to_string());
                    v4.chain(v6).collect()
                })
                .unwrap_or_default();
            let _ = writeln!(out, "AllowedIPs = {}", subnets.join(", "));
            if let Some(endpoint) = self.public_endpoint(config, &name, t.port) {
                let _ = writeln!(out, "Endpoint = {endpoint}");
            }
            if let Some(k) = settings.persistent_keepalive {
                let _ = writeln!(out, "PersistentKeepalive = {k}");
            }
            return Ok(out);
        }
        Err(format!("% No WireGuard peer {key}"))
    }

    /// Where clients reach the tunnel: the source interface's address, else
    /// the first address of an interface that is not a tunnel.
    fn public_endpoint(&self, config: &Config, name: &str, port: u16) -> Option<String> {
        let source = config
            .wireguard
            .interfaces
            .get(name)?
            .source_interface
            .as_deref();
        let carries = |(n, _): &(&String, _)| match source {
            Some(s) => n.as_str() == s,
            None => InterfaceKind::of(n) == InterfaceKind::Physical,
        };
        let (_, iface) = config
            .interfaces
            .iter()
            .find(|i| carries(i) && i.1.primary_ipv4().is_some())?;
        Some(format!("{}:{port}", iface.primary_ipv4()?.addr()))
    }
}

impl DataplaneElement for WireGuard {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let previous = self.tunnels();
        let mut next = BTreeMap::new();
        let wg_ifaces: Vec<_> = (snap.interfaces.iter().flatten())
            .filter(|i| InterfaceKind::of(&i.name) == InterfaceKind::WireGuard)
            .map(|i| (i.id, i.name.clone()))
            .collect();
        for (id, name) in wg_ifaces {
            let settings = config.wireguard.interfaces.get(&name);
            let Some((conf, private_key)) = settings.and_then(|c| Some((c, c.private_key?))) else {
                if let Some(Some(i)) = snap.interfaces.get_mut(usize::from(id)) {
                    i.down_reason.get_or_insert("no private key");
                }
                continue;
            };
            let source = conf
                .source_interface
                .as_ref()
                .and_then(|s| snap.interfaces.iter().flatten().find(|i| &i.name == s));
            let private = boringtun::x25519::StaticSecret::from(private_key.0);
            // Peers and the handshake limiter stay while the key does.
            let old = previous
                .get(&name)
                .filter(|o| o.private.to_bytes() == private_key.0);
            let limiter = old.map_or_else(
                || tunnel::rate_limiter(&boringtun::x25519::PublicKey::from(&private)),
                |o| o.rate_limiter.clone(),
            );
            let peers = (conf.peers.iter())
                .map(|(key, p)| {
                    let same = |(q, s): &&(Arc<Peer>, WgPeer)| {
                        q.key == key.0
                            && s.preshared_key == p.preshared_key
                            && s.persistent_keepalive == p.persistent_keepalive
                    };
                    let peer = match old.and_then(|o| o.peers.iter().find(same)) {
                        Some((q, s)) => {
                            if s.endpoint != p.endpoint && p.endpoint.is_some() {
                                q.lock().endpoint = p.endpoint;
                            }
                            q.clone()
                        }
                        None => Arc::new(Peer::new(key.0, self.new_index(), p, &private, &limiter)),
                    };
                    (peer, p.clone())
                })
                .collect();
            let tunnel = Arc::new(WgTunnel::new(
                TunnelSettings {
                    name: &name,
                    iface: id,
                    private_key: private_key.0,
                    port: conf.port(),
                    underlay: source.map_or(GLOBAL_TABLE, |s| s.vrf),
                    source: source.map(|s| s.id),
                },
                limiter,
                peers,
            ));
            snap.claim_tunnel(id, TunnelRef(tunnel.clone()), conf.port());
            next.insert(name, tunnel);
        }
        *self.tunnels.lock().unwrap_or_else(|p| p.into_inner()) = next;
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config.clone();
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        let (show, client) = (self.clone(), self);
        vec![
            ElementCommand::Show {
                syntax: "wireguard [IFNAME$interface]",
                help: &["WireGuard tunnels and peers", "Only this interface"],
                run: Box::new(move |args| show.show(args.text("interface"))),
            },
            ElementCommand::Show {
                syntax: "wireguard peer WORD$key client-config",
                help: &[
                    "WireGuard tunnels and peers",
                    "One peer",
                    "The peer's public key",
                    "A wg-quick file for the peer (its private key left out)",
                ],
                run: Box::new(move |args| {
                    let key = args.text("key").unwrap_or_default();
                    client
                        .client_config(key)
                        .unwrap_or_else(|e| format!("{e}\n"))
                }),
            },
        ]
    }
}
