//! The pair's sync link as one box keeps it: which run of the peer it
//! talks to, the records sent and not yet acknowledged (retransmitted
//! until they are), and which of the peer's records it has taken, so that
//! a repeated or replayed message is not taken twice.
//!
//! A box learns the peer's run from its hellos. A new run (the peer
//! started, or this box did and the peer learnt it) starts the sequence
//! numbers over and asks for a bulk copy; a message naming another run
//! of this box than its own is stale and dropped.

use super::message::{Body, Digests, Message};
use kernel_bypass::state_sync::SyncRecord;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Messages sent and not acknowledged at most: below the receive window,
/// and within what the local stack's UDP socket buffers (64 KiB).
pub const MAX_IN_FLIGHT: usize = 32;
/// Sequence numbers behind the highest received that are still told apart.
const WINDOW: u64 = 64;
/// A message not acknowledged after this is sent again.
const RETRANSMIT_AFTER: Duration = Duration::from_millis(200);
/// Acknowledgements that repeat while later messages arrive: the first
/// message not acknowledged was lost, and is sent again at once (TCP's
/// fast retransmit) rather than after [`RETRANSMIT_AFTER`].
const REPEATED_ACKS: u32 = 3;

/// Which sequence numbers of the peer's run were received.
#[derive(Default)]
struct ReceiveWindow {
    /// The highest received.
    top: u64,
    /// Bit i: `top - i` was received.
    seen: u64,
    /// All up to this one were received.
    contiguous: u64,
}

impl ReceiveWindow {
    /// Whether `seq` is new (and now marked received).
    fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 || seq + WINDOW <= self.top || seq <= self.contiguous {
            return false;
        }
        if seq > self.top {
            let shift = seq - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = seq;
        } else {
            let bit = 1 << (self.top - seq);
            if self.seen & bit != 0 {
                return false;
            }
            self.seen |= bit;
        }
        while self.contiguous < self.top
            && self.top - (self.contiguous + 1) < WINDOW
            && self.seen & 1 << (self.top - (self.contiguous + 1)) != 0
        {
            self.contiguous += 1;
        }
        true
    }
}

struct Unacked {
    seq: u64,
    records: Vec<SyncRecord>,
    sent_at: Instant,
}

/// The peer's run and what this box knows of it.
struct Peer {
    run: u64,
    received: ReceiveWindow,
    active: bool,
    digests: Digests,
    last_heard: Instant,
}

/// What a received message brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A hello; `new_run`: the peer started over (or is heard for the
    /// first time): send it everything.
    Hello { new_run: bool },
    /// Records to adopt (then acknowledge).
    Records(Vec<SyncRecord>),
    /// A repeat of records already taken (acknowledge again).
    Repeat,
    /// An acknowledgement, or a message of a run that is gone.
    Nothing,
}

/// Counters for `show redundancy`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkCounters {
    pub messages_sent: u64,
    pub records_sent: u64,
    pub retransmitted: u64,
    pub records_received: u64,
    pub repeats: u64,
    pub stale: u64,
    pub peer_runs: u64,
}

pub struct Link {
    run: u64,
    peer: Option<Peer>,
    next_seq: u64,
    unacked: VecDeque<Unacked>,
    /// The last acknowledgement heard, and how often in a row.
    last_ack: (u64, u32),
    pub counters: LinkCounters,
}

impl Link {
    pub fn new(run: u64) -> Link {
        Link {
            run,
            peer: None,
            next_seq: 1,
            unacked: VecDeque::new(),
            last_ack: (0, 0),
            counters: LinkCounters::default(),
        }
    }

    fn message(&self, seq: u64, body: Body) -> Message {
        let peer = self.peer.as_ref();
        Message {
            sender: self.run,
            receiver: peer.map_or(0, |p| p.run),
            seq,
            ack: peer.map_or(0, |p| p.received.contiguous),
            body,
        }
    }

    pub fn hello(&self, active: bool, digests: Digests) -> Message {
        self.message(0, Body::Hello { active, digests })
    }

    pub fn ack(&self) -> Message {
        self.message(0, Body::Ack)
    }

    /// Whether another message of records may go now: the peer is known
    /// and the window has room.
    pub fn can_send(&self) -> bool {
        self.peer.is_some() && self.unacked.len() < MAX_IN_FLIGHT
    }

    /// The next message of `records`, kept until acknowledged.
    pub fn send(&mut self, records: Vec<SyncRecord>, now: Instant) -> Message {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.messages_sent += 1;
        self.counters.records_sent += records.len() as u64;
        let message = self.message(seq, Body::Records(records.clone()));
        self.unacked.push_back(Unacked {
            seq,
            records,
            sent_at: now,
        });
        message
    }

    /// Messages whose acknowledgement is late, to send again.
    pub fn retransmit(&mut self, now: Instant) -> Vec<Message> {
        let late: Vec<_> = (self.unacked.iter_mut())
            .filter(|u| now.duration_since(u.sent_at) >= RETRANSMIT_AFTER)
            .map(|u| {
                u.sent_at = now;
                (u.seq, u.records.clone())
            })
            .collect();
        self.counters.retransmitted += late.len() as u64;
        (late.into_iter())
            .map(|(seq, records)| self.message(seq, Body::Records(records)))
            .collect()
    }

