//! What a client whose session was lost needs to catch up: the invitations its
//! user takes part in, and the end of those it knew of. Read only; the `sync`
//! that follows delivers what is still ringing.

use std::collections::HashSet;

use tokio::time::Instant;

use super::{Hub, Session};
use crate::protocol::{IdHashBuilder, InvitationId, InvitationSnapshot, Snapshot, UserId};

impl Hub {
    /// Every invitation still open that the session's user sent or was invited
    /// to, then each of `known` (the first [`Snapshot::MAX_KNOWN`]) that has
    /// ended and is still retained; the rest of `known` comes back as
    /// `unknown`, whether forgotten or never the user's (nothing about other
    /// users' invitations is told). An ended session gets an empty snapshot.
    ///
    /// Each invitation is read under its own lock, as it is at that moment:
    /// one that ends while the snapshot is taken is listed as ended if it was
    /// named, and not at all if it was not.
    pub fn snapshot(&self, session: &Session, known: &[InvitationId]) -> Snapshot {
        super::store::reset_frame_ticket();
        if !session.is_alive() {
            return Snapshot::default();
        }
        let now = self.clock.now();
        let user = &session.user;
        let mut open = Vec::new();
        let mut ended = Vec::new();
        let mut unknown = Vec::new();
        let mut seen: HashSet<InvitationId, IdHashBuilder> = HashSet::default();
        // The user's lock is let go before any invitation's is taken (the lock
        // order is invitation, then user).
        for id in self.users.active(user) {
            match self.invitation_snapshot(user, &id, now) {
                Some(snapshot) if !snapshot.ended => {
                    seen.insert(id);
                    open.push(snapshot);
                }
                _ => {} // ended meanwhile: told below only if named
            }
        }
        for id in known.iter().take(Snapshot::MAX_KNOWN) {
            if !seen.insert(id.clone()) {
                continue; // listed already, or named twice
            }
            match self.invitation_snapshot(user, id, now) {
                Some(snapshot) if snapshot.ended => ended.push(snapshot),
                Some(snapshot) => open.push(snapshot), // sent just now
                None => unknown.push(id.clone()),
            }
        }
        open.append(&mut ended);
        Snapshot {
            invitations: open,
            unknown,
        }
    }

    /// One invitation as `user` may see it: `None` if the hub does not know
    /// it or `user` takes no part in it.
    fn invitation_snapshot(
        &self,
        user: &UserId,
        id: &InvitationId,
        now: Instant,
    ) -> Option<InvitationSnapshot> {
        let shard = self.invitations.lock(id.shard_key());
        let invitation = shard.invitations.get(id)?;
        if !invitation.involves(user) {
            return None;
        }
        super::store::note_frame_ticket(invitation.ticket);
        let ended = invitation.ended_at.is_some();
        Some(InvitationSnapshot {
            invitation_id: id.clone(),
            inviter: invitation.inviter.clone(),
            invitees: invitation.statuses(),
            ended,
            seconds_left: if ended {
                0
            } else {
                invitation.seconds_left(now)
            },
        })
    }
}
