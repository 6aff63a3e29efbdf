//! Public keys of `username NAME ssh-key TYPE BASE64 [COMMENT]`, in the
//! OpenSSH authorized_keys form, checked so that a typo is refused when
//! typed rather than silently never matching at login.

use crate::config::SshKey;

/// Key types OpenSSH clients offer for user authentication.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

impl SshKey {
    /// Checks that `base64` decodes to a key blob of type `algorithm`.
    pub fn parse(algorithm: &str, base64: &str, comment: Option<&str>) -> Result<SshKey, String> {
        if !KEY_TYPES.contains(&algorithm) {
            return Err(format!(
                "% Unsupported key type {algorithm} (expected one of {})",
                KEY_TYPES.join(", ")
            ));
        }
        let blob =
            decode_base64(base64).ok_or_else(|| "% The key is not valid base64".to_string())?;
        if blob_type(&blob) != Some(algorithm) {
            return Err(format!("% The key is not a well-formed {algorithm} key"));
        }
        Ok(SshKey {
            algorithm: algorithm.to_string(),
            base64: base64.to_string(),
            comment: comment.map(str::to_string),
        })
    }

    /// The key blob as SSH puts it on the wire (what a client offers).
    pub fn blob(&self) -> Option<Vec<u8>> {
        decode_base64(&self.base64)
    }

    /// The same key, whatever the comment.
    pub fn same_key(&self, algorithm: &str, base64: &str) -> bool {
        self.algorithm == algorithm && self.base64 == base64
    }
}

/// The type named in a key blob, if the blob is a sequence of SSH strings
/// (u32 length + bytes) that ends exactly at its end.
fn blob_type(blob: &[u8]) -> Option<&str> {
    let mut rest = blob;
    let mut first = None;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        let (field, tail) = (tail.get(..len)?, tail.get(len..)?);
        first.get_or_insert(field);
        rest = tail;
    }
    std::str::from_utf8(first?).ok()
}

/// Standard base64 with the padding OpenSSH writes; `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64ct::Encoding;
    base64ct::Base64::decode_vec(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDSMDafHdxbQG4k09b/vKCVbGmVRGNYVty/R38Xyr3UK";

    #[test]
    fn an_openssh_key_parses_and_decodes_to_its_blob() {
        let key = SshKey::parse("ssh-ed25519", ED25519, Some("me@host")).unwrap();
        let blob = key.blob().unwrap();
        assert_eq!(blob.len(), 4 + 11 + 4 + 32);
        assert_eq!(&blob[4..15], b"ssh-ed25519");
    }

    #[test]
    fn bad_base64_wrong_type_and_truncated_keys_are_refused() {
        let bad = SshKey::parse("ssh-ed25519", "AAAA!!!!", None).unwrap_err();
        assert!(bad.contains("base64"), "{bad}");
        let wrong = SshKey::parse("ssh-rsa", ED25519, None).unwrap_err();
        assert!(wrong.contains("well-formed ssh-rsa"), "{wrong}");
        let truncated = &ED25519[..ED25519.len() - 4];
        assert!(SshKey::parse("ssh-ed25519", truncated, None).is_err());
        assert!(SshKey::parse("ssh-dss", ED25519, None).is_err());
    }

    #[test]
    fn base64_decodes_padded_text() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ==").unwrap(), b"M");
        assert!(decode_base64("TQ=").is_none());
        assert!(decode_base64("T===").is_none());
    }
}
