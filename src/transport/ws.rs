//! `ws://HOST:PORT` and `wss://HOST:PORT`: the client side of docs/PROTOCOL.md.
//!
//! One task per login, the link (`ws/link.rs`), owns the socket and every piece
//! of the session's mutable state. The application's side holds a handle
//! (`WsConnection`) that talks to the link only by message: commands through a
//! channel, and one close signal. The two share no lock, so neither can hold
//! up the other; a logout waits for the link's "closed" signal only on a thread
//! that is not one of the library's runtime workers (the link itself runs on
//! those).
//!
//! A supervisor task (`supervise`) starts the link and answers the login; if
//! the link panics, every request it held completes once with INTERNAL, the
//! login (if still under way) fails with INTERNAL, or the session ends with
//! DISCONNECTED (NETWORK): the client is logged out and may log in again.
//!
//! When the connection drops, the link reconnects with backoff and jitter,
//! resumes the session (the server replays what was missed) or logs in afresh
//! (then a snapshot tells it what the application missed, see `ws/tracker.rs`),
//! and re-sends every request the server has not answered: nothing is lost,
//! nothing runs twice (request ids, idempotency keys), nothing is shown twice
//! (sequence numbers, the tracker, and rule 9 in the client).

mod dial;
mod link;
mod receipts;
mod requests;
mod tracker;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Attempt, Connection, LoginRequest, Reply};
use crate::error::{Error, Result};
use crate::log::Level;
use crate::protocol::SessionSink;
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, ConnectionReason, ConnectionState, InvitationId,
    InvitationPage, InvitationQuery, Limits, PushTarget, SendInvitation, SendOutcome, UserId,
};
use dial::Target;
use link::{Closed, Command, Link, Notice};
use requests::Request;

const SUB_TAG: &str = "client";

/// Checks a `ws://` or `wss://` URL.
pub(crate) fn check_url(url: &str) -> Result<()> {
    let request = url
        .into_client_request()
        .map_err(|e| Error::invalid(format!("server_url: '{url}' is not a valid URL: {e}")))?;
    if request.uri().host().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!("server_url: '{url}' has no host")));
    }
    Ok(())
}

/// Connects, logs in, and replies with the connection once the server has
/// welcomed it (or with why it could not).
pub(crate) fn connect(
    url: &str,
    login: LoginRequest,
    reply: Reply<Arc<dyn Connection>>,
) -> Attempt {
    let (commands, inbox) = unbounded_channel();
    let (close, closing) = oneshot::channel();
    let close: CloseSlot = Arc::new(Mutex::new(Some(close)));
    let target = Arc::new(Target {
        url: url.to_owned(),
        user: login.user,
        device: login.device,
        timeout: login.request_timeout,
    });
    let handle = Handle {
        user: target.user.clone(),
        commands,
        close: close.clone(),
    };
    let link = Link::new(target, login.token, login.sink.clone(), inbox);
    crate::runtime::handle().spawn(supervise(link, closing, handle, login.sink, reply));
    Attempt::new(move |wait| close_link(&close, wait))
}

/// The link's close signal, taken by the first logout (or the cancel of a
/// login still under way). Only the application's threads touch it.
type CloseSlot = Arc<Mutex<Option<oneshot::Sender<Closed>>>>;

/// Tells the link to close and, with `wait` and off the library's runtime,
/// waits until it has: every request completed (SHUTDOWN), nothing more delivered, and the
/// logout frame written (at most about a second). On the runtime (the client
/// undoing a login that was welcomed after `free`) it does not wait: the link
/// may be the very task that would have to make progress.
fn close_link(slot: &CloseSlot, wait: bool) {
    let Some(close) = slot.lock().take() else {
        return;
    };
    let (closed, stopped) = std::sync::mpsc::sync_channel(0);
    if close.send(closed).is_err() {
        return; // the link is gone already
    }
    if wait && !on_library_runtime() {
        // Returns when the link drops its end: no timed wait needed.
        let _ = stopped.recv();
    }
}

/// What the supervisor keeps for the handle until the login is welcomed.
struct Handle {
    user: UserId,
    commands: UnboundedSender<Command>,
    close: CloseSlot,
}

/// Runs the link as a task of its own and watches it: it answers the login
/// (even if the link dies before it could), and turns a panic into the end of
/// the session, so the client never stays logging in or logged in to a link
/// that is gone.
async fn supervise(
    link: Link,
    closing: oneshot::Receiver<Closed>,
    handle: Handle,
    sink: Arc<dyn SessionSink>,
    reply: Reply<Arc<dyn Connection>>,
) {
    let (welcomed, login) = oneshot::channel();
    let task = tokio::spawn(link.run(closing, welcomed));
    let logged_in = match login.await {
        Ok(Ok(limits)) => {
            reply(Ok(Arc::new(WsConnection {
                user: handle.user,
                limits,
                commands: handle.commands,
                close: handle.close,
            })));
            true
        }
        Ok(Err(error)) => {
            reply(Err(error));
            false
        }
        Err(_) => {
            reply(Err(Error::internal(
                "the connection's link task failed during login (a bug: it panicked); see the log",
            )));
            false
        }
    };
    if let Err(error) = task.await {
        if error.is_panic() {
            crate::log!(
                Level::Error,
                SUB_TAG,
                "the connection's link task panicked; its requests got INTERNAL{}",
                if logged_in {
                    " and the session ends (DISCONNECTED, NETWORK)"
                } else {
                    ""
                }
            );
            if logged_in {
                sink.link_changed(ConnectionState::Disconnected, ConnectionReason::Network);
            }
        }
    }
}

