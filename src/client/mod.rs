//! The client: one device's view of Beckon. It logs in through a transport, turns
//! every operation into exactly one callback, and hands the hub's pushes to the
//! application's event handler, deduplicated (rule 9) and acknowledged (rule 4).
//!
//! Two styles over one implementation: `*_then` methods take a callback (the C
//! ABI uses these), and `async` methods await the same callback.

mod config;
mod dispatcher;
mod event;
mod pending;
mod pool;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

pub use config::{CallOptions, ClientConfig, DispatchMode};
pub use event::{Event, EventHandler};
pub use pending::Callback;

use crate::error::{Error, Result};
use crate::log::Level;
use crate::protocol::SessionSink;
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, ConnectionReason, ConnectionState, DeviceId,
    IdHashBuilder, InvitationId, Push, SendInvitation, SendOutcome, UserId,
};
use crate::transport::{self, Connection, LoginRequest};
use dispatcher::{Dispatcher, Job, JobRunner};
use pending::Pending;

const SUB_TAG: &str = "client";

/// A client. Dropping it is `free`: pending callbacks run with SHUTDOWN first.
pub struct Client {
    core: Arc<ClientCore>,
}

enum Link {
    LoggedOut,
    /// The login's callback waits here until the transport answers; `free`
    /// takes it first if it comes first (a network login can take seconds).
    LoggingIn(LoginSlot),
    /// `login_epoch` tells this session's pushes from an older one's.
    LoggedIn {
        conn: Arc<dyn Connection>,
        login_epoch: u64,
    },
    /// A logout waits for its transport to stop, without this lock held;
    /// meanwhile a login is refused, so its events cannot overtake the
    /// logout's.
    LoggingOut,
}

/// A login under way: its callback, and the transport's attempt, which a
/// logout or `free` cancels.
#[derive(Default)]
struct LoginInProgress {
    pending: Option<Pending<()>>,
    attempt: Option<transport::Attempt>,
    /// Set by the logout or `free` that took the callback: an attempt stored
    /// after that is cancelled by whoever stores it.
    cancelled: bool,
}

type LoginSlot = Arc<Mutex<LoginInProgress>>;

impl LoginInProgress {
    /// Taken by a logout or `free`: the login's callback (unless the login
    /// has finished) and the attempt to cancel (unless not stored yet; then
    /// whoever stores it cancels it).
    fn cancel(&mut self) -> (Option<Pending<()>>, Option<transport::Attempt>) {
        self.cancelled = true;
        (self.pending.take(), self.attempt.take())
    }
}

/// What a logout ends.
enum Ending {
    Session(Arc<dyn Connection>),
    Login((Option<Pending<()>>, Option<transport::Attempt>)),
}

pub(crate) struct ClientCore {
    config: ClientConfig,
    device: DeviceId,
    dispatcher: Arc<Dispatcher>,
    handler: RwLock<Option<EventHandler>>,
    /// Held while an event handler runs, so that replacing the handler can
    /// wait until the old one has returned.
    delivering: Mutex<()>,
    link: Mutex<Link>,
    /// Counts logins, so pushes of an older session are told from current ones.
    login_epoch: AtomicU64,
    /// Open until `free`. Operations hold it shared while they start, so `free`
    /// (which takes it exclusively) never races an operation half-accepted.
    open: RwLock<bool>,
    /// Mirrors `!open` for quick checks that must not take the gate again.
    closed: AtomicBool,
    /// Invitations already handed to the application (rule 9).
    seen: Mutex<SeenInvitations>,
    /// The state of the last CONNECTION_STATE_CHANGED dispatched (a
    /// `ConnectionState` as i32): what the application has been told.
    connection_state: AtomicI32,
}

/// The invitations a client has shown, per user (a client that logs in as
/// another user shows that user's invitations), each with when it may go.
struct SeenInvitations {
    forget_at: HashMap<SeenKey, Instant, IdHashBuilder>,
    /// Sweep expired entries when the map reaches this size, then set it to
    /// twice what is left: amortized O(1) per insert, however many are live.
    sweep_at: usize,
}

/// An invitation shown to a user. Hashed by the invitation id's key alone (no
/// text hashing on the hot path); the user only breaks ties.
#[derive(PartialEq, Eq)]
struct SeenKey {
    invitation_id: InvitationId,
    user: UserId,
}

