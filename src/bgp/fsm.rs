//! The BGP finite-state machine of RFC 4271 section 8, sans I/O: the
//! session task turns what happens (TCP connected or lost, a message
//! decoded or malformed, a timer) into [`Event`]s, and does the
//! [`Action`]s [`Fsm::handle`] returns. Timers are the task's; the machine
//! says which values were negotiated. Simplified as the appliance uses it:
//! the connection is always opened actively (Connect; Active waits for the
//! connect-retry timer), no collision detection, no delayed OPEN.

use super::message::{error, Message, Notification, Open, Update};
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// What the session's configuration says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub local_as: u32,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    /// Configured hold time (0: no keepalives, no hold timer).
    pub hold_time: u16,
    pub keepalive: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Stop(Notification),
    TcpConnected,
    TcpFailed,
    /// The peer closed the connection (or it broke).
    TcpClosed,
    ConnectRetryExpired,
    HoldTimerExpired,
    Received(Message),
    /// The decoder's NOTIFICATION for what arrived.
    Malformed(Notification),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Connect,
    Send(Message),
    Disconnect,
    /// The session reached Established: send the table.
    Up,
    /// The session left Established: forget the peer's routes.
    Down,
    /// An UPDATE to apply to the peer's routes.
    Apply(Update),
    /// The peer asked for the table again (route refresh).
    Resend,
}

/// The peer as its OPEN described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub router_id: Ipv4Addr,
    pub four_octet_as: bool,
    /// It takes ROUTE-REFRESH (RFC 2918): a policy change asks it to send
    /// its routes again instead of resetting the session.
    pub route_refresh: bool,
    /// Negotiated hold time and keepalive interval, in seconds.
    pub hold_time: u16,
    pub keepalive: u16,
}

#[derive(Debug)]
pub struct Fsm {
    pub settings: Settings,
    pub state: State,
    /// Set from OPEN on.
    pub peer: Option<Peer>,
    /// The last NOTIFICATION sent or received, for `show ip bgp neighbors`.
    pub last_error: Option<(bool, Notification)>,
}

/// The hold time RFC 4271 suggests while waiting for the peer's OPEN.
pub const LARGE_HOLD_TIME: u16 = 240;

impl Fsm {
    pub fn new(settings: Settings) -> Fsm {
        Fsm {
            settings,
            state: State::Idle,
            peer: None,
            last_error: None,
        }
    }

    /// The OPEN this speaker sends.
    pub fn open(&self) -> Open {
        Open {
            asn: self.settings.local_as,
            hold_time: self.settings.hold_time,
            router_id: self.settings.router_id,
            four_octet_as: true,
            route_refresh: true,
        }
    }

    /// The hold time in force now (None: no hold timer).
    pub fn hold_time(&self) -> Option<u16> {
        match (self.state, &self.peer) {
            (State::OpenSent, _) => Some(LARGE_HOLD_TIME),
            (State::OpenConfirm | State::Established, Some(p)) => {
                (p.hold_time > 0).then_some(p.hold_time)
            }
            _ => None,
        }
    }

    /// The keepalive interval in force now (None: none are sent).
    pub fn keepalive(&self) -> Option<u16> {
        match (self.state, &self.peer) {
            (State::OpenConfirm | State::Established, Some(p)) => {
                (p.keepalive > 0).then_some(p.keepalive)
            }
            _ => None,
        }
    }

