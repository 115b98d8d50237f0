//! Update credentials: generated random secrets, stored only as salted
//! SHA-256 hashes, compared in constant time.
//!
//! Why SHA-256 and not a password hash (argon2, bcrypt)? The secrets are
//! never chosen by people: [`generate_secret`] makes 32 random characters
//! from a 62-letter alphabet (about 190 bits). Guessing such a secret from its
//! hash is out of reach whatever the hash speed, so a slow hash would buy no
//! security; it would only cost tens of milliseconds of CPU on every update
//! and hand anyone who can send requests a cheap way to load the server.
//! User-chosen passwords are deliberately not supported: a router stores the
//! secret, nobody has to remember it.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Prefix of the stored form: `sha256:<salt hex>:<hash hex>`.
pub const SCHEME: &str = "sha256";
/// Length of generated secrets in characters.
pub const SECRET_LEN: usize = 32;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why a stored credential string is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    /// Not of the form `sha256:<32 hex>:<64 hex>`.
    #[error(
        "credential must look like \"sha256:<32 hex digits>:<64 hex digits>\" (make one with `dyndns-applier new-credential`), got {0:?}"
    )]
    Malformed(String),
    /// Another scheme, e.g. a plain password or a bcrypt hash.
    #[error(
        "credential scheme {0:?} is not supported; only \"sha256\" hashes of generated secrets are"
    )]
    UnknownScheme(String),
}

/// A stored credential: salt and SHA-256(salt || secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    salt: [u8; SALT_LEN],
    hash: [u8; 32],
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({SCHEME}:{}:...)", hex::encode(self.salt))
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}:{}:{}",
            hex::encode(self.salt),
            hex::encode(self.hash)
        )
    }
}

impl Credential {
    /// Parses the stored form.
    pub fn parse(stored: &str) -> Result<Self, CredentialError> {
        let malformed = || CredentialError::Malformed(stored.chars().take(80).collect());
        let mut parts = stored.split(':');
        let scheme = parts.next().unwrap_or_default();
        if scheme != SCHEME {
            let shown = if scheme.len() > 20 || stored.split(':').count() == 1 {
                "<not a hash>".to_string()
            } else {
                scheme.to_string()
            };
            return Err(CredentialError::UnknownScheme(shown));
        }
        let (Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed());
        };
        let mut out = Credential {
            salt: [0; SALT_LEN],
            hash: [0; 32],
        };
        hex::decode_to_slice(salt, &mut out.salt).map_err(|_| malformed())?;
        hex::decode_to_slice(hash, &mut out.hash).map_err(|_| malformed())?;
        Ok(out)
    }

    /// Hashes `secret` with `salt`.
    pub fn derive(secret: &str, salt: [u8; SALT_LEN]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(secret.as_bytes());
        Credential {
            salt,
            hash: hasher.finalize().into(),
        }
    }

    /// True when `secret` matches; the comparison takes the same time
    /// whatever the secret.
    pub fn verify(&self, secret: &str) -> bool {
        let candidate = Credential::derive(secret, self.salt);
        bool::from(candidate.hash.ct_eq(&self.hash))
    }

    /// A credential no secret matches in practice, verified against when the
    /// user does not exist so that both cases cost the same.
    pub fn dummy() -> Self {
        Credential {
            salt: [0x5a; SALT_LEN],
            hash: [0; 32],
        }
    }
}

/// Makes a secret of [`SECRET_LEN`] letters and digits from a source of
/// random bytes (rejection sampling keeps every character equally likely).
pub fn generate_secret(mut random_bytes: impl FnMut(&mut [u8])) -> String {
    let mut secret = String::with_capacity(SECRET_LEN);
    let mut buf = [0u8; 64];
    while secret.len() < SECRET_LEN {
        random_bytes(&mut buf);
        for &b in &buf {
            // 248 = 4 * 62: bytes above would bias the first letters.
            if b < 248 && secret.len() < SECRET_LEN {
                secret.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_verify_round_trip() {
        let c = Credential::derive("correct horse", [7; SALT_LEN]);
        assert!(c.verify("correct horse"));
        assert!(!c.verify("correct horsf"));
        assert!(!c.verify(""));
        let stored = c.to_string();
        assert!(stored.starts_with("sha256:0707"));
        assert_eq!(Credential::parse(&stored).unwrap(), c);
    }

    #[test]
    fn salt_changes_hash() {
        let a = Credential::derive("x", [1; SALT_LEN]);
        let b = Credential::derive("x", [2; SALT_LEN]);
        assert_ne!(a.to_string(), b.to_string());
    }

    #[test]
    fn known_vector() {
        // sha256(16 zero bytes || "secret")
        let c = Credential::derive("secret", [0; SALT_LEN]);
        let mut h = Sha256::new();
        h.update([0u8; 16]);
        h.update(b"secret");
        assert_eq!(
            c.to_string().rsplit(':').next().unwrap(),
            hex::encode(h.finalize())
        );
    }

    #[test]
    fn parse_errors() {
        assert!(
            matches!(Credential::parse("hunter2"), Err(CredentialError::UnknownScheme(s)) if s == "<not a hash>")
        );
        assert!(matches!(
            Credential::parse("$2b$12$abc"),
            Err(CredentialError::UnknownScheme(_))
        ));
        assert!(matches!(
            Credential::parse("sha256:00:11"),
            Err(CredentialError::Malformed(_))
        ));
        assert!(matches!(
            Credential::parse("sha256:zz"),
            Err(CredentialError::Malformed(_))
        ));
        let good = Credential::derive("x", [0; SALT_LEN]).to_string();
        assert!(matches!(
            Credential::parse(&format!("{good}:extra")),
            Err(CredentialError::Malformed(_))
        ));
    }

    #[test]
    fn dummy_rejects() {
        assert!(!Credential::dummy().verify(""));
        assert!(!Credential::dummy().verify("anything"));
    }

    #[test]
    fn generated_secrets() {
        let mut counter = 0u8;
        let s = generate_secret(|buf| {
            for b in buf.iter_mut() {
                *b = counter;
                counter = counter.wrapping_add(1);
            }
        });
        assert_eq!(s.len(), SECRET_LEN);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        // bytes >= 248 are skipped, so an all-0xff source never yields a letter
        // until it changes; a source of 247s yields the same letter each time
        let s = generate_secret(|buf| buf.fill(247));
        assert_eq!(s, "9".repeat(SECRET_LEN));
    }
}
