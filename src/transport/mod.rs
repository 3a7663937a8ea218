//! Transports: how a client reaches a hub. Each one turns the client's calls into
//! hub operations and the hub's pushes into jobs on the client's dispatcher.
//! `memory://NAME` calls an in-process hub directly; `ws://` and `wss://` speak
//! docs/PROTOCOL.md to a `beckon-server`.

pub mod memory;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::SessionSink;
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
    /// When it returns, nothing more is delivered, so the client's
    /// DISCONNECTED comes last. It may wait briefly (a network transport
    /// writing its logout frame, at most about a second), so the client calls
    /// it without its own locks held; on the library's runtime it does not
    /// wait.
    fn logout(&self);
}

pub struct LoginRequest {
    pub user: UserId,
    pub device: DeviceId,
    pub token: String,
    pub sink: Arc<dyn SessionSink>,
    /// How long the network transport waits for the server (connect, login,
    /// each request).
    pub request_timeout: Duration,
}

/// Opens a session on the hub that `server_url` names.
pub fn connect(server_url: &str, login: LoginRequest, reply: Reply<Arc<dyn Connection>>) {
    match Scheme::of(server_url) {
        Ok(Scheme::Memory(name)) => reply(memory::connect(name, login)),
        Ok(Scheme::WebSocket) => ws::connect(server_url, login, reply),
        Err(error) => reply(Err(error)),
    }
}

/// Checks a server URL before anything is started, so `beckon_client_new` can
/// refuse a bad one at once.
pub fn check_url(server_url: &str) -> Result<()> {
    Scheme::of(server_url).map(|_| ())
}

enum Scheme<'a> {
    /// `memory://NAME`, with the hub's name.
    Memory(&'a str),
    /// `ws://` or `wss://`.
    WebSocket,
}

impl<'a> Scheme<'a> {
    fn of(server_url: &'a str) -> Result<Scheme<'a>> {
        if let Some(name) = server_url.strip_prefix("memory://") {
            memory::check_name(name, "server_url")?;
            return Ok(Scheme::Memory(name));
        }
        if server_url.starts_with("ws://") || server_url.starts_with("wss://") {
            ws::check_url(server_url)?;
            return Ok(Scheme::WebSocket);
        }
        Err(Error::invalid(format!(
            "server_url: '{server_url}' is not supported (use memory://NAME, ws://HOST:PORT or wss://HOST:PORT)"
        )))
    }
}
