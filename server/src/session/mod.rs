//! A client's session at the server, which outlives its connections.
//!
//! A session is one value, [`Session`] (`state.rs`), with exactly one owner at
//! a time: the task of the connection it is attached to, or, between
//! connections, a small task of its own that waits out the grace period
//! (`detached.rs`). The owner runs the session's requests, appends to its
//! outbox and writes to its socket with no lock of its own. Others reach a
//! session only through its mailbox (a [`SessionHandle`]): the hub drops
//! pushes into it without blocking, and a connection that resumes the session
//! asks for it there and is handed the session itself. So nothing can wait in
//! a cycle, and an idle device costs one task.
//!
//! A resumed session replays what the client missed, so nothing is lost and
//! nothing comes twice; a session that cannot be resumed hands the results of
//! its recent requests to the fresh session that replaces it.

pub(crate) mod detached;
mod outbox;
mod results;
mod state;
#[cfg(test)]
mod stress;

use std::collections::HashMap;
use std::sync::Arc;

use beckon::hub::Ticket;
use beckon::protocol::SessionSink;
use beckon::protocol::{DeviceId, Push, UserId};
use beckon::Error;
use futures_channel::mpsc::{self, UnboundedSender};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::ServerContext;
pub use outbox::Outbox;
pub use results::RecentResults;
pub use state::{error_frame, Session};

/// What the session has for its connection to write, in order.
#[derive(Debug)]
pub enum Outgoing {
    Text(Utf8Bytes),
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

/// A frame queued for the connection, and the store ticket it waits for:
/// the highest ticket of anything queued up to it, so the frames leave in
/// order, each as soon as what it (and everything before it) tells of is
/// durable.
#[derive(Debug)]
pub struct Gated {
    pub outgoing: Outgoing,
    pub after: Ticket,
}

impl Gated {
    /// A frame that tells of nothing stored.
    pub fn now(outgoing: Outgoing) -> Gated {
        Gated { outgoing, after: 0 }
    }
}

/// Why a session can no longer be resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    LoggedOut,
    KickedOut,
    TokenExpired,
    /// The client did not come back within the grace period.
    Abandoned,
}

/// Why a session lets its connection go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The client does not read what it is sent: its outbox overflowed.
    TooSlow,
    /// The server closes the connection (a protocol error, a flood, silence,
    /// shutdown); the session waits for a resume.
    Closed,
    /// The session ended (logout, kicked out, token expired).
    Ended,
}

/// Why a resume was refused.
pub enum Refusal {
    /// The token is not good (the login is refused).
    Token(Error),
    /// The session cannot be resumed (ended, or frames the client needs are
    /// gone): log in afresh. A session that is still live hands over its
    /// request ids and recent results, for the fresh session to answer
    /// re-sent requests as they were answered.
    CannotResume(Option<Handover>),
}

/// What a fresh session takes over from the session it replaces.
pub struct Handover {
    pub last_request: u64,
    pub results: RecentResults,
}

/// What reaches a session from outside its owner. Boxed, so that the
/// mailbox's first node, allocated for every idle session, is small.
pub(crate) enum Mail {
    /// From the hub, with the store ticket it waits for (see
    /// [`beckon::hub::frame_ticket`]).
    Push(Box<(Push, Ticket)>),
    /// A new connection asks for the session.
    Resume(Box<ResumeRequest>),
    /// The answer of a request another node ran (see `cluster`).
    Answer(Box<(u64, crate::handler::Answer)>),
    /// A request to run here after all (its invitation turned out to be
    /// this node's, or nobody's).
    RunHere(Box<(u64, beckon::protocol::wire::ClientFrame)>),
}

pub(crate) struct ResumeRequest {
    seen: u64,
    token: String,
    /// The session itself when it can be resumed from `seen`.
    reply: oneshot::Sender<Result<Box<Session>, Refusal>>,
}

