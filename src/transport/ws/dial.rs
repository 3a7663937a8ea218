//! Opening one connection: the WebSocket (over TLS for `wss://`), `hello`, and
//! the server's `welcome` or refusal, within the request timeout.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::wire::{ClientFrame, Resume, ServerFrame, Welcome, PROTOCOL_VERSION};
use crate::protocol::{DeviceId, UserId};

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 8 * 1024;
/// Largest frame accepted from the server.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Where and as whom a link connects; the same for every reconnect.
pub(super) struct Target {
    pub url: String,
    pub user: UserId,
    pub device: DeviceId,
    /// For connecting and logging in, as for each request.
    pub timeout: Duration,
}

/// Connects and logs in (resuming when `resume` is given and the server still
/// has that session), within the request timeout.
pub(super) async fn open(
    target: Arc<Target>,
    token: String,
    resume: Option<Resume>,
) -> Result<(Socket, Welcome)> {
    let deadline = Instant::now() + target.timeout;
    let socket = within(&target, deadline, connect(&target)).await?;
    within(&target, deadline, hello(&target, socket, token, resume)).await
}

/// Runs a step of opening until `deadline`, when it fails with REQUEST_TIMEOUT.
pub(super) async fn within<T>(
    target: &Target,
    deadline: Instant,
    step: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match timeout_at(deadline, step).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorCode::RequestTimeout,
            format!(
                "{}: no welcome within {} ms",
                target.url,
                target.timeout.as_millis()
            ),
        )),
    }
}

fn network_error(target: &Target, e: &dyn std::fmt::Display) -> Error {
    Error::new(ErrorCode::Network, format!("{}: {e}", target.url))
}

/// The first step of opening: the WebSocket, over TLS for `wss://`. Nothing
/// has reached the server's sessions yet, so it can be dropped at any await.
pub(super) async fn connect(target: &Target) -> Result<Socket> {
    let network = |e: &dyn std::fmt::Display| network_error(target, e);
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| network(&e))?;
    if let Ok(value) = crate::protocol::wire::SUBPROTOCOL.parse() {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    // A small read buffer: tungstenite clears the whole buffer on every read,
    // and signaling frames are small (measured: +30 % invitations/s).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let connector = if target.url.starts_with("wss://") {
        Some(Connector::Rustls(tls_config().await?))
    } else {
        None
    };
    let (socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
            .await
            .map_err(|e| network(&e))?;
    Ok(socket)
}

/// The second step: `hello`, and the server's `welcome` or refusal. Once the
/// hello is written the server may make a session of it, so a caller that
/// gives up here must still log out a welcome that comes.
pub(super) async fn hello(
    target: &Target,
    mut socket: Socket,
    token: String,
    resume: Option<Resume>,
) -> Result<(Socket, Welcome)> {
    let network = |e: &dyn std::fmt::Display| network_error(target, e);
    let hello = ClientFrame::Hello {
        v: PROTOCOL_VERSION,
        user: target.user.clone(),
        device: target.device.clone(),
        token,
        resume,
    };
    let hello = serde_json::to_string(&hello).map_err(|e| Error::internal(e.to_string()))?;
    socket
        .send(Message::Text(hello.into()))
        .await
        .map_err(|e| network(&e))?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                return match ServerFrame::decode(&text) {
                    Ok(ServerFrame::Welcome(welcome)) => Ok((socket, welcome)),
                    Ok(ServerFrame::Error(error)) => Err(Error::from(error)),
                    Ok(_) => Err(Error::new(
                        ErrorCode::Server,
                        "the server did not welcome the login",
                    )),
                    Err(e) => Err(Error::new(
                        ErrorCode::Server,
                        format!("malformed frame from the server: {e}"),
                    )),
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(network(&e)),
            None => return Err(network(&"the server closed the connection")),
        }
    }
}

/// The trust settings a TLS configuration was made from: the system's store,
/// and SSL_CERT_FILE / SSL_CERT_DIR when set.
#[derive(Clone, PartialEq)]
struct TrustSource {
    cert_file: Option<OsString>,
    cert_dir: Option<OsString>,
}

impl TrustSource {
    fn now() -> TrustSource {
        TrustSource {
            cert_file: std::env::var_os("SSL_CERT_FILE"),
            cert_dir: std::env::var_os("SSL_CERT_DIR"),
        }
    }
}

/// The TLS configuration, made once per trust source (so once per process
/// unless SSL_CERT_FILE or SSL_CERT_DIR change): reading the system's store
/// takes many file reads, too many for every reconnect attempt.
static TLS: Mutex<Option<(TrustSource, Result<Arc<rustls::ClientConfig>>)>> =
    parking_lot::const_mutex(None);

async fn tls_config() -> Result<Arc<rustls::ClientConfig>> {
    let source = TrustSource::now();
    if let Some((cached_for, config)) = &*TLS.lock() {
        if *cached_for == source {
            return config.clone();
        }
    }
    // File reads: off the runtime's workers.
    let config = tokio::task::spawn_blocking(make_tls_config)
        .await
        .unwrap_or_else(|e| {
            Err(Error::internal(format!(
                "tls: loading the roots failed: {e}"
            )))
        });
    *TLS.lock() = Some((source, config.clone()));
    config
}

fn make_tls_config() -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots, and SSL_CERT_FILE / SSL_CERT_DIR when set.
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(Error::new(
            ErrorCode::Network,
            "wss: no trusted root certificates found (set SSL_CERT_FILE)",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tls_configuration_is_made_once_per_trust_source() {
        // Whatever the machine's store holds (maybe nothing): the same outcome,
        // and with roots, the same configuration, without reading them again.
        let first = tls_config().await;
        let second = tls_config().await;
        match (first, second) {
            (Ok(a), Ok(b)) => assert!(Arc::ptr_eq(&a, &b)),
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("{a:?} then {b:?}"),
        }
    }
}
