//! Sending an invitation: validation, its id (random, or derived from an
//! idempotency key), the inviter's open-invitation quota, and the first ring
//! on every device of every invitee that is online.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::invitation::{Invitation, Invitee};
use super::reply::returned;
use super::session::UserEntry;
use super::store::{note_frame_ticket, reset_frame_ticket};
use super::timers::TimerKind;
use super::{Hub, Session, SUB_TAG};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{
    InvitationId, InviteeState, InviteeStatus, SendInvitation, SendOutcome, UserId,
};

/// Who sends an invitation.
#[derive(Clone, Copy)]
enum Sender<'a> {
    /// A logged-in device of the inviter.
    Device(&'a Session),
    /// The server API, on behalf of a user: the invitation belongs to no
    /// device, so the inviter's devices leaving does not cancel it (rule 7).
    Server(&'a UserId),
}

impl Sender<'_> {
    fn user(&self) -> &UserId {
        match self {
            Sender::Device(session) => &session.user,
            Sender::Server(user) => user,
        }
    }

    /// A device's session must still be live; the server always is.
    fn require_alive(&self) -> Result<()> {
        match self {
            Sender::Device(session) => Hub::require_alive(session),
            Sender::Server(_) => Ok(()),
        }
    }
}

impl Hub {
    /// Sends an invitation and returns its outcome. See [`Hub::send_then`].
    pub fn send(&self, session: &Session, request: SendInvitation) -> Result<SendOutcome> {
        returned(|reply| self.send_then(session, request, reply))
    }

    /// Sends an invitation. `reply` gets the outcome while the invitation is
    /// still locked, so it is queued before any push about this invitation that
    /// another thread could cause (an invitee's receipt, say): the inviter never
    /// hears of an invitation before it learns its id. Like a sink, `reply` must
    /// only queue.
    pub fn send_then(
        &self,
        session: &Session,
        request: SendInvitation,
        reply: impl FnOnce(Result<SendOutcome>),
    ) {
        self.send_from(Sender::Device(session), request, reply)
    }

    /// Sends an invitation on behalf of `inviter`, for the server API: the
    /// same rules and answers as a device's send, except that the
    /// invitation belongs to no device (rule 7 never cancels it; it ends by
    /// answers, a cancel, or its deadline). The inviter's devices hear of it
    /// as of any invitation of theirs. An idempotency key finds the same
    /// invitation a device of the inviter sent with that key, and the other
    /// way round.
    pub fn send_for_user(
        &self,
        inviter: &UserId,
        request: SendInvitation,
        reply: impl FnOnce(Result<SendOutcome>),
    ) {
        self.send_from(Sender::Server(inviter), request, reply)
    }

