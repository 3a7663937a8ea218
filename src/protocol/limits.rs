//! The size and count limits of docs/SEMANTICS.md, shared by the client (to
//! fail fast, before anything is sent) and the hub (which is the authority).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};

/// Limits a hub enforces. `Limits::default()` is the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Distinct invitees per invitation: default 32, at most 1000.
    pub max_invitees: usize,
    pub max_timeout_secs: u32,
    pub max_extended_data: usize,
    pub max_title: usize,
    pub max_message: usize,
    pub max_resource_id: usize,
    pub max_payload: usize,
    /// Devices one user may have logged in at once.
    pub max_devices: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_invitees: 32,
            max_timeout_secs: 600,
            max_extended_data: 8 * 1024,
            max_title: 256,
            max_message: 1024,
            max_resource_id: 64,
            max_payload: 4 * 1024,
            max_devices: 10,
        }
    }
}

impl Limits {
    /// The hard ceiling for `max_invitees` a hub may be configured with.
    pub(crate) const INVITEES_CEILING: usize = 1000;

    pub fn check_timeout(&self, timeout_secs: u32) -> Result<()> {
        if timeout_secs == 0 || timeout_secs > self.max_timeout_secs {
            return Err(Error::invalid(format!(
                "config.timeout_seconds: {timeout_secs} s is outside 1..={} s",
                self.max_timeout_secs
            )));
        }
        Ok(())
    }

    /// Text fields: at most `limit` bytes, and no NUL (so every string the library
    /// hands to C is a complete C string).
    pub fn check_text(field: &str, value: &str, limit: usize) -> Result<()> {
        if value.len() > limit {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("{field}: {} bytes, the limit is {limit}", value.len()),
            ));
        }
        if value.contains('\0') {
            return Err(Error::invalid(format!("{field}: contains a NUL character")));
        }
        Ok(())
    }

    /// An upper bound on the encoded size of any valid request frame under
    /// these limits (a `send` with every field full, each text byte escaped to
    /// six in JSON): a server's frame limit must be at least this, and a
    /// client refuses a request over the server's limit before sending it.
    pub fn largest_request_bytes(&self) -> usize {
        /// Frame type, request id, field names, the idempotency key, escaped.
        const ENVELOPE: usize = 1024;
        /// A quoted id and its comma; ids need no escaping.
        const PER_INVITEE: usize = super::ids::MAX_ID_BYTES + 3;
        const ESCAPED: usize = 6;
        let texts = self.max_extended_data
            + self.max_title
            + self.max_message
            + self.max_resource_id
            + self.max_payload;
        ENVELOPE + self.max_invitees * PER_INVITEE + texts * ESCAPED
    }

    pub fn check_extended_data(&self, field: &str, value: &str) -> Result<()> {
        Self::check_text(field, value, self.max_extended_data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::ClientFrame;
    use crate::protocol::{Notification, SendInvitation, Text, UserId};

    #[test]
    fn the_largest_send_fits_the_bound() {
        let limits = Limits::default();
        let invitees = (0..limits.max_invitees)
            .map(|i| UserId::parse(&format!("{i:0>64}"), "u").unwrap())
            .collect();
        let mut request = SendInvitation::new(invitees, limits.max_timeout_secs);
        // Control characters: the worst case of JSON escaping.
        request.extended_data = Text::from("\u{1}".repeat(limits.max_extended_data));
        request.notification = Some(Notification {
            title: Text::from("\u{1}".repeat(limits.max_title)),
            message: Text::from("\u{1}".repeat(limits.max_message)),
            resource_id: Text::from("\u{1}".repeat(limits.max_resource_id)),
            payload: Text::from("\u{1}".repeat(limits.max_payload)),
        });
        request.idempotency_key = Some(Text::from("\u{1}".repeat(64)));
        let frame = ClientFrame::Send {
            id: u64::MAX,
            request,
        };
        let encoded = serde_json::to_string(&frame).unwrap();
        assert!(
            encoded.len() <= limits.largest_request_bytes(),
            "{} > {}",
            encoded.len(),
            limits.largest_request_bytes()
        );
    }
}
