//! What an invitee does with an invitation: accept or refuse it (the first
//! answer wins across its devices), or acknowledge that a device received it
//! (rule 4).

use tokio::time::Instant;

use super::invitation::Invitation;
use super::reply::returned;
use super::store::{note_frame_ticket, reset_frame_ticket};
use super::timers::TimerQueue;
use super::{Hub, Session, SUB_TAG};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{Answer, InvitationId, InviteeState, Push, Text};

impl Hub {
    pub fn accept(&self, session: &Session, answer: Answer) -> Result<()> {
        returned(|reply| self.answer_then(session, answer, InviteeState::Accepted, reply))
    }

    pub fn refuse(&self, session: &Session, answer: Answer) -> Result<()> {
        returned(|reply| self.answer_then(session, answer, InviteeState::Rejected, reply))
    }

    /// Accepts (`state` ACCEPTED) or refuses (REJECTED); `reply` runs under the
    /// invitation's lock (see `send_then`).
    pub fn answer_then(
        &self,
        session: &Session,
        answer: Answer,
        state: InviteeState,
        reply: impl FnOnce(Result<()>),
    ) {
        reset_frame_ticket();
        if !matches!(state, InviteeState::Accepted | InviteeState::Rejected) {
            return reply(Err(Error::internal("an answer is ACCEPTED or REJECTED")));
        }
        let checked = Self::require_alive(session).and_then(|()| {
            self.config
                .limits
                .check_extended_data("extended_data", &answer.extended_data)
        });
        if let Err(error) = checked.and_then(|()| self.check_writable()) {
            return reply(Err(error));
        }
        let now = self.clock.now();
        let mut guard = self.invitations.lock(answer.invitation_id.shard_key());
        let shard = &mut *guard;
        let Some(invitation) = shard.invitations.get_mut(&answer.invitation_id) else {
            return reply(Err(Self::not_found(&answer.invitation_id)));
        };
        // An error about its state waits for that state to be stored.
        note_frame_ticket(invitation.ticket);
        let result =
            self.answer_locked(&mut shard.timers, invitation, session, &answer, state, now);
        reply(result);
    }

    fn answer_locked(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        session: &Session,
        answer: &Answer,
        state: InviteeState,
        now: Instant,
    ) -> Result<()> {
        let id = invitation.id.clone();
        let Some(invitee) = invitation.invitee_mut(&session.user) else {
            return Err(Error::new(
                ErrorCode::NotPermitted,
                format!("invitation_id: {id} does not invite '{}'", session.user),
            ));
        };
        match invitee.state {
            InviteeState::Accepted | InviteeState::Rejected => {
                return Err(Error::new(
                    ErrorCode::AlreadyAnswered,
                    format!(
                        "invitation_id: '{}' already answered {id} ({})",
                        session.user,
                        invitee.state.name()
                    ),
                ))
            }
            InviteeState::Cancelled | InviteeState::Timeout => {
                return Err(Error::new(
                    ErrorCode::InvitationClosed,
                    format!(
                        "invitation_id: {id} is closed for '{}' ({})",
                        session.user,
                        invitee.state.name()
                    ),
                ))
            }
            _ if invitee.closed_offline => {
                return Err(Error::new(
                    ErrorCode::InvitationClosed,
                    format!(
                        "invitation_id: {id} was sent online-only while '{}' was offline",
                        session.user
                    ),
                ))
            }
            InviteeState::Inviting | InviteeState::Offline | InviteeState::Received => {}
        }
        invitee.state = state;
        let stops = Self::take_stops(invitation, Some((&session.user, &session.device)));
        if invitation.is_finished() {
            self.end(timers, invitation, now);
        }
        self.persist(invitation);
        self.push_stops(invitation, stops);
        self.stats.finished(state, 1);
        crate::log!(
            Level::Info,
            SUB_TAG,
            "invitation {id}: '{}' {}",
            session.user,
            state.name()
        );
        let to_inviter = if state == InviteeState::Accepted {
            Push::InvitationAccepted {
                invitation_id: id.clone(),
                invitee: session.user.clone(),
                extended_data: answer.extended_data.clone(),
            }
        } else {
            Push::InvitationRefused {
                invitation_id: id.clone(),
                invitee: session.user.clone(),
                extended_data: answer.extended_data.clone(),
            }
        };
        self.users.deliver(&invitation.inviter, &to_inviter);
        self.announce_state(invitation, &session.user, state, &answer.extended_data);
        self.tell_if_ended(invitation);
        Ok(())
    }

    /// A device's receipt (rule 4): the invitee's state becomes RECEIVED if it was
    /// still INVITING or pending OFFLINE. Unknown ids and repeats are ignored.
    pub fn acknowledge(&self, session: &Session, invitation_id: &InvitationId) {
        reset_frame_ticket();
        // While the store cannot write, a receipt is dropped (the invitee
        // stays as it was): it has no answer to carry an error.
        if !session.is_alive() || self.check_writable().is_err() {
            return;
        }
        let mut shard = self.invitations.lock(invitation_id.shard_key());
        let Some(invitation) = shard.invitations.get_mut(invitation_id) else {
            return;
        };
        let Some(invitee) = invitation.invitee_mut(&session.user) else {
            return;
        };
        let pending = matches!(
            invitee.state,
            InviteeState::Inviting | InviteeState::Offline
        );
        if pending && !invitee.is_final() {
            invitee.state = InviteeState::Received;
            self.persist(invitation);
            let user = session.user.clone();
            self.announce_state(invitation, &user, InviteeState::Received, &Text::from(""));
        }
    }
}
