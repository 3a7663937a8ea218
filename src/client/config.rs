//! How a client is set up.

use std::time::Duration;

use crate::protocol::DeviceId;

/// Where callbacks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DispatchMode {
    /// On a thread the client owns (the default).
    #[default]
    Thread,
    /// Queued until the application calls `Client::poll` on a thread of its own.
    Poll,
    /// On a small pool of threads shared by every pool-mode client of the
    /// process (each client's callbacks still one at a time, in order): for
    /// processes with many clients, such as the load tool.
    Pool,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `memory://NAME` for the in-process hub NAME.
    pub server_url: String,
    /// This device's id; a random one when `None`.
    pub device_id: Option<DeviceId>,
    pub dispatch: DispatchMode,
    /// How long a request may wait for the server's answer (network transports).
    pub request_timeout: Duration,
}

impl ClientConfig {
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(server_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            server_url: server_url.into(),
            device_id: None,
            dispatch: DispatchMode::Thread,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Settings of one operation (send, cancel, accept, refuse, renew token, set
/// and clear the push target).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// How long this request may wait for the server's answer; `None` for the
    /// client's `request_timeout`. (In-process hubs answer at once.)
    pub request_timeout: Option<Duration>,
}

impl CallOptions {
    /// With `request_timeout` set.
    pub fn within(request_timeout: Duration) -> CallOptions {
        CallOptions {
            request_timeout: Some(request_timeout),
        }
    }

    /// The timeout to hand the transport, once checked.
    pub(crate) fn request_timeout(&self) -> crate::error::Result<Option<Duration>> {
        match self.request_timeout {
            Some(timeout) if timeout.is_zero() => Err(crate::error::Error::invalid(
                "options.request_timeout: must be above zero",
            )),
            other => Ok(other),
        }
    }
}
