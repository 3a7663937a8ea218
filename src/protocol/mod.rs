//! The protocol layer: the values that cross between a client and a hub, whatever
//! the transport (in-process `memory://` today, WebSocket next). No I/O here.
//!
//! Every type derives serde so that the WebSocket transport can put it on the wire
//! unchanged; the hub and the client both validate with the same functions.

mod history;
mod ids;
mod limits;
mod messages;
mod push;
mod sink;
mod state;
pub mod wire;

pub use history::{HistoryCursor, HistoryRole, InvitationPage, InvitationQuery, InvitationSummary};
pub use ids::{DeviceId, IdHashBuilder, IdHasher, InvitationId, UserId};
pub use limits::Limits;
pub use messages::{
    Answer, CancelInvitation, CancelOutcome, InvitationSnapshot, InviteeStatus, Notification, Push,
    SendInvitation, SendOutcome, Snapshot, Text,
};
pub use push::{ApnsEnvironment, PushOutcome, PushProvider, PushTarget};
pub use sink::SessionSink;
pub use state::{ConnectionReason, ConnectionState, InviteeState};
