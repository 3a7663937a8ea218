//! One invitation's record: who invited whom, each invitee's state, the deadline.
//! Pure data and state rules; the hub does the locking and the delivery.

use std::sync::Arc;

use tokio::time::Instant;

use super::push::PushedDevice;
use super::session::SessionId;
use super::store::{InvitationRecord, InviteeRecord, Ticket};
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
    /// Devices rung by push at send; taken for their stop pushes when this
    /// invitee's state becomes final.
    pub pushed: Vec<PushedDevice>,
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
    pub online_only: bool,
    pub idempotency_key: Option<Text>,
    /// The deadline and the end in Unix milliseconds, as a store keeps them.
    pub deadline_ms: u64,
    pub ended_ms: Option<u64>,
    /// One more at each transition (see `store`).
    pub version: u64,
    /// The store's ticket of the latest version: what frames about this
    /// invitation wait for.
    pub ticket: Ticket,
    /// Sent through the server API: rule 7 does not apply.
    pub sent_by_server: bool,
    /// When it was sent (Unix milliseconds).
    pub created_ms: u64,
    /// Its end is in its participants' history (or was before a restart).
    pub in_history: bool,
}

impl Invitation {
    /// The record a store keeps of this invitation.
    pub fn record(&self) -> InvitationRecord {
        InvitationRecord {
            id: self.id.clone(),
            version: self.version,
            inviter: self.inviter.clone(),
            invitees: self
                .invitees
                .iter()
                .map(|i| InviteeRecord {
                    user: i.user.clone(),
                    state: i.state,
                    closed_offline: i.closed_offline,
                    pushed: i.pushed.clone(),
                })
                .collect(),
            extended_data: self.extended_data.clone(),
            notification: self.notification.clone(),
            online_only: self.online_only,
            idempotency_key: self.idempotency_key.clone(),
            deadline_ms: self.deadline_ms,
            ended_ms: self.ended_ms,
            error_invitees: self.send_outcome.error_invitees.clone(),
            sent_by_server: self.sent_by_server,
            created_ms: self.created_ms,
        }
    }

    /// The invitation a store kept, with its times on this process's
    /// monotonic clock: `deadline` and `ended_at` as the record's Unix times
    /// are from `now_ms` (a deadline that passed is `now`).
    pub fn from_record(
        record: InvitationRecord,
        now: Instant,
        now_ms: u64,
        retention: std::time::Duration,
    ) -> Invitation {
        let ahead = |ms: u64| std::time::Duration::from_millis(ms.saturating_sub(now_ms));
        let deadline = now + ahead(record.deadline_ms);
        // Retention ends at ended_ms + retention; ended_at is that minus
        // retention on this clock (now, if this clock cannot go back so far).
        let ended_at = record.ended_ms.map(|ended_ms| {
            let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
            let forget_at = now + ahead(ended_ms.saturating_add(retention_ms));
            forget_at.checked_sub(retention).unwrap_or(now)
        });
        let send_outcome = record.send_outcome();
        Invitation {
            id: record.id,
            inviter: record.inviter,
            invitees: record
                .invitees
                .into_iter()
                .map(|i| Invitee {
                    user: i.user,
                    state: i.state,
                    closed_offline: i.closed_offline,
                    delivered_to: Vec::new(),
                    pushed: i.pushed,
                })
                .collect(),
            extended_data: record.extended_data,
            notification: record.notification,
            deadline,
            ended_at,
            send_outcome,
            online_only: record.online_only,
            idempotency_key: record.idempotency_key,
            deadline_ms: record.deadline_ms,
            ended_ms: record.ended_ms,
            version: record.version,
            ticket: 0,
            sent_by_server: record.sent_by_server,
            created_ms: record.created_ms,
            // An invitation that had ended went to history then.
            in_history: record.ended_ms.is_some(),
        }
    }

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
