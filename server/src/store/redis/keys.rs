//! The Redis store's keys. Every key of a deployment starts with
//! `{prefix}:`: the braces are a Redis Cluster hash tag, so all of them sit
//! in one slot and a script may touch any of them atomically.

use beckon::protocol::{DeviceId, InvitationId, UserId};

#[derive(Clone)]
pub struct Keys {
    /// `{prefix}`
    base: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            base: format!("{{{prefix}}}"),
        }
    }

    /// Hash: `schema`, the layout version of what is stored.
    pub fn meta(&self) -> String {
        format!("{}:meta", self.base)
    }

    /// The 32-byte key idempotent invitation ids are derived with.
    pub fn id_key(&self) -> String {
        format!("{}:id_key", self.base)
    }

    /// Counter: each start of a node takes the next number (its epoch).
    pub fn epochs(&self) -> String {
        format!("{}:epochs", self.base)
    }

    /// Set: the names of the nodes that ever started here.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.base)
    }

    /// String with a time to live: the epoch of the node's running process.
    /// Gone when the node stopped renewing it.
    pub fn lease(&self, node: &str) -> String {
        format!("{}:lease:{node}", self.base)
    }

    /// Set: the ids of the invitations the node owns.
    pub fn owned(&self, node: &str) -> String {
        format!("{}:owned:{node}", self.base)
    }

    /// Hash: `v` the record's version, `r` the record (store/codec.rs),
    /// `o` the node that owns it (set alone when a node claims an id before
    /// creating the invitation).
    pub fn invitation(&self, id: &InvitationId) -> String {
        format!("{}{id}", self.invitation_prefix())
    }

    /// What every invitation's key starts with.
    pub fn invitation_prefix(&self) -> String {
        format!("{}:inv:", self.base)
    }

    /// Counter: login generations (see `cluster::messages::Presence`).
    pub fn gens(&self) -> String {
        format!("{}:gens", self.base)
    }

    /// Stream: every node's logins and logouts.
    pub fn directory(&self) -> String {
        format!("{}:directory", self.base)
    }

    /// Hash: "USER DEVICE" -> "NODE GEN", each device's latest login.
    pub fn presence(&self) -> String {
        format!("{}:presence", self.base)
    }

    /// Stream: what other nodes send this node.
    pub fn inbox(&self, node: &str) -> String {
        format!("{}:inbox:{node}", self.base)
    }

    /// Hash: field "user device" (ids never hold a space), value the push
    /// target (postcard, as SQLite keeps it).
    pub fn push_targets(&self) -> String {
        format!("{}:push_targets", self.base)
    }

    /// Stream: every change of a push target as committed (fields `n` the
    /// node, `f` as in `push_targets`, `v` the target or '' when forgotten).
    pub fn push_target_changes(&self) -> String {
        format!("{}:push_target_changes", self.base)
    }

    /// Sorted set: the user's history (store/redis/history.rs).
    pub fn history(&self, user: &UserId) -> String {
        format!("{}:hist:{user}", self.base)
    }

    /// String: an ended invitation's summary for history.
    pub fn history_summary(&self, id: &InvitationId) -> String {
        self.history_summary_of(id.as_str())
    }

    pub fn history_summary_of(&self, id: &str) -> String {
        format!("{}:hsum:{id}", self.base)
    }
}

/// The field of a device's push target.
pub fn target_field(user: &UserId, device: &DeviceId) -> String {
    format!("{user} {device}")
}
