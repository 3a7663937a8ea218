//! `ws://HOST:PORT` and `wss://HOST:PORT`: the client side of docs/PROTOCOL.md.
//!
//! One task per login (the link) owns the socket. Operations are written from
//! any thread through a channel; each request waits in `pending` until its
//! result arrives, its request timeout passes, or the session ends. When the
//! connection drops, the link reconnects with exponential backoff and jitter,
//! resumes the session (the server replays what was missed) or logs in afresh,
//! and re-sends every request the server has not answered: nothing is lost,
//! nothing runs twice (request ids, idempotency keys), nothing is shown twice
//! (sequence numbers, and rule 9 in the client).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{Connection, LoginRequest, Reply};
use crate::error::{Error, ErrorCode, Result};
use crate::hub::SessionSink;
use crate::log::Level;
use crate::protocol::wire::{ClientFrame, Resume, ServerFrame, Welcome, PROTOCOL_VERSION};
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, ConnectionReason, ConnectionState, InvitationId,
    Limits, Push, SendInvitation, SendOutcome, UserId,
};

const SUB_TAG: &str = "client";
/// Reconnect delays double from the first to the last, each with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_LAST: Duration = Duration::from_secs(30);
/// Acknowledge received frames after this many, or at the next heartbeat.
const ACK_EVERY: u64 = 64;
/// How long a logout waits for its frame to be written.
const LOGOUT_WRITE_WAIT: Duration = Duration::from_secs(1);
/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 8 * 1024;
/// Largest frame accepted from the server.
const MAX_FRAME: usize = 16 * 1024 * 1024;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Completion = Box<dyn FnOnce(Result<Option<Box<RawValue>>>) + Send>;

/// Checks a `ws://` or `wss://` URL.
pub(crate) fn check_url(url: &str) -> Result<()> {
    let request = url
        .into_client_request()
        .map_err(|e| Error::invalid(format!("server_url: '{url}' is not a valid URL: {e}")))?;
    if request.uri().host().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!("server_url: '{url}' has no host")));
    }
    Ok(())
}

/// Connects, logs in, and replies with the connection once the server has
/// welcomed it (or with why it could not).
pub(crate) fn connect(url: &str, login: LoginRequest, reply: Reply<Arc<dyn Connection>>) {
    let shared = Arc::new(Shared {
        completing: parking_lot::RwLock::new(()),
        url: url.to_owned(),
        user: login.user,
        device: login.device.to_string(),
        sink: login.sink,
        request_timeout: login.request_timeout,
        state: Mutex::new(State {
            token: login.token,
            next_id: 1,
            pending: BTreeMap::new(),
            outbox: None,
            ended: false,
        }),
    });
    crate::runtime::handle().spawn(run_link(shared, reply));
}

struct Shared {
    /// Held (shared) by whoever is running a request's completion, from taking
    /// it out of `pending` until its callback is queued; `end` takes it
    /// exclusively, so when the session's end returns no completion is half
    /// done (the client closes its dispatcher right after).
    completing: parking_lot::RwLock<()>,
    url: String,
    user: UserId,
    device: String,
    sink: Arc<dyn SessionSink>,
    request_timeout: Duration,
    state: Mutex<State>,
}

struct State {
    /// The newest token: used when re-authenticating.
    token: String,
    next_id: u64,
    /// Requests not yet answered, by id (so also by deadline).
    pending: BTreeMap<u64, PendingRequest>,
    /// Frames to the link task while it runs.
    outbox: Option<UnboundedSender<Command>>,
    /// Logged out, kicked out, expired: nothing more will be sent.
    ended: bool,
}

struct PendingRequest {
    frame: String,
    deadline: Instant,
    complete: Completion,
}

enum Command {
    /// A request, already in `pending`.
    Request(String),
    /// A frame without a result (receipt, sync): kept while disconnected,
    /// sent after the reconnect.
    Notice(String),
    /// The logout frame, and a sender dropped once it is written (or cannot be).
    Logout(String, std::sync::mpsc::SyncSender<()>),
}

