//! The link task: one per login, and the only owner of the socket and of the
//! session's state (the requests waiting for results, the token, the tracker
//! of what the application was told, the session to resume). The application's
//! handle reaches it only through two channels: `Command`s, and one close
//! signal. It never waits for anyone: results, pushes and connection states
//! leave it as jobs queued on the client's dispatcher.
//!
//! Its life: the first connection (whose outcome is the login's), then serve,
//! and when the connection drops, reconnect with backoff and serve again,
//! until the session ends (logout, kicked out, token expired, a refused
//! re-login) or the client lets go of it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::dial::{self, Socket, Target};
use super::receipts::{self, Receipts};
use super::requests::{Answered, Request, Requests};
use super::tracker::Tracker;
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::wire::{ClientFrame, Resume, ServerFrame, Welcome};
use crate::protocol::SessionSink;
use crate::protocol::{ConnectionReason, ConnectionState, Limits, Push, Snapshot};

const SUB_TAG: &str = "client";
/// Reconnect delays double from the first to the last ([`Backoff`]).
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_LAST: Duration = Duration::from_secs(30);
/// A connection that stayed up as long as the wait before it, or this long,
/// was healthy: the next reconnect starts from the first delay again.
const BACKOFF_STABLE: Duration = Duration::from_secs(10);

/// The reconnect delays. They start over only after a healthy connection,
/// so a server that welcomes and then closes at once is redialled ever more
/// slowly, not four times a second.
struct Backoff {
    /// The next wait, before jitter.
    next: Duration,
    /// The wait (with jitter) before the last dial.
    waited: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
            waited: Duration::ZERO,
        }
    }

    /// The wait before the next dial (50 to 100 % of the delay); the delay
    /// after it doubles.
    fn wait(&mut self) -> Duration {
        self.waited = self.next.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        self.next = (self.next * 2).min(BACKOFF_LAST);
        self.waited
    }

    /// A connection was lost after `lasted`.
    fn lost(&mut self, lasted: Duration) {
        if lasted >= self.waited.min(BACKOFF_STABLE) {
            self.next = BACKOFF_FIRST;
        }
    }
}
/// Acknowledge received frames after this many, or at the next heartbeat.
const ACK_EVERY: u64 = 64;
/// How long closing waits for the logout frame to be written.
const LOGOUT_WRITE_WAIT: Duration = Duration::from_secs(1);
/// How often requests' deadlines are checked.
const TICK: Duration = Duration::from_millis(250);
/// From the application's handle to the link.
pub(crate) enum Command {
    Request(Request),
    /// A frame without a result (a receipt, the login's sync): kept while
    /// disconnected, sent after the reconnect, and sent again after a resume
    /// when the server does not show it arrived.
    Notice(Notice),
}

/// A frame without a result.
pub(crate) enum Notice {
    /// The login's plain sync (a fresh session skips it: the link sends its
    /// own, with `known`).
    Sync,
    /// The receipt of rule 4 for an invitation.
    Receipt(crate::protocol::InvitationId),
}

fn plain_sync() -> Option<String> {
    serde_json::to_string(&ClientFrame::Sync { known: None }).ok()
}

/// Sent by a logout; the link drops it once it has stopped delivering,
/// completed every request, and written the logout frame (or given up on it
/// after `LOGOUT_WRITE_WAIT`).
pub(crate) type Closed = std::sync::mpsc::SyncSender<()>;

/// The close signal: `Some` from a logout that waits, `None` if the handle
/// was dropped without one (the link closes all the same).
type Closing = oneshot::Receiver<Closed>;

/// Why serving a connection stopped.
enum Lost {
    /// Dropped, refused or silent: reconnect.
    Network(ConnectionReason),
    /// The session is over (kicked out, token expired): stop.
    Ended,
    /// Every handle is gone: close.
    Abandoned,
}

