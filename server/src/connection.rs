//! One WebSocket connection: handshake and login deadlines, then frames in (rate
//! limited, decoded, handled) and frames out (from the session's outbox), with
//! heartbeats both ways. When it ends without a logout, its session waits out the
//! grace period for the client to resume. After a large frame, the connection
//! gives back the read buffer it grew (see `read_buffer`).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use beckon::protocol::wire::{ClientFrame, Resume, PROTOCOL_VERSION};
use beckon::protocol::{DeviceId, UserId};
use beckon::{Error, ErrorCode};
use futures_util::{ready, FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::handler::decode;
use crate::limiter::{RateLimiter, Verdict};
use crate::listener::Ticket;
use crate::read_buffer::Tracked;
use crate::session::Gated;
use crate::session::{detached, error_frame, Mail, Outgoing, Refusal, Release, Session};
use crate::store::DurableGate;
use crate::upgrade::{drain, read_head, Head, Replayed};
use crate::ServerContext;

/// What every connection is sent when the server goes away.
const SHUTDOWN_NOTICE: &str = r#"{"type":"shutdown"}"#;

/// Protocol errors one connection may make before it is cut off.
const MAX_PROTOCOL_ERRORS: u32 = 16;

/// tungstenite's read buffer: it clears the whole buffer on every read, and
/// most frames are small (the load tool measured +30 % invitations/s over its
/// default).
const READ_BUFFER_BYTES: usize = 1024;

/// A frame over this size grows the read buffer enough that the connection
/// gives the buffer back at its next heartbeat.
const LARGE_FRAME_BYTES: usize = 4 * READ_BUFFER_BYTES;

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

/// A connection that did not become a WebSocket.
struct Refused<S> {
    /// Its `connections_dropped_total` result.
    result: &'static str,
    why: String,
    /// The stream, when it was answered in HTTP (drained after the count).
    answered: Option<S>,
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
    // The request head first: what is not a WebSocket upgrade is answered
    // in plain HTTP here (tungstenite would close without a word). Both steps
    // count against the handshake deadline.
    let handshake = async {
        let mut stream = stream;
        let failed = |why: String| Refused {
            result: "handshake_failed",
            why,
            answered: None,
        };
        match read_head(&mut stream).await {
            Ok(Head::Upgrade(head)) => tokio_tungstenite::accept_hdr_async_with_config(
                Tracked::new(Replayed::new(head, stream)),
                choose_subprotocol,
                Some(ws_config(config)),
            )
            .await
            .map_err(|e| failed(e.to_string())),
            Ok(Head::Answered(result)) => Err(Refused {
                result,
                why: "not a websocket request: answered in HTTP".into(),
                answered: Some(stream),
            }),
            Ok(Head::Closed) => Err(failed("closed before a whole request".into())),
            Err(e) => Err(failed(e.to_string())),
        }
    };
    // The handshake and login phases are boxed: they end, and a connection's
    // task should not carry their size for the life of an idle connection.
    let mut ws = match Box::pin(timeout_at(handshake_deadline, handshake)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(refused)) => {
            tracing::debug!(%peer, result = refused.result, error = %refused.why, "websocket handshake failed");
            ctx.metrics.count_drop(refused.result);
            if let Some(stream) = refused.answered {
                Box::pin(drain(stream)).await;
            }
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "websocket handshake deadline passed");
            ctx.metrics.count_drop("handshake_timeout");
            return;
        }
    };
    ws.get_mut().handshake_done();
    let last = match Box::pin(log_in(&ctx, &mut ws, peer)).await {
        Ok(session) => {
            ticket.logged_in();
            run_session(&ctx, session, &mut ws, peer).await
        }
        Err(refusal) => refusal.into_iter().map(Gated::now).collect(),
    };
    drop(ticket);
    // Write what is left (a close frame, a shutdown notice), each frame once
    // the store has what it tells of; a peer that does not read gets a few
    // seconds.
    let _ = timeout(Duration::from_secs(5), finish(&ctx, &mut ws, last)).await;
    // Read what the peer still sends until it closes too (at most a second):
    // closing a socket with unread data resets the connection, and a reset
    // can destroy our close frame before the peer reads it.
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
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

/// The connection's WebSocket: one value both reads and writes, so that the
/// connection can swap it for a fresh one (see [`release_read_buffer`]).
type Ws<S> = WebSocketStream<Tracked<S>>;

