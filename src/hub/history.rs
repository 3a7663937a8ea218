//! Each user's recent ended invitations, for history queries (a device's
//! `query_invitations`, the server API's list): at most `history_per_user`
//! per user, for `history_keep` after they were sent. Kept in memory,
//! striped by user (a leaf lock: taken under an invitation's lock, nothing
//! taken while it is held), and handed to the store, which keeps it across
//! restarts if it can (beckon-server's SQLite store).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::invitation::Invitation;
use super::shards::{hash_str, Shards, SHARD_COUNT};
use super::store::{note_frame_ticket, Change, Ticket};
use super::Hub;
use crate::error::Result;
use crate::protocol::{HistoryCursor, InvitationPage, InvitationQuery, InvitationSummary, UserId};

/// One in this many recorded invitations also sweeps one shard of what is
/// past its keeping (users who never query again), and tells the store.
const SWEEP_EVERY: u64 = 1024;

/// An ended invitation, and the store ticket of its end: a page that lists
/// it waits for that ticket, as a push telling of the end would.
struct Kept {
    summary: InvitationSummary,
    ticket: Ticket,
}

type UserHistory = VecDeque<Arc<Kept>>;

pub(crate) struct History {
    shards: Shards<HashMap<UserId, UserHistory>>,
    recorded: AtomicU64,
}

impl History {
    pub fn new() -> History {
        History {
            shards: Shards::new(),
            recorded: AtomicU64::new(0),
        }
    }

    /// Adds `kept` to each participant's history, in order of when it was
    /// sent, keeping at most `per_user` each. An entry of the same
    /// invitation is replaced (a newer end of it wins).
    fn add(&self, kept: Arc<Kept>, per_user: usize) {
        let summary = &kept.summary;
        let mut users: Vec<&UserId> = Vec::with_capacity(summary.invitees.len() + 1);
        users.push(&summary.inviter);
        for invitee in &summary.invitees {
            if !users.contains(&&invitee.user_id) {
                users.push(&invitee.user_id);
            }
        }
        let position = summary.position();
        for user in users {
            let mut map = self.shards.lock(hash_str(user.as_str()));
            let list = map.entry(user.clone()).or_default();
            if let Some(old) = list
                .iter()
                .rposition(|e| e.summary.invitation_id == summary.invitation_id)
            {
                list.remove(old);
            }
            // Newest at the back; an invitation ends after those sent
            // before it, mostly, so this looks at the last few only.
            let at = list
                .iter()
                .rposition(|e| e.summary.position() <= position)
                .map_or(0, |i| i + 1);
            list.insert(at, kept.clone());
            while list.len() > per_user {
                list.pop_front();
            }
        }
    }

    /// Drops what was sent before `cutoff_ms` from one shard (round robin).
    fn sweep_one(&self, cutoff_ms: u64, turn: u64) {
        let mut map = self.shards.lock(turn % SHARD_COUNT as u64);
        map.retain(|_, list| {
            while list
                .front()
                .is_some_and(|e| e.summary.created_ms < cutoff_ms)
            {
                list.pop_front();
            }
            !list.is_empty()
        });
    }

    fn page(
        &self,
        user: &UserId,
        query: &InvitationQuery,
        limit: usize,
        cutoff_ms: u64,
    ) -> Result<InvitationPage> {
        let before = query
            .cursor
            .as_deref()
            .map(HistoryCursor::parse)
            .transpose()?;
        let mut map = self.shards.lock(hash_str(user.as_str()));
        let Some(list) = map.get_mut(user) else {
            return Ok(InvitationPage::default());
        };
        while list
            .front()
            .is_some_and(|e| e.summary.created_ms < cutoff_ms)
        {
            list.pop_front();
        }
        let mut found = Vec::with_capacity(limit);
        let mut more = false;
        let mut ticket = 0;
        for kept in list.iter().rev() {
            let entry = &kept.summary;
            if before.as_ref().is_some_and(|b| entry.position() >= *b) {
                continue;
            }
            if query.until_ms != 0 && entry.created_ms >= query.until_ms {
                continue;
            }
            if entry.created_ms < query.since_ms {
                break; // older ones are older still
            }
            if !entry.has(user, query.role) {
                continue;
            }
            if found.len() == limit {
                more = true;
                break;
            }
            found.push(entry.clone());
            ticket = ticket.max(kept.ticket);
        }
        note_frame_ticket(ticket);
        Ok(InvitationPage::of(found, more))
    }
}

