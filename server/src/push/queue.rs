//! A provider's lane: a bounded queue the hub's `push` only adds to, a
//! dispatcher that hands jobs out in queue order, and the retry loop of one
//! delivery.
//!
//! At most `concurrency` attempts are in flight per lane; a delivery holds a
//! slot only while it waits for its change to be durable and while an
//! attempt runs, never while it sleeps before a retry or waits for its turn.
//! The jobs of one device about one invitation (its ring, then its stop)
//! take turns in queue order, so a stop never overtakes the ring attempt
//! it follows; a stop queued behind a ring that waits to retry wakes it, and
//! the ring, no longer ringing, ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::hub::{PushJob, PushMessage, PushReporter, PushResult};
use beckon::protocol::{DeviceId, InvitationId, PushProvider, UserId};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::{Attempt, Clock, Outgoing, Provider};
use crate::config::PushConfig;
use crate::metrics::{ProviderLabel, PushMetrics};
use crate::store::DurableGate;

/// The reason a ring is not sent (or no longer retried) once its invitee
/// stopped ringing.
pub const NO_LONGER_RINGING: &str = "no longer ringing";
/// The reason of a push whose delivery ended without a result (a panic, or
/// still under way when the shutdown's deadline passed).
pub const DROPPED: &str = "dropped";
/// The reason of a push refused once the server is stopping.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// Retry timing.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// The first retry's wait, doubled after each retry up to `backoff_max`;
    /// a provider's Retry-After counts when it is longer. Each wait gets up
    /// to half the backoff on top (jitter).
    pub backoff_start: Duration,
    pub backoff_max: Duration,
    /// Retries of a stop push (rings retry while they ring).
    pub stop_retries: u32,
    /// No retry of a stop push is made past this time after its first
    /// attempt: a Retry-After reaching past it ends the stop.
    pub stop_retry_window: Duration,
    /// One attempt's time limit.
    pub request_timeout: Duration,
}

impl Tuning {
    pub fn from_config(config: &PushConfig) -> Tuning {
        Tuning {
            backoff_start: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            stop_retries: 5,
            stop_retry_window: Duration::from_secs(5 * 60),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
        }
    }
}

/// A job's report, made once: dropped unreported (a delivery that panicked
/// or was still under way when the shutdown's deadline passed), it reports
/// the push failed, "dropped".
struct Report {
    reporter: Option<PushReporter>,
    provider: &'static str,
    metrics: PushMetrics,
}

impl Report {
    fn new(reporter: PushReporter, provider: &'static str, metrics: PushMetrics) -> Report {
        Report {
            reporter: Some(reporter),
            provider,
            metrics,
        }
    }

    fn still_ringing(&self) -> bool {
        self.reporter.as_ref().is_some_and(|r| r.still_ringing())
    }

    fn send(mut self, result: PushResult) {
        if let Some(reporter) = self.reporter.take() {
            reporter.report(result);
        }
    }

    /// The reporter, no longer reported for on drop (to be reported from
    /// elsewhere).
    fn disarm(mut self) -> Option<PushReporter> {
        self.reporter.take()
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(reporter) = self.reporter.take() {
            self.metrics.count_failure(self.provider, DROPPED);
            reporter.report(PushResult::Failed {
                reason: DROPPED.to_owned(),
                token_invalid: false,
            });
        }
    }
}

struct Queued {
    job: Job,
    queued_at: Instant,
}

/// A job, its reporter taken into a [`Report`].
struct Job {
    user: UserId,
    device: DeviceId,
    target: beckon::protocol::PushTarget,
    message: PushMessage,
    ticket: beckon::hub::Ticket,
    report: Report,
}

/// The jobs of one device about one invitation, in queue order.
type TurnKey = (UserId, DeviceId, InvitationId);

/// The last job of a key: the next one waits for `done` and wakes the
/// last one's retry wait through `behind`.
struct Tail {
    number: u64,
    done: oneshot::Receiver<()>,
    behind: Arc<Notify>,
}

type Tails = Arc<parking_lot::Mutex<HashMap<TurnKey, Tail>>>;

/// A job's place among the jobs of its key; the key is forgotten when it
/// ends, unless another job came since.
struct Turn {
    tails: Tails,
    key: TurnKey,
    number: u64,
    /// The job before it, if any: its end (or drop) is this one's turn.
    after: Option<oneshot::Receiver<()>>,
    /// Dropped when this job ends: the next one's turn.
    _done: oneshot::Sender<()>,
    /// Notified when a job queues behind this one.
    behind: Arc<Notify>,
}

/// What every delivery of a lane shares.
struct Shared {
    provider: Provider,
    tuning: Tuning,
    gate: DurableGate,
    metrics: PushMetrics,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
    tails: Tails,
    next_turn: AtomicU64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut tails = self.tails.lock();
        if tails
            .get(&self.key)
            .is_some_and(|t| t.number == self.number)
        {
            tails.remove(&self.key);
        }
    }
}

impl Shared {
    fn depth(&self, provider: &'static str) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics
            .queue_depth
            .get_or_create(&ProviderLabel { provider })
            .clone()
    }

