//! `beckon-server`: the Beckon hub behind WebSocket (running it:
//! docs/OPERATIONS.md; protocol in docs/PROTOCOL.md). The same `Hub` as
//! `memory://`, so the two transports share every rule; this crate adds what a
//! network needs: authentication, sessions that survive a reconnect, limits,
//! heartbeats, metrics and graceful shutdown.
//!
//! - [`config`]: settings (TOML and flags);
//! - [`connection`]: one WebSocket connection from handshake to close;
//! - [`handler`]: requests to hub operations (no I/O);
//! - [`session`]: sessions between connections, one owner each: outbox, resume,
//!   grace period;
//! - [`listener`]: the listen backlog, admission (connection caps), refusals;
//! - [`store`]: where invitations are kept (SQLite in a data directory, or
//!   memory), and the gate frames wait at until their change is durable;
//! - [`push`]: rings for devices that are not connected, through APNs, FCM
//!   or a webhook ([`signing`] signs the webhooks);
//! - [`limiter`], [`metrics`], [`admin`], [`tls`]; `heap`: freed memory given
//!   back to the system;
//! - [`web`]: the web phone page (`--web`), off by default.

pub mod admin;
pub mod api;
pub mod cluster;
pub mod config;
pub mod connection;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod handler;
mod heap;
mod http;
pub mod limiter;
pub mod listener;
pub mod metrics;
pub mod push;
mod read_buffer;
pub mod session;
pub mod signing;
pub mod store;
mod tasks;
pub mod time;
pub mod tls;
mod upgrade;
pub mod web;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::Hub;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::{ConfigError, Durability, LogFormat, ServerConfig, StoreKind};
use metrics::{Metrics, PushMetrics, WebhookMetrics};
use push::PushService;
use session::Sessions;
use store::{DurableGate, OpenedStore, RedisStore, SqliteStore, StoreMetrics};
use webhooks::WebhookService;

/// What every connection shares.
pub struct ServerContext {
    pub config: ServerConfig,
    pub hub: Arc<Hub>,
    pub sessions: Sessions,
    pub metrics: Arc<Metrics>,
    /// Who may connect: connections in total, per address, not logged in.
    pub admission: Arc<listener::Admission>,
    /// Frames wait here until the changes they tell of are durable.
    pub durable: DurableGate,
    /// The SQLite or Redis store, when the server keeps one (closed at
    /// shutdown).
    pub store: Option<OpenedStore>,
    /// The push providers, when any is configured (stopped at shutdown).
    pub push: Option<Arc<PushService>>,
    /// The webhooks, when an endpoint is configured (stopped at shutdown).
    pub webhooks: Option<Arc<WebhookService>>,
    /// The other nodes, on a Redis store.
    cluster: std::sync::OnceLock<Arc<cluster::Cluster>>,
    shutdown: watch::Sender<bool>,
    /// Hub totals already added to the metrics' counters.
    reported: parking_lot::Mutex<beckon::hub::StatsSnapshot>,
}

impl ServerContext {
    /// A context on a hub that keeps nothing beyond its own maps.
    pub fn new(config: ServerConfig, hub: Arc<Hub>) -> Arc<ServerContext> {
        Self::with_store(config, hub, None)
    }

    /// A context on a hub that keeps its invitations in `store`.
    pub fn with_store(
        config: ServerConfig,
        hub: Arc<Hub>,
        store: Option<OpenedStore>,
    ) -> Arc<ServerContext> {
        Self::with_push(config, hub, store, None)
    }

    /// A context whose hub pushes through `push` (its metrics registered).
    pub fn with_push(
        config: ServerConfig,
        hub: Arc<Hub>,
        store: Option<OpenedStore>,
        push: Option<(Arc<PushService>, PushMetrics)>,
    ) -> Arc<ServerContext> {
        Self::with_services(config, hub, store, push, None)
    }

    /// A context whose hub pushes through `push` and tells `webhooks` (their
    /// metrics registered).
    pub fn with_services(
        config: ServerConfig,
        hub: Arc<Hub>,
        store: Option<OpenedStore>,
        push: Push,
        webhooks: Webhooks,
    ) -> Arc<ServerContext> {
        let admission = listener::Admission::new(
            config.max_connections,
            config.max_connections_per_ip,
            config.max_pending_logins,
        );
        let mut metrics = Metrics::new();
        let durable = match &store {
            Some(store) => {
                metrics.register_store(store.metrics());
                store.gate()
            }
            None => DurableGate::default(),
        };
        let push = push.map(|(push, push_metrics)| {
            metrics.register_push(&push_metrics);
            push
        });
        let webhooks = webhooks.map(|(webhooks, webhook_metrics)| {
            metrics.register_webhooks(&webhook_metrics);
            webhooks
        });
        Arc::new(ServerContext {
            config,
            hub,
            sessions: Sessions::default(),
            metrics: Arc::new(metrics),
            admission,
            durable,
            store,
            push,
            webhooks,
            cluster: std::sync::OnceLock::new(),
            shutdown: watch::channel(false).0,
            reported: Default::default(),
        })
    }

