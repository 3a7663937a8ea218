//! Frames of a logged-in connection, decoded and handed to the hub. Results go
//! to the session's outbox. No I/O here, so the fuzz target drives it directly.

use std::sync::Arc;
use std::time::Instant;

use beckon::protocol::wire::ClientFrame;
use beckon::protocol::InviteeState;
use beckon::{Error, ErrorCode};
use serde::Deserialize;

use crate::session::{Ended, ServerSession};
use crate::ServerContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
    /// A frame out of place (a second hello): close with an error.
    OutOfPlace,
}

/// A frame that could not be decoded, with its request id when one could be
/// read, so that the request can still be answered.
#[derive(Debug)]
pub struct BadFrame {
    pub id: Option<u64>,
    pub error: Error,
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<ClientFrame, BadFrame> {
    serde_json::from_str::<ClientFrame>(text).map_err(|e| {
        #[derive(Deserialize)]
        struct JustTheId {
            id: u64,
        }
        let id = serde_json::from_str::<JustTheId>(text).ok().map(|j| j.id);
        BadFrame {
            id,
            error: Error::invalid(format!("frame: {e}")),
        }
    })
}

/// Answers request `id`, which could not be decoded, with `error`, unless it
/// is a repeat. Says whether it was answered.
pub fn answer_bad_request(session: &ServerSession, epoch: u64, id: u64, error: Error) -> bool {
    let mut last = session.last_request.lock();
    if !session.outbox.is_attached(epoch) || id <= *last {
        return false;
    }
    *last = id;
    session.outbox.result::<()>(id, Err(error));
    true
}

/// Handles one frame of a logged-in session. `limited`: the connection is over
/// its rate, so a request is answered with RATE_LIMITED instead of being run.
pub fn handle(
    ctx: &Arc<ServerContext>,
    session: &Arc<ServerSession>,
    epoch: u64,
    frame: ClientFrame,
    limited: bool,
) -> Flow {
    let hub = &ctx.hub;
    let hub_session = &session.hub_session;
    let Some(id) = frame.request_id() else {
        match frame {
            ClientFrame::Sync { .. } => hub.sync(hub_session),
            ClientFrame::Receipt { invitation_id } => hub.acknowledge(hub_session, &invitation_id),
            ClientFrame::Ack { seq } => session.outbox.ack(seq),
            // A second hello is a client bug: start over on a new connection.
            ClientFrame::Hello { .. } => {
                ctx.metrics.protocol_errors.inc();
                return Flow::OutOfPlace;
            }
            _ => {}
        }
        return Flow::Continue;
    };
    // Holding the request counter while the request runs: a repeat sent on a
    // newer connection of the same session waits, then is seen as a repeat.
    let mut last = session.last_request.lock();
    if !session.outbox.is_attached(epoch) {
        return Flow::Close;
    }
    let outbox = &session.outbox;
    if id == 0 {
        ctx.metrics.protocol_errors.inc();
        outbox.result::<()>(0, Err(Error::invalid("id: request ids start at 1")));
        return Flow::Continue;
    }
    if id <= *last {
        return Flow::Continue; // answered already; the answer is in the outbox
    }
    *last = id;
    let metrics = &ctx.metrics;
    let started = Instant::now();
    if limited {
        let op = op_name(&frame);
        metrics.observe(op, started.elapsed(), true);
        outbox.result::<()>(
            id,
            Err(Error::new(
                ErrorCode::RateLimited,
                format!(
                    "{op}: over this connection's limit of {} messages per second",
                    ctx.config.messages_per_sec
                ),
            )),
        );
        return Flow::Continue;
    }
    let done = |op: &'static str, failed: bool| metrics.observe(op, started.elapsed(), failed);
    match frame {
        ClientFrame::Send { request, .. } => hub.send_then(hub_session, request, |result| {
            done("send", result.is_err());
            outbox.result(id, result);
        }),
        ClientFrame::Cancel { request, .. } => hub.cancel_then(hub_session, request, |result| {
            done("cancel", result.is_err());
            outbox.result(id, result);
        }),
        ClientFrame::Accept { answer, .. } => {
            hub.answer_then(hub_session, answer, InviteeState::Accepted, |result| {
                done("accept", result.is_err());
                outbox.result(id, result);
            })
        }
        ClientFrame::Refuse { answer, .. } => {
            hub.answer_then(hub_session, answer, InviteeState::Rejected, |result| {
                done("refuse", result.is_err());
                outbox.result(id, result);
            })
        }
        ClientFrame::RenewToken { token, .. } => {
            let result = hub.renew_token(hub_session, &token);
            done("renew_token", result.is_err());
            outbox.result(id, result);
        }
        ClientFrame::Logout { .. } => {
            hub.logout(hub_session);
            done("logout", false);
            outbox.result(id, Ok(()));
            outbox.end(Ended::LoggedOut);
            drop(last);
            ctx.forget(session);
            return Flow::Close;
        }
        ClientFrame::Hello { .. }
        | ClientFrame::Sync { .. }
        | ClientFrame::Receipt { .. }
        | ClientFrame::Ack { .. } => {}
    }
    Flow::Continue
}

fn op_name(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::Send { .. } => "send",
        ClientFrame::Cancel { .. } => "cancel",
        ClientFrame::Accept { .. } => "accept",
        ClientFrame::Refuse { .. } => "refuse",
        ClientFrame::RenewToken { .. } => "renew_token",
        ClientFrame::Logout { .. } => "logout",
        ClientFrame::Hello { .. } => "hello",
        ClientFrame::Sync { .. } => "sync",
        ClientFrame::Receipt { .. } => "receipt",
        ClientFrame::Ack { .. } => "ack",
    }
}