pub(crate) struct Link {
    target: Arc<Target>,
    sink: Arc<dyn SessionSink>,
    inbox: UnboundedReceiver<Command>,
    /// The newest token the server accepted: used when re-authenticating.
    token: String,
    requests: Requests,
    tracker: Tracker,
    /// The login's sync, when it came while no connection was up.
    sync_waiting: bool,
    /// The first sync written in the current session (the login's plain one,
    /// or the link's with `known` on a later fresh session): sent again after
    /// a resume whose welcome says the server never had it (`synced: false`).
    sync_sent: Option<String>,
    /// The receipts sent whose effect was not seen yet: sent again after
    /// every reconnect (queued while away, they wait here too).
    receipts: Receipts,
    /// The longest an invitation rings (the hub's `max_timeout_secs`).
    ringing_at_most: Duration,
    /// The session to resume after a drop, and the last `seq` received in it.
    session: Option<String>,
    seen: u64,
}

impl Link {
    pub fn new(
        target: Arc<Target>,
        token: String,
        sink: Arc<dyn SessionSink>,
        inbox: UnboundedReceiver<Command>,
    ) -> Link {
        Link {
            sink,
            inbox,
            token,
            requests: Requests::new(target.timeout),
            tracker: Tracker::new(target.user.clone()),
            sync_waiting: false,
            sync_sent: None,
            receipts: Receipts::new(target.user.clone()),
            ringing_at_most: Duration::from_secs(u64::from(Limits::default().max_timeout_secs)),
            session: None,
            seen: 0,
            target,
        }
    }

