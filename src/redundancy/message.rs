//! The pair's sync messages, one per UDP datagram:
//!
//! ```text
//! "GHHA" version(1) type(1) count(2)
//! sender's run (8) receiver's run as the sender knows it (8, 0: unknown)
//! sequence number (8, records only) acknowledgement (8)
//! body: hello (25 bytes) | count records of 64 bytes | nothing (ack)
//! HMAC-SHA256 of all the above with the shared key (32)
//! ```
//!
//! A run is a random number each box draws when it starts: a message
//! that names another run of the receiver was made before it started
//! (a replay) or for a box that is gone. The acknowledgement is the
//! highest sequence number up to which the sender has received all of the
//! receiver's records.

use kernel_bypass::state_sync::{SyncRecord, RECORD_LEN};
use ring::hmac;

const MAGIC: &[u8; 4] = b"GHHA";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 40;
const TAG_LEN: usize = 32;
const HELLO_LEN: usize = 25;
/// Records per message: the datagram (1,352 bytes) fits a 1,500-byte MTU.
pub const MAX_RECORDS: usize = 20;
pub const MAX_DATAGRAM: usize = HEADER_LEN + MAX_RECORDS * RECORD_LEN + TAG_LEN;

const HELLO: u8 = 1;
const RECORDS: u8 = 2;
const ACK: u8 = 3;

/// Digests of the parts of the configuration failover needs alike on
/// both boxes (see `show redundancy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub vrrp: u64,
    pub nat: u64,
    pub slb: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Sent every second: the sender's state.
    Hello {
        active: bool,
        digests: Digests,
    },
    Records(Vec<SyncRecord>),
    /// An acknowledgement alone.
    Ack,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub sender: u64,
    pub receiver: u64,
    pub seq: u64,
    pub ack: u64,
    pub body: Body,
}

/// Why a datagram was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a sync message of this version.
    Foreign,
    /// The tag is wrong: not the peer's, or changed on the way.
    NotAuthentic,
    /// Authentic, but its lengths or fields do not add up.
    Malformed,
}

/// The big-endian word at `at` (the caller checked the length).
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

pub fn key(secret: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())
}