impl std::hash::Hash for SeenKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.invitation_id.hash(state);
    }
}

/// Queues a session's pushes on its client's dispatcher, tagged with the login
/// they belong to.
struct ClientSink {
    dispatcher: Arc<Dispatcher>,
    login_epoch: u64,
    user: UserId,
}

impl SessionSink for ClientSink {
    fn deliver(&self, push: Push) {
        self.dispatcher.enqueue(Job::Push {
            login_epoch: self.login_epoch,
            user: self.user.clone(),
            push,
        });
    }

    fn link_changed(&self, state: ConnectionState, reason: ConnectionReason) {
        self.dispatcher.enqueue(Job::Link {
            login_epoch: self.login_epoch,
            state,
            reason,
        });
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        transport::check_url(&config.server_url)?;
        if config.request_timeout.is_zero() {
            return Err(Error::invalid("request_timeout: must be above zero"));
        }
        let device = config.device_id.clone().unwrap_or_else(DeviceId::random);
        let dispatcher = Dispatcher::new(config.dispatch);
        let core = Arc::new(ClientCore {
            config,
            device,
            dispatcher: dispatcher.clone(),
            handler: RwLock::new(None),
            delivering: Mutex::new(()),
            link: Mutex::new(Link::LoggedOut),
            login_epoch: AtomicU64::new(0),
            open: RwLock::new(true),
            closed: AtomicBool::new(false),
            connection_state: AtomicI32::new(ConnectionState::Disconnected as i32),
            seen: Mutex::new(SeenInvitations {
                forget_at: HashMap::default(),
                sweep_at: 1024,
            }),
        });
        dispatcher.start(core.clone())?;
        crate::log!(
            Level::Info,
            SUB_TAG,
            "client created: server '{}', device '{}'",
            core.config.server_url,
            core.device
        );
        Ok(Client { core })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.core.config
    }

    /// This client's device id: the configured one, or the random one it
    /// made (a new one per client, so an app that wants to be the same device
    /// after a restart configures its own and keeps it).
    pub fn device_id(&self) -> &DeviceId {
        &self.core.device
    }

    /// The user this client is logged in as, once the login has succeeded and
    /// until logout (or the hub ends the session).
    pub fn user_id(&self) -> Option<UserId> {
        match &*self.core.link.lock() {
            Link::LoggedIn { conn, .. } => Some(conn.user().clone()),
            _ => None,
        }
    }

    /// The state of the last CONNECTION_STATE_CHANGED event dispatched to the
    /// application (DISCONNECTED before any): the state the app has been told.
    pub fn connection_state(&self) -> ConnectionState {
        match self.core.connection_state.load(Ordering::Acquire) {
            1 => ConnectionState::Connecting,
            2 => ConnectionState::Connected,
            3 => ConnectionState::Reconnecting,
            _ => ConnectionState::Disconnected,
        }
    }

    /// Replaces the event handler (`None` drops events) and returns once the
    /// old one is not running and will not be called again, so what it uses
    /// may be released. Two exceptions, where waiting could deadlock: called
    /// from this client's own callback, the old handler may be the caller
    /// (it is not called again once that returns); called from another
    /// client's callback, it does not wait.
    pub fn set_event_handler(&self, handler: Option<EventHandler>) {
        let old = std::mem::replace(&mut *self.core.handler.write(), handler);
        if !dispatcher::in_a_callback() {
            drop(self.core.delivering.lock());
        }
        drop(old);
    }

    /// Poll mode: runs queued callbacks on this thread (see `Dispatcher::poll`).
    pub fn poll(&self, timeout: Duration) -> Result<usize> {
        self.poller().poll(timeout)
    }

    /// A handle that polls this client and keeps what polling uses alive, even
    /// if a callback run by the poll frees the client.
    pub fn poller(&self) -> Poller {
        Poller {
            core: self.core.clone(),
        }
    }

    /// Frees the client: logs out, fails every pending operation with SHUTDOWN
    /// (their callbacks run), and returns once no callback of this client runs
    /// or will run. Called from one of this client's own callbacks, the queued
    /// callbacks run nested in that call. Idempotent.
    ///
    /// Fails with WOULD_DEADLOCK, having done nothing, when called from
    /// another client's callback while this client's callback is itself
    /// freeing that client (each would wait for the other).
    pub fn try_shutdown(&self) -> Result<()> {
        self.core.shutdown()
    }

