//! What happens when a hub's timers fall due: deadlines time invitees out,
//! retention forgets ended invitations, token timers warn and expire sessions.

use std::cmp::Reverse;
use std::sync::Arc;

use tokio::time::Instant;

use super::invitation::Invitation;
use super::timers::{TimerHeap, TimerKind, TimerOwner, TimerSignal};
use super::{Hub, SUB_TAG};
use crate::log::Level;
use crate::protocol::{InviteeState, Push, Text};

impl Hub {
    pub(super) fn time_out(
        &self,
        timers: &mut TimerHeap,
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
        self.end(timers, invitation, now);
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
            while let Some(Reverse((due, _, _))) = shard.timers.peek() {
                if *due > now {
                    break;
                }
                let Some(Reverse((due, kind, id))) = shard.timers.pop() else {
                    break;
                };
                // One timer's panic (a bug) must not stop the others.
                let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let Some(invitation) = shard.invitations.get_mut(&id) else {
                        return;
                    };
                    // A timer belongs to the invitation only if its time is still the
                    // invitation's: an idempotent resend can reuse an id after the
                    // first invitation was forgotten.
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
                            shard.invitations.remove(&id); // retention is over
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
                            if invitation.ended_at.is_none() {
                                self.end(&mut shard.timers, invitation, now);
                            }
                        }
                    }));
                    if ended.is_err() {
                        shard.invitations.remove(&id);
                    }
                }
            }
            if let Some(Reverse((due, _, _))) = shard.timers.peek() {
                earliest = Some(earliest.map_or(*due, |e| e.min(*due)));
            }
        }
        for shard in self.token_timers.iter() {
            let mut due_now = Vec::new();
            {
                let mut heap = shard.lock();
                while heap.peek().is_some_and(|Reverse(t)| t.due <= now) {
                    if let Some(Reverse(timer)) = heap.pop() {
                        due_now.push(timer);
                    }
                }
                if let Some(Reverse(next)) = heap.peek() {
                    earliest = Some(earliest.map_or(next.due, |e| e.min(next.due)));
                }
            }
            // Outside the heap's lock: ending a session takes other locks.
            for timer in due_now {
                let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.fire_token_timer(timer)
                }));
                if fired.is_err() {
                    crate::log!(Level::Error, SUB_TAG, "a token timer panicked");
                }
            }
        }
        earliest
    }
}