    /// The other nodes of the deployment, on a Redis store.
    pub fn cluster(&self) -> Option<&Arc<cluster::Cluster>> {
        self.cluster.get()
    }

    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The Prometheus text for `/metrics`, with the hub's totals brought up to date.
    pub fn render_metrics(&self) -> String {
        let pending = i64::try_from(self.admission.pending()).unwrap_or(i64::MAX);
        self.metrics.connections_pending.set(pending);
        let now = self.hub.stats();
        {
            let mut reported = self.reported.lock();
            let outcomes = [
                ("created", now.created, reported.created),
                ("accepted", now.accepted, reported.accepted),
                ("refused", now.refused, reported.refused),
                ("cancelled", now.cancelled, reported.cancelled),
                ("timed_out", now.timed_out, reported.timed_out),
            ];
            for (outcome, total, before) in outcomes {
                self.metrics
                    .invitations
                    .get_or_create(&metrics::OutcomeLabel { outcome })
                    .inc_by(total.saturating_sub(before));
            }
            self.metrics
                .quota_refused
                .inc_by(now.quota_refused.saturating_sub(reported.quota_refused));
            *reported = now;
        }
        self.metrics.render()
    }
}

/// A server that is running; `shutdown` stops it gracefully.
pub struct RunningServer {
    pub ctx: Arc<ServerContext>,
    pub listen_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    /// The server API's address, when `[api] listen` is set.
    pub api_addr: Option<SocketAddr>,
    /// The web phone page's address, when `[web] listen` is set.
    pub web_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
}

/// Binds the listeners and starts serving on the current tokio runtime, the
/// hub's timers included.
pub async fn start(
    config: ServerConfig,
    secret: Option<Vec<u8>>,
) -> Result<RunningServer, ConfigError> {
    config.validate()?;
    // The hub's timers run on the runtime the server serves on (not on the
    // library's own, which would be a second runtime just for them).
    let runtime = Handle::try_current().map_err(|e| ConfigError(format!("hub: {e}")))?;
    let (hub, store, push, webhooks) = open_hub(&config, secret, &runtime)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let mut config = config;
    // Clients take at most what the descriptors allow, less a reserve, so
    // the server refuses cleanly instead of failing to accept.
    let fds = listener::raise_fd_limit();
    let room = usize::try_from(fds.saturating_sub(listener::FD_RESERVE)).unwrap_or(usize::MAX);
    if config.max_connections > room {
        tracing::info!(
            max_connections = config.max_connections,
            open_files = fds,
            "max_connections lowered to {room} to stay within the open-file limit"
        );
        config.max_connections = room.max(1);
    }
    let listener = listener::bind(config.listen, config.listen_backlog)
        .map_err(|e| ConfigError(format!("listen {}: {e}", config.listen)))?;
    let listen_addr = listener
        .local_addr()
        .map_err(|e| ConfigError(format!("listen: {e}")))?;
    let admin = match config.admin {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| ConfigError(format!("admin {addr}: {e}")))?,
        ),
        None => None,
    };
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    let web = match config.web.listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| ConfigError(format!("web.listen {addr}: {e}")))?,
        ),
        None => None,
    };
    let web_addr = web.as_ref().and_then(|l| l.local_addr().ok());
    let redis_config = config.redis.clone();
    let ctx = ServerContext::with_services(config, hub, store, push, webhooks);
    if let Some(OpenedStore::Redis(store)) = &ctx.store {
        let cluster = cluster::Cluster::start(&ctx, store, &redis_config).await?;
        let _ = ctx.cluster.set(cluster);
    }
    let api = api::bind(&ctx)?;
    let api_addr = api
        .as_ref()
        .and_then(|(listener, _)| api::local_addr(listener));
    let mut tasks = JoinSet::new();
    tasks.spawn(listener::accept_loop(ctx.clone(), listener, tls));
    if let Some((listener, keys)) = api {
        tasks.spawn(api::serve(ctx.clone(), listener, keys));
    }
    tasks.spawn(heap::trim_loop(ctx.clone()));
    if let Some(admin) = admin {
        admin::spawn(ctx.clone(), admin).map_err(|e| ConfigError(format!("admin: {e}")))?;
    }
    if let Some(web) = web {
        web::spawn(ctx.clone(), web, listen_addr).map_err(|e| ConfigError(format!("web: {e}")))?;
    }
    tracing::info!(%listen_addr, admin = ?admin_addr, api = ?api_addr, web = ?web_addr, "beckon-server listening");
    if let Some(web_addr) = web_addr {
        tracing::info!(
            "web phone page: http://{web_addr}/ (for trying Beckon; open it in two tabs)"
        );
    }
    Ok(RunningServer {
        ctx,
        listen_addr,
        admin_addr,
        api_addr,
        web_addr,
        tasks,
    })
}

