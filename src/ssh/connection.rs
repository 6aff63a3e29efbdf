//! One SSH connection: password or public-key login against the config's
//! users, then
//! session channels that become CLI sessions (shell, with or without a PTY)
//! or non-interactive runs (exec).

use super::channel_io::{self, Owner, Start};
use super::login_limit::LoginLimit;
use super::sessions::Slot;
use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure, Pty};
use shell::{Shell, StreamOptions};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Channels one connection may have open at once. Each shell holds one of
/// tokio's 512 blocking threads for its life, which password checks need
/// too: 20 connections hold at most 80. Four still lets an operator
/// multiplex a few sessions over one connection (OpenSSH ControlMaster).
const MAX_CHANNELS: usize = 4;

/// Who logged in on this connection.
struct Login {
    user: String,
    privilege: u8,
}

pub struct Connection {
    shell: Arc<Shell>,
    /// This connection's entry in the session table, freed when it ends.
    slot: Slot,
    source: IpAddr,
    login_limit: LoginLimit,
    /// Where its channels ask for the connection to end (and why).
    ending: mpsc::UnboundedSender<&'static str>,
    login: Option<Login>,
    /// Channels open, started or not.
    channels: HashSet<ChannelId>,
    /// Channels opened but not yet given a shell or a command: their
    /// tasks read them meanwhile and wait for what to run.
    opened: HashMap<ChannelId, oneshot::Sender<Start>>,
    /// Channels that asked for a PTY: the client's terminal is raw, so we echo.
    with_pty: HashSet<ChannelId>,
}

impl Connection {
    pub fn new(
        shell: Arc<Shell>,
        slot: Slot,
        source: IpAddr,
        login_limit: LoginLimit,
        ending: mpsc::UnboundedSender<&'static str>,
    ) -> Connection {
        Connection {
            shell,
            slot,
            source,
            login_limit,
            ending,
            login: None,
            channels: HashSet::new(),
            opened: HashMap::new(),
            with_pty: HashSet::new(),
        }
    }

    /// The task of a channel that asked to start and a CLI session for it,
    /// if it was opened by a logged-in user.
    fn start(&mut self, channel: ChannelId) -> Option<(oneshot::Sender<Start>, shell::Session)> {
        let login = self.login.as_ref()?;
        let opened = self.opened.remove(&channel)?;
        let session = shell::Session::for_user(self.shell.clone(), &login.user, login.privilege);
        Some((opened, session))
    }

    fn privilege_for_key(&self, user: &str, key: &PublicKey) -> Option<u8> {
        let blob = key.to_bytes().ok()?;
        self.shell.authorize_key(user, &blob)
    }

    /// Records the outcome of a login attempt: the user's privilege, or a failure.
    fn conclude(&mut self, user: &str, privilege: Option<u8>) -> Auth {
        match privilege {
            Some(privilege) => {
                self.slot.logged_in(user);
                self.login = Some(Login {
                    user: user.to_string(),
                    privilege,
                });
                Auth::Accept
            }
            None => {
                self.login_limit.failed(self.source, Instant::now());
                Auth::reject()
            }
        }
    }
}

impl Handler for Connection {
    type Error = russh::Error;

    /// Before any administrator exists nobody can log in: the client is
    /// told why and what to type at the console.
    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        Ok((!self.shell.has_administrator()).then(|| super::FIRST_BOOT_HINT.to_string()))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if !self.login_limit.allows(self.source, Instant::now()) {
            return Ok(Auth::reject());
        }
        // Password hashing is deliberately slow: keep it off the runtime's worker.
        let shell = self.shell.clone();
        let (name, secret) = (user.to_string(), password.to_string());
        let privilege = tokio::task::spawn_blocking(move || shell.authenticate(&name, &secret))
            .await
            .ok()
            .flatten();
        Ok(self.conclude(user, privilege))
    }

    /// Keys the user does not have are refused before the client signs with
    /// them: a client trying its several keys in turn is not a failed login.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.privilege_for_key(user, offer.public_key) {
            Some(_) => Auth::Accept,
            None => Auth::reject(),
        })
    }

    /// Called once russh has checked the client's signature, i.e. that the
    /// client holds the private half of `key`.
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.login_limit.allows(self.source, Instant::now()) {
            return Ok(Auth::reject());
        }
        let privilege = self.privilege_for_key(user, key.public_key);
        Ok(self.conclude(user, privilege))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id());
        let (start, started) = oneshot::channel();
        self.opened.insert(channel.id(), start);
        reply.accept().await;
        let owner = Owner::new(self.ending.clone(), self.source);
        tokio::spawn(channel_io::serve(channel, started, owner));
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _columns: u32,
        _rows: u32,
        _pixel_width: u32,
        _pixel_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.with_pty.insert(channel);
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((start, cli)) = self.start(channel) else {
            return session.channel_failure(channel);
        };
        let options = StreamOptions {
            echo: self.with_pty.contains(&channel),
        };
        session.channel_success(channel)?;
        let _ = start.send(Start::Shell(cli, options));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((start, cli)) = self.start(channel) else {
            return session.channel_failure(channel);
        };
        let command = String::from_utf8_lossy(command).into_owned();
        session.channel_success(channel)?;
        let pty = self.with_pty.contains(&channel);
        let _ = start.send(Start::Exec(cli, command, pty));
        Ok(())
    }

    /// No subsystems (sftp, ...): refusing at once keeps clients from
    /// waiting for an answer that never comes.
    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.opened.remove(&channel);
        self.with_pty.remove(&channel);
        Ok(())
    }
}
