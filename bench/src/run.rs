//! What every pair of one run shares: the clock every timestamp is read from,
//! the phase (warm-up, measuring, draining, done), the counters and the errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use parking_lot::Mutex;

/// Nanoseconds since the first call in this process: the one clock of the run.
/// Timestamps travel inside invitations as this number.
pub fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Sending, nothing counted.
    Warmup = 0,
    /// Sending, completions and latencies counted.
    Measure = 1,
    /// No new sends; waiting for what is in flight.
    Drain = 2,
    /// Tearing down: errors from here on (SHUTDOWN of callbacks still pending)
    /// are the tool's own doing and are not counted.
    Done = 3,
}

pub struct Run {
    phase: AtomicU8,
    /// Where measuring starts and ends, as `now_ns` (MAX until known).
    measure_start: AtomicU64,
    measure_end: AtomicU64,
    /// Open-loop pacing: completions do not trigger sends.
    pub paced: bool,
    pub timeout_secs: u32,
    /// Invitations handed to `send_invitation` (every phase).
    pub sent: AtomicU64,
    /// Answers heard by inviters (every phase).
    pub completed: AtomicU64,
    /// Answers heard by inviters while measuring.
    pub completed_measured: AtomicU64,
    /// Times the pacer found every window full and had to wait (measuring).
    pub window_full: AtomicU64,
    /// Failures by what failed and its code, e.g. `send:RATE_LIMITED`.
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Run {
    pub fn new(paced: bool, timeout_secs: u32) -> Run {
        Run {
            phase: AtomicU8::new(Phase::Warmup as u8),
            measure_start: AtomicU64::new(u64::MAX),
            measure_end: AtomicU64::new(u64::MAX),
            paced,
            timeout_secs,
            sent: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            completed_measured: AtomicU64::new(0),
            window_full: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Warmup,
            1 => Phase::Measure,
            2 => Phase::Drain,
            _ => Phase::Done,
        }
    }

    /// Sends may still be made (warm-up or measuring).
    pub fn sending(&self) -> bool {
        self.phase() <= Phase::Measure
    }

    pub fn start_measuring(&self, at_ns: u64) {
        self.measure_start.store(at_ns, Ordering::Release);
        self.phase.store(Phase::Measure as u8, Ordering::Release);
    }

    pub fn stop_sending(&self, at_ns: u64) {
        self.measure_end.store(at_ns, Ordering::Release);
        self.phase.store(Phase::Drain as u8, Ordering::Release);
    }

    pub fn finish(&self) {
        self.phase.store(Phase::Done as u8, Ordering::Release);
    }

    /// The measured window in nanoseconds (0 before it ended).
    pub fn measured_ns(&self) -> u64 {
        let start = self.measure_start.load(Ordering::Acquire);
        let end = self.measure_end.load(Ordering::Acquire);
        if start == u64::MAX || end == u64::MAX {
            return 0;
        }
        end.saturating_sub(start)
    }

    /// Whether an invitation sent (or scheduled) at `sent_ns` is measured:
    /// sent after the warm-up. Sending stops when measuring does, so every
    /// later send is in the window too.
    pub fn measured_send(&self, sent_ns: u64) -> bool {
        sent_ns >= self.measure_start.load(Ordering::Acquire)
    }

    pub fn count_error(&self, what: &str) {
        if self.phase() == Phase::Done {
            return;
        }
        *self.errors.lock().entry(what.to_owned()).or_insert(0) += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().clone()
    }
}