    fn send_from(
        &self,
        sender: Sender<'_>,
        mut request: SendInvitation,
        reply: impl FnOnce(Result<SendOutcome>),
    ) {
        reset_frame_ticket();
        let inviter = sender.user();
        if let Err(error) = sender.require_alive().and_then(|()| {
            request.fold_invitees();
            request.validate(Some(inviter), &self.config.limits)
        }) {
            return reply(Err(error));
        }
        let id = match &request.idempotency_key {
            Some(key) => self.idempotent_id(inviter, key),
            None => InvitationId::from_bits(rand::random()),
        };
        let now = self.clock.now();
        let deadline = now + Duration::from_secs(u64::from(request.timeout_secs));
        let created_ms = self.clock.unix_millis();
        let deadline_ms = created_ms.saturating_add(u64::from(request.timeout_secs) * 1000);

        let mut shard = self.invitations.lock(id.shard_key());
        if let Some(existing) = shard.invitations.get(&id) {
            if &existing.inviter == inviter {
                // A retried send: its answer waits for the first one's record.
                note_frame_ticket(existing.ticket);
                return reply(Ok(existing.send_outcome.clone()));
            }
            return reply(Err(Error::internal("invitation id collision")));
        }
        if let Err(error) = self.check_writable() {
            return reply(Err(error));
        }
        // Registering with the inviter first, under the user's lock, orders this
        // send against the inviter's logout: either the logout sees it and cancels
        // it, or this send sees the logout and stops here. The quota is checked
        // and taken in the same step, so concurrent sends never overshoot it.
        if let Err(error) = self
            .users
            .update(inviter, |entry| self.register_sent(sender, entry, &id))
        {
            return reply(Err(error));
        }

        let mut invitees = Vec::with_capacity(request.invitees.len());
        let mut error_invitees = Vec::new();
        let mut online = Vec::with_capacity(request.invitees.len());
        let mut unpushable = Vec::new();
        for user in &request.invitees {
            let sessions = self.users.update(user, |entry| {
                entry.active.insert(id.clone());
                entry.sessions.clone()
            });
            let offline = sessions.is_empty();
            if offline {
                error_invitees.push(InviteeStatus {
                    user_id: user.clone(),
                    state: InviteeState::Offline,
                });
            }
            let pushed = if offline && !request.online_only {
                let (pushed, not_now) = self.push_targets_for_offline(user);
                unpushable.extend(not_now.into_iter().map(|p| (user.clone(), p)));
                pushed
            } else {
                Vec::new()
            };
            invitees.push(Invitee {
                user: user.clone(),
                state: if offline {
                    InviteeState::Offline
                } else {
                    InviteeState::Inviting
                },
                closed_offline: offline && request.online_only,
                delivered_to: Vec::new(),
                pushed,
            });
            online.push(sessions);
        }
        let outcome = SendOutcome {
            invitation_id: id.clone(),
            error_invitees,
        };
        let mut invitation = Invitation {
            id: id.clone(),
            inviter: inviter.clone(),
            invitees,
            extended_data: request.extended_data,
            notification: request.notification,
            deadline,
            ended_at: None,
            send_outcome: outcome.clone(),
            online_only: request.online_only,
            idempotency_key: request.idempotency_key,
            deadline_ms,
            ended_ms: None,
            version: 0,
            ticket: 0,
            sent_by_server: matches!(sender, Sender::Server(_)),
            created_ms,
            in_history: false,
        };
        crate::log!(
            Level::Info,
            SUB_TAG,
            "send invitation {id}: inviter '{inviter}'{}, invitees {:?}, timeout {} s, offline {}",
            if invitation.sent_by_server {
                " (server API)"
            } else {
                ""
            },
            request.invitees,
            request.timeout_secs,
            outcome.error_invitees.len()
        );

        let push = Self::received_push(&invitation, now);
        // Told as sent, though an invitation that ends at once loses its
        // data at its end.
        let created_data = invitation.extended_data.clone();
        if invitation.is_finished() {
            self.end(&mut shard.timers, &mut invitation, now);
        } else {
            shard
                .timers
                .insert((deadline, TimerKind::Deadline, id.clone()));
            self.timer_signal.added(deadline);
        }
        // Stored before anyone hears of it.
        self.persist(&mut invitation);
        self.tell_created(&invitation, request.timeout_secs, created_data);
        self.tell_if_ended(&invitation);
        for (invitee, sessions) in invitation.invitees.iter_mut().zip(online) {
            for device in sessions {
                if device.deliver(push.clone()) {
                    invitee.delivered_to.push(device.id);
                }
            }
        }
        let offline: Vec<UserId> = outcome
            .error_invitees
            .iter()
            .map(|status| status.user_id.clone())
            .collect();
        let id_kept = id.clone();
        shard.invitations.insert(id, invitation);
        self.stats.created();
        reply(Ok(outcome));
        // After the answer: the inviter learns the id before any push result.
        if let Some(invitation) = shard.invitations.get(&id_kept) {
            self.push_rings(invitation, &offline, &unpushable);
        }
    }

