//! The hub: the invitation engine of docs/SEMANTICS.md (rules 1 to 9), with no
//! I/O. The `memory://` transport calls it in-process; `beckon-server` will call
//! the same hub from its WebSocket connections, so the semantics cannot differ.
//!
//! Concurrency: invitations are striped over shards by id, users over shards by
//! user id; there is no hub-wide lock. Lock order is always invitation shard, then
//! user shard, never the reverse, and pushes are handed to session sinks (which
//! only queue) while the invitation's shard is locked, so every device sees one
//! invitation's events in the order the hub decided them. A session's token
//! timer is armed and disarmed under its user's lock (user shard, then
//! token-timer shard); timers fire with no shard lock held.

mod clock;
mod config;
mod expiry;
mod invitation;
mod session;
mod shards;
mod snapshot;
mod stats;
mod timers;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::time::Instant;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::HubConfig;
pub use session::{Session, SessionId, SessionSink};
pub use stats::{HubStats, StatsSnapshot};

use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, DeviceId, IdHashBuilder, InvitationId, InviteeState,
    InviteeStatus, Push, SendInvitation, SendOutcome, Text, UserId,
};
use invitation::{Invitation, Invitee};
use session::{UserEntry, Users};
use shards::Shards;
use timers::{TimerKind, TimerOwner, TimerQueue, TimerSignal, TokenTimers};

const SUB_TAG: &str = "hub";

/// Runs a `*_then` operation and returns what it replied.
fn returned<T>(operation: impl FnOnce(&mut dyn FnMut(Result<T>))) -> Result<T> {
    let mut outcome = None;
    operation(&mut |result| outcome = Some(result));
    outcome.unwrap_or_else(|| Err(Error::internal("the hub did not reply")))
}

#[derive(Default)]
struct InvitationShard {
    invitations: HashMap<InvitationId, Invitation, IdHashBuilder>,
    timers: TimerQueue,
}

pub struct Hub {
    config: HubConfig,
    clock: Arc<dyn Clock>,
    users: Users,
    invitations: Shards<InvitationShard>,
    next_session_id: AtomicU64,
    /// Key for deriving invitation ids from idempotency keys.
    id_key: [u8; 32],
    timer_signal: Arc<TimerSignal>,
    /// Token timers of sessions (hubs with a secret), striped by session id.
    token_timers: Shards<TokenTimers>,
    stats: HubStats,
}

impl Hub {
    /// A hub on the system clock. Its timers run on the library's own runtime,
    /// never the caller's: a memory hub outlives any runtime a caller may have.
    pub fn new(config: HubConfig) -> Result<Arc<Hub>> {
        let hub = Self::build(config, Arc::new(SystemClock))?;
        drop(crate::runtime::handle().spawn(timers::drive(Arc::downgrade(&hub))));
        Ok(hub)
    }

    /// A hub on a clock the caller moves; nothing fires timers but
    /// [`Hub::advance`]. For tests of deadlines and retention.
    pub fn with_manual_clock(config: HubConfig, clock: ManualClock) -> Result<Arc<Hub>> {
        Self::build(config, Arc::new(clock))
    }

    fn build(config: HubConfig, clock: Arc<dyn Clock>) -> Result<Arc<Hub>> {
        config.validate()?;
        let epoch = clock.now();
        Ok(Arc::new(Hub {
            config,
            clock,
            users: Users::new(),
            invitations: Shards::new(),
            next_session_id: AtomicU64::new(1),
            id_key: rand::random(),
            timer_signal: Arc::new(TimerSignal::new(epoch)),
            token_timers: Shards::new(),
            stats: HubStats::default(),
        }))
    }

    /// Running totals for monitoring.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// With a manual clock: moves it and fires what fell due.
    pub fn advance(&self, clock: &ManualClock, by: Duration) {
        clock.advance(by);
        self.fire_due_timers(self.clock.now());
    }

    // ---- sessions -------------------------------------------------------------