    /// `try_shutdown`, for when nothing can be done about WOULD_DEADLOCK: then
    /// the client is left open (and logged at ERROR), which leaks it rather
    /// than hang. Dropping a `Client` does this.
    pub fn shutdown(&self) {
        if let Err(error) = self.core.shutdown() {
            crate::log!(Level::Error, SUB_TAG, "{error}; the client is left open");
        }
    }

    // ---- callback style -------------------------------------------------------

    pub fn login_then(&self, user: UserId, token: String, done: Callback<()>) -> Result<()> {
        self.core.login(user, token, done)
    }

    pub fn logout_then(&self, done: Callback<()>) -> Result<()> {
        self.core.logout(done)
    }

    pub fn renew_token_then(&self, token: String, done: Callback<()>) -> Result<()> {
        self.renew_token_then_with(token, CallOptions::default(), done)
    }

    pub fn renew_token_then_with(
        &self,
        token: String,
        options: CallOptions,
        done: Callback<()>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        self.core.operate(done, move |conn, reply| {
            conn.renew_token(&token, within, reply)
        })
    }

    pub fn send_invitation_then(
        &self,
        request: SendInvitation,
        done: Callback<SendOutcome>,
    ) -> Result<()> {
        self.send_invitation_then_with(request, CallOptions::default(), done)
    }

    pub fn send_invitation_then_with(
        &self,
        mut request: SendInvitation,
        options: CallOptions,
        done: Callback<SendOutcome>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        request.fold_invitees();
        let conn = self.core.connection()?;
        request.validate(Some(conn.user()), conn.limits())?;
        crate::log!(Level::Info, "room", "send invitation, invitees: {:?}, timeout: {}, extended data: {} bytes, notification: {}", request.invitees, request.timeout_secs, request.extended_data.len(), request.notification.is_some());
        self.core
            .operate(logged("send invitation", done), move |conn, reply| {
                conn.send(request, within, reply)
            })
    }

    pub fn cancel_invitation_then(
        &self,
        request: CancelInvitation,
        done: Callback<CancelOutcome>,
    ) -> Result<()> {
        self.cancel_invitation_then_with(request, CallOptions::default(), done)
    }

    pub fn cancel_invitation_then_with(
        &self,
        request: CancelInvitation,
        options: CallOptions,
        done: Callback<CancelOutcome>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        let conn = self.core.connection()?;
        conn.limits()
            .check_extended_data("extended_data", &request.extended_data)?;
        crate::log!(
            Level::Info,
            "room",
            "cancel invitation {}, invitees: {:?}",
            request.invitation_id,
            request.invitees
        );
        self.core
            .operate(logged("cancel invitation", done), move |conn, reply| {
                conn.cancel(request, within, reply)
            })
    }

    pub fn accept_invitation_then(&self, answer: Answer, done: Callback<()>) -> Result<()> {
        self.answer(answer, true, CallOptions::default(), done)
    }

    pub fn accept_invitation_then_with(
        &self,
        answer: Answer,
        options: CallOptions,
        done: Callback<()>,
    ) -> Result<()> {
        self.answer(answer, true, options, done)
    }

    pub fn refuse_invitation_then(&self, answer: Answer, done: Callback<()>) -> Result<()> {
        self.answer(answer, false, CallOptions::default(), done)
    }

    pub fn refuse_invitation_then_with(
        &self,
        answer: Answer,
        options: CallOptions,
        done: Callback<()>,
    ) -> Result<()> {
        self.answer(answer, false, options, done)
    }

    fn answer(
        &self,
        answer: Answer,
        accept: bool,
        options: CallOptions,
        done: Callback<()>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        let conn = self.core.connection()?;
        conn.limits()
            .check_extended_data("extended_data", &answer.extended_data)?;
        let what = if accept {
            "accept invitation"
        } else {
            "refuse invitation"
        };
        crate::log!(Level::Info, "room", "{what} {}", answer.invitation_id);
        self.core.operate(logged(what, done), move |conn, reply| {
            if accept {
                conn.accept(answer, within, reply)
            } else {
                conn.refuse(answer, within, reply)
            }
        })
    }

    // ---- async style ----------------------------------------------------------

    pub async fn login(&self, user: UserId, token: impl Into<String>) -> Result<()> {
        let token = token.into();
        awaited(|done| self.login_then(user, token, done)).await
    }