impl Shared {
    /// Registers a request and hands it to the link. Ids grow under the lock,
    /// and frames enter the channel in id order, as the server requires.
    fn request<T: DeserializeOwned + 'static>(
        &self,
        make: impl FnOnce(u64) -> ClientFrame,
        reply: Reply<T>,
    ) {
        let complete: Completion = Box::new(move |result| {
            reply(result.and_then(|ok| {
                let text = ok.as_ref().map_or("null", |raw| raw.get());
                serde_json::from_str::<T>(text).map_err(|e| {
                    Error::new(
                        ErrorCode::Server,
                        format!("the server's result is malformed: {e}"),
                    )
                })
            }))
        });
        let mut state = self.state.lock();
        if state.ended {
            drop(state);
            return complete(Err(Error::not_logged_in()));
        }
        let id = state.next_id;
        state.next_id += 1;
        let frame = match serde_json::to_string(&make(id)) {
            Ok(frame) => frame,
            Err(e) => {
                drop(state);
                return complete(Err(Error::internal(format!(
                    "cannot encode a request: {e}"
                ))));
            }
        };
        if let Some(outbox) = &state.outbox {
            let _ = outbox.send(Command::Request(frame.clone()));
        }
        state.pending.insert(
            id,
            PendingRequest {
                frame,
                deadline: Instant::now() + self.request_timeout,
                complete,
            },
        );
    }

    fn complete(&self, id: u64, result: Result<Option<Box<RawValue>>>) {
        let _completing = self.completing.read();
        let request = self.state.lock().pending.remove(&id);
        if let Some(request) = request {
            (request.complete)(result);
        }
    }

    /// Fails every request whose deadline has passed with REQUEST_TIMEOUT.
    fn expire(&self, now: Instant) {
        let _completing = self.completing.read();
        loop {
            let expired = {
                let mut state = self.state.lock();
                match state.pending.first_entry() {
                    Some(entry) if entry.get().deadline <= now => Some(entry.remove()),
                    _ => None,
                }
            };
            let Some(request) = expired else { return };
            (request.complete)(Err(Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "no answer from the server within {} ms",
                    self.request_timeout.as_millis()
                ),
            )));
        }
    }

    /// The session is over: nothing more is sent, and every pending request
    /// completes with `error`.
    fn end(&self, error: &Error) {
        let pending = {
            let mut state = self.state.lock();
            state.ended = true;
            state.outbox = None;
            std::mem::take(&mut state.pending)
        };
        for request in pending.into_values() {
            (request.complete)(Err(error.clone()));
        }
        // Wait for completions other threads started before `ended` was set.
        drop(self.completing.write());
    }

    fn send_command(&self, command: Command) {
        let state = self.state.lock();
        if let Some(outbox) = &state.outbox {
            let _ = outbox.send(command);
        }
    }
}

struct WsConnection {
    shared: Arc<Shared>,
    limits: Limits,
}

