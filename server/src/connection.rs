//! One WebSocket connection: handshake and login deadlines, then frames in (rate
//! limited, decoded, handled) and frames out (from the session's outbox), with
//! heartbeats both ways. When it ends without a logout, its session waits out the
//! grace period for the client to resume.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::wire::{ClientFrame, Resume, ServerFrame, WireError, PROTOCOL_VERSION};
use beckon::protocol::{DeviceId, UserId};
use beckon::{Error, ErrorCode};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::handler::decode;
use crate::limiter::{RateLimiter, Verdict};
use crate::listener::Ticket;
use crate::session::{Link, Outgoing, Refusal, Release, SessionHandle, Writer};
use crate::ServerContext;

/// What every connection is sent when the server goes away.
const SHUTDOWN_NOTICE: &str = r#"{"type":"shutdown"}"#;

/// Protocol errors one connection may make before it is cut off.
const MAX_PROTOCOL_ERRORS: u32 = 16;

/// Counts the connection in `connections_open` while it lives.
struct OpenConnection(Arc<ServerContext>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.metrics.connections_open.dec();
    }
}

/// Serves one admitted connection; `ticket` holds its places (see
/// `listener::Admission`) until it ends.
pub async fn serve<S>(ctx: Arc<ServerContext>, stream: S, peer: SocketAddr, ticket: Ticket)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + Duration::from_millis(ctx.config.handshake_timeout_ms);
    serve_until(ctx, stream, peer, ticket, deadline).await
}

/// [`serve`], with the WebSocket handshake due by `handshake_deadline` (a
/// TLS handshake before it counts against the same deadline).
pub async fn serve_until<S>(
    ctx: Arc<ServerContext>,
    stream: S,
    peer: SocketAddr,
    mut ticket: Ticket,
    handshake_deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    ctx.metrics.connections_opened.inc();
    ctx.metrics.connections_open.inc();
    let _open = OpenConnection(ctx.clone());
    let config = &ctx.config;
    // A small read buffer: tungstenite clears the whole buffer on every read,
    // and most frames are small (the load tool measured +30 % invitations/s).
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        choose_subprotocol,
        Some(ws_config),
    );
    // The handshake and login phases are boxed: they end, and a connection's
    // task should not carry their size for the life of an idle connection.
    let ws = match Box::pin(timeout_at(handshake_deadline, handshake)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "websocket handshake failed");
            ctx.metrics.count_drop("handshake_failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "websocket handshake deadline passed");
            ctx.metrics.count_drop("handshake_timeout");
            return;
        }
    };
    let (sink, mut frames) = ws.split();
    let (tx, rx) = Writer::channel();
    let writer = tokio::spawn(write_frames(sink, rx));
    let epoch = ctx.next_epoch();

    if let Some(attached) = Box::pin(log_in(&ctx, &mut frames, &tx, epoch, peer)).await {
        ticket.logged_in();
        let session = attached.session.clone();
        if run_session(&ctx, attached, &mut frames, &tx, epoch, peer).await == Ending::Detach {
            session.detach(epoch).await;
        }
    }
    drop(tx);
    // Let the writer send what is queued (a close frame, a shutdown notice);
    // a peer that does not read gets a few seconds.
    let mut writer = writer;
    if timeout(Duration::from_secs(5), &mut writer).await.is_err() {
        writer.abort();
    }
    // Read what the peer still sends until it closes too (at most a second):
    // closing a socket with unread data resets the connection, and a reset
    // can destroy our close frame before the peer reads it.
    let drain = async { while let Some(Ok(_)) = frames.next().await {} };
    let _ = timeout(Duration::from_secs(1), drain).await;
}

/// Accepts the `beckon.v1` subprotocol when the client offers it. (The error
/// type is the handshake callback's, fixed by tungstenite.)
#[allow(clippy::result_large_err)]
fn choose_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == beckon::protocol::wire::SUBPROTOCOL);
    if offered {
        if let Ok(value) = beckon::protocol::wire::SUBPROTOCOL.parse() {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
    }
    Ok(response)
}

type Frames<S> = futures_util::stream::SplitStream<WebSocketStream<S>>;
type FrameSink<S> = futures_util::stream::SplitSink<WebSocketStream<S>, Message>;

