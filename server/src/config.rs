//! The server's settings: a TOML file, flags over it. Every field has a default;
//! `ServerConfig::validate` refuses values outside their bounds at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use beckon::hub::HubConfig;
use beckon::protocol::Limits;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where WebSocket clients connect.
    pub listen: SocketAddr,
    /// Connections the kernel queues before they are accepted (a burst of
    /// connects beyond it waits for a SYN retransmit, a second or more).
    pub listen_backlog: u32,
    /// Connections open at once; more are refused (HTTP 503). Lowered at
    /// start to what the open-file limit allows.
    pub max_connections: usize,
    /// Connections open at once from one IP address; 0: no cap (behind a
    /// load balancer every client has the balancer's address).
    pub max_connections_per_ip: usize,
    /// Connections not logged in yet (handshake or hello under way).
    pub max_pending_logins: usize,
    /// `/metrics` and `/healthz`; none when absent.
    pub admin: Option<SocketAddr>,
    /// PEM certificate chain and private key: with both, clients use `wss://`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The token secret (at least 16 bytes). Prefer `secret_file` or the
    /// `BECKON_SECRET` environment variable to keep it out of process lists.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Development mode: no secret, any token is accepted. Insecure.
    pub dev: bool,
    pub limits: Limits,
    /// How long a dropped session waits for its client before the user's
    /// pending invitations are cancelled (rule 7).
    pub grace_secs: u64,
    /// How long an ended invitation is remembered (rule 8).
    pub retention_secs: u64,
    /// Largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Frames a connection may send per second on average, and in a burst.
    pub messages_per_sec: u32,
    pub messages_burst: u32,
    /// A connection must finish the WebSocket handshake within this, and log
    /// in within as long again.
    pub handshake_timeout_ms: u64,
    pub login_timeout_ms: u64,
    /// The server pings every `heartbeat_secs`; a peer silent for three
    /// intervals is dropped.
    pub heartbeat_secs: u32,
    /// Invitations one user may have open (not ended) at once, across their
    /// devices: a send over it is RATE_LIMITED.
    pub max_open_invitations: usize,
    /// Ended invitations kept per user for history queries (0: none), and
    /// for how long after they were sent.
    pub history_per_user: usize,
    pub history_secs: u64,
    /// Unacknowledged frames a session keeps for a resume, and their bytes at
    /// most: a client further behind is dropped and comes back on a fresh
    /// session.
    pub outbox_capacity: usize,
    pub outbox_max_bytes: usize,
    pub log_format: LogFormat,
    /// Where invitations are kept: `sqlite` (durable, the default) or
    /// `memory` (lost at restart).
    pub store: StoreKind,
    /// The SQLite store's directory; [`crate::store::default_data_dir`] when
    /// absent.
    pub data_dir: Option<PathBuf>,
    /// What an answered request survives: `normal`, a crash of the process;
    /// `full`, a crash of the machine (power loss).
    pub durability: Durability,
    /// Rings for devices that are not connected (APNs, FCM, a webhook): off
    /// unless a provider is configured (docs/PUSH.md, docs/OPERATIONS.md).
    pub push: PushConfig,
    /// `[redis]`: the Redis store (`store = "redis"`).
    pub redis: RedisConfig,
    /// `[webhooks]`: invitation and device events POSTed, signed, to the
    /// app's backend (docs/WEBHOOKS.md). Off unless an endpoint is given.
    pub webhooks: WebhooksConfig,
    /// `[api]`: the HTTP API for the app's backend (docs/SERVER_API.md).
    /// Off unless `listen` is set.
    pub api: ApiConfig,
    /// `[web]`: the web phone page (docs/OPERATIONS.md, "Web phone page").
    /// Off unless `listen` is set.
    pub web: WebConfig,
}

/// `[web]`: where the web phone page (`examples/web`) is served.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The page's own address; no page when absent.
    #[serde(deserialize_with = "web_listen")]
    pub listen: Option<SocketAddr>,
    /// The `ws://` or `wss://` URL the page's client connects to, when the
    /// public listener is reached by another name (a proxy); by default the
    /// page's host (or the listener's own address) and the listener's port.
    pub server_url: Option<String>,
}

/// `[web] listen`, refused with a message naming the key.
fn web_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "web.listen: '{text}' is not an address like 127.0.0.1:8080"
        ))
    })
}

/// `[api]`: where the server API listens and the keys that may call it.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The API's own address; no API when absent.
    pub listen: Option<SocketAddr>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// `[[api.key]]`: at least one when `listen` is set.
    #[serde(rename = "key")]
    pub keys: Vec<ApiKeyConfig>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            listen: None,
            max_body_bytes: 64 * 1024,
            keys: Vec::new(),
        }
    }
}

