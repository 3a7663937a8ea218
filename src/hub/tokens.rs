//! Login tokens at the hub: checked at login and renewal; with a secret, a
//! session is warned 30 s before its token expires and ended when it does.
//! Expiry and renewal are decided under the user's lock, so a renewal that
//! returned OK always wins.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::timers::{TokenTimer, TokenTimerKind};
use super::{Hub, Session, SUB_TAG};
use crate::error::Result;
use crate::log::Level;
use crate::protocol::{Push, UserId};

/// TOKEN_WILL_EXPIRE goes this long (seconds) before a token expires.
const TOKEN_WARNING: u64 = 30;
/// Tokens that live longer than this (seconds, about 10 years) get no timers:
/// "never expires" is a fair use of a far-off expiry.
const TOKEN_TIMER_HORIZON: u64 = 10 * 365 * 24 * 3600;

impl Hub {
    /// Replaces the session's token; its expiry timers start over.
    pub fn renew_token(&self, session: &Arc<Session>, token: &str) -> Result<()> {
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
    /// ended when it does, unless the token was renewed meanwhile.
    pub(super) fn schedule_token_timers(&self, session: &Arc<Session>, expiry: u64) {
        if self.config.secret.is_none() {
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
            return;
        }
        let mut heap = self.token_timers.lock(session.id);
        for (kind, seconds) in [
            (TokenTimerKind::Warn, warn_in),
            (TokenTimerKind::Expire, expire_in),
        ] {
            let due = now + Duration::from_secs(seconds);
            heap.push(Reverse(TokenTimer {
                due,
                seq: self.next_timer_seq.fetch_add(1, Ordering::Relaxed),
                kind,
                expiry,
                generation,
                session: Arc::downgrade(session),
            }));
            self.timer_signal.added(due);
        }
    }

    pub(super) fn fire_token_timer(&self, timer: TokenTimer) {
        let Some(session) = timer.session.upgrade() else {
            return;
        };
        if !session.is_alive() || session.token_timers() != timer.generation {
            return; // logged out, or renewed since
        }
        match timer.kind {
            TokenTimerKind::Warn => {
                let left = timer.expiry.saturating_sub(self.clock.unix_now());
                // Re-checked under the user's lock, so no warning about the old
                // token follows a renewal that returned.
                self.users.update(&session.user, |_| {
                    if session.token_timers() == timer.generation {
                        session.deliver(Push::TokenWillExpire {
                            seconds_left: u32::try_from(left).unwrap_or(u32::MAX),
                        });
                    }
                });
            }
            TokenTimerKind::Expire => {
                crate::log!(
                    Level::Info,
                    SUB_TAG,
                    "token of '{}' (session {}) expired",
                    session.user,
                    session.id
                );
                // Re-checked under the user's lock, where a renewal bumps the
                // generation: a renewal that returned OK always wins.
                let generation = timer.generation;
                let current = || session.token_timers() == generation;
                if self.end_session(&session, "token expired", current) {
                    session.deliver_final(Push::TokenExpired);
                }
            }
        }
    }
}
