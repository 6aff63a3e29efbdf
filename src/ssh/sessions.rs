//! The SSH connections in progress: how many may be open at once, who is
//! logged in on each (for `show users`), and `clear line` to end one. A
//! connection holds a [`Slot`] whose drop frees it, so a client that
//! vanishes leaves nothing behind.

use super::login_limit::origin;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// At most this many SSH connections at once (logged in or not).
pub const MAX_SESSIONS: usize = 20;
/// At most this many of them not logged in yet (for up to the login
/// grace): whoever connects without logging in leaves the other half to
/// logged-in sessions.
pub const MAX_LOGINS: usize = MAX_SESSIONS / 2;
/// At most this many not logged in from one source address (an IPv6 /64,
/// see [`origin`]): one host
/// cannot take all of [`MAX_LOGINS`], while a few logins at once (an
/// operator's scripts) still get through.
pub const MAX_LOGINS_PER_SOURCE: usize = 4;

struct Entry {
    peer: SocketAddr,
    user: Option<String>,
    since: Instant,
    /// Notified by `clear line`.
    cleared: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
}

/// The table of connections, shared by the SSH server and `show users`.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<Table>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection from `peer`, or None when all are taken or
    /// too many connections are logging in (from anywhere or from `peer`'s
    /// address).
    pub fn open(&self, peer: SocketAddr) -> Option<Slot> {
        let mut table = self.lock();
        let logging_in = table.entries.values().filter(|entry| entry.user.is_none());
        let (all, from_peer) = logging_in.fold((0, 0), |(all, from_peer), entry| {
            (
                all + 1,
                from_peer + usize::from(origin(entry.peer.ip()) == origin(peer.ip())),
            )
        });
        if table.entries.len() >= MAX_SESSIONS
            || all >= MAX_LOGINS
            || from_peer >= MAX_LOGINS_PER_SOURCE
        {
            return None;
        }
        table.next_id += 1;
        let id = table.next_id;
        table.entries.insert(
            id,
            Entry {
                peer,
                user: None,
                since: Instant::now(),
                cleared: Arc::new(Notify::new()),
            },
        );
        Some(Slot {
            sessions: self.clone(),
            id,
        })
    }

    /// Asks the connection on `line` (as `show users` numbers them) to
    /// end; false if there is none.
    pub fn clear(&self, line: u64) -> bool {
        let table = self.lock();
        let entry = table.entries.get(&line);
        entry.inspect(|entry| entry.cleared.notify_one()).is_some()
    }

    /// Whether someone has logged in on the connection `line`.
    pub fn logged_in(&self, line: u64) -> bool {
        let table = self.lock();
        table
            .entries
            .get(&line)
            .is_some_and(|entry| entry.user.is_some())
    }

    /// The `show users` table.
    pub fn render(&self) -> String {
        let table = self.lock();
        let mut text = format!(
            "{:<6} {:<16} {:<22} {}\n",
            "Line", "User", "From", "Connected"
        );
        for (id, entry) in &table.entries {
            let seconds = entry.since.elapsed().as_secs();
            let _ = writeln!(
                text,
                "{:<6} {:<16} {:<22} {:02}:{:02}:{:02}",
                format!("ssh {id}"),
                entry.user.as_deref().unwrap_or("(login)"),
                entry.peer.to_string(),
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            );
        }
        text
    }
}

/// One connection's place in [`Sessions`]; freed on drop.
pub struct Slot {
    sessions: Sessions,
    id: u64,
}

impl Slot {
    /// The line number `show users` gives this connection.
    pub fn line(&self) -> u64 {
        self.id
    }

    /// Notified when an operator clears this connection's line (a
    /// notification sent before anyone waits is kept).
    pub fn cleared(&self) -> Arc<Notify> {
        let table = self.sessions.lock();
        let entry = table.entries.get(&self.id);
        entry.map_or_else(|| Arc::new(Notify::new()), |entry| entry.cleared.clone())
    }