/// The push service and its metrics, when a provider is configured.
type Push = Option<(Arc<PushService>, PushMetrics)>;

/// The webhooks and their metrics, when an endpoint is configured.
type Webhooks = Option<(Arc<WebhookService>, WebhookMetrics)>;

/// The hub, its SQLite or Redis store (if any), its push service and its
/// webhooks (if any).
type OpenedHub = (Arc<Hub>, Option<OpenedStore>, Push, Webhooks);

/// The push providers the configuration names (refused with a message
/// naming the file or setting if one cannot be used), sending once `gate`
/// says a change is durable.
fn start_push(
    config: &ServerConfig,
    gate: DurableGate,
    runtime: &Handle,
) -> Result<Push, ConfigError> {
    let metrics = PushMetrics::default();
    let push = PushService::start(&config.push, gate, metrics.clone(), runtime)?;
    Ok(push.map(|push| (push, metrics)))
}

/// The webhook endpoints the configuration names (refused with a message
/// naming the setting if one cannot be used), sending once `gate` says a
/// change is durable.
fn start_webhooks(
    config: &ServerConfig,
    gate: DurableGate,
    runtime: &Handle,
) -> Result<Webhooks, ConfigError> {
    let metrics = WebhookMetrics::default();
    let webhooks = WebhookService::start(&config.webhooks, gate, metrics.clone(), runtime)?;
    Ok(webhooks.map(|webhooks| (webhooks, metrics)))
}

fn outlets(push: &Push, webhooks: &Webhooks) -> beckon::hub::Outlets {
    beckon::hub::Outlets {
        push: push
            .as_ref()
            .map(|(push, _)| push.clone() as Arc<dyn beckon::hub::PushOutlet>),
        observer: webhooks
            .as_ref()
            .map(|(webhooks, _)| webhooks.clone() as Arc<dyn beckon::hub::HubObserver>),
    }
}

/// The hub, on the store the configuration asks for: a SQLite store is
/// opened (and refused with a clear message if it cannot be) and what it
/// kept is restored; with the push providers, when any is configured.
fn open_hub(
    config: &ServerConfig,
    secret: Option<Vec<u8>>,
    runtime: &Handle,
) -> Result<OpenedHub, ConfigError> {
    let hub_config = config.hub_config(secret);
    let hub_error = |e: beckon::Error| ConfigError(format!("hub: {}", e.message));
    match config.store {
        StoreKind::Memory => {
            tracing::info!("store: memory (invitations are lost when the server stops)");
            // Nothing to wait for: a memory store's changes are "durable"
            // at once.
            let push = start_push(config, DurableGate::default(), runtime)?;
            let webhooks = start_webhooks(config, DurableGate::default(), runtime)?;
            if push.is_none() && webhooks.is_none() {
                return Ok((
                    Hub::new(hub_config, runtime).map_err(hub_error)?,
                    None,
                    None,
                    None,
                ));
            }
            let grace = Duration::from_secs(config.grace_secs);
            let store = Arc::new(beckon::hub::MemoryStore);
            let outlets = outlets(&push, &webhooks);
            let (hub, _nothing) =
                Hub::with_store(hub_config, runtime, store, grace, outlets).map_err(hub_error)?;
            Ok((hub, None, push, webhooks))
        }
        StoreKind::Sqlite => {
            let dir = config
                .data_dir
                .clone()
                .unwrap_or_else(store::default_data_dir);
            let started = std::time::Instant::now();
            let metrics = StoreMetrics::default();
            let store = SqliteStore::open(&dir, config.durability, metrics.clone())
                .map_err(|e| ConfigError(e.to_string()))?;
            let read = started.elapsed();
            let (hub, push, webhooks) = restore(
                config,
                hub_config,
                runtime,
                store.clone(),
                store.gate(),
                &metrics,
                started,
                format_args!(
                    "store: sqlite {} (durability {:?}, read in {} ms)",
                    store.path().display(),
                    config.durability,
                    read.as_millis()
                ),
            )?;
            Ok((hub, Some(OpenedStore::Sqlite(store)), push, webhooks))
        }
        StoreKind::Redis => {
            let started = std::time::Instant::now();
            let metrics = StoreMetrics::default();
            let history = store::redis::HistoryLimits {
                per_user: config.history_per_user,
                keep: std::time::Duration::from_secs(config.history_secs),
            };
            let store = RedisStore::open(&config.redis, history, metrics.clone())
                .map_err(|e| ConfigError(e.to_string()))?;
            let read = started.elapsed();
            let (hub, push, webhooks) = restore(
                config,
                hub_config,
                runtime,
                store.clone(),
                store.gate(),
                &metrics,
                started,
                format_args!(
                    "store: redis {} as node {} (epoch {}, read in {} ms)",
                    config::redact_url(&config.redis.url),
                    store.node(),
                    store.epoch(),
                    read.as_millis()
                ),
            )?;
            Ok((hub, Some(OpenedStore::Redis(store)), push, webhooks))
        }
    }
}