    pub async fn logout(&self) -> Result<()> {
        awaited(|done| self.logout_then(done)).await
    }

    pub async fn renew_token(&self, token: impl Into<String>) -> Result<()> {
        let token = token.into();
        awaited(|done| self.renew_token_then(token, done)).await
    }

    pub async fn send_invitation(&self, request: SendInvitation) -> Result<SendOutcome> {
        awaited(|done| self.send_invitation_then(request, done)).await
    }

    pub async fn cancel_invitation(&self, request: CancelInvitation) -> Result<CancelOutcome> {
        awaited(|done| self.cancel_invitation_then(request, done)).await
    }

    pub async fn accept_invitation(&self, answer: Answer) -> Result<()> {
        awaited(|done| self.accept_invitation_then(answer, done)).await
    }

    pub async fn refuse_invitation(&self, answer: Answer) -> Result<()> {
        awaited(|done| self.refuse_invitation_then(answer, done)).await
    }

    // The same with per-operation settings.

    pub async fn renew_token_with(
        &self,
        token: impl Into<String>,
        options: CallOptions,
    ) -> Result<()> {
        let token = token.into();
        awaited(|done| self.renew_token_then_with(token, options, done)).await
    }

    pub async fn send_invitation_with(
        &self,
        request: SendInvitation,
        options: CallOptions,
    ) -> Result<SendOutcome> {
        awaited(|done| self.send_invitation_then_with(request, options, done)).await
    }

    pub async fn cancel_invitation_with(
        &self,
        request: CancelInvitation,
        options: CallOptions,
    ) -> Result<CancelOutcome> {
        awaited(|done| self.cancel_invitation_then_with(request, options, done)).await
    }

    pub async fn accept_invitation_with(&self, answer: Answer, options: CallOptions) -> Result<()> {
        awaited(|done| self.accept_invitation_then_with(answer, options, done)).await
    }

    pub async fn refuse_invitation_with(&self, answer: Answer, options: CallOptions) -> Result<()> {
        awaited(|done| self.refuse_invitation_then_with(answer, options, done)).await
    }
}

/// See [`Client::poller`].
pub struct Poller {
    core: Arc<ClientCore>,
}

impl Poller {
    pub fn poll(&self, timeout: Duration) -> Result<usize> {
        self.core.dispatcher.poll(&*self.core, timeout)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts an operation with a callback and awaits that callback.
async fn awaited<T: Send + 'static>(start: impl FnOnce(Callback<T>) -> Result<()>) -> Result<T> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    start(Box::new(move |result| {
        let _ = sender.send(result);
    }))?;
    receiver
        .await
        .unwrap_or_else(|_| Err(Error::internal("an operation's callback was lost")))
}

/// Logs an operation's outcome under the `signaling` tag, as the SDKs do.
fn logged<T: Send + 'static>(what: &'static str, done: Callback<T>) -> Callback<T> {
    Box::new(move |result: Result<T>| {
        match &result {
            Ok(_) => crate::log!(Level::Info, "room", "{what}, done"),
            Err(e) => crate::log!(Level::Info, "room", "{what}, error: {e}"),
        }
        done(result)
    })
}

impl ClientCore {
    /// The connection of login `login_epoch`, if it is still the current one.
    fn connection_of(&self, login_epoch: u64) -> Option<Arc<dyn Connection>> {
        match &*self.link.lock() {
            Link::LoggedIn {
                conn,
                login_epoch: current,
            } if *current == login_epoch => Some(conn.clone()),
            _ => None,
        }
    }

