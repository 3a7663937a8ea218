//! Ringing devices that are not connected: the [`PushOutlet`] interface a
//! push service implements (beckon-server's APNs, FCM and webhook providers),
//! the jobs the hub hands it, and the [`PushReporter`] it answers through.
//!
//! The hub decides who is pushed and when (docs/PUSH.md); an outlet only
//! delivers. At send, every invitee with no device online (and the send not
//! `online_only`) gets a ring pushed to each device that has a target; when
//! that invitee's state becomes final (answered, cancelled, timed out), every
//! device that was pushed gets a stop push, except the one that answered.
//! Which devices were pushed is part of the invitation's record, so stop
//! pushes still go after a restart.

use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};

use super::store::Ticket;
use super::Hub;
use crate::protocol::{
    DeviceId, InvitationId, InviteeState, InviteeStatus, Notification, PushProvider, PushTarget,
    Text, UserId,
};

/// A push service. Called with an invitation locked: `push` only queues.
pub trait PushOutlet: Send + Sync + 'static {
    /// Whether this outlet can deliver through `provider`. A device cannot
    /// set a target of a provider its hub's outlet does not support.
    fn supports(&self, provider: PushProvider) -> bool;

    /// Queues `job`. The outlet must not let it leave the process before the
    /// hub's store made `job.ticket` durable (the change that caused it), and
    /// must call `job.reporter.report` once when it is done with it.
    fn push(&self, job: PushJob);
}

/// One push to one device.
pub struct PushJob {
    pub user: UserId,
    pub device: DeviceId,
    pub target: PushTarget,
    pub message: PushMessage,
    /// The store's ticket of the change that caused the push.
    pub ticket: Ticket,
    pub reporter: PushReporter,
}

/// What a push says.
#[derive(Clone, Debug)]
pub enum PushMessage {
    /// An invitation rings: everything an app needs to show the call without
    /// connecting first.
    Ring(Arc<Ring>),
    /// Stop ringing: the invitation is over for this invitee (`state` is
    /// final: answered, here or on another device, cancelled, timed out).
    Stop {
        invitation_id: InvitationId,
        inviter: UserId,
        state: InviteeState,
    },
}

impl PushMessage {
    pub fn invitation_id(&self) -> &InvitationId {
        match self {
            PushMessage::Ring(ring) => &ring.invitation_id,
            PushMessage::Stop { invitation_id, .. } => invitation_id,
        }
    }
}

/// The invitation a ring push is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    pub invitation_id: InvitationId,
    pub inviter: UserId,
    pub invitees: Arc<[InviteeStatus]>,
    pub extended_data: Text,
    pub notification: Option<Notification>,
    /// The deadline, Unix milliseconds: a push must not be delivered after
    /// it (APNs `apns-expiration`, FCM `ttl`).
    pub deadline_ms: u64,
}

impl Ring {
    /// Whole seconds left at `now_ms` (Unix milliseconds), rounded up.
    pub fn seconds_left(&self, now_ms: u64) -> u32 {
        let left = self.deadline_ms.saturating_sub(now_ms);
        u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX)
    }
}

/// How a push ended, as the outlet reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushResult {
    /// The provider accepted it.
    Sent,
    Failed {
        /// The provider's reason (e.g. "BadDeviceToken", "UNREGISTERED",
        /// "HTTP 503", "timed out").
        reason: String,
        /// The provider said the token is no longer valid: the device's
        /// target is forgotten (if it is still that one).
        token_invalid: bool,
    },
}

/// A device that was pushed for an invitee, as the invitation keeps it: stop
/// pushes go to the same target, even if the device changed its own since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedDevice {
    pub device: DeviceId,
    pub target: PushTarget,
}

/// The way back from an outlet to the hub for one job. Holds the hub weakly:
/// a report after the hub is gone is dropped.
pub struct PushReporter {
    pub(super) hub: Weak<Hub>,
    pub(super) invitation_id: InvitationId,
    /// Who learns a ring's result, even once the invitation is forgotten.
    pub(super) inviter: UserId,
    pub(super) user: UserId,
    pub(super) device: DeviceId,
    pub(super) target: PushTarget,
    /// Ring pushes are reported to the inviter; stop pushes are not.
    pub(super) ring: bool,
}

impl PushReporter {
    /// Whether the invitee this push is for still rings: a ring worth
    /// retrying. False once the invitation is over for it (or forgotten).
    pub fn still_ringing(&self) -> bool {
        self.hub
            .upgrade()
            .is_some_and(|hub| hub.rings_for(&self.invitation_id, &self.user))
    }

    /// The push's outcome: a ring's goes to the inviter's devices
    /// (`invitation_push_result`); a provider's "token no longer valid"
    /// forgets the device's target.
    pub fn report(self, result: PushResult) {
        if let Some(hub) = self.hub.upgrade() {
            hub.push_reported(&self, &result);
        }
    }

    pub fn invitation_id(&self) -> &InvitationId {
        &self.invitation_id
    }
}

impl std::fmt::Debug for PushReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushReporter")
            .field("invitation_id", &self.invitation_id)
            .field("user", &self.user)
            .field("device", &self.device)
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}
