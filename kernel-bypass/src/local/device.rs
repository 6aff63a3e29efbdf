//! The smoltcp `Device` of the local stack: bare IPv4 and IPv6 packets read from the
//! link's inbound queue and written to its outbound queue, each with the
//! routing table its flow belongs to (`flows`).

use super::flows::Flows;
use super::link::{Link, IP_MTU};
use super::queue::PacketBuf;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::sync::Arc;

/// Inbound packets handled per interface poll, so one poll stays short and
/// sockets' output gets its turn under load.
const RX_BUDGET: usize = 64;

pub struct LinkDevice {
    link: Arc<Link>,
    rx_budget: usize,
    /// The VRF and DF handling of the tools' flows.
    pub flows: Flows,
    /// Where a packet is written when `outbound` unexpectedly has no room; it is dropped.
    overflow: Box<[u8]>,
}

impl LinkDevice {
    pub fn new(link: Arc<Link>) -> LinkDevice {
        LinkDevice {
            link,
            rx_budget: RX_BUDGET,
            flows: Flows::default(),
            overflow: vec![0; IP_MTU].into_boxed_slice(),
        }
    }

    /// Starts a new poll round. Returns whether the previous round stopped
    /// with inbound packets left over (so another round is due at once).
    pub fn start_round(&mut self) -> bool {
        let exhausted = self.rx_budget == 0;
        self.rx_budget = RX_BUDGET;
        exhausted && !self.link.inbound.is_empty()
    }

    /// Whether output waits for the worker to drain the outbound queue (it
    /// wakes the driver when it does).
    pub fn tx_blocked(&self) -> bool {
        self.link.is_tx_blocked()
    }

    fn has_tx_room(&self) -> bool {
        let room = self.link.outbound.has_room();
        if !room {
            self.link.mark_tx_blocked();
        }
        room
    }
}

impl phy::Device for LinkDevice {
    type RxToken<'a> = LinkRx<'a>;
    type TxToken<'a> = LinkTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(LinkRx<'_>, LinkTx<'_>)> {
        // A received packet may need an immediate answer, so take one only
        // when that answer has somewhere to go.
        if self.rx_budget == 0 || !self.has_tx_room() {
            return None;
        }
        let packet = loop {
            let packet = self.link.inbound.pop()?;
            if self.flows.incoming(packet.data(), packet.vrf()) {
                break packet;
            }
            self.link.inbound.recycle(packet);
        };
        self.rx_budget -= 1;
        Some((
            LinkRx {
                link: &self.link,
                packet: Some(packet),
            },
            LinkTx {
                link: &self.link,
                flows: &self.flows,
                overflow: &mut self.overflow,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<LinkTx<'_>> {
        if !self.has_tx_room() {
            return None;
        }
        Some(LinkTx {
            link: &self.link,
            flows: &self.flows,
            overflow: &mut self.overflow,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = IP_MTU;
        caps
    }
}

pub struct LinkRx<'a> {
    link: &'a Link,
    /// Always `Some` until consumed or dropped; returned to the free list either way.
    packet: Option<PacketBuf>,
}

impl phy::RxToken for LinkRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let data = self.packet.as_ref().map_or(&[][..], PacketBuf::data);
        f(data)
    }
}

impl Drop for LinkRx<'_> {
    fn drop(&mut self) {
        if let Some(packet) = self.packet.take() {
            self.link.inbound.recycle(packet);
        }
    }
}

pub struct LinkTx<'a> {
    link: &'a Link,
    flows: &'a Flows,
    overflow: &'a mut [u8],
}

impl phy::TxToken for LinkTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let table = |packet: &mut [u8]| self.flows.outgoing(packet);
        match self.link.outbound.push_with(len, f, table) {
            Ok((result, was_empty)) => {
                if was_empty {
                    self.link.outgoing_ready.signal();
                }
                result
            }
            Err(f) => {
                let len = len.min(self.overflow.len());
                f(&mut self.overflow[..len])
            }
        }
    }
}
