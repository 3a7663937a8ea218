//! Login tokens at the hub: checked at login and renewal; with a secret, a
//! session is warned 30 s before its token expires and ended when it does.
//! Expiry and renewal are decided under the user's lock, so a renewal that
//! returned OK always wins.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::timers::{TokenTimer, TokenTimerKind};
use super::{Hub, Session, SessionId};
use crate::error::Result;
use crate::protocol::{Push, UserId};

/// TOKEN_WILL_EXPIRE goes this long (seconds) before a token expires.
const TOKEN_WARNING: u64 = 30;
/// Tokens that live longer than this (seconds, about 10 years) get no timers:
/// "never expires" is a fair use of a far-off expiry.
const TOKEN_TIMER_HORIZON: u64 = 10 * 365 * 24 * 3600;

impl Hub {
    /// Replaces the session's token; its expiry timers start over.
    pub fn renew_token(&self, session: &Arc<Session>, token: &str) -> Result<()> {
        super::store::reset_frame_ticket();
        Self::require_alive(session)?;
        let expiry = self.check_token(&session.user, token)?;
        // Under the user's lock, like the expiry's own check (see
        // `fire_token_timer`): a session is either renewed or expired.
        self.users.update(&session.user, |_| {
            Self::require_alive(session)?;
            session.set_token_expiry(expiry);
            self.schedule_token_timers(session, expiry);
            Ok(())
        })
    }

    /// Verifies `token` for `user`; returns its expiry (0 without a secret).
    pub fn check_token(&self, user: &UserId, token: &str) -> Result<u64> {
        match &self.config.secret {
            None => Ok(0),
            Some(secret) => crate::token::verify(secret, user, token, self.clock.unix_now()),
        }
    }

    /// With a secret, a session is warned 30 s before its token expires and
    /// ended when it does, unless the token was renewed meanwhile. Called under
    /// the user's lock: the session's timer is replaced, never added to.
    pub(super) fn schedule_token_timers(&self, session: &Arc<Session>, expiry: u64) {
        // A remote device's token is watched by the node it is on.
        if self.config.secret.is_none() || session.is_remote() {
            return;
        }
        let generation = session.next_token_timers();
        let now = self.clock.now();
        let unix_now = self.clock.unix_now();
        let warn_in = expiry
            .saturating_sub(TOKEN_WARNING)
            .saturating_sub(unix_now);
        let expire_in = expiry.saturating_sub(unix_now);
        if expire_in > TOKEN_TIMER_HORIZON {
            // No timers, and none left over from an earlier token either.
            self.token_timers.lock(session.id).disarm(session.id);
            return;
        }
        let timer = TokenTimer {
            kind: TokenTimerKind::Warn,
            expiry,
            expire_at: now + Duration::from_secs(expire_in),
            generation,
            session: Arc::downgrade(session),
        };
        self.arm_token_timer(session.id, now + Duration::from_secs(warn_in), timer);
    }

    fn arm_token_timer(&self, session: SessionId, due: Instant, timer: TokenTimer) {
        self.token_timers.lock(session).arm(session, due, timer);
        self.timer_signal.added(due);
    }

    /// Drops the timer of a session that ended. Under the user's lock, where
    /// sessions end and timers are armed: none is armed for it afterwards.
    pub(super) fn disarm_token_timer(&self, session: &Session) {
        if self.config.secret.is_some() {
            self.token_timers.lock(session.id).disarm(session.id);
        }
    }

    /// How many token timers are queued (one at most per session).
    #[cfg(test)]
    pub(crate) fn queued_token_timers(&self) -> usize {
        self.token_timers.iter().map(|s| s.lock().len()).sum()
    }