impl Connection for WsConnection {
    fn user(&self) -> &UserId {
        &self.shared.user
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn sync(&self) {
        if let Ok(frame) = serde_json::to_string(&ClientFrame::Sync { known: None }) {
            self.shared.send_command(Command::Notice(frame));
        }
    }

    fn send(&self, mut request: SendInvitation, reply: Reply<SendOutcome>) {
        // A send re-sent after a reconnect must not create a second invitation.
        if request.idempotency_key.is_none() {
            request.idempotency_key = Some(format!("{:032x}", rand::random::<u128>()).into());
        }
        self.shared
            .request(|id| ClientFrame::Send { id, request }, reply);
    }

    fn cancel(&self, request: CancelInvitation, reply: Reply<CancelOutcome>) {
        self.shared
            .request(|id| ClientFrame::Cancel { id, request }, reply);
    }

    fn accept(&self, answer: Answer, reply: Reply<()>) {
        self.shared
            .request(|id| ClientFrame::Accept { id, answer }, reply);
    }

    fn refuse(&self, answer: Answer, reply: Reply<()>) {
        self.shared
            .request(|id| ClientFrame::Refuse { id, answer }, reply);
    }

    fn renew_token(&self, token: &str, reply: Reply<()>) {
        let shared = self.shared.clone();
        let renewed = token.to_owned();
        // The new token is used for reconnects once the server accepted it.
        let reply: Reply<()> = Box::new(move |result: Result<()>| {
            if result.is_ok() {
                shared.state.lock().token = renewed;
            }
            reply(result)
        });
        let token = token.to_owned();
        self.shared
            .request(|id| ClientFrame::RenewToken { id, token }, reply);
    }

    fn acknowledge(&self, invitation_id: &InvitationId) {
        let frame = ClientFrame::Receipt {
            invitation_id: invitation_id.clone(),
        };
        if let Ok(frame) = serde_json::to_string(&frame) {
            self.shared.send_command(Command::Notice(frame));
        }
    }

    fn logout(&self) {
        let frame = {
            let mut state = self.shared.state.lock();
            let id = state.next_id;
            state.next_id += 1;
            serde_json::to_string(&ClientFrame::Logout { id }).ok()
        };
        let (written, wait_written) = std::sync::mpsc::sync_channel(0);
        if let Some(frame) = frame {
            self.shared.send_command(Command::Logout(frame, written));
        }
        self.shared.end(&Error::shutdown());
        // Let the frame reach the socket (a millisecond on a live connection;
        // at once when the link is down), so that an app that exits right
        // after `free` still ends its session at the server now rather than
        // after the grace period.
        let _ = wait_written.recv_timeout(LOGOUT_WRITE_WAIT);
    }
}

/// Why a connection ended.
enum Lost {
    /// Dropped, refused or silent: reconnect.
    Network(ConnectionReason),
    /// The session is over (logout, kicked out, token expired): stop.
    Ended,
}

/// The link task: the first connection (whose outcome is the login's), then
/// reconnects until the session ends.
async fn run_link(shared: Arc<Shared>, reply: Reply<Arc<dyn Connection>>) {
    let mut resume: Option<Resume> = None;
    let (socket, welcome) = match open(&shared, None).await {
        Ok(opened) => opened,
        Err(error) => {
            crate::log!(
                Level::Info,
                SUB_TAG,
                "login to {} failed: {error}",
                shared.url
            );
            shared.end(&error);
            return reply(Err(error));
        }
    };
    let connection: Arc<dyn Connection> = Arc::new(WsConnection {
        shared: shared.clone(),
        limits: welcome.limits.clone(),
    });
    let (tx, rx) = unbounded_channel();
    shared.state.lock().outbox = Some(tx);
    reply(Ok(connection));
    let mut rx = rx;
    let mut socket = socket;
    let mut welcome = welcome;
    let mut first = true;
    loop {
        let mut seen = resume.as_ref().map_or(0, |r| r.seq);
        if !welcome.resumed {
            seen = 0;
        }
        let outcome = serve(&shared, &mut socket, &mut rx, &welcome, &mut seen, first).await;
        first = false;
        let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
        let reason = match outcome {
            Lost::Ended => return,
            Lost::Network(reason) => reason,
        };
        resume = Some(Resume {
            session: welcome.session.clone(),
            seq: seen,
        });
        crate::log!(
            Level::Warn,
            SUB_TAG,
            "connection to {} lost ({reason:?}): reconnecting",
            shared.url
        );
        shared
            .sink
            .link_changed(ConnectionState::Reconnecting, reason);
        let mut delay = BACKOFF_FIRST;
        loop {
            let jittered = delay.mul_f64(0.5 + rand::random::<f64>() * 0.5);
            // Keep failing requests that time out while waiting.
            let until = Instant::now() + jittered;
            while Instant::now() < until {
                if shared.state.lock().ended {
                    return;
                }
                shared.expire(Instant::now());
                sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
            }
            match open(&shared, resume.clone()).await {
                Ok((s, w)) => {
                    socket = s;
                    welcome = w;
                    break;
                }
                Err(error) if is_fatal(&error) => {
                    crate::log!(Level::Warn, SUB_TAG, "cannot log in again: {error}");
                    shared.end(&Error::new(
                        ErrorCode::Network,
                        format!("the session could not be restored: {}", error.message),
                    ));
                    let reason = if error.code == ErrorCode::TokenExpired {
                        ConnectionReason::TokenExpired
                    } else {
                        ConnectionReason::Login
                    };
                    shared
                        .sink
                        .link_changed(ConnectionState::Disconnected, reason);
                    return;
                }
                Err(error) => {
                    crate::log!(Level::Info, SUB_TAG, "reconnect failed: {error}");
                    delay = (delay * 2).min(BACKOFF_LAST);
                }
            }
        }
        if shared.state.lock().ended {
            return;
        }
        crate::log!(
            Level::Info,
            SUB_TAG,
            "reconnected to {} ({})",
            shared.url,
            if welcome.resumed {
                "session resumed"
            } else {
                "new session"
            }
        );
        shared
            .sink
            .link_changed(ConnectionState::Connected, ConnectionReason::Network);
    }
}

/// Errors after which reconnecting is pointless.
fn is_fatal(error: &Error) -> bool {
    matches!(
        error.code,
        ErrorCode::AuthFailed
            | ErrorCode::TokenExpired
            | ErrorCode::InvalidArgument
            | ErrorCode::NotPermitted
    )
}

/// Connects and logs in (resuming when `resume` is given and the server still
/// has the session), within the request timeout.
async fn open(shared: &Shared, resume: Option<Resume>) -> Result<(Socket, Welcome)> {
    let deadline = shared.request_timeout;
    match timeout(deadline, open_inner(shared, resume)).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorCode::RequestTimeout,
            format!(
                "{}: no welcome within {} ms",
                shared.url,
                deadline.as_millis()
            ),
        )),
    }
}

