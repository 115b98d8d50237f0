//! The `Authorization` header value, raw bytes as the runtime hands them
//! over, into [`parse_basic_auth`].

use dyndns_core::basic_auth::{MAX_HEADER_LEN, encode_basic_auth, parse_basic_auth};

/// Parses `data` as a header value; accepted credentials must survive
/// encoding and parsing again unchanged.
pub fn check(data: &[u8]) {
    let Ok(creds) = parse_basic_auth(data) else {
        return;
    };
    assert!(data.len() <= MAX_HEADER_LEN);
    assert!(!creds.user.contains(':'), "the user ends at the first ':'");
    let again = encode_basic_auth(&creds.user, &creds.secret);
    if again.len() <= MAX_HEADER_LEN {
        assert_eq!(
            parse_basic_auth(again.as_bytes()).ok(),
            Some(creds),
            "re-encoded credentials parse differently"
        );
    }
}
