//! Running totals a hub keeps for monitoring (the server's `/metrics`): relaxed
//! atomic counters, never read on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::InviteeState;

#[derive(Default)]
pub struct HubStats {
    created: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    cancelled: AtomicU64,
    timed_out: AtomicU64,
    quota_refused: AtomicU64,
}

/// The totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Invitations created.
    pub created: u64,
    /// Invitees that reached each final state.
    pub accepted: u64,
    pub refused: u64,
    pub cancelled: u64,
    pub timed_out: u64,
    /// Sends refused because the inviter had `max_open_invitations` open.
    pub quota_refused: u64,
}

impl HubStats {
    pub(crate) fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn quota_refused(&self) {
        self.quota_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// `count` invitees reached the final state `state`.
    pub(crate) fn finished(&self, state: InviteeState, count: usize) {
        let counter = match state {
            InviteeState::Accepted => &self.accepted,
            InviteeState::Rejected => &self.refused,
            InviteeState::Cancelled => &self.cancelled,
            InviteeState::Timeout => &self.timed_out,
            InviteeState::Inviting | InviteeState::Offline | InviteeState::Received => return,
        };
        counter.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            created: self.created.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            quota_refused: self.quota_refused.load(Ordering::Relaxed),
        }
    }
}
