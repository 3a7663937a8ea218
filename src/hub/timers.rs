//! Deadlines and retention: a min-heap per invitation shard, and one driver task
//! per hub that sleeps until the earliest due time. Timers are never removed
//! early; a popped timer whose invitation moved on is simply ignored.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::protocol::InvitationId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// The invitation's deadline: pending invitees time out.
    Deadline,
    /// The end of retention: the ended invitation is forgotten.
    Forget,
}

pub(crate) type TimerHeap = BinaryHeap<Reverse<(Instant, TimerKind, InvitationId)>>;

/// What a session's token timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenTimerKind {
    /// 30 s before expiry: TOKEN_WILL_EXPIRE.
    Warn,
    /// At expiry: the session ends (TOKEN_EXPIRED).
    Expire,
}

/// A session's token timer. It only acts if it is of the session's newest
/// generation (a renewal sets new timers and leaves these to lapse).
pub(crate) struct TokenTimer {
    pub due: Instant,
    pub seq: u64,
    pub kind: TokenTimerKind,
    pub expiry: u64,
    pub generation: u64,
    pub session: std::sync::Weak<super::Session>,
}

impl PartialEq for TokenTimer {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for TokenTimer {}

impl PartialOrd for TokenTimer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TokenTimer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

pub(crate) type TokenTimerHeap = BinaryHeap<Reverse<TokenTimer>>;

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
