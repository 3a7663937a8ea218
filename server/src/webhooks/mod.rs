//! Webhooks to the app's backend (docs/WEBHOOKS.md): every invitation's
//! changes and every device's login and logout, as the hub tells its
//! observer, POSTed to each configured endpoint that wants them and signed
//! the Standard Webhooks way ([`crate::signing`], shared with the push
//! webhook).
//!
//! Delivery is at least once while the server runs: an event waits until
//! the change it tells of is durable, then is tried until its endpoint
//! answers 2xx, with exponential backoff, for `retry_for_secs`. Its id
//! (`webhook-id`) stays the same across attempts, so a receiver drops
//! repeats. Events of one invitation, or of one user's devices, go one after
//! the other in the order they happened; others go side by side
//! (`concurrency` lanes per endpoint). Each endpoint's queue is bounded:
//! past it events are dropped and counted (`beckon_webhook_events`,
//! outcome `dropped`). Queued events live in memory: a server that stops
//! delivers what it can within its shutdown deadline, and the rest is lost.

mod delivery;
pub mod event;

use std::sync::Arc;
use std::time::Duration;

use beckon::hub::{HubObserver, Observed};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, WebhooksConfig};
use crate::metrics::WebhookMetrics;
use crate::push::http::HttpClient;
use crate::store::DurableGate;
use delivery::{Endpoint, Tuning};
use event::Event;

/// The observer the server's hub tells, when an endpoint is configured.
pub struct WebhookService {
    endpoints: Vec<Arc<Endpoint>>,
    shutdown: watch::Sender<bool>,
    workers: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    http: Arc<HttpClient>,
}

impl WebhookService {
    /// Checks every endpoint (URL, secret, event filter; a message naming
    /// the setting otherwise) and starts their lanes on `runtime`. None when
    /// no endpoint is configured.
    pub fn start(
        config: &WebhooksConfig,
        gate: DurableGate,
        metrics: WebhookMetrics,
        runtime: &Handle,
    ) -> Result<Option<Arc<WebhookService>>, ConfigError> {
        if config.endpoints.is_empty() {
            return Ok(None);
        }
        let http = Arc::new(
            HttpClient::new(config.extra_root_ca.as_deref(), "webhooks").map_err(ConfigError)?,
        );
        let tuning = Tuning::from_config(config);
        let (shutdown, _) = watch::channel(false);
        let mut endpoints = Vec::new();
        let mut workers = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (index, endpoint) in config.endpoints.iter().enumerate() {
            let name = endpoint
                .name
                .clone()
                .unwrap_or_else(|| format!("endpoint-{}", index + 1));
            if !names.insert(name.clone()) {
                return Err(ConfigError(format!(
                    "webhooks.endpoint[{index}]: the name '{name}' is taken by another endpoint"
                )));
            }
            let (endpoint, lanes) = Endpoint::load(
                index,
                name,
                endpoint,
                &tuning,
                http.clone(),
                gate.clone(),
                metrics.clone(),
            )
            .map_err(ConfigError)?;
            tracing::info!(
                endpoint = %endpoint.name,
                url = %endpoint.url,
                "webhooks: endpoint configured"
            );
            for lane in lanes {
                workers.push(runtime.spawn(delivery::run_lane(
                    endpoint.clone(),
                    lane,
                    shutdown.subscribe(),
                )));
            }
            endpoints.push(endpoint);
        }
        Ok(Some(Arc::new(WebhookService {
            endpoints,
            shutdown,
            workers: parking_lot::Mutex::new(workers),
            http,
        })))
    }

    /// Stops taking events and lets the lanes deliver what is queued within
    /// `deadline`, one attempt each (no retry). What is left then is
    /// dropped (and counted).
    pub async fn shutdown(&self, deadline: Duration) {
        let _ = self.shutdown.send(true);
        let workers = std::mem::take(&mut *self.workers.lock());
        if !crate::tasks::join_or_abort(workers, deadline).await {
            for endpoint in &self.endpoints {
                endpoint.drop_the_rest();
            }
        }
        self.http.close_all();
    }
}

impl HubObserver for WebhookService {
    /// Runs under the hub's locks: builds the event once and queues it for
    /// each endpoint that wants it, never waiting.
    fn observe(&self, observed: Observed) {
        let kind = event::kind_of(&observed.event);
        if !self.endpoints.iter().any(|e| e.filter.wants(kind)) {
            return;
        }
        let stopping = *self.shutdown.borrow();
        let event = Arc::new(Event::new(observed));
        for endpoint in &self.endpoints {
            if endpoint.filter.wants(kind) {
                endpoint.enqueue(event.clone(), stopping);
            }
        }
    }
}
