//! Devices' push targets, and when the hub hands its [`PushOutlet`] a job:
//! rings at send for invitees with no device online, stop pushes when such an
//! invitee's state becomes final, and what comes back (the inviter's
//! `invitation_push_result`, targets a provider says are gone).
//!
//! Lock order: invitation shard, then user shard, then a user's push-target
//! shard, then a token's holder shard (a leaf). A store's `submit` is called
//! under a user's push-target shard (it never blocks), so the store gets one
//! user's target changes in the order they were made.

use std::collections::HashMap;

use super::invitation::Invitation;
use super::push::{PushJob, PushMessage, PushReporter, PushResult, PushedDevice, Ring};
use super::session::Session;
use super::shards::{hash_str, Shards};
use super::store::{note_frame_ticket, reset_frame_ticket, Change, PushTargetRecord};
use super::{Hub, SUB_TAG};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{
    DeviceId, InvitationId, InviteeState, Push, PushOutcome, PushProvider, PushTarget, Text, UserId,
};

/// Every device's push target, by user (the one set longest ago first), and
/// who holds each token: a provider's token is one device of one user (a
/// phone that changed accounts, or its app's device id, rings once, for the
/// user who set it last).
pub(crate) struct PushTargets {
    shards: Shards<HashMap<UserId, Vec<PushedDevice>>>,
    /// Locked after a user's shard, never before: a leaf.
    holders: Shards<HashMap<TokenKey, (UserId, DeviceId)>>,
}

/// A target's provider and token.
type TokenKey = (PushProvider, Text);

fn token_key(target: &PushTarget) -> TokenKey {
    (target.provider, target.token.clone())
}

impl PushTargets {
    pub fn new() -> PushTargets {
        PushTargets {
            shards: Shards::new(),
            holders: Shards::new(),
        }
    }

    /// The targets of `user`'s devices.
    pub fn of(&self, user: &UserId) -> Vec<PushedDevice> {
        let map = self.shards.lock(hash_str(user.as_str()));
        map.get(user).cloned().unwrap_or_default()
    }

    fn holders_of(
        &self,
        key: &TokenKey,
    ) -> parking_lot::MutexGuard<'_, HashMap<TokenKey, (UserId, DeviceId)>> {
        self.holders.lock(hash_str(&key.1) ^ key.0 as u64)
    }

    /// Forgets that `user`'s `device` holds `key`, if it does.
    fn unhold(&self, key: &TokenKey, user: &UserId, device: &DeviceId) {
        let mut holders = self.holders_of(key);
        if holders
            .get(key)
            .is_some_and(|(u, d)| u == user && d == device)
        {
            holders.remove(key);
        }
    }

    /// Sets `device`'s target, as `user`'s newest; past `cap` targets the
    /// oldest is forgotten. `alive` is checked first, and `store` told of
    /// each change (a target set, or forgotten: `None`), all under the
    /// user's lock, so the store sees the changes of one user in the order
    /// they were made. None when `alive` fails; else the device that held
    /// the same token before, if another one did: it must give it up (see
    /// [`PushTargets::give_up`]).
    fn set(
        &self,
        user: &UserId,
        device: &DeviceId,
        target: PushTarget,
        cap: usize,
        alive: impl FnOnce() -> bool,
        mut store: impl FnMut(&UserId, &DeviceId, Option<&PushTarget>),
    ) -> Option<Option<(UserId, DeviceId)>> {
        let key = token_key(&target);
        let mut released = Vec::new();
        let mut map = self.shards.lock(hash_str(user.as_str()));
        if !alive() {
            return None;
        }
        let devices = map.entry(user.clone()).or_default();
        let changed = match devices.iter().position(|d| &d.device == device) {
            Some(at) => {
                let old = devices.remove(at);
                if old.target != target {
                    released.push((token_key(&old.target), old.device));
                    true
                } else {
                    false
                }
            }
            None => true,
        };
        if changed {
            store(user, device, Some(&target));
        }
        devices.push(PushedDevice {
            device: device.clone(),
            target,
        });
        while devices.len() > cap.max(1) {
            let oldest = devices.remove(0);
            store(user, &oldest.device, None);
            released.push((token_key(&oldest.target), oldest.device));
        }
        for (old, device) in &released {
            if *old != key {
                self.unhold(old, user, device);
            }
        }
        let mut holders = self.holders_of(&key);
        let before = holders.insert(key, (user.clone(), device.clone()));
        Some(before.filter(|(u, d)| u != user || d != device))
    }

    /// `user`'s `device` gives up its target if it is still `key`'s and
    /// another device holds `key` now; says whether it did.
    fn give_up(
        &self,
        user: &UserId,
        device: &DeviceId,
        key: &TokenKey,
        store: impl FnOnce(&UserId, &DeviceId, Option<&PushTarget>),
    ) -> bool {
        let mut map = self.shards.lock(hash_str(user.as_str()));
        let Some(devices) = map.get_mut(user) else {
            return false;
        };
        let Some(at) = devices
            .iter()
            .position(|d| &d.device == device && token_key(&d.target) == *key)
        else {
            return false;
        };
        let held_here = self
            .holders_of(key)
            .get(key)
            .is_some_and(|(u, d)| u == user && d == device);
        if held_here {
            return false;
        }
        devices.remove(at);
        if devices.is_empty() {
            map.remove(user);
        }
        store(user, device, None);
        true
    }

    /// Forgets a device's target if `only_if` holds for it, telling `store`
    /// under the user's lock; says whether it did.
    fn forget(
        &self,
        user: &UserId,
        device: &DeviceId,
        only_if: impl FnOnce(&PushTarget) -> bool,
        store: impl FnOnce(&UserId, &DeviceId, Option<&PushTarget>),
    ) -> bool {
        let mut map = self.shards.lock(hash_str(user.as_str()));
        let Some(devices) = map.get_mut(user) else {
            return false;
        };
        let Some(at) = devices.iter().position(|d| &d.device == device) else {
            return false;
        };
        if !only_if(&devices[at].target) {
            return false;
        }
        let gone = devices.remove(at);
        if devices.is_empty() {
            map.remove(user);
        }
        store(user, device, None);
        self.unhold(&token_key(&gone.target), user, device);
        true
    }
}

