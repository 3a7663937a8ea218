//! Transports: how a client reaches a hub. Each one turns the client's calls into
//! hub operations and the hub's pushes into jobs on the client's dispatcher.
//! `memory://NAME` calls an in-process hub directly; WebSocket comes next.

pub mod memory;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hub::SessionSink;
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, DeviceId, InvitationId, Limits, SendInvitation,
    SendOutcome, UserId,
};

/// Completes an operation exactly once. Dropping one uncalled is a bug path that
/// the client turns into an INTERNAL result (see `client::pending`).
pub type Reply<T> = Box<dyn FnOnce(Result<T>) + Send>;

/// A logged-in link to a hub.
pub trait Connection: Send + Sync {
    fn user(&self) -> &UserId;
    /// The limits the hub enforces, so the client can fail fast.
    fn limits(&self) -> &Limits;
    /// Asks the hub to deliver the invitations pending for this device (after
    /// login, and after every reconnect).
    fn sync(&self);
    fn send(&self, request: SendInvitation, reply: Reply<SendOutcome>);
    fn cancel(&self, request: CancelInvitation, reply: Reply<CancelOutcome>);
    fn accept(&self, answer: Answer, reply: Reply<()>);
    fn refuse(&self, answer: Answer, reply: Reply<()>);
    fn renew_token(&self, token: &str, reply: Reply<()>);
    /// The delivery receipt of rule 4. Fire and forget.
    fn acknowledge(&self, invitation_id: &InvitationId);
    /// Ends the session; operations still in flight complete with SHUTDOWN.
    fn logout(&self);
}

pub struct LoginRequest {
    pub user: UserId,
    pub device: DeviceId,
    pub token: String,
    pub sink: Arc<dyn SessionSink>,
}

/// Opens a session on the hub that `server_url` names.
pub fn connect(server_url: &str, login: LoginRequest, reply: Reply<Arc<dyn Connection>>) {
    reply(memory_hub_name(server_url).and_then(|name| memory::connect(name, login)))
}

/// Checks a server URL before anything is started, so `beckon_client_new` can
/// refuse a bad one at once.
pub fn check_url(server_url: &str) -> Result<()> {
    memory_hub_name(server_url).map(|_| ())
}

/// The hub name of a `memory://NAME` URL, the only kind supported today.
fn memory_hub_name(server_url: &str) -> Result<&str> {
    let name = server_url.strip_prefix("memory://").ok_or_else(|| {
        Error::invalid(format!(
            "server_url: '{server_url}' is not supported (use memory://NAME)"
        ))
    })?;
    memory::check_name(name, "server_url")?;
    Ok(name)
}
