//! The upgrade artifact the image builder writes beside the disk image and
//! `install image` reads: one file, so a download cannot pair a kernel with
//! another build's initramfs or signature.
//!
//! ```text
//! GATEHOUSE-IMAGE 1\n                 magic and format version
//! release 0.2.0\n                     what `show version` will say
//! cmdline console=ttyS0 quiet ...\n   the kernel command line of its entry
//! kernel 14155776\n                   byte counts of the two parts
//! initramfs 3984588\n
//! \n
//! <kernel> <initramfs>
//! <SHA-256 of all bytes above: 32> <ed25519 signature of that digest: 64>
//! ```
//! The digest proves the file whole; the signature proves who built it.

use ring::digest::{digest, SHA256, SHA256_OUTPUT_LEN};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519, ED25519_PUBLIC_KEY_LEN};
use std::fmt;

const MAGIC: &str = "GATEHOUSE-IMAGE 1\n";
const SIGNATURE_LEN: usize = 64;
const TRAILER_LEN: usize = SHA256_OUTPUT_LEN + SIGNATURE_LEN;
/// Bounds on the header's text fields (they end up in boot entries).
const MAX_RELEASE: usize = 64;
const MAX_CMDLINE: usize = 1024;

/// An image's parts, borrowed from the artifact's bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Artifact<'a> {
    pub release: &'a str,
    pub cmdline: &'a str,
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
}

/// An artifact that passed `open`, with the SHA-256 it was sealed with.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub image: Artifact<'a>,
    pub sha256: &'a [u8],
}

/// Whether `open` insists on a trusted signature (the development override
/// still checks the digest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    Required,
    Skipped,
}

/// Why an artifact was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not an artifact, or its header does not add up.
    Malformed(String),
    /// The bytes differ from what was sealed (damaged or tampered with).
    DigestMismatch,
    /// Whole, but not signed by the trusted key.
    Untrusted,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(why) => write!(f, "not a Gatehouse image: {why}"),
            Refusal::DigestMismatch => {
                f.write_str("the image is damaged or was altered (SHA-256 mismatch)")
            }
            Refusal::Untrusted => f.write_str("the image is not signed by a trusted key"),
        }
    }
}

/// Writes the artifact of `parts`, signed with an ed25519 key in PKCS#8.
pub fn seal(parts: &Artifact, signing_key_pkcs8: &[u8]) -> Result<Vec<u8>, String> {
    check_field("release", parts.release, MAX_RELEASE).map_err(|r| r.to_string())?;
    check_field("cmdline", parts.cmdline, MAX_CMDLINE).map_err(|r| r.to_string())?;
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(signing_key_pkcs8)
        .map_err(|e| format!("the signing key is not an ed25519 PKCS#8 key: {e}"))?;
    let mut bytes = format!(
        "{MAGIC}release {}\ncmdline {}\nkernel {}\ninitramfs {}\n\n",
        parts.release,
        parts.cmdline,
        parts.kernel.len(),
        parts.initramfs.len()
    )
    .into_bytes();
    bytes.extend_from_slice(parts.kernel);
    bytes.extend_from_slice(parts.initramfs);
    let sealed = digest(&SHA256, &bytes);
    bytes.extend_from_slice(sealed.as_ref());
    bytes.extend_from_slice(key.sign(sealed.as_ref()).as_ref());
    Ok(bytes)
}

/// The public half of a PKCS#8 signing key (what images trust).
pub fn public_key(signing_key_pkcs8: &[u8]) -> Result<[u8; ED25519_PUBLIC_KEY_LEN], String> {
    use ring::signature::KeyPair;
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(signing_key_pkcs8)
        .map_err(|e| format!("not an ed25519 PKCS#8 key: {e}"))?;
    let mut public = [0; ED25519_PUBLIC_KEY_LEN];
    public.copy_from_slice(key.public_key().as_ref());
    Ok(public)
}

/// Checks `bytes` whole and (unless skipped) signed by `trusted_key`, and
/// returns its parts. Nothing is trusted before the digest matches.
pub fn open<'a>(
    bytes: &'a [u8],
    trusted_key: &[u8],
    check: SignatureCheck,
) -> Result<Opened<'a>, Refusal> {
    let malformed = |why: &str| Refusal::Malformed(why.to_string());
    let body_len = bytes
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or_else(|| malformed("too short"))?;
    let (body, trailer) = bytes.split_at(body_len);
    let (sealed, signature) = trailer.split_at(SHA256_OUTPUT_LEN);
    if !body.starts_with(MAGIC.as_bytes()) {
        return Err(malformed("no GATEHOUSE-IMAGE header"));
    }
    if digest(&SHA256, body).as_ref() != sealed {
        return Err(Refusal::DigestMismatch);
    }
    if check == SignatureCheck::Required
        && UnparsedPublicKey::new(&ED25519, trusted_key)
            .verify(sealed, signature)
            .is_err()
    {
        return Err(Refusal::Untrusted);
    }
    Ok(Opened {
        image: parse(body)?,
        sha256: sealed,
    })
}