/// An `invitation_push_result`.
fn push_result(
    invitation_id: &InvitationId,
    invitee: &UserId,
    pushed: Option<&PushedDevice>,
    outcome: PushOutcome,
    reason: &str,
) -> Push {
    Push::InvitationPushResult {
        invitation_id: invitation_id.clone(),
        invitee: invitee.clone(),
        device: pushed.map(|p| p.device.clone()),
        provider: pushed.map(|p| p.target.provider),
        outcome,
        reason: Text::from(reason),
    }
}

/// Stop pushes taken from an invitation at a transition, queued once its new
/// version is stored.
pub(super) struct Stops(Vec<(UserId, InviteeState, Vec<PushedDevice>)>);

impl Hub {
    /// Rings this session's device by push while it is not connected. The
    /// device that had the same token before (another user's, or another
    /// device id's) loses it; past `max_devices` targets, the user's oldest
    /// is forgotten.
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
        let key = token_key(&target);
        // Alive under the targets' lock: a logout that ended the session
        // meanwhile forgets after this, or this sees it ended.
        let set = self.push_targets.set(
            &session.user,
            &session.device,
            target,
            self.config.limits.max_devices,
            || session.is_alive(),
            |user, device, target| self.persist_push_target(user, device, target.cloned()),
        );
        let Some(displaced) = set else {
            return Err(Error::new(
                ErrorCode::NotLoggedIn,
                "the session has ended (logged out or kicked out)",
            ));
        };
        if let Some((user, device)) = displaced {
            let gave_up = self.push_targets.give_up(&user, &device, &key, |u, d, t| {
                self.persist_push_target(u, d, t.cloned())
            });
            if gave_up {
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "push target of '{user}' device '{device}' forgotten: '{}' device '{}' set the same {provider} token",
                    session.user,
                    session.device
                );
            }
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
    /// A session that had ended already (kicked out by a newer login of the
    /// same device, say) leaves the target alone: it is the newer one's.
    pub fn logout_for_good(&self, session: &Session) {
        if self.end_session(session, "logout", || true) {
            self.forget_push_target(&session.user, &session.device);
        }
    }

    /// A session whose connection is gone for good (its grace period passed
    /// without a resume): it ends as with [`Hub::logout`]. If it was its
    /// user's last, the invitations still ringing for the user ring by push
    /// on the devices with a target not pushed yet, as at send (they get
    /// stop pushes in turn): until now the user counted as online.
    pub fn abandon(&self, session: &Session) {
        if !self.end_session(session, "abandoned", || true) {
            return;
        }
        if self.push_outlet.is_none() || self.users.session_count(&session.user) > 0 {
            return;
        }
        for invitation_id in self.users.active(&session.user) {
            self.push_to_departed(&session.user, &invitation_id);
        }
    }

    /// `user` has no device online any more: rings invitation `id` by push
    /// on its devices not pushed yet, if it still rings for `user`.
    fn push_to_departed(&self, user: &UserId, id: &InvitationId) {
        let mut shard = self.invitations.lock(id.shard_key());
        let Some(invitation) = shard.invitations.get_mut(id) else {
            return;
        };
        // Under the invitation's lock, as at send: still nobody online.
        if invitation.ended_at.is_some()
            || invitation.online_only
            || self.users.session_count(user) > 0
        {
            return;
        }
        let Some(invitee) = invitation.invitee_mut(user) else {
            return;
        };
        if invitee.is_final() {
            return;
        }
        let fresh: Vec<PushedDevice> = self
            .push_targets
            .of(user)
            .into_iter()
            .filter(|t| !invitee.pushed.iter().any(|p| p.device == t.device))
            .collect();
        let (fresh, unsupported) = self.pushable(fresh);
        if fresh.is_empty() && unsupported.is_empty() {
            return;
        }
        invitee.pushed.extend(fresh.iter().cloned());
        crate::log!(
            Level::Info,
            SUB_TAG,
            "invitation {id}: '{user}' has no device online any more, pushed to {} device(s)",
            fresh.len()
        );
        if !fresh.is_empty() {
            self.persist(invitation);
        }
        let ring = Self::ring_of(invitation);
        for pushed in &fresh {
            self.queue_push(
                invitation,
                user,
                pushed,
                PushMessage::Ring(ring.clone()),
                true,
            );
        }
        for pushed in &unsupported {
            self.tell_no_longer_supported(invitation, user, pushed);
        }
    }

    /// A change of a device's push target as a deployment of several
    /// nodes stored it (`None`: forgotten), by whichever node made it. It is
    /// applied as stored: not stored again, and without the rules of
    /// [`Hub::set_push_target`] (one device per token, `max_devices`): the
    /// node that made it applied them, and the changes they made arrive too.
    /// Two nodes that set one token at the same instant may both keep it.
    pub fn mirror_push_target(&self, user: &UserId, device: &DeviceId, target: Option<PushTarget>) {
        let unchanged = |_: &UserId, _: &DeviceId, _: Option<&PushTarget>| {};
        match target {
            Some(target) => {
                let _ = self
                    .push_targets
                    .set(user, device, target, usize::MAX, || true, unchanged);
            }
            None => {
                self.push_targets.forget(user, device, |_| true, unchanged);
            }
        }
    }