    fn connection(&self) -> Result<Arc<dyn Connection>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::shutdown());
        }
        match &*self.link.lock() {
            Link::LoggedIn { conn, .. } => Ok(conn.clone()),
            Link::LoggingIn(_) | Link::LoggingOut | Link::LoggedOut => Err(Error::not_logged_in()),
        }
    }

    /// The shared shape of every operation on a session: refuse at once when
    /// the client is freed or logged out; otherwise hand a `Pending` to the
    /// transport, so the callback runs exactly once whatever happens.
    fn operate<T: Send + 'static>(
        &self,
        done: Callback<T>,
        start: impl FnOnce(&dyn Connection, crate::transport::Reply<T>),
    ) -> Result<()> {
        let open = self.open.read();
        if !*open {
            return Err(Error::shutdown());
        }
        let conn = self.connection()?;
        let pending = Pending::new(self.dispatcher.clone(), done);
        let started = catch_unwind(AssertUnwindSafe(|| start(&*conn, pending.into_reply())));
        if started.is_err() {
            // The reply was dropped while unwinding, which queued INTERNAL.
            crate::log!(
                Level::Error,
                SUB_TAG,
                "an operation panicked inside the library; its callback gets INTERNAL"
            );
        }
        Ok(())
    }

    fn raise(&self, state: ConnectionState, reason: ConnectionReason) {
        crate::log!(
            Level::Info,
            SUB_TAG,
            "connection state: {state:?} ({reason:?})"
        );
        self.dispatcher
            .enqueue(Job::Event(Event::ConnectionStateChanged { state, reason }));
    }

    fn login(self: &Arc<Self>, user: UserId, token: String, done: Callback<()>) -> Result<()> {
        let open = self.open.read();
        if !*open {
            return Err(Error::shutdown());
        }
        let slot: LoginSlot = Arc::default();
        {
            let mut link = self.link.lock();
            match &*link {
                Link::LoggedOut => {
                    let pending = Pending::new(self.dispatcher.clone(), logged("login", done));
                    slot.lock().pending = Some(pending);
                    *link = Link::LoggingIn(slot.clone());
                }
                Link::LoggingIn(_) => {
                    return Err(Error::invalid("client: a login is already in progress"))
                }
                Link::LoggingOut => return Err(Error::invalid("client: a logout is in progress")),
                Link::LoggedIn { conn, .. } => {
                    return Err(Error::invalid(format!(
                        "client: already logged in as '{}'; log out first",
                        conn.user()
                    )))
                }
            }
        }
        crate::log!(
            Level::Info,
            SUB_TAG,
            "login: user '{user}', device '{}'",
            self.device
        );
        let login_epoch = self.login_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        self.raise(ConnectionState::Connecting, ConnectionReason::Login);
        let request = LoginRequest {
            user: user.clone(),
            device: self.device.clone(),
            token,
            sink: Arc::new(ClientSink {
                dispatcher: self.dispatcher.clone(),
                login_epoch,
                user,
            }),
            request_timeout: self.config.request_timeout,
        };
        let core = self.clone();
        let slot_on_panic = slot.clone();
        let slot_for_attempt = slot.clone();
        let started = catch_unwind(AssertUnwindSafe(|| {
            transport::connect(
                &self.config.server_url,
                request,
                Box::new(move |result| core.login_finished(result, &slot, login_epoch)),
            )
        }));
        if let Ok(attempt) = started {
            let mut login = slot_for_attempt.lock();
            if login.cancelled {
                // A logout or free came while the transport was starting.
                let wait = !self.closed.load(Ordering::Acquire);
                drop(login);
                attempt.cancel(wait);
            } else if login.pending.is_some() {
                login.attempt = Some(attempt);
            }
        } else {
            // Undo this login, and never leave a session open at the hub that
            // the client forgot.
            let mut link = self.link.lock();
            let undone = match std::mem::replace(&mut *link, Link::LoggedOut) {
                Link::LoggedIn {
                    conn,
                    login_epoch: epoch,
                } if epoch == login_epoch => {
                    self.raise(ConnectionState::Disconnected, ConnectionReason::Login);
                    Some(conn)
                }
                Link::LoggingIn(_) => {
                    self.raise(ConnectionState::Disconnected, ConnectionReason::Login);
                    None
                }
                newer => {
                    *link = newer;
                    None
                }
            };
            drop(link);
            if let Some(conn) = undone {
                conn.logout();
            }
            if let Some(pending) = slot_on_panic.lock().pending.take() {
                pending.complete(Err(Error::internal(
                    "the login panicked inside the library",
                )));
            }
            crate::log!(
                Level::Error,
                SUB_TAG,
                "login panicked inside the library; it is undone"
            );
        }
        Ok(())
    }

    fn login_finished(
        &self,
        result: Result<Arc<dyn Connection>>,
        slot: &LoginSlot,
        login_epoch: u64,
    ) {
        let mut link = self.link.lock();
        // Taken under the link's lock, as `free` does: exactly one of us
        // completes the login's callback.
        let Some(pending) = slot.lock().pending.take() else {
            // Freed while connecting (free gave the callback SHUTDOWN): undo
            // the session.
            drop(link);
            if let Ok(conn) = result {
                conn.logout();
            }
            return;
        };
        match result {
            Ok(conn) => {
                {
                    if !matches!(*link, Link::LoggingIn(_)) {
                        drop(link);
                        conn.logout();
                        return pending.complete(Err(Error::shutdown()));
                    }
                    *link = Link::LoggedIn {
                        conn: conn.clone(),
                        login_epoch,
                    };
                    // Under the link's lock, so a concurrent logout's event and
                    // callback cannot overtake these.
                    self.raise(ConnectionState::Connected, ConnectionReason::Login);
                    pending.complete(Ok(()));
                    drop(link);
                }
                // Now that the login's callback is queued, let the hub hand over
                // what is ringing for this user.
                conn.sync();
            }
            Err(error) => {
                *link = Link::LoggedOut;
                self.raise(ConnectionState::Disconnected, ConnectionReason::Login);
                pending.complete(Err(error));
            }
        }
    }

    fn logout(&self, done: Callback<()>) -> Result<()> {
        // Held until the end: `free` waits for this logout rather than close
        // the dispatcher under its callback.
        let open = self.open.read();
        if !*open {
            return Err(Error::shutdown());
        }
        let ending = {
            let mut link = self.link.lock();
            match std::mem::replace(&mut *link, Link::LoggingOut) {
                Link::LoggedIn { conn, .. } => Ending::Session(conn),
                Link::LoggingIn(slot) => Ending::Login(slot.lock().cancel()),
                other => {
                    *link = other;
                    return Err(Error::not_logged_in());
                }
            }
        };
        // Without the link's lock (a network transport may take a moment to
        // write the logout): when it returns the session has ended (or the
        // login will never make one), no push can follow, and DISCONNECTED
        // comes after everything it delivered.
        let login = match ending {
            Ending::Session(conn) => {
                crate::log!(Level::Info, SUB_TAG, "logout: user '{}'", conn.user());
                conn.logout();
                None
            }
            Ending::Login((pending, attempt)) => {
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "logout: the login under way is cancelled"
                );
                if let Some(attempt) = attempt {
                    attempt.cancel(true);
                }
                pending
            }
        };
        let mut link = self.link.lock();
        *link = Link::LoggedOut;
        self.raise(ConnectionState::Disconnected, ConnectionReason::Logout);
        if let Some(login) = login {
            login.complete(Err(Error::new(
                crate::error::ErrorCode::Shutdown,
                "the login was cancelled by a logout",
            )));
        }
        Pending::new(self.dispatcher.clone(), logged("logout", done)).complete(Ok(()));
        drop(link);
        drop(open);
        Ok(())
    }

    fn shutdown(&self) -> Result<()> {
        // Before anything is done: refused, the free leaves the client as it was.
        let _waiting = self.dispatcher.wait_for()?;
        {
            let mut open = self.open.write();
            if !*open {
                // Already freed (or being freed): still return only once no
                // callback runs.
                drop(open);
                self.dispatcher.close(self);
                return Ok(());
            }
            *open = false;
            self.closed.store(true, Ordering::Release);
        }
        let (conn, login) = {
            let mut link = self.link.lock();
            match std::mem::replace(&mut *link, Link::LoggedOut) {
                Link::LoggedIn { conn, .. } => (Some(conn), None),
                // A login still under way gets SHUTDOWN now; when the
                // transport answers, its session is undone. Taken under the
                // link's lock, as `login_finished` does: exactly one of us
                // completes the login's callback.
                Link::LoggingIn(slot) => (None, Some(slot.lock().cancel())),
                // A logout in progress holds the open gate, so `free` cannot
                // get here before it ends.
                Link::LoggingOut | Link::LoggedOut => (None, None),
            }
        };
        if let Some((pending, attempt)) = login {
            if let Some(pending) = pending {
                pending.complete(Err(Error::shutdown()));
            }
            // Not waited for: the transport logs out a welcome that still
            // comes, and `free` must not wait for a server.
            if let Some(attempt) = attempt {
                attempt.cancel(false);
            }
        }
        // Without the link's lock: a network transport may take a moment.
        if let Some(conn) = conn {
            conn.logout();
        }
        self.dispatcher.close(self);
        crate::log!(
            Level::Info,
            SUB_TAG,
            "client freed: device '{}'",
            self.device
        );
        Ok(())
    }

    /// Rule 9 and rule 4 for one INVITATION_RECEIVED: true if it is new to this
    /// client (then it is acknowledged and shown), false for a repeat.
    fn first_sight(&self, user: UserId, invitation_id: &InvitationId, seconds_left: u32) -> bool {
        let now = Instant::now();
        let key = SeenKey {
            invitation_id: invitation_id.clone(),
            user,
        };
        let mut seen = self.seen.lock();
        if seen.forget_at.contains_key(&key) {
            return false;
        }
        // The hub never re-delivers an invitation after its deadline, so an
        // entry can go a little after that (slack for clock differences).
        if seen.forget_at.len() >= seen.sweep_at {
            seen.forget_at.retain(|_, forget_at| *forget_at > now);
            seen.sweep_at = (seen.forget_at.len() * 2).max(1024);
        }
        let keep = Duration::from_secs(u64::from(seconds_left) + 60);
        seen.forget_at.insert(key, now + keep);
        true
    }

    /// The hub ended the session of login `login_epoch` (kicked out, token
    /// expired): if it is still this client's session, the client is logged out.
    fn session_ended(&self, reason: ConnectionReason, login_epoch: u64) {
        let ended = {
            let mut link = self.link.lock();
            let current =
                matches!(*link, Link::LoggedIn { login_epoch: e, .. } if e == login_epoch);
            if current {
                *link = Link::LoggedOut;
            }
            current
        };
        if ended {
            crate::log!(
                Level::Warn,
                SUB_TAG,
                "session of device '{}' ended by the hub: {reason:?}",
                self.device
            );
            self.deliver(&Event::ConnectionStateChanged {
                state: ConnectionState::Disconnected,
                reason,
            });
        }
    }

    fn deliver(&self, event: &Event) {
        if let Event::ConnectionStateChanged { state, .. } = event {
            self.connection_state
                .store(*state as i32, Ordering::Release);
        }
        #[cfg(feature = "test-hooks")]
        crate::testing::maybe_panic(crate::testing::PanicPoint::Dispatch);
        let _delivering = self.delivering.lock();
        let handler = self.handler.read().clone();
        if let Some(handler) = handler {
            handler(event);
        }
    }
}

