//! The client: one device's view of Beckon. It logs in through a transport, turns
//! every operation into exactly one callback, and hands the hub's pushes to the
//! application's event handler, deduplicated (rule 9) and acknowledged (rule 4).
//!
//! Two styles over one implementation: `*_then` methods take a callback (the C
//! ABI uses these), and `async` methods await the same callback; `*_with`
//! variants take per-operation settings (`CallOptions`).
//!
//! Files: this one holds the API and the shape every operation shares;
//! `link` the session's life (login, logout, `free`); `delivery` what the
//! dispatcher runs; `seen` rule 9's memory; `dispatcher` and `pool` where
//! callbacks run; `pending` the exactly-once promise.

mod config;
mod delivery;
mod dispatcher;
mod event;
mod link;
mod pending;
mod pool;
mod seen;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

pub use config::{CallOptions, ClientConfig, DispatchMode};
pub use event::{Event, EventHandler};
pub use pending::Callback;

use crate::error::{Error, Result};
use crate::log::Level;
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, ConnectionState, DeviceId, InvitationPage,
    InvitationQuery, PushTarget, SendInvitation, SendOutcome, UserId,
};
use crate::transport::{self, Connection};
use dispatcher::Dispatcher;
use link::Link;
use pending::Pending;
use seen::SeenInvitations;

const SUB_TAG: &str = "client";

/// A client. Dropping it is `free`: pending callbacks run with SHUTDOWN first.
pub struct Client {
    core: Arc<ClientCore>,
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
            seen: Mutex::new(SeenInvitations::new()),
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
        // Only ever stored from a `ConnectionState`.
        ConnectionState::from_i32(self.core.connection_state.load(Ordering::Acquire))
            .unwrap_or(ConnectionState::Disconnected)
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

    /// Rings this device by push (APNs, FCM, a webhook) while it is not
    /// connected, replacing the target it had. The target is checked here
    /// (`PushTarget::validate`, errors name `push_target.<field>`); the hub
    /// refuses a provider it does not push through (INVALID_ARGUMENT, in the
    /// callback).
    ///
    /// The hub keeps the target past this session: a dropped connection, a
    /// reconnect or a new login of this device keep it, so there is no need
    /// to set it again after those. An explicit logout (and `free`, which
    /// logs out) forgets it, as does the provider saying the token is no
    /// longer valid: after its own logout an app sets it again once logged
    /// in. Idempotent: re-sent after a reconnect like other requests.
    pub fn set_push_target_then(&self, target: PushTarget, done: Callback<()>) -> Result<()> {
        self.set_push_target_then_with(target, CallOptions::default(), done)
    }

    pub fn set_push_target_then_with(
        &self,
        target: PushTarget,
        options: CallOptions,
        done: Callback<()>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        target.validate()?;
        crate::log!(
            Level::Info,
            "room",
            "set push target: {}, token: {} bytes",
            target.provider,
            target.token.len()
        );
        self.core
            .operate(logged("set push target", done), move |conn, reply| {
                conn.set_push_target(target, within, reply)
            })
    }

    /// Forgets this device's push target, if it has one: the device is no
    /// longer rung while it is not connected.
    pub fn clear_push_target_then(&self, done: Callback<()>) -> Result<()> {
        self.clear_push_target_then_with(CallOptions::default(), done)
    }

    pub fn clear_push_target_then_with(
        &self,
        options: CallOptions,
        done: Callback<()>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        crate::log!(Level::Info, "room", "clear push target");
        self.core
            .operate(logged("clear push target", done), move |conn, reply| {
                conn.clear_push_target(within, reply)
            })
    }

    /// A page of the user's ended invitations (sent and received, as
    /// `query.role` asks), newest first; `next_cursor` of the page asks for
    /// the next one.
    pub fn query_invitations_then(
        &self,
        query: InvitationQuery,
        done: Callback<InvitationPage>,
    ) -> Result<()> {
        self.query_invitations_then_with(query, CallOptions::default(), done)
    }

    pub fn query_invitations_then_with(
        &self,
        query: InvitationQuery,
        options: CallOptions,
        done: Callback<InvitationPage>,
    ) -> Result<()> {
        let within = options.request_timeout()?;
        query.validate()?;
        crate::log!(Level::Info, "room", "query invitations: {query:?}");
        self.core
            .operate(logged("query invitations", done), move |conn, reply| {
                conn.query_invitations(query, within, reply)
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

    /// See [`Client::set_push_target_then`].
    pub async fn set_push_target(&self, target: PushTarget) -> Result<()> {
        awaited(|done| self.set_push_target_then(target, done)).await
    }

    /// See [`Client::clear_push_target_then`].
    pub async fn clear_push_target(&self) -> Result<()> {
        awaited(|done| self.clear_push_target_then(done)).await
    }

    /// See [`Client::query_invitations_then`].
    pub async fn query_invitations(&self, query: InvitationQuery) -> Result<InvitationPage> {
        awaited(|done| self.query_invitations_then(query, done)).await
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

    pub async fn set_push_target_with(
        &self,
        target: PushTarget,
        options: CallOptions,
    ) -> Result<()> {
        awaited(|done| self.set_push_target_then_with(target, options, done)).await
    }

    pub async fn clear_push_target_with(&self, options: CallOptions) -> Result<()> {
        awaited(|done| self.clear_push_target_then_with(options, done)).await
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
    pub(super) fn connection_of(&self, login_epoch: u64) -> Option<Arc<dyn Connection>> {
        match &*self.link.lock() {
            Link::LoggedIn {
                conn,
                login_epoch: current,
            } if *current == login_epoch => Some(conn.clone()),
            _ => None,
        }
    }

    pub(super) fn connection(&self) -> Result<Arc<dyn Connection>> {
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
}
