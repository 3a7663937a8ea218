//! Devices' push targets, and when the hub hands its [`PushOutlet`] a job:
//! rings at send for invitees with no device online, stop pushes when such an
//! invitee's state becomes final, and what comes back (the inviter's
//! `invitation_push_result`, targets a provider says are gone).
//!
//! Lock order: invitation shard, then user shard, then push-target shard (a
//! leaf: nothing is locked while one is held).

use std::collections::HashMap;

use super::invitation::Invitation;
use super::push::{PushJob, PushMessage, PushReporter, PushResult, PushedDevice, Ring};
use super::session::Session;
use super::shards::{hash_str, Shards};
use super::store::{note_frame_ticket, reset_frame_ticket, Change, PushTargetRecord};
use super::{Hub, SUB_TAG};
use crate::error::{Error, Result};
use crate::log::Level;
use crate::protocol::{
    DeviceId, InvitationId, InviteeState, Push, PushOutcome, PushTarget, Text, UserId,
};

/// Every device's push target, by user.
pub(crate) struct PushTargets {
    shards: Shards<HashMap<UserId, Vec<PushedDevice>>>,
}

impl PushTargets {
    pub fn new() -> PushTargets {
        PushTargets {
            shards: Shards::new(),
        }
    }

    /// The targets of `user`'s devices.
    pub fn of(&self, user: &UserId) -> Vec<PushedDevice> {
        let map = self.shards.lock(hash_str(user.as_str()));
        map.get(user).cloned().unwrap_or_default()
    }

    /// Sets (`Some`) or forgets (`None`) a device's target, if `only_if`
    /// holds for its current one; says whether anything changed.
    fn replace(
        &self,
        user: &UserId,
        device: &DeviceId,
        target: Option<PushTarget>,
        only_if: impl FnOnce(Option<&PushTarget>) -> bool,
    ) -> bool {
        let mut map = self.shards.lock(hash_str(user.as_str()));
        let devices = map.entry(user.clone()).or_default();
        let at = devices.iter().position(|d| &d.device == device);
        if !only_if(at.map(|i| &devices[i].target)) {
            return false;
        }
        let changed = match (at, target) {
            (Some(i), Some(target)) if devices[i].target == target => false,
            (Some(i), Some(target)) => {
                devices[i].target = target;
                true
            }
            (None, Some(target)) => {
                devices.push(PushedDevice {
                    device: device.clone(),
                    target,
                });
                true
            }
            (Some(i), None) => {
                devices.swap_remove(i);
                true
            }
            (None, None) => false,
        };
        if devices.is_empty() {
            map.remove(user);
        }
        changed
    }
}

/// Stop pushes taken from an invitation at a transition, queued once its new
/// version is stored.
pub(super) struct Stops(Vec<(UserId, InviteeState, Vec<PushedDevice>)>);

impl Hub {
    /// Rings this session's device by push while it is not connected.
    pub fn set_push_target(&self, session: &Session, target: PushTarget) -> Result<()> {
        reset_frame_ticket();
        Self::require_alive(session)?;
        target.validate()?;
        let supported = self
            .push_outlet
            .as_ref()
            .is_some_and(|outlet| outlet.supports(target.provider));
        if !supported {
            return Err(Error::invalid(format!(
                "push_target.provider: this server does not push through {} (see its [push] configuration)",
                target.provider
            )));
        }
        self.check_writable()?;
        let provider = target.provider;
        if self
            .push_targets
            .replace(&session.user, &session.device, Some(target.clone()), |_| {
                true
            })
        {
            self.persist_push_target(&session.user, &session.device, Some(target));
        }
        crate::log!(
            Level::Debug,
            SUB_TAG,
            "push target of '{}' device '{}': {provider}",
            session.user,
            session.device
        );
        Ok(())
    }

