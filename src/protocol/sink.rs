//! The contract between a hub and whatever carries its pushes to a device: the
//! client (through a transport) or a server session. It is here, not in the
//! hub, because both sides need it: the hub calls it, and the client, the
//! transports and the server implement or pass it, none of them reaching
//! into the hub for it.

use super::{ConnectionReason, ConnectionState, Push};

/// Where a hub sends a session's pushes. The memory transport queues them for the
/// client's dispatcher; the WebSocket transport writes them to the connection.
/// Called with hub locks held: it must not block and must not call the hub.
pub trait SessionSink: Send + Sync + 'static {
    fn deliver(&self, push: Push);

    /// The transport's link changed (a network transport reconnecting, say).
    /// `Disconnected` means the session is over for good. The hub never calls it.
    fn link_changed(&self, _state: ConnectionState, _reason: ConnectionReason) {}
}
