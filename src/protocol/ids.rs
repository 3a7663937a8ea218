//! Identifiers: user ids, device ids and invitation ids, each checked once when it
//! enters (from C, from the wire) and cheap to clone afterwards (`Arc<str>`).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub(crate) const MAX_ID_BYTES: usize = 64;

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b':' | b'+' | b'-')
}

/// Checks the user/device id rule of docs/SEMANTICS.md: 1 to 64 bytes of
/// `[A-Za-z0-9_.@:+-]`.
/// `field` names the argument in the error message (e.g. `invitees[3]`).
fn check_id(value: &str, field: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{field}: must not be empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(Error::invalid(format!(
            "{field}: {} bytes, the limit is {MAX_ID_BYTES}",
            value.len()
        )));
    }
    if let Some(bad) = value.bytes().position(|b| !is_id_byte(b)) {
        return Err(Error::invalid(format!(
            "{field}: byte {bad} is outside [A-Za-z0-9_.@:+-]"
        )));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "Arc<str>")]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for Arc<str> {
            fn from(id: $name) -> Arc<str> {
                id.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                $name::parse(&value, stringify!($name))
            }
        }
    };
}

string_id!(
    /// A user id: 1 to 64 bytes of `[A-Za-z0-9_.@:+-]`.
    UserId
);
string_id!(
    /// A device id, same rule as a user id. One login per device id per user.
    DeviceId
);
/// An invitation id made by the hub: 128 bits as 32 lowercase hex digits.
///
/// It carries its low 64 bits as a number: the ids are random (or keyed
/// hashes), so that number is a ready-made hash and shard key, and the hub's
/// maps never hash the text (see [`IdHashBuilder`]).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "Arc<str>")]
pub struct InvitationId {
    text: Arc<str>,
    key: u64,
}

impl InvitationId {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for InvitationId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.text == other.text
    }
}

impl Eq for InvitationId {}

impl std::hash::Hash for InvitationId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.key);
    }
}

impl PartialOrd for InvitationId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InvitationId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl fmt::Debug for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<InvitationId> for Arc<str> {
    fn from(id: InvitationId) -> Arc<str> {
        id.text
    }
}

impl TryFrom<String> for InvitationId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        InvitationId::parse(&value, "invitation_id")
    }
}

/// Hashes an [`InvitationId`] as its precomputed key. Safe from flooding
/// because only the hub makes the ids stored in its maps; a caller can look up
/// a crafted id, but never insert one.
#[derive(Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by InvitationId; fold anything else in, FNV-style.
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

pub type IdHashBuilder = std::hash::BuildHasherDefault<IdHasher>;

impl UserId {
    pub fn parse(value: &str, field: &str) -> Result<UserId> {
        check_id(value, field)?;
        Ok(UserId(value.into()))
    }
}

impl DeviceId {
    pub fn parse(value: &str, field: &str) -> Result<DeviceId> {
        check_id(value, field)?;
        Ok(DeviceId(value.into()))
    }

    /// A fresh random device id, for clients that do not name their device.
    pub fn random() -> DeviceId {
        DeviceId(format!("dev-{:016x}", rand::random::<u64>()).into())
    }
}

impl InvitationId {
    pub(crate) const LEN: usize = 32;

    pub fn parse(value: &str, field: &str) -> Result<InvitationId> {
        if value.is_empty() {
            return Err(Error::invalid(format!("{field}: must not be empty")));
        }
        let well_formed = value.len() == Self::LEN
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(Error::invalid(format!(
                "{field}: not an invitation id (32 lowercase hex digits)"
            )));
        }
        // Well-formed, so the low 16 hex digits parse.
        let key = u64::from_str_radix(&value[Self::LEN - 16..], 16).unwrap_or(0);
        Ok(InvitationId {
            text: value.into(),
            key,
        })
    }

    /// Formats 128 bits (random, or a keyed hash for idempotent sends).
    pub fn from_bits(bits: u128) -> InvitationId {
        InvitationId {
            text: format!("{bits:032x}").into(),
            key: bits as u64,
        }
    }

    /// A cheap, well-spread number for choosing a shard: the low 64 bits.
    pub fn shard_key(&self) -> u64 {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_the_spec_rule() {
        assert!(UserId::parse("alice", "user_id").is_ok());
        assert!(UserId::parse("a.b_c@d:e+f-G9", "user_id").is_ok());
        assert!(UserId::parse(&"x".repeat(64), "user_id").is_ok());
        let long = UserId::parse(&"x".repeat(65), "user_id").unwrap_err();
        assert!(long.message.contains("user_id"), "{long}");
        assert!(UserId::parse("", "user_id").is_err());
        assert!(UserId::parse("bob smith", "invitees[1]")
            .unwrap_err()
            .message
            .starts_with("invitees[1]"));
        assert!(UserId::parse("é", "user_id").is_err());
    }

    #[test]
    fn invitation_ids_are_32_hex_digits() {
        let id = InvitationId::from_bits(0xabc);
        assert_eq!(id.as_str().len(), 32);
        assert!(InvitationId::parse(id.as_str(), "id").is_ok());
        assert!(InvitationId::parse("ABC", "id").is_err());
        assert!(InvitationId::parse(&"G".repeat(32), "id").is_err());
        assert_eq!(id.shard_key(), 0xabc);
    }

    #[test]
    fn parsed_and_made_ids_agree_on_equality_and_key() {
        let bits = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        let made = InvitationId::from_bits(bits);
        let parsed = InvitationId::parse(made.as_str(), "id").unwrap();
        assert_eq!(made, parsed);
        assert_eq!(parsed.shard_key(), bits as u64);
        let mut set: std::collections::HashSet<InvitationId, IdHashBuilder> = Default::default();
        set.insert(made);
        assert!(set.contains(&parsed));
        // Same low bits, different id: equal keys never make equal ids.
        let twin = InvitationId::from_bits(bits ^ (1 << 100));
        assert_eq!(twin.shard_key(), parsed.shard_key());
        assert_ne!(twin, parsed);
        assert!(!set.contains(&twin));
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        let ok: UserId = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(ok.as_str(), "bob");
        assert!(serde_json::from_str::<UserId>("\"b b\"").is_err());
    }
}