async fn open_inner(shared: &Shared, resume: Option<Resume>) -> Result<(Socket, Welcome)> {
    let network =
        |e: &dyn std::fmt::Display| Error::new(ErrorCode::Network, format!("{}: {e}", shared.url));
    let mut request = shared
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
    let connector = if shared.url.starts_with("wss://") {
        Some(tls_connector()?)
    } else {
        None
    };
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
            .await
            .map_err(|e| network(&e))?;
    let hello = ClientFrame::Hello {
        v: PROTOCOL_VERSION,
        user: shared.user.clone(),
        device: crate::protocol::DeviceId::parse(&shared.device, "device_id")?,
        token: shared.state.lock().token.clone(),
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

fn tls_connector() -> Result<Connector> {
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
    Ok(Connector::Rustls(Arc::new(config)))
}

/// Runs one connection until it is lost or the session ends. `seen` is the
/// highest sequence number received, kept across connections for the resume.
async fn serve(
    shared: &Arc<Shared>,
    socket: &mut Socket,
    rx: &mut UnboundedReceiver<Command>,
    welcome: &Welcome,
    seen: &mut u64,
    first: bool,
) -> Lost {
    // After a reconnect: receipts first (they were queued while away), then
    // the requests the server has not answered, in id order. A new session
    // also needs a sync (the first login's comes from the client).
    let mut backlog: Vec<String> = Vec::new();
    while let Ok(command) = rx.try_recv() {
        match command {
            Command::Notice(frame) => backlog.push(frame),
            Command::Request(_) => {} // sent from `pending` below
            Command::Logout(frame, written) => {
                let _ = socket.send(Message::Text(frame.into())).await;
                drop(written);
                return Lost::Ended;
            }
        }
    }
    if !first && !welcome.resumed {
        if let Ok(sync) = serde_json::to_string(&ClientFrame::Sync { known: None }) {
            backlog.push(sync);
        }
    }
    {
        let state = shared.state.lock();
        backlog.extend(
            state
                .pending
                .range(welcome.last_request + 1..)
                .map(|(_, request)| request.frame.clone()),
        );
    }
    for frame in backlog {
        if socket.feed(Message::Text(frame.into())).await.is_err() {
            return Lost::Network(ConnectionReason::Network);
        }
    }
    if socket.flush().await.is_err() {
        return Lost::Network(ConnectionReason::Network);
    }

    let heartbeat = Duration::from_secs(u64::from(welcome.heartbeat_secs.clamp(1, 300)));
    let mut ticks = tokio::time::interval_at(
        Instant::now() + heartbeat.min(Duration::from_millis(250)),
        heartbeat.min(Duration::from_millis(250)),
    );
    let mut last_ping = Instant::now();
    let mut last_heard = Instant::now();
    let mut acked = *seen;
    let mut reason = ConnectionReason::Network;
    loop {
        tokio::select! {
            frame = socket.next() => {
                last_heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Lost::Network(reason),
                    Some(Ok(_)) => continue,
                };
                match ServerFrame::decode(&text) {
                    Ok(ServerFrame::Result { id, seq, ok, error }) => {
                        *seen = seq.max(*seen);
                        shared.complete(id, match error {
                            Some(error) => Err(Error::from(error)),
                            None => Ok(ok),
                        });
                    }
                    Ok(ServerFrame::Push { seq, push }) => {
                        *seen = seq.max(*seen);
                        let ends = matches!(push, Push::KickedOut | Push::TokenExpired);
                        let why = match push {
                            Push::KickedOut => "kicked out: the device logged in elsewhere",
                            _ => "the token expired",
                        };
                        shared.sink.deliver(push);
                        if ends {
                            shared.end(&Error::new(ErrorCode::Network, why));
                            return Lost::Ended;
                        }
                    }
                    // Not asked for yet (the client sends no `known`).
                    Ok(ServerFrame::Snapshot { seq, .. }) => *seen = seq.max(*seen),
                    Ok(ServerFrame::Shutdown) => reason = ConnectionReason::ServerShutdown,
                    Ok(ServerFrame::Error(error)) => {
                        crate::log!(Level::Warn, SUB_TAG, "the server reported: {} {}", error.code, error.message);
                    }
                    Ok(ServerFrame::Welcome(_)) | Err(_) => {
                        crate::log!(Level::Warn, SUB_TAG, "unexpected frame from the server: {text}");
                    }
                }
                if *seen >= acked + ACK_EVERY {
                    acked = *seen;
                    if send_ack(socket, acked).await.is_err() {
                        return Lost::Network(reason);
                    }
                }
            }
            command = rx.recv() => {
                let Some(first) = command else { return Lost::Ended };
                // Write what else is queued in the same flush; a logout is the
                // last frame (its `written` is dropped after the flush).
                let mut next = Some(first);
                let mut logout = None;
                while let Some(command) = next.take() {
                    let frame = match command {
                        Command::Request(frame) | Command::Notice(frame) => frame,
                        Command::Logout(frame, written) => {
                            logout = Some(written);
                            frame
                        }
                    };
                    if socket.feed(Message::Text(frame.into())).await.is_err() {
                        return Lost::Network(reason);
                    }
                    if logout.is_none() {
                        next = rx.try_recv().ok();
                    }
                }
                if socket.flush().await.is_err() {
                    return Lost::Network(reason);
                }
                if logout.is_some() {
                    return Lost::Ended;
                }
            }
            _ = ticks.tick() => {
                let now = Instant::now();
                shared.expire(now);
                if now.duration_since(last_heard) >= heartbeat * 3 {
                    crate::log!(Level::Warn, SUB_TAG, "the server is silent for three heartbeats");
                    return Lost::Network(ConnectionReason::Network);
                }
                if now.duration_since(last_ping) >= heartbeat {
                    last_ping = now;
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Lost::Network(reason);
                    }
                    if *seen > acked {
                        acked = *seen;
                        if send_ack(socket, acked).await.is_err() {
                            return Lost::Network(reason);
                        }
                    }
                }
            }
        }
    }
}

async fn send_ack(socket: &mut Socket, seq: u64) -> std::result::Result<(), ()> {
    let frame = serde_json::to_string(&ClientFrame::Ack { seq }).map_err(|_| ())?;
    socket
        .send(Message::Text(frame.into()))
        .await
        .map_err(|_| ())
}
