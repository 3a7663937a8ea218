//! `--spawn-server`: a beckon-server inside this process, on its own runtime, so
//! a loopback run needs nothing else started.

use std::net::SocketAddr;
use std::time::Duration;

use beckon_server::{RunningServer, ServerConfig};
use tokio::runtime::Runtime;

/// Starts a development-mode server (no secret) on 127.0.0.1 with any free
/// port, its rate limits raised out of the way, and returns it with its URL.
pub fn spawn(runtime: &Runtime) -> Result<(RunningServer, String), String> {
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        dev: true,
        messages_per_sec: 1_000_000,
        max_open_invitations: beckon::hub::HubConfig::OPEN_INVITATIONS_CEILING,
        messages_burst: 10_000_000,
        ..ServerConfig::default()
    };
    let server = runtime
        .block_on(beckon_server::start(config, None))
        .map_err(|e| format!("spawned server: {e}"))?;
    let url = format!("ws://{}", server.listen_addr);
    Ok((server, url))
}

pub fn stop(runtime: &Runtime, server: RunningServer) {
    runtime.block_on(server.shutdown(Duration::from_secs(5)));
}
