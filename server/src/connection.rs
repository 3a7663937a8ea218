//! One WebSocket connection: handshake and login deadlines, then frames in (rate
//! limited, decoded, handled) and frames out (from the session's outbox), with
//! heartbeats both ways. When it ends without a logout, its session waits out the
//! grace period for the client to resume.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::wire::{
    ClientFrame, Resume, ServerFrame, Welcome, WireError, PROTOCOL_VERSION,
};
use beckon::protocol::{DeviceId, UserId};
use beckon::{Error, ErrorCode};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::handler::{decode, handle, Flow};
use crate::limiter::{RateLimiter, Verdict};
use crate::session::{new_secret, Outbox, Outgoing, ServerSession};
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

pub async fn serve<S>(ctx: Arc<ServerContext>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    ctx.metrics.connections_opened.inc();
    ctx.metrics.connections_open.inc();
    let _open = OpenConnection(ctx.clone());
    let config = &ctx.config;
    // A small read buffer: tungstenite clears the whole buffer on every read,
    // and most frames are small (the load tool measured +30 % invitations/s).
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        choose_subprotocol,
        Some(ws_config),
    );
    let handshake_deadline = Duration::from_millis(config.handshake_timeout_ms);
    let ws = match timeout(handshake_deadline, handshake).await {
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
    let (tx, rx) = unbounded_channel();
    let writer = tokio::spawn(write_frames(sink, rx));
    let epoch = ctx.next_epoch();

    if let Some(session) = log_in(&ctx, &mut frames, &tx, epoch, peer).await {
        run_session(&ctx, &session, &mut frames, &tx, epoch, peer).await;
        if session.outbox.detach(epoch) {
            ctx.start_grace(session.clone(), epoch);
        } else if session.outbox.ended().is_some() {
            ctx.forget(&session);
        }
    }
    drop(tx);
    // Let the writer send what is queued (a close frame, a shutdown notice);
    // a peer that does not read gets a few seconds.
    let mut writer = writer;
    if timeout(Duration::from_secs(5), &mut writer).await.is_err() {
        writer.abort();
    }
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
async fn write_frames<S>(mut sink: FrameSink<S>, mut rx: UnboundedReceiver<Outgoing>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next {
            let message = match outgoing {
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

fn error_frame(error: &Error) -> Outgoing {
    let frame = ServerFrame::Error(WireError::from(error));
    Outgoing::Text(Utf8Bytes::from(
        serde_json::to_string(&frame).unwrap_or_default(),
    ))
}

/// Refuses the connection with `error`, then closes it.
fn refuse(tx: &UnboundedSender<Outgoing>, error: &Error, close: u16) {
    let _ = tx.send(error_frame(error));
    let _ = tx.send(Outgoing::Close(close, "refused"));
}

/// Refuses the connection with PAYLOAD_TOO_LARGE (close 1009) if `error` is
/// a frame over `max_frame_bytes`.
fn refuse_if_too_large(
    ctx: &ServerContext,
    tx: &UnboundedSender<Outgoing>,
    error: &tokio_tungstenite::tungstenite::Error,
) {
    if matches!(error, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
        ctx.metrics.count_drop("frame_too_large");
        let message = format!("frame: {error}");
        refuse(tx, &Error::new(ErrorCode::PayloadTooLarge, message), 1009);
    }
}

/// Waits for `hello` and opens or resumes its session.
async fn log_in<S>(
    ctx: &Arc<ServerContext>,
    frames: &mut Frames<S>,
    tx: &UnboundedSender<Outgoing>,
    epoch: u64,
    peer: SocketAddr,
) -> Option<Arc<ServerSession>>
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
            _ = shutdown.wait_for(|down| *down) => {
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
                refuse_if_too_large(ctx, tx, &e);
                return None;
            }
            Ok(_) => return None,
        }
    };
    let (user, device, token, resume) = match decode(&first) {
        Ok(ClientFrame::Hello {
            v,
            user,
            device,
            token,
            resume,
        }) if v == PROTOCOL_VERSION => (user, device, token, resume),
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
    match open_session(ctx, user, device, &token, resume, tx, epoch) {
        Ok(session) => {
            tracing::info!(%peer, user = %session.user, device = %session.device, "logged in");
            Some(session)
        }
        Err(error) => {
            ctx.metrics.count_login(match error.code {
                ErrorCode::AuthFailed => "auth_failed",
                ErrorCode::TokenExpired => "token_expired",
                _ => "refused",
            });
            tracing::info!(%peer, error = %error, "login refused");
            refuse(tx, &error, 1008);
            None
        }
    }
}

/// Resumes the session named in `resume` when it is this user's and device's
/// and can be resumed; otherwise logs in afresh.
fn open_session(
    ctx: &Arc<ServerContext>,
    user: UserId,
    device: DeviceId,
    token: &str,
    resume: Option<Resume>,
    tx: &UnboundedSender<Outgoing>,
    epoch: u64,
) -> Result<Arc<ServerSession>, Error> {
    if ctx.shutting_down() {
        return Err(Error::new(ErrorCode::Server, "the server is shutting down"));
    }
    if let Some(resume) = resume {
        if let Some(session) = ctx.sessions.get(&resume.session) {
            if session.user == user && session.device == device {
                // Re-authenticate: the token must be good now, and becomes the
                // session's token.
                ctx.hub.check_token(&user, token)?;
                if ctx.hub.renew_token(&session.hub_session, token).is_ok() {
                    let welcome = || welcome(ctx, &session, true);
                    if session
                        .outbox
                        .attach(tx.clone(), epoch, welcome, Some(resume.seq))
                        .is_ok()
                    {
                        ctx.metrics.count_login("resumed");
                        return Ok(session);
                    }
                }
            }
        }
    }
    let outbox = Outbox::new(ctx.config.outbox_capacity, ctx.metrics.clone());
    let hub_session = ctx
        .hub
        .login(user.clone(), device.clone(), token, outbox.clone())?;
    let session = Arc::new(ServerSession {
        secret: new_secret(),
        user,
        device,
        hub_session,
        outbox,
        last_request: Default::default(),
    });
    ctx.sessions.insert(session.clone());
    ctx.metrics.sessions_live.inc();
    let welcome = || welcome(ctx, &session, false);
    if let Err(why) = session.outbox.attach(tx.clone(), epoch, welcome, None) {
        // Only if the hub ended the new session at once (kicked out by a login
        // racing this one).
        ctx.forget(&session);
        return Err(Error::new(ErrorCode::NotLoggedIn, why));
    }
    ctx.metrics.count_login("ok");
    Ok(session)
}

/// The `welcome` frame for `session`.
pub(crate) fn welcome(ctx: &ServerContext, session: &ServerSession, resumed: bool) -> String {
    let welcome = Welcome {
        v: PROTOCOL_VERSION,
        session: session.secret.clone(),
        resumed,
        last_request: *session.last_request.lock(),
        limits: ctx.hub.config().limits.clone(),
        heartbeat_secs: ctx.config.heartbeat_secs,
        grace_secs: u32::try_from(ctx.config.grace_secs).unwrap_or(u32::MAX),
        max_frame_bytes: ctx.config.max_frame_bytes,
    };
    serde_json::to_string(&ServerFrame::Welcome(welcome)).unwrap_or_default()
}

/// Reads frames until the connection ends, the session ends, or the server
/// shuts down.
async fn run_session<S>(
    ctx: &Arc<ServerContext>,
    session: &Arc<ServerSession>,
    frames: &mut Frames<S>,
    tx: &UnboundedSender<Outgoing>,
    epoch: u64,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let heartbeat = ctx.config.heartbeat();
    let silence_limit = heartbeat * 3;
    let mut pings = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    let mut limiter = RateLimiter::new(ctx.config.messages_per_sec, ctx.config.messages_burst);
    let mut protocol_errors = 0u32;
    let mut shutdown = ctx.shutdown_signal();
    let Some(cut) = session.outbox.cut_signal(epoch) else {
        return; // replaced or ended already
    };
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
                        refuse(tx, &Error::invalid("frame: binary frames are not part of the protocol"), 1003);
                        return;
                    }
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Err(e)) => {
                        refuse_if_too_large(ctx, tx, &e);
                        tracing::debug!(%peer, error = %e, "connection failed");
                        return;
                    }
                };
                let verdict = limiter.check(Instant::now());
                if verdict != Verdict::Allowed {
                    ctx.metrics.rate_limited.inc();
                }
                if verdict == Verdict::Flood {
                    ctx.metrics.count_drop("flood");
                    tracing::warn!(%peer, user = %session.user, "connection cut off: flooding");
                    refuse(tx, &Error::new(ErrorCode::RateLimited, "too many frames: the connection is closed"), 1008);
                    return;
                }
                let Some(text) = text else { continue };
                match decode(&text) {
                    Ok(frame) => {
                        match handle(ctx, session, epoch, frame, verdict == Verdict::Limited) {
                            Flow::Continue => {}
                            Flow::Close => return,
                            Flow::OutOfPlace => {
                                refuse(tx, &Error::invalid("hello: this connection is logged in already"), 1008);
                                return;
                            }
                        }
                    }
                    Err(bad) => {
                        ctx.metrics.protocol_errors.inc();
                        protocol_errors += 1;
                        let answered = bad.id.is_some_and(|id| crate::handler::answer_bad_request(session, epoch, id, bad.error.clone()));
                        if !answered {
                            let _ = tx.send(error_frame(&bad.error));
                        }
                        if protocol_errors >= MAX_PROTOCOL_ERRORS {
                            ctx.metrics.count_drop("protocol_errors");
                            refuse(tx, &Error::invalid("too many malformed frames: the connection is closed"), 1008);
                            return;
                        }
                    }
                }
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= silence_limit {
                    ctx.metrics.count_drop("heartbeat");
                    tracing::info!(%peer, user = %session.user, "peer silent for three heartbeats: dropped");
                    let _ = tx.send(Outgoing::Close(1001, "heartbeat timeout"));
                    return;
                }
                let _ = tx.send(Outgoing::Ping);
            }
            // `wait_for` sees a shutdown that began before this connection
            // subscribed, which `changed` would miss.
            _ = shutdown.wait_for(|down| *down) => {
                session.outbox.shut_down(SHUTDOWN_NOTICE);
                return;
            }
            _ = cut.notified() => {
                ctx.metrics.count_drop("too_slow");
                tracing::warn!(%peer, user = %session.user, "connection dropped: the client does not read what it is sent");
                return;
            }
        }
        if !session.outbox.is_attached(epoch) {
            // Ended (logout, kicked out) or replaced by a newer connection.
            return;
        }
    }
}
