//! The users element: `username NAME [privilege N] secret ...` and
//! `username NAME [privilege N] ssh-key TYPE BASE64 [COMMENT]` (the hash
//! and key checks are in `crate::password` and `crate::ssh_key`).

use crate::commands::{required, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::Config;
use crate::render::Block;
use crate::tree::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Keyed by user name.
pub type Users = BTreeMap<String, User>;

/// A user has a password, public keys, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// 1 = read-only (cannot enter config mode), 15 = full.
    pub privilege: u8,
    /// Salted PBKDF2 hash, never the clear-text password.
    pub secret: Option<PasswordHash>,
    /// Keys accepted for SSH public-key login.
    pub ssh_keys: BTreeSet<SshKey>,
}

/// One public key in OpenSSH authorized_keys form: `TYPE BASE64 [COMMENT]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SshKey {
    pub algorithm: String,
    pub base64: String,
    pub comment: Option<String>,
}

/// A salted PBKDF2-HMAC-SHA256 password hash, rendered as
/// `$pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHash(pub String);

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "username WORD$name [privilege <0-15>$level] secret LINE$secret",
        help: &[
            "Establish a user name",
            "User name",
            "Set the user's privilege level",
            "Privilege level (1 read-only, 15 full)",
            "Set the user's secret",
            "The secret (stored only as a salted hash)",
        ],
        handler: username,
    },
    CommandDef {
        mode: Mode::Global,
        syntax:
            "username WORD$name [privilege <0-15>$level] ssh-key WORD$type WORD$key [LINE$comment]",
        help: &[
            "Establish a user name",
            "User name",
            "Set the user's privilege level",
            "Privilege level (1 read-only, 15 full)",
            "Add a public key for SSH login",
            "Key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...)",
            "The key in base64, as in authorized_keys",
            "Comment (often user@host)",
        ],
        handler: username_ssh_key,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "users",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for (name, user) in config.users.iter() {
            let prefix = format!("username {name} privilege {}", user.privilege);
            if let Some(secret) = &user.secret {
                out.push(Block::line(format!("{prefix} secret {}", secret.0)));
            }
            for key in &user.ssh_keys {
                let comment = key
                    .comment
                    .as_deref()
                    .map_or(String::new(), |c| format!(" {c}"));
                out.push(Block::line(format!(
                    "{prefix} ssh-key {} {}{comment}",
                    key.algorithm, key.base64
                )));
            }
        }
    }

    fn unchanged(&self, _old: &Config, _new: &Config) -> bool {
        true // no checks
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let user = (
            "[a-z][a-z0-9]{0,7}",
            0u8..=15,
            proptest::option::of(("[0-9a-f]{32}", "[0-9a-f]{64}")),
            proptest::collection::vec(super::tests::ssh_key_line(), 0..2),
        );
        proptest::collection::vec(user, 0..3)
            .prop_map(|users| {
                let mut text = String::new();
                for (name, level, secret, keys) in users {
                    if secret.is_none() && keys.is_empty() {
                        continue;
                    }
                    if let Some((salt, hash)) = secret {
                        let hash = format!("$pbkdf2-sha256$1000${salt}${hash}");
                        text.push_str(&format!(
                            "username {name} privilege {level} secret {hash}\n"
                        ));
                    }
                    for key in keys {
                        text.push_str(&format!(
                            "username {name} privilege {level} ssh-key {key}\n"
                        ));
                    }
                }
                text
            })
            .boxed()
    }
}

fn users<'e>(edit: &'e mut Edit<'_>) -> &'e mut Users {
    Arc::make_mut(&mut edit.config.users)
}

fn username(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?;
    if edit.negated {
        if users(edit).remove(name).is_none() {
            return Err(format!("% User {name} does not exist"));
        }
        return Ok(());
    }
    let secret = required(edit.args, "secret")?;
    let secret = match PasswordHash::parse(secret) {
        Some(hash) => hash,
        None => PasswordHash::from_clear(secret)?,
    };
    let user = user_entry(edit, name);
    user.secret = Some(secret);
    Ok(())
}

/// The user `name`, created if new; the privilege is updated when given.
fn user_entry<'a>(edit: &'a mut Edit<'_>, name: &str) -> &'a mut User {
    let level = edit.args.number("level").map(|l| l as u8);
    let user = users(edit).entry(name.to_string()).or_insert_with(|| User {
        privilege: level.unwrap_or(15),
        secret: None,
        ssh_keys: BTreeSet::new(),
    });
    if let Some(level) = level {
        user.privilege = level;
    }
    user
}

fn username_ssh_key(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?;
    if edit.negated {
        let args = edit.args;
        return remove_ssh_keys(users(edit), name, args);
    }
    let key = SshKey::parse(
        required(edit.args, "type")?,
        required(edit.args, "key")?,
        edit.args.text("comment"),
    )?;
    let user = user_entry(edit, name);
    // A key typed again with another comment replaces the old entry.
    user.ssh_keys
        .retain(|k| !k.same_key(&key.algorithm, &key.base64));
    user.ssh_keys.insert(key);
    Ok(())
}

/// `no username NAME ssh-key [TYPE BASE64]`: one key, or all of them when
/// none is named. A user left with neither password nor key is removed.
fn remove_ssh_keys(users: &mut Users, name: &str, args: &Args) -> Result<(), String> {
    let user = users
        .get_mut(name)
        .ok_or_else(|| format!("% User {name} does not exist"))?;
    match (args.text("type"), args.text("key")) {
        (Some(algorithm), Some(base64)) => {
            let before = user.ssh_keys.len();
            user.ssh_keys.retain(|k| !k.same_key(algorithm, base64));
            if user.ssh_keys.len() == before {
                return Err(format!("% User {name} has no such key"));
            }
        }
        (Some(_), None) => return Err(INCOMPLETE.to_string()),
        (None, _) => user.ssh_keys.clear(),
    }
    if user.secret.is_none() && user.ssh_keys.is_empty() {
        users.remove(name);
    }
    Ok(())
}
