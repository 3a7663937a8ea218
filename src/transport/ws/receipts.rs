//! The receipts (rule 4) this link sent whose effect it has not seen yet.
//! A receipt is a notice: it gets no result and no sequence number, so one
//! written just before the connection dropped may never have reached the
//! server, and a resumed session does not say. The link keeps each until the
//! session shows the server has it, and sends them all again after every
//! reconnect (the server ignores a receipt of an invitee that is past
//! INVITING or OFFLINE, so a repeat is harmless).
//!
//! What shows it: this user's own USER_STATE_CHANGED for the invitation with
//! RECEIVED or any later state (the hub announces every state change to every
//! device of every participant, the invitee's own included), the invitation
//! ending for this user (INVITATION_CANCELLED, INVITATION_TIMEOUT), or a
//! snapshot listing it ended, with this user past INVITING/OFFLINE, or as
//! unknown. Bounded by the invitations ringing: an entry is forgotten once
//! the longest invitation the hub allows would have ended, and there are at
//! most `MAX_ENTRIES`. Owned by the link task alone.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::wire::ClientFrame;
use crate::protocol::{IdHashBuilder, InvitationId, InviteeState, Push, Snapshot, UserId};

/// Most receipts kept at once.
const MAX_ENTRIES: usize = Snapshot::MAX_KNOWN;
/// Past the longest invitation, a receipt is kept this much longer.
const SLACK: Duration = Duration::from_secs(60);

pub(super) struct Receipts {
    me: UserId,
    /// Each unconfirmed receipt, and when it is forgotten anyway.
    unconfirmed: HashMap<InvitationId, Instant, IdHashBuilder>,
}

impl Receipts {
    pub fn new(me: UserId) -> Receipts {
        Receipts {
            me,
            unconfirmed: HashMap::default(),
        }
    }

    /// A receipt was (or is about to be) sent; `ringing_at_most` is the
    /// longest an invitation can ring (the hub's `max_timeout_secs`).
    pub fn sent(&mut self, invitation_id: &InvitationId, ringing_at_most: Duration, now: Instant) {
        if !self.unconfirmed.contains_key(invitation_id) && self.unconfirmed.len() >= MAX_ENTRIES {
            self.unconfirmed.retain(|_, forget_at| *forget_at > now);
            if self.unconfirmed.len() >= MAX_ENTRIES {
                // The one kept longest goes.
                let oldest = self
                    .unconfirmed
                    .iter()
                    .min_by_key(|(_, forget_at)| **forget_at)
                    .map(|(id, _)| id.clone());
                if let Some(oldest) = oldest {
                    self.unconfirmed.remove(&oldest);
                }
            }
        }
        self.unconfirmed
            .insert(invitation_id.clone(), now + ringing_at_most + SLACK);
    }

    /// Forgets a receipt whose effect `push` shows.
    pub fn confirmed_by(&mut self, push: &Push) {
        if self.unconfirmed.is_empty() {
            return;
        }
        match push {
            Push::UserStateChanged {
                invitation_id,
                user_id,
                state,
                ..
            } if user_id == &self.me && !pending(*state) => {
                self.unconfirmed.remove(invitation_id);
            }
            Push::InvitationCancelled { invitation_id, .. }
            | Push::InvitationTimeout { invitation_id, .. } => {
                self.unconfirmed.remove(invitation_id);
            }
            _ => {}
        }
    }

    /// Forgets the receipts a snapshot shows the server has, or no longer needs.
    pub fn confirmed_by_snapshot(&mut self, snapshot: &Snapshot) {
        if self.unconfirmed.is_empty() {
            return;
        }
        for id in &snapshot.unknown {
            self.unconfirmed.remove(id);
        }
        for invitation in &snapshot.invitations {
            let mine = invitation
                .invitees
                .iter()
                .find(|s| s.user_id == self.me)
                .map(|s| s.state);
            if invitation.ended || mine.is_none_or(|state| !pending(state)) {
                self.unconfirmed.remove(&invitation.invitation_id);
            }
        }
    }

    /// Forgets one receipt (its effect is known otherwise).
    pub fn forget(&mut self, invitation_id: &InvitationId) {
        self.unconfirmed.remove(invitation_id);
    }

