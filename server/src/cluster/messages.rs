//! What nodes tell each other through Redis: presence on the directory
//! stream (every node reads all of it), and deliveries, requests and answers
//! on each node's inbox stream. JSON: a directory entry's field `m` is
//! one event; an inbox entry's field `b` an array of messages, in order.

use beckon::protocol::wire::ClientFrame;
use beckon::protocol::{CancelInvitation, DeviceId, Push, SendInvitation, UserId};
use serde::{Deserialize, Serialize};

/// A device logged in or out at `node` (its process `epoch`: a node started
/// again under its name has a new one, and its earlier devices are gone).
/// `gen` orders the logins of one device across nodes (a counter in Redis,
/// taken before the login): an event older than what a node knows of the
/// device changes nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Presence {
    Login {
        user: UserId,
        device: DeviceId,
        node: String,
        epoch: i64,
        gen: u64,
    },
    Logout {
        user: UserId,
        device: DeviceId,
        node: String,
        epoch: i64,
        gen: u64,
    },
}

/// An entry of a node's inbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Message {
    /// A push for a device logged in at the receiving node (login `gen`).
    /// `from` is the node that sent it, which holds the push's invitation:
    /// the receiving node sends the device's requests about it there
    /// without looking the owner up.
    Deliver {
        from: String,
        user: UserId,
        device: DeviceId,
        gen: u64,
        push: Push,
    },
    /// A request of a device logged in at node `from`, about an invitation
    /// the receiving node owns; answered with the same `key` (0: no answer,
    /// a receipt).
    Request {
        from: String,
        /// `from`'s epoch.
        epoch: i64,
        key: u64,
        user: UserId,
        device: DeviceId,
        gen: u64,
        frame: ClientFrame,
    },
    /// A request of the server API at node `from` (its `epoch`), about an
    /// invitation or a device the receiving node holds; answered with the
    /// same `key`.
    Api {
        from: String,
        epoch: i64,
        key: u64,
        request: ApiRequest,
    },
    /// The answer to a request this node forwarded: the body of its
    /// `result` frame.
    Answer {
        key: u64,
        body: String,
        failed: bool,
    },
}

/// What the server API asks of another node (cluster/api.rs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "a", rename_all = "snake_case")]
pub enum ApiRequest {
    /// A send on `inviter`'s behalf whose idempotency key the receiving node
    /// claimed first: it answers with its invitation.
    Send {
        inviter: UserId,
        request: SendInvitation,
    },
    /// A cancel of the receiving node's invitation.
    Cancel { request: CancelInvitation },
    /// Ends the session of a device logged in at the receiving node.
    Kick { user: UserId, device: DeviceId },
}