fn ws_config(config: &crate::ServerConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes))
}

/// Swaps in a fresh WebSocket over the same stream, with a fresh small read
/// buffer (`true`), if tungstenite holds nothing it has read and not returned
/// and nothing it has not written; otherwise leaves it, to try again later.
async fn release_read_buffer<S>(ws: &mut Ws<S>, ctx: &ServerContext) -> Result<bool, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Writes what tungstenite still holds (a pong it owes), without waiting.
    match ws.flush().now_or_never() {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(e),
        None => return Ok(false),
    }
    if !ws.get_ref().at_rest() {
        return Ok(false);
    }
    let Some(stream) = ws.get_mut().take() else {
        return Ok(false);
    };
    let config = Some(ws_config(&ctx.config));
    *ws = WebSocketStream::from_raw_socket(stream, Role::Server, config).await;
    ctx.metrics.read_buffers_released.inc();
    Ok(true)
}

/// What the connection's socket did: a frame came (or the stream ended), or
/// writing failed.
enum Io {
    Frame(Option<Result<Message, WsError>>),
    WriteFailed(WsError),
}

/// Frames a connection may read and answer before it flushes what it owes,
/// even if more input is waiting: bounds how long an answer sits unsent.
const FRAMES_PER_FLUSH: u32 = 64;

/// Frames handed to tungstenite and not yet flushed to the socket.
#[derive(Default)]
struct Unflushed {
    frames: u32,
}

/// Hands what is queued to tungstenite and reads the next frame; flushes only
/// when there is nothing to read yet (or after `FRAMES_PER_FLUSH`), so the
/// answers to a burst of requests, and a burst of pushes, leave in one write.
/// Cancel-safe (it is one branch of the connection's select): a frame leaves
/// the queue only once tungstenite has taken it, and `unflushed` says whether
/// a flush is still owed.
/// A frame stays queued until the store has made durable what it tells of
/// (see [`crate::store::DurableGate`]).
fn io<'a, S>(
    ws: &'a mut Ws<S>,
    out: &'a mut VecDeque<Gated>,
    unflushed: &'a mut Unflushed,
    durable: &'a DurableGate,
) -> impl Future<Output = Io> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(Err(e)) = poll_feed_queued(ws, out, unflushed, durable, cx) {
            return Poll::Ready(Io::WriteFailed(e));
        }
        if unflushed.frames < FRAMES_PER_FLUSH {
            if let Poll::Ready(frame) = ws.poll_next_unpin(cx) {
                return Poll::Ready(Io::Frame(frame));
            }
        }
        if unflushed.frames > 0 {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => unflushed.frames = 0,
                Poll::Ready(Err(e)) => return Poll::Ready(Io::WriteFailed(e)),
                // The socket is full: reading goes on meanwhile (a client
                // too slow to read is dropped by its outbox's bounds).
                Poll::Pending => {}
            }
        }
        ws.poll_next_unpin(cx).map(Io::Frame)
    })
}

/// Hands the queued frames that may leave to tungstenite, which buffers them
/// until a flush.
fn poll_feed_queued<S>(
    ws: &mut Ws<S>,
    out: &mut VecDeque<Gated>,
    unflushed: &mut Unflushed,
    durable: &DurableGate,
    cx: &mut std::task::Context<'_>,
) -> Poll<Result<(), WsError>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while out.front().is_some_and(|g| durable.covers(g.after)) {
        ready!(ws.poll_ready_unpin(cx))?;
        let Some(gated) = out.pop_front() else {
            break;
        };
        ws.start_send_unpin(message(gated.outgoing))?;
        unflushed.frames = unflushed.frames.saturating_add(1);
    }
    Poll::Ready(Ok(()))
}

fn message(outgoing: Outgoing) -> Message {
    match outgoing {
        Outgoing::Text(text) => Message::Text(text),
        Outgoing::Ping => Message::Ping(Default::default()),
        Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from_static(reason),
        })),
    }
}