    pub(super) fn fire_token_timer(&self, timer: TokenTimer) {
        let Some(session) = timer.session.upgrade() else {
            return;
        };
        // Re-checked under the user's lock, where a renewal bumps the
        // generation and a logout ends the session: a renewal that returned OK
        // always wins, and nothing is armed for a session that ended.
        let current = || session.is_alive() && session.token_timers() == timer.generation;
        match timer.kind {
            TokenTimerKind::Warn => {
                let left = timer.expiry.saturating_sub(self.clock.unix_now());
                self.users.update(&session.user, |_| {
                    if !current() {
                        return; // logged out, or renewed since
                    }
                    // Dropped (not queued) before the session's first sync,
                    // which arms the warning again.
                    session.deliver(Push::TokenWillExpire {
                        seconds_left: u32::try_from(left).unwrap_or(u32::MAX),
                    });
                    let expire = TokenTimer {
                        kind: TokenTimerKind::Expire,
                        ..timer
                    };
                    self.arm_token_timer(session.id, expire.expire_at, expire);
                });
            }
            TokenTimerKind::Expire => {
                // `end_session` logs it.
                if self.end_session(&session, "token expired", current) {
                    session.deliver_final(Push::TokenExpired);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{HubConfig, ManualClock};
    use crate::protocol::{DeviceId, SessionSink};

    const T0: u64 = 1_700_000_000;
    const SECRET: &[u8] = b"a-secret-of-sixteen-bytes";

    struct Nowhere;
    impl SessionSink for Nowhere {
        fn deliver(&self, _push: Push) {}
    }

    fn hub() -> (Arc<Hub>, ManualClock) {
        let clock = ManualClock::new(T0);
        let config = HubConfig {
            secret: Some(SECRET.to_vec()),
            ..HubConfig::default()
        };
        (
            Hub::with_manual_clock(config, clock.clone()).unwrap(),
            clock,
        )
    }

    fn login(hub: &Hub, name: &str, device: &str, expiry: u64) -> Arc<Session> {
        let user = UserId::parse(name, "u").unwrap();
        let token = crate::token::mint(SECRET, &user, expiry);
        let device = DeviceId::parse(device, "d").unwrap();
        hub.login(user, device, &token, Arc::new(Nowhere)).unwrap()
    }

    fn token(name: &str, expiry: u64) -> String {
        crate::token::mint(SECRET, &UserId::parse(name, "u").unwrap(), expiry)
    }

    /// The review's repro: before, every renewal queued two more timers, and
    /// none left before it was due (200,002 after 100k renewals, still 200,002
    /// after the logout).
    #[test]
    fn token_timers_stay_bounded_by_live_sessions() {
        let (hub, _clock) = hub();
        let session = login(&hub, "mallory", "d", T0 + 86_400);
        let other = login(&hub, "trent", "d", T0 + 86_400);
        hub.sync(&session);
        let renewal = token("mallory", T0 + 86_400);
        for _ in 0..100_000 {
            hub.renew_token(&session, &renewal).unwrap();
        }
        assert_eq!(hub.queued_token_timers(), 2, "one per live session");
        hub.logout(&session);
        assert_eq!(hub.queued_token_timers(), 1);
        hub.logout(&other);
        assert_eq!(hub.queued_token_timers(), 0);
    }

    #[test]
    fn a_warning_gives_way_to_the_expiry_which_leaves_nothing() {
        let (hub, clock) = hub();
        let session = login(&hub, "alice", "d", T0 + 100);
        hub.sync(&session);
        hub.advance(&clock, Duration::from_secs(70)); // the warning
        assert!(session.is_alive());
        assert_eq!(hub.queued_token_timers(), 1, "the expiry is armed");
        hub.advance(&clock, Duration::from_secs(30));
        assert!(!session.is_alive());
        assert_eq!(hub.queued_token_timers(), 0);
    }

    #[test]
    fn one_step_past_warning_and_expiry_fires_both() {
        let (hub, clock) = hub();
        let session = login(&hub, "alice", "d", T0 + 100);
        hub.sync(&session);
        hub.advance(&clock, Duration::from_secs(500));
        assert!(!session.is_alive());
        assert_eq!(hub.queued_token_timers(), 0);
    }

    #[test]
    fn a_kicked_out_session_leaves_no_timer() {
        let (hub, _clock) = hub();
        let first = login(&hub, "alice", "d", T0 + 100);
        let second = login(&hub, "alice", "d", T0 + 100);
        assert!(!first.is_alive());
        assert_eq!(hub.queued_token_timers(), 1);
        hub.logout(&second);
        assert_eq!(hub.queued_token_timers(), 0);
    }

    #[test]
    fn renewing_to_a_far_off_expiry_drops_the_timer() {
        let (hub, clock) = hub();
        let session = login(&hub, "alice", "d", T0 + 100);
        hub.sync(&session);
        let forever = token("alice", T0 + TOKEN_TIMER_HORIZON + 1);
        hub.renew_token(&session, &forever).unwrap();
        assert_eq!(hub.queued_token_timers(), 0);
        hub.advance(&clock, Duration::from_secs(200));
        assert!(session.is_alive(), "the old token's expiry is gone");
    }

    #[test]
    fn without_a_secret_no_timer_is_queued() {
        let hub = Hub::with_manual_clock(HubConfig::default(), ManualClock::new(T0)).unwrap();
        let user = UserId::parse("alice", "u").unwrap();
        let device = DeviceId::parse("d", "d").unwrap();
        let session = hub.login(user, device, "any", Arc::new(Nowhere)).unwrap();
        hub.sync(&session);
        hub.renew_token(&session, "any").unwrap();
        assert_eq!(hub.queued_token_timers(), 0);
    }
}