/// Sends what the session queues, several frames per flush when they come
/// together.
async fn write_frames<S>(mut sink: FrameSink<S>, mut rx: UnboundedReceiver<Box<Outgoing>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next {
            let message = match *outgoing {
                Outgoing::Text(text) => Message::Text(text),
                Outgoing::Ping => Message::Ping(Default::default()),
                Outgoing::Close(code, reason) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: Utf8Bytes::from_static(reason),
                        })))
                        .await;
                    return;
                }
            };
            if sink.feed(message).await.is_err() {
                return;
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

pub(crate) fn error_frame(error: &Error) -> Outgoing {
    let frame = ServerFrame::Error(WireError::from(error));
    Outgoing::Text(Utf8Bytes::from(
        serde_json::to_string(&frame).unwrap_or_default(),
    ))
}

/// An error frame, then a close frame.
fn refusal(error: &Error, close: u16) -> Vec<Outgoing> {
    vec![error_frame(error), Outgoing::Close(close, "refused")]
}

/// Refuses the connection with `error`, then closes it.
fn refuse(tx: &Writer, error: &Error, close: u16) {
    for outgoing in refusal(error, close) {
        let _ = tx.send(outgoing);
    }
}

/// PAYLOAD_TOO_LARGE and close 1009, if `error` is a frame over
/// `max_frame_bytes`.
fn too_large(
    ctx: &ServerContext,
    error: &tokio_tungstenite::tungstenite::Error,
) -> Option<Vec<Outgoing>> {
    if !matches!(error, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
        return None;
    }
    ctx.metrics.count_drop("frame_too_large");
    let message = format!("frame: {error}");
    Some(refusal(
        &Error::new(ErrorCode::PayloadTooLarge, message),
        1009,
    ))
}

/// Waits for `hello` and opens or resumes its session.
async fn log_in<S>(
    ctx: &Arc<ServerContext>,
    frames: &mut Frames<S>,
    tx: &Writer,
    epoch: u64,
    peer: SocketAddr,
) -> Option<Attached>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One deadline for the whole wait: pings must not push it back, or a peer
    // could hold a connection open forever without logging in.
    let deadline = Instant::now() + Duration::from_millis(ctx.config.login_timeout_ms);
    let mut shutdown = ctx.shutdown_signal();
    let first = loop {
        let next = tokio::select! {
            next = timeout_at(deadline, frames.next()) => next,
            // Not logged in yet, but told like the others: a shutdown must not
            // wait for this connection's login deadline.
            // (Its guard dropped at once: a branch below awaits.)
            () = async { drop(shutdown.wait_for(|down| *down).await) } => {
                let _ = tx.send(Outgoing::Text(Utf8Bytes::from_static(SHUTDOWN_NOTICE)));
                let _ = tx.send(Outgoing::Close(1001, "the server is shutting down"));
                return None;
            }
        };
        match next {
            Err(_) => {
                ctx.metrics.count_drop("login_timeout");
                refuse(
                    tx,
                    &Error::new(ErrorCode::NotLoggedIn, "hello: not received in time"),
                    1008,
                );
                return None;
            }
            Ok(Some(Ok(Message::Text(text)))) => break text,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Binary(_)))) => {
                ctx.metrics.protocol_errors.inc();
                refuse(
                    tx,
                    &Error::invalid("frame: binary frames are not part of the protocol"),
                    1003,
                );
                return None;
            }
            Ok(Some(Err(e))) => {
                for outgoing in too_large(ctx, &e).unwrap_or_default() {
                    let _ = tx.send(outgoing);
                }
                return None;
            }
            Ok(_) => return None,
        }
    };
    let hello = match decode(&first) {
        Ok(ClientFrame::Hello {
            v,
            user,
            device,
            token,
            resume,
        }) if v == PROTOCOL_VERSION => Hello {
            user,
            device,
            token,
            resume,
        },
        Ok(ClientFrame::Hello { v, .. }) => {
            ctx.metrics.count_login("bad_version");
            refuse(
                tx,
                &Error::invalid(format!(
                    "v: protocol version {v} is not supported (this server speaks {PROTOCOL_VERSION})"
                )),
                1002,
            );
            return None;
        }
        Ok(_) => {
            ctx.metrics.count_login("not_logged_in");
            refuse(
                tx,
                &Error::new(ErrorCode::NotLoggedIn, "the first frame must be hello"),
                1008,
            );
            return None;
        }
        Err(error) => {
            ctx.metrics.protocol_errors.inc();
            refuse(tx, &error.error, 1007);
            return None;
        }
    };
    match open_session(ctx, hello, tx, epoch).await {
        Ok(attached) => {
            // Debug, not info: a login storm must not flood the log (the
            // `logins` metric counts them).
            tracing::debug!(%peer, user = %attached.session.user, device = %attached.session.device, "logged in");
            Some(attached)
        }
        Err(error) => {
            ctx.metrics.count_login(match error.code {
                ErrorCode::AuthFailed => "auth_failed",
                ErrorCode::TokenExpired => "token_expired",
                _ => "refused",
            });
            tracing::debug!(%peer, error = %error, "login refused");
            refuse(tx, &error, 1008);
            None
        }
    }
}