    /// The id a send of `inviter` with idempotency key `key` gets: the same
    /// on every hub that shares the store's id key.
    pub fn idempotent_id(&self, inviter: &UserId, key: &str) -> InvitationId {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.id_key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(inviter.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(key.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&digest[..16]);
        InvitationId::from_bits(u128::from_be_bytes(bits))
    }

    /// Takes a place in the inviter's open-invitation quota for `id`.
    fn register_sent(
        &self,
        sender: Sender<'_>,
        entry: &mut UserEntry,
        id: &InvitationId,
    ) -> Result<()> {
        sender.require_alive()?;
        let inviter = sender.user();
        let limit = self.config.max_open_invitations;
        if entry.sent_open >= limit {
            self.stats.quota_refused();
            // Debug: a client at its limit must not flood the log (the
            // refusals are counted in the stats).
            crate::log!(
                Level::Debug,
                SUB_TAG,
                "send refused: '{inviter}' has {limit} invitations open"
            );
            return Err(Error::new(
                ErrorCode::RateLimited,
                format!("send: '{inviter}' has {limit} invitations open, the limit of this hub"),
            ));
        }
        if !entry.active.insert(id.clone()) {
            return Err(Error::internal("invitation id collision"));
        }
        entry.sent_open += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::test_support::{user, Inbox, Recording};
    use super::super::{Hub, HubConfig, ManualClock, Outlets};
    use crate::error::ErrorCode;
    use crate::protocol::{CancelInvitation, DeviceId, InviteeState, Push, SendInvitation, Text};

    fn device(name: &str) -> DeviceId {
        DeviceId::parse(name, "device").expect("device id")
    }

    fn hub(store: Arc<Recording>, clock: ManualClock) -> Arc<Hub> {
        Hub::with_store_and_manual_clock(
            HubConfig::default(),
            clock,
            store,
            Duration::from_secs(5),
            Outlets::default(),
        )
        .expect("hub")
        .0
    }

    #[test]
    fn a_server_send_outlives_its_inviters_devices_and_a_restart() {
        let store = Arc::new(Recording::default());
        let clock = ManualClock::new(1_800_000_000);
        let hub = hub(store.clone(), clock.clone());
        let alice_inbox = Arc::new(Inbox::default());
        let alice = hub
            .login(user("alice"), device("a1"), "t", alice_inbox.clone())
            .expect("alice");
        hub.sync(&alice);
        let bob_inbox = Arc::new(Inbox::default());
        let bob = hub
            .login(user("bob"), device("b1"), "t", bob_inbox.clone())
            .expect("bob");
        hub.sync(&bob);

        let mut request = SendInvitation::new(vec![user("bob")], 60);
        request.idempotency_key = Some(Text::from("call-1"));
        let mut sent = None;
        hub.send_for_user(&user("alice"), request.clone(), |r| sent = Some(r));
        let sent = sent.expect("answered").expect("sent");
        // The same key from a device of the inviter finds it.
        assert_eq!(hub.send(&alice, request).expect("retry"), sent);
        let record = hub.invitation_record(&sent.invitation_id).expect("kept");
        assert!(record.sent_by_server);
        assert!(bob_inbox
            .0
            .lock()
            .iter()
            .any(|p| matches!(p, Push::InvitationReceived { .. })));

        // The inviter's last device leaving cancels nothing it did not send.
        hub.logout(&alice);
        let states = hub.invitee_states(&sent.invitation_id).expect("open");
        assert_eq!(states[0].state, InviteeState::Inviting);

        // Nor does a restart whose grace period passes with alice away.
        let later = ManualClock::new(1_800_000_010);
        let restarted = hub_from(&store, later.clone());
        restarted.advance(&later, Duration::from_secs(6));
        let states = restarted.invitee_states(&sent.invitation_id).expect("open");
        assert_eq!(states[0].state, InviteeState::Inviting);

        // The server may cancel it (a device of someone else may not).
        let carol = restarted
            .login(user("carol"), device("c1"), "t", Arc::new(Inbox::default()))
            .expect("carol");
        let cancel = CancelInvitation {
            invitation_id: sent.invitation_id.clone(),
            invitees: None,
            extended_data: Text::from("support closed the ticket"),
        };
        let refused = restarted
            .cancel(&carol, cancel.clone())
            .expect_err("not hers");
        assert_eq!(refused.code, ErrorCode::NotPermitted);
        restarted.cancel_for_server(cancel).expect("cancelled");
        let states = restarted.invitee_states(&sent.invitation_id).expect("kept");
        assert_eq!(states[0].state, InviteeState::Cancelled);
    }

    fn hub_from(store: &Recording, clock: ManualClock) -> Arc<Hub> {
        hub(store.restarted(), clock)
    }

    #[test]
    fn the_server_kicks_a_device_which_is_told_and_rule_7_follows() {
        let hub = hub(
            Arc::new(Recording::default()),
            ManualClock::new(1_800_000_000),
        );
        let alice_inbox = Arc::new(Inbox::default());
        let alice = hub
            .login(user("alice"), device("a1"), "t", alice_inbox.clone())
            .expect("alice");
        hub.sync(&alice);
        let bob = hub
            .login(user("bob"), device("b1"), "t", Arc::new(Inbox::default()))
            .expect("bob");
        hub.sync(&bob);
        let sent = hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 60))
            .expect("send");
        assert_eq!(hub.devices(&user("alice")), vec![(device("a1"), false)]);
        assert_eq!(hub.kick(&user("alice"), &device("nope")).ok(), Some(false));
        assert_eq!(hub.kick(&user("alice"), &device("a1")).ok(), Some(true));
        assert!(!alice.is_alive());
        assert!(alice_inbox
            .0
            .lock()
            .iter()
            .any(|p| matches!(p, Push::KickedOut)));
        assert!(hub.devices(&user("alice")).is_empty());
        let states = hub.invitee_states(&sent.invitation_id).expect("kept");
        assert_eq!(states[0].state, InviteeState::Cancelled, "rule 7");
        assert_eq!(hub.kick(&user("alice"), &device("a1")).ok(), Some(false));
    }
}
