//! SSH access to the CLI, served on the appliance's own addresses through
//! the userspace stack (not the kernel's sockets). Each shell channel runs
//! the same CLI engine as the console; exec channels run their lines
//! non-interactively. Connections are limited in number, and password
//! guessing per source address.

mod channel_io;
mod commands;
mod connection;
mod cut;
mod host_key;
mod login_limit;
mod sessions;

pub use commands::register as register_commands;
pub use host_key::{host_key_path, load_or_create, random_key};
pub use sessions::Sessions;

use connection::Connection;
use kernel_bypass::local::LocalStack;
use login_limit::LoginLimit;
use russh::keys::PrivateKey;
use russh::server::Config;
use russh::{Disconnect, MethodKind, MethodSet};
use shell::Shell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// TCP port of the SSH server.
pub const SSH_PORT: u16 = 22;

/// Sessions without any traffic for this long are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Connections not logged in this long after connecting are closed.
const LOGIN_GRACE: Duration = Duration::from_secs(30);
/// A client told to disconnect has this long to close its side; then the
/// server ends the connection itself (russh would wait for the idle
/// timeout, keeping the slot). Ample for the message to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Accepts SSH connections on `port` of the stack's addresses for ever,
/// each served by its own task and recorded in `sessions`; connections
/// beyond its limits ([`Sessions::open`]) are closed at once.
pub async fn serve(
    stack: LocalStack,
    port: u16,
    shell: Arc<Shell>,
    host_key: PrivateKey,
    sessions: Sessions,
) -> io::Result<()> {
    let config = Arc::new(server_config(host_key));
    let listener = stack.tcp_listen(port).await?;
    let login_limit = LoginLimit::default();
    loop {
        let (stream, peer) = listener.accept().await?;
        let Some(slot) = sessions.open(peer) else {
            continue;
        };
        let cleared = slot.cleared();
        let line = slot.line();
        // Its channels ask for the connection to end through `ends`.
        let (ending, mut ends) = tokio::sync::mpsc::unbounded_channel();
        let handler = Connection::new(shell.clone(), slot, peer.ip(), login_limit.clone(), ending);
        let (config, sessions) = (config.clone(), sessions.clone());
        tokio::spawn(async move {
            let (stream, cut) = cut::cuttable(stream);
            // A failed handshake or a dropped client only ends this connection.
            let started = russh::server::run_stream(config, stream, handler);
            let Ok(Ok(mut running)) = tokio::time::timeout(LOGIN_GRACE, started).await else {
                return;
            };
            let handle = running.handle();
            // Connections that never log in must not keep their slot.
            let login_time_up = async {
                tokio::time::sleep(LOGIN_GRACE).await;
                if sessions.logged_in(line) {
                    std::future::pending::<()>().await;
                }
            };
            let reason = tokio::select! {
                _ = &mut running => return,
                () = cleared.notified() => "line cleared by an operator",
                () = login_time_up => "login time is up",
                Some(reason) = ends.recv() => reason,
            };
            let _ = handle
                .disconnect(Disconnect::ByApplication, reason.to_string(), String::new())
                .await;
            if tokio::time::timeout(CLOSE_GRACE, running).await.is_err() {
                let _ = cut.send(());
            }
        });
    }
}

/// What the console and SSH clients are told while no administrator
/// exists (there is no default password).
pub const FIRST_BOOT_HINT: &str =
    "% No administrator is configured, so SSH lets nobody in. At the console:\r\n\
    %   configure terminal\r\n\
    %   username NAME privilege 15 secret PASSWORD\r\n";

fn server_config(host_key: PrivateKey) -> Config {
    Config {
        server_id: russh::SshId::Standard(
            concat!("SSH-2.0-Gatehouse_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        keys: vec![host_key],
        // Clients probe with "none" first to learn the methods: no delay for that.
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(IDLE_TIMEOUT),
        ..Config::default()
    }
}