    /// Takes a place behind the jobs of the same key (in queue order: the
    /// dispatcher calls this), waking the last one's retry wait.
    fn take_turn(&self, key: TurnKey) -> Turn {
        let number = self.next_turn.fetch_add(1, Ordering::Relaxed);
        let (done_tx, done_rx) = oneshot::channel();
        let behind = Arc::new(Notify::new());
        let tail = Tail {
            number,
            done: done_rx,
            behind: behind.clone(),
        };
        let before = self.tails.lock().insert(key.clone(), tail);
        let after = before.map(|before| {
            before.behind.notify_one();
            before.done
        });
        Turn {
            tails: self.tails.clone(),
            key,
            number,
            after,
            _done: done_tx,
            behind,
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

pub(super) struct Lane {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Queued>,
    runtime: Handle,
}

impl Lane {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        provider: Provider,
        config: &PushConfig,
        tuning: Tuning,
        gate: DurableGate,
        metrics: PushMetrics,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
        runtime: &Handle,
    ) -> (Lane, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            provider,
            tuning,
            gate,
            metrics,
            clock,
            shutdown,
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            tails: Tails::default(),
            next_turn: AtomicU64::new(0),
        });
        let (queue, jobs) = mpsc::channel(config.queue.max(1));
        let worker = runtime.spawn(dispatch(shared.clone(), jobs));
        (
            Lane {
                shared,
                queue,
                runtime: runtime.clone(),
            },
            worker,
        )
    }

    pub(super) fn serves(&self, provider: PushProvider) -> bool {
        self.shared.provider.serves(provider)
    }

    /// Queues `job`, or fails it at once (from a task: the hub's lock is
    /// held here) when the queue is full or closed.
    pub(super) fn enqueue(&self, job: PushJob) {
        let PushJob {
            user,
            device,
            target,
            message,
            ticket,
            reporter,
        } = job;
        let provider = target.provider.name();
        let depth = self.shared.depth(provider);
        depth.inc();
        let queued = Queued {
            job: Job {
                user,
                device,
                target,
                message,
                ticket,
                report: Report::new(reporter, provider, self.shared.metrics.clone()),
            },
            queued_at: Instant::now(),
        };
        let sent = if self.shared.stopping() {
            Err(mpsc::error::TrySendError::Closed(queued))
        } else {
            self.queue.try_send(queued)
        };
        let (queued, reason) = match sent {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(queued)) => {
                self.shared
                    .metrics
                    .dropped
                    .get_or_create(&ProviderLabel { provider })
                    .inc();
                (queued, "queue full")
            }
            Err(mpsc::error::TrySendError::Closed(queued)) => (queued, SHUTTING_DOWN),
        };
        depth.dec();
        self.shared.metrics.count_failure(provider, reason);
        let result = PushResult::Failed {
            reason: reason.to_owned(),
            token_invalid: false,
        };
        // Never reported here, under the hub's lock: not even by the
        // report's drop should the runtime be gone.
        if let Some(reporter) = queued.job.report.disarm() {
            report_later(Some(&self.runtime), reporter, result);
        }
    }
}

/// Reports `result` from a task on `runtime` (else the current one), or a
/// thread off any runtime (never under the hub's lock).
pub(super) fn report_later(runtime: Option<&Handle>, reporter: PushReporter, result: PushResult) {
    match runtime.cloned().map_or_else(Handle::try_current, Ok) {
        Ok(runtime) => drop(runtime.spawn(async move { reporter.report(result) })),
        Err(_) => drop(std::thread::spawn(move || reporter.report(result))),
    }
}

