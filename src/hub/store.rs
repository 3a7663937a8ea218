//! Where the hub's invitations go to outlive its process: the [`Store`]
//! interface, the records it keeps, and the tickets that say when a change is
//! durable.
//!
//! The rules stay in the hub. Each operation locks an invitation, applies its
//! transition in Rust (send, receipt, answer, cancel, deadline, an inviter's
//! departure, the end of retention), bumps the invitation's `version` and
//! hands the whole new record to the store, which returns a [`Ticket`]. A
//! store commits records in ticket order and says how far it got
//! ([`Store::durable`]); whatever leaves the process because of a change (its
//! answer, its pushes) waits until the change's ticket is durable. The
//! server's connections do that waiting (see [`frame_ticket`]); the hub never
//! blocks on a disk.
//!
//! Records carry a version so that a store shared by several hubs can commit
//! a transition with a compare-and-set on it (the SQLite store, whose one
//! process owns the file, only checks that versions move forward).

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use super::push::PushedDevice;
use crate::error::Result;
use crate::protocol::{
    DeviceId, InvitationId, InvitationSnapshot, InvitationSummary, InviteeState, InviteeStatus,
    Notification, PushTarget, SendOutcome, Text, UserId,
};

/// A change's place in a store's commit order. 0 is "nothing to wait for".
pub type Ticket = u64;

/// One invitation as a store keeps it: everything the hub needs to carry on
/// after a restart. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    pub id: InvitationId,
    /// 1 at send, one more at each transition.
    pub version: u64,
    pub inviter: UserId,
    pub invitees: Vec<InviteeRecord>,
    /// Cleared when the invitation ends (retention only answers late
    /// requests).
    pub extended_data: Text,
    pub notification: Option<Notification>,
    pub online_only: bool,
    /// The send's idempotency key, if it had one.
    pub idempotency_key: Option<Text>,
    pub deadline_ms: u64,
    /// When every invitee became final; the record is forgotten at
    /// `ended_ms` plus the hub's retention.
    pub ended_ms: Option<u64>,
    /// The send's OFFLINE invitees, replayed to a retried send.
    pub error_invitees: Vec<InviteeStatus>,
    /// Sent through the server API on the inviter's behalf: it belongs to
    /// no device, so rule 7 (the inviter leaving) does not cancel it.
    #[serde(default)]
    pub sent_by_server: bool,
    /// When it was sent (Unix milliseconds; 0 for records kept before
    /// this was).
    #[serde(default)]
    pub created_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteeRecord {
    pub user: UserId,
    pub state: InviteeState,
    /// OFFLINE at send time of an `online_only` invitation: closed for good.
    pub closed_offline: bool,
    /// The devices rung by push at send, until the invitee's state is final
    /// (they get a stop push then).
    pub pushed: Vec<PushedDevice>,
}

/// A device's push target, as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTargetRecord {
    pub user: UserId,
    pub device: DeviceId,
    pub target: PushTarget,
}

impl InvitationRecord {
    /// The invitation as `user` may see it in a snapshot (None if `user`
    /// takes no part in it), at `now_ms`: what a node tells of an
    /// invitation another node holds, read from their shared store.
    pub fn snapshot_for(&self, user: &UserId, now_ms: u64) -> Option<InvitationSnapshot> {
        let involved = &self.inviter == user || self.invitees.iter().any(|i| &i.user == user);
        if !involved {
            return None;
        }
        let ended = self.ended_ms.is_some();
        let left_ms = self.deadline_ms.saturating_sub(now_ms);
        let seconds_left = if ended { 0 } else { left_ms.div_ceil(1000) };
        Some(InvitationSnapshot {
            invitation_id: self.id.clone(),
            inviter: self.inviter.clone(),
            invitees: self
                .invitees
                .iter()
                .map(|i| InviteeStatus {
                    user_id: i.user.clone(),
                    state: i.state,
                })
                .collect(),
            ended,
            seconds_left: u32::try_from(seconds_left).unwrap_or(u32::MAX),
        })
    }

    /// The outcome a retried send is answered with.
    pub fn send_outcome(&self) -> SendOutcome {
        SendOutcome {
            invitation_id: self.id.clone(),
            error_invitees: self.error_invitees.clone(),
        }
    }
}