impl Message {
    /// The datagram, tagged with `key`.
    pub fn seal(&self, key: &hmac::Key) -> Vec<u8> {
        let (kind, count) = match &self.body {
            Body::Hello { .. } => (HELLO, 0),
            Body::Records(records) => (RECORDS, records.len() as u16),
            Body::Ack => (ACK, 0),
        };
        let mut out = Vec::with_capacity(MAX_DATAGRAM);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[VERSION, kind]);
        out.extend_from_slice(&count.to_be_bytes());
        for word in [self.sender, self.receiver, self.seq, self.ack] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        match &self.body {
            Body::Hello { active, digests } => {
                out.push(u8::from(*active));
                for d in [digests.vrrp, digests.nat, digests.slb] {
                    out.extend_from_slice(&d.to_be_bytes());
                }
            }
            Body::Records(records) => {
                let mut bytes = [0; RECORD_LEN];
                for r in records {
                    r.write(&mut bytes);
                    out.extend_from_slice(&bytes);
                }
            }
            Body::Ack => {}
        }
        let tag = hmac::sign(key, &out);
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// The message in `datagram`, if `key` made its tag.
    pub fn open(key: &hmac::Key, datagram: &[u8]) -> Result<Message, Refused> {
        if datagram.len() < HEADER_LEN + TAG_LEN
            || &datagram[..4] != MAGIC
            || datagram[4] != VERSION
        {
            return Err(Refused::Foreign);
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        hmac::verify(key, signed, tag).map_err(|_| Refused::NotAuthentic)?;
        let word = |at: usize| u64_at(signed, at);
        let count = usize::from(u16::from_be_bytes([signed[6], signed[7]]));
        let body = &signed[HEADER_LEN..];
        let body = match signed[5] {
            HELLO if body.len() == HELLO_LEN => {
                let digest = |i: usize| u64_at(body, 1 + i * 8);
                Body::Hello {
                    active: body[0] != 0,
                    digests: Digests {
                        vrrp: digest(0),
                        nat: digest(1),
                        slb: digest(2),
                    },
                }
            }
            RECORDS if count <= MAX_RECORDS && body.len() == count * RECORD_LEN => {
                let records = body.chunks_exact(RECORD_LEN).map(|chunk| {
                    let bytes: &[u8; RECORD_LEN] =
                        chunk.try_into().map_err(|_| Refused::Malformed)?;
                    SyncRecord::read(bytes).ok_or(Refused::Malformed)
                });
                Body::Records(records.collect::<Result<_, _>>()?)
            }
            ACK if body.is_empty() => Body::Ack,
            _ => return Err(Refused::Malformed),
        };
        Ok(Message {
            sender: word(8),
            receiver: word(16),
            seq: word(24),
            ack: word(32),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel_bypass::nat::{Endpoint, Translation};
    use kernel_bypass::sessions::TcpState;
    use kernel_bypass::state_sync::Kind;
    use std::net::Ipv4Addr;

    fn record(port: u16) -> SyncRecord {
        let tr = Translation::<Ipv4Addr> {
            protocol: 6,
            inside_vrf: 0,
            outside_vrf: 0,
            inside: Endpoint::new(Ipv4Addr::new(10, 0, 0, 2), port),
            public: Endpoint::new(Ipv4Addr::new(192, 0, 2, 1), port),
            remote: Endpoint::new(Ipv4Addr::new(198, 51, 100, 9), 80),
            from_outside: false,
        };
        SyncRecord::of_translation(Kind::Nat, &tr, TcpState::Established)
    }

    #[test]
    fn messages_come_back_as_sealed_and_only_with_the_key() {
        let key = key("s3cret");
        let records = Message {
            sender: 7,
            receiver: 9,
            seq: 3,
            ack: 2,
            body: Body::Records((0..MAX_RECORDS as u16).map(record).collect()),
        };
        let hello = Message {
            body: Body::Hello {
                active: true,
                digests: Digests {
                    vrrp: 1,
                    nat: 2,
                    slb: 3,
                },
            },
            ..records.clone()
        };
        for m in [records, hello] {
            let datagram = m.seal(&key);
            assert!(datagram.len() <= MAX_DATAGRAM);
            assert_eq!(Message::open(&key, &datagram), Ok(m.clone()));
            assert_eq!(
                Message::open(&super::key("guess"), &datagram),
                Err(Refused::NotAuthentic)
            );
            let mut changed = datagram.clone();
            changed[30] ^= 1;
            assert_eq!(Message::open(&key, &changed), Err(Refused::NotAuthentic));
        }
    }

    proptest::proptest! {
        /// Random datagrams, and authentic ones cut or with a wrong count,
        /// are refused without a panic.
        #[test]
        fn hostile_datagrams_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1500), cut in 0usize..1400, count in 0u16..40) {
            let key = key("k");
            let _ = Message::open(&key, &bytes);
            let mut m = Message { sender: 1, receiver: 2, seq: 3, ack: 0, body: Body::Records(vec![record(1), record(2)]) }.seal(&key);
            m.truncate(cut.min(m.len()));
            let _ = Message::open(&key, &m);
            // An authentic message whose count lies.
            let mut forged = Message { sender: 1, receiver: 2, seq: 3, ack: 0, body: Body::Records(vec![record(1)]) }.seal(&key);
            forged.truncate(forged.len() - TAG_LEN);
            forged[6..8].copy_from_slice(&count.to_be_bytes());
            let tag = hmac::sign(&key, &forged);
            forged.extend_from_slice(tag.as_ref());
            let opened = Message::open(&key, &forged);
            proptest::prop_assert_eq!(opened.is_ok(), count == 1);
        }
    }
}