/// Resumes the session named in `resume` when it is this user's and device's
/// and can be resumed; otherwise logs in afresh (taking over what a session
/// that could not be resumed handed over).
pub(crate) async fn open_session(
    ctx: &Arc<ServerContext>,
    hello: Hello,
    tx: &Writer,
    epoch: u64,
) -> Result<Attached, Error> {
    if ctx.shutting_down() {
        return Err(Error::new(ErrorCode::Server, "the server is shutting down"));
    }
    let Hello {
        user,
        device,
        token,
        resume,
    } = hello;
    let mut handover = None;
    if let Some(resume) = resume {
        let previous = ctx
            .sessions
            .get(&resume.session)
            .filter(|s| s.user == user && s.device == device);
        if let Some(session) = previous {
            let (link, released) = link(tx, epoch);
            match session.resume(link, resume.seq, token.clone()).await {
                Ok(()) => {
                    ctx.metrics.count_login("resumed");
                    return Ok(Attached { session, released });
                }
                Err(Refusal::Token(error)) => return Err(error),
                Err(Refusal::CannotResume(left)) => handover = left,
            }
        }
    }
    let (link, released) = link(tx, epoch);
    let session = crate::session::open(ctx, user, device, &token, link, handover)?;
    ctx.metrics.count_login("ok");
    Ok(Attached { session, released })
}

/// A connection's link to its session, and the signal that the session let it
/// go.
fn link(tx: &Writer, epoch: u64) -> (Link, oneshot::Receiver<Release>) {
    let (released, signal) = oneshot::channel();
    let link = Link {
        tx: tx.clone(),
        epoch,
        released,
    };
    (link, signal)
}

/// A logged-in connection's session.
pub(crate) struct Attached {
    pub session: SessionHandle,
    pub released: oneshot::Receiver<Release>,
}

/// What a `hello` asks for.
pub(crate) struct Hello {
    pub user: UserId,
    pub device: DeviceId,
    pub token: String,
    pub resume: Option<Resume>,
}

/// How a logged-in connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The connection ended on its own: the session starts its grace period.
    Detach,
    /// The session let the connection go (replaced, ended, too slow).
    Released,
}