impl Hub {
    /// `user`'s ended invitations that `query` asks for, newest first.
    pub fn query_invitations(
        &self,
        user: &UserId,
        query: &InvitationQuery,
    ) -> Result<InvitationPage> {
        // Reads nothing a store must first make durable.
        super::store::reset_frame_ticket();
        let limit = query.validate()?;
        if self.history_in_store {
            return Err(crate::error::Error::internal(
                "history is read from the store, not from the hub",
            ));
        }
        self.history
            .page(user, query, limit, self.history_cutoff_ms())
    }

    /// Keeps an invitation that just ended, and whose record was just
    /// submitted, in its participants' history (and hands it to the store).
    pub(super) fn record_history(&self, invitation: &Invitation) {
        let per_user = self.config.history_per_user;
        if per_user == 0 {
            return;
        }
        let ended_ms = invitation
            .ended_ms
            .unwrap_or_else(|| self.clock.unix_millis());
        let created_ms = if invitation.created_ms == 0 {
            ended_ms
        } else {
            invitation.created_ms
        };
        let summary = InvitationSummary {
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            invitees: invitation.statuses().to_vec(),
            created_ms,
            ended_ms,
            sent_by_server: invitation.sent_by_server,
        };
        if self.keeps_history {
            self.store.submit(Change::History(summary.clone()));
        }
        if self.history_in_store {
            return;
        }
        let kept = Kept {
            summary,
            ticket: invitation.ticket,
        };
        self.history.add(Arc::new(kept), per_user);
        let recorded = self.history.recorded.fetch_add(1, Ordering::Relaxed) + 1;
        if recorded % SWEEP_EVERY == 0 {
            let cutoff = self.history_cutoff_ms();
            self.history.sweep_one(cutoff, recorded / SWEEP_EVERY);
            if self.keeps_history && recorded % (SWEEP_EVERY * SHARD_COUNT as u64) == 0 {
                self.store
                    .submit(Change::ForgetHistory { before_ms: cutoff });
            }
        }
    }

    /// What a store kept, when a hub starts on it.
    pub(super) fn restore_history(&self, kept: Vec<InvitationSummary>) {
        let per_user = self.config.history_per_user;
        if per_user == 0 {
            return;
        }
        for summary in kept {
            self.history
                .add(Arc::new(Kept { summary, ticket: 0 }), per_user);
        }
    }

