//! How sends are made: closed loop (each pair keeps its window full; an answer
//! frees a slot and the inviter's handler sends the next at once) or open loop
//! (a pacer sends on a fixed schedule, `--rate` per second over all pairs).
//! Both go through the same timeline: warm-up, measuring, draining.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::cpu;
use crate::options::DRAIN;
use crate::pair::{new_histogram, Pair};
use crate::run::{now_ns, Phase, Run};

/// Progress lines on stderr, one a second (none with `--json`).
pub struct Progress {
    pub enabled: bool,
    last_completed: u64,
    last_at: Instant,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            last_completed: 0,
            last_at: Instant::now(),
        }
    }

    fn tick(&mut self, run: &Run, pairs: &[Arc<Pair>], label: &str) {
        let completed = run.completed.load(Ordering::Relaxed);
        let now = Instant::now();
        let secs = now.duration_since(self.last_at).as_secs_f64();
        if self.enabled && secs > 0.0 {
            let in_flight: usize = pairs.iter().map(|p| p.outstanding()).sum();
            eprintln!(
                "beckon-bench: {label:<8} {:>9.0} complete/s, {in_flight} in flight",
                (completed - self.last_completed) as f64 / secs
            );
        }
        self.last_completed = completed;
        self.last_at = now;
    }
}

/// Open-loop pacing: send number `i` is due at `start + i / rate`, and is
/// stamped with that due time, so a pacer that falls behind (windows full, a
/// busy machine) shows up as latency instead of being hidden.
pub struct Pacer {
    start_ns: u64,
    interval_ns: f64,
    issued: u64,
    cursor: usize,
    /// How late each measured send was made, against its due time: the
    /// pacer's own share of the latency.
    lag: Histogram<u64>,
}

impl Pacer {
    pub fn new(rate: f64) -> Result<Pacer, String> {
        Ok(Pacer {
            start_ns: now_ns(),
            interval_ns: 1e9 / rate,
            issued: 0,
            cursor: 0,
            lag: new_histogram()?,
        })
    }

    fn due(&self, index: u64) -> u64 {
        self.start_ns + (index as f64 * self.interval_ns) as u64
    }

    /// Sends what falls due until `until_ns`.
    fn run_until(&mut self, run: &Run, pairs: &[Arc<Pair>], until_ns: u64) {
        loop {
            let now = now_ns();
            if now >= until_ns {
                return;
            }
            let mut blocked = false;
            while self.due(self.issued) <= now {
                match self.free_pair(pairs) {
                    Some(pair) => {
                        let due = self.due(self.issued);
                        pair.send(due);
                        if run.measured_send(due) {
                            self.lag.saturating_record(now_ns().saturating_sub(due));
                        }
                        self.issued += 1;
                    }
                    None => {
                        blocked = true;
                        if run.phase() == Phase::Measure {
                            run.window_full.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
            }
            let now = now_ns();
            let next = if blocked {
                now + 50_000
            } else {
                self.due(self.issued)
            };
            // `until_ns` may have passed since the check above.
            let wake = next.min(until_ns);
            if wake > now {
                std::thread::sleep(Duration::from_nanos(wake - now));
            }
        }
    }

    /// The next pair (round robin) with room in its window; its slot is taken.
    fn free_pair<'a>(&mut self, pairs: &'a [Arc<Pair>]) -> Option<&'a Arc<Pair>> {
        for _ in 0..pairs.len() {
            let pair = &pairs[self.cursor % pairs.len()];
            self.cursor = self.cursor.wrapping_add(1);
            if pair.take_slot() {
                return Some(pair);
            }
        }
        None
    }
}

/// What `drive` saw.
pub struct Driven {
    /// Still in flight when the drain gave up.
    pub unfinished: usize,
    /// CPU time by thread at the start and the end of the measured window.
    pub cpu_before: cpu::Sample,
    pub cpu_after: cpu::Sample,
    /// Paced runs: how late the pacer made its sends.
    pub pacer_lag: Option<Histogram<u64>>,
}

/// Runs the warm-up and the measurement, then stops sending and waits (at most
/// `DRAIN`) for what is in flight.
pub fn drive(
    run: &Run,
    pairs: &[Arc<Pair>],
    rate: Option<f64>,
    warmup: Duration,
    duration: Duration,
    progress: &mut Progress,
) -> Result<Driven, String> {
    let mut cpu_before = cpu::Sample::default();
    let mut pacer = rate.map(Pacer::new).transpose()?;
    if pacer.is_none() {
        // Closed loop: fill every window; answers keep them full.
        // (Bounded: an immediate refusal gives its slot back.)
        for pair in pairs {
            for _ in 0..pair.window() {
                if pair.take_slot() {
                    pair.send(now_ns());
                }
            }
        }
    }
    let phases = [("warm-up", warmup, false), ("measure", duration, true)];
    for (label, length, measured) in phases {
        let start = now_ns();
        if measured {
            cpu_before = cpu::Sample::take();
            run.start_measuring(start);
        }
        let end = start + u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        loop {
            let now = now_ns();
            if now >= end {
                break;
            }
            let slice_end = end.min(now + 1_000_000_000);
            match pacer.as_mut() {
                Some(pacer) => pacer.run_until(run, pairs, slice_end),
                None => std::thread::sleep(Duration::from_nanos(slice_end - now)),
            }
            progress.tick(run, pairs, label);
        }
    }
    run.stop_sending(now_ns());
    let cpu_after = cpu::Sample::take();
    let deadline = Instant::now() + DRAIN;
    loop {
        let left: usize = pairs.iter().map(|p| p.outstanding()).sum();
        if left == 0 || Instant::now() >= deadline {
            return Ok(Driven {
                unfinished: left,
                cpu_before,
                cpu_after,
                pacer_lag: pacer.map(|p| p.lag),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
