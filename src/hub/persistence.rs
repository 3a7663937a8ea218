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
        // An end goes to history after its record: history never tells of
        // an end the store may not keep.
        if invitation.ended_at.is_some() && !invitation.in_history {
            invitation.in_history = true;
            self.record_history(invitation);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Recovery;
    use crate::error::ErrorCode;
    use crate::hub::test_support::{device, user, Inbox, Recording};
    use crate::hub::{frame_ticket, Change, Hub, HubConfig, ManualClock, Store};
    use crate::protocol::{
        Answer, CancelInvitation, InvitationId, InviteeState, Push, SendInvitation,
    };

    const START: u64 = 1_700_000_000;

    fn hub_on(store: Arc<Recording>, clock: &ManualClock, grace: u64) -> (Arc<Hub>, Recovery) {
        let config = HubConfig {
            retention: Duration::from_secs(600),
            ..HubConfig::default()
        };
        Hub::with_store_and_manual_clock(
            config,
            clock.clone(),
            store,
            Duration::from_secs(grace),
            super::super::Outlets::default(),
        )
        .unwrap()
    }

    fn state(hub: &Hub, id: &InvitationId, who: &str) -> InviteeState {
        let states = hub.invitee_states(id).expect("the invitation is known");
        states
            .iter()
            .find(|s| s.user_id == user(who))
            .map(|s| s.state)
            .expect("an invitee")
    }

    #[test]
    fn a_restarted_hub_carries_on_from_its_records() {
        let store = Arc::new(Recording {
            id_key: [7; 32],
            ..Recording::default()
        });
        let clock = ManualClock::new(START);
        let (hub, recovery) = hub_on(store.clone(), &clock, 30);
        assert_eq!(
            recovery,
            Recovery {
                took: recovery.took,
                ..Recovery::default()
            }
        );
        let alice = hub
            .login(user("alice"), device(), "", Arc::new(Inbox::default()))
            .unwrap();
        let bob = hub
            .login(user("bob"), device(), "", Arc::new(Inbox::default()))
            .unwrap();
        hub.sync(&bob);

        // Open, one invitee received it, one offline.
        let mut first = SendInvitation::new(vec![user("bob"), user("carol")], 300);
        first.idempotency_key = Some("call-1".into());
        let open = hub.send(&alice, first.clone()).unwrap();
        assert_eq!(
            frame_ticket(),
            store.durable(),
            "the answer waits for the send"
        );
        hub.acknowledge(&bob, &open.invitation_id);
        // Two whose deadlines pass while the hub is down, the later first.
        let late = hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 20))
            .unwrap();
        let early = hub
            .send(&alice, SendInvitation::new(vec![user("carol")], 10))
            .unwrap();
        // Ended (retained).
        let ended = hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 300))
            .unwrap();
        hub.accept(
            &bob,
            Answer {
                invitation_id: ended.invitation_id.clone(),
                extended_data: "".into(),
            },
        )
        .unwrap();

        // The process dies; 60 s later another starts on the same records.
        let later = ManualClock::new(START + 60);
        let store2 = store.restarted();
        let (hub2, recovery) = hub_on(store2.clone(), &later, 30);
        assert_eq!(
            (
                recovery.open,
                recovery.timed_out,
                recovery.retained,
                recovery.forgotten
            ),
            (1, 2, 1, 0)
        );
        assert_eq!(
            state(&hub2, &open.invitation_id, "bob"),
            InviteeState::Received
        );
        assert_eq!(
            state(&hub2, &open.invitation_id, "carol"),
            InviteeState::Offline
        );
        assert_eq!(
            state(&hub2, &early.invitation_id, "carol"),
            InviteeState::Timeout
        );
        assert_eq!(
            state(&hub2, &late.invitation_id, "bob"),
            InviteeState::Timeout
        );
        assert_eq!(
            state(&hub2, &ended.invitation_id, "bob"),
            InviteeState::Accepted
        );
        // The passed deadlines timed out in deadline order.
        let timed_out: Vec<InvitationId> = store2
            .log
            .lock()
            .iter()
            .filter_map(|c| match c {
                Change::Put(r) if r.invitees.iter().any(|i| i.state == InviteeState::Timeout) => {
                    Some(r.id.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            timed_out,
            [early.invitation_id.clone(), late.invitation_id.clone()]
        );

        // The inviter comes back within the grace period: a retried send gets
        // the same invitation, and it stays open past the grace period.
        let alice2 = hub2
            .login(user("alice"), device(), "", Arc::new(Inbox::default()))
            .unwrap();
        assert_eq!(hub2.send(&alice2, first).unwrap(), open);
        hub2.advance(&later, Duration::from_secs(31));
        assert_eq!(
            state(&hub2, &open.invitation_id, "carol"),
            InviteeState::Offline
        );
        // A ringing invitee that logs in is rung (rule 9: once per session).
        let carol = Arc::new(Inbox::default());
        let carol_session = hub2
            .login(user("carol"), device(), "", carol.clone())
            .unwrap();
        hub2.sync(&carol_session);
        hub2.sync(&carol_session);
        let rung = carol
            .0
            .lock()
            .iter()
            .filter(|p| matches!(p, Push::InvitationReceived { invitation_id, .. } if *invitation_id == open.invitation_id))
            .count();
        assert_eq!(rung, 1);
        // The ended one is retained: late requests get precise errors.
        let cancel = CancelInvitation {
            invitation_id: ended.invitation_id.clone(),
            invitees: None,
            extended_data: "".into(),
        };
        let error = hub2.cancel(&alice2, cancel).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvitationClosed);
        // Its retention ends 600 s after it ended, not after the restart.
        hub2.advance(&later, Duration::from_secs(600 - 60 - 31 + 1));
        assert!(hub2.invitee_states(&ended.invitation_id).is_none());
        assert!(!store2.kept.lock().contains_key(&ended.invitation_id));
    }

    #[test]
    fn an_inviter_who_does_not_come_back_within_the_grace_period_is_gone() {
        let store = Arc::new(Recording::default());
        let clock = ManualClock::new(START);
        let (hub, _) = hub_on(store.clone(), &clock, 30);
        let alice = hub
            .login(user("alice"), device(), "", Arc::new(Inbox::default()))
            .unwrap();
        let sent = hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 300))
            .unwrap();

        let later = ManualClock::new(START + 5);
        let (hub2, recovery) = hub_on(store.restarted(), &later, 30);
        assert_eq!(recovery.open, 1);
        let bob = Arc::new(Inbox::default());
        let bob_session = hub2.login(user("bob"), device(), "", bob.clone()).unwrap();
        hub2.sync(&bob_session);
        hub2.advance(&later, Duration::from_secs(29));
        assert_eq!(
            state(&hub2, &sent.invitation_id, "bob"),
            InviteeState::Offline
        );
        hub2.advance(&later, Duration::from_secs(2));
        assert_eq!(
            state(&hub2, &sent.invitation_id, "bob"),
            InviteeState::Cancelled
        );
        assert!(bob
            .0
            .lock()
            .iter()
            .any(|p| matches!(p, Push::InvitationCancelled { .. })));
        assert_eq!(
            hub2.open_invitations(&user("alice")),
            0,
            "its quota place is given back"
        );
    }
}
