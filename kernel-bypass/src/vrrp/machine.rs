//! One virtual router's state machine (RFC 5798 section 6.4), driven by
//! time (`tick`) and received advertisements (`received`); it decides,
//! the element sends. Times are the dataplane clock's milliseconds. One
//! machine serves both families: it is generic over the address, which
//! only names masters and breaks ties.

use super::packet::Advert;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Backup,
    Master,
}

/// What a tick asks the element to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Send {
    pub advert: bool,
    /// Announce the addresses (on becoming master): gratuitous ARP,
    /// unsolicited Neighbor Advertisements.
    pub announce: bool,
}

/// Settings from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings<A> {
    pub vrid: u8,
    pub priority: u8,
    pub preempt: bool,
    pub preempt_delay_ms: u64,
    pub interval_cs: u16,
    /// In advert order.
    pub addresses: Vec<A>,
    /// The interface's primary (IPv4) or link-local (IPv6) address:
    /// adverts' source, and the tie breaker between equal priorities.
    pub primary: A,
}

pub struct Router<A> {
    pub settings: Settings<A>,
    pub state: State,
    /// Read by the pipeline (frames to the virtual MAC, ARP for the
    /// addresses): set only while master.
    pub master: Arc<AtomicBool>,
    /// The current master's interval (learned from its adverts), in ms.
    master_interval_ms: u64,
    master_down_at: u64,
    advert_at: u64,
    backup_since: u64,
    /// Announce the addresses with the next advert (just became master).
    announce_due: bool,
    /// The master seen last (itself while master).
    pub master_address: Option<A>,
    pub master_priority: u8,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
}

impl<A: Copy + Ord> Router<A> {
    /// Initialize (6.4.1): the address owner (priority 255) becomes
    /// master at once, any other router backup.
    pub fn new(settings: Settings<A>, now: u64) -> Router<A> {
        let interval = u64::from(settings.interval_cs) * 10;
        let mut r = Router {
            master: Arc::default(),
            state: State::Backup,
            master_interval_ms: interval,
            master_down_at: 0,
            advert_at: 0,
            backup_since: now,
            announce_due: false,
            master_address: None,
            master_priority: 0,
            transitions: 0,
            adverts_sent: 0,
            adverts_received: 0,
            settings,
        };
        match r.settings.priority {
            255 => r.become_master(now),
            _ => r.master_down_at = now + r.master_down_interval(),
        }
        r
    }

    fn skew_ms(&self) -> u64 {
        (256 - u64::from(self.settings.priority)) * self.master_interval_ms / 256
    }

    fn master_down_interval(&self) -> u64 {
        3 * self.master_interval_ms + self.skew_ms()
    }

    fn become_master(&mut self, now: u64) {
        self.state = State::Master;
        self.master.store(true, Ordering::Relaxed);
        self.advert_at = now; // the first advert and the announcements go at once
        self.announce_due = true;
        self.master_address = Some(self.settings.primary);
        self.master_priority = self.settings.priority;
        self.transitions += 1;
    }

    fn become_backup(&mut self, now: u64) {
        self.state = State::Backup;
        self.master.store(false, Ordering::Relaxed);
        self.backup_since = now;
        self.master_down_at = now + self.master_down_interval();
        self.transitions += 1;
    }

    /// Timers: what to send now.
    pub fn tick(&mut self, now: u64) -> Send {
        if self.state == State::Backup && now >= self.master_down_at {
            self.become_master(now);
        }
        if self.state != State::Master || now < self.advert_at {
            return Send::default();
        }
        self.advert_at = now + u64::from(self.settings.interval_cs) * 10;
        self.adverts_sent += 1;
        let announce = std::mem::take(&mut self.announce_due);
        Send {
            advert: true,
            announce,
        }
    }

    /// An advertisement for this virtual router from `from` (6.4.2, 6.4.3).
    pub fn received(&mut self, now: u64, from: A, advert: &Advert) {
        self.adverts_received += 1;
        let ours = self.settings.priority;
        match self.state {
            State::Backup if advert.priority == 0 => {
                self.master_down_at = now + self.skew_ms();
            }
            State::Backup => {
                let may_preempt = self.settings.preempt
                    && now >= self.backup_since + self.settings.preempt_delay_ms;
                if !may_preempt || advert.priority >= ours {
                    self.master_interval_ms = u64::from(advert.interval_cs.max(1)) * 10;
                    self.master_down_at = now + self.master_down_interval();
                    self.master_address = Some(from);
                    self.master_priority = advert.priority;
                }
            }
            State::Master if advert.priority == 0 => self.advert_at = now,
            State::Master => {
                let better = advert.priority > ours
                    || (advert.priority == ours && from > self.settings.primary);
                if better {
                    self.master_interval_ms = u64::from(advert.interval_cs.max(1)) * 10;
                    self.master_address = Some(from);
                    self.master_priority = advert.priority;
                    self.become_backup(now);
                }
            }
        }
    }

