//! What happens when a hub's timers fall due: deadlines time invitees out,
//! retention forgets ended invitations, token timers warn and expire sessions.
//! With a manual clock, [`Hub::advance`] is what makes them fall due.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::invitation::Invitation;
use super::timers::{TimerKind, TimerOwner, TimerQueue, TimerSignal};
use super::{Hub, ManualClock, SUB_TAG};
use crate::log::Level;
use crate::protocol::{InviteeState, Push, Text};

impl Hub {
    /// With a manual clock: moves it and fires what fell due.
    pub fn advance(&self, clock: &ManualClock, by: Duration) {
        clock.advance(by);
        self.fire_due_timers(self.clock.now());
    }

    pub(super) fn time_out(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        now: Instant,
    ) {
        let mut timed_out = Vec::new();
        for invitee in invitation.invitees.iter_mut().filter(|i| !i.is_final()) {
            invitee.state = InviteeState::Timeout;
            timed_out.push(invitee.user.clone());
        }
        self.stats.finished(InviteeState::Timeout, timed_out.len());
        crate::log!(
            Level::Info,
            SUB_TAG,
            "invitation {}: deadline passed, timed out {timed_out:?}",
            invitation.id
        );
        let stops = Self::take_stops(invitation, None);
        self.end(timers, invitation, now);
        self.persist(invitation);
        self.push_stops(invitation, stops);
        for user in &timed_out {
            let push = Push::InvitationTimeout {
                invitation_id: invitation.id.clone(),
                inviter: invitation.inviter.clone(),
            };
            self.users.deliver(user, &push);
        }
        if !timed_out.is_empty() {
            let push = Push::InvitationResponseTimeout {
                invitation_id: invitation.id.clone(),
                invitees: timed_out.iter().cloned().collect(),
            };
            self.users.deliver(&invitation.inviter, &push);
        }
        let empty = Text::from("");
        for user in &timed_out {
            self.announce_state(invitation, user, InviteeState::Timeout, &empty);
        }
        self.tell_if_ended(invitation);
    }
}

impl Hub {
    /// What is left to do for an invitation whose timer panicked (a bug):
    /// end it, its invitees still pending timed out, and stop the devices
    /// rung by push (nobody else is told: what panicked may have told them).
    pub(super) fn end_after_a_panic(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        now: Instant,
    ) {
        if invitation.ended_at.is_none() {
            for invitee in invitation.invitees.iter_mut().filter(|i| !i.is_final()) {
                invitee.state = InviteeState::Timeout;
            }
            let stops = Self::take_stops(invitation, None);
            self.end(timers, invitation, now);
            self.persist(invitation);
            self.push_stops(invitation, stops);
            self.tell_if_ended(invitation);
        }
    }
}

#[cfg(test)]
impl Hub {
    /// How many invitation timers are queued (one per live or retained invitation).
    pub(crate) fn queued_invitation_timers(&self) -> usize {
        self.invitations.iter().map(|s| s.lock().timers.len()).sum()
    }
}

