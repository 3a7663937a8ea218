//! A client's session at the server, which outlives its connections. Each
//! session is one task (an actor, `actor.rs`) that owns everything of it: the
//! hub session, the outbox of sequenced frames the client has not acknowledged,
//! the request ids seen, the attached connection and the grace period. Others
//! reach it only through a [`SessionHandle`], by message; the hub reaches it
//! through a sink that only queues. So no lock is ever held across another, and
//! a connection or the hub can never wait on a session that waits on them.
//!
//! When a connection drops, the session waits a grace period for the client to
//! resume it; a resumed session replays what the client missed, so nothing is
//! lost and nothing comes twice.

mod actor;
mod outbox;
mod results;
#[cfg(test)]
mod stress;

use std::collections::HashMap;
use std::sync::Arc;

use beckon::hub::SessionSink;
use beckon::protocol::wire::ClientFrame;
use beckon::protocol::{DeviceId, Push, UserId};
use beckon::Error;
use parking_lot::Mutex;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::ServerContext;
pub use outbox::Outbox;
pub use results::RecentResults;

/// Messages a connection may have queued for one session before it waits:
/// the connection reads no further frames meanwhile (back-pressure).
const COMMAND_QUEUE: usize = 64;

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Outgoing {
    Text(Utf8Bytes),
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
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

/// A connection as a session holds it while attached. The session drops it
/// when it lets the connection go (replaced, ended); the connection sees
/// `released` resolve and stops reading.
pub struct Link {
    pub tx: Writer,
    pub epoch: u64,
    pub released: oneshot::Sender<Release>,
}

/// Why a session let its connection go, when the connection should know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The client does not read what it is sent: its outbox overflowed.
    TooSlow,
}

/// The way to a connection's writer task. Messages go boxed: a tokio
/// channel allocates room for 32 messages up front, and every idle
/// connection has one.
#[derive(Clone)]
pub struct Writer(UnboundedSender<Box<Outgoing>>);

impl Writer {
    pub fn channel() -> (Writer, mpsc::UnboundedReceiver<Box<Outgoing>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Writer(tx), rx)
    }

    /// Queues `outgoing`; fails when the writer has stopped.
    pub fn send(&self, outgoing: Outgoing) -> Result<(), Outgoing> {
        self.0.send(Box::new(outgoing)).map_err(|e| *e.0)
    }
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

/// A message to a session. (Sent boxed: a tokio channel allocates room for
/// 32 messages up front, and every idle session has one.)
enum Command {
    Resume(ResumeRequest),
    Frame {
        epoch: u64,
        frame: ClientFrame,
        /// The connection is over its rate: answer RATE_LIMITED.
        limited: bool,
    },
    /// A request that could not be decoded, with its id.
    BadRequest {
        epoch: u64,
        id: u64,
        error: Error,
    },
    /// Connection `epoch` ended.
    Detach {
        epoch: u64,
    },
    /// Connection `epoch` is closed by the server: `last` goes after every
    /// answer already queued, then the session detaches it.
    Close {
        epoch: u64,
        last: Vec<Outgoing>,
    },
}

struct ResumeRequest {
    link: Link,
    seen: u64,
    token: String,
    reply: oneshot::Sender<Result<(), Refusal>>,
}

/// A cheap, cloneable way to reach a session.
#[derive(Clone)]
pub struct SessionHandle {
    pub secret: Arc<str>,
    pub user: UserId,
    pub device: DeviceId,
    commands: mpsc::Sender<Box<Command>>,
}

impl SessionHandle {
    /// Attaches connection `link` to this session, which replays what came
    /// after `seen`.
    pub async fn resume(&self, link: Link, seen: u64, token: String) -> Result<(), Refusal> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Resume(ResumeRequest {
            link,
            seen,
            token,
            reply,
        });
        if self.commands.send(Box::new(command)).await.is_err() {
            return Err(Refusal::CannotResume(None));
        }
        answer.await.unwrap_or(Err(Refusal::CannotResume(None)))
    }

    /// Hands a frame of connection `epoch` to the session; false when the
    /// session has ended.
    pub async fn frame(&self, epoch: u64, frame: ClientFrame, limited: bool) -> bool {
        let command = Command::Frame {
            epoch,
            frame,
            limited,
        };
        self.commands.send(Box::new(command)).await.is_ok()
    }

    pub async fn bad_request(&self, epoch: u64, id: u64, error: Error) -> bool {
        let command = Command::BadRequest { epoch, id, error };
        self.commands.send(Box::new(command)).await.is_ok()
    }

    /// Closes connection `epoch` after what the session queued for it, with
    /// `last` (an error frame, a close frame); false when the session has
    /// ended (the caller sends `last` itself).
    pub async fn close(&self, epoch: u64, last: Vec<Outgoing>) -> Result<(), Vec<Outgoing>> {
        match self
            .commands
            .send(Box::new(Command::Close { epoch, last }))
            .await
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(command)) => match *command {
                Command::Close { last, .. } => Err(last),
                _ => Err(Vec::new()),
            },
        }
    }

    /// Connection `epoch` ended: unless the client resumes within the grace
    /// period, the session is logged out (rule 7 cancels what the user sent if
    /// it was their last device).
    pub async fn detach(&self, epoch: u64) {
        let _ = self
            .commands
            .send(Box::new(Command::Detach { epoch }))
            .await;
    }
}

/// Logs a device in to the hub and starts its session with `link` attached;
/// the session sends `welcome` first. `handover`: what a session that could
/// not be resumed left for this one.
pub fn open(
    ctx: &Arc<ServerContext>,
    user: UserId,
    device: DeviceId,
    token: &str,
    link: Link,
    handover: Option<Handover>,
) -> Result<SessionHandle, Error> {
    let (pushes, inbox) = mpsc::unbounded_channel();
    let hub_session = ctx.hub.login(
        user.clone(),
        device.clone(),
        token,
        Arc::new(PushSink(pushes)),
    )?;
    let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
    let handle = SessionHandle {
        secret: new_secret().into(),
        user,
        device,
        commands,
    };
    ctx.sessions.insert(handle.clone());
    ctx.metrics.sessions_live.inc();
    actor::spawn(
        ctx.clone(),
        handle.secret.clone(),
        hub_session,
        link,
        handover,
        queue,
        inbox,
    );
    Ok(handle)
}

/// The hub's way to a session: a non-blocking send, whatever the hub holds.
/// (Boxed, so that the channel's first block is small.)
struct PushSink(UnboundedSender<Box<Push>>);

impl SessionSink for PushSink {
    fn deliver(&self, push: Push) {
        let _ = self.0.send(Box::new(push));
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
        self.by_secret.lock().remove(secret);
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
