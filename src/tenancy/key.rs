//! Tenant API keys: 256 random bits behind a recognisable prefix (so secret
//! scanners find leaked ones), shown once when issued, stored only as a hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const KEY_PREFIX: &str = "agentd_";

/// Random bytes in a key: 32 (256 bits).
const KEY_BYTES: usize = 32;

/// Characters of a key shown in listings (the prefix and a few more).
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 8;

/// A key as stored and listed: never its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key's id (a UUID v7).
    pub id: String,
    /// The tenant it acts for.
    pub tenant_id: String,
    /// Its first characters, to tell keys apart (`agentd_Xk3p…`).
    pub prefix: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (recorded at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// True when the key may be used at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now < expires)
    }
}

/// A freshly issued key: its text (shown once) and what is stored of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The key to give to the tenant: `agentd_` and 43 base64url characters.
    pub text: String,
    /// Its SHA-256, hex: the only trace of the text that is kept.
    pub hash: String,
    /// Its first characters.
    pub prefix: String,
}

/// Issues a new key from the operating system's random source.
pub fn issue_key() -> IssuedKey {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let text = format!("{KEY_PREFIX}{}", base64url(&bytes));
    IssuedKey {
        hash: hash_key(&text),
        prefix: text[..SHOWN_CHARS].to_string(),
        text,
    }
}

/// The stored form of a key's text.
pub fn hash_key(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// True when `text` has the shape of a key (prefix, length, alphabet); a
/// cheap check before any lookup.
pub fn looks_like_key(text: &str) -> bool {
    text.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_prefixed_and_stored_as_hashes() {
        let a = issue_key();
        let b = issue_key();
        assert_ne!(a.text, b.text);
        assert!(a.text.starts_with("agentd_"));
        assert_eq!(a.text.len(), 7 + 43);
        assert!(looks_like_key(&a.text));
        assert_eq!(a.hash, hash_key(&a.text));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.text[7..]));
        assert!(a.text.starts_with(&a.prefix) && a.prefix.len() == 15);
        for bad in [
            "",
            "agentd_",
            "agentd_short",
            "Bearer agentd_x",
            &format!("xgentd_{}", &a.text[7..]),
        ] {
            assert!(!looks_like_key(bad), "{bad}");
        }
    }

    #[test]
    fn expiry_and_revocation_end_a_key() {
        let now = Utc::now();
        let key = ApiKey {
            id: "k".into(),
            tenant_id: "t".into(),
            prefix: "agentd_x".into(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        assert!(key.is_usable(now));
        let expired = ApiKey {
            expires_at: Some(now),
            ..key.clone()
        };
        assert!(!expired.is_usable(now));
        let revoked = ApiKey {
            revoked_at: Some(now),
            ..key
        };
        assert!(!revoked.is_usable(now));
    }
}
