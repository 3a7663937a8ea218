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
        // A hub that pushes through nothing says nothing about pushes.
        if invitation.online_only || self.push_outlet.is_none() {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

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
        providers: Vec<PushProvider>,
        jobs: Mutex<Vec<PushJob>>,
    }

    impl Jobs {
        fn new(providers: &[PushProvider]) -> Arc<Jobs> {
            Arc::new(Jobs {
                providers: providers.to_vec(),
                jobs: Mutex::new(Vec::new()),
            })
        }

        fn take(&self) -> Vec<PushJob> {
            std::mem::take(&mut *self.jobs.lock())
        }
    }

    impl PushOutlet for Jobs {
        fn supports(&self, provider: PushProvider) -> bool {
            self.providers.contains(&provider)
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
            Some(outlet.clone()),
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
            None,
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
}