    /// Forgets this session's device's push target, if it has one.
    pub fn clear_push_target(&self, session: &Session) -> Result<()> {
        reset_frame_ticket();
        Self::require_alive(session)?;
        self.check_writable()?;
        self.forget_push_target(&session.user, &session.device);
        Ok(())
    }

    /// An explicit logout: the session ends (rule 7 applies) and its
    /// device's push target is forgotten (a dropped connection keeps it).
    pub fn logout_for_good(&self, session: &Session) {
        self.logout(session);
        self.forget_push_target(&session.user, &session.device);
    }

    /// The targets `user`'s devices have set, for tests and diagnostics.
    pub fn push_targets(&self, user: &UserId) -> Vec<(DeviceId, PushTarget)> {
        self.push_targets
            .of(user)
            .into_iter()
            .map(|d| (d.device, d.target))
            .collect()
    }

    fn forget_push_target(&self, user: &UserId, device: &DeviceId) {
        if self.push_targets.replace(user, device, None, |_| true) {
            self.persist_push_target(user, device, None);
        }
    }

    fn persist_push_target(&self, user: &UserId, device: &DeviceId, target: Option<PushTarget>) {
        if self.keeps_records {
            note_frame_ticket(self.store.submit(Change::PushTarget {
                user: user.clone(),
                device: device.clone(),
                target,
            }));
        }
    }

    /// At start: the targets the store kept.
    pub(super) fn restore_push_targets(&self, kept: Vec<PushTargetRecord>) {
        for record in kept {
            self.push_targets
                .replace(&record.user, &record.device, Some(record.target), |_| true);
        }
    }

    /// At send, for an invitee with no device online: the devices to ring
    /// by push (recorded on the invitee before the invitation is stored).
    pub(super) fn push_targets_for_offline(&self, user: &UserId) -> Vec<PushedDevice> {
        if self.push_outlet.is_none() {
            return Vec::new();
        }
        self.push_targets.of(user)
    }

    /// After the send is stored: a ring job per pushed device, and
    /// `no_push_target` results for the inviter about offline invitees that
    /// have no device to push (`online_only` sends push nobody).
    pub(super) fn push_rings(&self, invitation: &Invitation, offline: &[UserId]) {
        if invitation.online_only {
            return;
        }
        let mut ring = None;
        for user in offline {
            let Some(invitee) = invitation.invitees.iter().find(|i| &i.user == user) else {
                continue;
            };
            if invitee.pushed.is_empty() {
                self.tell_inviter(invitation, user, None, PushOutcome::NoPushTarget, "");
                continue;
            }
            let ring = ring.get_or_insert_with(|| {
                std::sync::Arc::new(Ring {
                    invitation_id: invitation.id.clone(),
                    inviter: invitation.inviter.clone(),
                    invitees: invitation.statuses(),
                    extended_data: invitation.extended_data.clone(),
                    notification: invitation.notification.clone(),
                    deadline_ms: invitation.deadline_ms,
                })
            });
            for pushed in &invitee.pushed {
                self.queue_push(
                    invitation,
                    user,
                    pushed,
                    PushMessage::Ring(ring.clone()),
                    true,
                );
            }
        }
    }

    /// At a transition, before the new version is stored: the pushed devices
    /// of every invitee now final, except `answered_on` (the device that
    /// answered knows).
    pub(super) fn take_stops(
        invitation: &mut Invitation,
        answered_on: Option<(&UserId, &DeviceId)>,
    ) -> Stops {
        let mut stops = Vec::new();
        for invitee in &mut invitation.invitees {
            if invitee.pushed.is_empty() || !invitee.is_final() {
                continue;
            }
            let mut devices = std::mem::take(&mut invitee.pushed);
            if let Some((user, device)) = answered_on {
                if user == &invitee.user {
                    devices.retain(|d| &d.device != device);
                }
            }
            if !devices.is_empty() {
                stops.push((invitee.user.clone(), invitee.state, devices));
            }
        }
        Stops(stops)
    }