/// Writes the last frames of a connection, up to its close frame (or closes
/// it after them).
async fn finish<S>(ctx: &ServerContext, ws: &mut Ws<S>, last: VecDeque<Gated>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for Gated { outgoing, after } in last {
        if !ctx.durable.covers(after) {
            // What is written so far goes while the store catches up.
            let _ = ws.flush().await;
            ctx.durable.wait(after).await;
        }
        let close = matches!(outgoing, Outgoing::Close(..));
        if ws.feed(message(outgoing)).await.is_err() {
            return;
        }
        if close {
            let _ = ws.flush().await;
            return;
        }
    }
    let _ = SinkExt::close(ws).await;
}

/// An error frame, then a close frame.
fn refusal(error: &Error, close: u16) -> VecDeque<Outgoing> {
    VecDeque::from([error_frame(error), Outgoing::Close(close, "refused")])
}

/// PAYLOAD_TOO_LARGE and close 1009, if `error` is a frame over
/// `max_frame_bytes`.
fn too_large(ctx: &ServerContext, error: &WsError) -> Option<VecDeque<Outgoing>> {
    if !matches!(error, WsError::Capacity(_)) {
        return None;
    }
    ctx.metrics.count_drop("frame_too_large");
    let message = format!("frame: {error}");
    Some(refusal(
        &Error::new(ErrorCode::PayloadTooLarge, message),
        1009,
    ))
}

fn shutdown_notice() -> VecDeque<Outgoing> {
    VecDeque::from([
        Outgoing::Text(Utf8Bytes::from_static(SHUTDOWN_NOTICE)),
        Outgoing::Close(1001, "the server is shutting down"),
    ])
}

/// Waits for `hello` and opens or resumes its session, attached to this
/// connection; or what to write before closing.
async fn log_in<S>(
    ctx: &Arc<ServerContext>,
    ws: &mut Ws<S>,
    peer: SocketAddr,
) -> Result<Box<Session>, VecDeque<Outgoing>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One deadline for the whole wait: pings must not push it back, or a peer
    // could hold a connection open forever without logging in.
    let deadline = Instant::now() + Duration::from_millis(ctx.config.login_timeout_ms);
    let mut shutdown = ctx.shutdown_signal();
    let first = loop {
        let next = tokio::select! {
            next = timeout_at(deadline, ws.next()) => next,
            // Not logged in yet, but told like the others: a shutdown must not
            // wait for this connection's login deadline.
            // (Its guard dropped at once: a branch below awaits.)
            () = async { drop(shutdown.wait_for(|down| *down).await) } => {
                return Err(shutdown_notice());
            }
        };
        match next {
            Err(_) => {
                ctx.metrics.count_drop("login_timeout");
                return Err(refusal(
                    &Error::new(ErrorCode::NotLoggedIn, "hello: not received in time"),
                    1008,
                ));
            }
            Ok(Some(Ok(Message::Text(text)))) => break text,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Binary(_)))) => {
                ctx.metrics.protocol_errors.inc();
                return Err(refusal(
                    &Error::invalid("frame: binary frames are not part of the protocol"),
                    1003,
                ));
            }
            Ok(Some(Err(e))) => return Err(too_large(ctx, &e).unwrap_or_default()),
            Ok(_) => return Err(VecDeque::new()),
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
            return Err(refusal(
                &Error::invalid(format!(
                    "v: protocol version {v} is not supported (this server speaks {PROTOCOL_VERSION})"
                )),
                1002,
            ));
        }
        Ok(_) => {
            ctx.metrics.count_login("not_logged_in");
            return Err(refusal(
                &Error::new(ErrorCode::NotLoggedIn, "the first frame must be hello"),
                1008,
            ));
        }
        Err(error) => {
            ctx.metrics.protocol_errors.inc();
            return Err(refusal(&error.error, 1007));
        }
    };
    match open_session(ctx, hello).await {
        Ok(session) => {
            // Debug, not info: a login storm must not flood the log (the
            // `logins` metric counts them).
            tracing::debug!(%peer, user = %session.user(), "logged in");
            Ok(session)
        }
        Err(error) => {
            ctx.metrics.count_login(match error.code {
                ErrorCode::AuthFailed => "auth_failed",
                ErrorCode::TokenExpired => "token_expired",
                _ => "refused",
            });
            tracing::debug!(%peer, error = %error, "login refused");
            Err(refusal(&error, 1008))
        }
    }
}

