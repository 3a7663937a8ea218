//! One endpoint's delivery: its lanes (a bounded queue and a worker each),
//! and the attempts, signed afresh each time, with backoff between them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{mpsc, watch};

use super::event::{Event, Filter};
use crate::config::{WebhookEndpointConfig, WebhooksConfig};
use crate::metrics::WebhookMetrics;
use crate::push::http::{self, HttpClient};
use crate::signing::{self, WebhookSecret};
use crate::store::DurableGate;
use crate::time::now_ms;

/// A dropped event is logged at most this often per endpoint (they are all
/// counted).
const DROP_LOG_EVERY_MS: u64 = 10_000;

/// A lane's queue, as its worker takes from it.
pub type LaneEvents = mpsc::Receiver<Arc<Event>>;

/// The timing every endpoint shares.
#[derive(Clone, Debug)]
pub struct Tuning {
    pub lanes: usize,
    /// Events each lane holds (the endpoint's queue, split between them).
    pub lane_capacity: usize,
    pub request_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub retry_for: Duration,
}

impl Tuning {
    pub fn from_config(config: &WebhooksConfig) -> Tuning {
        let lanes = config.concurrency.max(1);
        Tuning {
            lanes,
            lane_capacity: config.queue.div_ceil(lanes).max(1),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            retry_initial: Duration::from_millis(config.retry_initial_ms),
            retry_max: Duration::from_millis(config.retry_max_ms),
            retry_for: Duration::from_secs(config.retry_for_secs),
        }
    }

    /// The wait before attempt `attempt + 1`: doubling from `retry_initial`
    /// up to `retry_max`, each between half and all of that (jitter, so
    /// lanes that failed together do not retry together).
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = doubled.min(self.retry_max);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// One `[[webhooks.endpoint]]`.
pub struct Endpoint {
    pub name: String,
    /// Scheme, host, port and path: what logs show (never a query, which
    /// may hold a credential).
    pub url: String,
    pub filter: Filter,
    target: http::Endpoint,
    secrets: Vec<WebhookSecret>,
    lanes: Vec<mpsc::Sender<Arc<Event>>>,
    tuning: Tuning,
    http: Arc<HttpClient>,
    gate: DurableGate,
    metrics: WebhookMetrics,
    depth: Gauge,
    last_drop_log_ms: AtomicU64,
}

impl Endpoint {
    /// The endpoint `config` describes (the `index`th), and its lanes'
    /// receiving ends for their workers.
    pub fn load(
        index: usize,
        name: String,
        config: &WebhookEndpointConfig,
        tuning: &Tuning,
        http: Arc<HttpClient>,
        gate: DurableGate,
        metrics: WebhookMetrics,
    ) -> Result<(Arc<Endpoint>, Vec<LaneEvents>), String> {
        let section = format!("webhooks.endpoint[{index}]");
        let target =
            http::Endpoint::parse(&config.url).map_err(|e| format!("{section}.url: {e}"))?;
        let secrets = signing::load_secrets(
            &section,
            config.secret.as_deref(),
            config.secret_file.as_deref(),
        )?;
        let filter = Filter::parse(&config.events).map_err(|e| format!("{section}.events: {e}"))?;
        let (lanes, receivers): (Vec<_>, Vec<_>) = (0..tuning.lanes)
            .map(|_| mpsc::channel(tuning.lane_capacity))
            .unzip();
        let url = format!(
            "{}://{}{}",
            if target.https { "https" } else { "http" },
            target.host_header(),
            target.base
        );
        let depth = metrics.depth(&name);
        // Made now, so counting later never creates a series (under the
        // hub's locks, for `dropped`).
        for outcome in ["delivered", "failed", "dropped"] {
            metrics.count_event_by(&name, outcome, 0);
        }
        Ok((
            Arc::new(Endpoint {
                name,
                url,
                filter,
                target,
                secrets,
                lanes,
                tuning: tuning.clone(),
                http,
                gate,
                metrics,
                depth,
                last_drop_log_ms: AtomicU64::new(0),
            }),
            receivers,
        ))
    }

