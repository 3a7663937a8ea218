//! Requests that come while this node takes a stopped node's invitations
//! over. A takeover moves them in two steps: Redis names this node their
//! owner (the adopt script), then this node reads their records and its hub
//! adopts them. Between the two, every node routes requests about them
//! here, and this hub does not hold them yet: such a request (a device's
//! here, or one another node sent) waits until the takeovers running here
//! have ended, then runs, in the order the requests came; the server API's
//! requests made on this node wait in place ([`Cluster::settled`]). Without
//! it, it would be answered INVITATION_NOT_FOUND, or an idempotent send
//! would make a second invitation under the id being adopted.

use std::sync::Arc;

use beckon::protocol::wire::ClientFrame;
use beckon::protocol::{InvitationId, UserId};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::messages::{ApiRequest, Message};
use super::Cluster;

/// The takeovers this node runs, and the requests held until they end.
#[derive(Default)]
pub(super) struct Takeovers {
    /// A leaf lock.
    state: Mutex<State>,
    /// Told when the last running takeover ends.
    ended: Notify,
}

#[derive(Default)]
struct State {
    /// Takeovers started (before the adopt script) and not yet ended (the
    /// hub adopted what was moved, or the takeover failed).
    running: usize,
    /// Requests about invitations this hub did not hold while a takeover
    /// ran, oldest first.
    held: Vec<Held>,
}

/// A request waiting for the takeovers to end.
pub(super) enum Held {
    /// Request `request_id` of the session `secret`, a device logged in
    /// here.
    Local {
        secret: Arc<str>,
        request_id: u64,
        frame: ClientFrame,
    },
    /// A request another node sent: a device's (`Message::Request`) or
    /// its server API's (`Message::Api`).
    Message(Message),
}

/// A takeover running on this node; its end (drop) runs what was held.
pub(super) struct Running(Arc<Cluster>);

impl Drop for Running {
    fn drop(&mut self) {
        let released = {
            let mut state = self.0.takeovers.state.lock();
            state.running = state.running.saturating_sub(1);
            if state.running > 0 {
                return;
            }
            std::mem::take(&mut state.held)
        };
        self.0.takeovers.ended.notify_waiters();
        if !released.is_empty() {
            tracing::info!(
                requests = released.len(),
                "cluster: requests held during a takeover run now"
            );
        }
        for held in released {
            self.0.run_held(held);
        }
    }
}

impl Cluster {
    /// A takeover starts; requests about invitations this hub does not
    /// hold wait until the returned guard is dropped.
    pub(super) fn takeover_started(self: &Arc<Self>) -> Running {
        self.takeovers.state.lock().running += 1;
        Running(self.clone())
    }

    /// Returns once this hub holds `id` or no takeover runs here: then
    /// whether this hub holds `id` is known.
    pub(super) async fn settled(&self, id: &InvitationId) {
        loop {
            // Registered before the check, so an end in between is seen.
            let ended = self.takeovers.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.hub.has_invitation(id) || self.takeovers.state.lock().running == 0 {
                return;
            }
            ended.await;
        }
    }

    /// Runs `request`, about `invitation`, now; or once the takeovers
    /// running here end, when this hub does not hold `invitation` yet.
    pub(super) fn run_unless_held(
        self: &Arc<Self>,
        invitation: Option<&InvitationId>,
        request: Held,
    ) {
        if let Some(request) = self.hold(invitation, request) {
            self.run_held(request);
        }
    }

    /// `request` back to run now, or None: it waits for the takeovers.
    fn hold(&self, invitation: Option<&InvitationId>, request: Held) -> Option<Held> {
        let Some(invitation) = invitation else {
            return Some(request);
        };
        // Checked before the lock (the hub's locks are never taken under
        // it): an adoption that ends in between leaves `running` at zero,
        // or else releases what is held after this push.
        if self.hub.has_invitation(invitation) {
            return Some(request);
        }
        let mut state = self.takeovers.state.lock();
        if state.running == 0 {
            return Some(request);
        }
        state.held.push(request);
        None
    }

    /// The invitation a request another node sent is about, when a
    /// takeover may bring it: an answer, cancel or receipt's, or an
    /// idempotent send's.
    pub(super) fn invitation_asked(&self, message: &Message) -> Option<InvitationId> {
        match message {
            Message::Request { user, frame, .. } => match frame {
                ClientFrame::Send { request, .. } => self.idempotent_id(user, request),
                _ => Cluster::invitation_of(frame).cloned(),
            },
            Message::Api { request, .. } => match request {
                ApiRequest::Send { inviter, request } => self.idempotent_id(inviter, request),
                ApiRequest::Cancel { request } => Some(request.invitation_id.clone()),
                ApiRequest::Kick { .. } => None,
            },
            Message::Deliver { .. } | Message::Answer { .. } => None,
        }
    }

    /// The id an idempotent send of `inviter` gets.
    fn idempotent_id(
        &self,
        inviter: &UserId,
        request: &beckon::protocol::SendInvitation,
    ) -> Option<InvitationId> {
        let key = request.idempotency_key.as_ref()?;
        Some(self.hub.idempotent_id(inviter, key))
    }

    fn run_held(self: &Arc<Self>, held: Held) {
        match held {
            Held::Local {
                secret,
                request_id,
                frame,
            } => self.run_local(&secret, request_id, frame),
            Held::Message(message) => self.run_message(message),
        }
    }
}