/// Resumes the session named in `resume` when it is this user's and device's
/// and can be resumed; otherwise logs in afresh (taking over what a session
/// that could not be resumed handed over). The session comes attached.
pub(crate) async fn open_session(
    ctx: &Arc<ServerContext>,
    hello: Hello,
) -> Result<Box<Session>, Error> {
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
        if let Some(handle) = previous {
            match handle.resume(resume.seq, token.clone()).await {
                Ok(mut session) => {
                    session.attach(Some(resume.seq));
                    ctx.metrics.count_login("resumed");
                    return Ok(session);
                }
                Err(Refusal::Token(error)) => return Err(error),
                Err(Refusal::CannotResume(left)) => handover = left,
            }
        }
    }
    // Among several nodes, a login's generation orders it against the same
    // device's logins elsewhere.
    let gen = match ctx.cluster() {
        Some(cluster) => cluster.next_gen().await?,
        None => 0,
    };
    let mut session = crate::session::open(ctx, user, device, &token, handover, gen)?;
    session.attach(None);
    ctx.metrics.count_login("ok");
    Ok(session)
}

/// What a `hello` asks for.
pub(crate) struct Hello {
    pub user: UserId,
    pub device: DeviceId,
    pub token: String,
    pub resume: Option<Resume>,
}

/// What wakes a logged-in connection.
enum Event {
    Frame(Option<Result<Message, WsError>>),
    Mail(Option<Mail>),
    /// What the queued frames wait for became durable.
    Durable,
    WriteFailed(WsError),
    Heartbeat,
    Shutdown,
}

/// Runs the session on this connection: reads frames and hands them to it,
/// writes what it queues, until the connection ends, the session lets it go,
/// or the server shuts down. Then the session waits for a resume on a task of
/// its own (or has gone to a newer connection, or has ended); what this
/// connection still has to write comes back, with the store ticket it waits
/// for.
async fn run_session<S>(
    ctx: &Arc<ServerContext>,
    mut session: Box<Session>,
    ws: &mut Ws<S>,
    peer: SocketAddr,
) -> VecDeque<Gated>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let heartbeat = ctx.config.heartbeat();
    let silence_limit = heartbeat * 3;
    let mut pings = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    let mut limiter = RateLimiter::new(ctx.config.messages_per_sec, ctx.config.messages_burst);
    let mut protocol_errors = 0u32;
    let mut shutdown = ctx.shutdown_signal();
    let mut unflushed = Unflushed::default();
    // A large frame grew the read buffer: give it back at the next heartbeat.
    let mut grown = false;
    while session.released().is_none() {
        // Queued frames the store has not yet made durable what they tell
        // of wait for it (`io` writes the ones before them).
        let held = session.held_for(&ctx.durable);
        let event = {
            let (mail, out) = session.io();
            let Some(out) = out else { break };
            tokio::select! {
                io = io(ws, out, &mut unflushed, &ctx.durable) => match io {
                    Io::Frame(frame) => Event::Frame(frame),
                    Io::WriteFailed(e) => Event::WriteFailed(e),
                },
                mail = mail => Event::Mail(mail),
                () = ctx.durable.wait(held.unwrap_or(0)), if held.is_some() => Event::Durable,
                _ = pings.tick() => Event::Heartbeat,
                // `wait_for` sees a shutdown that began before this connection
                // subscribed, which `changed` would miss.
                // (Its guard dropped at once: a branch below awaits.)
                () = async { drop(shutdown.wait_for(|down| *down).await) } => Event::Shutdown,
            }
        };
        match event {
            Event::Frame(frame) => {
                last_heard = Instant::now();
                let Some(frame) = frame else { break };
                if matches!(&frame, Ok(message) if message.len() > LARGE_FRAME_BYTES) {
                    grown = true;
                }
                let mut state = Read {
                    ctx,
                    session: &mut session,
                    limiter: &mut limiter,
                    protocol_errors: &mut protocol_errors,
                    peer,
                };
                if state.frame(frame) == Flow::Detach {
                    break;
                }
            }
            Event::Mail(Some(mail)) => {
                // Mail that came together is taken together, so its frames
                // leave in one write.
                let mut next = Some(mail);
                let mut taken = 0;
                while let Some(mail) = next.take() {
                    if let Some(handoff) = session.mail(mail) {
                        // A newer connection resumes the session: it goes there.
                        let last = session.detach();
                        if let Some(back) = handoff.give(session) {
                            detached::spawn(back);
                        }
                        return last;
                    }
                    taken += 1;
                    if taken < FRAMES_PER_FLUSH {
                        next = session.waiting_mail();
                    }
                }
            }
            Event::Mail(None) => break,
            Event::Durable => {}
            Event::WriteFailed(e) => {
                tracing::debug!(%peer, error = %e, "connection failed");
                break;
            }
            Event::Heartbeat => {
                if grown {
                    match Box::pin(release_read_buffer(ws, ctx)).await {
                        Ok(released) => grown = !released,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "connection failed");
                            break;
                        }
                    }
                }
                if last_heard.elapsed() >= silence_limit {
                    ctx.metrics.count_drop("heartbeat");
                    tracing::info!(%peer, user = %session.user(), "peer silent for three heartbeats: dropped");
                    session.close_with([Outgoing::Close(1001, "heartbeat timeout")]);
                } else {
                    session.ping();
                }
            }
            Event::Shutdown => session.close_with(shutdown_notice()),
        }
    }
    if session.released() == Some(Release::TooSlow) {
        ctx.metrics.count_drop("too_slow");
        tracing::warn!(%peer, user = %session.user(), "connection dropped: the client does not read what it is sent");
    }
    let last = session.detach();
    detached::spawn(session);
    last
}

