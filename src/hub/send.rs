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
        mut request: SendInvitation,
        reply: impl FnOnce(Result<SendOutcome>),
    ) {
        reset_frame_ticket();
        if let Err(error) = Self::require_alive(session).and_then(|()| {
            request.fold_invitees();
            request.validate(Some(&session.user), &self.config.limits)
        }) {
            return reply(Err(error));
        }
        let id = match &request.idempotency_key {
            Some(key) => self.idempotent_id(&session.user, key),
            None => InvitationId::from_bits(rand::random()),
        };
        let now = self.clock.now();
        let deadline = now + Duration::from_secs(u64::from(request.timeout_secs));
        let deadline_ms = self
            .clock
            .unix_millis()
            .saturating_add(u64::from(request.timeout_secs) * 1000);

        let mut shard = self.invitations.lock(id.shard_key());
        if let Some(existing) = shard.invitations.get(&id) {
            if existing.inviter == session.user {
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
        if let Err(error) = self.users.update(&session.user, |entry| {
            self.register_sent(session, entry, &id)
        }) {
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
            inviter: session.user.clone(),
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
        };
        crate::log!(
            Level::Info,
            SUB_TAG,
            "send invitation {id}: inviter '{}', invitees {:?}, timeout {} s, offline {}",
            session.user,
            request.invitees,
            request.timeout_secs,
            outcome.error_invitees.len()
        );

        let push = Self::received_push(&invitation, now);
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
        self.tell_created(&invitation, request.timeout_secs);
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
        session: &Session,
        entry: &mut UserEntry,
        id: &InvitationId,
    ) -> Result<()> {
        Self::require_alive(session)?;
        let limit = self.config.max_open_invitations;
        if entry.sent_open >= limit {
            self.stats.quota_refused();
            // Debug: a client at its limit must not flood the log (the
            // refusals are counted in the stats).
            crate::log!(
                Level::Debug,
                SUB_TAG,
                "send refused: '{}' has {limit} invitations open",
                session.user
            );
            return Err(Error::new(
                ErrorCode::RateLimited,
                format!(
                    "send: '{}' has {limit} invitations open, the limit of this hub",
                    session.user
                ),
            ));
        }
        if !entry.active.insert(id.clone()) {
            return Err(Error::internal("invitation id collision"));
        }
        entry.sent_open += 1;
        Ok(())
    }
}
