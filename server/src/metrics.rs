//! What `/metrics` reports, in Prometheus text format.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushFailureLabel {
    pub provider: &'static str,
    pub reason: String,
}

/// The push providers' metrics (`beckon_push_*`), kept by `push` and
/// registered with the others when the server has push configured.
#[derive(Clone)]
pub struct PushMetrics {
    /// Pushes a provider accepted, by target provider (apns, apns_voip, fcm,
    /// webhook).
    pub sent: Family<ProviderLabel, Counter>,
    /// Pushes that failed for good, by provider and reason.
    pub failed: Family<PushFailureLabel, Counter>,
    /// Seconds from queueing to the provider's final answer.
    pub latency: Family<ProviderLabel, Histogram>,
    /// Jobs waiting in each provider's queue (apns, fcm, webhook).
    pub queue_depth: Family<ProviderLabel, Gauge>,
    /// Jobs refused because the queue was full.
    pub dropped: Family<ProviderLabel, Counter>,
    /// Attempts retried after a 429, a 5xx, a timeout or a lost connection.
    pub retries: Family<ProviderLabel, Counter>,
}

impl Default for PushMetrics {
    fn default() -> PushMetrics {
        PushMetrics {
            sent: Family::default(),
            failed: Family::default(),
            latency: Family::new_with_constructor(|| {
                // 1 ms .. ~59 s
                Histogram::new(exponential_buckets(0.001, 3.0, 11))
            }),
            queue_depth: Family::default(),
            dropped: Family::default(),
            retries: Family::default(),
        }
    }
}

impl PushMetrics {
    /// A failure, its reason cut to a short label (providers' reasons are
    /// a small set of words; anything else must not grow the label set).
    pub fn count_failure(&self, provider: &'static str, reason: &str) {
        let mut label: String = reason
            .chars()
            .take_while(|c| *c != ':')
            .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '_')
            .take(40)
            .collect();
        if label.is_empty() {
            label = "other".to_owned();
        }
        self.failed
            .get_or_create(&PushFailureLabel {
                provider,
                reason: label,
            })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointOutcomeLabel {
    pub endpoint: String,
    pub outcome: &'static str,
}

/// The webhooks' metrics (`beckon_webhook_*`), kept by `webhooks` and
/// registered with the others when an endpoint is configured.
#[derive(Clone)]
pub struct WebhookMetrics {
    /// Events by endpoint and outcome: `delivered`, `failed` (given up),
    /// `dropped` (the queue was full, or the server stopped first).
    pub events: Family<EndpointOutcomeLabel, Counter>,
    /// Attempts by endpoint and outcome: `ok`, `error` (a non-2xx answer,
    /// a timeout, no connection).
    pub attempts: Family<EndpointOutcomeLabel, Counter>,
    /// Seconds from the event to its delivery.
    pub latency: Family<EndpointLabel, Histogram>,
    /// Events waiting per endpoint.
    pub queue_depth: Family<EndpointLabel, Gauge>,
}

impl Default for WebhookMetrics {
    fn default() -> WebhookMetrics {
        WebhookMetrics {
            events: Family::default(),
            attempts: Family::default(),
            latency: Family::new_with_constructor(|| {
                // 1 ms .. ~59 s
                Histogram::new(exponential_buckets(0.001, 3.0, 11))
            }),
            queue_depth: Family::default(),
        }
    }
}

impl WebhookMetrics {
    pub fn count_event(&self, endpoint: &str, outcome: &'static str) {
        self.count_event_by(endpoint, outcome, 1);
    }

    pub fn count_event_by(&self, endpoint: &str, outcome: &'static str, by: u64) {
        self.events
            .get_or_create(&EndpointOutcomeLabel {
                endpoint: endpoint.to_owned(),
                outcome,
            })
            .inc_by(by);
    }

