//! Cancelling: by the inviter, for some invitees or all of them, and for an
//! inviter whose last session ended (rule 7).

use tokio::time::Instant;

use super::invitation::Invitation;
use super::reply::returned;
use super::store::{note_frame_ticket, reset_frame_ticket};
use super::timers::TimerQueue;
use super::{Hub, Session, SUB_TAG};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{
    CancelInvitation, CancelOutcome, InvitationId, InviteeState, InviteeStatus, Push, Text, UserId,
};

impl Hub {
    pub fn cancel(&self, session: &Session, request: CancelInvitation) -> Result<CancelOutcome> {
        returned(|reply| self.cancel_then(session, request, reply))
    }

    /// Cancels; `reply` runs under the invitation's lock (see `send_then`).
    pub fn cancel_then(
        &self,
        session: &Session,
        request: CancelInvitation,
        reply: impl FnOnce(Result<CancelOutcome>),
    ) {
        if let Err(error) = Self::require_alive(session) {
            reset_frame_ticket();
            return reply(Err(error));
        }
        self.cancel_by(Some(&session.user), request, reply)
    }

    /// Cancels for the server API, which may cancel any invitation (as its
    /// inviter would).
    pub fn cancel_for_server(&self, request: CancelInvitation) -> Result<CancelOutcome> {
        returned(|reply| self.cancel_by(None, request, reply))
    }

    /// Cancels for `canceller` (None: the server API).
    fn cancel_by(
        &self,
        canceller: Option<&UserId>,
        request: CancelInvitation,
        reply: impl FnOnce(Result<CancelOutcome>),
    ) {
        reset_frame_ticket();
        let checked = self
            .config
            .limits
            .check_extended_data("extended_data", &request.extended_data);
        if let Err(error) = checked.and_then(|()| self.check_writable()) {
            return reply(Err(error));
        }
        let now = self.clock.now();
        let mut guard = self.invitations.lock(request.invitation_id.shard_key());
        let shard = &mut *guard; // its map and its timers are borrowed apart
        let Some(invitation) = shard.invitations.get_mut(&request.invitation_id) else {
            return reply(Err(Self::not_found(&request.invitation_id)));
        };
        note_frame_ticket(invitation.ticket);
        let result = self.cancel_locked(&mut shard.timers, invitation, canceller, &request, now);
        reply(result);
    }

    fn cancel_locked(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        canceller: Option<&UserId>,
        request: &CancelInvitation,
        now: Instant,
    ) -> Result<CancelOutcome> {
        if let Some(user) = canceller.filter(|user| **user != invitation.inviter) {
            return Err(Error::new(
                ErrorCode::NotPermitted,
                format!(
                    "invitation_id: '{user}' is not the inviter of {}",
                    invitation.id
                ),
            ));
        }
        if invitation.ended_at.is_some() {
            return Err(Error::new(
                ErrorCode::InvitationClosed,
                format!("invitation_id: {} has ended", invitation.id),
            ));
        }
        let targets: Vec<UserId> = match &request.invitees {
            None => invitation.invitees.iter().map(|i| i.user.clone()).collect(),
            Some(list) if list.is_empty() => {
                return Err(Error::invalid(
                    "invitees: the list is empty (name no list to cancel everyone)",
                ))
            }
            Some(list) => {
                let mut seen = std::collections::HashSet::new();
                let mut targets = Vec::with_capacity(list.len());
                for (index, user) in list.iter().enumerate() {
                    if !invitation.invitees.iter().any(|i| &i.user == user) {
                        return Err(Error::invalid(format!(
                            "invitees[{index}]: '{user}' is not an invitee of {}",
                            invitation.id
                        )));
                    }
                    if seen.insert(user.clone()) {
                        targets.push(user.clone());
                    }
                }
                targets
            }
        };
        let mut error_invitees = Vec::new();
        let mut cancelled = Vec::new();
        for user in targets {
            let Some(invitee) = invitation.invitee_mut(&user) else {
                continue;
            };
            if invitee.is_final() {
                error_invitees.push(InviteeStatus {
                    user_id: user,
                    state: invitee.state,
                });
            } else {
                invitee.state = InviteeState::Cancelled;
                cancelled.push(user);
            }
        }
        self.stats
            .finished(InviteeState::Cancelled, cancelled.len());
        crate::log!(
            Level::Info,
            SUB_TAG,
            "cancel invitation {}: cancelled {:?}, not cancellable {}",
            invitation.id,
            cancelled,
            error_invitees.len()
        );
        let stops = Self::take_stops(invitation, None);
        let finished = invitation.is_finished();
        if finished {
            self.end(timers, invitation, now);
        }
        if finished || !cancelled.is_empty() {
            self.persist(invitation);
        }
        self.push_stops(invitation, stops);
        self.announce_cancelled(invitation, &cancelled, &request.extended_data);
        self.tell_if_ended(invitation);
        Ok(CancelOutcome { error_invitees })
    }

    pub(super) fn cancel_for_departed_inviter(
        &self,
        inviter: &UserId,
        invitation_id: &InvitationId,
    ) {
        let now = self.clock.now();
        let mut guard = self.invitations.lock(invitation_id.shard_key());
        let shard = &mut *guard;
        let Some(invitation) = shard.invitations.get_mut(invitation_id) else {
            return;
        };
        if &invitation.inviter == inviter {
            self.cancel_if_orphaned(&mut shard.timers, invitation, now);
        }
    }

    /// Cancels what is still pending of an open invitation whose inviter has
    /// no session (rule 7). The inviter may have logged in again meanwhile;
    /// then nothing is orphaned.
    pub(super) fn cancel_if_orphaned(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        now: Instant,
    ) {
        if invitation.ended_at.is_some()
            || invitation.sent_by_server
            || self.users.session_count(&invitation.inviter) > 0
        {
            return;
        }
        let mut cancelled = Vec::new();
        for invitee in invitation.invitees.iter_mut().filter(|i| !i.is_final()) {
            invitee.state = InviteeState::Cancelled;
            cancelled.push(invitee.user.clone());
        }
        self.stats
            .finished(InviteeState::Cancelled, cancelled.len());
        crate::log!(
            Level::Info,
            SUB_TAG,
            "invitation {}: inviter '{}' left, cancelled {cancelled:?}",
            invitation.id,
            invitation.inviter
        );
        let stops = Self::take_stops(invitation, None);
        self.end(timers, invitation, now);
        self.persist(invitation);
        self.push_stops(invitation, stops);
        self.announce_cancelled(invitation, &cancelled, &Text::from(""));
        self.tell_if_ended(invitation);
    }

    fn announce_cancelled(&self, invitation: &Invitation, cancelled: &[UserId], data: &Text) {
        for user in cancelled {
            let push = Push::InvitationCancelled {
                invitation_id: invitation.id.clone(),
                inviter: invitation.inviter.clone(),
                extended_data: data.clone(),
            };
            self.users.deliver(user, &push);
        }
        for user in cancelled {
            self.announce_state(invitation, user, InviteeState::Cancelled, data);
        }
    }
}