/// A hub restored from `store` (with the push providers, sending once
/// `gate` says a change is durable); the recovery's figures go to the
/// metrics and the log.
#[allow(clippy::too_many_arguments)]
fn restore(
    config: &ServerConfig,
    hub_config: beckon::hub::HubConfig,
    runtime: &Handle,
    store: Arc<dyn beckon::hub::Store>,
    gate: DurableGate,
    metrics: &StoreMetrics,
    started: std::time::Instant,
    what: std::fmt::Arguments<'_>,
) -> Result<(Arc<Hub>, Push, Webhooks), ConfigError> {
    let grace = Duration::from_secs(config.grace_secs);
    let push = start_push(config, gate.clone(), runtime)?;
    let webhooks = start_webhooks(config, gate, runtime)?;
    let outlets = outlets(&push, &webhooks);
    let (hub, recovery) = Hub::with_store(hub_config, runtime, store, grace, outlets)
        .map_err(|e| ConfigError(format!("hub: {}", e.message)))?;
    let took = started.elapsed();
    metrics.recovery_seconds.set(took.as_secs_f64());
    // Those that timed out at start are restored too (and retained).
    let restored = recovery.open + recovery.timed_out + recovery.retained;
    metrics
        .recovered_invitations
        .set(i64::try_from(restored).unwrap_or(i64::MAX));
    tracing::info!(
        open = recovery.open,
        timed_out_at_start = recovery.timed_out,
        retained = recovery.retained,
        forgotten = recovery.forgotten,
        recovery_ms = took.as_millis() as u64,
        "{what}"
    );
    Ok((hub, push, webhooks))
}

impl Drop for RunningServer {
    /// A server dropped without `shutdown` still stops its admin thread.
    fn drop(&mut self) {
        let _ = self.ctx.shutdown.send(true);
    }
}

impl RunningServer {
    /// Stops accepting, tells every client the server is going away, closes
    /// their connections and waits (at most `deadline`) for them to finish.
    pub async fn shutdown(mut self, deadline: Duration) {
        tracing::info!("shutting down");
        let _ = self.ctx.shutdown.send(true);
        let _ = tokio::time::timeout(deadline, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        // Pushes under way get a moment to finish; retries end.
        if let Some(push) = self.ctx.push.clone() {
            push.shutdown(Duration::from_secs(2)).await;
        }
        // Queued events get one attempt each, within the same kind of
        // limit.
        if let Some(webhooks) = self.ctx.webhooks.clone() {
            webhooks.shutdown(Duration::from_secs(2)).await;
        }
        // What was answered is written; what comes after (sessions dropped
        // with the runtime) is not: the next start carries on from here.
        if let Some(store) = self.ctx.store.clone() {
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
        }
    }

    /// Resolves, with the reason, when the server must stop because of its
    /// store (a Redis node whose lease lapsed or was taken: what it holds
    /// may be another node's now). Never resolves otherwise.
    pub async fn fatal(&self) -> String {
        let Some(mut lost) = self.ctx.store.as_ref().and_then(OpenedStore::lost) else {
            return std::future::pending().await;
        };
        let why = match lost.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => return std::future::pending().await,
        };
        why
    }
}