    /// The targets `user`'s devices have set, for tests and diagnostics.
    pub fn push_targets(&self, user: &UserId) -> Vec<(DeviceId, PushTarget)> {
        self.push_targets
            .of(user)
            .into_iter()
            .map(|d| (d.device, d.target))
            .collect()
    }

    pub(super) fn forget_push_target(&self, user: &UserId, device: &DeviceId) {
        self.push_targets.forget(
            user,
            device,
            |_| true,
            |u, d, t| self.persist_push_target(u, d, t.cloned()),
        );
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

    /// At start: the targets the store kept, as if set in the store's
    /// order (one device per token, at most `max_devices` per user: what
    /// that forgets is stored).
    pub(super) fn restore_push_targets(&self, kept: Vec<PushTargetRecord>) {
        let forgotten = |user: &UserId, device: &DeviceId, target: Option<&PushTarget>| {
            if target.is_none() {
                self.persist_push_target(user, device, None);
            }
        };
        for record in kept {
            let key = token_key(&record.target);
            let set = self.push_targets.set(
                &record.user,
                &record.device,
                record.target,
                self.config.limits.max_devices,
                || true,
                forgotten,
            );
            if let Some(Some((user, device))) = set {
                self.push_targets.give_up(&user, &device, &key, forgotten);
            }
        }
    }

    /// At send, for an invitee with no device online: the devices to ring
    /// by push (recorded on the invitee before the invitation is stored),
    /// and those whose provider this hub no longer pushes through (told to
    /// the inviter, not recorded).
    pub(super) fn push_targets_for_offline(
        &self,
        user: &UserId,
    ) -> (Vec<PushedDevice>, Vec<PushedDevice>) {
        if self.push_outlet.is_none() {
            return (Vec::new(), Vec::new());
        }
        self.pushable(self.push_targets.of(user))
    }

    /// `targets` split into those the outlet pushes through and the others.
    fn pushable(&self, targets: Vec<PushedDevice>) -> (Vec<PushedDevice>, Vec<PushedDevice>) {
        match &self.push_outlet {
            Some(outlet) => targets
                .into_iter()
                .partition(|t| outlet.supports(t.target.provider)),
            None => (Vec::new(), targets),
        }
    }

    /// Configured when the target was set, not since a restart.
    fn tell_no_longer_supported(
        &self,
        invitation: &Invitation,
        user: &UserId,
        pushed: &PushedDevice,
    ) {
        let reason = format!(
            "this server no longer pushes through {}",
            pushed.target.provider
        );
        self.tell_inviter(invitation, user, Some(pushed), PushOutcome::Failed, &reason);
    }

    fn ring_of(invitation: &Invitation) -> std::sync::Arc<Ring> {
        std::sync::Arc::new(Ring {
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            invitees: invitation.statuses(),
            extended_data: invitation.extended_data.clone(),
            notification: invitation.notification.clone(),
            deadline_ms: invitation.deadline_ms,
        })
    }

    /// After the send is stored: a ring job per pushed device, and
    /// `no_push_target` results for the inviter about offline invitees that
    /// have no device to push (`online_only` sends push nobody). `unpushable`:
    /// the offline invitees' devices whose provider this hub no longer pushes
    /// through (each a failed result).
    pub(super) fn push_rings(
        &self,
        invitation: &Invitation,
        offline: &[UserId],
        unpushable: &[(UserId, PushedDevice)],
    ) {
        // A hub that pushes through nothing says nothing about pushes.
        if invitation.online_only || self.push_outlet.is_none() {
            return;
        }
        let mut ring = None;
        for user in offline {
            let Some(invitee) = invitation.invitees.iter().find(|i| &i.user == user) else {
                continue;
            };
            let mut told = false;
            for (_, pushed) in unpushable.iter().filter(|(u, _)| u == user) {
                self.tell_no_longer_supported(invitation, user, pushed);
                told = true;
            }
            if invitee.pushed.is_empty() {
                if !told {
                    self.tell_inviter(invitation, user, None, PushOutcome::NoPushTarget, "");
                }
                continue;
            }
            let ring = ring.get_or_insert_with(|| Self::ring_of(invitation));
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
        if !outlet.supports(pushed.target.provider) {
            // Rings are sorted out before (see `pushable`); a stop to a
            // provider gone since a restart cannot go.
            if ring {
                self.tell_no_longer_supported(invitation, user, pushed);
            }
            return;
        }
        let reporter = PushReporter {
            hub: self.me.clone(),
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            user: user.clone(),
            device: pushed.device.clone(),
            target: pushed.target.clone(),
            ring,
        };
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
        let push = push_result(&invitation.id, invitee, pushed, outcome, reason);
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
            let forgotten = self.push_targets.forget(
                &reporter.user,
                &reporter.device,
                |current| current == target,
                |u, d, t| self.persist_push_target(u, d, t.cloned()),
            );
            if forgotten {
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "push target of '{}' device '{}' forgotten: {} says {reason}",
                    reporter.user,
                    reporter.device,
                    target.provider
                );
            }
        }
        if !reporter.ring {
            return;
        }
        let pushed = PushedDevice {
            device: reporter.device.clone(),
            target: reporter.target.clone(),
        };
        let (outcome, reason) = match result {
            PushResult::Sent => (PushOutcome::Sent, ""),
            PushResult::Failed { reason, .. } => (PushOutcome::Failed, reason.as_str()),
        };
        let shard = self.invitations.lock(reporter.invitation_id.shard_key());
        match shard.invitations.get(&reporter.invitation_id) {
            Some(invitation) => {
                note_frame_ticket(invitation.ticket);
                self.tell_inviter(invitation, &reporter.user, Some(&pushed), outcome, reason);
            }
            // Forgotten (retention is over) before the provider answered:
            // the inviter still learns it.
            None => {
                drop(shard);
                let push = push_result(
                    &reporter.invitation_id,
                    &reporter.user,
                    Some(&pushed),
                    outcome,
                    reason,
                );
                self.users.deliver(&reporter.inviter, &push);
            }
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::hub::Outlets;

    use parking_lot::Mutex;

    use crate::error::ErrorCode;
    use crate::hub::test_support::{user, Inbox, Recording};
    use crate::hub::{
        Change, Hub, HubConfig, ManualClock, PushJob, PushMessage, PushOutlet, PushResult, Session,
        Store,
    };
    use crate::protocol::{
        Answer, CancelInvitation, DeviceId, InvitationId, InviteeState, Push, PushOutcome,
        PushProvider, PushTarget, SendInvitation,
    };

    const START: u64 = 1_700_000_000;

    /// An outlet that keeps its jobs for the test to look at and report.
    struct Jobs {
        providers: Mutex<Vec<PushProvider>>,
        jobs: Mutex<Vec<PushJob>>,
    }

    impl Jobs {
        fn new(providers: &[PushProvider]) -> Arc<Jobs> {
            Arc::new(Jobs {
                providers: Mutex::new(providers.to_vec()),
                jobs: Mutex::new(Vec::new()),
            })
        }

        fn take(&self) -> Vec<PushJob> {
            std::mem::take(&mut *self.jobs.lock())
        }
    }

    impl PushOutlet for Jobs {
        fn supports(&self, provider: PushProvider) -> bool {
            self.providers.lock().contains(&provider)
        }

        fn push(&self, job: PushJob) {
            self.jobs.lock().push(job);
        }
    }

    struct World {
        hub: Arc<Hub>,
        store: Arc<Recording>,
        outlet: Arc<Jobs>,
        clock: ManualClock,
    }

    fn world(store: Arc<Recording>, clock: ManualClock) -> World {
        let outlet = Jobs::new(&[PushProvider::ApnsVoip, PushProvider::Fcm]);
        let (hub, _) = Hub::with_store_and_manual_clock(
            HubConfig::default(),
            clock.clone(),
            store.clone(),
            Duration::from_secs(30),
            Outlets::push(outlet.clone()),
        )
        .unwrap();
        World {
            hub,
            store,
            outlet,
            clock,
        }
    }

    fn fresh() -> World {
        world(Arc::new(Recording::default()), ManualClock::new(START))
    }

    fn device(name: &str) -> DeviceId {
        DeviceId::parse(name, "d").unwrap()
    }

    fn voip(token: &str) -> PushTarget {
        PushTarget {
            alert_token: Some("cd".repeat(32).into()),
            ..PushTarget::new(PushProvider::ApnsVoip, token.repeat(32))
        }
    }

    impl World {
        fn login(&self, who: &str, on: &str) -> (Arc<Session>, Arc<Inbox>) {
            let inbox = Arc::new(Inbox::default());
            let session = self
                .hub
                .login(user(who), device(on), "", inbox.clone())
                .unwrap();
            self.hub.sync(&session);
            (session, inbox)
        }

        /// A device that set its target and went away (connection dropped:
        /// the target stays).
        fn away_with_target(&self, who: &str, on: &str, target: PushTarget) {
            let (session, _) = self.login(who, on);
            self.hub.set_push_target(&session, target).unwrap();
            self.hub.logout(&session);
        }
    }

    fn push_results(inbox: &Inbox) -> Vec<(String, Option<String>, PushOutcome, String)> {
        inbox
            .0
            .lock()
            .iter()
            .filter_map(|push| match push {
                Push::InvitationPushResult {
                    invitee,
                    device,
                    outcome,
                    reason,
                    ..
                } => Some((
                    invitee.to_string(),
                    device.as_ref().map(ToString::to_string),
                    *outcome,
                    reason.to_string(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn targets_need_a_provider_the_hub_pushes_through() {
        let (hub, _) = Hub::with_store_and_manual_clock(
            HubConfig::default(),
            ManualClock::new(START),
            Arc::new(Recording::default()),
            Duration::from_secs(30),
            Outlets::default(),
        )
        .unwrap();
        let session = hub
            .login(user("bob"), device("phone"), "", Arc::new(Inbox::default()))
            .unwrap();
        let error = hub.set_push_target(&session, voip("ab")).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidArgument);
        assert!(error.message.starts_with("push_target.provider"), "{error}");

        let w = fresh();
        let (session, _) = w.login("bob", "phone");
        let webhook = PushTarget::new(PushProvider::Webhook, "device-1");
        let error = w.hub.set_push_target(&session, webhook).unwrap_err();
        assert!(error.message.contains("webhook"), "{error}");
        let bad = PushTarget::new(PushProvider::ApnsVoip, "not hex");
        assert_eq!(
            w.hub.set_push_target(&session, bad).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert!(w.hub.push_targets(&user("bob")).is_empty());
    }

    #[test]
    fn a_target_outlives_its_connection_but_not_an_explicit_logout() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        assert_eq!(
            w.hub.push_targets(&user("bob")),
            vec![(device("phone"), voip("ab"))]
        );
        // Replaced, then cleared; each change stored.
        let (session, _) = w.login("bob", "phone");
        w.hub.set_push_target(&session, voip("ef")).unwrap();
        assert_eq!(w.hub.push_targets(&user("bob"))[0].1, voip("ef"));
        w.hub.clear_push_target(&session).unwrap();
        assert!(w.hub.push_targets(&user("bob")).is_empty());
        w.hub.set_push_target(&session, voip("ab")).unwrap();
        w.hub.logout_for_good(&session);
        assert!(w.hub.push_targets(&user("bob")).is_empty());
        let stored: Vec<bool> = w
            .store
            .log
            .lock()
            .iter()
            .filter_map(|change| match change {
                Change::PushTarget { target, .. } => Some(target.is_some()),
                _ => None,
            })
            .collect();
        assert_eq!(stored, [true, true, false, true, false]);
        // Setting the same target again changes nothing to store.
        w.away_with_target("carol", "tablet", voip("ab"));
        let before = w.store.log.lock().len();
        let (session, _) = w.login("carol", "tablet");
        w.hub.set_push_target(&session, voip("ab")).unwrap();
        assert_eq!(w.store.log.lock().len(), before);
    }

    #[test]
    fn offline_invitees_are_rung_by_push_and_the_inviter_learns_each_result() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        w.away_with_target("bob", "tablet", PushTarget::new(PushProvider::Fcm, "fcm-1"));
        let (_dave, _) = w.login("dave", "laptop");
        let (alice, alice_inbox) = w.login("alice", "desk");
        let sent = w
            .hub
            .send(
                &alice,
                SendInvitation::new(vec![user("bob"), user("carol"), user("dave")], 30),
            )
            .unwrap();

        let jobs = w.outlet.take();
        assert_eq!(jobs.len(), 2, "bob's two devices, nobody else");
        let ticket = w.store.durable();
        for job in &jobs {
            assert_eq!(job.user, user("bob"));
            assert_eq!(job.ticket, ticket, "a push waits for the send's record");
            let PushMessage::Ring(ring) = &job.message else {
                panic!("{:?}", job.message);
            };
            assert_eq!(ring.invitation_id, sent.invitation_id);
            assert_eq!(ring.inviter, user("alice"));
            assert_eq!(ring.invitees.len(), 3);
            assert_eq!(ring.seconds_left(START * 1000), 30);
            assert!(job.reporter.still_ringing());
        }
        // The record says who was pushed (stop pushes after a restart).
        let record = w.store.kept.lock()[&sent.invitation_id].clone();
        assert_eq!(record.invitees[0].pushed.len(), 2);
        assert!(record.invitees[1].pushed.is_empty());

        assert_eq!(
            push_results(&alice_inbox),
            [(
                "carol".into(),
                None,
                PushOutcome::NoPushTarget,
                String::new()
            )]
        );
        for job in jobs {
            let result = if job.target.provider == PushProvider::Fcm {
                PushResult::Failed {
                    reason: "UNREGISTERED".into(),
                    token_invalid: true,
                }
            } else {
                PushResult::Sent
            };
            job.reporter.report(result);
        }
        let results = push_results(&alice_inbox);
        assert_eq!(results.len(), 3);
        assert!(results.contains(&(
            "bob".into(),
            Some("phone".into()),
            PushOutcome::Sent,
            String::new()
        )));
        assert!(results.contains(&(
            "bob".into(),
            Some("tablet".into()),
            PushOutcome::Failed,
            "UNREGISTERED".into()
        )));
        // The provider said the tablet's token is gone: so is its target.
        assert_eq!(
            w.hub.push_targets(&user("bob")),
            vec![(device("phone"), voip("ab"))]
        );
        assert!(w.store.targets.lock().len() == 1);
    }

    #[test]
    fn online_only_sends_push_nobody() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        let (alice, alice_inbox) = w.login("alice", "desk");
        let mut request = SendInvitation::new(vec![user("bob"), user("carol")], 30);
        request.online_only = true;
        w.hub.send(&alice, request).unwrap();
        assert!(w.outlet.take().is_empty());
        assert!(push_results(&alice_inbox).is_empty());
    }

    #[test]
    fn pushed_devices_get_a_stop_push_when_their_invitee_is_done() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        w.away_with_target("bob", "tablet", PushTarget::new(PushProvider::Fcm, "fcm-1"));
        w.away_with_target("carol", "phone", voip("ef"));
        w.away_with_target("erin", "phone", voip("12"));
        let (alice, _) = w.login("alice", "desk");
        let request = SendInvitation::new(vec![user("bob"), user("carol"), user("erin")], 30);
        let id = w.hub.send(&alice, request).unwrap().invitation_id;
        assert_eq!(w.outlet.take().len(), 4);

        // Bob's phone comes online and accepts: only the tablet is told.
        let (bob, _) = w.login("bob", "phone");
        let answer = Answer {
            invitation_id: id.clone(),
            extended_data: "".into(),
        };
        w.hub.accept(&bob, answer).unwrap();
        assert_eq!(
            stops(&w.outlet.take()),
            [(
                "bob".into(),
                "tablet".into(),
                id.clone(),
                InviteeState::Accepted
            )]
        );

        // Carol is cancelled: her phone is told, with the new state.
        let cancel = CancelInvitation {
            invitation_id: id.clone(),
            invitees: Some(vec![user("carol")]),
            extended_data: "".into(),
        };
        w.hub.cancel(&alice, cancel).unwrap();
        assert_eq!(
            stops(&w.outlet.take()),
            [(
                "carol".into(),
                "phone".into(),
                id.clone(),
                InviteeState::Cancelled
            )]
        );

        // Erin times out.
        w.hub.advance(&w.clock, Duration::from_secs(31));
        assert_eq!(
            stops(&w.outlet.take()),
            [("erin".into(), "phone".into(), id, InviteeState::Timeout)]
        );
    }

    fn stops(jobs: &[PushJob]) -> Vec<(String, String, InvitationId, InviteeState)> {
        jobs.iter()
            .map(|job| match &job.message {
                PushMessage::Stop {
                    invitation_id,
                    state,
                    ..
                } => {
                    assert!(!job.reporter.still_ringing());
                    (
                        job.user.to_string(),
                        job.device.to_string(),
                        invitation_id.clone(),
                        *state,
                    )
                }
                other => panic!("not a stop: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn after_a_restart_targets_are_kept_and_stop_pushes_still_go() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        let (alice, _) = w.login("alice", "desk");
        let id = w
            .hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap()
            .invitation_id;
        assert_eq!(w.outlet.take().len(), 1);

        // Down for longer than the deadline: it times out at start, and the
        // pushed phone is told to stop.
        w.clock.advance(Duration::from_secs(60));
        let again = world(w.store.restarted(), w.clock.clone());
        assert_eq!(
            again.hub.push_targets(&user("bob")),
            vec![(device("phone"), voip("ab"))]
        );
        assert_eq!(
            stops(&again.outlet.take()),
            [("bob".into(), "phone".into(), id, InviteeState::Timeout)]
        );
    }

    fn stored_targets(store: &Recording) -> Vec<(String, String, Option<PushTarget>)> {
        store
            .log
            .lock()
            .iter()
            .filter_map(|change| match change {
                Change::PushTarget {
                    user,
                    device,
                    target,
                } => Some((user.to_string(), device.to_string(), target.clone())),
                _ => None,
            })
            .collect()
    }

    fn rings(jobs: &[PushJob]) -> Vec<(String, String)> {
        jobs.iter()
            .filter(|job| matches!(job.message, PushMessage::Ring(_)))
            .map(|job| (job.user.to_string(), job.device.to_string()))
            .collect()
    }

    #[test]
    fn an_explicit_logout_of_a_session_kicked_out_before_keeps_the_target() {
        let w = fresh();
        let (old, _) = w.login("bob", "phone");
        w.hub.set_push_target(&old, voip("ab")).unwrap();
        // The same device logs in again: the old session is kicked out, and
        // its late explicit logout ends nothing: the target is the new
        // login's.
        let (new, _) = w.login("bob", "phone");
        w.hub.logout_for_good(&old);
        assert_eq!(
            w.hub.push_targets(&user("bob")),
            vec![(device("phone"), voip("ab"))]
        );
        w.hub.logout_for_good(&new);
        assert!(w.hub.push_targets(&user("bob")).is_empty());
    }

    #[test]
    fn a_token_is_one_device_of_one_user() {
        let w = fresh();
        // A phone used by alice, then logged into bob's account without an
        // explicit logout: bob's target takes the token from alice.
        w.away_with_target("alice", "phone", voip("ab"));
        w.away_with_target("bob", "phone", voip("ab"));
        assert!(w.hub.push_targets(&user("alice")).is_empty());
        assert_eq!(
            w.hub.push_targets(&user("bob")),
            vec![(device("phone"), voip("ab"))]
        );
        // The same token under a second device id of the same user: one.
        w.away_with_target("bob", "tablet", voip("ab"));
        assert_eq!(
            w.hub.push_targets(&user("bob")),
            vec![(device("tablet"), voip("ab"))]
        );
        // Only provider and token count: another token is another device.
        w.away_with_target("bob", "phone", voip("ef"));
        assert_eq!(w.hub.push_targets(&user("bob")).len(), 2);
        let fcm = PushTarget::new(PushProvider::Fcm, "ab".repeat(32));
        w.away_with_target("carol", "pixel", fcm);
        assert_eq!(w.hub.push_targets(&user("bob")).len(), 2);
        // Each removal is stored.
        let stored = stored_targets(&w.store);
        assert!(stored.contains(&("alice".into(), "phone".into(), None)));
        assert!(stored.contains(&("bob".into(), "phone".into(), None)));
        assert_eq!(w.store.targets.lock().len(), 3);
        // One ring per device.
        let (alice, _) = w.login("alice", "desk");
        w.hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap();
        let mut rung = rings(&w.outlet.take());
        rung.sort();
        assert_eq!(
            rung,
            [
                ("bob".to_owned(), "phone".to_owned()),
                ("bob".to_owned(), "tablet".to_owned())
            ]
        );
    }

    #[test]
    fn a_user_keeps_at_most_max_devices_targets_the_oldest_goes() {
        let w = fresh();
        let max = HubConfig::default().limits.max_devices;
        for i in 0..max {
            w.away_with_target("bob", &format!("d{i}"), voip(&format!("{:02x}", i + 16)));
        }
        assert_eq!(w.hub.push_targets(&user("bob")).len(), max);
        // Setting the first one again makes it the newest.
        w.away_with_target("bob", "d0", voip("10"));
        w.away_with_target("bob", "extra", voip("ff"));
        let devices: Vec<String> = w
            .hub
            .push_targets(&user("bob"))
            .into_iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert_eq!(devices.len(), max);
        assert!(!devices.contains(&"d1".to_owned()), "{devices:?}");
        assert!(devices.contains(&"d0".to_owned()) && devices.contains(&"extra".to_owned()));
        assert!(stored_targets(&w.store).contains(&("bob".into(), "d1".into(), None)));
    }

    #[test]
    fn a_restart_keeps_one_device_per_token() {
        let store = Arc::new(Recording::default());
        let record = |who: &str, on: &str, target: PushTarget| crate::hub::PushTargetRecord {
            user: user(who),
            device: device(on),
            target,
        };
        *store.pending.lock() = Some(crate::hub::Recovered {
            id_key: [0; 32],
            invitations: Vec::new(),
            push_targets: vec![
                record("alice", "phone", voip("ab")),
                record("bob", "phone", voip("ab")),
            ],
        });
        let w = world(store, ManualClock::new(START));
        let alice = w.hub.push_targets(&user("alice"));
        let bob = w.hub.push_targets(&user("bob"));
        assert_eq!(alice.len() + bob.len(), 1, "{alice:?} {bob:?}");
        let target_changes = w
            .store
            .log
            .lock()
            .iter()
            .filter(|c| matches!(c, crate::hub::Change::PushTarget { .. }))
            .count();
        assert_eq!(target_changes, 1, "the other one forgotten, and stored");
    }

    #[test]
    fn a_device_whose_session_is_abandoned_is_rung_by_push() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        // Bob's tablet is connected (or within its grace period): at send,
        // bob is online and nobody is pushed.
        let (tablet, _) = w.login("bob", "tablet");
        let (alice, alice_inbox) = w.login("alice", "desk");
        let id = w
            .hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap()
            .invitation_id;
        assert!(w.outlet.take().is_empty());
        // The tablet's connection is gone for good: bob has no device left,
        // his phone is rung by push, and the record says so.
        w.hub.abandon(&tablet);
        let jobs = w.outlet.take();
        assert_eq!(rings(&jobs), [("bob".to_owned(), "phone".to_owned())]);
        let record = w.store.kept.lock()[&id].clone();
        assert_eq!(record.invitees[0].pushed.len(), 1);
        for job in jobs {
            job.reporter.report(PushResult::Sent);
        }
        assert_eq!(
            push_results(&alice_inbox),
            [(
                "bob".into(),
                Some("phone".into()),
                PushOutcome::Sent,
                String::new()
            )]
        );
        // Abandoned again (reconnected, gone again): pushed once only.
        let (tablet, _) = w.login("bob", "tablet");
        w.hub.abandon(&tablet);
        assert!(w.outlet.take().is_empty());
        // The end of the call stops it.
        let cancel = CancelInvitation {
            invitation_id: id.clone(),
            invitees: None,
            extended_data: "".into(),
        };
        w.hub.cancel(&alice, cancel).unwrap();
        assert_eq!(
            stops(&w.outlet.take()),
            [("bob".into(), "phone".into(), id, InviteeState::Cancelled)]
        );
    }

    #[test]
    fn an_explicit_logout_or_another_device_online_pushes_nothing() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        let (tablet, _) = w.login("bob", "tablet");
        let (laptop, _) = w.login("bob", "laptop");
        let (alice, _) = w.login("alice", "desk");
        w.hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap();
        w.hub.abandon(&tablet);
        assert!(w.outlet.take().is_empty(), "the laptop is still online");
        w.hub.logout_for_good(&laptop);
        assert!(w.outlet.take().is_empty(), "an explicit logout");
    }

    #[test]
    fn a_device_the_server_kicks_is_rung_no_more() {
        let w = fresh();
        let (phone, _) = w.login("bob", "phone");
        w.hub.set_push_target(&phone, voip("ab")).unwrap();
        let (tablet, _) = w.login("bob", "tablet");
        assert_eq!(w.hub.push_targets(&user("bob")).len(), 1);
        assert_eq!(w.hub.kick(&user("bob"), &device("phone")).ok(), Some(true));
        assert!(w.hub.push_targets(&user("bob")).is_empty(), "forgotten");
        assert!(stored_targets(&w.store).contains(&("bob".into(), "phone".into(), None)));
        let (alice, _) = w.login("alice", "desk");
        w.hub.logout(&tablet);
        w.hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap();
        assert!(w.outlet.take().is_empty(), "nothing left to ring");
    }

    #[test]
    fn a_result_reported_after_the_invitation_is_forgotten_still_reaches_the_inviter() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        let (alice, alice_inbox) = w.login("alice", "desk");
        let id = w
            .hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap()
            .invitation_id;
        let jobs = w.outlet.take();
        // Over and forgotten (retention) before the provider answered.
        w.hub.advance(&w.clock, Duration::from_secs(31));
        w.hub.advance(&w.clock, Duration::from_secs(600));
        assert!(w.hub.invitee_states(&id).is_none(), "forgotten");
        for job in jobs {
            job.reporter.report(PushResult::Failed {
                reason: "timed out".into(),
                token_invalid: false,
            });
        }
        assert_eq!(
            push_results(&alice_inbox),
            [(
                "bob".into(),
                Some("phone".into()),
                PushOutcome::Failed,
                "timed out".into()
            )]
        );
    }

    #[test]
    fn a_target_whose_provider_is_no_longer_pushed_through_is_not_kept_on_the_invitation() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        w.away_with_target("bob", "tablet", PushTarget::new(PushProvider::Fcm, "fcm-1"));
        // As after a restart without [push.fcm].
        w.outlet
            .providers
            .lock()
            .retain(|p| *p != PushProvider::Fcm);
        let (alice, alice_inbox) = w.login("alice", "desk");
        let id = w
            .hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap()
            .invitation_id;
        assert_eq!(
            rings(&w.outlet.take()),
            [("bob".to_owned(), "phone".to_owned())]
        );
        assert_eq!(
            push_results(&alice_inbox),
            [(
                "bob".into(),
                Some("tablet".into()),
                PushOutcome::Failed,
                "this server no longer pushes through fcm".into()
            )]
        );
        let record = w.store.kept.lock()[&id].clone();
        assert_eq!(record.invitees[0].pushed.len(), 1, "the phone only");
        let cancel = CancelInvitation {
            invitation_id: id.clone(),
            invitees: None,
            extended_data: "".into(),
        };
        w.hub.cancel(&alice, cancel).unwrap();
        assert_eq!(
            stops(&w.outlet.take()),
            [("bob".into(), "phone".into(), id, InviteeState::Cancelled)]
        );
    }

    #[test]
    fn an_invitation_ended_after_its_timer_panicked_still_stops_its_pushed_devices() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        let (alice, _) = w.login("alice", "desk");
        let id = w
            .hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap()
            .invitation_id;
        assert_eq!(w.outlet.take().len(), 1);
        // What the timer loop does when `time_out` panicked before it took
        // the stops.
        {
            let now = w.hub.clock.now();
            let mut guard = w.hub.invitations.lock(id.shard_key());
            let shard = &mut *guard;
            let invitation = shard.invitations.get_mut(&id).unwrap();
            w.hub.end_after_a_panic(&mut shard.timers, invitation, now);
        }
        assert_eq!(
            stops(&w.outlet.take()),
            [(
                "bob".into(),
                "phone".into(),
                id.clone(),
                InviteeState::Timeout
            )]
        );
        let record = w.store.kept.lock()[&id].clone();
        assert!(record.ended_ms.is_some());
        assert!(record.invitees[0].pushed.is_empty());
    }

    #[test]
    fn stops_go_on_a_refusal_on_the_inviters_departure_and_on_an_answer_from_a_device_not_pushed() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        w.away_with_target("carol", "phone", voip("ef"));
        w.away_with_target("dave", "phone", voip("12"));
        let (alice, _) = w.login("alice", "desk");
        let request = SendInvitation::new(vec![user("bob"), user("carol"), user("dave")], 30);
        let id = w.hub.send(&alice, request).unwrap().invitation_id;
        assert_eq!(w.outlet.take().len(), 3);
        let answer = || Answer {
            invitation_id: id.clone(),
            extended_data: "".into(),
        };
        // Bob refuses on his phone (the device pushed): no stop for it.
        let (bob, _) = w.login("bob", "phone");
        w.hub.refuse(&bob, answer()).unwrap();
        assert!(w.outlet.take().is_empty());
        // Carol accepts on her laptop, which was never pushed: her phone is
        // told.
        let (carol, _) = w.login("carol", "laptop");
        w.hub.accept(&carol, answer()).unwrap();
        assert_eq!(
            stops(&w.outlet.take()),
            [(
                "carol".into(),
                "phone".into(),
                id.clone(),
                InviteeState::Accepted
            )]
        );
        // Alice's last device logs out: Dave's invitation is cancelled
        // (rule 7) and his phone told.
        w.hub.logout(&alice);
        assert_eq!(
            stops(&w.outlet.take()),
            [("dave".into(), "phone".into(), id, InviteeState::Cancelled)]
        );
    }

    #[test]
    fn a_refusal_on_a_device_not_pushed_stops_the_pushed_one() {
        let w = fresh();
        w.away_with_target("bob", "phone", voip("ab"));
        let (alice, _) = w.login("alice", "desk");
        let id = w
            .hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .unwrap()
            .invitation_id;
        assert_eq!(w.outlet.take().len(), 1);
        let (bob, _) = w.login("bob", "laptop");
        let answer = Answer {
            invitation_id: id.clone(),
            extended_data: "".into(),
        };
        w.hub.refuse(&bob, answer).unwrap();
        assert_eq!(
            stops(&w.outlet.take()),
            [("bob".into(), "phone".into(), id, InviteeState::Rejected)]
        );
    }

    #[test]
    fn racing_target_changes_are_stored_in_the_order_they_were_made() {
        let w = fresh();
        let (session, _) = w.login("bob", "phone");
        let start = std::sync::Barrier::new(2);
        for round in 0..10_000 {
            // Two changes at once, then the store must say what the hub has.
            std::thread::scope(|scope| {
                for token in ["ab", "ef"] {
                    let (hub, session, start) = (&w.hub, &session, &start);
                    scope.spawn(move || {
                        start.wait();
                        if token == "ab" || round % 3 != 0 {
                            hub.set_push_target(session, voip(token)).unwrap();
                        } else {
                            hub.clear_push_target(session).unwrap();
                        }
                    });
                }
            });
            let kept = w
                .hub
                .push_targets(&user("bob"))
                .first()
                .map(|(_, t)| t.clone());
            let stored = w
                .store
                .targets
                .lock()
                .get(&(user("bob"), device("phone")))
                .cloned();
            assert_eq!(kept, stored, "round {round}");
        }
    }

    #[test]
    fn a_target_set_while_the_session_logs_out_for_good_is_not_kept() {
        let w = fresh();
        for round in 0..300 {
            let (session, _) = w.login("bob", "phone");
            std::thread::scope(|scope| {
                let (hub, session) = (&w.hub, &session);
                scope.spawn(move || while hub.set_push_target(session, voip("ab")).is_ok() {});
                if round % 2 == 0 {
                    std::thread::yield_now();
                }
                w.hub.logout_for_good(session);
            });
            assert!(w.hub.push_targets(&user("bob")).is_empty(), "round {round}");
        }
    }

    #[test]
    fn a_target_another_node_set_rings_here_and_is_not_stored_again() {
        let w = fresh();
        let bob = user("bob");
        w.hub
            .mirror_push_target(&bob, &device("phone"), Some(voip("ab")));
        assert_eq!(w.hub.push_targets(&bob), [(device("phone"), voip("ab"))]);
        assert!(
            w.store.targets.lock().is_empty(),
            "stored by the other node"
        );
        let (alice, _) = w.login("alice", "desk");
        w.hub
            .send(&alice, SendInvitation::new(vec![bob.clone()], 30))
            .unwrap();
        assert_eq!(
            rings(&w.outlet.take()),
            [("bob".to_owned(), "phone".to_owned())]
        );
        // Set again with a new token, then forgotten there.
        w.hub
            .mirror_push_target(&bob, &device("phone"), Some(voip("cd")));
        assert_eq!(w.hub.push_targets(&bob), [(device("phone"), voip("cd"))]);
        w.hub.mirror_push_target(&bob, &device("phone"), None);
        assert!(w.hub.push_targets(&bob).is_empty());
        assert!(w.store.targets.lock().is_empty());
    }
}
