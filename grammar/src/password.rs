//! Salted PBKDF2-HMAC-SHA256 password hashes (ring), so the configuration
//! never holds a clear-text secret.

use crate::config::PasswordHash;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};
use std::num::NonZeroU32;

const SCHEME: &str = "$pbkdf2-sha256$";
const ITERATIONS: u32 = 100_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = digest::SHA256_OUTPUT_LEN;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl PasswordHash {
    /// Hashes a clear-text password with a fresh random salt.
    pub fn from_clear(password: &str) -> Result<PasswordHash, String> {
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "% No randomness available for the salt".to_string())?;
        Ok(Self::with_salt(password, ITERATIONS, &salt))
    }

    fn with_salt(password: &str, iterations: u32, salt: &[u8]) -> PasswordHash {
        let mut hash = [0u8; HASH_LEN];
        let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            salt,
            password.as_bytes(),
            &mut hash,
        );
        PasswordHash(format!("{SCHEME}{iterations}${}${}", hex(salt), hex(&hash)))
    }

    /// Accepts text that is already a hash in our format (as written by the
    /// renderer), so a saved configuration loads back unchanged.
    pub fn parse(text: &str) -> Option<PasswordHash> {
        Self::parts(text).map(|_| PasswordHash(text.to_string()))
    }

    fn parts(text: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
        let mut fields = text.strip_prefix(SCHEME)?.split('$');
        let iterations = fields.next()?.parse().ok().filter(|&n| n > 0)?;
        let salt = unhex(fields.next()?)?;
        let hash = unhex(fields.next()?)?;
        (fields.next().is_none() && !salt.is_empty() && hash.len() == HASH_LEN)
            .then_some((iterations, salt, hash))
    }

    /// Whether `password` is the one this hash was made from.
    pub fn verify(&self, password: &str) -> bool {
        let Some((iterations, salt, hash)) = Self::parts(&self.0) else {
            return false;
        };
        let Some(rounds) = NonZeroU32::new(iterations) else {
            return false;
        };
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            &salt,
            password.as_bytes(),
            &hash,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify_only_the_right_password() {
        let a = PasswordHash::from_clear("s3cret").unwrap();
        let b = PasswordHash::from_clear("s3cret").unwrap();
        assert_ne!(a, b, "two hashes of one password differ by salt");
        assert!(!a.0.contains("s3cret"));
        assert!(a.verify("s3cret") && b.verify("s3cret"));
        assert!(!a.verify("s3cret "));
        assert_eq!(PasswordHash::parse(&a.0), Some(a));
    }

    #[test]
    fn only_well_formed_hashes_parse() {
        assert!(PasswordHash::parse("hunter2").is_none());
        assert!(PasswordHash::parse("$pbkdf2-sha256$0$00$00").is_none());
        assert!(PasswordHash::parse("$pbkdf2-sha256$10$zz$00").is_none());
    }
}
