//! One synchronised entry as the pair sends it: which table it belongs
//! to and the entry's ends, in 64 bytes of fixed layout whatever the
//! table and address family (IPv4 addresses travel IPv4-mapped).

use crate::nat::{Address, Endpoint, Translation};
use crate::sessions::{addr_bits, words, SessionKey, TcpState};
use crate::snapshot::VrfId;
use std::net::{IpAddr, Ipv6Addr};

pub const RECORD_LEN: usize = 64;

/// The tables the pair keeps alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The firewall's sessions.
    Session = 1,
    /// NAT's translations.
    Nat = 2,
    /// The load balancer's client-to-backend sessions.
    SlbSession = 3,
    /// The load balancer's full-NAT translations of clients.
    SlbSnat = 4,
}

impl Kind {
    fn of(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Session,
            2 => Kind::Nat,
            3 => Kind::SlbSession,
            4 => Kind::SlbSnat,
            _ => return None,
        })
    }
}

/// Bit of `SyncRecord::flags`: a translation opened from the outside, or
/// a session whose initiator is its endpoint `a`.
const FLAG: u8 = 1;

/// An entry of one of the synchronised tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    pub kind: Kind,
    pub protocol: u8,
    pub tcp: TcpState,
    flag: bool,
    /// Inside and outside VRF (a session's VRF twice).
    vrfs: [VrfId; 2],
    /// Inside, public and remote endpoints of a translation; a session's
    /// `a` and `b` and nothing.
    ends: [(u128, u16); 3],
}

impl SyncRecord {
    pub fn of_translation<A: Address>(kind: Kind, tr: &Translation<A>, tcp: TcpState) -> Self {
        let end = |e: Endpoint<A>| (addr_bits(e.addr.into()), e.port);
        SyncRecord {
            kind,
            protocol: tr.protocol,
            tcp,
            flag: tr.from_outside,
            vrfs: [tr.inside_vrf, tr.outside_vrf],
            ends: [end(tr.inside), end(tr.public), end(tr.remote)],
        }
    }

    /// The translation, if its addresses are of family `A`.
    pub fn translation<A: Address>(&self) -> Option<Translation<A>> {
        let end = |(bits, port): (u128, u16)| {
            let v6 = Ipv6Addr::from(bits);
            let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
            Some(Endpoint::new(A::of(ip)?, port))
        };
        Some(Translation {
            protocol: self.protocol,
            inside_vrf: self.vrfs[0],
            outside_vrf: self.vrfs[1],
            inside: end(self.ends[0])?,
            public: end(self.ends[1])?,
            remote: end(self.ends[2])?,
            from_outside: self.flag,
        })
    }

    pub fn of_session(key: &SessionKey, initiator_a: bool, tcp: TcpState) -> Self {
        let bits = |[hi, lo]: [u64; 2]| u128::from(hi) << 64 | u128::from(lo);
        SyncRecord {
            kind: Kind::Session,
            protocol: key.protocol,
            tcp,
            flag: initiator_a,
            vrfs: [key.vrf; 2],
            ends: [(bits(key.a), key.a_port), (bits(key.b), key.b_port), (0, 0)],
        }
    }

    /// The session's key and whether its initiator is `a`.
    pub fn session(&self) -> (SessionKey, bool) {
        let [(a, a_port), (b, b_port), _] = self.ends;
        let key = SessionKey {
            a: words(a),
            b: words(b),
            a_port,
            b_port,
            vrf: self.vrfs[0],
            protocol: self.protocol,
        };
        (key, self.flag)
    }

    pub fn write(&self, out: &mut [u8; RECORD_LEN]) {
        out[0] = self.kind as u8;
        out[1] = self.protocol;
        out[2] = self.tcp as u8;
        out[3] = u8::from(self.flag) * FLAG;
        out[4..6].copy_from_slice(&self.vrfs[0].to_be_bytes());
        out[6..8].copy_from_slice(&self.vrfs[1].to_be_bytes());
        for (i, (addr, port)) in self.ends.iter().enumerate() {
            let at = 8 + i * 18;
            out[at..at + 16].copy_from_slice(&addr.to_be_bytes());
            out[at + 16..at + 18].copy_from_slice(&port.to_be_bytes());
        }
        out[62..].fill(0);
    }

    /// None for an unknown table or TCP state.
    pub fn read(bytes: &[u8; RECORD_LEN]) -> Option<SyncRecord> {
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let end = |i: usize| {
            let at = 8 + i * 18;
            let mut addr = [0; 16];
            addr.copy_from_slice(&bytes[at..at + 16]);
            (u128::from_be_bytes(addr), u16_at(at + 16))
        };
        if bytes[2] > TcpState::Closed as u8 {
            return None;
        }
        Some(SyncRecord {
            kind: Kind::of(bytes[0])?,
            protocol: bytes[1],
            tcp: TcpState::from_bits(bytes[2]),
            flag: bytes[3] & FLAG != 0,
            vrfs: [u16_at(4), u16_at(6)],
            ends: [end(0), end(1), end(2)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn translations_and_sessions_come_back_as_they_went() {
        let tr = Translation::<Ipv4Addr> {
            protocol: 6,
            inside_vrf: 2,
            outside_vrf: 0,
            inside: Endpoint::new("10.0.0.5".parse().unwrap(), 40000),
            public: Endpoint::new("203.0.113.1".parse().unwrap(), 1088),
            remote: Endpoint::new("198.51.100.7".parse().unwrap(), 443),
            from_outside: false,
        };
        let record = SyncRecord::of_translation(Kind::Nat, &tr, TcpState::Established);
        let mut bytes = [0; RECORD_LEN];
        record.write(&mut bytes);
        let back = SyncRecord::read(&bytes).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.translation::<Ipv4Addr>(), Some(tr));
        assert_eq!(back.translation::<Ipv6Addr>(), None);

        let key = SessionKey {
            a: words(addr_bits("2001:db8::1".parse().unwrap())),
            b: words(addr_bits("2001:db8::2".parse().unwrap())),
            a_port: 1,
            b_port: 2,
            vrf: 3,
            protocol: 17,
        };
        let record = SyncRecord::of_session(&key, true, TcpState::SynSent);
        record.write(&mut bytes);
        assert_eq!(SyncRecord::read(&bytes).unwrap().session(), (key, true));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, RECORD_LEN)) {
            let bytes: [u8; RECORD_LEN] = bytes.try_into().unwrap();
            if let Some(record) = SyncRecord::read(&bytes) {
                let _ = record.translation::<Ipv4Addr>();
                let _ = record.translation::<Ipv6Addr>();
                let _ = record.session();
            }
        }
    }
}