/// A change to hand a store.
#[derive(Clone, Debug)]
pub enum Change {
    /// The invitation's record at its new version (a send, or a transition).
    Put(InvitationRecord),
    /// Retention is over: the invitation is forgotten.
    Forget { id: InvitationId, version: u64 },
    /// A device's push target is set (`Some`) or forgotten (`None`).
    PushTarget {
        user: UserId,
        device: DeviceId,
        target: Option<PushTarget>,
    },
    /// An invitation ended: kept in its participants' history.
    History(InvitationSummary),
    /// History sent before this (Unix milliseconds) is past its keeping.
    ForgetHistory { before_ms: u64 },
}

/// What a store holds when a hub starts on it.
pub struct Recovered {
    /// The key idempotent invitation ids are derived with: the same key after
    /// a restart gives a retried send the same id.
    pub id_key: [u8; 32],
    pub invitations: Vec<InvitationRecord>,
    pub push_targets: Vec<PushTargetRecord>,
}

/// Where a hub's invitations are kept. Implementations: [`MemoryStore`] (the
/// hub's own maps are the only copy: `memory://`, `beckon-server --store
/// memory`), and `beckon-server`'s SQLite store.
pub trait Store: Send + Sync + 'static {
    /// Whether records are kept at all. A hub on a store that keeps nothing
    /// does not build them.
    fn keeps_records(&self) -> bool;

    /// What the store holds, read once when a hub starts on it.
    fn recover(&self) -> Result<Recovered>;

    /// Queues a change; returns its ticket. Never blocks on I/O: the hub
    /// calls it with an invitation locked.
    fn submit(&self, change: Change) -> Ticket;

    /// The highest ticket whose change (and every change before it) is
    /// durable.
    fn durable(&self) -> Ticket;

    /// Fails (with SERVER) while the store cannot write, so that requests
    /// are refused before they change anything.
    fn check_writable(&self) -> Result<()>;

    /// Whether it keeps history (`Change::History`); a hub hands history
    /// only to a store that does.
    fn keeps_history(&self) -> bool {
        false
    }

    /// Whether it answers history queries itself (the Redis store, shared
    /// by several nodes): the hub then keeps no history in memory, and its
    /// owner reads pages from the store.
    fn serves_history(&self) -> bool {
        false
    }

    /// The history it keeps of invitations sent at or after `since_ms`,
    /// oldest first, at most `per_user` for any one user; read once when a
    /// hub starts on it. A store that keeps no history has none.
    fn recover_history(&self, _since_ms: u64, _per_user: usize) -> Result<Vec<InvitationSummary>> {
        Ok(Vec::new())
    }
}

/// The store of a hub whose maps are the only copy: it keeps nothing, and
/// every change is as durable as it will ever be at once.
pub struct MemoryStore;

impl Store for MemoryStore {
    fn keeps_records(&self) -> bool {
        false
    }

    fn recover(&self) -> Result<Recovered> {
        Ok(Recovered {
            id_key: rand::random(),
            invitations: Vec::new(),
            push_targets: Vec::new(),
        })
    }

    fn submit(&self, _change: Change) -> Ticket {
        0
    }

    fn durable(&self) -> Ticket {
        0
    }

    fn check_writable(&self) -> Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The ticket the frames the current hub call produces depend on.
    static FRAME_TICKET: Cell<Ticket> = const { Cell::new(0) };
}

/// The ticket that an answer or a push produced by the hub call under way on
/// this thread must wait for before it leaves the process: the highest ticket
/// of the invitations that call changed or read. A session sink reads it in
/// `deliver`; a server reads it in the reply of a `*_then` call, or right
/// after `logout`, `snapshot` or `renew_token` returns. Each of the hub's
/// calls that can change, push or answer starts it again from 0; a frame made
/// without the hub has nothing to wait for (0).
pub fn frame_ticket() -> Ticket {
    FRAME_TICKET.with(Cell::get)
}

/// A hub call starts: nothing to wait for yet.
pub(super) fn reset_frame_ticket() {
    FRAME_TICKET.with(|t| t.set(0));
}

/// The call touched an invitation at `ticket`.
pub(super) fn note_frame_ticket(ticket: Ticket) {
    FRAME_TICKET.with(|t| t.set(t.get().max(ticket)));
}
