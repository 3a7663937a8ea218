//! A client's session with its hub, from login to logout or `free`: the
//! link's states, the login under way (which a logout or `free` cancels), and
//! the sink that queues the session's pushes on the dispatcher.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::dispatcher::{Dispatcher, Job};
use super::pending::{Callback, Pending};
use super::{logged, ClientCore, Event, SUB_TAG};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{ConnectionReason, ConnectionState, Push, SessionSink, UserId};
use crate::transport::{self, Connection, LoginRequest};

pub(super) enum Link {
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
pub(super) struct LoginInProgress {
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

impl ClientCore {
    pub(super) fn raise(&self, state: ConnectionState, reason: ConnectionReason) {
        crate::log!(
            Level::Info,
            SUB_TAG,
            "connection state: {state:?} ({reason:?})"
        );
        self.dispatcher
            .enqueue(Job::Event(Event::ConnectionStateChanged { state, reason }));
    }

    pub(super) fn login(
        self: &Arc<Self>,
        user: UserId,
        token: String,
        done: Callback<()>,
    ) -> Result<()> {
        let open = self.open.read();
        if !*open {
            return Err(Error::shutdown());
        }
        let slot: LoginSlot = Arc::default();
        let login_epoch = {
            let mut link = self.link.lock();
            match &*link {
                Link::LoggedOut => {
                    let pending = Pending::new(self.dispatcher.clone(), logged("login", done));
                    slot.lock().pending = Some(pending);
                    *link = Link::LoggingIn(slot.clone());
                    // Under the link's lock: a logout on another thread that
                    // cancels this login raises its DISCONNECTED after this.
                    self.raise(ConnectionState::Connecting, ConnectionReason::Login);
                    self.login_epoch.fetch_add(1, Ordering::AcqRel) + 1
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
        };
        crate::log!(
            Level::Info,
            SUB_TAG,
            "login: user '{user}', device '{}'",
            self.device
        );
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

    pub(super) fn login_finished(
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

    pub(super) fn logout(&self, done: Callback<()>) -> Result<()> {
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
                ErrorCode::Shutdown,
                "the login was cancelled by a logout",
            )));
        }
        Pending::new(self.dispatcher.clone(), logged("logout", done)).complete(Ok(()));
        drop(link);
        drop(open);
        Ok(())
    }

    pub(super) fn shutdown(&self) -> Result<()> {
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

    /// The hub ended the session of login `login_epoch` (kicked out, token
    /// expired): if it is still this client's session, the client is logged out.
    pub(super) fn session_ended(&self, reason: ConnectionReason, login_epoch: u64) {
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
}