    /// Takes an authentic message.
    pub fn receive(&mut self, m: Message, now: Instant) -> Received {
        let known = self.peer.as_ref().is_some_and(|p| p.run == m.sender);
        if !known {
            let Body::Hello { active, digests } = m.body else {
                self.counters.stale += 1;
                return Received::Nothing;
            };
            self.counters.peer_runs += 1;
            self.peer = Some(Peer {
                run: m.sender,
                received: ReceiveWindow::default(),
                active,
                digests,
                last_heard: now,
            });
            // The new run knows none of this one's numbers.
            self.next_seq = 1;
            self.unacked.clear();
            self.last_ack = (0, 0);
            return Received::Hello { new_run: true };
        }
        let Some(peer) = self.peer.as_mut() else {
            return Received::Nothing;
        };
        peer.last_heard = now;
        if let Body::Hello { active, digests } = m.body {
            (peer.active, peer.digests) = (active, digests);
            return Received::Hello { new_run: false };
        }
        if m.receiver != self.run {
            self.counters.stale += 1;
            return Received::Nothing;
        }
        while self.unacked.front().is_some_and(|u| u.seq <= m.ack) {
            self.unacked.pop_front();
        }
        self.last_ack = match self.last_ack {
            (ack, times) if ack == m.ack => (ack, times + 1),
            _ => (m.ack, 1),
        };
        if self.last_ack.1 == REPEATED_ACKS {
            if let Some(lost) = self.unacked.front_mut() {
                lost.sent_at = now.checked_sub(RETRANSMIT_AFTER).unwrap_or(lost.sent_at);
            }
        }
        match m.body {
            Body::Records(records) if peer.received.accept(m.seq) => {
                self.counters.records_received += records.len() as u64;
                Received::Records(records)
            }
            Body::Records(_) => {
                self.counters.repeats += 1;
                Received::Repeat
            }
            _ => Received::Nothing,
        }
    }

    /// The peer's last hello: (active, digests), and how long ago it was
    /// heard; None before the first.
    pub fn peer(&self, now: Instant) -> Option<(bool, Digests, Duration)> {
        let p = self.peer.as_ref()?;
        Some((p.active, p.digests, now.duration_since(p.last_heard)))
    }

    /// Messages sent and not acknowledged.
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two links that have exchanged hellos.
    fn pair() -> (Link, Link, Instant) {
        let now = Instant::now();
        let (mut a, mut b) = (Link::new(1), Link::new(2));
        assert_eq!(
            b.receive(a.hello(true, Digests::default()), now),
            Received::Hello { new_run: true }
        );
        assert_eq!(
            a.receive(b.hello(false, Digests::default()), now),
            Received::Hello { new_run: true }
        );
        (a, b, now)
    }

    #[test]
    fn records_are_taken_once_acknowledged_and_retransmitted_until_they_are() {
        let (mut a, mut b, now) = pair();
        let first = a.send(Vec::new(), now);
        let lost = a.send(Vec::new(), now);
        let third = a.send(Vec::new(), now);
        assert_eq!(b.receive(first.clone(), now), Received::Records(vec![]));
        assert_eq!(b.receive(third, now), Received::Records(vec![]));
        assert_eq!(
            b.receive(first, now),
            Received::Repeat,
            "a repeat is not taken twice"
        );
        assert_eq!(b.ack().ack, 1, "the ack covers only what arrived in order");
        assert_eq!(a.receive(b.ack(), now), Received::Nothing);
        assert_eq!(a.in_flight(), 2);
        assert!(a.retransmit(now).is_empty(), "not late yet");
        let again = a.retransmit(now + RETRANSMIT_AFTER);
        assert_eq!(again.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(again[0].seq, lost.seq);
        assert_eq!(b.receive(again[0].clone(), now), Received::Records(vec![]));
        assert_eq!(b.ack().ack, 3);
        a.receive(b.ack(), now);
        assert_eq!(a.in_flight(), 0);
    }

    #[test]
    fn a_lost_message_goes_again_after_three_repeated_acknowledgements() {
        let (mut a, mut b, now) = pair();
        let sent: Vec<_> = (0..5).map(|_| a.send(Vec::new(), now)).collect();
        b.receive(sent[0].clone(), now);
        a.receive(b.ack(), now);
        for m in &sent[2..] {
            b.receive(m.clone(), now);
            a.receive(b.ack(), now); // each says "up to 1"
        }
        let again = a.retransmit(now);
        assert_eq!(
            again.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [2],
            "at once, only the lost one"
        );
    }

    #[test]
    fn a_message_for_another_run_is_stale_and_a_new_run_starts_over() {
        let (mut a, mut b, now) = pair();
        let m = a.send(Vec::new(), now);
        // B restarts: its new run does not know A's messages yet.
        let mut b2 = Link::new(3);
        assert_eq!(b2.receive(m.clone(), now), Received::Nothing);
        // A hears the new run: sequence numbers start over, nothing in flight.
        assert_eq!(
            a.receive(b2.hello(false, Digests::default()), now),
            Received::Hello { new_run: true }
        );
        assert_eq!(a.in_flight(), 0);
        // The old B gets a replay of A's message to it only once.
        assert_eq!(b.receive(m.clone(), now), Received::Records(vec![]));
        assert_eq!(b.receive(m, now), Received::Repeat);
        // A message naming a run of B's that is not B's now is stale.
        b2.receive(a.hello(true, Digests::default()), now);
        let for_old_b = Message {
            receiver: 2,
            ..a.send(Vec::new(), now)
        };
        assert_eq!(b2.receive(for_old_b, now), Received::Nothing);
        assert_eq!(b2.counters.stale, 2);
    }

    proptest::proptest! {
        /// Any order of arrivals, with repeats, takes each number once.
        #[test]
        fn the_window_takes_each_number_once(seqs in proptest::collection::vec(1u64..100, 0..300)) {
            let mut window = ReceiveWindow::default();
            let mut taken = std::collections::HashSet::new();
            for seq in seqs {
                if window.accept(seq) {
                    proptest::prop_assert!(taken.insert(seq), "{seq} taken twice");
                }
                proptest::prop_assert!((1..=window.contiguous).all(|s| taken.contains(&s)));
            }
        }
    }
}
