//! One invitation's record: who invited whom, each invitee's state, the deadline.
//! Pure data and state rules; the hub does the locking and the delivery.

use std::sync::Arc;

use tokio::time::Instant;

use super::session::SessionId;
use crate::protocol::{
    InvitationId, InviteeState, InviteeStatus, Notification, SendOutcome, Text, UserId,
};

pub(crate) struct Invitee {
    pub user: UserId,
    pub state: InviteeState,
    /// OFFLINE at send time of an `online_only` invitation: closed for good.
    pub closed_offline: bool,
    /// Sessions that were handed INVITATION_RECEIVED (rule 9: at most once each).
    pub delivered_to: Vec<SessionId>,
}

impl Invitee {
    /// True once nothing can change this invitee's state again.
    pub fn is_final(&self) -> bool {
        self.closed_offline || self.state.is_terminal()
    }
}

pub(crate) struct Invitation {
    pub id: InvitationId,
    pub inviter: UserId,
    pub invitees: Vec<Invitee>,
    pub extended_data: Text,
    pub notification: Option<Notification>,
    pub deadline: Instant,
    pub ended_at: Option<Instant>,
    /// Replayed verbatim to a retried send with the same idempotency key.
    pub send_outcome: SendOutcome,
}

impl Invitation {
    pub fn invitee_mut(&mut self, user: &UserId) -> Option<&mut Invitee> {
        self.invitees.iter_mut().find(|i| &i.user == user)
    }

    pub fn is_finished(&self) -> bool {
        self.invitees.iter().all(Invitee::is_final)
    }

    pub fn statuses(&self) -> Arc<[InviteeStatus]> {
        self.invitees
            .iter()
            .map(|i| InviteeStatus {
                user_id: i.user.clone(),
                state: i.state,
            })
            .collect()
    }

    /// Whether `user` sent this invitation or is invited to it.
    pub fn involves(&self, user: &UserId) -> bool {
        &self.inviter == user || self.invitees.iter().any(|i| &i.user == user)
    }

    /// The inviter, then every invitee.
    pub fn participants(&self) -> impl Iterator<Item = &UserId> {
        std::iter::once(&self.inviter).chain(self.invitees.iter().map(|i| &i.user))
    }

    /// Whole seconds left before the deadline, rounded up.
    pub fn seconds_left(&self, now: Instant) -> u32 {
        let left = self.deadline.saturating_duration_since(now);
        let whole = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(whole).unwrap_or(u32::MAX)
    }
}