    /// The advertisement this router sends.
    pub fn advert(&self) -> Advert {
        Advert {
            vrid: self.settings.vrid,
            priority: self.settings.priority,
            interval_cs: self.settings.interval_cs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn settings(priority: u8, primary: [u8; 4]) -> Settings<Ipv4Addr> {
        Settings {
            vrid: 51,
            priority,
            preempt: true,
            preempt_delay_ms: 0,
            interval_cs: 100,
            addresses: vec![Ipv4Addr::new(10, 70, 1, 254)],
            primary: Ipv4Addr::from(primary),
        }
    }

    fn advert(priority: u8) -> Advert {
        Advert {
            vrid: 51,
            priority,
            interval_cs: 100,
        }
    }

    #[test]
    fn a_backup_takes_over_when_adverts_stop_and_yields_to_a_better_master() {
        let mut r = Router::new(settings(100, [10, 70, 1, 2]), 0);
        assert_eq!(r.tick(1000), Send::default());
        // Adverts of a priority-200 master hold it back.
        for t in (1000..10_000).step_by(1000) {
            r.received(t, Ipv4Addr::new(10, 70, 1, 3), &advert(200));
            assert_eq!(r.tick(t + 1), Send::default());
        }
        // Silence: master down after 3 intervals + skew (3 s + 609 ms).
        assert_eq!(r.tick(9000 + 3600), Send::default());
        assert_eq!(
            r.tick(9000 + 3610),
            Send {
                advert: true,
                announce: true
            }
        );
        assert_eq!(r.state, State::Master);
        assert!(r.master.load(Ordering::Relaxed));
        assert_eq!(r.tick(9000 + 4000), Send::default());
        assert_eq!(
            r.tick(9000 + 4610),
            Send {
                advert: true,
                announce: false
            }
        );
        // A better master returns: back to backup at once.
        r.received(14_000, Ipv4Addr::new(10, 70, 1, 3), &advert(200));
        assert_eq!(r.state, State::Backup);
        assert!(!r.master.load(Ordering::Relaxed));
        // An equal priority from a lower address does not win.
        let mut m = Router::new(settings(100, [10, 70, 1, 9]), 0);
        m.tick(5000);
        m.received(5100, Ipv4Addr::new(10, 70, 1, 3), &advert(100));
        assert_eq!(m.state, State::Master);
    }

    #[test]
    fn preemption_waits_for_its_delay_and_the_owner_is_master_at_once() {
        let mut s = settings(200, [10, 70, 1, 2]);
        s.preempt_delay_ms = 5000;
        let mut r = Router::new(s, 0);
        // A lower-priority master: accepted during the delay...
        for t in (0..5000).step_by(1000) {
            r.received(t, Ipv4Addr::new(10, 70, 1, 3), &advert(100));
        }
        assert_eq!(r.tick(5000), Send::default());
        // ...then ignored, so its adverts no longer hold this router back.
        r.received(5000, Ipv4Addr::new(10, 70, 1, 3), &advert(100));
        assert_eq!(
            r.tick(4000 + 3300),
            Send {
                advert: true,
                announce: true
            }
        );
        let mut owner = Router::new(settings(255, [10, 70, 1, 254]), 0);
        assert_eq!(owner.state, State::Master);
        assert_eq!(
            owner.tick(0),
            Send {
                advert: true,
                announce: true
            }
        );
    }

    #[test]
    fn the_same_machine_elects_over_ipv6_with_the_higher_link_local_winning_ties() {
        let own: Ipv6Addr = "fe80::5054:ff:fe00:2".parse().unwrap();
        let settings = Settings {
            vrid: 51,
            priority: 100,
            preempt: true,
            preempt_delay_ms: 0,
            interval_cs: 100,
            addresses: vec!["fe80::1".parse().unwrap()],
            primary: own,
        };
        let mut r = Router::new(settings, 0);
        assert!(r.tick(3610).announce);
        // Equal priority: a lower link-local address does not win...
        r.received(4000, "fe80::1:2".parse().unwrap(), &advert(100));
        assert_eq!(r.state, State::Master);
        // ...a higher one does, and becomes the master seen.
        let higher: Ipv6Addr = "fe80::5054:ff:fe00:3".parse().unwrap();
        r.received(4100, higher, &advert(100));
        assert_eq!(r.state, State::Backup);
        assert_eq!(r.master_address, Some(higher));
    }
}
