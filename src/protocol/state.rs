//! States with numeric values fixed by the ABI (they match ZIM's call user states).

use std::ffi::CStr;

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

    /// The state's name, e.g. "ACCEPTED".
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("UNKNOWN")
    }

    /// The name as a static C string (what `beckon_invitee_state_name` returns).
    pub fn c_name(self) -> &'static CStr {
        match self {
            InviteeState::Inviting => c"INVITING",
            InviteeState::Accepted => c"ACCEPTED",
            InviteeState::Rejected => c"REJECTED",
            InviteeState::Cancelled => c"CANCELLED",
            InviteeState::Offline => c"OFFLINE",
            InviteeState::Received => c"RECEIVED",
            InviteeState::Timeout => c"TIMEOUT",
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

impl ConnectionState {
    /// The state whose C value is `value`, if any.
    pub fn from_i32(value: i32) -> Option<ConnectionState> {
        [
            ConnectionState::Disconnected,
            ConnectionState::Connecting,
            ConnectionState::Connected,
            ConnectionState::Reconnecting,
        ]
        .into_iter()
        .find(|state| *state as i32 == value)
    }
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