/// A cheap, cloneable way to reach a session.
#[derive(Clone)]
pub struct SessionHandle {
    pub secret: Arc<str>,
    pub user: UserId,
    pub device: DeviceId,
    mailbox: UnboundedSender<Mail>,
}

impl SessionHandle {
    /// Asks the session's owner for the session, for a client that saw its
    /// frames up to `seen`; the caller attaches it (see [`Session::attach`]).
    pub async fn resume(&self, seen: u64, token: String) -> Result<Box<Session>, Refusal> {
        let (reply, answer) = oneshot::channel();
        let request = ResumeRequest { seen, token, reply };
        if self
            .mailbox
            .unbounded_send(Mail::Resume(Box::new(request)))
            .is_err()
        {
            return Err(Refusal::CannotResume(None));
        }
        answer.await.unwrap_or(Err(Refusal::CannotResume(None)))
    }

    /// A push from another node (durable already).
    pub fn push(&self, push: Push) {
        let _ = self.mailbox.unbounded_send(Mail::Push(Box::new((push, 0))));
    }

    /// The answer of request `id`, which another node ran (durable already).
    pub fn answer(&self, id: u64, answer: crate::handler::Answer) {
        let _ = self
            .mailbox
            .unbounded_send(Mail::Answer(Box::new((id, answer))));
    }

    /// Request `id` runs on this node's hub after all.
    pub fn run_here(&self, id: u64, frame: beckon::protocol::wire::ClientFrame) {
        let _ = self
            .mailbox
            .unbounded_send(Mail::RunHere(Box::new((id, frame))));
    }
}

/// Logs a device in to the hub and makes its session, not yet attached to a
/// connection. `handover`: what a session that could not be resumed left for
/// this one.
/// `gen`: the login's generation in a deployment of several nodes (0
/// otherwise).
pub fn open(
    ctx: &Arc<ServerContext>,
    user: UserId,
    device: DeviceId,
    token: &str,
    handover: Option<Handover>,
    gen: u64,
) -> Result<Box<Session>, Error> {
    let (mailbox, inbox) = mpsc::unbounded();
    let hub_session = ctx.hub.login(
        user.clone(),
        device.clone(),
        token,
        Arc::new(PushSink(mailbox.clone())),
    )?;
    let handle = SessionHandle {
        secret: new_secret().into(),
        user,
        device,
        mailbox,
    };
    ctx.sessions.insert(handle.clone());
    ctx.metrics.sessions_live.inc();
    if let Some(cluster) = ctx.cluster() {
        cluster.logged_in(&handle, gen);
    }
    Ok(Session::new(
        ctx.clone(),
        handle.secret,
        hub_session,
        handover,
        inbox,
        gen,
    ))
}

/// The hub's way to a session: a non-blocking send, whatever the hub holds.
struct PushSink(UnboundedSender<Mail>);

impl SessionSink for PushSink {
    fn deliver(&self, push: Push) {
        let ticket = beckon::hub::frame_ticket();
        let _ = self.0.unbounded_send(Mail::Push(Box::new((push, ticket))));
    }
}

/// Every live session by its secret. The lock is a leaf: nothing else is
/// taken or called while it is held.
#[derive(Default)]
pub struct Sessions {
    by_secret: Mutex<HashMap<Arc<str>, SessionHandle>>,
}

impl Sessions {
    fn insert(&self, session: SessionHandle) {
        self.by_secret
            .lock()
            .insert(session.secret.clone(), session);
    }

    pub fn get(&self, secret: &str) -> Option<SessionHandle> {
        self.by_secret.lock().get(secret).cloned()
    }

    fn remove(&self, secret: &str) {
        // The handle is dropped after the lock is let go.
        let removed = self.by_secret.lock().remove(secret);
        drop(removed);
    }

    pub fn len(&self) -> usize {
        self.by_secret.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fresh session secret: 128 random bits in hex.
pub fn new_secret() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}
