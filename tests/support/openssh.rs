//! What the tests that drive OpenSSH's client share (the hosted SSH tests
//! and the QEMU one): its output as text, the askpass helper that hands it
//! a password without a terminal, and key pairs made by ssh-keygen.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A command's standard output and error, as one text for messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes the askpass helper into `dir`; returns its path.
pub fn write_askpass(dir: &Path) -> PathBuf {
    let askpass = dir.join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\nprintf '%s\\n' \"$GH_SSH_PASSWORD\"\n").unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    askpass
}

/// Makes `command` (ssh, sftp) take `password` from the askpass helper.
pub fn give_password(command: &mut Command, askpass: &Path, password: &str) {
    command
        .env("SSH_ASKPASS", askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("GH_SSH_PASSWORD", password);
}

/// A fresh ed25519 key pair in `dir`, the private key encrypted with
/// `passphrase` unless it is empty; returns the private key's path (the
/// public key is beside it, `.pub`).
pub fn new_key(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "tester@host",
            "-f",
        ])
        .arg(&path)
        .output()
        .expect("running ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", output_text(&out));
    path
}