    /// The frames of every receipt still unconfirmed, to send again after a
    /// reconnect (those past their time are forgotten first).
    pub fn frames(&mut self, now: Instant) -> Vec<String> {
        self.unconfirmed.retain(|_, forget_at| *forget_at > now);
        self.unconfirmed.keys().filter_map(frame).collect()
    }

    pub fn clear(&mut self) {
        self.unconfirmed = HashMap::default();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.unconfirmed.len()
    }
}

/// The receipt frame for `invitation_id`.
pub(super) fn frame(invitation_id: &InvitationId) -> Option<String> {
    serde_json::to_string(&ClientFrame::Receipt {
        invitation_id: invitation_id.clone(),
    })
    .ok()
}

/// A state a receipt still changes.
fn pending(state: InviteeState) -> bool {
    matches!(state, InviteeState::Inviting | InviteeState::Offline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{InvitationSnapshot, InviteeStatus};

    fn user(name: &str) -> UserId {
        UserId::parse(name, "user").unwrap()
    }

    fn id(n: u128) -> InvitationId {
        InvitationId::parse(&format!("{n:032x}"), "invitation_id").unwrap()
    }

    fn changed(n: u128, who: &str, state: InviteeState) -> Push {
        Push::UserStateChanged {
            invitation_id: id(n),
            user_id: user(who),
            state,
            extended_data: "".into(),
        }
    }

    const RING: Duration = Duration::from_secs(600);

    #[test]
    fn a_receipt_is_kept_until_its_effect_shows() {
        let now = Instant::now();
        let mut receipts = Receipts::new(user("bob"));
        for n in 1..=5 {
            receipts.sent(&id(n), RING, now);
        }
        receipts.sent(&id(1), RING, now); // sent again: still one
        assert_eq!(receipts.len(), 5);
        // Someone else's state, or a state a receipt still changes: kept.
        receipts.confirmed_by(&changed(1, "carol", InviteeState::Received));
        receipts.confirmed_by(&changed(1, "bob", InviteeState::Inviting));
        assert_eq!(receipts.len(), 5);
        receipts.confirmed_by(&changed(1, "bob", InviteeState::Received));
        receipts.confirmed_by(&changed(2, "bob", InviteeState::Accepted));
        receipts.confirmed_by(&Push::InvitationCancelled {
            invitation_id: id(3),
            inviter: user("alice"),
            extended_data: "".into(),
        });
        receipts.confirmed_by(&Push::InvitationTimeout {
            invitation_id: id(4),
            inviter: user("alice"),
        });
        let frames = receipts.frames(now);
        assert_eq!(
            frames,
            vec![format!(
                r#"{{"type":"receipt","invitation_id":"{:032x}"}}"#,
                5
            )]
        );
        receipts.clear();
        assert!(receipts.frames(now).is_empty());
    }

    #[test]
    fn a_snapshot_confirms_receipts() {
        let now = Instant::now();
        let mut receipts = Receipts::new(user("bob"));
        for n in 1..=5 {
            receipts.sent(&id(n), RING, now);
        }
        let listed = |n: u128, state: InviteeState, ended: bool| InvitationSnapshot {
            invitation_id: id(n),
            inviter: user("alice"),
            invitees: vec![InviteeStatus {
                user_id: user("bob"),
                state,
            }]
            .into(),
            ended,
            seconds_left: 0,
        };
        receipts.confirmed_by_snapshot(&Snapshot {
            invitations: vec![
                listed(1, InviteeState::Received, false),
                listed(2, InviteeState::Inviting, false),
                listed(3, InviteeState::Inviting, true),
            ],
            unknown: vec![id(4)],
        });
        let mut left = receipts.frames(now);
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].contains(&format!("{:032x}", 2)), "{left:?}");
        assert!(left[1].contains(&format!("{:032x}", 5)), "{left:?}");
    }

    #[test]
    fn receipts_stay_bounded() {
        let now = Instant::now();
        let mut receipts = Receipts::new(user("bob"));
        for n in 0..(MAX_ENTRIES as u128 + 10) {
            receipts.sent(&id(n), RING, now + Duration::from_millis(n as u64));
        }
        assert_eq!(receipts.len(), MAX_ENTRIES);
        // Past the longest ring, all are forgotten.
        let later = now + RING + SLACK + Duration::from_secs(10);
        assert!(receipts.frames(later).is_empty());
    }
}