    pub fn count_attempt(&self, endpoint: &str, outcome: &'static str) {
        self.attempts
            .get_or_create(&EndpointOutcomeLabel {
                endpoint: endpoint.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn depth(&self, endpoint: &str) -> Gauge {
        self.queue_depth
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_owned(),
            })
            .clone()
    }
}

pub struct Metrics {
    registry: Registry,
    pub connections_opened: Counter,
    pub connections_open: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Admitted connections not logged in yet.
    pub connections_pending: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Connections refused or cut, by why.
    pub connections_dropped: Family<ResultLabel, Counter>,
    pub logins: Family<ResultLabel, Counter>,
    pub sessions_live: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Invitations created, and invitees reaching each final state.
    pub invitations: Family<OutcomeLabel, Counter>,
    pub requests: Family<OpLabel, Counter>,
    /// Server API answers by route and HTTP status.
    pub api_requests: Family<ApiLabel, Counter>,
    pub request_errors: Family<OpLabel, Counter>,
    /// Seconds from a request's arrival to its result being queued.
    pub request_seconds: Family<OpLabel, Histogram>,
    pub pushes: Counter,
    pub rate_limited: Counter,
    pub protocol_errors: Counter,
    pub outbox_overflows: Counter,
    /// Failed accepts (out of descriptors and the like).
    pub accept_errors: Counter,
    /// Sends refused because the user had `max_open_invitations` open.
    pub quota_refused: Counter,
    pub encode_failures: Counter<u64, AtomicU64>,
    /// Read buffers a large frame had grown, given back.
    pub read_buffers_released: Counter,
    /// Heap trims after read buffers were released (`heap`).
    pub heap_trims: Counter,
}

impl Metrics {
    /// Adds the store's metrics (`beckon_store_*`).
    pub fn register_store(&mut self, store: &crate::store::StoreMetrics) {
        let registry = &mut self.registry;
        registry.register(
            "store_write_seconds",
            "Seconds one group commit of the store took",
            store.write_seconds.clone(),
        );
        registry.register(
            "store_batch_changes",
            "Invitation changes written in one group commit",
            store.batch_changes.clone(),
        );
        registry.register(
            "store_bytes",
            "Bytes of the store's database and write-ahead log",
            store.db_bytes.clone(),
        );
        registry.register(
            "store_write_failures",
            "Group commits that failed (each is tried again)",
            store.write_failures.clone(),
        );
        registry.register(
            "store_recovery_seconds",
            "Seconds the last start took to read and restore the store",
            store.recovery_seconds.clone(),
        );
        registry.register(
            "store_recovered_invitations",
            "Invitations the last start restored (open, timed out at start, or retained)",
            store.recovered_invitations.clone(),
        );
    }

    /// Adds the push providers' metrics (`beckon_push_*`).
    pub fn register_push(&mut self, push: &PushMetrics) {
        let registry = &mut self.registry;
        registry.register(
            "push_sent",
            "Pushes a provider accepted, by target provider",
            push.sent.clone(),
        );
        registry.register(
            "push_failed",
            "Pushes that failed for good, by provider and reason",
            push.failed.clone(),
        );
        registry.register(
            "push_latency_seconds",
            "Seconds from a push being queued to the provider's final answer",
            push.latency.clone(),
        );
        registry.register(
            "push_queue_depth",
            "Pushes waiting in a provider's queue",
            push.queue_depth.clone(),
        );
        registry.register(
            "push_dropped",
            "Pushes refused because the provider's queue was full",
            push.dropped.clone(),
        );
        registry.register(
            "push_retries",
            "Push attempts retried (429, 5xx, timeout, lost connection)",
            push.retries.clone(),
        );
    }

