//! How the hub keeps its invitations in its store: every transition hands the
//! store the invitation's new record (before anything about it is pushed), and
//! a hub that starts on a store carries on from what it kept.

use std::time::Duration;

use super::invitation::Invitation;
use super::store::{note_frame_ticket, Change, InvitationRecord};
use super::timers::TimerKind;
use super::{Hub, SUB_TAG};
use crate::error::Result;
use crate::log::Level;
use crate::protocol::InvitationId;

/// What a hub found in its store when it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Invitations still ringing: their deadlines are armed again.
    pub open: usize,
    /// Invitations whose deadline passed while the hub was down: they timed
    /// out at start, in deadline order.
    pub timed_out: usize,
    /// Ended invitations still in their retention period.
    pub retained: usize,
    /// Ended invitations whose retention ended while the hub was down.
    pub forgotten: usize,
    /// How long restoring took (reading the store is the store's own time).
    pub took: Duration,
}

impl Hub {
    /// After a transition: the invitation's next version goes to the store,
    /// and what the current call sends about it waits for that version.
    /// Call it before the pushes the transition causes.
    pub(super) fn persist(&self, invitation: &mut Invitation) {
        invitation.version += 1;
        if self.keeps_records {
            invitation.ticket = self.store.submit(Change::Put(invitation.record()));
        }
        note_frame_ticket(invitation.ticket);
    }

    /// Retention is over: the store forgets the invitation too.
    pub(super) fn persist_forgotten(&self, invitation: &Invitation) {
        if self.keeps_records {
            self.store.submit(Change::Forget {
                id: invitation.id.clone(),
                version: invitation.version + 1,
            });
        }
    }

    /// Refuses (SERVER) a request that would change something while the
    /// store cannot write.
    pub(super) fn check_writable(&self) -> Result<()> {
        if self.keeps_records {
            self.store.check_writable()
        } else {
            Ok(())
        }
    }

    /// Restores what the store kept: open invitations with their deadlines
    /// (those that passed time out now, earliest first) and a grace timer
    /// for their inviters; ended ones for what is left of their retention.
    pub(super) fn recover(&self, kept: Vec<InvitationRecord>, inviter_grace: Duration) -> Recovery {
        let started = std::time::Instant::now();
        let now = self.clock.now();
        let now_ms = self.clock.unix_millis();
        let retention = self.config.retention;
        let mut recovery = Recovery::default();
        let mut overdue: Vec<(u64, InvitationId)> = Vec::new();
        let grace_ends = now + inviter_grace;
        for record in kept {
            let invitation = Invitation::from_record(record, now, now_ms, retention);
            let id = invitation.id.clone();
            let mut shard = self.invitations.lock(id.shard_key());
            if let Some(ended_at) = invitation.ended_at {
                let forget_at = ended_at + retention;
                if forget_at <= now {
                    recovery.forgotten += 1;
                    self.persist_forgotten(&invitation);
                    continue;
                }
                recovery.retained += 1;
                shard
                    .timers
                    .insert((forget_at, TimerKind::Forget, id.clone()));
                self.timer_signal.added(forget_at);
            } else {
                recovery.open += 1;
                self.users.update(&invitation.inviter, |entry| {
                    if entry.active.insert(id.clone()) {
                        entry.sent_open += 1;
                    }
                });
                for invitee in &invitation.invitees {
                    self.users.update(&invitee.user, |entry| {
                        entry.active.insert(id.clone());
                    });
                }
                if invitation.deadline_ms <= now_ms {
                    overdue.push((invitation.deadline_ms, id.clone()));
                } else {
                    let deadline = invitation.deadline;
                    shard
                        .timers
                        .insert((deadline, TimerKind::Deadline, id.clone()));
                    self.timer_signal.added(deadline);
                }
                shard
                    .timers
                    .insert((grace_ends, TimerKind::InviterGrace, id.clone()));
                self.timer_signal.added(grace_ends);
            }
            shard.invitations.insert(id, invitation);
        }
        overdue.sort();
        for (_, id) in overdue {
            let mut guard = self.invitations.lock(id.shard_key());
            let shard = &mut *guard;
            if let Some(invitation) = shard.invitations.get_mut(&id) {
                self.time_out(&mut shard.timers, invitation, now);
                recovery.timed_out += 1;
            }
        }
        recovery.open -= recovery.timed_out;
        recovery.took = started.elapsed();
        crate::log!(
            Level::Info,
            SUB_TAG,
            "recovered {} open invitations ({} timed out at start), {} retained, {} forgotten, in {:?}",
            recovery.open,
            recovery.timed_out,
            recovery.retained,
            recovery.forgotten,
            recovery.took
        );
        recovery
    }
}