    /// What was sent before this is past history's keeping.
    pub fn history_cutoff_ms(&self) -> u64 {
        let keep = u64::try_from(self.config.history_keep.as_millis()).unwrap_or(u64::MAX);
        self.clock.unix_millis().saturating_sub(keep)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::test_support::{user, Inbox, Recording};
    use super::super::{Hub, HubConfig, ManualClock, Outlets, Session};
    use crate::protocol::{
        Answer, DeviceId, HistoryRole, InvitationId, InvitationQuery, InviteeState, SendInvitation,
        Text,
    };

    const START: u64 = 1_800_000_000;

    fn hub(store: Arc<Recording>, clock: ManualClock, per_user: usize) -> Arc<Hub> {
        let config = HubConfig {
            history_per_user: per_user,
            history_keep: Duration::from_secs(3600),
            ..HubConfig::default()
        };
        Hub::with_store_and_manual_clock(
            config,
            clock,
            store,
            Duration::from_secs(30),
            Outlets::default(),
        )
        .expect("hub")
        .0
    }

    fn online(hub: &Hub, name: &str) -> Arc<Session> {
        let device = DeviceId::parse("d1", "device").unwrap();
        let session = hub
            .login(user(name), device, "t", Arc::new(Inbox::default()))
            .expect("login");
        hub.sync(&session);
        session
    }

    /// `from` invites `to`, who refuses; a second later on the clock.
    fn call(hub: &Hub, clock: &ManualClock, from: &Session, to: &Session) -> InvitationId {
        let id = hub
            .send(from, SendInvitation::new(vec![to.user.clone()], 30))
            .expect("send")
            .invitation_id;
        hub.refuse(
            to,
            Answer {
                invitation_id: id.clone(),
                extended_data: Text::from(""),
            },
        )
        .expect("refuse");
        hub.advance(clock, Duration::from_secs(1));
        id
    }

    fn query(role: HistoryRole, limit: u32) -> InvitationQuery {
        InvitationQuery {
            role,
            limit,
            ..InvitationQuery::default()
        }
    }

    #[test]
    fn pages_go_newest_first_by_role_and_time_and_outlive_a_restart() {
        let store = Arc::new(Recording::default());
        let clock = ManualClock::new(START);
        let hub = hub(store.clone(), clock.clone(), 100);
        let (alice, bob) = (online(&hub, "alice"), online(&hub, "bob"));
        let mut sent_by_alice = Vec::new();
        let mut all = Vec::new();
        for round in 0..25 {
            let id = if round % 5 == 4 {
                call(&hub, &clock, &bob, &alice)
            } else {
                let id = call(&hub, &clock, &alice, &bob);
                sent_by_alice.push(id.clone());
                id
            };
            all.push(id);
        }
        // Any role, pages of 10: 10 + 10 + 5, newest first, no repeats.
        let mut seen = Vec::new();
        let mut page_query = query(HistoryRole::Any, 10);
        loop {
            let page = hub.query_invitations(&alice.user, &page_query).unwrap();
            assert!(page.invitations.len() <= 10);
            seen.extend(page.invitations.iter().map(|s| s.invitation_id.clone()));
            match page.next_cursor {
                Some(cursor) => page_query.cursor = Some(cursor),
                None => break,
            }
        }
        let newest_first: Vec<_> = all.iter().rev().cloned().collect();
        assert_eq!(seen, newest_first);
        // Only what alice sent; its states are final.
        let sent = hub
            .query_invitations(&alice.user, &query(HistoryRole::Sent, 100))
            .unwrap();
        let ids: Vec<_> = sent
            .invitations
            .iter()
            .map(|s| s.invitation_id.clone())
            .collect();
        assert_eq!(ids, sent_by_alice.iter().rev().cloned().collect::<Vec<_>>());
        assert!(sent.next_cursor.is_none());
        assert!(sent
            .invitations
            .iter()
            .all(|s| s.invitees[0].state == InviteeState::Rejected && s.ended_ms >= s.created_ms));
        let received = hub
            .query_invitations(&alice.user, &query(HistoryRole::Received, 100))
            .unwrap();
        assert_eq!(received.invitations.len(), 5);
        // A time range: the invitations sent in seconds 10..15 of the run.
        let ranged = InvitationQuery {
            since_ms: START * 1000 + 10_000,
            until_ms: START * 1000 + 15_000,
            ..query(HistoryRole::Any, 100)
        };
        let page = hub.query_invitations(&bob.user, &ranged).unwrap();
        let ids: Vec<_> = page
            .invitations
            .iter()
            .map(|s| s.invitation_id.clone())
            .collect();
        assert_eq!(ids, all[10..15].iter().rev().cloned().collect::<Vec<_>>());

        // A restart on the same store keeps it.
        let later = ManualClock::new(START + 100);
        let restarted = hub_on(&store, later);
        let page = restarted
            .query_invitations(&alice.user, &query(HistoryRole::Any, 100))
            .unwrap();
        assert_eq!(page.invitations.len(), 25);
    }

    fn hub_on(store: &Recording, clock: ManualClock) -> Arc<Hub> {
        hub(store.restarted(), clock, 100)
    }

    #[test]
    fn history_is_bounded_per_user_and_in_time_and_queries_are_checked() {
        let clock = ManualClock::new(START);
        let hub = hub(Arc::new(Recording::default()), clock.clone(), 3);
        let (alice, bob) = (online(&hub, "alice"), online(&hub, "bob"));
        let ids: Vec<_> = (0..5).map(|_| call(&hub, &clock, &alice, &bob)).collect();
        let page = hub
            .query_invitations(&bob.user, &query(HistoryRole::Any, 10))
            .unwrap();
        let kept: Vec<_> = page
            .invitations
            .iter()
            .map(|s| s.invitation_id.clone())
            .collect();
        assert_eq!(kept, ids[2..].iter().rev().cloned().collect::<Vec<_>>());
        // Past history_keep (an hour), nothing is returned.
        hub.advance(&clock, Duration::from_secs(3601));
        let page = hub
            .query_invitations(&bob.user, &query(HistoryRole::Any, 10))
            .unwrap();
        assert!(page.invitations.is_empty());
        // Bad queries name their field.
        for (bad, field) in [
            (query(HistoryRole::Any, 101), "query.limit"),
            (
                InvitationQuery {
                    since_ms: 10,
                    until_ms: 5,
                    ..InvitationQuery::default()
                },
                "query.until_ms",
            ),
            (
                InvitationQuery {
                    cursor: Some(Text::from("yesterday")),
                    ..InvitationQuery::default()
                },
                "query.cursor",
            ),
        ] {
            let error = hub.query_invitations(&bob.user, &bad).unwrap_err();
            assert!(error.message.starts_with(field), "{}", error.message);
        }
        // No history at all when it is off.
        let off = hub_off();
        let (a, b) = (online(&off, "alice"), online(&off, "bob"));
        call(&off, &clock, &a, &b);
        let page = off
            .query_invitations(&a.user, &query(HistoryRole::Any, 10))
            .unwrap();
        assert!(page.invitations.is_empty());
    }

    fn hub_off() -> Arc<Hub> {
        hub(Arc::new(Recording::default()), ManualClock::new(START), 0)
    }
}