/// `[[api.key]]`: one bearer key, what it may do, and for whom.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Names the key in logs and metrics (never the key itself).
    pub name: String,
    /// The key (at least 32 characters). Prefer `secret_file`.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// What the key may do: `send`, `read`, `cancel`, `devices`, `kick`,
    /// `tokens`; all of them when absent.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// The users it may act for: ids, or prefixes ending in `*`; every user
    /// when absent.
    #[serde(default)]
    pub users: Option<Vec<String>>,
}

impl std::fmt::Debug for ApiKeyConfig {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .field("secret_file", &self.secret_file)
            .field("allow", &self.allow)
            .field("users", &self.users)
            .finish()
    }
}

/// `[webhooks]`: the delivery settings every endpoint shares, and the
/// endpoints (`[[webhooks.endpoint]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Events waiting per endpoint; one more is dropped (and counted).
    pub queue: usize,
    /// Deliveries in flight per endpoint (each lane sends one at a time, so
    /// an endpoint takes about this many divided by the receiver's answer
    /// time per second). Events of one invitation (or of one user's
    /// devices) always go one after the other, in order.
    pub concurrency: usize,
    /// One attempt's time limit (connecting included).
    pub request_timeout_ms: u64,
    /// The first retry waits about this long, each next one twice as long,
    /// up to `retry_max_ms` (a Retry-After of the receiver is honoured).
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// An event not delivered this long after it happened is given up.
    pub retry_for_secs: u64,
    /// A PEM file of root certificates trusted besides the system's.
    pub extra_root_ca: Option<PathBuf>,
    #[serde(rename = "endpoint")]
    pub endpoints: Vec<WebhookEndpointConfig>,
}

impl Default for WebhooksConfig {
    fn default() -> WebhooksConfig {
        WebhooksConfig {
            queue: 10_000,
            concurrency: 16,
            request_timeout_ms: 10_000,
            retry_initial_ms: 1_000,
            retry_max_ms: 300_000,
            retry_for_secs: 3_600,
            extra_root_ca: None,
            endpoints: Vec::new(),
        }
    }
}

/// `[[webhooks.endpoint]]`: one receiver of the app's backend.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointConfig {
    /// Names the endpoint in logs and metrics; `endpoint-N` (from 1) when
    /// absent.
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    /// `whsec_<base64>`; several separated by spaces sign with each (key
    /// rotation). Prefer `secret_file`.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Which events it gets: names (`invitation.accepted`), families
    /// (`invitation.*`) or `*` (the default).
    #[serde(default = "every_event")]
    pub events: Vec<String>,
}

fn every_event() -> Vec<String> {
    vec!["*".to_owned()]
}

impl std::fmt::Debug for WebhookEndpointConfig {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .field("secret_file", &self.secret_file)
            .field("events", &self.events)
            .finish()
    }
}

/// `[redis]`: where the Redis store keeps invitations and push targets, and
/// this server's name among the nodes that share it (docs/OPERATIONS.md,
/// "Redis").
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/[db]` or `rediss://` (TLS).
    pub url: String,
    /// Every key starts with `{prefix}:`; deployments sharing a Redis use
    /// different prefixes.
    pub prefix: String,
    /// This node's name: its invitations are kept under it, and a node that
    /// starts again under the same name takes them back at once. The host's
    /// name when absent.
    pub node: Option<String>,
    /// A node that has not renewed its lease for this long is taken for dead.
    pub lease_ms: u64,
    /// With replicas: a batch is acknowledged only once this many replicas
    /// have it (Redis `WAIT`), within `wait_timeout_ms`. 0: the primary's
    /// word is enough.
    pub wait_replicas: u32,
    pub wait_timeout_ms: u64,
    /// With `rediss://`: the CA (PEM) that signed Redis's certificate, for a
    /// Redis with a private CA. When set, only it is trusted; without it,
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".to_owned(),
            prefix: "beckon".to_owned(),
            node: None,
            lease_ms: 5_000,
            wait_replicas: 0,
            wait_timeout_ms: 1_000,
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    /// Never shows a password in the URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .field("lease_ms", &self.lease_ms)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout_ms", &self.wait_timeout_ms)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `url` with the password of its user info (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A name of `[redis]` (prefix, node): 1 to 64 of `A-Z a-z 0-9 . _ -`.
fn check_redis_name(field: &str, value: &str) -> Result<(), ConfigError> {
    let fine = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fine {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "redis.{field}: '{value}' must be 1 to 64 of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// `[push]`: the queue and workers shared by the providers, and each
/// provider's own section. A provider exists only if its section is there.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Pushes waiting per provider; one more fails at once ("queue full").
    pub queue: usize,
    /// Requests in flight per provider.
    pub concurrency: usize,
    /// A PEM file of root certificates trusted besides the system's.
    pub extra_root_ca: Option<PathBuf>,
    /// One request's time limit (connecting included); then it is retried.
    pub request_timeout_ms: u64,
    pub apns: Option<ApnsConfig>,
    pub fcm: Option<FcmConfig>,
    pub webhook: Option<WebhookConfig>,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            queue: 10_000,
            concurrency: 64,
            extra_root_ca: None,
            request_timeout_ms: 10_000,
            apns: None,
            fcm: None,
            webhook: None,
        }
    }
}

