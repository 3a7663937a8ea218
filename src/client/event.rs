//! What the application's event handler receives (docs/SEMANTICS.md,
//! "Events").

use crate::protocol::{ConnectionReason, ConnectionState, Push};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    ConnectionStateChanged {
        state: ConnectionState,
        reason: ConnectionReason,
    },
    TokenWillExpire {
        seconds_left: u32,
    },
    /// One of the invitation pushes: `InvitationReceived`, `InvitationCancelled`,
    /// `InvitationAccepted`, `InvitationRefused`, `InvitationTimeout`,
    /// `InvitationResponseTimeout`, `UserStateChanged`, or (to the inviter,
    /// one per pushed device or per invitee without a push target)
    /// `InvitationPushResult`.
    Invitation(Push),
}

/// The application's handler. Runs on the client's dispatcher (or inside
/// `Client::poll`), one event at a time, in order.
pub type EventHandler = std::sync::Arc<dyn Fn(&Event) + Send + Sync>;
