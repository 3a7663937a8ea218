//! Logging in: the arguments every networked command shares, the client,
//! and the channel its events arrive on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::{ConnectionReason, ConnectionState, DeviceId, UserId};
use beckon::{Client, ClientConfig, Event};
use clap::Args;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::failure::Failure;
use crate::interrupt::Interrupts;

/// The library answers a login within its own timeouts; this only keeps a
/// server that accepts the connection and then says nothing from hanging
/// the command.
const LOGIN_LIMIT: Duration = Duration::from_secs(30);
/// How long a logout at exit may take before the command leaves anyway.
const LOGOUT_LIMIT: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The server: ws://HOST:PORT or wss://HOST:PORT.
    #[arg(long, env = "BECKON_SERVER", value_name = "URL")]
    pub server: String,
    /// Who to log in as.
    #[arg(long, env = "BECKON_USER", value_name = "USER")]
    pub user: String,
    /// The login token (`beckon token` mints one; a --dev server takes any).
    #[arg(
        long,
        env = "BECKON_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// This device's id [default: a new random one per run].
    #[arg(long, env = "BECKON_DEVICE", value_name = "DEVICE")]
    pub device: Option<String>,
}

/// Checked connection arguments: nothing has touched the network yet.
pub struct Target {
    pub url: String,
    pub user: UserId,
    token: String,
    device: Option<DeviceId>,
}

impl ConnectArgs {
    pub fn check(&self) -> Result<Target, Failure> {
        let url = self.server.trim().to_owned();
        if url.starts_with("memory://") {
            return Err(Failure::usage(format!(
                "--server {url}: a memory:// hub lives inside one process, so another \
                 process cannot reach it; give the ws://HOST:PORT or wss://HOST:PORT of a \
                 beckon-server"
            )));
        }
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(Failure::usage(format!(
                "--server '{url}': not a server URL; give ws://HOST:PORT or wss://HOST:PORT"
            )));
        }
        let user = UserId::parse(&self.user, &format!("--user '{}'", self.user))
            .map_err(|e| Failure::usage(e.message))?;
        let device = match &self.device {
            Some(device) => Some(
                DeviceId::parse(device, &format!("--device '{device}'"))
                    .map_err(|e| Failure::usage(e.message))?,
            ),
            None => None,
        };
        Ok(Target {
            url,
            user,
            token: self.token.clone(),
            device,
        })
    }
}

/// A logged-in client and its events, in the order the library delivered
/// them.
pub struct Session {
    pub client: Arc<Client>,
    pub user: UserId,
    pub url: String,
    pub events: UnboundedReceiver<Event>,
}

/// How a login attempt ended.
pub enum Login {
    Done(Session),
    /// Ctrl-C came first.
    Interrupted,
}

impl Target {
    /// Logs in, then makes sure the server has this device's first sync,
    /// so that every invitation sent from now on reaches it.
    pub async fn login(self, interrupts: &mut Interrupts) -> Result<Login, Failure> {
        let what = format!("login as {} at {}", self.user, self.url);
        let mut config = ClientConfig::new(self.url.clone());
        config.device_id = self.device;
        // Only the URL can be wrong here (the library parses it).
        let client = Arc::new(
            Client::new(config)
                .map_err(|e| Failure::library(&format!("--server {}", self.url), &e))?,
        );
        let (sender, events) = unbounded_channel();
        // The login's own CONNECTING and CONNECTED (dispatched before its
        // callback) are not news; later connection changes are.
        let logged_in = Arc::new(AtomicBool::new(false));
        let after_login = logged_in.clone();
        client.set_event_handler(Some(Arc::new(move |event: &Event| {
            if matches!(event, Event::ConnectionStateChanged { .. })
                && !after_login.load(Ordering::Acquire)
            {
                return;
            }
            // The receiver is gone only while the command exits.
            let _ = sender.send(event.clone());
        })));
        let attempt = async {
            client.login(self.user.clone(), self.token.clone()).await?;
            logged_in.store(true, Ordering::Release);
            // The library syncs right after the login's callback; a request
            // answered after the login went after that sync (renewing with
            // the same token changes nothing else).
            client.renew_token(self.token.clone()).await
        };
        tokio::select! {
            result = tokio::time::timeout(LOGIN_LIMIT, attempt) => match result {
                Ok(Ok(())) => Ok(Login::Done(Session {
                    client,
                    user: self.user,
                    url: self.url,
                    events,
                })),
                Ok(Err(error)) => Err(Failure::library(&what, &error)),
                Err(_) => Err(Failure::server(
                    "REQUEST_TIMEOUT",
                    format!("{what}: no answer within {} s", LOGIN_LIMIT.as_secs()),
                )),
            },
            _ = interrupts.next() => Ok(Login::Interrupted),
        }
    }
}

impl Session {
    /// Logs out (bounded), so that the server forgets this device at once
    /// instead of after its grace period.
    pub async fn close(self) {
        let _ = tokio::time::timeout(LOGOUT_LIMIT, self.client.logout()).await;
        // Dropping the last handle frees the client; it may wait for the
        // library's threads, so not on this runtime's.
        let client = self.client;
        let _ = tokio::task::spawn_blocking(move || drop(client)).await;
    }
}

/// A connection event that ends the command: the session is over.
pub fn session_over(user: &UserId, url: &str, event: &Event) -> Option<Failure> {
    match event {
        Event::ConnectionStateChanged {
            state: ConnectionState::Disconnected,
            reason,
        } => {
            let why = match reason {
                ConnectionReason::KickedOut => {
                    "KICKED_OUT: the same device id logged in elsewhere".to_owned()
                }
                ConnectionReason::TokenExpired => {
                    "TOKEN_EXPIRED: the token expired; log in with a new one".to_owned()
                }
                ConnectionReason::Logout => "LOGOUT: logged out".to_owned(),
                ConnectionReason::Login | ConnectionReason::Network => {
                    "the connection was lost and the session could not be restored".to_owned()
                }
                ConnectionReason::ServerShutdown => "the server shut down".to_owned(),
            };
            Some(Failure::server(
                "DISCONNECTED",
                format!("session of {user} at {url} ended: {why}"),
            ))
        }
        _ => None,
    }
}

/// A word on a connection change that the library handles by itself.
pub fn connection_note(event: &Event) -> Option<(&'static str, &'static str, String)> {
    match event {
        Event::ConnectionStateChanged { state, reason } => {
            let state_name = match state {
                ConnectionState::Disconnected => return None,
                ConnectionState::Connecting => "connecting",
                ConnectionState::Connected => "connected",
                ConnectionState::Reconnecting => "reconnecting",
            };
            let reason_name = match reason {
                ConnectionReason::Login => "login",
                ConnectionReason::Logout => "logout",
                ConnectionReason::Network => "network",
                ConnectionReason::KickedOut => "kicked_out",
                ConnectionReason::TokenExpired => "token_expired",
                ConnectionReason::ServerShutdown => "server_shutdown",
            };
            let text = match state {
                ConnectionState::Reconnecting => {
                    format!("connection lost ({reason_name}); reconnecting")
                }
                ConnectionState::Connected => "connected again".to_owned(),
                _ => format!("{state_name} ({reason_name})"),
            };
            Some((state_name, reason_name, text))
        }
        _ => None,
    }
}
