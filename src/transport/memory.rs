//! `memory://NAME`: every client of the process that names the same NAME shares
//! one in-process hub. Operations run on the caller's thread and complete before
//! the call returns; only the callbacks travel, through the client's dispatcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::{Connection, LoginRequest, Reply};
use crate::error::{Error, Result};
use crate::hub::{Hub, HubConfig, Session};
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, InvitationId, InvitationPage, InvitationQuery,
    InviteeState, Limits, PushTarget, SendInvitation, SendOutcome, UserId,
};
use crate::wakes::with_deferred_wakes;

/// Named hubs live as long as the process: an app can log out every client and
/// log in again and still find its invitations, as with a server.
static HUBS: Lazy<Mutex<HashMap<String, Arc<Hub>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// `field` names the argument that carried the name, for the error message.
pub(crate) fn check_name(name: &str, field: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field}: memory hub name '{name}' must be 1 to 64 bytes of [A-Za-z0-9_.-]"
        )))
    }
}

/// The hub named `name`, made with the default configuration on first use.
pub fn hub(name: &str) -> Result<Arc<Hub>> {
    check_name(name, "server_url")?;
    let mut hubs = HUBS.lock();
    if let Some(hub) = hubs.get(name) {
        return Ok(hub.clone());
    }
    let hub = Hub::new(HubConfig::in_process(), crate::runtime::handle())?;
    hubs.insert(name.to_owned(), hub.clone());
    Ok(hub)
}

/// Installs a hub under `name` (for example one with a secret, other limits or a
/// manual clock). Fails if the name is already in use.
pub fn install(name: &str, hub: Arc<Hub>) -> Result<()> {
    check_name(name, "name")?;
    let mut hubs = HUBS.lock();
    if hubs.contains_key(name) {
        return Err(Error::invalid(format!(
            "name: memory hub '{name}' already exists"
        )));
    }
    hubs.insert(name.to_owned(), hub);
    Ok(())
}

pub(crate) fn connect(name: &str, login: LoginRequest) -> Result<Arc<dyn Connection>> {
    let hub = hub(name)?;
    let session = hub.login(login.user, login.device, &login.token, login.sink)?;
    Ok(Arc::new(MemoryConnection { hub, session }))
}

struct MemoryConnection {
    hub: Arc<Hub>,
    session: Arc<Session>,
}

#[cfg(feature = "test-hooks")]
fn maybe_forced_panic() {
    crate::testing::maybe_panic(crate::testing::PanicPoint::Transport);
}

#[cfg(not(feature = "test-hooks"))]
fn maybe_forced_panic() {}

impl Connection for MemoryConnection {
    fn user(&self) -> &UserId {
        &self.session.user
    }

    fn limits(&self) -> &Limits {
        &self.hub.config().limits
    }

    fn sync(&self) {
        with_deferred_wakes(|| self.hub.sync(&self.session));
    }

    fn send(&self, request: SendInvitation, _within: Option<Duration>, reply: Reply<SendOutcome>) {
        maybe_forced_panic();
        with_deferred_wakes(|| self.hub.send_then(&self.session, request, reply));
    }

    fn cancel(
        &self,
        request: CancelInvitation,
        _within: Option<Duration>,
        reply: Reply<CancelOutcome>,
    ) {
        maybe_forced_panic();
        with_deferred_wakes(|| self.hub.cancel_then(&self.session, request, reply));
    }

    fn accept(&self, answer: Answer, _within: Option<Duration>, reply: Reply<()>) {
        maybe_forced_panic();
        with_deferred_wakes(|| {
            self.hub
                .answer_then(&self.session, answer, InviteeState::Accepted, reply)
        });
    }

    fn refuse(&self, answer: Answer, _within: Option<Duration>, reply: Reply<()>) {
        maybe_forced_panic();
        with_deferred_wakes(|| {
            self.hub
                .answer_then(&self.session, answer, InviteeState::Rejected, reply)
        });
    }

    fn renew_token(&self, token: &str, _within: Option<Duration>, reply: Reply<()>) {
        reply(self.hub.renew_token(&self.session, token));
    }

    fn set_push_target(&self, target: PushTarget, _within: Option<Duration>, reply: Reply<()>) {
        maybe_forced_panic();
        reply(self.hub.set_push_target(&self.session, target));
    }

    fn clear_push_target(&self, _within: Option<Duration>, reply: Reply<()>) {
        maybe_forced_panic();
        reply(self.hub.clear_push_target(&self.session));
    }

    fn query_invitations(
        &self,
        query: InvitationQuery,
        _within: Option<Duration>,
        reply: Reply<InvitationPage>,
    ) {
        maybe_forced_panic();
        reply(self.hub.query_invitations(&self.session.user, &query));
    }

    fn acknowledge(&self, invitation_id: &InvitationId) {
        with_deferred_wakes(|| self.hub.acknowledge(&self.session, invitation_id));
    }

    /// As the server does for the `logout` frame: an explicit logout (or
    /// `free`) also forgets the device's push target.
    fn logout(&self) {
        with_deferred_wakes(|| self.hub.logout_for_good(&self.session));
    }
}