    /// Runs the link. `welcomed` gets the login's outcome: the hub's limits,
    /// or why the first connection failed.
    pub async fn run(mut self, mut closing: Closing, welcomed: oneshot::Sender<Result<Limits>>) {
        let first = match self.first_open(&mut closing).await {
            Some(first) => first,
            None => {
                let _ = welcomed.send(Err(Error::new(
                    ErrorCode::Shutdown,
                    "the login was cancelled (logout or free) before the server welcomed it",
                )));
                return;
            }
        };
        let (mut socket, mut welcome) = match first {
            Ok(opened) => opened,
            Err(error) => {
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "login to {} failed: {error}",
                    self.target.url
                );
                let _ = welcomed.send(Err(error));
                return;
            }
        };
        super::hooks::maybe_panic(&self.target.user, super::hooks::LinkPanic::Login);
        self.welcomed(&welcome);
        let _ = welcomed.send(Ok(welcome.limits.clone()));
        // The first session's sync comes from the client, after the login's
        // callback; a later fresh session's from the link.
        let mut fresh = false;
        let mut backoff = Backoff::new();
        let mut connected_at = Instant::now();
        loop {
            let lost = tokio::select! {
                biased;
                closed = &mut closing => return self.close_connected(socket, closed.ok()).await,
                lost = self.serve(&mut socket, &welcome, fresh) => lost,
            };
            // Up until the loss, not until the close below is done.
            let lasted = connected_at.elapsed();
            let reason = match lost {
                Lost::Network(reason) => reason,
                Lost::Ended => {
                    let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                    return;
                }
                Lost::Abandoned => return self.close_connected(socket, None).await,
            };
            tokio::select! {
                biased;
                closed = &mut closing => return self.close_away(closed.ok()),
                _ = timeout(Duration::from_secs(1), socket.close(None)) => {}
            }
            crate::log!(
                Level::Warn,
                SUB_TAG,
                "connection to {} lost ({reason:?}): reconnecting",
                self.target.url
            );
            self.sink
                .link_changed(ConnectionState::Reconnecting, reason);
            backoff.lost(lasted);
            let Some(opened) = self.reconnect(&mut closing, &mut backoff).await else {
                return;
            };
            connected_at = Instant::now();
            (socket, welcome) = opened;
            fresh = !welcome.resumed;
            self.welcomed(&welcome);
            crate::log!(
                Level::Info,
                SUB_TAG,
                "reconnected to {} ({})",
                self.target.url,
                if fresh {
                    "a new session: what was missed follows from a snapshot"
                } else {
                    "session resumed"
                }
            );
            // CONNECTED with reason NETWORK: resumed, nothing was lost. With
            // reason LOGIN: logged in afresh; missed events follow.
            let reason = if fresh {
                ConnectionReason::Login
            } else {
                ConnectionReason::Network
            };
            self.sink.link_changed(ConnectionState::Connected, reason);
        }
    }

    /// Opens the first connection, unless the link is closed first (a logout
    /// or free cancelling the login; then `None`). Before the hello is
    /// written, closing drops the connection; after, a welcome that still
    /// comes is logged out, so the cancelled login cannot take the device's
    /// session from a later one.
    async fn first_open(&mut self, closing: &mut Closing) -> Option<Result<(Socket, Welcome)>> {
        let target = self.target.clone();
        let deadline = Instant::now() + target.timeout;
        let socket = tokio::select! {
            biased;
            closed = &mut *closing => {
                self.close_away(closed.ok());
                return None;
            }
            socket = dial::within(&target, deadline, dial::connect(&target)) => socket,
        };
        let socket = match socket {
            Ok(socket) => socket,
            Err(error) => return Some(Err(error)),
        };
        let opening = dial::within(
            &target,
            deadline,
            dial::hello(&target, socket, self.token.clone(), None),
        );
        tokio::pin!(opening);
        tokio::select! {
            biased;
            closed = &mut *closing => {
                self.close_opening(closed.ok(), opening).await;
                None
            }
            first = &mut opening => Some(first),
        }
    }

    fn welcomed(&mut self, welcome: &Welcome) {
        if !welcome.resumed {
            self.seen = 0;
        }
        self.session = Some(welcome.session.clone());
        if welcome.limits.max_timeout_secs > 0 {
            self.ringing_at_most = Duration::from_secs(u64::from(welcome.limits.max_timeout_secs));
        }
        self.requests.ids_above(welcome.last_request);
    }

    fn resume(&self) -> Option<Resume> {
        self.session.as_ref().map(|session| Resume {
            session: session.clone(),
            seq: self.seen,
        })
    }

    // ---- serving a connection -------------------------------------------------------

    /// Runs one connection until it is lost or the session ends. Cancelled
    /// (dropped at an await) when the link is closed: everything it owns is in
    /// `self` and consistent at every await.
    async fn serve(&mut self, socket: &mut Socket, welcome: &Welcome, fresh: bool) -> Lost {
        if let Err(lost) = self.catch_up(socket, welcome, fresh).await {
            return lost;
        }
        let heartbeat = Duration::from_secs(u64::from(welcome.heartbeat_secs.clamp(1, 300)));
        let tick = heartbeat.min(TICK);
        let mut ticks = tokio::time::interval_at(Instant::now() + tick, tick);
        let mut last_ping = Instant::now();
        let mut last_heard = Instant::now();
        let mut acked = self.seen;
        let mut reason = ConnectionReason::Network;
        loop {
            tokio::select! {
                frame = socket.next() => {
                    last_heard = Instant::now();
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Lost::Network(reason),
                        Some(Ok(_)) => continue,
                    };
                    match ServerFrame::decode(&text) {
                        Ok(frame) => {
                            if let Some(lost) = self.received(frame, &mut reason) {
                                return lost;
                            }
                        }
                        Err(e) => {
                            crate::log!(Level::Warn, SUB_TAG, "unexpected frame from the server ({e}): {text}");
                        }
                    }
                    if self.seen >= acked + ACK_EVERY {
                        acked = self.seen;
                        if send_ack(socket, acked).await.is_err() {
                            return Lost::Network(reason);
                        }
                    }
                }
                command = self.inbox.recv() => {
                    let Some(command) = command else { return Lost::Abandoned };
                    // Write what else is queued in the same flush.
                    let mut next = Some(command);
                    while let Some(command) = next.take() {
                        if let Some(frame) = self.frame_for(command, welcome) {
                            if socket.feed(Message::Text(frame.into())).await.is_err() {
                                return Lost::Network(reason);
                            }
                        }
                        next = self.inbox.try_recv().ok();
                    }
                    if flush(socket, heartbeat).await.is_err() {
                        return Lost::Network(reason);
                    }
                }
                _ = ticks.tick() => {
                    let now = Instant::now();
                    self.requests.expire(now);
                    if now.duration_since(last_heard) >= heartbeat * 3 {
                        crate::log!(Level::Warn, SUB_TAG, "the server is silent for three heartbeats");
                        return Lost::Network(ConnectionReason::Network);
                    }
                    if now.duration_since(last_ping) >= heartbeat {
                        last_ping = now;
                        if socket.send(Message::Ping(Default::default())).await.is_err() {
                            return Lost::Network(reason);
                        }
                        if self.seen > acked {
                            acked = self.seen;
                            if send_ack(socket, acked).await.is_err() {
                                return Lost::Network(reason);
                            }
                        }
                    }
                }
            }
        }
    }

    /// After a (re)connect: the receipts not confirmed yet (those queued
    /// while away, and those sent whose effect was not seen), the requests
    /// the server has not answered (in id order), and the sync: after a
    /// session that could not be resumed, one naming what the application
    /// knows as open; after a resume, the login's sync if it came while away,
    /// or the session's first sync again if the welcome says the server never
    /// had it (`synced: false`; it was lost with the connection). A sync not
    /// sent yet is never sent here twice.
    ///
    /// On a resumed session the server replays the results of requests up to
    /// `last_request`, so only those above are sent again. On a fresh session
    /// every unanswered request is sent again, with its id and frame (and so
    /// its idempotency key) unchanged: the server answers those it handled
    /// from the results it kept, and handles the others. They go before the
    /// sync, so a re-sent send's result reaches the tracker before the
    /// snapshot (and pushes start only after the sync).
    async fn catch_up(
        &mut self,
        socket: &mut Socket,
        welcome: &Welcome,
        fresh: bool,
    ) -> std::result::Result<(), Lost> {
        let lost = || Lost::Network(ConnectionReason::Network);
        // A receipt is sent again until its effect shows (the server ignores
        // a repeat): one written just before the drop may never have arrived.
        let mut backlog = self.receipts.frames(Instant::now());
        let sync_waiting = std::mem::take(&mut self.sync_waiting);
        let mut sync = None;
        if fresh {
            // A fresh session gets the link's own sync, below.
            self.sync_sent = None;
        } else if sync_waiting {
            sync = plain_sync();
        } else if welcome.resumed && welcome.synced == Some(false) {
            // (`None`: an older server that does not say; nothing is re-sent.)
            sync = self.sync_sent.clone();
        }
        let above = if fresh { 0 } else { welcome.last_request };
        let resend = self.requests.unanswered(above);
        for id in resend {
            if let Some(frame) = self.frame_if_fits(id, welcome) {
                backlog.push(frame);
            }
        }
        if fresh {
            let mut known = self.tracker.known();
            known.truncate(Snapshot::MAX_KNOWN);
            sync = serde_json::to_string(&ClientFrame::Sync { known: Some(known) }).ok();
        }
        if let Some(sync) = sync {
            if self.sync_sent.is_none() {
                self.sync_sent = Some(sync.clone());
            }
            backlog.push(sync);
        }
        for frame in backlog {
            if socket.feed(Message::Text(frame.into())).await.is_err() {
                return Err(lost());
            }
        }
        let heartbeat = Duration::from_secs(u64::from(welcome.heartbeat_secs.clamp(1, 300)));
        flush(socket, heartbeat).await.map_err(|()| lost())
    }

    /// The frame to write for `command` (a request is registered first; one
    /// the server could not take is failed instead).
    fn frame_for(&mut self, command: Command, welcome: &Welcome) -> Option<String> {
        match command {
            Command::Request(request) => {
                super::hooks::maybe_panic(&self.target.user, super::hooks::LinkPanic::Request);
                let id = self.requests.add(request);
                self.frame_if_fits(id, welcome)
            }
            Command::Notice(Notice::Sync) => {
                let sync = plain_sync()?;
                if self.sync_sent.is_none() {
                    self.sync_sent = Some(sync.clone());
                }
                Some(sync)
            }
            Command::Notice(Notice::Receipt(invitation_id)) => {
                self.keep_receipt(&invitation_id);
                receipts::frame(&invitation_id)
            }
        }
    }

    /// Keeps a receipt until its effect shows (unless the application was
    /// already told it would change nothing).
    fn keep_receipt(&mut self, invitation_id: &crate::protocol::InvitationId) {
        if self.tracker.past_receipt(invitation_id) {
            self.receipts.forget(invitation_id);
            return;
        }
        self.receipts
            .sent(invitation_id, self.ringing_at_most, Instant::now());
    }

    /// The frame of request `id`, if it is waiting. A request over the
    /// server's frame limit would make the server close the connection (and
    /// the link send it again after reconnecting, in a loop): it fails at once
    /// with PAYLOAD_TOO_LARGE instead.
    fn frame_if_fits(&mut self, id: u64, welcome: &Welcome) -> Option<String> {
        let frame = self.requests.frame(id)?;
        let limit = welcome.max_frame_bytes;
        let size = frame.len();
        if limit == 0 || size <= limit {
            return Some(frame);
        }
        self.requests.fail(
            id,
            Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "request: its frame is {size} bytes, over the server's max_frame_bytes \
                     ({limit}); send less extended data or a smaller notification"
                ),
            ),
        );
        None
    }

    /// Handles one frame from the server; `Some` when the connection or the
    /// session ends with it.
    fn received(&mut self, frame: ServerFrame, reason: &mut ConnectionReason) -> Option<Lost> {
        match frame {
            ServerFrame::Result { id, seq, ok, error } => {
                self.seen = seq.max(self.seen);
                let result = match error {
                    Some(error) => Err(Error::from(error)),
                    None => Ok(ok),
                };
                match self.requests.answer(id, result) {
                    Answered::Sent {
                        invitation_id,
                        offline,
                        invitees,
                        timeout_secs,
                    } => self.tracker.sent(
                        &invitation_id,
                        &invitees,
                        &offline,
                        timeout_secs,
                        Instant::now(),
                    ),
                    Answered::Token(token) => self.token = token,
                    Answered::Nothing => {}
                }
            }
            ServerFrame::Push { seq, push } => {
                self.seen = seq.max(self.seen);
                let why = match push {
                    Push::KickedOut => Some("kicked out: the device logged in elsewhere"),
                    Push::TokenExpired => Some("the token expired"),
                    _ => None,
                };
                if let Some(why) = why {
                    self.sink.deliver(push);
                    self.finish(&Error::new(ErrorCode::Network, why));
                    return Some(Lost::Ended);
                }
                self.receipts.confirmed_by(&push);
                if let Some(push) = self.tracker.pass(push, Instant::now()) {
                    self.sink.deliver(push);
                }
            }
            ServerFrame::Snapshot { seq, snapshot } => {
                self.seen = seq.max(self.seen);
                self.receipts.confirmed_by_snapshot(&snapshot);
                let missed = self.tracker.missed(&snapshot, Instant::now());
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "snapshot of {} invitations after a lost session: {} missed events told",
                    snapshot.invitations.len(),
                    missed.len()
                );
                for push in missed {
                    self.sink.deliver(push);
                }
            }
            ServerFrame::Shutdown => *reason = ConnectionReason::ServerShutdown,
            ServerFrame::Error(error) => {
                crate::log!(
                    Level::Warn,
                    SUB_TAG,
                    "the server reported: {} {}",
                    error.code,
                    error.message
                );
            }
            ServerFrame::Welcome(_) => {
                crate::log!(Level::Warn, SUB_TAG, "unexpected welcome from the server");
            }
        }
        None
    }

    // ---- away: reconnecting ---------------------------------------------------------

    /// Reconnects with `backoff`, taking commands and expiring requests
    /// meanwhile. `None` when the link is done (closed, or the session could
    /// not be restored).
    async fn reconnect(
        &mut self,
        closing: &mut Closing,
        backoff: &mut Backoff,
    ) -> Option<(Socket, Welcome)> {
        loop {
            let until = Instant::now() + backoff.wait();
            let away = tokio::select! {
                biased;
                closed = &mut *closing => Some(closed.ok()),
                abandoned = self.wait_away(until) => abandoned.then_some(None),
            };
            if let Some(closed) = away {
                self.close_away(closed);
                return None;
            }
            let opening = dial::open(self.target.clone(), self.token.clone(), self.resume());
            tokio::pin!(opening);
            let mut ticks = tokio::time::interval(TICK);
            let opened = loop {
                tokio::select! {
                    biased;
                    closed = &mut *closing => {
                        self.close_opening(closed.ok(), opening).await;
                        return None;
                    }
                    opened = &mut opening => break opened,
                    command = self.inbox.recv() => match command {
                        Some(command) => self.keep(command),
                        None => {
                            self.close_opening(None, opening).await;
                            return None;
                        }
                    },
                    _ = ticks.tick() => self.requests.expire(Instant::now()),
                }
            };
            match opened {
                Ok(opened) => return Some(opened),
                Err(error) if is_fatal(&error) => {
                    crate::log!(Level::Warn, SUB_TAG, "cannot log in again: {error}");
                    self.finish(&Error::new(
                        ErrorCode::Network,
                        format!("the session could not be restored: {}", error.message),
                    ));
                    let reason = if error.code == ErrorCode::TokenExpired {
                        ConnectionReason::TokenExpired
                    } else {
                        ConnectionReason::Login
                    };
                    self.sink
                        .link_changed(ConnectionState::Disconnected, reason);
                    return None;
                }
                Err(error) => {
                    crate::log!(Level::Info, SUB_TAG, "reconnect failed: {error}");
                }
            }
        }
    }

    /// Waits until `until`, keeping commands for the next connection and
    /// failing requests whose time is up. True if every handle is gone.
    async fn wait_away(&mut self, until: Instant) -> bool {
        loop {
            let now = Instant::now();
            self.requests.expire(now);
            if now >= until {
                return false;
            }
            tokio::select! {
                command = self.inbox.recv() => match command {
                    Some(command) => self.keep(command),
                    None => return true,
                },
                _ = sleep((until - now).min(TICK)) => {}
            }
        }
    }

    /// While away: a request waits in the table, the login's sync and a
    /// receipt with the link's notices (all sent after the reconnect).
    fn keep(&mut self, command: Command) {
        match command {
            Command::Request(request) => {
                super::hooks::maybe_panic(&self.target.user, super::hooks::LinkPanic::Request);
                self.requests.add(request);
            }
            Command::Notice(Notice::Sync) => self.sync_waiting = true,
            // Sent with the other unconfirmed receipts after the reconnect.
            Command::Notice(Notice::Receipt(invitation_id)) => self.keep_receipt(&invitation_id),
        }
    }

    // ---- the end ---------------------------------------------------------------------

    /// The session is over: no more commands are taken, and every request
    /// still waiting, queued or not, completes with `error`.
    fn finish(&mut self, error: &Error) {
        self.inbox.close();
        while let Ok(command) = self.inbox.try_recv() {
            if let Command::Request(request) = command {
                request.fail(error.clone());
            }
        }
        self.requests.fail_all(error);
        self.sync_waiting = false;
        self.receipts.clear();
    }

    /// Closed while connected: the logout frame is written (at most
    /// `LOGOUT_WRITE_WAIT`), then the waiting logout is let go, then the
    /// connection closes.
    async fn close_connected(&mut self, mut socket: Socket, closed: Option<Closed>) {
        self.finish(&Error::shutdown());
        self.write_logout(&mut socket).await;
        drop(closed);
        let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
    }

    /// Closed between connections: nothing to write.
    fn close_away(&mut self, closed: Option<Closed>) {
        self.finish(&Error::shutdown());
        drop(closed);
    }

    /// Closed while a reconnect is under way: the server may welcome it yet,
    /// and then its new session must be logged out rather than left to ring
    /// for the grace period. The waiting logout is let go once that is done,
    /// or after `LOGOUT_WRITE_WAIT`; the link finishes the rest alone.
    async fn close_opening<F>(
        &mut self,
        mut closed: Option<Closed>,
        mut opening: std::pin::Pin<&mut F>,
    ) where
        F: std::future::Future<Output = Result<(Socket, Welcome)>>,
    {
        self.finish(&Error::shutdown());
        let deadline = Instant::now() + LOGOUT_WRITE_WAIT;
        let opened = match timeout_at(deadline, &mut opening).await {
            Ok(opened) => opened,
            Err(_) => {
                drop(closed.take());
                opening.await
            }
        };
        if let Ok((mut socket, _)) = opened {
            self.write_logout(&mut socket).await;
            drop(closed);
            let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
        }
    }

    async fn write_logout(&mut self, socket: &mut Socket) {
        let id = self.requests.take_id();
        let Ok(frame) = serde_json::to_string(&ClientFrame::Logout { id }) else {
            return;
        };
        let written = timeout(LOGOUT_WRITE_WAIT, socket.send(Message::Text(frame.into()))).await;
        if !matches!(written, Ok(Ok(()))) {
            crate::log!(
                Level::Info,
                SUB_TAG,
                "the logout frame could not be written; the server ends the session after its grace period"
            );
        }
    }
}