    /// Queues `event` on its lane, or drops it (counted) when the lane is
    /// full or the server is stopping. Never waits: the hub's locks are held.
    pub fn enqueue(&self, event: Arc<Event>, stopping: bool) {
        let lane = (event.order_key % self.lanes.len() as u64) as usize;
        if stopping {
            return self.dropped(&event, "the server is stopping");
        }
        // Counted before it can be taken, so the gauge never dips below 0.
        self.depth.inc();
        let refused = match self.lanes[lane].try_send(event) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(event)) => (event, "queue full"),
            Err(mpsc::error::TrySendError::Closed(event)) => (event, "the server is stopping"),
        };
        self.depth.dec();
        self.dropped(&refused.0, refused.1);
    }

    fn dropped(&self, event: &Event, why: &str) {
        self.metrics.count_event(&self.name, "dropped");
        let now = now_ms();
        let last = self.last_drop_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= DROP_LOG_EVERY_MS
            && self
                .last_drop_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                endpoint = %self.name,
                event = %event.id,
                kind = event.kind,
                "webhook event dropped ({why}); later drops in the next {} s are only counted",
                DROP_LOG_EVERY_MS / 1000
            );
        }
    }

    /// After the shutdown deadline: what is still queued, or was being
    /// delivered when its lane was aborted, is counted dropped.
    pub fn drop_the_rest(&self) {
        let left = self.depth.get().max(0);
        if left > 0 {
            tracing::warn!(
                endpoint = %self.name,
                dropped = left,
                "webhooks: events left undelivered at shutdown"
            );
        }
        for _ in 0..left {
            self.metrics.count_event(&self.name, "dropped");
        }
        self.depth.set(0);
    }

    /// Tries `event` until it is delivered, given up, or the server stops
    /// (then it gets the attempt under way and no more).
    async fn deliver(&self, event: &Event, stop: &mut watch::Receiver<bool>) {
        let body = Bytes::from(event.body());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let failure = match self.attempt(event, body.clone()).await {
                Ok(()) => {
                    self.metrics.count_attempt(&self.name, "ok");
                    self.metrics.count_event(&self.name, "delivered");
                    let took = now_ms().saturating_sub(event.at_ms);
                    self.metrics
                        .latency
                        .get_or_create(&crate::metrics::EndpointLabel {
                            endpoint: self.name.clone(),
                        })
                        .observe(took as f64 / 1000.0);
                    return;
                }
                Err(failure) => failure,
            };
            self.metrics.count_attempt(&self.name, "error");
            if failure.final_ {
                return self.gave_up(event, attempt, &failure.reason);
            }
            let wait = failure
                .retry_after
                .unwrap_or_else(|| self.tuning.backoff(attempt));
            let give_up_at = event.at_ms + self.tuning.retry_for.as_millis() as u64;
            if now_ms() + wait.as_millis() as u64 > give_up_at {
                return self.gave_up(event, attempt, &failure.reason);
            }
            if *stop.borrow() {
                self.metrics.count_event(&self.name, "dropped");
                return;
            }
            tracing::debug!(
                endpoint = %self.name,
                event = %event.id,
                attempt,
                reason = %failure.reason,
                wait_ms = wait.as_millis() as u64,
                "webhook attempt failed; trying again"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => {
                    self.metrics.count_event(&self.name, "dropped");
                    return;
                }
            }
        }
    }

    fn gave_up(&self, event: &Event, attempts: u32, reason: &str) {
        self.metrics.count_event(&self.name, "failed");
        tracing::warn!(
            endpoint = %self.name,
            event = %event.id,
            kind = event.kind,
            attempts,
            reason,
            "webhook event given up"
        );
    }

    /// One signed POST.
    async fn attempt(&self, event: &Event, body: Bytes) -> Result<(), Failure> {
        // Signed afresh: the timestamp is the attempt's, so a receiver's
        // replay window holds for retries too.
        let timestamp = now_ms() / 1000;
        let signature = signing::sign(&self.secrets, &event.id, timestamp, &body);
        let uri = self.target.uri("").map_err(Failure::final_)?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("beckon-server/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(body))
            .map_err(|e| Failure::final_(format!("bad request: {e}")))?;
        let sent = self.http.send_push(&self.target, request, false);
        let reply = match tokio::time::timeout(self.tuning.request_timeout, sent).await {
            Err(_) => return Err(Failure::retry("no answer in time", None)),
            Ok(Err(e)) => return Err(Failure::retry(e.to_string(), None)),
            Ok(Ok(reply)) => reply,
        };
        let status = reply.status;
        match status {
            s if s.is_success() => Ok(()),
            // The receiver says the endpoint is gone for good, or refuses
            // this body as such: trying it again cannot help, and would hold
            // up the lane.
            StatusCode::GONE
            | StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY => {
                Err(Failure::final_(format!("HTTP {}", status.as_u16())))
            }
            s => Err(Failure::retry(
                format!("HTTP {}", s.as_u16()),
                reply.retry_after(now_ms()),
            )),
        }
    }
}

struct Failure {
    reason: String,
    retry_after: Option<Duration>,
    final_: bool,
}

impl Failure {
    fn retry(reason: impl Into<String>, retry_after: Option<Duration>) -> Failure {
        Failure {
            reason: reason.into(),
            retry_after,
            final_: false,
        }
    }

    fn final_(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            retry_after: None,
            final_: true,
        }
    }
}

/// A lane's worker: one event at a time, in queue order, each once its
/// change is durable. Once the server stops, it empties the queue with one
/// attempt each.
pub async fn run_lane(
    endpoint: Arc<Endpoint>,
    mut events: LaneEvents,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = if *stop.borrow() {
            match events.try_recv() {
                Ok(event) => event,
                Err(_) => return,
            }
        } else {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
                // A dropped sender (the service gone without a shutdown)
                // stops the lane too.
                changed = stop.changed() => if changed.is_err() { return } else { continue },
            }
        };
        // Told only once the change is durable: a crash before that must
        // not leave the backend knowing of something the server forgot.
        endpoint.gate.wait(event.ticket).await;
        endpoint.deliver(&event, &mut stop).await;
        // Counted until now: a lane aborted at the shutdown deadline leaves
        // its event in the depth, which `drop_the_rest` counts dropped.
        endpoint.depth.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_ceiling() {
        let tuning = Tuning::from_config(&WebhooksConfig {
            retry_initial_ms: 1_000,
            retry_max_ms: 10_000,
            ..WebhooksConfig::default()
        });
        for (attempt, ceiling) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (4, 8_000),
            (5, 10_000),
            (60, 10_000),
        ] {
            for _ in 0..50 {
                let wait = tuning.backoff(attempt).as_millis() as u64;
                assert!(
                    (ceiling / 2..=ceiling).contains(&wait),
                    "attempt {attempt}: {wait} ms"
                );
            }
        }
        assert_eq!(tuning.lanes, 16);
        assert_eq!(tuning.lane_capacity, 625);
    }
}