impl JobRunner for ClientCore {
    fn run(&self, job: Job, shutdown: bool) {
        match job {
            Job::Call(call) => call.run(shutdown),
            Job::Event(_) | Job::Push { .. } | Job::Link { .. } if shutdown => {}
            // A network transport reconnecting: shown only for the current
            // login; DISCONNECTED ends it.
            Job::Link {
                login_epoch,
                state,
                reason,
            } => {
                if state == ConnectionState::Disconnected {
                    self.session_ended(reason, login_epoch);
                } else if self.connection_of(login_epoch).is_some() {
                    self.deliver(&Event::ConnectionStateChanged { state, reason });
                }
            }
            Job::Event(event) => self.deliver(&event),
            // Invitation pushes of an older login are still shown: they were
            // queued before that login's DISCONNECTED. Session notices of an
            // older login are not (that session is gone).
            Job::Push {
                login_epoch,
                user,
                push,
            } => {
                match push {
                    Push::KickedOut => self.session_ended(ConnectionReason::KickedOut, login_epoch),
                    Push::TokenExpired => {
                        self.session_ended(ConnectionReason::TokenExpired, login_epoch)
                    }
                    Push::TokenWillExpire { seconds_left } => {
                        if login_epoch == self.login_epoch.load(Ordering::Acquire) {
                            self.deliver(&Event::TokenWillExpire { seconds_left })
                        }
                    }
                    Push::InvitationReceived {
                        ref invitation_id,
                        seconds_left,
                        ..
                    } => {
                        // Receipts are idempotent at the hub: send one for every
                        // delivery of the current login (a repeat after a
                        // re-login included; an older login's push is handed
                        // over again by the new login's sync), and show the
                        // invitation once per user (rule 9).
                        if let Some(conn) = self.connection_of(login_epoch) {
                            conn.acknowledge(invitation_id);
                        }
                        if !self.first_sight(user, invitation_id, seconds_left) {
                            return;
                        }
                        crate::log!(Level::Info, "room", "invitation received: {invitation_id}");
                        self.deliver(&Event::Invitation(push));
                    }
                    other => self.deliver(&Event::Invitation(other)),
                }
            }
        }
    }
}
