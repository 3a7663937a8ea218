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
    Answer, CancelInvitation, CancelOutcome, DeviceId, InvitationId, InvitationPage,
    InvitationQuery, Limits, PushTarget, SendInvitation, SendOutcome, UserId,
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
    // `within`: how long the request may wait for the hub, if not the
    // login's `request_timeout` (network transports; in-process hubs answer
    // before the call returns).
    fn send(&self, request: SendInvitation, within: Option<Duration>, reply: Reply<SendOutcome>);
    fn cancel(
        &self,
        request: CancelInvitation,
        within: Option<Duration>,
        reply: Reply<CancelOutcome>,
    );
    fn accept(&self, answer: Answer, within: Option<Duration>, reply: Reply<()>);
    fn refuse(&self, answer: Answer, within: Option<Duration>, reply: Reply<()>);
    fn renew_token(&self, token: &str, within: Option<Duration>, reply: Reply<()>);
    /// Rings this device by push while it is not connected (kept by the hub
    /// past this session, until cleared or an explicit logout). Idempotent,
    /// so a network transport re-sends it after a reconnect like any request.
    fn set_push_target(&self, target: PushTarget, within: Option<Duration>, reply: Reply<()>);
    /// Forgets this device's push target, if it has one. Idempotent.
    fn clear_push_target(&self, within: Option<Duration>, reply: Reply<()>);
    /// A page of the user's ended invitations. Reads only.
    fn query_invitations(
        &self,
        query: InvitationQuery,
        within: Option<Duration>,
        reply: Reply<InvitationPage>,
    );
    /// The delivery receipt of rule 4. Fire and forget.
    fn acknowledge(&self, invitation_id: &InvitationId);
    /// Ends the session for good (an explicit logout, or `free`: the hub
    /// also forgets the device's push target); operations still in flight
    /// complete with SHUTDOWN.
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

/// Opens a session on the hub that `server_url` names. The returned attempt
/// can stop a login still under way.
pub fn connect(
    server_url: &str,
    login: LoginRequest,
    reply: Reply<Arc<dyn Connection>>,
) -> Attempt {
    match Scheme::of(server_url) {
        Ok(Scheme::Memory(name)) => {
            reply(memory::connect(name, login));
            Attempt::finished()
        }
        Ok(Scheme::WebSocket) => ws::connect(server_url, login, reply),
        Err(error) => {
            reply(Err(error));
            Attempt::finished()
        }
    }
}

/// A login under way.
pub struct Attempt {
    cancel: Option<Box<dyn FnOnce(bool) + Send>>,
}

impl Attempt {
    /// An attempt that `cancel` stops: the login's reply comes soon (with
    /// SHUTDOWN unless the welcome came first), and a welcome that still
    /// comes is logged out by the transport, so no session stays at the hub.
    pub(crate) fn new(cancel: impl FnOnce(bool) + Send + 'static) -> Attempt {
        Attempt {
            cancel: Some(Box::new(cancel)),
        }
    }

    /// One whose reply has been given already (in-process hubs answer at once).
    pub(crate) fn finished() -> Attempt {
        Attempt { cancel: None }
    }

    /// Stops the login. With `wait`, returns only once the attempt can no
    /// longer make a session (at most about a second after the hello was
    /// written), so a later login of the same device cannot be kicked by it;
    /// a logout waits so, `free` does not.
    pub(crate) fn cancel(mut self, wait: bool) {
        if let Some(cancel) = self.cancel.take() {
            cancel(wait);
        }
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
