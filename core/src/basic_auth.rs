//! Reading HTTP Basic credentials from an `Authorization` header.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use thiserror::Error;

/// Longest `Authorization` header value we look at.
pub const MAX_HEADER_LEN: usize = 1024;

/// Standard alphabet, padding optional (some clients drop it).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an `Authorization` header does not hold usable Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BasicAuthError {
    /// The header is longer than [`MAX_HEADER_LEN`].
    #[error("Authorization header is too long")]
    TooLong,
    /// Another scheme than `Basic`.
    #[error("Authorization scheme is not Basic")]
    NotBasic,
    /// The token is not base64.
    #[error("Basic credentials are not valid base64")]
    BadBase64,
    /// The decoded token is not UTF-8.
    #[error("Basic credentials are not UTF-8")]
    NotUtf8,
    /// No `:` between user and secret.
    #[error("Basic credentials have no ':' separator")]
    NoSeparator,
}

/// A user name and secret as the client sent them.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user name (everything before the first `:`).
    pub user: String,
    /// The secret (everything after the first `:`).
    pub secret: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Parses an `Authorization` header value (`Basic dXNlcjpzZWNyZXQ=`).
pub fn parse_basic_auth(header: &[u8]) -> Result<BasicCredentials, BasicAuthError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(BasicAuthError::TooLong);
    }
    let text = std::str::from_utf8(header).map_err(|_| BasicAuthError::NotBasic)?;
    let text = text.trim();
    let (scheme, token) = text.split_once(' ').ok_or(BasicAuthError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicAuthError::NotBasic);
    }
    let decoded = LENIENT
        .decode(token.trim())
        .map_err(|_| BasicAuthError::BadBase64)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicAuthError::NotUtf8)?;
    let (user, secret) = decoded.split_once(':').ok_or(BasicAuthError::NoSeparator)?;
    Ok(BasicCredentials {
        user: user.to_string(),
        secret: secret.to_string(),
    })
}

/// Encodes credentials as a header value (used by tests and tools).
pub fn encode_basic_auth(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let header = encode_basic_auth("alice", "s3cret:with:colons");
        let creds = parse_basic_auth(header.as_bytes()).unwrap();
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.secret, "s3cret:with:colons");
        assert!(
            !format!("{creds:?}").contains("s3cret"),
            "Debug must not leak the secret"
        );
    }

    #[test]
    fn lenient_about_case_and_padding() {
        // "a:b" = YTpi ; "ab:c" = YWI6Yw== ; without padding too
        assert_eq!(parse_basic_auth(b"basic YTpi").unwrap().user, "a");
        assert_eq!(parse_basic_auth(b"BASIC YWI6Yw==").unwrap().secret, "c");
        assert_eq!(parse_basic_auth(b"Basic YWI6Yw").unwrap().secret, "c");
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_basic_auth(b"Bearer abc"),
            Err(BasicAuthError::NotBasic)
        );
        assert_eq!(parse_basic_auth(b"Basic"), Err(BasicAuthError::NotBasic));
        assert_eq!(
            parse_basic_auth(b"Basic !!!"),
            Err(BasicAuthError::BadBase64)
        );
        assert_eq!(
            parse_basic_auth(b"Basic //79"),
            Err(BasicAuthError::NotUtf8)
        );
        assert_eq!(
            parse_basic_auth(b"Basic YWJj"),
            Err(BasicAuthError::NoSeparator)
        );
        assert_eq!(
            parse_basic_auth(&[0xff, 0xfe]),
            Err(BasicAuthError::NotBasic)
        );
        let long = format!("Basic {}", "A".repeat(MAX_HEADER_LEN));
        assert_eq!(
            parse_basic_auth(long.as_bytes()),
            Err(BasicAuthError::TooLong)
        );
    }
}
