//! What the application has been told about each invitation of this login, so
//! that after a session the server could not resume, the link tells it what it
//! missed (from the server's snapshot) exactly once, and so that a push that
//! repeats something already told is dropped. Owned by the link task alone.
//!
//! It records every send result and every invitation push that passes to the
//! application: as inviter, each invitee's state and whether its answer
//! (ACCEPTED, REFUSED, RESPONSE_TIMEOUT) was told; as invitee, each invitee's
//! state and whether CANCELLED or TIMEOUT was told. A told state only moves
//! forward (INVITING/OFFLINE, then RECEIVED, then a final state) and a final
//! state never changes. Invitations the application never heard of through
//! this link (sent from another device, never rung here) are not tracked: what
//! still rings is handed over again by the server's sync.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::{
    IdHashBuilder, InvitationId, InvitationSnapshot, InviteeState, Push, Snapshot, Text, UserId,
};

/// Most invitations tracked at once; so `known` always fits a sync.
const MAX_ENTRIES: usize = Snapshot::MAX_KNOWN;
/// A finished invitation is kept this long, to drop late repeats of its end.
const FINISHED_KEEP: Duration = Duration::from_secs(60);
/// Past its deadline an invitation has ended at the server, which remembers it
/// for its retention (10 minutes by default): after that a snapshot can no
/// longer tell about it.
const AFTER_DEADLINE_KEEP: Duration = Duration::from_secs(11 * 60);

pub(super) struct Tracker {
    me: UserId,
    entries: HashMap<InvitationId, Entry, IdHashBuilder>,
}

struct Entry {
    inviter: UserId,
    invitees: Vec<Told>,
    /// Invitee side: INVITATION_CANCELLED or INVITATION_TIMEOUT was told.
    closed_told: bool,
    /// Every invitee is final as told, or the server said it ended.
    finished: bool,
    forget_at: Instant,
}

struct Told {
    user: UserId,
    state: InviteeState,
    /// Inviter side: INVITATION_ACCEPTED, _REFUSED or _RESPONSE_TIMEOUT was
    /// told for this invitee.
    answer_told: bool,
}

impl Tracker {
    pub fn new(me: UserId) -> Tracker {
        Tracker {
            me,
            entries: HashMap::default(),
        }
    }