    /// Records who logged in on this connection.
    pub fn logged_in(&self, user: &str) {
        if let Some(entry) = self.sessions.lock().entries.get_mut(&self.id) {
            entry.user = Some(user.to_string());
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.sessions.lock().entries.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::new([192, 0, 2, 7].into(), port)
    }

    /// A logged-in slot from `peer`.
    fn logged_in(sessions: &Sessions, peer: SocketAddr) -> Slot {
        let slot = sessions.open(peer).unwrap();
        slot.logged_in("admin");
        slot
    }

    #[test]
    fn slots_are_limited_and_freed_on_drop() {
        let sessions = Sessions::default();
        let mut slots: Vec<Slot> = (0..MAX_SESSIONS)
            .map(|n| logged_in(&sessions, peer(1000 + n as u16)))
            .collect();
        assert!(sessions.open(peer(1)).is_none(), "over the limit");
        slots.pop();
        assert!(sessions.open(peer(2)).is_some(), "a freed slot is reusable");
    }

    #[test]
    fn connections_logging_in_are_limited_per_source_and_in_all() {
        let sessions = Sessions::default();
        let from = |host: u8, port: u16| SocketAddr::new([192, 0, 2, host].into(), port);
        let mut held: Vec<Slot> = (0..MAX_LOGINS_PER_SOURCE as u16)
            .map(|port| sessions.open(from(1, port)).unwrap())
            .collect();
        assert!(sessions.open(from(1, 99)).is_none(), "one source's share");
        held[0].logged_in("admin");
        assert!(sessions.open(from(1, 99)).is_some(), "a login frees it");
        held.extend((2..).map_while(|host| sessions.open(from(host, 1))));
        let logging_in = held.iter().filter(|slot| !sessions.logged_in(slot.line()));
        assert_eq!(logging_in.count(), MAX_LOGINS, "all sources' share");
        held.pop();
        assert!(sessions.open(from(99, 1)).is_some(), "a freed share");
    }

    #[test]
    fn ipv6_sources_in_one_64_share_a_source_s_logins() {
        let sessions = Sessions::default();
        let in_64 = |host: u16| SocketAddr::new([0x2001, 0xdb8, 0, 0, 0, 0, 0, host].into(), 22);
        let _held: Vec<Slot> = (1..=MAX_LOGINS_PER_SOURCE as u16)
            .map(|host| sessions.open(in_64(host)).unwrap())
            .collect();
        assert!(sessions.open(in_64(999)).is_none(), "the same /64");
        let next_64 = SocketAddr::new([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1].into(), 22);
        assert!(sessions.open(next_64).is_some(), "another /64");
    }

    #[tokio::test]
    async fn clearing_a_line_notifies_its_connection_only() {
        let sessions = Sessions::default();
        let first = sessions.open(peer(1)).unwrap();
        let second = sessions.open(peer(2)).unwrap();
        assert!(sessions.clear(1));
        assert!(!sessions.clear(99), "no such line");
        first.cleared().notified().await;
        let second_cleared = second.cleared();
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            second_cleared.notified(),
        );
        assert!(waited.await.is_err(), "line 2 was not cleared");
    }

    #[test]
    fn the_table_names_logged_in_users_and_their_source() {
        let sessions = Sessions::default();
        let first = sessions.open(peer(40000)).unwrap();
        let _second = sessions.open(peer(40001)).unwrap();
        first.logged_in("admin");
        assert!(sessions.logged_in(first.line()));
        assert!(!sessions.logged_in(_second.line()));
        let text = sessions.render();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.contains("admin") && text.contains("192.0.2.7:40000"),
            "{text}"
        );
        assert!(
            text.contains("(login)") && text.contains("192.0.2.7:40001"),
            "{text}"
        );
        drop(first);
        assert!(!sessions.render().contains("admin"));
    }
}
