//! What a hub can be asked about itself: its totals and configuration, an
//! invitation's states, a user's devices and open invitations.

use super::{Hub, HubConfig, StatsSnapshot};
use crate::protocol::{InvitationId, InviteeStatus, UserId};

impl Hub {
    /// Running totals for monitoring.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The invitees' states of a known invitation (ended ones included, until
    /// forgotten), for tests and diagnostics.
    pub fn invitee_states(&self, invitation_id: &InvitationId) -> Option<Vec<InviteeStatus>> {
        super::store::reset_frame_ticket();
        let shard = self.invitations.lock(invitation_id.shard_key());
        let invitation = shard.invitations.get(invitation_id)?;
        super::store::note_frame_ticket(invitation.ticket);
        Some(invitation.statuses().to_vec())
    }

    /// Whether this hub holds the invitation (open, or ended and not yet
    /// forgotten). A node of several asks before it runs a request, which
    /// goes to the invitation's node otherwise.
    pub fn has_invitation(&self, invitation_id: &InvitationId) -> bool {
        let shard = self.invitations.lock(invitation_id.shard_key());
        shard.invitations.contains_key(invitation_id)
    }

    /// How many sessions `user` has logged in.
    pub fn device_count(&self, user: &UserId) -> usize {
        self.users.session_count(user)
    }

    /// How many invitations `user` sent that have not ended: what counts
    /// against `max_open_invitations`.
    pub fn open_invitations(&self, user: &UserId) -> usize {
        self.users.open_sent(user)
    }
}

impl Hub {
    /// A known invitation's record (open, or ended and not yet forgotten),
    /// for the server API. An ended one has no extended data or
    /// notification any more (see `ending.rs`).
    pub fn invitation_record(
        &self,
        invitation_id: &InvitationId,
    ) -> Option<super::InvitationRecord> {
        super::store::reset_frame_ticket();
        let shard = self.invitations.lock(invitation_id.shard_key());
        let invitation = shard.invitations.get(invitation_id)?;
        super::store::note_frame_ticket(invitation.ticket);
        Some(invitation.record())
    }

    /// `user`'s logged-in devices, each with whether it is at another node.
    pub fn devices(&self, user: &UserId) -> Vec<(crate::protocol::DeviceId, bool)> {
        self.users.update(user, |entry| {
            entry
                .sessions
                .iter()
                .map(|s| (s.device.clone(), s.is_remote()))
                .collect()
        })
    }
}