impl TimerOwner for Hub {
    fn signal(&self) -> &Arc<TimerSignal> {
        &self.timer_signal
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn fire_due_timers(&self, now: Instant) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for shard in self.invitations.iter() {
            let mut guard = shard.lock();
            let shard = &mut *guard;
            while let Some(&(due, _, _)) = shard.timers.first() {
                if due > now {
                    break;
                }
                let Some((due, kind, id)) = shard.timers.pop_first() else {
                    break;
                };
                // One timer's panic (a bug) must not stop the others.
                let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    super::store::reset_frame_ticket();
                    let Some(invitation) = shard.invitations.get_mut(&id) else {
                        return;
                    };
                    // Timers are replaced as the invitation moves on, so this is
                    // its current one; the time check is a cheap guard all the
                    // same (an idempotent resend reuses an id once forgotten).
                    match kind {
                        TimerKind::Deadline
                            if invitation.ended_at.is_none() && invitation.deadline == due =>
                        {
                            self.time_out(&mut shard.timers, invitation, now);
                        }
                        TimerKind::Forget
                            if invitation.ended_at.map(|at| at + self.config.retention)
                                == Some(due) =>
                        {
                            crate::log!(Level::Debug, SUB_TAG, "invitation {id} forgotten");
                            self.persist_forgotten(invitation);
                            shard.invitations.remove(&id); // retention is over
                        }
                        TimerKind::InviterGrace => {
                            self.cancel_if_orphaned(&mut shard.timers, invitation, now);
                        }
                        _ => {}
                    }
                }));
                if fired.is_err() {
                    crate::log!(Level::Error, SUB_TAG, "timer of invitation {id} panicked");
                    // Never leave it without a timer: end it now, or if even
                    // that fails, drop it.
                    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if let Some(invitation) = shard.invitations.get_mut(&id) {
                            self.end_after_a_panic(&mut shard.timers, invitation, now);
                        }
                    }));
                    if ended.is_err() {
                        shard.invitations.remove(&id);
                    }
                }
            }
            if let Some(&(due, _, _)) = shard.timers.first() {
                earliest = Some(earliest.map_or(due, |e| e.min(due)));
            }
        }
        for shard in self.token_timers.iter() {
            // Two rounds: a warning that fires arms its session's expiry, which
            // may be due already (a manual clock moved past both at once).
            for _round in 0..2 {
                let mut due_now = Vec::new();
                {
                    let mut timers = shard.lock();
                    while let Some(timer) = timers.pop_due(now) {
                        due_now.push(timer);
                    }
                }
                if due_now.is_empty() {
                    break;
                }
                // Outside the shard's lock: firing takes the user's lock first.
                for timer in due_now {
                    let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.fire_token_timer(timer)
                    }));
                    if fired.is_err() {
                        crate::log!(Level::Error, SUB_TAG, "a token timer panicked");
                    }
                }
            }
            if let Some(next) = shard.lock().next_due() {
                earliest = Some(earliest.map_or(next, |e| e.min(next)));
            }
        }
        earliest
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::{HubConfig, ManualClock};
    use crate::protocol::{CancelInvitation, DeviceId, SendInvitation, SessionSink, UserId};

    struct Nowhere;
    impl SessionSink for Nowhere {
        fn deliver(&self, _push: Push) {}
    }

    fn user(name: &str) -> UserId {
        UserId::parse(name, "u").unwrap()
    }

    #[test]
    fn invitation_timers_stay_bounded_by_live_and_retained_invitations() {
        // Retention shorter than the deadline: a cancelled invitation is
        // forgotten before its deadline, and its deadline must go with it.
        let clock = ManualClock::new(1_700_000_000);
        let config = HubConfig {
            retention: Duration::from_secs(10),
            ..HubConfig::default()
        };
        let hub = Hub::with_manual_clock(config, clock.clone()).unwrap();
        let device = DeviceId::parse("d", "d").unwrap();
        let alice = hub
            .login(user("alice"), device, "", Arc::new(Nowhere))
            .unwrap();
        let ids: Vec<_> = (0..50)
            .map(|_| {
                let send = SendInvitation::new(vec![user("bob")], 600);
                hub.send(&alice, send).unwrap().invitation_id
            })
            .collect();
        assert_eq!(hub.queued_invitation_timers(), 50, "a deadline each");
        for id in &ids[..30] {
            let cancel = CancelInvitation {
                invitation_id: id.clone(),
                invitees: None,
                extended_data: "".into(),
            };
            hub.cancel(&alice, cancel).unwrap();
        }
        assert_eq!(
            hub.queued_invitation_timers(),
            50,
            "a deadline or a forgetting each"
        );
        hub.advance(&clock, Duration::from_secs(10));
        assert!(hub.invitee_states(&ids[0]).is_none(), "forgotten");
        assert_eq!(hub.queued_invitation_timers(), 20, "only the live ones");
        hub.advance(&clock, Duration::from_secs(600)); // deadlines, then retention
        hub.advance(&clock, Duration::from_secs(10));
        assert_eq!(hub.queued_invitation_timers(), 0);
    }
}
