//! Push delivery (docs/PUSH.md): the hub's [`PushOutlet`] for beckon-server,
//! with a provider per configured section of `[push]`: [`apns`] (HTTP/2,
//! token auth), [`fcm`] (HTTP v1, a service account) and [`webhook`] (a
//! signed POST to the app's backend).
//!
//! The hub calls [`PushOutlet::push`] with an invitation locked, so `push`
//! only queues ([`queue`]): each provider has a bounded queue and a bounded
//! number of requests in flight, a job waits until its change is durable,
//! and retries back off while the invitee still rings.

pub mod apns;
pub mod fcm;
pub mod http;
mod jwt;
mod queue;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::{PushJob, PushMessage, PushOutlet, PushResult, Ring};
use beckon::protocol::{DeviceId, PushProvider, PushTarget, UserId};
use serde_json::json;
use tokio::runtime::Handle;

use crate::config::PushConfig;
use crate::metrics::PushMetrics;
use crate::store::DurableGate;
use crate::ConfigError;

pub use queue::Tuning;

/// Wall-clock time for the providers, injectable so token lifetimes,
/// deadlines and retry waits can be tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds.
    fn now_ms(&self) -> u64;

    /// Waits `wait` on this clock (a retry's backoff).
    fn sleep(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(wait))
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock tests move by hand: its sleeps end when it is moved past them.
#[derive(Clone)]
pub struct ManualClock(Arc<ManualState>);

struct ManualState {
    now: tokio::sync::watch::Sender<u64>,
    /// The wake times of the sleeps under way (one entry each).
    sleeping: parking_lot::Mutex<Vec<u64>>,
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::at(0)
    }
}

impl ManualClock {
    pub fn at(now_ms: u64) -> ManualClock {
        ManualClock(Arc::new(ManualState {
            now: tokio::sync::watch::Sender::new(now_ms),
            sleeping: parking_lot::Mutex::new(Vec::new()),
        }))
    }
    pub fn set(&self, now_ms: u64) {
        self.0.now.send_replace(now_ms);
    }
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.now.send_modify(|now| *now = now.saturating_add(by));
    }
    /// The wake times (Unix ms) of the sleeps under way on this clock, in
    /// the order they started.
    pub fn sleeping(&self) -> Vec<u64> {
        self.0.sleeping.lock().clone()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.0.now.borrow()
    }

    fn sleep(&self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let state = self.0.clone();
        let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let wake = self.now_ms().saturating_add(wait);
        state.sleeping.lock().push(wake);
        /// Takes the sleep off the list however it ends.
        struct Listed(Arc<ManualState>, u64);
        impl Drop for Listed {
            fn drop(&mut self) {
                let mut sleeping = self.0.sleeping.lock();
                if let Some(at) = sleeping.iter().position(|w| *w == self.1) {
                    sleeping.remove(at);
                }
            }
        }
        let listed = Listed(state.clone(), wake);
        let mut now = state.now.subscribe();
        Box::pin(async move {
            let _listed = listed;
            // The sender lives as long as `state`, which this future holds.
            let _ = now.wait_for(|now| *now >= wake).await;
        })
    }
}

/// One push as a provider sends it.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub user: UserId,
    pub device: DeviceId,
    pub target: PushTarget,
    pub message: PushMessage,
    /// Unique per job, the same on its retries (the webhook's `webhook-id`).
    pub id: String,
}

impl Outgoing {
    pub fn new(user: UserId, device: DeviceId, target: PushTarget, message: PushMessage) -> Self {
        Outgoing {
            user,
            device,
            target,
            message,
            id: format!("msg_{:032x}", rand::random::<u128>()),
        }
    }
}

/// How one attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Final: report it.
    Done(PushResult),
    /// Worth trying again later (429, 5xx, no connection): `after` is the
    /// provider's Retry-After.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

impl Attempt {
    pub fn failed(reason: impl Into<String>) -> Attempt {
        Attempt::Done(PushResult::Failed {
            reason: reason.into(),
            token_invalid: false,
        })
    }
    pub fn token_invalid(reason: impl Into<String>) -> Attempt {
        Attempt::Done(PushResult::Failed {
            reason: reason.into(),
            token_invalid: true,
        })
    }
}

