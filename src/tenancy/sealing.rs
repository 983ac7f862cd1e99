//! Secrets at rest: a tenant's credentials are stored sealed with the
//! operator's key (`AGENTD_SECRET_KEY` or a key file), AES-256-GCM, each
//! bound to the row it belongs to (its id and tenant are the additional
//! data), so a sealed value copied into another tenant's row does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// The fewest characters a secret key may have.
pub const MIN_SECRET_KEY_CHARS: usize = 32;

/// The operator's key for sealing stored secrets.
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.fingerprint())
    }
}

/// What can go wrong sealing or opening a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The configured key is too short to be a key.
    #[error(
        "the secret key must have at least {MIN_SECRET_KEY_CHARS} characters (use e.g. `openssl rand -hex 32`)"
    )]
    WeakKey,
    /// The value was sealed with another key, for another row, or was altered.
    #[error(
        "a stored secret does not open with the configured secret key (another key sealed it, or it was altered)"
    )]
    WrongKey,
    /// The stored value is not a sealed value.
    #[error("a stored secret is malformed")]
    Malformed,
}

impl SecretKey {
    /// The key derived from the operator's text (at least 32 characters;
    /// surrounding whitespace, as a key file's newline, ignored).
    pub fn from_text(text: &str) -> Result<SecretKey, SealError> {
        let text = text.trim();
        if text.chars().count() < MIN_SECRET_KEY_CHARS {
            return Err(SealError::WeakKey);
        }
        let mut hasher = Sha256::new();
        hasher.update(b"agentd secret key v1\0");
        hasher.update(text.as_bytes());
        Ok(SecretKey {
            key: hasher.finalize().into(),
        })
    }

    /// A short public name of the key (not usable to recover it), stored
    /// beside each sealed value so a wrong key is told apart from damage.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest([b"agentd key fingerprint\0".as_slice(), &self.key].concat());
        hex::encode(&digest[..6])
    }

    /// Seals `plain` for the row named by `bound_to`: base64 of nonce and
    /// ciphertext.
    pub fn seal(&self, plain: &[u8], bound_to: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let mut data = plain.to_vec();
        self.cipher()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(bound_to.as_bytes()),
                &mut data,
            )
            .expect("sealing cannot fail for in-memory data");
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &data].concat())
    }

    /// Opens what [`SecretKey::seal`] sealed for the same row.
    pub fn open(&self, sealed: &str, bound_to: &str) -> Result<Vec<u8>, SealError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Malformed);
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut data = data.to_vec();
        let plain = self
            .cipher()
            .open_in_place(nonce, Aad::from(bound_to.as_bytes()), &mut data)
            .map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }

    fn cipher(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.key).expect("a 32-byte key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_for_its_row() {
        let key = SecretKey::from_text(TEXT).unwrap();
        let sealed = key.seal(b"ghp_token", "credential:1:acme");
        assert!(!sealed.contains("ghp_token"));
        assert_eq!(
            key.open(&sealed, "credential:1:acme").unwrap(),
            b"ghp_token"
        );
        assert_eq!(
            key.open(&sealed, "credential:1:other"),
            Err(SealError::WrongKey)
        );
        let other = SecretKey::from_text(&TEXT.replace('0', "1")).unwrap();
        assert_eq!(
            other.open(&sealed, "credential:1:acme"),
            Err(SealError::WrongKey)
        );
        assert_ne!(key.fingerprint(), other.fingerprint());
        assert_ne!(
            key.seal(b"x", "r"),
            key.seal(b"x", "r"),
            "a fresh nonce each time"
        );
        assert_eq!(key.open("not base64!", "r"), Err(SealError::Malformed));
        assert!(!format!("{key:?}").contains(TEXT));
    }

    #[test]
    fn a_short_key_is_refused() {
        assert_eq!(
            SecretKey::from_text("short").unwrap_err(),
            SealError::WeakKey
        );
        assert!(SecretKey::from_text(&format!("  {TEXT}\n")).is_ok());
    }
}