/// Errors after which reconnecting is pointless.
fn is_fatal(error: &Error) -> bool {
    matches!(
        error.code,
        ErrorCode::AuthFailed
            | ErrorCode::TokenExpired
            | ErrorCode::InvalidArgument
            | ErrorCode::NotPermitted
    )
}

/// Flushes what was fed, within three heartbeats: a peer that takes nothing
/// for that long is as gone as a silent one.
async fn flush(socket: &mut Socket, heartbeat: Duration) -> std::result::Result<(), ()> {
    match timeout(heartbeat * 3, socket.flush()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn send_ack(socket: &mut Socket, seq: u64) -> std::result::Result<(), ()> {
    let frame = serde_json::to_string(&ClientFrame::Ack { seq }).map_err(|_| ())?;
    socket
        .send(Message::Text(frame.into()))
        .await
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn between(wait: Duration, low_ms: u64, high_ms: u64) -> bool {
        wait >= Duration::from_millis(low_ms) && wait <= Duration::from_millis(high_ms)
    }

    #[test]
    fn the_delays_start_over_only_after_a_healthy_connection() {
        let mut backoff = Backoff::new();
        let first = backoff.wait();
        assert!(between(first, 125, 250), "{first:?}");
        // Welcomed, then closed at once: the delay keeps growing.
        backoff.lost(Duration::ZERO);
        let second = backoff.wait();
        assert!(between(second, 250, 500), "{second:?}");
        // Up as long as the wait before it: healthy.
        backoff.lost(second);
        let third = backoff.wait();
        assert!(between(third, 125, 250), "{third:?}");
        // The delay stops at the last; a connection of BACKOFF_STABLE is
        // healthy however long the wait was.
        for _ in 0..20 {
            backoff.wait();
        }
        assert_eq!(backoff.next, BACKOFF_LAST);
        backoff.lost(BACKOFF_STABLE - Duration::from_millis(1));
        assert_eq!(backoff.next, BACKOFF_LAST);
        backoff.lost(BACKOFF_STABLE);
        assert_eq!(backoff.next, BACKOFF_FIRST);
    }
}