/// Seconds a stop push stays deliverable (APNs expiration, FCM ttl): long
/// enough for a phone that was off to lose the ring's notification.
pub const STOP_TTL_SECS: u64 = 3600;

/// How much of a ring a push carries: the whole invitation when it fits
/// the provider's size limit, else less (docs/PUSH.md, "Size limits"). A
/// ring that is not whole says `"truncated": true`: the app gets the rest
/// when it connects (the invitation arrives by sync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    Whole,
    /// Without `extended_data` and `payload`.
    NoData,
    /// Also without `invitees`, `message` and `resource_id`, and the
    /// `title` cut to [`LEAST_TITLE`] characters.
    Least,
}

impl Fit {
    /// From the most to the least.
    pub const ALL: [Fit; 3] = [Fit::Whole, Fit::NoData, Fit::Least];
}

/// The characters of `title` a [`Fit::Least`] ring keeps.
pub const LEAST_TITLE: usize = 64;

/// `text`'s first `chars` characters.
pub(crate) fn cut(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The invitation as every provider carries it: APNs' `beckon` object, the
/// webhook's `invitation`; FCM's data map is the same fields as strings.
pub fn invitation_object(message: &PushMessage, now_ms: u64) -> serde_json::Value {
    invitation_object_fit(message, now_ms, Fit::Whole)
}

/// [`invitation_object`], of a ring carrying as much as `fit` says.
pub fn invitation_object_fit(message: &PushMessage, now_ms: u64, fit: Fit) -> serde_json::Value {
    match message {
        PushMessage::Ring(ring) => {
            let (title, text, payload, resource_id) = notification_fields(ring);
            let mut object = json!({
                "type": "ring",
                "invitation_id": ring.invitation_id,
                "inviter": ring.inviter,
                "invitees": &*ring.invitees,
                "extended_data": &*ring.extended_data,
                "seconds_left": ring.seconds_left(now_ms),
                "title": title,
                "message": text,
                "payload": payload,
                "resource_id": resource_id,
                "truncated": fit != Fit::Whole,
            });
            if fit != Fit::Whole {
                object["extended_data"] = json!("");
                object["payload"] = json!("");
            }
            if fit == Fit::Least {
                object["invitees"] = json!([]);
                object["message"] = json!("");
                object["resource_id"] = json!("");
                object["title"] = json!(cut(title, LEAST_TITLE));
            }
            object
        }
        PushMessage::Stop {
            invitation_id,
            inviter,
            state,
        } => json!({
            "type": "stop",
            "invitation_id": invitation_id,
            "inviter": inviter,
            "state": state,
        }),
    }
}

/// title, message, payload, resource_id ("" when the send had no
/// notification config).
pub(crate) fn notification_fields(ring: &Ring) -> (&str, &str, &str, &str) {
    match &ring.notification {
        Some(n) => (&n.title, &n.message, &n.payload, &n.resource_id),
        None => ("", "", "", ""),
    }
}

/// A configured provider.
pub(crate) enum Provider {
    Apns(apns::Apns),
    Fcm(fcm::Fcm),
    Webhook(webhook::Webhook),
}

impl Provider {
    async fn send(&self, out: &Outgoing) -> Attempt {
        match self {
            Provider::Apns(p) => p.send(out).await,
            Provider::Fcm(p) => p.send(out).await,
            Provider::Webhook(p) => p.send(out).await,
        }
    }

    fn lane_name(&self) -> &'static str {
        match self {
            Provider::Apns(_) => "apns",
            Provider::Fcm(_) => "fcm",
            Provider::Webhook(_) => "webhook",
        }
    }

    fn serves(&self, provider: PushProvider) -> bool {
        match self {
            Provider::Apns(_) => provider.is_apns(),
            Provider::Fcm(_) => provider == PushProvider::Fcm,
            Provider::Webhook(_) => provider == PushProvider::Webhook,
        }
    }
}

