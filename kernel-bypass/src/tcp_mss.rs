//! `ip tcp adjust-mss N`: TCP SYNs (and SYN-ACKs) forwarded in or out of
//! an interface with a clamp announce at most N as their maximum segment
//! size; the TCP checksum is updated for the one word that changes. A
//! node at IPv4 post-routing, registered only when an interface has a
//! clamp.

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Action, Family, FeatureNode, Packet, Point};
use crate::headers::tcp_flags;
use crate::nat::Ipv4Flow;
use crate::snapshot::{IfaceId, Snapshot};
use crate::wire::{be16, checksum_adjust, put_be16, PROTO_TCP};
use grammar::config::Config;
use std::sync::Arc;

/// After the firewall (100) and NAT (200): a SYN that leaves is clamped.
const ORDER: u16 = 300;
const TCP_CHECKSUM: usize = 16;
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_MSS: u8 = 2;

pub struct TcpMssClamp;

struct ClampNode {
    /// By interface id.
    clamps: Vec<Option<u16>>,
}

impl ClampNode {
    fn clamp(&self, iface: Option<IfaceId>) -> Option<u16> {
        *self.clamps.get(usize::from(iface?))?
    }
}

/// Lowers the MSS option of the TCP segment `tcp` (header first) to
/// `clamp`; false when it has none or a smaller one.
pub fn clamp_mss(tcp: &mut [u8], clamp: u16) -> bool {
    let Some(&offset) = tcp.get(12) else {
        return false;
    };
    let header_len = usize::from(offset >> 4) * 4;
    if header_len < 20 || tcp.len() < header_len {
        return false;
    }
    let mut at = 20;
    while at < header_len {
        match tcp[at] {
            OPTION_END => return false,
            OPTION_NOP => at += 1,
            kind => {
                let Some(&len) = tcp.get(at + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || at + len > header_len {
                    return false;
                }
                if kind == OPTION_MSS && len == 4 {
                    let mss = be16(tcp, at + 2);
                    if mss <= clamp {
                        return false;
                    }
                    put_be16(tcp, at + 2, clamp);
                    let sum = checksum_adjust(be16(tcp, TCP_CHECKSUM), mss, clamp);
                    put_be16(tcp, TCP_CHECKSUM, sum);
                    return true;
                }
                at += len;
            }
        }
    }
    false
}

impl FeatureNode for ClampNode {
    fn name(&self) -> &'static str {
        "tcp-adjust-mss"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let clamp = match (self.clamp(packet.ingress), self.clamp(packet.egress)) {
            (Some(a), Some(b)) => a.min(b),
            (Some(c), None) | (None, Some(c)) => c,
            (None, None) => return Action::Continue,
        };
        let Some(flow) = Ipv4Flow::parse(packet.data, false) else {
            return Action::Continue;
        };
        if flow.protocol == PROTO_TCP && flow.has_ports && flow.tcp_flags & tcp_flags::SYN != 0 {
            clamp_mss(&mut packet.data[flow.header_len..flow.len], clamp);
        }
        Action::Continue
    }
}

impl DataplaneElement for TcpMssClamp {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let mut clamps = Vec::new();
        for iface in snap.interfaces.iter().flatten() {
            if let Some(mss) = config.tcp_mss.interfaces.get(&iface.name) {
                let id = usize::from(iface.id);
                if clamps.len() <= id {
                    clamps.resize(id + 1, None);
                }
                clamps[id] = Some(*mss);
            }
        }
        if !clamps.is_empty() {
            let node = Arc::new(ClampNode { clamps });
            snap.features
                .register(Family::Ipv4, Point::PostRouting, ORDER, node);
        }
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::clamp_mss;
    use proptest::prelude::*;

    /// A SYN's TCP header with options NOP, NOP, MSS `mss`, and a
    /// checksum field of 0x1234.
    fn syn(mss: u16) -> Vec<u8> {
        let mut t = vec![0u8; 28];
        t[12] = 7 << 4;
        t[13] = 0x02;
        t[16..18].copy_from_slice(&0x1234u16.to_be_bytes());
        t[20..28].copy_from_slice(&[1, 1, 2, 4, (mss >> 8) as u8, mss as u8, 0, 0]);
        t
    }

    #[test]
    fn a_larger_mss_is_lowered_and_the_checksum_follows() {
        let mut t = syn(1460);
        assert!(clamp_mss(&mut t, 1360));
        assert_eq!(u16::from_be_bytes([t[24], t[25]]), 1360);
        // One's complement: the sum moves by the word's difference.
        let expected = crate::wire::checksum_adjust(0x1234, 1460, 1360);
        assert_eq!(u16::from_be_bytes([t[16], t[17]]), expected);
        let mut small = syn(1200);
        assert!(!clamp_mss(&mut small, 1360), "a smaller MSS stays");
        assert_eq!(small, syn(1200));
    }

    proptest! {
        #[test]
        fn no_header_makes_it_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), clamp in any::<u16>()) {
            let mut b = bytes;
            let _ = clamp_mss(&mut b, clamp);
        }
    }
}
