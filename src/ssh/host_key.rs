//! The appliance's SSH host key: ed25519, created on first start beside the
//! startup configuration (so it lives on the config partition) and reused
//! afterwards, so clients' known_hosts entries stay valid across reloads.

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "ssh_host_ed25519_key";

/// Where the host key of the appliance whose startup config is `startup` lives.
pub fn host_key_path(startup: &Path) -> PathBuf {
    startup.with_file_name(FILE_NAME)
}

/// Reads the key at `path`, or creates and saves a new one if there is no
/// file. A file that exists but does not parse, or holds a key encrypted
/// with a passphrase (which nobody is there to give), is an error, never
/// replaced: it may be the operator's key.
pub fn load_or_create(path: &Path) -> Result<PrivateKey, String> {
    match fs::read(path) {
        Ok(text) => match PrivateKey::from_openssh(text) {
            Ok(key) if key.is_encrypted() => Err(format!(
                "SSH host key {}: encrypted with a passphrase",
                path.display()
            )),
            loaded => loaded.map_err(|e| format!("SSH host key {}: {e}", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key()?;
            save(&key, path).map_err(|e| format!("SSH host key {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("SSH host key {}: {e}", path.display())),
    }
}

/// A new ed25519 key from the system's random source.
pub fn random_key() -> Result<PrivateKey, String> {
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| "no random source for the SSH host key".to_string())?;
    Ok(PrivateKey::from(Ed25519Keypair::from_seed(&seed)))
}

/// Writes `key` to a temporary file (owner-only) and renames it into
/// place, so a crash never leaves a half-written key.
fn save(key: &PrivateKey, path: &Path) -> std::io::Result<()> {
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(std::io::Error::other)?;
    let temporary = path.with_file_name(format!(".{FILE_NAME}.{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// The key's fingerprint as OpenSSH prints it: `ED25519 SHA256:<base64>`.
pub fn fingerprint(key: &PrivateKey) -> String {
    format!(
        "{} {}",
        key.algorithm()
            .as_str()
            .trim_start_matches("ssh-")
            .to_uppercase(),
        key.fingerprint(HashAlg::Sha256)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_saved_owner_only_and_reused() {
        let dir = std::env::temp_dir().join(format!("gh-hostkey-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = host_key_path(&dir.join("startup-config"));
        let first = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions();
        let second = load_or_create(&path).unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert_eq!(fingerprint(&first), fingerprint(&second));
        assert!(fingerprint(&first).starts_with("ED25519 SHA256:"));
    }

    /// Asserts that a key file holding `text` is an error and kept.
    fn refused_and_kept(dir: &str, text: &str) {
        let dir = std::env::temp_dir().join(format!("{dir}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        fs::write(&path, text).unwrap();
        let loaded = load_or_create(&path);
        let kept = fs::read_to_string(&path).unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert!(loaded.is_err());
        assert_eq!(kept, text);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_and_kept() {
        refused_and_kept("gh-badkey", "not a key");
    }

    #[test]
    fn an_encrypted_key_file_is_an_error_and_kept() {
        // `ssh-keygen -t ed25519 -N not-given`
        refused_and_kept("gh-enckey", ENCRYPTED_KEY);
    }

    const ENCRYPTED_KEY: &str = "\
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDU461W8F
nII6NZagNklmaVAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIGbnr6vTBLZmXCsf
UTz2VDZVNdDn+MhL/64R0dSr4uQAAAAAkDwzY1Z4WL07hanZgsuJ28oStx/PIxXutrIImx
p6uKQoYFrZsj3iMKmAgQgKsyxmoAtNpLd40r0dIF8NClJaHvhuHFjkHbCO5Vgr8y1VqIZ4
s1CLIH3/0x6RPX6m8TxLc0RvjYy4k8tunAq9vbIXMu+tZZXhVGAvgukDVlNO2SbcXJdkZq
GTKM/p9gCCcdwI9A==
-----END OPENSSH PRIVATE KEY-----
";
}
