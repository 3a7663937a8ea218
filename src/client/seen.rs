//! Rule 9: a client shows each invitation once per user, however often the
//! hub hands it over (after a reconnect, a re-login, a sync).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::{IdHashBuilder, InvitationId, UserId};

/// The invitations a client has shown, per user (a client that logs in as
/// another user shows that user's invitations), each with when it may go.
pub(super) struct SeenInvitations {
    forget_at: HashMap<SeenKey, Instant, IdHashBuilder>,
    /// Sweep expired entries when the map reaches this size, then set it to
    /// twice what is left: amortized O(1) per insert, however many are live.
    sweep_at: usize,
}

/// An invitation shown to a user. Hashed by the invitation id's key alone (no
/// text hashing on the hot path); the user only breaks ties.
#[derive(PartialEq, Eq)]
struct SeenKey {
    invitation_id: InvitationId,
    user: UserId,
}

impl std::hash::Hash for SeenKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.invitation_id.hash(state);
    }
}

impl SeenInvitations {
    pub(super) fn new() -> SeenInvitations {
        SeenInvitations {
            forget_at: HashMap::default(),
            sweep_at: 1024,
        }
    }

    /// Rule 9 and rule 4 for one INVITATION_RECEIVED: true if it is new to this
    /// client (then it is acknowledged and shown), false for a repeat.
    pub(super) fn first_sight(
        &mut self,
        user: UserId,
        invitation_id: &InvitationId,
        seconds_left: u32,
    ) -> bool {
        let now = Instant::now();
        let key = SeenKey {
            invitation_id: invitation_id.clone(),
            user,
        };
        let seen = self;
        if seen.forget_at.contains_key(&key) {
            return false;
        }
        // The hub never re-delivers an invitation after its deadline, so an
        // entry can go a little after that (slack for clock differences).
        if seen.forget_at.len() >= seen.sweep_at {
            seen.forget_at.retain(|_, forget_at| *forget_at > now);
            seen.sweep_at = (seen.forget_at.len() * 2).max(1024);
        }
        let keep = Duration::from_secs(u64::from(seconds_left) + 60);
        seen.forget_at.insert(key, now + keep);
        true
    }
}
