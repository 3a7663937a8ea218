//! The hub's sense of time. `SystemClock` is tokio's clock (which tests may pause)
//! and the wall clock; `ManualClock` is a clock a test moves by hand, so rules about
//! deadlines and retention are tested without sleeping for real seconds.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub trait Clock: Send + Sync + 'static {
    /// Monotonic time for deadlines and retention.
    fn now(&self) -> Instant;
    /// Wall time in Unix seconds, for token expiry.
    fn unix_now(&self) -> u64;
    /// Wall time in Unix milliseconds, for the times a store keeps.
    fn unix_millis(&self) -> u64 {
        self.unix_now().saturating_mul(1000)
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn unix_millis(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told. Cloning shares the same time.
#[derive(Clone)]
pub struct ManualClock {
    /// Monotonic time, and wall time since the Unix epoch.
    state: Arc<Mutex<(Instant, Duration)>>,
}

impl ManualClock {
    pub fn new(unix_now: u64) -> ManualClock {
        ManualClock {
            state: Arc::new(Mutex::new((Instant::now(), Duration::from_secs(unix_now)))),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock();
        state.0 += by;
        state.1 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.state.lock().0
    }

    fn unix_now(&self) -> u64 {
        self.state.lock().1.as_secs()
    }

    fn unix_millis(&self) -> u64 {
        u64::try_from(self.state.lock().1.as_millis()).unwrap_or(u64::MAX)
    }
}
