//! `--spawn-server`: a beckon-server inside this process, on its own runtime, so
//! a loopback run needs nothing else started.

use std::net::SocketAddr;
use std::time::Duration;

use std::path::PathBuf;

use beckon_server::config::{WebhookEndpointConfig, WebhooksConfig};
use beckon_server::{Durability, RunningServer, ServerConfig, StoreKind};
use tokio::runtime::Runtime;

/// A spawned server, and the temporary data directory of its SQLite store.
pub struct Spawned {
    pub server: RunningServer,
    data_dir: Option<PathBuf>,
}

/// Starts a development-mode server (no secret) on 127.0.0.1 with any free
/// port, its rate limits raised out of the way, on `store` (SQLite in a
/// fresh temporary directory), and returns it with its URL.
pub fn spawn(
    runtime: &Runtime,
    store: StoreKind,
    durability: Durability,
    webhook: Option<SocketAddr>,
) -> Result<(Spawned, String), String> {
    let data_dir = (store == StoreKind::Sqlite)
        .then(|| std::env::temp_dir().join(format!("beckon-bench-{:016x}", rand::random::<u64>())));
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        messages_per_sec: 1_000_000,
        max_open_invitations: beckon::hub::HubConfig::OPEN_INVITATIONS_CEILING,
        messages_burst: 10_000_000,
        store,
        data_dir: data_dir.clone(),
        durability,
        webhooks: WebhooksConfig {
            endpoints: webhook
                .map(|addr| WebhookEndpointConfig {
                    name: Some("bench".into()),
                    url: format!("http://{addr}/events"),
                    secret: Some(format!("whsec_{}", "QmVja29uQmVuY2hTZWNyZXQxMjM0NTY=")),
                    secret_file: None,
                    events: vec!["*".into()],
                })
                .into_iter()
                .collect(),
            ..WebhooksConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = runtime
        .block_on(beckon_server::start(config, None))
        .map_err(|e| format!("spawned server: {e}"))?;
    let url = format!("ws://{}", server.listen_addr);
    Ok((Spawned { server, data_dir }, url))
}

pub fn stop(runtime: &Runtime, spawned: Spawned) {
    runtime.block_on(spawned.server.shutdown(Duration::from_secs(5)));
    if let Some(dir) = spawned.data_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Webhook events the server dropped (queue full), from its metrics.
pub fn webhooks_dropped(server: &RunningServer) -> u64 {
    let text = server.ctx.render_metrics();
    text.lines()
        .filter(|line| line.starts_with("beckon_webhook_events_total") && line.contains("dropped"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The spawned server's group commits, from its metrics: how many, and the
/// changes and seconds they summed to (`None` on a memory store).
pub fn store_commits(server: &RunningServer) -> Option<(f64, f64, f64)> {
    let text = server.ctx.render_metrics();
    let value = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let commits = value("beckon_store_write_seconds_count")?;
    let seconds = value("beckon_store_write_seconds_sum")?;
    let changes = value("beckon_store_batch_changes_sum")?;
    Some((commits, changes, seconds))
}
