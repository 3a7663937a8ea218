//! A provider's lane: a bounded queue the hub's `push` only adds to, a
//! dispatcher that runs at most `concurrency` deliveries at once, and the
//! retry loop of one delivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::hub::{PushJob, PushMessage, PushReporter, PushResult};
use beckon::protocol::PushProvider;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::{Attempt, Clock, Outgoing, Provider};
use crate::config::PushConfig;
use crate::metrics::{ProviderLabel, PushMetrics};
use crate::store::DurableGate;

/// Retry timing.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// The first retry's wait, doubled after each retry up to `backoff_max`.
    pub backoff_start: Duration,
    pub backoff_max: Duration,
    /// Retries of a stop push (rings retry while they ring).
    pub stop_retries: u32,
    /// One attempt's time limit.
    pub request_timeout: Duration,
}

impl Tuning {
    pub fn from_config(config: &PushConfig) -> Tuning {
        Tuning {
            backoff_start: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            stop_retries: 5,
            request_timeout: Duration::from_millis(config.request_timeout_ms),
        }
    }
}

struct Queued {
    job: PushJob,
    queued_at: Instant,
}

/// What every delivery of a lane shares.
struct Shared {
    provider: Provider,
    tuning: Tuning,
    gate: DurableGate,
    metrics: PushMetrics,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
    name: &'static str,
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
        let name = provider.lane_name();
        let shared = Arc::new(Shared {
            provider,
            tuning,
            gate,
            metrics,
            clock,
            shutdown,
            name,
        });
        let (queue, jobs) = mpsc::channel(config.queue.max(1));
        let worker = runtime.spawn(dispatch(shared.clone(), jobs, config.concurrency.max(1)));
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

    fn depth(&self) -> prometheus_client::metrics::gauge::Gauge {
        self.shared
            .metrics
            .queue_depth
            .get_or_create(&ProviderLabel {
                provider: self.shared.name,
            })
            .clone()
    }

    /// Queues `job`, or fails it at once (from a task: the hub's lock is
    /// held here) when the queue is full or closed.
    pub(super) fn enqueue(&self, job: PushJob) {
        let depth = self.depth();
        depth.inc();
        let queued = Queued {
            job,
            queued_at: Instant::now(),
        };
        let (queued, reason) = match self.queue.try_send(queued) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(queued)) => {
                self.shared
                    .metrics
                    .dropped
                    .get_or_create(&ProviderLabel {
                        provider: self.shared.name,
                    })
                    .inc();
                (queued, "queue full")
            }
            Err(mpsc::error::TrySendError::Closed(queued)) => (queued, "server shutting down"),
        };
        depth.dec();
        let provider = queued.job.target.provider.name();
        self.shared.metrics.count_failure(provider, reason);
        let result = PushResult::Failed {
            reason: reason.to_owned(),
            token_invalid: false,
        };
        let reporter = queued.job.reporter;
        drop(self.runtime.spawn(async move { reporter.report(result) }));
    }
}

/// Reports `result` for `job` from a task (never under the hub's lock).
pub(super) fn report_later(job: PushJob, result: PushResult) {
    let reporter = job.reporter;
    match Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(async move { reporter.report(result) })),
        Err(_) => drop(std::thread::spawn(move || reporter.report(result))),
    }
}

async fn dispatch(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Queued>, concurrency: usize) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    let depth = shared
        .metrics
        .queue_depth
        .get_or_create(&ProviderLabel {
            provider: shared.name,
        })
        .clone();
    loop {
        let queued = tokio::select! {
            queued = jobs.recv() => queued,
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        let Some(queued) = queued else { break };
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.ok(),
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        depth.dec();
        let Some(slot) = slot else {
            fail(&shared, queued, "server shutting down");
            break;
        };
        let shared = shared.clone();
        running.spawn(async move {
            deliver(&shared, queued).await;
            drop(slot);
        });
        while running.try_join_next().is_some() {}
    }
    // Whatever is still queued fails; deliveries under way see the shutdown
    // and stop retrying.
    jobs.close();
    while let Ok(queued) = jobs.try_recv() {
        depth.dec();
        fail(&shared, queued, "server shutting down");
    }
    while running.join_next().await.is_some() {}
}

fn fail(shared: &Shared, queued: Queued, reason: &str) {
    let provider = queued.job.target.provider.name();
    shared.metrics.count_failure(provider, reason);
    queued.job.reporter.report(PushResult::Failed {
        reason: reason.to_owned(),
        token_invalid: false,
    });
}

async fn deliver(shared: &Shared, queued: Queued) {
    let Queued { job, queued_at } = queued;
    let PushJob {
        user,
        device,
        target,
        message,
        ticket,
        reporter,
    } = job;
    let provider = target.provider.name();
    let mut shutdown = shared.shutdown.clone();
    // Nothing leaves the process before the change behind it is durable.
    if !shared.gate.covers(ticket) {
        let durable = tokio::select! {
            _ = shared.gate.wait(ticket) => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        };
        if !durable {
            shared
                .metrics
                .count_failure(provider, "server shutting down");
            reporter.report(PushResult::Failed {
                reason: "server shutting down".to_owned(),
                token_invalid: false,
            });
            return;
        }
    }
    let out = Outgoing::new(user, device, target, message);
    let result = attempts(shared, &out, &reporter).await;
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
    reporter.report(result);
}

/// Tries until the provider gives a final answer, or retrying is no longer
/// worth it: a ring that no longer rings or would arrive past its deadline;
/// a stop after `stop_retries`.
async fn attempts(shared: &Shared, out: &Outgoing, reporter: &PushReporter) -> PushResult {
    let tuning = &shared.tuning;
    let mut backoff = tuning.backoff_start;
    let mut retries = 0u32;
    let mut shutdown = shared.shutdown.clone();
    let deadline_ms = match &out.message {
        PushMessage::Ring(ring) => Some(ring.deadline_ms),
        PushMessage::Stop { .. } => None,
    };
    loop {
        let mut limit = tuning.request_timeout;
        if let Some(deadline) = deadline_ms {
            let left = deadline.saturating_sub(shared.clock.now_ms());
            if left == 0 {
                return PushResult::Failed {
                    reason: "expired: the invitation's deadline passed".to_owned(),
                    token_invalid: false,
                };
            }
            limit = limit.min(Duration::from_millis(left));
        }
        let attempt = tokio::select! {
            attempt = tokio::time::timeout(limit, shared.provider.send(out)) => {
                attempt.unwrap_or_else(|_| Attempt::Retry {
                    reason: "timed out".to_owned(),
                    after: None,
                })
            }
            _ = shutdown.wait_for(|stop| *stop) => Attempt::failed("server shutting down"),
        };
        let (reason, after) = match attempt {
            Attempt::Done(result) => return result,
            Attempt::Retry { reason, after } => (reason, after),
        };
        let wait = after.unwrap_or(backoff);
        backoff = (backoff * 2).min(tuning.backoff_max);
        retries += 1;
        let worth_it = match deadline_ms {
            Some(deadline) => {
                let at = shared
                    .clock
                    .now_ms()
                    .saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                at < deadline && reporter.still_ringing()
            }
            None => retries <= tuning.stop_retries,
        };
        if !worth_it || *shutdown.borrow() {
            return PushResult::Failed {
                reason,
                token_invalid: false,
            };
        }
        shared
            .metrics
            .retries
            .get_or_create(&ProviderLabel {
                provider: out.target.provider.name(),
            })
            .inc();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                return PushResult::Failed { reason, token_invalid: false };
            }
        }
    }
}