impl PushConfig {
    pub fn any_provider(&self) -> bool {
        self.apns.is_some() || self.fcm.is_some() || self.webhook.is_some()
    }
}

/// `[push.apns]`: token-based APNs (a .p8 key of the Apple team).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    pub team_id: String,
    /// The key's id (the `kid` of provider tokens).
    pub key_id: String,
    /// The .p8 file Apple gave (a PKCS#8 PEM EC P-256 key).
    pub key_file: PathBuf,
    /// The app's bundle id, for targets that name none.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default = "ApnsConfig::default_endpoint")]
    pub endpoint: String,
    #[serde(default = "ApnsConfig::default_sandbox_endpoint")]
    pub sandbox_endpoint: String,
}

impl ApnsConfig {
    fn default_endpoint() -> String {
        "https://api.push.apple.com".to_owned()
    }
    fn default_sandbox_endpoint() -> String {
        "https://api.sandbox.push.apple.com".to_owned()
    }
}

/// `[push.fcm]`: Firebase Cloud Messaging HTTP v1 with a service account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The service account's JSON key file.
    pub service_account_file: PathBuf,
    #[serde(default = "FcmConfig::default_endpoint")]
    pub endpoint: String,
    /// The OAuth2 token URL; the account's `token_uri` when absent.
    #[serde(default)]
    pub token_url: Option<String>,
}

impl FcmConfig {
    fn default_endpoint() -> String {
        "https://fcm.googleapis.com".to_owned()
    }
}

/// `[push.webhook]`: a signed POST to the app's own backend.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// `whsec_<base64>`; several separated by spaces sign with each (key
    /// rotation). Prefer `secret_file`.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

