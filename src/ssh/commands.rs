//! The CLI commands about SSH: the host key's fingerprint, the sessions
//! (`show users`) and ending one (`clear line`).

use super::host_key::fingerprint;
use super::sessions::Sessions;
use grammar::SyntaxError;
use russh::keys::PrivateKey;
use shell::ShellBuilder;

/// Adds the SSH commands to `builder`.
pub fn register(
    builder: ShellBuilder,
    host_key: &PrivateKey,
    sessions: &Sessions,
) -> Result<ShellBuilder, SyntaxError> {
    let shown = format!("{}\n", fingerprint(host_key));
    let (listed, clearable) = (sessions.clone(), sessions.clone());
    builder
        .show(
            "ssh host-key fingerprint",
            &[
                "SSH server",
                "The server's host key",
                "Its SHA256 fingerprint",
            ],
            move |_| shown.clone(),
        )?
        .show("users", &["Users logged in over SSH"], move |_| {
            listed.render()
        })?
        .exec(
            "clear line <1-4294967295>$line",
            &[
                "Reset functions",
                "End an SSH session",
                "Its line (from show users)",
            ],
            move |args| match args.number("line") {
                Some(line) if clearable.clear(line) => Ok(String::new()),
                _ => Err("% No such line (see show users)".to_string()),
            },
        )
}