    /// Logs a device in. The same device id logging in again replaces (kicks out)
    /// its older session; a user has at most `max_devices` sessions. The new
    /// device gets the invitations still ringing for its user when it calls
    /// [`Hub::sync`], once it is ready to receive them.
    pub fn login(
        &self,
        user: UserId,
        device: DeviceId,
        token: &str,
        sink: Arc<dyn SessionSink>,
    ) -> Result<Arc<Session>> {
        let token_expiry = self.check_token(&user, token)?;
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(id, user.clone(), device, sink, token_expiry));
        let max_devices = self.config.limits.max_devices;
        let kicked = self.users.update(&user, |entry| {
            let same_device = entry
                .sessions
                .iter()
                .position(|s| s.device == session.device);
            let kicked = match same_device {
                Some(i) => Some(entry.sessions.swap_remove(i)),
                None if entry.sessions.len() >= max_devices => {
                    return Err(Error::new(
                        ErrorCode::NotPermitted,
                        format!("user_id: '{user}' already has {max_devices} devices logged in"),
                    ))
                }
                None => None,
            };
            if let Some(old) = &kicked {
                old.end();
                self.disarm_token_timer(old);
            }
            entry.sessions.push(session.clone());
            // The expiry holds from the start, even for a session that never
            // syncs (its warning is dropped until then; the first sync sets
            // the timers again, so the warning comes after the login's result).
            self.schedule_token_timers(&session, token_expiry);
            Ok(kicked)
        })?;
        if let Some(old) = kicked {
            crate::log!(
                Level::Info,
                SUB_TAG,
                "device '{}' of '{user}' logged in again: older session {} kicked out",
                old.device,
                old.id
            );
            old.deliver_final(Push::KickedOut);
        }
        crate::log!(
            Level::Info,
            SUB_TAG,
            "login: user '{user}', device '{}', session {id}",
            session.device
        );
        Ok(session)
    }

    /// Delivers to this device every invitation still ringing for its user that
    /// it has not been handed yet (after login, and after a reconnect).
    /// The first sync also starts the session's token timers, so that even a
    /// warning due at once reaches the client after its login result.
    pub fn sync(&self, session: &Arc<Session>) {
        // Under the user's lock, where renewals also set timers: the expiry
        // read here is the one the timers are set for.
        let active: Vec<InvitationId> = self.users.update(&session.user, |entry| {
            if session.first_sync() {
                self.schedule_token_timers(session, session.token_expiry());
            }
            entry.active.iter().cloned().collect()
        });
        for invitation_id in active {
            self.deliver_pending(session, &invitation_id);
        }
    }

    /// Ends a session. If it was the user's last, the invitations the user sent
    /// and that are still pending are cancelled (rule 7).
    pub fn logout(&self, session: &Session) {
        self.end_session(session, "logout", || true);
    }

    /// Ends `session` if `still` holds under the user's lock; says whether it
    /// did. Rule 7 follows if it was the user's last session.
    fn end_session(&self, session: &Session, why: &str, still: impl FnOnce() -> bool) -> bool {
        // None: not ended here; Some(ids): ended, with the invitations to
        // check for rule 7 if it was the user's last session.
        let ended = self.users.update(&session.user, |entry| {
            if !still() || !session.end() {
                return None; // already logged out or kicked out, or renewed
            }
            entry.sessions.retain(|s| s.id != session.id);
            self.disarm_token_timer(session);
            let last = entry.sessions.is_empty();
            Some(if last {
                entry.active.iter().cloned().collect::<Vec<_>>()
            } else {
                Vec::new()
            })
        });
        let Some(orphaned) = ended else {
            return false;
        };
        crate::log!(
            Level::Info,
            SUB_TAG,
            "{why}: user '{}', session {}",
            session.user,
            session.id
        );
        for invitation_id in orphaned {
            self.cancel_for_departed_inviter(&session.user, &invitation_id);
        }
        true
    }
    fn require_alive(session: &Session) -> Result<()> {
        if session.is_alive() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::NotLoggedIn,
                "the session has ended (logged out or kicked out)",
            ))
        }
    }

    // ---- operations -----------------------------------------------------------

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

        let mut shard = self.invitations.lock(id.shard_key());
        if let Some(existing) = shard.invitations.get(&id) {
            if existing.inviter == session.user {
                return reply(Ok(existing.send_outcome.clone())); // a retried send
            }
            return reply(Err(Error::internal("invitation id collision")));
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
            invitees.push(Invitee {
                user: user.clone(),
                state: if offline {
                    InviteeState::Offline
                } else {
                    InviteeState::Inviting
                },
                closed_offline: offline && request.online_only,
                delivered_to: Vec::new(),
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
        for (invitee, sessions) in invitation.invitees.iter_mut().zip(online) {
            for device in sessions {
                if device.deliver(push.clone()) {
                    invitee.delivered_to.push(device.id);
                }
            }
        }
        if invitation.is_finished() {
            self.end(&mut shard.timers, &mut invitation, now);
        } else {
            shard
                .timers
                .insert((deadline, TimerKind::Deadline, id.clone()));
            self.timer_signal.added(deadline);
        }
        shard.invitations.insert(id, invitation);
        self.stats.created();
        reply(Ok(outcome));
    }

    pub fn cancel(&self, session: &Session, request: CancelInvitation) -> Result<CancelOutcome> {
        returned(|reply| self.cancel_then(session, request, reply))
    }

    /// Cancels; `reply` runs under the invitation's lock (see `send_then`).
    pub fn cancel_then(
        &self,
        session: &Session,
        request: CancelInvitation,
        reply: impl FnOnce(Result<CancelOutcome>),
    ) {
        let checked = Self::require_alive(session).and_then(|()| {
            self.config
                .limits
                .check_extended_data("extended_data", &request.extended_data)
        });
        if let Err(error) = checked {
            return reply(Err(error));
        }
        let now = self.clock.now();
        let mut guard = self.invitations.lock(request.invitation_id.shard_key());
        let shard = &mut *guard; // its map and its timers are borrowed apart
        let Some(invitation) = shard.invitations.get_mut(&request.invitation_id) else {
            return reply(Err(Self::not_found(&request.invitation_id)));
        };
        let result = self.cancel_locked(&mut shard.timers, invitation, session, &request, now);
        reply(result);
    }

    fn cancel_locked(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        session: &Session,
        request: &CancelInvitation,
        now: Instant,
    ) -> Result<CancelOutcome> {
        if invitation.inviter != session.user {
            return Err(Error::new(
                ErrorCode::NotPermitted,
                format!(
                    "invitation_id: '{}' is not the inviter of {}",
                    session.user, invitation.id
                ),
            ));
        }
        if invitation.ended_at.is_some() {
            return Err(Error::new(
                ErrorCode::InvitationClosed,
                format!("invitation_id: {} has ended", invitation.id),
            ));
        }
        let targets: Vec<UserId> = match &request.invitees {
            None => invitation.invitees.iter().map(|i| i.user.clone()).collect(),
            Some(list) if list.is_empty() => {
                return Err(Error::invalid(
                    "invitees: the list is empty (name no list to cancel everyone)",
                ))
            }
            Some(list) => {
                let mut seen = std::collections::HashSet::new();
                let mut targets = Vec::with_capacity(list.len());
                for (index, user) in list.iter().enumerate() {
                    if !invitation.invitees.iter().any(|i| &i.user == user) {
                        return Err(Error::invalid(format!(
                            "invitees[{index}]: '{user}' is not an invitee of {}",
                            invitation.id
                        )));
                    }
                    if seen.insert(user.clone()) {
                        targets.push(user.clone());
                    }
                }
                targets
            }
        };
        let mut error_invitees = Vec::new();
        let mut cancelled = Vec::new();
        for user in targets {
            let Some(invitee) = invitation.invitee_mut(&user) else {
                continue;
            };
            if invitee.is_final() {
                error_invitees.push(InviteeStatus {
                    user_id: user,
                    state: invitee.state,
                });
            } else {
                invitee.state = InviteeState::Cancelled;
                cancelled.push(user);
            }
        }
        self.stats
            .finished(InviteeState::Cancelled, cancelled.len());
        crate::log!(
            Level::Info,
            SUB_TAG,
            "cancel invitation {}: cancelled {:?}, not cancellable {}",
            invitation.id,
            cancelled,
            error_invitees.len()
        );
        self.announce_cancelled(invitation, &cancelled, &request.extended_data);
        if invitation.is_finished() {
            self.end(timers, invitation, now);
        }
        Ok(CancelOutcome { error_invitees })
    }

    pub fn accept(&self, session: &Session, answer: Answer) -> Result<()> {
        returned(|reply| self.answer_then(session, answer, InviteeState::Accepted, reply))
    }

    pub fn refuse(&self, session: &Session, answer: Answer) -> Result<()> {
        returned(|reply| self.answer_then(session, answer, InviteeState::Rejected, reply))
    }

    /// Accepts (`state` ACCEPTED) or refuses (REJECTED); `reply` runs under the
    /// invitation's lock (see `send_then`).
    pub fn answer_then(
        &self,
        session: &Session,
        answer: Answer,
        state: InviteeState,
        reply: impl FnOnce(Result<()>),
    ) {
        if !matches!(state, InviteeState::Accepted | InviteeState::Rejected) {
            return reply(Err(Error::internal("an answer is ACCEPTED or REJECTED")));
        }
        let checked = Self::require_alive(session).and_then(|()| {
            self.config
                .limits
                .check_extended_data("extended_data", &answer.extended_data)
        });
        if let Err(error) = checked {
            return reply(Err(error));
        }
        let now = self.clock.now();
        let mut guard = self.invitations.lock(answer.invitation_id.shard_key());
        let shard = &mut *guard;
        let Some(invitation) = shard.invitations.get_mut(&answer.invitation_id) else {
            return reply(Err(Self::not_found(&answer.invitation_id)));
        };
        let result =
            self.answer_locked(&mut shard.timers, invitation, session, &answer, state, now);
        reply(result);
    }

    fn answer_locked(
        &self,
        timers: &mut TimerQueue,
        invitation: &mut Invitation,
        session: &Session,
        answer: &Answer,
        state: InviteeState,
        now: Instant,
    ) -> Result<()> {
        let id = invitation.id.clone();
        let Some(invitee) = invitation.invitee_mut(&session.user) else {
            return Err(Error::new(
                ErrorCode::NotPermitted,
                format!("invitation_id: {id} does not invite '{}'", session.user),
            ));
        };
        match invitee.state {
            InviteeState::Accepted | InviteeState::Rejected => {
                return Err(Error::new(
                    ErrorCode::AlreadyAnswered,
                    format!(
                        "invitation_id: '{}' already answered {id} ({})",
                        session.user,
                        invitee.state.name()
                    ),
                ))
            }
            InviteeState::Cancelled | InviteeState::Timeout => {
                return Err(Error::new(
                    ErrorCode::InvitationClosed,
                    format!(
                        "invitation_id: {id} is closed for '{}' ({})",
                        session.user,
                        invitee.state.name()
                    ),
                ))
            }
            _ if invitee.closed_offline => {
                return Err(Error::new(
                    ErrorCode::InvitationClosed,
                    format!(
                        "invitation_id: {id} was sent online-only while '{}' was offline",
                        session.user
                    ),
                ))
            }
            InviteeState::Inviting | InviteeState::Offline | InviteeState::Received => {}
        }
        invitee.state = state;
        self.stats.finished(state, 1);
        crate::log!(
            Level::Info,
            SUB_TAG,
            "invitation {id}: '{}' {}",
            session.user,
            state.name()
        );
        let to_inviter = if state == InviteeState::Accepted {
            Push::InvitationAccepted {
                invitation_id: id.clone(),
                invitee: session.user.clone(),
                extended_data: answer.extended_data.clone(),
            }
        } else {
            Push::InvitationRefused {
                invitation_id: id.clone(),
                invitee: session.user.clone(),
                extended_data: answer.extended_data.clone(),
            }
        };
        self.users.deliver(&invitation.inviter, &to_inviter);
        self.announce_state(invitation, &session.user, state, &answer.extended_data);
        if invitation.is_finished() {
            self.end(timers, invitation, now);
        }
        Ok(())
    }

    /// A device's receipt (rule 4): the invitee's state becomes RECEIVED if it was
    /// still INVITING or pending OFFLINE. Unknown ids and repeats are ignored.
    pub fn acknowledge(&self, session: &Session, invitation_id: &InvitationId) {
        if !session.is_alive() {
            return;
        }
        let mut shard = self.invitations.lock(invitation_id.shard_key());
        let Some(invitation) = shard.invitations.get_mut(invitation_id) else {
            return;
        };
        let Some(invitee) = invitation.invitee_mut(&session.user) else {
            return;
        };
        let pending = matches!(
            invitee.state,
            InviteeState::Inviting | InviteeState::Offline
        );
        if pending && !invitee.is_final() {
            invitee.state = InviteeState::Received;
            let user = session.user.clone();
            self.announce_state(invitation, &user, InviteeState::Received, &Text::from(""));
        }
    }

    /// The invitees' states of a known invitation (ended ones included, until
    /// forgotten), for tests and diagnostics.
    pub fn invitee_states(&self, invitation_id: &InvitationId) -> Option<Vec<InviteeStatus>> {
        let shard = self.invitations.lock(invitation_id.shard_key());
        shard
            .invitations
            .get(invitation_id)
            .map(|i| i.statuses().to_vec())
    }

    /// How many sessions `user` has logged in.
    pub fn device_count(&self, user: &UserId) -> usize {
        self.users.session_count(user)
    }

    /// How many invitations `user` sent that have not ended: what counts
    /// against `max_open_invitations`.
    pub fn open_invitations(&self, user: &UserId) -> usize {
        self.users.open_sent(user)
    }

    // ---- internals ------------------------------------------------------------

    fn not_found(id: &InvitationId) -> Error {
        Error::new(
            ErrorCode::InvitationNotFound,
            format!("invitation_id: {id} is unknown or was forgotten"),
        )
    }

    fn idempotent_id(&self, inviter: &UserId, key: &str) -> InvitationId {
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

    fn received_push(invitation: &Invitation, now: Instant) -> Push {
        Push::InvitationReceived {
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            invitees: invitation.statuses(),
            extended_data: invitation.extended_data.clone(),
            notification: invitation.notification.clone(),
            seconds_left: invitation.seconds_left(now),
        }
    }

    /// Hands a newly logged-in device the invitations still ringing for its user.
    fn deliver_pending(&self, session: &Session, invitation_id: &InvitationId) {
        let now = self.clock.now();
        let mut shard = self.invitations.lock(invitation_id.shard_key());
        let Some(invitation) = shard.invitations.get_mut(invitation_id) else {
            return;
        };
        if invitation.ended_at.is_some() || !session.is_alive() {
            return;
        }
        let push = Self::received_push(invitation, now);
        let Some(invitee) = invitation.invitee_mut(&session.user) else {
            return;
        };
        if invitee.is_final() || invitee.delivered_to.contains(&session.id) {
            return;
        }
        if session.deliver(push) {
            invitee.delivered_to.push(session.id);
        }
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

    fn cancel_for_departed_inviter(&self, inviter: &UserId, invitation_id: &InvitationId) {
        let now = self.clock.now();
        let mut guard = self.invitations.lock(invitation_id.shard_key());
        let shard = &mut *guard;
        let Some(invitation) = shard.invitations.get_mut(invitation_id) else {
            return;
        };
        // The user may have logged in again meanwhile; then nothing is orphaned.
        if &invitation.inviter == inviter
            && invitation.ended_at.is_none()
            && self.users.session_count(inviter) == 0
        {
            let mut cancelled = Vec::new();
            for invitee in invitation.invitees.iter_mut().filter(|i| !i.is_final()) {
                invitee.state = InviteeState::Cancelled;
                cancelled.push(invitee.user.clone());
            }
            self.stats
                .finished(InviteeState::Cancelled, cancelled.len());
            crate::log!(
                Level::Info,
                SUB_TAG,
                "invitation {invitation_id}: inviter '{inviter}' left, cancelled {cancelled:?}"
            );
            self.announce_cancelled(invitation, &cancelled, &Text::from(""));
            self.end(&mut shard.timers, invitation, now);
        }
    }

    fn announce_cancelled(&self, invitation: &Invitation, cancelled: &[UserId], data: &Text) {
        for user in cancelled {
            let push = Push::InvitationCancelled {
                invitation_id: invitation.id.clone(),
                inviter: invitation.inviter.clone(),
                extended_data: data.clone(),
            };
            self.users.deliver(user, &push);
        }
        for user in cancelled {
            self.announce_state(invitation, user, InviteeState::Cancelled, data);
        }
    }

    /// INVITATION_USER_STATE_CHANGED to every device of every participant.
    fn announce_state(
        &self,
        invitation: &Invitation,
        user: &UserId,
        state: InviteeState,
        data: &Text,
    ) {
        let push = Push::UserStateChanged {
            invitation_id: invitation.id.clone(),
            user_id: user.clone(),
            state,
            extended_data: data.clone(),
        };
        for participant in invitation.participants() {
            self.users.deliver(participant, &push);
        }
    }

    /// Every invitee is final: stop tracking it per user, keep it for retention.
    fn end(&self, timers: &mut TimerQueue, invitation: &mut Invitation, now: Instant) {
        invitation.ended_at = Some(now);
        // Retention only answers late requests precisely: drop what they never
        // read (up to 13 KiB of payload per invitation).
        invitation.extended_data = Text::from("");
        invitation.notification = None;
        for invitee in &mut invitation.invitees {
            invitee.delivered_to = Vec::new();
        }
        // The one place an invitation ends: its inviter's quota place is
        // given back here, exactly once.
        self.users
            .deactivate(&invitation.inviter, &invitation.id, true);
        for invitee in &invitation.invitees {
            self.users.deactivate(&invitee.user, &invitation.id, false);
        }
        // Its deadline (gone already if it is what ended it) gives way to its
        // forgetting: one timer per invitation, live or retained.
        timers.remove(&(
            invitation.deadline,
            TimerKind::Deadline,
            invitation.id.clone(),
        ));
        let forget_at = now + self.config.retention;
        timers.insert((forget_at, TimerKind::Forget, invitation.id.clone()));
        self.timer_signal.added(forget_at);
        crate::log!(Level::Debug, SUB_TAG, "invitation {} ended", invitation.id);
    }
}