impl std::fmt::Debug for WebhookConfig {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .field("secret_file", &self.secret_file)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Sqlite,
    Memory,
    /// Redis (`[redis]`), shared by the nodes of a deployment.
    Redis,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit is in the operating system's
    /// hands before the answer leaves; survives the process, not the power.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: every commit is synced to the disk.
    Full,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7600)),
            listen_backlog: 4096,
            max_connections: 100_000,
            max_connections_per_ip: 0,
            max_pending_logins: 4096,
            admin: None,
            tls_cert: None,
            tls_key: None,
            secret: None,
            secret_file: None,
            dev: false,
            limits: Limits::default(),
            grace_secs: 30,
            retention_secs: 600,
            max_frame_bytes: 256 * 1024,
            messages_per_sec: 200,
            messages_burst: 400,
            handshake_timeout_ms: 10_000,
            login_timeout_ms: 10_000,
            heartbeat_secs: 15,
            max_open_invitations: HubConfig::default().max_open_invitations,
            history_per_user: HubConfig::default().history_per_user,
            history_secs: HubConfig::default().history_keep.as_secs(),
            outbox_capacity: 10_000,
            outbox_max_bytes: 4 * 1024 * 1024,
            log_format: LogFormat::Text,
            store: StoreKind::Sqlite,
            data_dir: None,
            durability: Durability::Normal,
            push: PushConfig::default(),
            redis: RedisConfig::default(),
            webhooks: WebhooksConfig::default(),
            api: ApiConfig::default(),
            web: WebConfig::default(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ServerConfig {
    pub fn from_toml_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// The secret from `secret`, `secret_file` or `BECKON_SECRET`, in that order.
    pub fn resolve_secret(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let secret = if let Some(secret) = &self.secret {
            Some(secret.clone())
        } else if let Some(path) = &self.secret_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("secret_file {}: {e}", path.display())))?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        } else {
            std::env::var("BECKON_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
        };
        match secret {
            Some(secret) if secret.len() < 16 => {
                Err(ConfigError("secret: must be at least 16 bytes".to_owned()))
            }
            Some(secret) => Ok(Some(secret.into_bytes())),
            None => Ok(None),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.hub_config(None)
            .validate()
            .map_err(|e| ConfigError(format!("limits: {}", e.message)))?;
        check_redis_name("prefix", &self.redis.prefix)?;
        if let Some(node) = &self.redis.node {
            check_redis_name("node", node)?;
        }
        if !(self.redis.url.starts_with("redis://") || self.redis.url.starts_with("rediss://")) {
            return Err(ConfigError(format!(
                "redis.url: '{}' must start with redis:// or rediss://",
                redact_url(&self.redis.url)
            )));
        }
        if self.redis.ca_file.is_some() && !self.redis.url.starts_with("rediss://") {
            return Err(ConfigError(format!(
                "redis.ca_file: set, but redis.url '{}' is not rediss:// (TLS)",
                redact_url(&self.redis.url)
            )));
        }
        let checks: [(&str, u64, u64, u64); 28] = [
            ("history_secs", self.history_secs, 60, 366 * 86_400),
            (
                "api.max_body_bytes",
                self.api.max_body_bytes as u64,
                1024,
                16 * 1024 * 1024,
            ),
            ("webhooks.queue", self.webhooks.queue as u64, 1, 10_000_000),
            (
                "webhooks.concurrency",
                self.webhooks.concurrency as u64,
                1,
                1_000,
            ),
            (
                "webhooks.request_timeout_ms",
                self.webhooks.request_timeout_ms,
                100,
                600_000,
            ),
            (
                "webhooks.retry_initial_ms",
                self.webhooks.retry_initial_ms,
                10,
                3_600_000,
            ),
            (
                "webhooks.retry_max_ms",
                self.webhooks.retry_max_ms,
                self.webhooks.retry_initial_ms,
                86_400_000,
            ),
            (
                "webhooks.retry_for_secs",
                self.webhooks.retry_for_secs,
                0,
                7 * 86_400,
            ),
            ("redis.lease_ms", self.redis.lease_ms, 1_000, 600_000),
            (
                "redis.wait_replicas",
                u64::from(self.redis.wait_replicas),
                0,
                100,
            ),
            (
                "redis.wait_timeout_ms",
                self.redis.wait_timeout_ms,
                1,
                60_000,
            ),
            ("push.queue", self.push.queue as u64, 1, 10_000_000),
            ("push.concurrency", self.push.concurrency as u64, 1, 10_000),
            (
                "push.request_timeout_ms",
                self.push.request_timeout_ms,
                100,
                600_000,
            ),
            ("listen_backlog", u64::from(self.listen_backlog), 1, 65_535),
            (
                "max_connections",
                self.max_connections as u64,
                1,
                10_000_000,
            ),
            (
                "max_connections_per_ip",
                self.max_connections_per_ip as u64,
                0,
                10_000_000,
            ),
            (
                "max_pending_logins",
                self.max_pending_logins as u64,
                1,
                10_000_000,
            ),
            ("grace_secs", self.grace_secs, 0, 3600),
            ("retention_secs", self.retention_secs, 1, 86_400),
            (
                "max_frame_bytes",
                self.max_frame_bytes as u64,
                4 * 1024,
                16 * 1024 * 1024,
            ),
            (
                "messages_per_sec",
                u64::from(self.messages_per_sec),
                1,
                1_000_000,
            ),
            (
                "messages_burst",
                u64::from(self.messages_burst),
                1,
                10_000_000,
            ),
            (
                "handshake_timeout_ms",
                self.handshake_timeout_ms,
                100,
                600_000,
            ),
            ("login_timeout_ms", self.login_timeout_ms, 100, 600_000),
            ("heartbeat_secs", u64::from(self.heartbeat_secs), 1, 300),
            (
                "outbox_capacity",
                self.outbox_capacity as u64,
                16,
                10_000_000,
            ),
            (
                "outbox_max_bytes",
                self.outbox_max_bytes as u64,
                64 * 1024,
                1 << 30,
            ),
        ];
        for (name, value, low, high) in checks {
            if !(low..=high).contains(&value) {
                return Err(ConfigError(format!(
                    "{name}: {value} is outside {low}..={high}"
                )));
            }
        }
        // Every valid request must fit in a frame, or a client would be cut
        // off (and reconnect and re-send it) for using the API as allowed.
        let largest = self.limits.largest_request_bytes();
        if self.max_frame_bytes < largest {
            return Err(ConfigError(format!(
                "max_frame_bytes: {} is smaller than the largest valid request under these limits ({largest} bytes)",
                self.max_frame_bytes
            )));
        }
        if let Some(url) = &self.web.server_url {
            let fine = ["ws://", "wss://"].iter().any(|scheme| {
                url.strip_prefix(scheme).is_some_and(|rest| {
                    !rest.is_empty()
                        && rest.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']' | b'/')
                        })
                })
            });
            if !fine {
                return Err(ConfigError(format!(
                    "web.server_url: '{url}' must be ws://HOST[:PORT] or wss://HOST[:PORT]"
                )));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "tls_cert and tls_key: give both or neither".to_owned(),
            ));
        }
        Ok(())
    }

    pub fn hub_config(&self, secret: Option<Vec<u8>>) -> HubConfig {
        HubConfig {
            limits: self.limits.clone(),
            retention: Duration::from_secs(self.retention_secs),
            secret,
            max_open_invitations: self.max_open_invitations,
            history_per_user: self.history_per_user,
            history_keep: Duration::from_secs(self.history_secs),
        }
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_secs))
    }
}