/// The application's side of a logged-in link.
struct WsConnection {
    user: UserId,
    limits: Limits,
    commands: UnboundedSender<Command>,
    close: CloseSlot,
}

impl WsConnection {
    fn request(&self, request: Option<Request>) {
        let Some(request) = request else {
            return; // could not be encoded: completed already
        };
        if let Err(refused) = self.commands.send(Command::Request(request)) {
            // The link has ended (or is ending) the session.
            if let Command::Request(request) = refused.0 {
                request.fail(Error::not_logged_in());
            }
        }
    }

    fn notice(&self, notice: Notice) {
        let _ = self.commands.send(Command::Notice(notice));
    }
}

impl Connection for WsConnection {
    fn user(&self) -> &UserId {
        &self.user
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn sync(&self) {
        self.notice(Notice::Sync);
    }

    fn send(
        &self,
        mut request: SendInvitation,
        within: Option<Duration>,
        reply: Reply<SendOutcome>,
    ) {
        // A send re-sent after a reconnect must not create a second invitation.
        if request.idempotency_key.is_none() {
            request.idempotency_key = Some(format!("{:032x}", rand::random::<u128>()).into());
        }
        self.request(Request::send(request, within, reply));
    }

    fn cancel(
        &self,
        request: CancelInvitation,
        within: Option<Duration>,
        reply: Reply<CancelOutcome>,
    ) {
        self.request(Request::cancel(request, within, reply));
    }

    fn accept(&self, answer: Answer, within: Option<Duration>, reply: Reply<()>) {
        self.request(Request::accept(answer, within, reply));
    }

    fn refuse(&self, answer: Answer, within: Option<Duration>, reply: Reply<()>) {
        self.request(Request::refuse(answer, within, reply));
    }

    fn renew_token(&self, token: &str, within: Option<Duration>, reply: Reply<()>) {
        self.request(Request::renew_token(token, within, reply));
    }

    fn set_push_target(&self, target: PushTarget, within: Option<Duration>, reply: Reply<()>) {
        self.request(Request::set_push_target(&target, within, reply));
    }

    fn clear_push_target(&self, within: Option<Duration>, reply: Reply<()>) {
        self.request(Request::clear_push_target(within, reply));
    }

    fn query_invitations(
        &self,
        query: InvitationQuery,
        within: Option<Duration>,
        reply: Reply<InvitationPage>,
    ) {
        self.request(Request::query_invitations(&query, within, reply));
    }

    fn acknowledge(&self, invitation_id: &InvitationId) {
        self.notice(Notice::Receipt(invitation_id.clone()));
    }

    /// See `close_link`.
    fn logout(&self) {
        close_link(&self.close, true);
    }
}

/// True on one of the library runtime's threads, where blocking could stall
/// the link tasks themselves.
fn on_library_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|current| current.id() == crate::runtime::handle().id())
}

/// Test hooks (feature `test-hooks`): make a link panic at a chosen point.
#[cfg(feature = "test-hooks")]
pub mod hooks {
    use crate::protocol::UserId;

    /// Where a link task can be made to panic.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum LinkPanic {
        /// Once the server welcomed the login, before the login is answered.
        Login,
        /// When the link takes the next request of the application.
        Request,
    }

    static ARMED: parking_lot::Mutex<Vec<(UserId, LinkPanic)>> =
        parking_lot::const_mutex(Vec::new());

    /// The next link of `user` panics at `point` (once). Tests run in
    /// parallel: each arms its own user.
    pub fn panic_link(user: &UserId, point: LinkPanic) {
        ARMED.lock().push((user.clone(), point));
    }

    pub(crate) fn maybe_panic(user: &UserId, point: LinkPanic) {
        let fire = {
            let mut armed = ARMED.lock();
            let at = armed.iter().position(|(u, p)| u == user && *p == point);
            at.map(|at| armed.swap_remove(at))
        };
        if fire.is_some() {
            panic!("beckon test hook: the link of '{user}' panics at {point:?}");
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
mod hooks {
    use crate::protocol::UserId;

    #[derive(Clone, Copy)]
    pub enum LinkPanic {
        Login,
        Request,
    }

    #[inline(always)]
    pub(crate) fn maybe_panic(_user: &UserId, _point: LinkPanic) {}
}