    /// The invitations the application knows as open, for `sync.known`.
    pub fn known(&self) -> Vec<InvitationId> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.finished)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether a receipt of this user for `invitation_id` would change
    /// nothing, as far as the application was told: this user is past
    /// INVITING/OFFLINE in it, or it ended.
    pub fn past_receipt(&self, invitation_id: &InvitationId) -> bool {
        self.entries.get(invitation_id).is_some_and(|entry| {
            entry.finished
                || entry.closed_told
                || entry.invitees.iter().any(|t| {
                    t.user == self.me
                        && !matches!(t.state, InviteeState::Inviting | InviteeState::Offline)
                })
        })
    }

    /// A send succeeded: the application knows its invitees' first states.
    pub fn sent(
        &mut self,
        invitation_id: &InvitationId,
        invitees: &[UserId],
        offline: &[crate::protocol::InviteeStatus],
        timeout_secs: u32,
        now: Instant,
    ) {
        if self.entries.contains_key(invitation_id) {
            return; // a re-sent send: what was told stands
        }
        let invitees = invitees
            .iter()
            .map(|user| Told {
                user: user.clone(),
                state: offline
                    .iter()
                    .find(|s| &s.user_id == user)
                    .map_or(InviteeState::Inviting, |s| s.state),
                answer_told: false,
            })
            .collect();
        let deadline = now + Duration::from_secs(u64::from(timeout_secs));
        self.insert(
            invitation_id.clone(),
            Entry::new(self.me.clone(), invitees, deadline),
            now,
        );
    }

    /// Records `push` as told and returns it, or `None` if it repeats what the
    /// application was told already (a response timeout keeps only the
    /// invitees not yet told).
    pub fn pass(&mut self, push: Push, now: Instant) -> Option<Push> {
        if let Push::InvitationReceived {
            invitation_id,
            inviter,
            invitees,
            seconds_left,
            ..
        } = &push
        {
            // A repeat is the client's to hide (rule 9); it changes nothing here.
            if !self.entries.contains_key(invitation_id) {
                let told = invitees
                    .iter()
                    .map(|s| Told {
                        user: s.user_id.clone(),
                        state: s.state,
                        answer_told: false,
                    })
                    .collect();
                let deadline = now + Duration::from_secs(u64::from(*seconds_left));
                let entry = Entry::new(inviter.clone(), told, deadline);
                self.insert(invitation_id.clone(), entry, now);
            }
            return Some(push);
        }
        let Some(entry) = push.invitation_id().and_then(|id| self.entries.get_mut(id)) else {
            return Some(push);
        };
        let passed = match push {
            Push::InvitationAccepted { ref invitee, .. }
            | Push::InvitationRefused { ref invitee, .. } => {
                entry.tell_answer(invitee).then_some(push)
            }
            Push::InvitationResponseTimeout {
                invitation_id,
                invitees,
            } => {
                let untold: Vec<UserId> = invitees
                    .iter()
                    .filter(|user| entry.tell_answer(user))
                    .cloned()
                    .collect();
                (!untold.is_empty()).then(|| Push::InvitationResponseTimeout {
                    invitation_id,
                    invitees: untold.into(),
                })
            }
            Push::InvitationCancelled { .. } | Push::InvitationTimeout { .. } => {
                (!std::mem::replace(&mut entry.closed_told, true)).then_some(push)
            }
            Push::UserStateChanged {
                ref user_id, state, ..
            } => entry.tell_state(user_id, state).then_some(push),
            other => Some(other),
        };
        entry.finish_if_final(now);
        passed
    }

    /// The events the application missed, from the server's snapshot after a
    /// session was lost, each at most once: answers and ends first, then the
    /// state changes (as the hub orders the pushes of one change).
    pub fn missed(&mut self, snapshot: &Snapshot, now: Instant) -> Vec<Push> {
        let mut missed = Vec::new();
        for invitation in &snapshot.invitations {
            let Some(entry) = self.entries.get_mut(&invitation.invitation_id) else {
                continue;
            };
            if entry.inviter == self.me {
                entry.missed_as_inviter(invitation, &mut missed);
            } else {
                entry.missed_as_invitee(&self.me, invitation, &mut missed);
            }
            if invitation.ended {
                entry.finished = true;
                entry.forget_at = now + FINISHED_KEEP;
            }
            entry.finish_if_final(now);
        }
        // Forgotten by the server (long ended) or never this user's: nothing
        // more can be learned of them.
        for id in &snapshot.unknown {
            self.entries.remove(id);
        }
        missed
    }

    fn insert(&mut self, id: InvitationId, entry: Entry, now: Instant) {
        if self.entries.len() >= MAX_ENTRIES {
            self.make_room(now);
        }
        self.entries.insert(id, entry);
    }

    /// Frees at least a quarter of the entries (so this runs once per many
    /// inserts): those past their time, then finished ones, then the oldest.
    fn make_room(&mut self, now: Instant) {
        let enough = MAX_ENTRIES * 3 / 4;
        self.entries.retain(|_, e| e.forget_at > now);
        if self.entries.len() > enough {
            self.entries.retain(|_, e| !e.finished);
        }
        if self.entries.len() > enough {
            let mut times: Vec<Instant> = self.entries.values().map(|e| e.forget_at).collect();
            let cut = self.entries.len() - MAX_ENTRIES / 2;
            let (_, limit, _) = times.select_nth_unstable(cut);
            let limit = *limit;
            self.entries.retain(|_, e| e.forget_at > limit);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Entry {
    fn new(inviter: UserId, invitees: Vec<Told>, deadline: Instant) -> Entry {
        Entry {
            inviter,
            invitees,
            closed_told: false,
            finished: false,
            forget_at: deadline + AFTER_DEADLINE_KEEP,
        }
    }

    fn told(&mut self, user: &UserId) -> &mut Told {
        let index = match self.invitees.iter().position(|t| &t.user == user) {
            Some(index) => index,
            None => {
                self.invitees.push(Told {
                    user: user.clone(),
                    state: InviteeState::Inviting,
                    answer_told: false,
                });
                self.invitees.len() - 1
            }
        };
        &mut self.invitees[index]
    }

    /// True the first time an answer of `user` is told.
    fn tell_answer(&mut self, user: &UserId) -> bool {
        !std::mem::replace(&mut self.told(user).answer_told, true)
    }

    /// True if `state` is news for `user` (it moves the told state forward).
    fn tell_state(&mut self, user: &UserId, state: InviteeState) -> bool {
        let told = self.told(user);
        let news = advances(told.state, state);
        if news {
            told.state = state;
        }
        news
    }

    fn finish_if_final(&mut self, now: Instant) {
        if !self.finished && self.invitees.iter().all(|t| t.state.is_terminal()) {
            self.finished = true;
            self.forget_at = now + FINISHED_KEEP;
        }
    }

    fn missed_as_inviter(&mut self, now: &InvitationSnapshot, missed: &mut Vec<Push>) {
        let id = &now.invitation_id;
        let mut timed_out = Vec::new();
        let mut changes = Vec::new();
        for status in now.invitees.iter() {
            let answer = match status.state {
                InviteeState::Accepted => Some(Push::InvitationAccepted {
                    invitation_id: id.clone(),
                    invitee: status.user_id.clone(),
                    extended_data: empty(),
                }),
                InviteeState::Rejected => Some(Push::InvitationRefused {
                    invitation_id: id.clone(),
                    invitee: status.user_id.clone(),
                    extended_data: empty(),
                }),
                _ => None,
            };
            let answered = answer.is_some() || status.state == InviteeState::Timeout;
            if answered && self.tell_answer(&status.user_id) {
                match answer {
                    Some(answer) => missed.push(answer),
                    None => timed_out.push(status.user_id.clone()),
                }
            }
            if self.tell_state(&status.user_id, status.state) {
                changes.push(state_changed(id, &status.user_id, status.state));
            }
        }
        if !timed_out.is_empty() {
            missed.push(Push::InvitationResponseTimeout {
                invitation_id: id.clone(),
                invitees: timed_out.into(),
            });
        }
        missed.append(&mut changes);
    }

    fn missed_as_invitee(&mut self, me: &UserId, now: &InvitationSnapshot, missed: &mut Vec<Push>) {
        let id = &now.invitation_id;
        if let Some(mine) = now.invitees.iter().find(|s| &s.user_id == me) {
            let end = match mine.state {
                InviteeState::Cancelled => Some(Push::InvitationCancelled {
                    invitation_id: id.clone(),
                    inviter: now.inviter.clone(),
                    extended_data: empty(),
                }),
                InviteeState::Timeout => Some(Push::InvitationTimeout {
                    invitation_id: id.clone(),
                    inviter: now.inviter.clone(),
                }),
                _ => None,
            };
            if let Some(end) = end {
                if !std::mem::replace(&mut self.closed_told, true) {
                    missed.push(end);
                }
            }
        }
        for status in now.invitees.iter() {
            if self.tell_state(&status.user_id, status.state) {
                missed.push(state_changed(id, &status.user_id, status.state));
            }
        }
    }
}

/// Whether the application, told `from`, should be told `to`: a final state
/// never changes, and RECEIVED does not go back to INVITING or OFFLINE.
fn advances(from: InviteeState, to: InviteeState) -> bool {
    fn rank(state: InviteeState) -> u8 {
        match state {
            InviteeState::Inviting | InviteeState::Offline => 0,
            InviteeState::Received => 1,
            _ => 2,
        }
    }
    from != to && !from.is_terminal() && rank(to) >= rank(from)
}

fn state_changed(id: &InvitationId, user: &UserId, state: InviteeState) -> Push {
    Push::UserStateChanged {
        invitation_id: id.clone(),
        user_id: user.clone(),
        state,
        // Answers' extended data is not in a snapshot.
        extended_data: empty(),
    }
}

fn empty() -> Text {
    Text::from("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::InviteeStatus;

    fn user(name: &str) -> UserId {
        UserId::parse(name, "u").unwrap()
    }

    fn id(n: u128) -> InvitationId {
        InvitationId::from_bits(n)
    }

    fn status(name: &str, state: InviteeState) -> InviteeStatus {
        InviteeStatus {
            user_id: user(name),
            state,
        }
    }

    fn snapshot(invitations: Vec<InvitationSnapshot>) -> Snapshot {
        Snapshot {
            invitations,
            unknown: Vec::new(),
        }
    }

    fn listed(
        n: u128,
        inviter: &str,
        invitees: Vec<InviteeStatus>,
        ended: bool,
    ) -> InvitationSnapshot {
        InvitationSnapshot {
            invitation_id: id(n),
            inviter: user(inviter),
            invitees: invitees.into(),
            ended,
            seconds_left: if ended { 0 } else { 20 },
        }
    }

    fn changed(n: u128, who: &str, state: InviteeState) -> Push {
        state_changed(&id(n), &user(who), state)
    }

    fn received(n: u128, inviter: &str, invitees: Vec<InviteeStatus>) -> Push {
        Push::InvitationReceived {
            invitation_id: id(n),
            inviter: user(inviter),
            invitees: invitees.into(),
            extended_data: empty(),
            notification: None,
            seconds_left: 30,
        }
    }

    /// Alice sent invitation 1 to bob, carol and dave (dave offline).
    fn alice_sent() -> (Tracker, Instant) {
        let now = Instant::now();
        let mut alice = Tracker::new(user("alice"));
        alice.sent(
            &id(1),
            &[user("bob"), user("carol"), user("dave")],
            &[status("dave", InviteeState::Offline)],
            30,
            now,
        );
        (alice, now)
    }

    #[test]
    fn an_inviter_is_told_the_answers_it_missed_once() {
        let (mut alice, now) = alice_sent();
        assert!(alice
            .pass(changed(1, "bob", InviteeState::Received), now)
            .is_some());
        assert_eq!(alice.known(), vec![id(1)]);

        let while_away = snapshot(vec![listed(
            1,
            "alice",
            vec![
                status("bob", InviteeState::Accepted),
                status("carol", InviteeState::Rejected),
                status("dave", InviteeState::Received),
            ],
            false,
        )]);
        assert_eq!(
            alice.missed(&while_away, now),
            vec![
                Push::InvitationAccepted {
                    invitation_id: id(1),
                    invitee: user("bob"),
                    extended_data: empty()
                },
                Push::InvitationRefused {
                    invitation_id: id(1),
                    invitee: user("carol"),
                    extended_data: empty()
                },
                changed(1, "bob", InviteeState::Accepted),
                changed(1, "carol", InviteeState::Rejected),
                changed(1, "dave", InviteeState::Received),
            ]
        );
        assert!(alice.missed(&while_away, now).is_empty(), "told once");

        // Late pushes of what the snapshot told are dropped; news passes.
        for late in [
            Push::InvitationAccepted {
                invitation_id: id(1),
                invitee: user("bob"),
                extended_data: "late".into(),
            },
            changed(1, "bob", InviteeState::Accepted),
            changed(1, "dave", InviteeState::Received),
            changed(1, "carol", InviteeState::Received), // a final state never goes back
        ] {
            assert_eq!(alice.pass(late.clone(), now), None, "{late:?}");
        }
        let timeout = Push::InvitationResponseTimeout {
            invitation_id: id(1),
            invitees: vec![user("bob"), user("dave")].into(),
        };
        assert_eq!(
            alice.pass(timeout, now),
            Some(Push::InvitationResponseTimeout {
                invitation_id: id(1),
                invitees: vec![user("dave")].into(),
            }),
            "bob's answer was told; dave's timeout is news"
        );
        assert!(alice
            .pass(changed(1, "dave", InviteeState::Timeout), now)
            .is_some());
        assert!(alice.known().is_empty(), "every invitee final: finished");
    }

    #[test]
    fn an_inviter_is_told_timeouts_in_one_response_timeout() {
        let (mut alice, now) = alice_sent();
        let ended = snapshot(vec![listed(
            1,
            "alice",
            vec![
                status("bob", InviteeState::Timeout),
                status("carol", InviteeState::Cancelled),
                status("dave", InviteeState::Timeout),
            ],
            true,
        )]);
        assert_eq!(
            alice.missed(&ended, now),
            vec![
                Push::InvitationResponseTimeout {
                    invitation_id: id(1),
                    invitees: vec![user("bob"), user("dave")].into(),
                },
                changed(1, "bob", InviteeState::Timeout),
                changed(1, "carol", InviteeState::Cancelled),
                changed(1, "dave", InviteeState::Timeout),
            ]
        );
        assert!(alice.known().is_empty());
    }

    #[test]
    fn an_invitee_is_told_a_cancel_or_timeout_it_missed_once() {
        let now = Instant::now();
        let mut bob = Tracker::new(user("bob"));
        let ringing = vec![
            status("bob", InviteeState::Inviting),
            status("carol", InviteeState::Inviting),
        ];
        assert!(bob
            .pass(received(1, "alice", ringing.clone()), now)
            .is_some());
        assert!(bob
            .pass(received(2, "alice", ringing.clone()), now)
            .is_some());
        assert!(bob.pass(received(3, "alice", ringing), now).is_some());
        let mut known = bob.known();
        known.sort();
        assert_eq!(known, vec![id(1), id(2), id(3)]);

        let mut while_away = snapshot(vec![
            listed(
                1,
                "alice",
                vec![
                    status("bob", InviteeState::Cancelled),
                    status("carol", InviteeState::Accepted),
                ],
                true,
            ),
            listed(
                2,
                "alice",
                vec![
                    status("bob", InviteeState::Timeout),
                    status("carol", InviteeState::Timeout),
                ],
                true,
            ),
        ]);
        while_away.unknown = vec![id(3)];
        assert_eq!(
            bob.missed(&while_away, now),
            vec![
                Push::InvitationCancelled {
                    invitation_id: id(1),
                    inviter: user("alice"),
                    extended_data: empty()
                },
                changed(1, "bob", InviteeState::Cancelled),
                changed(1, "carol", InviteeState::Accepted),
                Push::InvitationTimeout {
                    invitation_id: id(2),
                    inviter: user("alice")
                },
                changed(2, "bob", InviteeState::Timeout),
                changed(2, "carol", InviteeState::Timeout),
            ]
        );
        assert!(bob.known().is_empty(), "ended, or forgotten by the server");
        assert!(bob.missed(&while_away, now).is_empty(), "told once");
        let late = Push::InvitationCancelled {
            invitation_id: id(1),
            inviter: user("alice"),
            extended_data: empty(),
        };
        assert_eq!(bob.pass(late, now), None);
    }

    #[test]
    fn an_answer_from_another_device_is_a_state_change() {
        let now = Instant::now();
        let mut bob = Tracker::new(user("bob"));
        bob.pass(
            received(1, "alice", vec![status("bob", InviteeState::Inviting)]),
            now,
        );
        let answered = snapshot(vec![listed(
            1,
            "alice",
            vec![status("bob", InviteeState::Accepted)],
            true,
        )]);
        assert_eq!(
            bob.missed(&answered, now),
            vec![changed(1, "bob", InviteeState::Accepted)]
        );
    }

    #[test]
    fn what_this_link_never_told_is_neither_tracked_nor_invented() {
        let now = Instant::now();
        let mut alice = Tracker::new(user("alice"));
        // Another device's invitation: its pushes pass unchanged, every time.
        let push = changed(9, "bob", InviteeState::Received);
        assert_eq!(alice.pass(push.clone(), now), Some(push.clone()));
        assert_eq!(alice.pass(push.clone(), now), Some(push));
        let other = snapshot(vec![listed(
            9,
            "alice",
            vec![status("bob", InviteeState::Accepted)],
            false,
        )]);
        assert!(alice.missed(&other, now).is_empty());
        assert!(alice.known().is_empty());
        // A re-sent send's result changes nothing already told.
        let (mut alice, now) = alice_sent();
        alice.pass(changed(1, "bob", InviteeState::Received), now);
        alice.sent(&id(1), &[user("bob")], &[], 30, now);
        assert_eq!(
            alice.pass(changed(1, "bob", InviteeState::Received), now),
            None
        );
    }

    #[test]
    fn the_tracker_stays_bounded() {
        let now = Instant::now();
        let mut alice = Tracker::new(user("alice"));
        for n in 0..(5 * MAX_ENTRIES as u128) {
            alice.sent(&id(n), &[user("bob")], &[], 30, now);
            if n % 2 == 0 {
                alice.pass(changed(n, "bob", InviteeState::Rejected), now);
            }
            assert!(alice.len() <= MAX_ENTRIES);
        }
        assert!(alice.known().len() <= Snapshot::MAX_KNOWN);
        // The newest open one is still known.
        let newest = id(5 * MAX_ENTRIES as u128 - 1);
        assert!(alice.known().contains(&newest));
        // Entries past their time go first.
        let later = now + Duration::from_secs(30) + AFTER_DEADLINE_KEEP + Duration::from_secs(1);
        alice.sent(&id(u128::MAX), &[user("bob")], &[], 30, later);
        alice.make_room(later);
        assert_eq!(alice.known(), vec![id(u128::MAX)]);
    }
}
