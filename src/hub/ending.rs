//! How an invitation ends, whatever ended it (answers, cancels, its deadline,
//! its inviter leaving): the one place that gives back the inviter's quota and
//! turns its deadline into its end of retention.

use tokio::time::Instant;

use super::invitation::Invitation;
use super::timers::{TimerKind, TimerQueue};
use super::{Hub, SUB_TAG};
use crate::log::Level;
use crate::protocol::Text;

impl Hub {
    /// Every invitee is final: stop tracking it per user, keep it for retention.
    pub(super) fn end(&self, timers: &mut TimerQueue, invitation: &mut Invitation, now: Instant) {
        invitation.ended_at = Some(now);
        invitation.ended_ms = Some(self.clock.unix_millis());
        // Retention only answers late requests precisely: drop what they never
        // read (up to 13 KiB of payload per invitation).
        invitation.extended_data = Text::from("");
        invitation.notification = None;
        for invitee in &mut invitation.invitees {
            invitee.delivered_to = Vec::new();
        }
        // The one place an invitation ends: its inviter's quota place is
        // given back here, exactly once.
        self.users
            .deactivate(&invitation.inviter, &invitation.id, true);
        for invitee in &invitation.invitees {
            self.users.deactivate(&invitee.user, &invitation.id, false);
        }
        // Its deadline (gone already if it is what ended it) gives way to its
        // forgetting: one timer per invitation, live or retained.
        timers.remove(&(
            invitation.deadline,
            TimerKind::Deadline,
            invitation.id.clone(),
        ));
        let forget_at = now + self.config.retention;
        timers.insert((forget_at, TimerKind::Forget, invitation.id.clone()));
        self.timer_signal.added(forget_at);
        crate::log!(Level::Debug, SUB_TAG, "invitation {} ended", invitation.id);
    }
}