/// The header's fields and the two parts; the lengths must fill the body.
fn parse(body: &[u8]) -> Result<Artifact<'_>, Refusal> {
    let malformed = |why: &str| Refusal::Malformed(why.to_string());
    let end = body
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .ok_or_else(|| malformed("the header does not end"))?;
    let header =
        std::str::from_utf8(&body[MAGIC.len()..=end]).map_err(|_| malformed("header not text"))?;
    let field = |name: &str| {
        header
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .ok_or_else(|| Refusal::Malformed(format!("no {name} in the header")))
    };
    let size = |name: &str| {
        field(name)?
            .parse::<usize>()
            .map_err(|_| Refusal::Malformed(format!("bad {name} size")))
    };
    let release = field("release")?;
    let cmdline = field("cmdline")?;
    check_field("release", release, MAX_RELEASE)?;
    check_field("cmdline", cmdline, MAX_CMDLINE)?;
    let parts = &body[end + 2..];
    let kernel_len = size("kernel")?;
    let initramfs_len = size("initramfs")?;
    if kernel_len.checked_add(initramfs_len) != Some(parts.len()) {
        return Err(malformed("the part sizes do not match the file"));
    }
    let (kernel, initramfs) = parts.split_at(kernel_len);
    Ok(Artifact {
        release,
        cmdline,
        kernel,
        initramfs,
    })
}

fn check_field(name: &str, value: &str, max: usize) -> Result<(), Refusal> {
    let printable = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if value.is_empty() || value.len() > max || !printable {
        return Err(Refusal::Malformed(format!(
            "{name} must be 1-{max} printable characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> Vec<u8> {
        let random = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&random)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn parts() -> Artifact<'static> {
        Artifact {
            release: "0.2.0-test",
            cmdline: "console=ttyS0 quiet",
            kernel: b"kernel bytes",
            initramfs: b"initramfs bytes\n\n",
        }
    }

    #[test]
    fn a_sealed_image_opens_with_its_key_only() {
        let key = key();
        let trusted = public_key(&key).unwrap();
        let bytes = seal(&parts(), &key).unwrap();
        let opened = open(&bytes, &trusted, SignatureCheck::Required).unwrap();
        assert_eq!(opened.image, parts());
        assert_eq!(opened.sha256, &bytes[bytes.len() - TRAILER_LEN..][..32]);

        let stranger = public_key(&self::key()).unwrap();
        assert_eq!(
            open(&bytes, &stranger, SignatureCheck::Required),
            Err(Refusal::Untrusted)
        );
        assert_eq!(
            open(&bytes, &stranger, SignatureCheck::Skipped).map(|o| o.image),
            Ok(parts())
        );
    }

    #[test]
    fn any_changed_byte_is_refused_even_unsigned() {
        let key = key();
        let trusted = public_key(&key).unwrap();
        let bytes = seal(&parts(), &key).unwrap();
        for at in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[at] ^= 0x20;
            let opened = open(&tampered, &trusted, SignatureCheck::Required);
            assert!(opened.is_err(), "byte {at} changed and still accepted");
            if at < bytes.len() - SIGNATURE_LEN {
                assert!(open(&tampered, &trusted, SignatureCheck::Skipped).is_err());
            }
        }
        assert!(open(&bytes[..bytes.len() - 1], &trusted, SignatureCheck::Skipped).is_err());
    }

    #[test]
    fn header_fields_are_bounded_and_printable() {
        let key = key();
        for release in ["", "two\nlines", &"x".repeat(65)] {
            let bad = Artifact { release, ..parts() };
            assert!(seal(&bad, &key).is_err(), "{release:?}");
        }
        assert!(seal(&parts(), b"not a key").is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let trusted = [7u8; 32];
            let _ = open(&bytes, &trusted, SignatureCheck::Skipped);
            let mut framed = MAGIC.as_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            let sealed = digest(&SHA256, &framed);
            framed.extend_from_slice(sealed.as_ref());
            framed.extend_from_slice(&[0; SIGNATURE_LEN]);
            let _ = open(&framed, &trusted, SignatureCheck::Skipped);
        }
    }
}