/// Reads frames and hands them to the session until the connection ends, the
/// session lets it go, or the server shuts down.
async fn run_session<S>(
    ctx: &Arc<ServerContext>,
    attached: Attached,
    frames: &mut Frames<S>,
    tx: &Writer,
    epoch: u64,
    peer: SocketAddr,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Attached {
        session,
        mut released,
    } = attached;
    let heartbeat = ctx.config.heartbeat();
    let silence_limit = heartbeat * 3;
    let mut pings = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    let mut limiter = RateLimiter::new(ctx.config.messages_per_sec, ctx.config.messages_burst);
    let mut protocol_errors = 0u32;
    let mut shutdown = ctx.shutdown_signal();
    loop {
        tokio::select! {
            frame = frames.next() => {
                last_heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(text))) => Some(text),
                    // Control frames count against the rate too: a ping
                    // flood is a flood.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
                    Some(Ok(Message::Binary(_))) => {
                        ctx.metrics.protocol_errors.inc();
                        return close(&session, tx, epoch, refusal(&Error::invalid("frame: binary frames are not part of the protocol"), 1003)).await;
                    }
                    Some(Ok(Message::Close(_))) | None => return Ending::Detach,
                    Some(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "connection failed");
                        return match too_large(ctx, &e) {
                            Some(last) => close(&session, tx, epoch, last).await,
                            None => Ending::Detach,
                        };
                    }
                };
                let verdict = limiter.check(Instant::now());
                if verdict != Verdict::Allowed {
                    ctx.metrics.rate_limited.inc();
                }
                if verdict == Verdict::Flood {
                    ctx.metrics.count_drop("flood");
                    tracing::warn!(%peer, user = %session.user, "connection cut off: flooding");
                    return close(&session, tx, epoch, refusal(&Error::new(ErrorCode::RateLimited, "too many frames: the connection is closed"), 1008)).await;
                }
                let Some(text) = text else { continue };
                let delivered = match decode(&text) {
                    // A second hello is a client bug: start over on a new connection.
                    Ok(ClientFrame::Hello { .. }) => {
                        ctx.metrics.protocol_errors.inc();
                        return close(&session, tx, epoch, refusal(&Error::invalid("hello: this connection is logged in already"), 1008)).await;
                    }
                    Ok(frame) => session.frame(epoch, frame, verdict == Verdict::Limited).await,
                    Err(bad) => {
                        ctx.metrics.protocol_errors.inc();
                        protocol_errors += 1;
                        if protocol_errors >= MAX_PROTOCOL_ERRORS {
                            ctx.metrics.count_drop("protocol_errors");
                            return close(&session, tx, epoch, refusal(&Error::invalid("too many malformed frames: the connection is closed"), 1008)).await;
                        }
                        match bad.id {
                            Some(id) => session.bad_request(epoch, id, bad.error).await,
                            None => tx.send(error_frame(&bad.error)).is_ok(),
                        }
                    }
                };
                if !delivered {
                    return Ending::Released; // the session has ended
                }
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= silence_limit {
                    ctx.metrics.count_drop("heartbeat");
                    tracing::info!(%peer, user = %session.user, "peer silent for three heartbeats: dropped");
                    return close(&session, tx, epoch, vec![Outgoing::Close(1001, "heartbeat timeout")]).await;
                }
                let _ = tx.send(Outgoing::Ping);
            }
            // `wait_for` sees a shutdown that began before this connection
            // subscribed, which `changed` would miss.
            // (Its guard dropped at once: a branch below awaits.)
            () = async { drop(shutdown.wait_for(|down| *down).await) } => {
                let _ = tx.send(Outgoing::Text(Utf8Bytes::from_static(SHUTDOWN_NOTICE)));
                let _ = tx.send(Outgoing::Close(1001, "the server is shutting down"));
                return Ending::Detach;
            }
            // Replaced by a newer connection, ended (logout, kicked out), or
            // dropped for not reading.
            why = &mut released => {
                if why == Ok(Release::TooSlow) {
                    ctx.metrics.count_drop("too_slow");
                    tracing::warn!(%peer, user = %session.user, "connection dropped: the client does not read what it is sent");
                }
                return Ending::Released;
            }
        }
    }
}

/// Closes a logged-in connection through its session, so that every answer
/// already on its way goes first.
async fn close(session: &SessionHandle, tx: &Writer, epoch: u64, last: Vec<Outgoing>) -> Ending {
    if let Err(last) = session.close(epoch, last).await {
        for outgoing in last {
            let _ = tx.send(outgoing);
        }
    }
    Ending::Released
}

#[cfg(test)]
mod tests {
    /// An idle connection's task is allocated at the size of its largest
    /// state for its whole life (see `serve_until`): keep it small. (Before
    /// the TLS path and the handshake were boxed it was 11 KiB.)
    #[test]
    fn the_connection_task_stays_small() {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            panic!("runtime");
        };
        let _entered = runtime.enter();
        let Ok(hub) = beckon::hub::Hub::new(beckon::hub::HubConfig::default()) else {
            panic!("hub");
        };
        let ctx = crate::ServerContext::new(crate::ServerConfig::default(), hub);
        let Ok(ticket) = ctx.admission.admit([127, 0, 0, 1].into()) else {
            panic!("admission");
        };
        let (stream, _other_end) = tokio::io::duplex(64);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let task = super::serve(ctx, stream, peer, ticket);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "the connection future is {size} bytes");
    }
}