    /// After the transition is stored: the stop pushes.
    pub(super) fn push_stops(&self, invitation: &Invitation, stops: Stops) {
        for (user, state, devices) in stops.0 {
            for pushed in &devices {
                let message = PushMessage::Stop {
                    invitation_id: invitation.id.clone(),
                    inviter: invitation.inviter.clone(),
                    state,
                };
                self.queue_push(invitation, &user, pushed, message, false);
            }
        }
    }

    fn queue_push(
        &self,
        invitation: &Invitation,
        user: &UserId,
        pushed: &PushedDevice,
        message: PushMessage,
        ring: bool,
    ) {
        let Some(outlet) = &self.push_outlet else {
            return;
        };
        let reporter = PushReporter {
            hub: self.me.clone(),
            invitation_id: invitation.id.clone(),
            user: user.clone(),
            device: pushed.device.clone(),
            target: pushed.target.clone(),
            ring,
        };
        if ring && !outlet.supports(pushed.target.provider) {
            // Configured when the target was set, not since a restart.
            let reason = format!(
                "this server no longer pushes through {}",
                pushed.target.provider
            );
            self.tell_inviter(invitation, user, Some(pushed), PushOutcome::Failed, &reason);
            return;
        }
        outlet.push(PushJob {
            user: user.clone(),
            device: pushed.device.clone(),
            target: pushed.target.clone(),
            message,
            ticket: invitation.ticket,
            reporter,
        });
    }

    /// `invitation_push_result` to the inviter's devices (with the
    /// invitation locked: in order with its other pushes).
    fn tell_inviter(
        &self,
        invitation: &Invitation,
        invitee: &UserId,
        pushed: Option<&PushedDevice>,
        outcome: PushOutcome,
        reason: &str,
    ) {
        let push = Push::InvitationPushResult {
            invitation_id: invitation.id.clone(),
            invitee: invitee.clone(),
            device: pushed.map(|p| p.device.clone()),
            provider: pushed.map(|p| p.target.provider),
            outcome,
            reason: Text::from(reason),
        };
        self.users.deliver(&invitation.inviter, &push);
    }

    /// An outlet's report (see [`PushReporter::report`]).
    pub(super) fn push_reported(&self, reporter: &PushReporter, result: &PushResult) {
        reset_frame_ticket();
        if let PushResult::Failed {
            token_invalid: true,
            reason,
        } = result
        {
            let target = &reporter.target;
            let forgotten =
                self.push_targets
                    .replace(&reporter.user, &reporter.device, None, |current| {
                        current == Some(target)
                    });
            if forgotten {
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "push target of '{}' device '{}' forgotten: {} says {reason}",
                    reporter.user,
                    reporter.device,
                    target.provider
                );
                self.persist_push_target(&reporter.user, &reporter.device, None);
            }
        }
        if !reporter.ring {
            return;
        }
        let shard = self.invitations.lock(reporter.invitation_id.shard_key());
        let Some(invitation) = shard.invitations.get(&reporter.invitation_id) else {
            return;
        };
        note_frame_ticket(invitation.ticket);
        let pushed = PushedDevice {
            device: reporter.device.clone(),
            target: reporter.target.clone(),
        };
        let (outcome, reason) = match result {
            PushResult::Sent => (PushOutcome::Sent, ""),
            PushResult::Failed { reason, .. } => (PushOutcome::Failed, reason.as_str()),
        };
        self.tell_inviter(invitation, &reporter.user, Some(&pushed), outcome, reason);
    }

    /// Whether `user` is still rung by invitation `id` (not final, not
    /// ended, not forgotten).
    pub(super) fn rings_for(&self, id: &InvitationId, user: &UserId) -> bool {
        let shard = self.invitations.lock(id.shard_key());
        shard.invitations.get(id).is_some_and(|invitation| {
            invitation.ended_at.is_none()
                && invitation
                    .invitees
                    .iter()
                    .any(|i| &i.user == user && !i.is_final())
        })
    }
}
