//! How a hub is configured: its limits, retention, secret and quota, and the
//! bounds a configuration must keep.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::Limits;

/// How a hub behaves; `HubConfig::default()` is the documented defaults.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub limits: Limits,
    /// How long an ended invitation is remembered for precise late errors.
    pub retention: Duration,
    /// When set, logins need a token minted from this secret (see `token`).
    /// Without it any token is accepted (memory hubs, development).
    pub secret: Option<Vec<u8>>,
    /// Invitations one user may have open (sent, not ended) at once, across
    /// all their devices: default 100, 1 to 100,000. A send past it is
    /// refused with RATE_LIMITED; an idempotent retry still gets its outcome.
    pub max_open_invitations: usize,
    /// Ended invitations kept per user for history queries (0: no history),
    /// newest first; at most [`HubConfig::HISTORY_CEILING`].
    pub history_per_user: usize,
    /// How long an invitation stays in history after it was sent.
    pub history_keep: Duration,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            limits: Limits::default(),
            retention: Duration::from_secs(600),
            secret: None,
            max_open_invitations: 100,
            history_per_user: 100,
            history_keep: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl HubConfig {
    /// The most `max_open_invitations` a hub may be configured with.
    /// cbindgen:ignore
    pub const OPEN_INVITATIONS_CEILING: usize = 100_000;
    /// The most `history_per_user` a hub may keep.
    /// cbindgen:ignore
    pub const HISTORY_CEILING: usize = 10_000;

    /// The defaults for a hub inside the app's own process (`memory://`): the
    /// open-invitation quota protects a server from its users, and an
    /// in-process hub has one app to serve, so it is at its ceiling.
    pub fn in_process() -> HubConfig {
        HubConfig {
            max_open_invitations: Self::OPEN_INVITATIONS_CEILING,
            ..HubConfig::default()
        }
    }

    /// A hub may tighten the default limits, and raise only the invitee limit
    /// (to 1000).
    pub fn validate(&self) -> Result<()> {
        let spec = Limits::default();
        let limits = &self.limits;
        let bounded = [
            (
                "max_invitees",
                limits.max_invitees,
                Limits::INVITEES_CEILING,
            ),
            (
                "max_timeout_secs",
                limits.max_timeout_secs as usize,
                spec.max_timeout_secs as usize,
            ),
            (
                "max_extended_data",
                limits.max_extended_data,
                spec.max_extended_data,
            ),
            ("max_title", limits.max_title, spec.max_title),
            ("max_message", limits.max_message, spec.max_message),
            (
                "max_resource_id",
                limits.max_resource_id,
                spec.max_resource_id,
            ),
            ("max_payload", limits.max_payload, spec.max_payload),
            ("max_devices", limits.max_devices, spec.max_devices),
            (
                "max_open_invitations",
                self.max_open_invitations,
                Self::OPEN_INVITATIONS_CEILING,
            ),
        ];
        for (name, value, ceiling) in bounded {
            if value == 0 || value > ceiling {
                return Err(Error::invalid(format!(
                    "{name}: {value} is outside 1..={ceiling}"
                )));
            }
        }
        if self.history_per_user > Self::HISTORY_CEILING {
            return Err(Error::invalid(format!(
                "history_per_user: {} is outside 0..={}",
                self.history_per_user,
                Self::HISTORY_CEILING
            )));
        }
        Ok(())
    }
}
