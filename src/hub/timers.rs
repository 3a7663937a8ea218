//! Deadlines, retention and token timers: ordered queues per shard, and one
//! driver task per hub that sleeps until the earliest due time.
//!
//! Every owner has at most one timer queued, and arming a new one replaces the
//! old (O(log n)): an invitation has its deadline while open, then its
//! forgetting while retained, then nothing; a session has its token warning,
//! then its token expiry. So the queues hold one entry per live or retained
//! invitation and per session with a token, however often tokens are renewed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::session::SessionId;
use crate::protocol::InvitationId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The invitation's deadline: pending invitees time out.
    Deadline,
    /// The end of retention: the ended invitation is forgotten.
    Forget,
    /// After a restart: the inviter of an invitation still open had the
    /// grace period to come back (rule 7).
    InviterGrace,
}

/// An invitation shard's timers, earliest first. An entry is found again from
/// the invitation's own record (its deadline, or its end plus retention), so
/// no index is needed to replace it.
pub(crate) type TimerQueue = BTreeSet<(Instant, TimerKind, InvitationId)>;

/// What a session's token timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenTimerKind {
    /// 30 s before expiry: TOKEN_WILL_EXPIRE, then the expiry is armed.
    Warn,
    /// At expiry: the session ends (TOKEN_EXPIRED).
    Expire,
}

/// A session's token timer. It only acts if it is of the session's newest
/// generation: one popped just before a renewal must not fire for the old token.
pub(crate) struct TokenTimer {
    pub kind: TokenTimerKind,
    /// The token's expiry, Unix seconds.
    pub expiry: u64,
    /// The same expiry on the monotonic clock, where the `Expire` timer goes.
    pub expire_at: Instant,
    pub generation: u64,
    pub session: Weak<super::Session>,
}

/// A token-timer shard: at most one timer per session.
#[derive(Default)]
pub(crate) struct TokenTimers {
    queue: BTreeMap<(Instant, SessionId), TokenTimer>,
    /// When each session's timer is due: the key to replace it by.
    armed: HashMap<SessionId, Instant>,
}

impl TokenTimers {
    /// Sets the session's timer, replacing the one it had.
    pub fn arm(&mut self, session: SessionId, due: Instant, timer: TokenTimer) {
        self.disarm(session);
        self.queue.insert((due, session), timer);
        self.armed.insert(session, due);
    }

    /// Removes the session's timer, if it has one.
    pub fn disarm(&mut self, session: SessionId) {
        if let Some(due) = self.armed.remove(&session) {
            self.queue.remove(&(due, session));
        }
    }

    /// Takes the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TokenTimer> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((_, session), timer) = entry.remove_entry();
        self.armed.remove(&session);
        Some(timer)
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|((due, _), _)| *due)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Tells the driver when a timer earlier than its planned wake-up was added.
pub(crate) struct TimerSignal {
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the driver plans to wake; `u64::MAX`
    /// while it scans, so that every timer added meanwhile wakes it again.
    next_wake: AtomicU64,
    notify: Notify,
}

impl TimerSignal {
    pub fn new(epoch: Instant) -> TimerSignal {
        TimerSignal {
            epoch,
            next_wake: AtomicU64::new(u64::MAX),
            notify: Notify::new(),
        }
    }

    fn ticks(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Called after a timer due `at` was pushed.
    pub fn added(&self, at: Instant) {
        let ticks = self.ticks(at);
        if ticks < self.next_wake.load(Ordering::Acquire) {
            self.notify.notify_one();
        }
    }

    pub fn scanning(&self) {
        self.next_wake.store(u64::MAX, Ordering::Release);
    }

    pub fn planned(&self, at: Option<Instant>) {
        let ticks = at.map_or(u64::MAX - 1, |at| self.ticks(at));
        self.next_wake.store(ticks, Ordering::Release);
    }
}

/// What the driver needs from a hub.
pub(crate) trait TimerOwner: Send + Sync + 'static {
    fn signal(&self) -> &Arc<TimerSignal>;
    fn now(&self) -> Instant;
    /// Fires every timer due at `now`; returns the earliest one still pending.
    fn fire_due_timers(&self, now: Instant) -> Option<Instant>;
}

/// Runs the timers of `owner` until it is dropped.
pub(crate) async fn drive<T: TimerOwner>(owner: Weak<T>) {
    loop {
        let Some(hub) = owner.upgrade() else { return };
        let signal = hub.signal().clone();
        signal.scanning();
        let now = hub.now();
        // A panic here would end the task and, with it, every deadline of this
        // hub: log it and try again shortly instead.
        let next =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hub.fire_due_timers(now)))
                .unwrap_or_else(|_| {
                    crate::log!(
                        crate::log::Level::Error,
                        "hub",
                        "a timer panicked; retrying in 1 s"
                    );
                    Some(now + std::time::Duration::from_secs(1))
                });
        signal.planned(next);
        drop(hub);
        // Wake at least once a minute, so a dropped hub lets the task end.
        let wake = next
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(60))
            .min(Instant::now() + std::time::Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = signal.notify.notified() => {}
        }
    }
}