/// The outlet: one lane (queue and workers) per configured provider.
pub struct PushService {
    lanes: Vec<queue::Lane>,
    shutdown: tokio::sync::watch::Sender<bool>,
    workers: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    http: Arc<http::HttpClient>,
}

impl PushService {
    /// Builds the providers `config` names, checking their files, keys and
    /// URLs (a message naming the file or key and the cause otherwise), and
    /// starts their workers on `runtime`. None when no provider is
    /// configured.
    pub fn start(
        config: &PushConfig,
        gate: DurableGate,
        metrics: PushMetrics,
        runtime: &Handle,
    ) -> Result<Option<Arc<PushService>>, ConfigError> {
        Self::start_with(
            config,
            gate,
            metrics,
            runtime,
            Arc::new(SystemClock),
            Tuning::from_config(config),
        )
    }

    /// [`PushService::start`] on a given clock and retry timing (tests).
    pub fn start_with(
        config: &PushConfig,
        gate: DurableGate,
        metrics: PushMetrics,
        runtime: &Handle,
        clock: Arc<dyn Clock>,
        tuning: Tuning,
    ) -> Result<Option<Arc<PushService>>, ConfigError> {
        if !config.any_provider() {
            return Ok(None);
        }
        let http = Arc::new(
            http::HttpClient::new(config.extra_root_ca.as_deref(), "push").map_err(ConfigError)?,
        );
        let mut providers = Vec::new();
        if let Some(apns) = &config.apns {
            let settings = apns::ApnsSettings::load(apns).map_err(ConfigError)?;
            providers.push(Provider::Apns(apns::Apns::new(
                settings,
                http.clone(),
                clock.clone(),
            )));
        }
        if let Some(fcm) = &config.fcm {
            let settings = fcm::FcmSettings::load(fcm).map_err(ConfigError)?;
            providers.push(Provider::Fcm(fcm::Fcm::new(
                settings,
                http.clone(),
                clock.clone(),
            )));
        }
        if let Some(webhook) = &config.webhook {
            let settings = webhook::WebhookSettings::load(webhook).map_err(ConfigError)?;
            providers.push(Provider::Webhook(webhook::Webhook::new(
                settings,
                http.clone(),
                clock.clone(),
            )));
        }
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let mut lanes = Vec::new();
        let mut workers = Vec::new();
        for provider in providers {
            let names: Vec<&str> = PushProvider::ALL
                .iter()
                .filter(|p| provider.serves(**p))
                .map(|p| p.name())
                .collect();
            tracing::info!(providers = ?names, "push: {} configured", provider.lane_name());
            let (lane, worker) = queue::Lane::start(
                provider,
                config,
                tuning.clone(),
                gate.clone(),
                metrics.clone(),
                clock.clone(),
                shutdown.subscribe(),
                runtime,
            );
            lanes.push(lane);
            workers.push(worker);
        }
        Ok(Some(Arc::new(PushService {
            lanes,
            shutdown,
            workers: parking_lot::Mutex::new(workers),
            http,
        })))
    }

    /// Stops taking jobs (a push from now on fails at once, "server
    /// shutting down") and lets the work under way end within `deadline`:
    /// attempts in flight finish, queued pushes get their attempt, nothing
    /// is retried. What is still under way at the deadline is dropped
    /// (reported failed, "dropped").
    pub async fn shutdown(&self, deadline: Duration) {
        let _ = self.shutdown.send(true);
        let workers = std::mem::take(&mut *self.workers.lock());
        crate::tasks::join_or_abort(workers, deadline).await;
        self.http.close_all();
    }
}

impl PushOutlet for PushService {
    fn supports(&self, provider: PushProvider) -> bool {
        self.lanes.iter().any(|lane| lane.serves(provider))
    }

    fn push(&self, job: PushJob) {
        match self.lanes.iter().find(|l| l.serves(job.target.provider)) {
            Some(lane) => lane.enqueue(job),
            // The hub only pushes to targets it accepted; a target stored
            // before a provider was removed from the config ends here.
            None => queue::report_later(
                None,
                job.reporter,
                PushResult::Failed {
                    reason: "provider not configured".to_owned(),
                    token_invalid: false,
                },
            ),
        }
    }
}
