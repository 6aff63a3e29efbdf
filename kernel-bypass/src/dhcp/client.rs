//! One interface's DHCPv4 client (RFC 2131): the state machine and its
//! messages. Messages are read and written through smoltcp's checked DHCP
//! views (`smoltcp::wire::DhcpPacket`/`DhcpRepr`), so no reply, however
//! malformed, can make it index out of bounds.
//!
//! Simplified from RFC 2131 where the appliance loses nothing by it: every
//! message is broadcast (the broadcast flag set, so servers broadcast their
//! answers too), renewal included (RENEWING behaves as REBINDING, which
//! every server answers), and an offer is taken as it comes (no ARP probe
//! of the offered address).

use crate::wire::{
    checksum, put_be16, Mac, DEFAULT_TTL, IPV4_CHECKSUM, IPV4_HEADER, PROTO_UDP, UDP_HEADER,
};
use ipnet::Ipv4Net;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};
use std::net::Ipv4Addr;

/// First retransmission delay; doubled at each retry up to `RETRY_MAX_MS`
/// (RFC 2131 4.1 starts at 4 s; a quicker first retry helps a box whose
/// link came up a moment after its first DISCOVER).
const RETRY_FIRST_MS: u64 = 2_000;
const RETRY_MAX_MS: u64 = 32_000;
/// REQUESTs sent for one offer before starting over with a DISCOVER.
const REQUEST_TRIES: u32 = 4;
/// While renewing, REQUESTs go out this often until the lease ends.
const RENEW_RETRY_MS: u64 = 10_000;
/// The options asked for: subnet mask, router, DNS servers.
const PARAMETERS: &[u8] = &[1, 3, 6];
/// Lease time assumed when a server gives none (a day).
const DEFAULT_LEASE_SECS: u32 = 86_400;

/// What a server granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Net,
    pub server: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: u32,
    pub renew_secs: u32,
    pub rebind_secs: u32,
    /// When the ACK came, on the dataplane's clock.
    pub obtained_ms: u64,
}

impl Lease {
    pub fn renew_at_ms(&self) -> u64 {
        self.obtained_ms + u64::from(self.renew_secs) * 1000
    }

    pub fn expires_at_ms(&self) -> u64 {
        self.obtained_ms + u64::from(self.lease_secs) * 1000
    }
}

/// Where the client is (IOS's `show dhcp lease` names them so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Selecting,
    /// An offer is being requested: (address, server).
    Requesting(Ipv4Addr, Ipv4Addr),
    Bound,
    Renewing,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Selecting => "Selecting",
            State::Requesting(..) => "Requesting",
            State::Bound => "Bound",
            State::Renewing => "Renewing",
        }
    }
}

pub struct Client {
    pub mac: Mac,
    pub state: State,
    pub lease: Option<Lease>,
    pub transaction: u32,
    /// Transmissions of the current message so far.
    pub retries: u32,
    /// When the next message goes out.
    pub next_send_ms: u64,
    /// Replies taken (offers, ACKs and NAKs acted on) and ignored (another
    /// transaction, malformed, unusable, or not expected in the state).
    pub replies: u64,
    pub ignored: u64,
}

/// What `tick` or `receive` changed for the rest of the dataplane.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The leased address or router changed (or the lease ended): the
    /// interface's address and default route must follow.
    pub lease_changed: bool,
}

impl Client {
    pub fn new(mac: Mac, now_ms: u64, seed: u32) -> Client {
        Client {
            mac,
            state: State::Selecting,
            lease: None,
            transaction: seed,
            retries: 0,
            next_send_ms: now_ms,
            replies: 0,
            ignored: 0,
        }
    }

    fn backoff_ms(&self) -> u64 {
        (RETRY_FIRST_MS << self.retries.min(8)).min(RETRY_MAX_MS)
    }