    /// Adds the webhooks' metrics (`beckon_webhook_*`).
    pub fn register_webhooks(&mut self, webhooks: &WebhookMetrics) {
        let registry = &mut self.registry;
        registry.register(
            "webhook_events",
            "Webhook events by endpoint and outcome (delivered, failed, dropped)",
            webhooks.events.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by endpoint and outcome (ok, error)",
            webhooks.attempts.clone(),
        );
        registry.register(
            "webhook_latency_seconds",
            "Seconds from an event to its delivery",
            webhooks.latency.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook events queued or being delivered, per endpoint",
            webhooks.queue_depth.clone(),
        );
    }

    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            connections_opened: Counter::default(),
            connections_open: Gauge::default(),
            connections_pending: Gauge::default(),
            connections_dropped: Family::default(),
            logins: Family::default(),
            sessions_live: Gauge::default(),
            invitations: Family::default(),
            requests: Family::default(),
            api_requests: Family::default(),
            request_errors: Family::default(),
            request_seconds: Family::new_with_constructor(|| {
                // 10 µs .. ~0.6 s
                Histogram::new(exponential_buckets(0.00001, 3.0, 11))
            }),
            pushes: Counter::default(),
            rate_limited: Counter::default(),
            protocol_errors: Counter::default(),
            outbox_overflows: Counter::default(),
            accept_errors: Counter::default(),
            quota_refused: Counter::default(),
            encode_failures: Counter::default(),
            read_buffers_released: Counter::default(),
            heap_trims: Counter::default(),
            registry: Registry::with_prefix("beckon"),
        };
        metrics.registry.register(
            "connections_opened",
            "WebSocket connections accepted",
            metrics.connections_opened.clone(),
        );
        metrics.registry.register(
            "connections_open",
            "WebSocket connections open now",
            metrics.connections_open.clone(),
        );
        metrics.registry.register(
            "connections_pending",
            "Admitted connections not logged in yet",
            metrics.connections_pending.clone(),
        );
        metrics.registry.register(
            "connections_dropped",
            "Connections refused or cut by the server, by reason",
            metrics.connections_dropped.clone(),
        );
        metrics
            .registry
            .register("logins", "Login attempts by result", metrics.logins.clone());
        metrics.registry.register(
            "sessions_live",
            "Sessions attached or within their grace period",
            metrics.sessions_live.clone(),
        );
        metrics.registry.register(
            "invitations",
            "Invitations created (outcome=created) and invitees reaching a final state",
            metrics.invitations.clone(),
        );
        metrics.registry.register(
            "requests",
            "Requests by operation",
            metrics.requests.clone(),
        );
        metrics.registry.register(
            "api_requests",
            "Server API answers by route and HTTP status",
            metrics.api_requests.clone(),
        );
        metrics.registry.register(
            "request_errors",
            "Requests answered with an error, by operation",
            metrics.request_errors.clone(),
        );
        metrics.registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its result",
            metrics.request_seconds.clone(),
        );
        metrics.registry.register(
            "pushes",
            "Events pushed to sessions",
            metrics.pushes.clone(),
        );
        metrics.registry.register(
            "rate_limited",
            "Frames over a connection's rate limit",
            metrics.rate_limited.clone(),
        );
        metrics.registry.register(
            "protocol_errors",
            "Frames that could not be decoded or were out of place",
            metrics.protocol_errors.clone(),
        );
        metrics.registry.register(
            "outbox_overflows",
            "Sessions that lost unacknowledged frames (they cannot be resumed)",
            metrics.outbox_overflows.clone(),
        );
        metrics.registry.register(
            "accept_errors",
            "Accepts that failed (out of file descriptors and the like)",
            metrics.accept_errors.clone(),
        );
        metrics.registry.register(
            "quota_refused",
            "Sends refused: the user had max_open_invitations open",
            metrics.quota_refused.clone(),
        );
        metrics.registry.register(
            "encode_failures",
            "Frames that could not be encoded (a bug)",
            metrics.encode_failures.clone(),
        );
        metrics.registry.register(
            "read_buffers_released",
            "Connections whose read buffer, grown for a large frame, was given back",
            metrics.read_buffers_released.clone(),
        );
        metrics.registry.register(
            "heap_trims",
            "Times free heap pages were handed back to the system after read buffers were released",
            metrics.heap_trims.clone(),
        );
        metrics
    }

    pub fn observe(&self, op: &'static str, elapsed: Duration, failed: bool) {
        let label = OpLabel { op };
        self.requests.get_or_create(&label).inc();
        if failed {
            self.request_errors.get_or_create(&label).inc();
        }
        self.request_seconds
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    pub fn count_outcome(&self, outcome: &'static str) {
        self.invitations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn count_drop(&self, result: &'static str) {
        self.connections_dropped
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn count_login(&self, result: &'static str) {
        self.logins.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text = "# metrics could not be encoded\n".into();
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