    pub fn four_octet_as(&self) -> bool {
        self.peer.as_ref().is_some_and(|p| p.four_octet_as)
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let state = self.state;
        match (state, event) {
            (State::Idle, Event::Start) => self.to(State::Connect, vec![Action::Connect]),
            (State::Idle, _) => Vec::new(),
            (_, Event::Stop(n)) => self.close(Some(n)),
            (State::Connect, Event::TcpConnected) => {
                let open = Message::Open(self.open());
                self.to(State::OpenSent, vec![Action::Send(open)])
            }
            (State::Connect, Event::TcpFailed) => self.to(State::Active, Vec::new()),
            (State::Active, Event::ConnectRetryExpired) => {
                self.to(State::Connect, vec![Action::Connect])
            }
            (State::Connect | State::Active, _) => Vec::new(),
            (_, Event::TcpFailed | Event::TcpClosed) => self.close(None),
            (_, Event::HoldTimerExpired) => {
                self.close(Some(Notification::new(error::HOLD_EXPIRED, 0)))
            }
            (_, Event::Malformed(n)) => self.close(Some(n)),
            (_, Event::Received(Message::Notification(n))) => {
                let actions = self.close(None);
                self.last_error = Some((false, n));
                actions
            }
            (State::OpenSent, Event::Received(Message::Open(open))) => self.received_open(open),
            (State::OpenConfirm, Event::Received(Message::Keepalive)) => {
                self.to(State::Established, vec![Action::Up])
            }
            (State::Established, Event::Received(Message::Keepalive)) => Vec::new(),
            (State::Established, Event::Received(Message::Update(u))) => {
                // RFC 4271 6.3: an external peer's paths start with its AS.
                let settings = &self.settings;
                let ebgp = settings.remote_as != settings.local_as;
                let first = u.attributes.as_ref().map(|a| a.first_as());
                match first {
                    Some(first) if ebgp && first != Some(settings.remote_as) => self.close(Some(
                        Notification::new(error::UPDATE, error::MALFORMED_AS_PATH),
                    )),
                    _ => vec![Action::Apply(u)],
                }
            }
            (State::Established, Event::Received(Message::RouteRefresh(1, 1))) => {
                vec![Action::Resend]
            }
            (State::Established, Event::Received(Message::RouteRefresh(..))) => Vec::new(),
            // RFC 6608's subcodes: which state the unexpected message came in.
            (
                _,
                Event::Received(_)
                | Event::TcpConnected
                | Event::ConnectRetryExpired
                | Event::Start,
            ) => {
                let subcode = match state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    _ => 3,
                };
                self.close(Some(Notification::new(error::FSM, subcode)))
            }
        }
    }

    fn to(&mut self, state: State, actions: Vec<Action>) -> Vec<Action> {
        self.state = state;
        actions
    }

    /// To Idle: the NOTIFICATION (if any) sent, the connection closed, the
    /// routes dropped if the session was up.
    fn close(&mut self, notification: Option<Notification>) -> Vec<Action> {
        let mut actions = Vec::new();
        let connected = matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        );
        if let Some(n) = notification {
            if connected {
                actions.push(Action::Send(Message::Notification(n.clone())));
            }
            self.last_error = Some((true, n));
        }
        if self.state != State::Idle {
            actions.push(Action::Disconnect);
        }
        if self.state == State::Established {
            actions.push(Action::Down);
        }
        self.state = State::Idle;
        self.peer = None;
        actions
    }

    fn received_open(&mut self, open: Open) -> Vec<Action> {
        if open.asn != self.settings.remote_as {
            let data = match u16::try_from(open.asn) {
                Ok(two) => two.to_be_bytes().to_vec(),
                Err(_) => open.asn.to_be_bytes().to_vec(),
            };
            let n = Notification {
                code: error::OPEN,
                subcode: error::BAD_PEER_AS,
                data,
            };
            return self.close(Some(n));
        }
        let same_id = open.router_id == self.settings.router_id;
        if open.router_id.is_unspecified() || same_id {
            return self.close(Some(Notification::new(error::OPEN, error::BAD_BGP_ID)));
        }
        let hold_time = open.hold_time.min(self.settings.hold_time);
        let keepalive = match hold_time {
            0 => 0,
            h => self.settings.keepalive.min(h / 3).max(1),
        };
        self.peer = Some(Peer {
            router_id: open.router_id,
            four_octet_as: open.four_octet_as,
            route_refresh: open.route_refresh,
            hold_time,
            keepalive,
        });
        self.to(State::OpenConfirm, vec![Action::Send(Message::Keepalive)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::message::tests::message;
    use crate::bgp::message::{Attributes, Origin, Segment};
    use proptest::prelude::*;

    fn settings() -> Settings {
        Settings {
            local_as: 65000,
            remote_as: 65001,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: 90,
            keepalive: 30,
        }
    }

    fn peer_open(asn: u32, hold_time: u16) -> Event {
        Event::Received(Message::Open(Open {
            asn,
            hold_time,
            router_id: Ipv4Addr::new(192, 0, 2, 2),
            four_octet_as: true,
            route_refresh: true,
        }))
    }

    #[test]
    fn a_session_comes_up_with_the_lower_hold_time_and_goes_down_on_a_notification() {
        let mut fsm = Fsm::new(settings());
        assert_eq!(fsm.handle(Event::Start), [Action::Connect]);
        let sent = fsm.handle(Event::TcpConnected);
        assert!(matches!(&sent[..], [Action::Send(Message::Open(o))] if o.asn == 65000));
        assert_eq!(fsm.hold_time(), Some(LARGE_HOLD_TIME));
        assert_eq!(
            fsm.handle(peer_open(65001, 30)),
            [Action::Send(Message::Keepalive)]
        );
        assert_eq!((fsm.hold_time(), fsm.keepalive()), (Some(30), Some(10)));
        assert_eq!(
            fsm.handle(Event::Received(Message::Keepalive)),
            [Action::Up]
        );
        assert_eq!(fsm.state, State::Established);
        let cease = Notification::new(error::CEASE, error::ADMIN_RESET);
        assert_eq!(
            fsm.handle(Event::Received(Message::Notification(cease))),
            [Action::Disconnect, Action::Down]
        );
        assert_eq!(fsm.state, State::Idle);
    }

    #[test]
    fn an_open_from_the_wrong_as_is_refused_with_bad_peer_as() {
        let mut fsm = Fsm::new(settings());
        fsm.handle(Event::Start);
        fsm.handle(Event::TcpConnected);
        let actions = fsm.handle(peer_open(65009, 90));
        assert!(matches!(
            &actions[..],
            [Action::Send(Message::Notification(n)), Action::Disconnect]
                if (n.code, n.subcode) == (error::OPEN, error::BAD_PEER_AS)
        ));
        assert_eq!(fsm.state, State::Idle);
    }

    #[test]
    fn an_external_path_that_does_not_start_with_the_peers_as_is_malformed() {
        let mut fsm = Fsm::new(settings());
        fsm.handle(Event::Start);
        fsm.handle(Event::TcpConnected);
        fsm.handle(peer_open(65001, 90));
        fsm.handle(Event::Received(Message::Keepalive));
        let update = |path: Vec<u32>| {
            Event::Received(Message::Update(Update {
                attributes: Some(Attributes {
                    origin: Origin::Igp,
                    as_path: vec![Segment::Sequence(path)],
                    next_hop: Ipv4Addr::new(10, 0, 0, 2),
                    med: None,
                    local_pref: None,
                    communities: Vec::new(),
                }),
                nlri: vec!["10.9.0.0/16".parse().unwrap()],
                ..Update::default()
            }))
        };
        assert!(matches!(
            &fsm.handle(update(vec![65001, 7]))[..],
            [Action::Apply(_)]
        ));
        let actions = fsm.handle(update(vec![7, 65001]));
        assert!(matches!(
            &actions[0],
            Action::Send(Message::Notification(n))
                if (n.code, n.subcode) == (error::UPDATE, error::MALFORMED_AS_PATH)
        ));
        assert_eq!(fsm.state, State::Idle);
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Start),
            Just(Event::Stop(Notification::new(
                error::CEASE,
                error::ADMIN_SHUTDOWN
            ))),
            Just(Event::TcpConnected),
            Just(Event::TcpFailed),
            Just(Event::TcpClosed),
            Just(Event::ConnectRetryExpired),
            Just(Event::HoldTimerExpired),
            Just(peer_open(65001, 90)),
            message().prop_map(Event::Received),
            Just(Event::Malformed(Notification::new(
                error::UPDATE,
                error::MALFORMED_AS_PATH
            ))),
        ]
    }

    proptest! {
        /// Any sequence of events leaves the machine in a state RFC 4271
        /// allows, only Established applies UPDATEs, and a session that
        /// went up always goes down before it comes up again.
        #[test]
        fn any_event_sequence_is_handled(events in proptest::collection::vec(event(), 0..40)) {
            let mut fsm = Fsm::new(settings());
            let mut up = false;
            for event in events {
                let before = fsm.state;
                for action in fsm.handle(event) {
                    match action {
                        Action::Up => { prop_assert!(!up); up = true; }
                        Action::Down => { prop_assert!(up); up = false; }
                        Action::Apply(_) | Action::Resend => {
                            prop_assert_eq!(before, State::Established)
                        }
                        _ => {}
                    }
                }
                prop_assert_eq!(up, fsm.state == State::Established);
            }
        }
    }
}