    fn restart(&mut self, now_ms: u64) -> Outcome {
        self.state = State::Selecting;
        self.transaction = self
            .transaction
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12_345);
        self.retries = 0;
        self.next_send_ms = now_ms;
        Outcome {
            lease_changed: self.lease.take().is_some(),
        }
    }

    /// Runs the timers; returns the IPv4 packet to broadcast, if one is due.
    pub fn tick(&mut self, now_ms: u64) -> (Outcome, Option<Vec<u8>>) {
        let mut outcome = Outcome::default();
        if let Some(lease) = &self.lease {
            if now_ms >= lease.expires_at_ms() {
                outcome = self.restart(now_ms);
            } else if self.state == State::Bound && now_ms >= lease.renew_at_ms() {
                self.state = State::Renewing;
                self.retries = 0;
                self.next_send_ms = now_ms;
            }
        }
        if self.state == State::Bound || now_ms < self.next_send_ms {
            return (outcome, None);
        }
        if let State::Requesting(..) = self.state {
            if self.retries >= REQUEST_TRIES {
                self.restart(now_ms);
            }
        }
        let delay = match self.state {
            State::Renewing => RENEW_RETRY_MS,
            _ => self.backoff_ms(),
        };
        self.retries += 1;
        self.next_send_ms = now_ms + delay;
        (outcome, Some(self.message()))
    }

    /// The DISCOVER or REQUEST the state calls for, as an IPv4 packet.
    fn message(&self) -> Vec<u8> {
        let (message_type, requested, server, client_ip) = match (&self.state, &self.lease) {
            (State::Requesting(address, server), _) => (
                DhcpMessageType::Request,
                Some(*address),
                Some(*server),
                None,
            ),
            (State::Renewing, Some(lease)) => (
                DhcpMessageType::Request,
                None,
                None,
                Some(lease.address.addr()),
            ),
            _ => (DhcpMessageType::Discover, None, None, None),
        };
        let repr = DhcpRepr {
            message_type,
            transaction_id: self.transaction,
            secs: 0,
            client_hardware_address: EthernetAddress(self.mac),
            client_ip: client_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: requested,
            client_identifier: Some(EthernetAddress(self.mac)),
            server_identifier: server,
            parameter_request_list: Some(PARAMETERS),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut dhcp = vec![0u8; repr.buffer_len()];
        // The buffer has the length the representation asks for.
        let _ = repr.emit(&mut DhcpPacket::new_unchecked(&mut dhcp[..]));
        udp_broadcast(client_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), &dhcp)
    }

    /// Takes a reply (the UDP payload from a server's port 67).
    pub fn receive(&mut self, now_ms: u64, payload: &[u8]) -> Outcome {
        let Some(reply) = Reply::parse(payload) else {
            self.ignored += 1;
            return Outcome::default();
        };
        if reply.transaction != self.transaction || reply.mac != self.mac {
            self.ignored += 1;
            return Outcome::default();
        }
        match (&self.state, reply.kind) {
            (State::Selecting, DhcpMessageType::Offer) => {
                self.replies += 1;
                self.state = State::Requesting(reply.address, reply.server);
                self.retries = 0;
                self.next_send_ms = now_ms;
                Outcome::default()
            }
            (State::Requesting(..) | State::Renewing, DhcpMessageType::Ack) => {
                let Some(lease) = reply.lease(now_ms) else {
                    self.ignored += 1;
                    return self.restart(now_ms);
                };
                self.replies += 1;
                let same = |old: &Lease| old.address == lease.address && old.router == lease.router;
                let changed = !self.lease.as_ref().is_some_and(same);
                self.lease = Some(lease);
                self.state = State::Bound;
                self.retries = 0;
                Outcome {
                    lease_changed: changed,
                }
            }
            (State::Requesting(..) | State::Renewing, DhcpMessageType::Nak) => {
                self.replies += 1;
                self.restart(now_ms)
            }
            _ => {
                self.ignored += 1;
                Outcome::default()
            }
        }
    }
}

/// The parts of a server's reply the client uses.
struct Reply {
    kind: DhcpMessageType,
    transaction: u32,
    mac: Mac,
    address: Ipv4Addr,
    server: Ipv4Addr,
    mask: Option<Ipv4Addr>,
    router: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
    times: (Option<u32>, Option<u32>, Option<u32>),
}

impl Reply {
    fn parse(payload: &[u8]) -> Option<Reply> {
        let packet = DhcpPacket::new_checked(payload).ok()?;
        let repr = DhcpRepr::parse(&packet).ok()?;
        Some(Reply {
            kind: repr.message_type,
            transaction: repr.transaction_id,
            mac: repr.client_hardware_address.0,
            address: repr.your_ip,
            server: repr.server_identifier?,
            mask: repr.subnet_mask,
            router: repr.router,
            dns: repr.dns_servers.iter().flatten().copied().collect(),
            times: (
                repr.lease_duration,
                repr.renew_duration,
                repr.rebind_duration,
            ),
        })
    }

    /// The lease an ACK grants; None when it grants no usable address.
    fn lease(&self, now_ms: u64) -> Option<Lease> {
        let prefix = match self.mask {
            Some(mask) => ipnet::ipv4_mask_to_prefix(mask).ok()?,
            None => 24,
        };
        let address = Ipv4Net::new(self.address, prefix).ok()?;
        let host = prefix >= 31
            || (address.addr() != address.network() && address.addr() != address.broadcast());
        let usable = !(self.address.is_unspecified()
            || self.address.is_broadcast()
            || self.address.is_multicast()
            || self.address.is_loopback());
        if !(host && usable) {
            return None;
        }
        let lease_secs = self.times.0.unwrap_or(DEFAULT_LEASE_SECS).max(1);
        let renew_secs = self.times.1.unwrap_or(lease_secs / 2).min(lease_secs);
        let rebind_secs = self.times.2.unwrap_or(lease_secs / 8 * 7).min(lease_secs);
        Some(Lease {
            address,
            server: self.server,
            router: self
                .router
                .filter(|r| address.contains(r) && *r != self.address),
            dns: self.dns.clone(),
            lease_secs,
            renew_secs,
            rebind_secs,
            obtained_ms: now_ms,
        })
    }
}