/// Hands out the queued jobs in order, each once a slot is free. At
/// shutdown the queue closes (later pushes fail at once) and what it still
/// holds is handed out as before: every job gets its attempt, none a retry.
async fn dispatch(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Queued>) {
    let mut running = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    let mut closed = false;
    loop {
        let queued = if closed {
            jobs.recv().await
        } else {
            tokio::select! {
                queued = jobs.recv() => queued,
                _ = shutdown.wait_for(|stop| *stop) => {
                    closed = true;
                    jobs.close();
                    continue;
                }
            }
        };
        let Some(queued) = queued else { break };
        let Ok(slot) = shared.slots.clone().acquire_owned().await else {
            break;
        };
        shared.depth(queued.job.target.provider.name()).dec();
        let key = (
            queued.job.user.clone(),
            queued.job.device.clone(),
            queued.job.message.invitation_id().clone(),
        );
        let mut turn = shared.take_turn(key);
        let shared = shared.clone();
        running.spawn(async move { deliver(&shared, queued, slot, &mut turn).await });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

async fn deliver(shared: &Shared, queued: Queued, slot: OwnedSemaphorePermit, turn: &mut Turn) {
    let Queued { job, queued_at } = queued;
    let Job {
        user,
        device,
        target,
        message,
        ticket,
        report,
    } = job;
    let provider = target.provider.name();
    // Nothing leaves the process before the change behind it is durable
    // (the store is written until the pushes have stopped: this ends).
    if !shared.gate.covers(ticket) {
        shared.gate.wait(ticket).await;
    }
    // The job before this one about the same device and invitation goes
    // first; no slot is held meanwhile.
    let mut slot = Some(slot);
    if let Some(mut after) = turn.after.take() {
        if let Err(oneshot::error::TryRecvError::Empty) = after.try_recv() {
            slot = None;
            // Its sender is only ever dropped: an error is its end.
            let _ = after.await;
        }
    }
    let out = Outgoing::new(user, device, target, message);
    let result = attempts(shared, &out, &report, slot, &turn.behind).await;
    let label = ProviderLabel { provider };
    match &result {
        PushResult::Sent => {
            shared.metrics.sent.get_or_create(&label).inc();
        }
        PushResult::Failed { reason, .. } => shared.metrics.count_failure(provider, reason),
    }
    shared
        .metrics
        .latency
        .get_or_create(&label)
        .observe(queued_at.elapsed().as_secs_f64());
    if let PushResult::Failed { reason, .. } = &result {
        tracing::debug!(
            provider,
            invitation = %out.message.invitation_id(),
            user = %out.user,
            device = %out.device,
            "push failed: {reason}"
        );
    }
    report.send(result);
}

fn failed(reason: impl Into<String>) -> PushResult {
    PushResult::Failed {
        reason: reason.into(),
        token_invalid: false,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Tries until the provider gives a final answer, or retrying is no longer
/// worth it: a ring that no longer rings or would arrive past its deadline;
/// a stop after `stop_retries` or past `stop_retry_window`; anything once
/// the server is stopping. A ring is checked right before each attempt.
/// `slot`: the first attempt's, if the delivery holds one; `behind`: a job
/// queued behind this one.
async fn attempts(
    shared: &Shared,
    out: &Outgoing,
    report: &Report,
    mut slot: Option<OwnedSemaphorePermit>,
    behind: &Notify,
) -> PushResult {
    let tuning = &shared.tuning;
    let mut backoff = tuning.backoff_start;
    let mut retries = 0u32;
    let mut shutdown = shared.shutdown.clone();
    let deadline_ms = match &out.message {
        PushMessage::Ring(ring) => Some(ring.deadline_ms),
        PushMessage::Stop { .. } => None,
    };
    let first_ms = shared.clock.now_ms();
    // The last retryable failure: a ring that then ends says it.
    let mut last: Option<String> = None;
    let no_longer_ringing = |last: &Option<String>| match last {
        Some(reason) => failed(format!("{NO_LONGER_RINGING}: after {reason}")),
        None => failed(NO_LONGER_RINGING),
    };
    loop {
        // A retry waits for a slot like any job.
        let held = match slot.take() {
            Some(held) => held,
            None => match shared.slots.clone().acquire_owned().await {
                Ok(held) => held,
                Err(_) => return failed(SHUTTING_DOWN),
            },
        };
        let mut limit = tuning.request_timeout;
        if let Some(deadline) = deadline_ms {
            if !report.still_ringing() {
                return no_longer_ringing(&last);
            }
            let left = deadline.saturating_sub(shared.clock.now_ms());
            if left == 0 {
                return failed("expired: the invitation's deadline passed");
            }
            limit = limit.min(Duration::from_millis(left));
        }
        // Not cut short by a shutdown: the attempt under way finishes.
        let attempt = tokio::time::timeout(limit, shared.provider.send(out))
            .await
            .unwrap_or_else(|_| Attempt::Retry {
                reason: "timed out".to_owned(),
                after: None,
            });
        drop(held);
        let (reason, after) = match attempt {
            Attempt::Done(result) => return result,
            Attempt::Retry { reason, after } => (reason, after),
        };
        if shared.stopping() {
            return failed(reason);
        }
        let jitter = {
            use rand::Rng;
            let most = millis(backoff) / 2;
            Duration::from_millis(rand::thread_rng().gen_range(0..=most))
        };
        let wait = after.unwrap_or_default().max(backoff) + jitter;
        backoff = (backoff * 2).min(tuning.backoff_max);
        retries += 1;
        let wake = shared.clock.now_ms().saturating_add(millis(wait));
        // A Retry-After reaching past a ring's deadline or a stop's window
        // ends the push.
        let worth_it = match deadline_ms {
            Some(deadline) => wake < deadline,
            None => {
                retries <= tuning.stop_retries
                    && wake <= first_ms.saturating_add(millis(tuning.stop_retry_window))
            }
        };
        if !worth_it {
            return failed(reason);
        }
        shared
            .metrics
            .retries
            .get_or_create(&ProviderLabel {
                provider: out.target.provider.name(),
            })
            .inc();
        let sleep = shared.clock.sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                // A job behind this one: for a ring, its stop.
                _ = behind.notified() => {
                    if deadline_ms.is_some() && !report.still_ringing() {
                        return no_longer_ringing(&Some(reason));
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => return failed(reason),
            }
        }
        last = Some(reason);
    }
}
