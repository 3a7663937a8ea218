//! Login tokens: `v1.<expiry>.<mac>`, where `expiry` is a Unix time in seconds and
//! `mac` is the lowercase hex HMAC-SHA256, keyed with the hub's secret, of
//! `"beckon-token-v1\n" + user_id + "\n" + expiry`. An app's backend mints the same
//! tokens with any HMAC library (recipe in docs/C_API.md).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::UserId;

type HmacSha256 = Hmac<Sha256>;

fn mac_for(secret: &[u8], user: &str, expiry: u64) -> HmacSha256 {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(b"beckon-token-v1\n");
    mac.update(user.as_bytes());
    mac.update(b"\n");
    mac.update(expiry.to_string().as_bytes());
    mac
}

/// Mints a token for `user` that expires at `expiry` (Unix seconds).
pub fn mint(secret: &[u8], user: &UserId, expiry: u64) -> String {
    let tag = mac_for(secret, user.as_str(), expiry)
        .finalize()
        .into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in tag {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("v1.{expiry}.{hex}")
}

/// Checks `token` for `user` at time `now` (Unix seconds) and returns its expiry.
/// The MAC is compared in constant time; it is checked before the expiry so that a
/// forged token never learns whether its expiry would have passed.
pub fn verify(secret: &[u8], user: &UserId, token: &str, now: u64) -> Result<u64> {
    let bad = || Error::new(ErrorCode::AuthFailed, "token: not valid for this user");
    let mut parts = token.splitn(3, '.');
    let (Some("v1"), Some(expiry), Some(tag_hex)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let expiry: u64 = expiry.parse().map_err(|_| bad())?;
    let tag = decode_hex(tag_hex).ok_or_else(bad)?;
    mac_for(secret, user.as_str(), expiry)
        .verify_slice(&tag)
        .map_err(|_| bad())?;
    if expiry <= now {
        return Err(Error::new(
            ErrorCode::TokenExpired,
            format!("token: expired {} s ago", now - expiry),
        ));
    }
    Ok(expiry)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_for_their_user_until_expiry() {
        let alice = UserId::parse("alice", "u").unwrap();
        let bob = UserId::parse("bob", "u").unwrap();
        let token = mint(b"s3cret", &alice, 1_000);
        assert_eq!(verify(b"s3cret", &alice, &token, 999), Ok(1_000));
        assert_eq!(
            verify(b"s3cret", &alice, &token, 1_000).unwrap_err().code,
            ErrorCode::TokenExpired
        );
        assert_eq!(
            verify(b"s3cret", &bob, &token, 10).unwrap_err().code,
            ErrorCode::AuthFailed
        );
        assert_eq!(
            verify(b"other", &alice, &token, 10).unwrap_err().code,
            ErrorCode::AuthFailed
        );
        for junk in ["", "v1", "v1.x.y", "v2.1.00", "v1.1.zz", "v1.1.0"] {
            assert_eq!(
                verify(b"s3cret", &alice, junk, 0).unwrap_err().code,
                ErrorCode::AuthFailed
            );
        }
    }
}
