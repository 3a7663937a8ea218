//! States with numeric values fixed by the ABI (they match ZIM's call user states).

use serde::{Deserialize, Serialize};

/// Where one invitee stands in one invitation (docs/SEMANTICS.md, "Invitee
/// states").
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteeState {
    Inviting = 0,
    Accepted = 1,
    Rejected = 2,
    Cancelled = 3,
    Offline = 4,
    Received = 5,
    Timeout = 6,
}

impl InviteeState {
    /// Accepted, refused, cancelled and timed out never change again. (An OFFLINE
    /// invitee of an `online_only` invitation is terminal too; the hub tracks that.)
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            InviteeState::Accepted
                | InviteeState::Rejected
                | InviteeState::Cancelled
                | InviteeState::Timeout
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            InviteeState::Inviting => "INVITING",
            InviteeState::Accepted => "ACCEPTED",
            InviteeState::Rejected => "REJECTED",
            InviteeState::Cancelled => "CANCELLED",
            InviteeState::Offline => "OFFLINE",
            InviteeState::Received => "RECEIVED",
            InviteeState::Timeout => "TIMEOUT",
        }
    }
}

/// The client's link to its hub.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Disconnected = 0,
    Connecting = 1,
    Connected = 2,
    Reconnecting = 3,
}

/// Why the connection state changed.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionReason {
    Login = 0,
    Logout = 1,
    Network = 2,
    KickedOut = 3,
    TokenExpired = 4,
    ServerShutdown = 5,
}