/// Whether the connection goes on after a frame.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// The peer closed or the connection failed.
    Detach,
}

/// What a logged-in connection needs to take a frame in.
struct Read<'a> {
    ctx: &'a ServerContext,
    session: &'a mut Session,
    limiter: &'a mut RateLimiter,
    protocol_errors: &'a mut u32,
    peer: SocketAddr,
}

impl Read<'_> {
    /// Rate-limits, decodes and hands one frame to the session; a frame the
    /// server will not take closes the connection (through the session, so
    /// that every answer already queued goes first).
    fn frame(&mut self, frame: Result<Message, WsError>) -> Flow {
        let (ctx, peer) = (self.ctx, self.peer);
        let text = match frame {
            Ok(Message::Text(text)) => Some(text),
            // Control frames count against the rate too: a ping flood is a
            // flood.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
            Ok(Message::Binary(_)) => {
                ctx.metrics.protocol_errors.inc();
                let error = Error::invalid("frame: binary frames are not part of the protocol");
                self.session.close_with(refusal(&error, 1003));
                return Flow::Continue;
            }
            Ok(Message::Close(_)) => return Flow::Detach,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection failed");
                return match too_large(ctx, &e) {
                    Some(last) => {
                        self.session.close_with(last);
                        Flow::Continue
                    }
                    None => Flow::Detach,
                };
            }
        };
        let verdict = self.limiter.check(Instant::now());
        if verdict != Verdict::Allowed {
            ctx.metrics.rate_limited.inc();
        }
        if verdict == Verdict::Flood {
            ctx.metrics.count_drop("flood");
            tracing::warn!(%peer, user = %self.session.user(), "connection cut off: flooding");
            let error = Error::new(
                ErrorCode::RateLimited,
                "too many frames: the connection is closed",
            );
            self.session.close_with(refusal(&error, 1008));
            return Flow::Continue;
        }
        let Some(text) = text else {
            return Flow::Continue;
        };
        match decode(&text) {
            // A second hello is a client bug: start over on a new connection.
            Ok(ClientFrame::Hello { .. }) => {
                ctx.metrics.protocol_errors.inc();
                let error = Error::invalid("hello: this connection is logged in already");
                self.session.close_with(refusal(&error, 1008));
            }
            Ok(frame) => self.session.frame(frame, verdict == Verdict::Limited),
            Err(bad) => {
                ctx.metrics.protocol_errors.inc();
                *self.protocol_errors += 1;
                if *self.protocol_errors >= MAX_PROTOCOL_ERRORS {
                    ctx.metrics.count_drop("protocol_errors");
                    let error =
                        Error::invalid("too many malformed frames: the connection is closed");
                    self.session.close_with(refusal(&error, 1008));
                    return Flow::Continue;
                }
                match bad.id {
                    Some(id) => self.session.bad_request(id, &bad.error),
                    None => self.session.write(error_frame(&bad.error)),
                }
            }
        }
        Flow::Continue
    }
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
        let Ok(hub) = beckon::hub::Hub::new(beckon::hub::HubConfig::default(), runtime.handle())
        else {
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
