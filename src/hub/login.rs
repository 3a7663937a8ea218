//! Logging in, syncing and logging out: a device's session joins its user's
//! entry, is handed what is still ringing when it syncs, and leaves again
//! (logout, kick-out, token expiry), with rule 7 when it was the user's last.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Hub, Session, SUB_TAG};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{DeviceId, InvitationId, Push, SessionSink, UserId};

impl Hub {
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
        super::store::reset_frame_ticket();
        let token_expiry = self.check_token(&user, token)?;
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(id, user, device, sink, token_expiry));
        self.join(session, true)
    }

    /// Adds `session` to its user's entry: it replaces (kicks out) an older
    /// session of the same device; with `limit_devices`, a user has at most
    /// `max_devices` sessions.
    pub(super) fn join(&self, session: Arc<Session>, limit_devices: bool) -> Result<Arc<Session>> {
        let user = session.user.clone();
        let token_expiry = session.token_expiry();
        let max_devices = self.config.limits.max_devices;
        let kicked = self.users.update(&user, |entry| {
            let same_device = entry
                .sessions
                .iter()
                .position(|s| s.device == session.device);
            let kicked = match same_device {
                Some(i) => Some(entry.sessions.swap_remove(i)),
                None if limit_devices && entry.sessions.len() >= max_devices => {
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
                self.tell_offline(old, "replaced");
            }
            entry.sessions.push(session.clone());
            self.tell_online(&session);
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
            "login: user '{user}', device '{}', session {}",
            session.device,
            session.id
        );
        Ok(session)
    }

    /// Delivers to this device every invitation still ringing for its user that
    /// it has not been handed yet (after login, and after a reconnect).
    /// The first sync also starts the session's token timers, so that even a
    /// warning due at once reaches the client after its login result.
    pub fn sync(&self, session: &Arc<Session>) {
        super::store::reset_frame_ticket();
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

    /// Ends the session of `user`'s device `device` here, for the server
    /// API: it gets KICKED_OUT (its client stops, as when the device logs in
    /// elsewhere), its push target is forgotten (as at an explicit logout),
    /// and rule 7 follows if it was the user's last. Says
    /// whether such a session was logged in. A device of another node is
    /// not this hub's to end: it is left alone (`Err` with its presence).
    pub fn kick(&self, user: &UserId, device: &DeviceId) -> Result<bool> {
        let found = self.users.update(user, |entry| {
            entry.sessions.iter().find(|s| &s.device == device).cloned()
        });
        let Some(session) = found else {
            return Ok(false);
        };
        if session.is_remote() {
            return Err(Error::new(
                ErrorCode::NotPermitted,
                format!("device '{device}' of '{user}' is connected to another node"),
            ));
        }
        if !self.end_session(&session, "kicked", || true) {
            return Ok(false);
        }
        // As an explicit logout: a device put out (a stolen phone, say) is
        // rung no more.
        self.forget_push_target(user, device);
        session.deliver_final(Push::KickedOut);
        Ok(true)
    }

    /// Ends `session` if `still` holds under the user's lock; says whether it
    /// did. Rule 7 follows if it was the user's last session.
    pub(super) fn end_session(
        &self,
        session: &Session,
        why: &'static str,
        still: impl FnOnce() -> bool,
    ) -> bool {
        super::store::reset_frame_ticket();
        // None: not ended here; Some(ids): ended, with the invitations to
        // check for rule 7 if it was the user's last session.
        let ended = self.users.update(&session.user, |entry| {
            if !still() || !session.end() {
                return None; // already logged out or kicked out, or renewed
            }
            entry.sessions.retain(|s| s.id != session.id);
            self.disarm_token_timer(session);
            self.tell_offline(session, why);
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

    /// Hands a newly logged-in device the invitations still ringing for its user.
    pub(super) fn deliver_pending(&self, session: &Session, invitation_id: &InvitationId) {
        let now = self.clock.now();
        let mut shard = self.invitations.lock(invitation_id.shard_key());
        let Some(invitation) = shard.invitations.get_mut(invitation_id) else {
            return;
        };
        if invitation.ended_at.is_some() || !session.is_alive() {
            return;
        }
        let push = Self::received_push(invitation, now);
        super::store::note_frame_ticket(invitation.ticket);
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
}
