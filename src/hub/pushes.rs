//! The pushes several operations send about an invitation: its ring, and a
//! participant's change of state.

use tokio::time::Instant;

use super::invitation::Invitation;
use super::Hub;
use crate::protocol::{InviteeState, Push, Text, UserId};

impl Hub {
    pub(super) fn received_push(invitation: &Invitation, now: Instant) -> Push {
        Push::InvitationReceived {
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            invitees: invitation.statuses(),
            extended_data: invitation.extended_data.clone(),
            notification: invitation.notification.clone(),
            seconds_left: invitation.seconds_left(now),
        }
    }

    /// INVITATION_USER_STATE_CHANGED to every device of every participant,
    /// and the hub's observer told.
    pub(super) fn announce_state(
        &self,
        invitation: &Invitation,
        user: &UserId,
        state: InviteeState,
        data: &Text,
    ) {
        let push = Push::UserStateChanged {
            invitation_id: invitation.id.clone(),
            user_id: user.clone(),
            state,
            extended_data: data.clone(),
        };
        for participant in invitation.participants() {
            self.users.deliver(participant, &push);
        }
        self.tell_changed(invitation, user, state, data);
    }
}
