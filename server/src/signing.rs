//! Webhook signatures as the Standard Webhooks scheme makes them: HMAC-SHA256
//! over `{webhook-id}.{webhook-timestamp}.{body}`, sent as
//! `webhook-signature: v1,<base64>`. A header may carry several signatures,
//! separated by spaces, so a receiver can rotate its secret: the sender signs
//! with every configured secret and the receiver accepts any one it knows.
//!
//! Standalone (no server state) so every webhook the server sends uses it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;

/// The prefix Standard Webhooks secrets are written with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Why a secret or a signature was refused. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("a webhook secret is `whsec_` followed by base64 (at least 16 bytes)")]
    BadSecret,
    #[error("no secret given")]
    NoSecret,
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the accepted window")]
    TooOldOrNew,
    #[error("no signature matches")]
    NoMatch,
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (the prefix may be left out).
    pub fn parse(text: &str) -> Result<WebhookSecret, SigningError> {
        let text = text.trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SigningError::BadSecret)?;
        if bytes.len() < 16 {
            return Err(SigningError::BadSecret);
        }
        Ok(WebhookSecret::from_bytes(&bytes))
    }

    /// Several secrets separated by whitespace (rotation: sign with all).
    pub fn parse_list(text: &str) -> Result<Vec<WebhookSecret>, SigningError> {
        let secrets = text
            .split_whitespace()
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err(SigningError::NoSecret);
        }
        Ok(secrets)
    }

    pub fn from_bytes(key: &[u8]) -> WebhookSecret {
        WebhookSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }
}

fn signed_content(id: &str, timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + body.len() + 24);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// The secrets of a config section that takes `secret` or `secret_file`
/// (exactly one); `section` names it in messages, which never hold a
/// secret.
pub fn load_secrets(
    section: &str,
    secret: Option<&str>,
    secret_file: Option<&std::path::Path>,
) -> Result<Vec<WebhookSecret>, String> {
    match (secret, secret_file) {
        (Some(_), Some(_)) => Err(format!("{section}: give secret or secret_file, not both")),
        (Some(secret), None) => {
            WebhookSecret::parse_list(secret).map_err(|e| format!("{section}.secret: {e}"))
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{section}.secret_file {}: {e}", path.display()))?;
            WebhookSecret::parse_list(&text)
                .map_err(|e| format!("{section}.secret_file {}: {e}", path.display()))
        }
        (None, None) => Err(format!("{section}: a secret or secret_file is required")),
    }
}

/// The `webhook-signature` header value: `v1,<base64>` for each secret,
/// separated by spaces.
pub fn sign(secrets: &[WebhookSecret], id: &str, timestamp: u64, body: &[u8]) -> String {
    let content = signed_content(id, timestamp, body);
    secrets
        .iter()
        .map(|secret| {
            let tag = hmac::sign(&secret.key, &content);
            format!("v1,{}", STANDARD.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a received webhook: its timestamp within `tolerance_secs` of
/// `now` (the replay window) and one of the header's `v1` signatures made by
/// one of `secrets`. Comparison is constant-time.
pub fn verify(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: u64,
    tolerance_secs: u64,
) -> Result<(), SigningError> {
    let timestamp: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SigningError::BadTimestamp)?;
    if timestamp.abs_diff(now) > tolerance_secs {
        return Err(SigningError::TooOldOrNew);
    }
    let content = signed_content(id, timestamp, body);
    for signature in signature_header.split_whitespace() {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            continue; // another scheme (v1a, asymmetric): not ours
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        if secrets
            .iter()
            .any(|secret| hmac::verify(&secret.key, &content, &tag).is_ok())
        {
            return Ok(());
        }
    }
    Err(SigningError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vectors below were computed outside this code, with Python:
    //   import hmac, hashlib, base64
    //   key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    //   msg = b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'
    //   base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest())
    // (the same secret, id, timestamp and body as the Standard Webhooks
    // specification's example, which gives the same signature).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: u64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // key = b"beckon-test-key-0123456789abcdef"
    // msg = b'msg_2.1700000000.{"type":"invitation.ring"}'
    const SECRET_2: &str = "whsec_YmVja29uLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmNkZWY=";
    const EXPECTED_2: &str = "v1,jAOfu3vcLMLqH6uRK/kmtQDjFWmEIBm2SQDnOPKNS9g=";

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::parse(text).unwrap()
    }

    #[test]
    fn signs_known_vectors() {
        assert_eq!(sign(&[secret(SECRET)], ID, TIMESTAMP, BODY), EXPECTED);
        let body = br#"{"type":"invitation.ring"}"#;
        assert_eq!(
            sign(&[secret(SECRET_2)], "msg_2", 1_700_000_000, body),
            EXPECTED_2
        );
    }

    #[test]
    fn several_secrets_give_several_signatures() {
        let both = sign(&[secret(SECRET), secret(SECRET_2)], ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], EXPECTED);
        // A receiver that only knows the second secret accepts the header.
        verify(
            &[secret(SECRET_2)],
            ID,
            &TIMESTAMP.to_string(),
            &both,
            BODY,
            TIMESTAMP,
            300,
        )
        .unwrap();
        assert_eq!(
            WebhookSecret::parse_list(&format!("{SECRET} {SECRET_2}"))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn verify_accepts_the_right_and_refuses_the_wrong() {
        let keys = [secret(SECRET)];
        let ts = TIMESTAMP.to_string();
        verify(&keys, ID, &ts, EXPECTED, BODY, TIMESTAMP + 10, 300).unwrap();
        // Among other schemes and a rotated-out signature.
        let header = format!("v1a,abc v1,AAAA {EXPECTED}");
        verify(&keys, ID, &ts, &header, BODY, TIMESTAMP, 300).unwrap();
        let refused = |id: &str, ts: &str, header: &str, body: &[u8], now: u64| {
            verify(&keys, id, ts, header, body, now, 300).unwrap_err()
        };
        assert_eq!(
            refused(ID, &ts, EXPECTED, b"{}", TIMESTAMP),
            SigningError::NoMatch
        );
        assert_eq!(
            refused("msg_x", &ts, EXPECTED, BODY, TIMESTAMP),
            SigningError::NoMatch
        );
        assert_eq!(
            refused(ID, &ts, EXPECTED, BODY, TIMESTAMP + 301),
            SigningError::TooOldOrNew
        );
        assert_eq!(
            refused(ID, "soon", EXPECTED, BODY, TIMESTAMP),
            SigningError::BadTimestamp
        );
        assert_eq!(
            refused(ID, &ts, "v1,%%%", BODY, TIMESTAMP),
            SigningError::NoMatch
        );
        let other = [secret(SECRET_2)];
        assert_eq!(
            verify(&other, ID, &ts, EXPECTED, BODY, TIMESTAMP, 300).unwrap_err(),
            SigningError::NoMatch
        );
    }

    #[test]
    fn bad_secrets_are_refused_without_showing_them() {
        assert_eq!(
            WebhookSecret::parse("whsec_!!").unwrap_err(),
            SigningError::BadSecret
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SigningError::BadSecret
        );
        assert_eq!(
            WebhookSecret::parse_list("  ").unwrap_err(),
            SigningError::NoSecret
        );
        assert_eq!(format!("{:?}", secret(SECRET)), "WebhookSecret(..)");
        // Without the prefix too.
        let bare = SECRET.trim_start_matches(SECRET_PREFIX);
        assert_eq!(sign(&[secret(bare)], ID, TIMESTAMP, BODY), EXPECTED);
    }
}