/// An IPv4/UDP packet from `src`:68 to 255.255.255.255:67 carrying `dhcp`.
fn udp_broadcast(src: Ipv4Addr, dhcp: &[u8]) -> Vec<u8> {
    let total = IPV4_HEADER + UDP_HEADER + dhcp.len();
    let mut p = vec![0x45, 0x10, 0, 0, 0, 0, 0, 0, DEFAULT_TTL, PROTO_UDP, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&Ipv4Addr::BROADCAST.octets());
    put_be16(&mut p, 2, total as u16);
    let sum = checksum(&p[..IPV4_HEADER]);
    put_be16(&mut p, IPV4_CHECKSUM, sum);
    p.extend_from_slice(&DHCP_CLIENT_PORT.to_be_bytes());
    p.extend_from_slice(&DHCP_SERVER_PORT.to_be_bytes());
    p.extend_from_slice(&((UDP_HEADER + dhcp.len()) as u16).to_be_bytes());
    // No UDP checksum (zero is allowed over IPv4).
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(dhcp);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
    const OFFERED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

    /// A server's reply of `kind` to the client's current transaction.
    fn reply(client: &Client, kind: DhcpMessageType, lease_secs: u32) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: client.transaction,
            secs: 0,
            client_hardware_address: EthernetAddress(client.mac),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: OFFERED,
            server_ip: SERVER,
            router: Some(SERVER),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(SERVER),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: Some(lease_secs),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut bytes[..]))
            .expect("emit");
        bytes
    }

    /// The DHCP message type of a packet the client sent.
    fn sent_kind(packet: &[u8]) -> DhcpMessageType {
        let dhcp = &packet[IPV4_HEADER + UDP_HEADER..];
        let packet = DhcpPacket::new_checked(dhcp).expect("dhcp");
        DhcpRepr::parse(&packet).expect("repr").message_type
    }

    fn bound(now_ms: u64) -> Client {
        let mut client = Client::new(MAC, 0, 7);
        let (_, discover) = client.tick(now_ms);
        assert_eq!(
            sent_kind(&discover.expect("discover")),
            DhcpMessageType::Discover
        );
        client.receive(now_ms, &reply(&client, DhcpMessageType::Offer, 100));
        let (_, request) = client.tick(now_ms);
        assert_eq!(
            sent_kind(&request.expect("request")),
            DhcpMessageType::Request
        );
        let outcome = client.receive(now_ms, &reply(&client, DhcpMessageType::Ack, 100));
        assert!(outcome.lease_changed);
        client
    }

    #[test]
    fn discover_offer_request_ack_binds_the_offered_address_with_its_router() {
        let client = bound(0);
        assert_eq!(client.state, State::Bound);
        let lease = client.lease.expect("lease");
        assert_eq!(lease.address, "10.0.2.15/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(lease.router, Some(SERVER));
        assert_eq!((lease.renew_secs, lease.rebind_secs), (50, 84));
    }

    #[test]
    fn the_client_renews_at_t1_keeps_the_lease_on_ack_and_drops_it_at_expiry() {
        let mut client = bound(0);
        assert_eq!(client.tick(49_999).1, None, "nothing to send before T1");
        let (_, renew) = client.tick(50_000);
        assert_eq!(
            sent_kind(&renew.expect("renewal")),
            DhcpMessageType::Request
        );
        assert_eq!(client.state, State::Renewing);
        let outcome = client.receive(50_000, &reply(&client, DhcpMessageType::Ack, 100));
        assert!(!outcome.lease_changed, "same address and router");
        assert_eq!((client.replies, client.ignored), (3, 0), "offer, ACK, ACK");
        assert_eq!(client.state, State::Bound);
        // No answer to the next renewal: the lease ends at its expiry.
        client.tick(100_000);
        let (outcome, discover) = client.tick(150_000);
        assert!(outcome.lease_changed);
        assert_eq!(client.lease, None);
        assert_eq!(
            sent_kind(&discover.expect("discover")),
            DhcpMessageType::Discover
        );
    }

    #[test]
    fn a_nak_or_a_reply_to_another_transaction_is_handled() {
        let mut client = bound(0);
        client.tick(50_000);
        let mut other = reply(&client, DhcpMessageType::Ack, 100);
        other[4] ^= 1; // the transaction id
        assert_eq!(client.receive(50_000, &other), Outcome::default());
        assert_eq!(client.ignored, 1);
        let outcome = client.receive(50_000, &reply(&client, DhcpMessageType::Nak, 0));
        assert!(outcome.lease_changed);
        assert_eq!(client.state, State::Selecting);
    }

    proptest! {
        #[test]
        fn no_reply_makes_the_client_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
        ) {
            let mut client = bound(0);
            client.tick(60_000);
            let _ = client.receive(60_000, &bytes);
            // A valid reply with random bytes changed, options included.
            let mut ack = reply(&client, DhcpMessageType::Ack, 100);
            for (at, value) in flips {
                if let Some(b) = ack.get_mut(at) {
                    *b = value;
                }
            }
            let _ = client.receive(60_000, &ack);
            let _ = client.tick(1_000_000);
        }
    }
}
