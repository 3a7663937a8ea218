//! Requests of a logged-in session, run on the hub. No I/O and no session
//! state here: the session's task (`session/actor.rs`) decides whether a
//! request runs, and queues what [`run`] answers.

use std::sync::Arc;

use beckon::hub::{Hub, Session};
use beckon::protocol::wire::{ClientFrame, WireError};
use beckon::protocol::InviteeState;
use beckon::Error;
use serde::Serialize;

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
        // Only an object's `id` (serde would read a struct from `[12]` too).
        let id = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|frame| frame.get("id")?.as_u64());
        BadFrame {
            id,
            error: Error::invalid(format!("frame: {e}")),
        }
    })
}

/// A request's answer as it goes in a `result` frame: `"ok":...` or
/// `"error":...`.
pub struct Answer {
    pub body: String,
    pub failed: bool,
}

impl Answer {
    pub fn of<T: Serialize>(result: beckon::Result<T>) -> Answer {
        let body = match &result {
            Ok(ok) => serde_json::to_string(ok).map(|ok| format!(r#""ok":{ok}"#)),
            Err(error) => {
                serde_json::to_string(&WireError::from(error)).map(|e| format!(r#""error":{e}"#))
            }
        };
        match body {
            Ok(body) => Answer {
                body,
                failed: result.is_err(),
            },
            Err(e) => Answer::error(&Error::internal(format!("cannot encode a result: {e}"))),
        }
    }

    pub fn error(error: &Error) -> Answer {
        let error = serde_json::to_string(&WireError::from(error)).unwrap_or_default();
        Answer {
            body: format!(r#""error":{error}"#),
            failed: true,
        }
    }
}

/// Runs a request (send, cancel, accept, refuse, renew_token) on the hub.
/// `answer` gets its answer while the hub still holds the invitation, so it is
/// queued before any push about the invitation that another thread causes.
/// Logout and frames without a result are the session's own business.
pub fn run(hub: &Hub, session: &Arc<Session>, frame: ClientFrame, answer: impl FnOnce(Answer)) {
    match frame {
        ClientFrame::Send { request, .. } => {
            hub.send_then(session, request, |result| answer(Answer::of(result)))
        }
        ClientFrame::Cancel { request, .. } => {
            hub.cancel_then(session, request, |result| answer(Answer::of(result)))
        }
        ClientFrame::Accept { answer: a, .. } => {
            hub.answer_then(session, a, InviteeState::Accepted, |result| {
                answer(Answer::of(result))
            })
        }
        ClientFrame::Refuse { answer: a, .. } => {
            hub.answer_then(session, a, InviteeState::Rejected, |result| {
                answer(Answer::of(result))
            })
        }
        ClientFrame::RenewToken { token, .. } => {
            answer(Answer::of(hub.renew_token(session, &token)))
        }
        ClientFrame::SetPushTarget { target, .. } => {
            answer(Answer::of(hub.set_push_target(session, target)))
        }
        ClientFrame::ClearPushTarget { .. } => answer(Answer::of(hub.clear_push_target(session))),
        ClientFrame::QueryInvitations { query, .. } => {
            answer(Answer::of(hub.query_invitations(&session.user, &query)))
        }
        ClientFrame::Logout { .. }
        | ClientFrame::Hello { .. }
        | ClientFrame::Sync { .. }
        | ClientFrame::Receipt { .. }
        | ClientFrame::Ack { .. } => answer(Answer::error(&Error::internal(
            "not a request the hub runs",
        ))),
    }
}

pub fn op_name(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::Send { .. } => "send",
        ClientFrame::Cancel { .. } => "cancel",
        ClientFrame::Accept { .. } => "accept",
        ClientFrame::Refuse { .. } => "refuse",
        ClientFrame::RenewToken { .. } => "renew_token",
        ClientFrame::SetPushTarget { .. } => "set_push_target",
        ClientFrame::ClearPushTarget { .. } => "clear_push_target",
        ClientFrame::QueryInvitations { .. } => "query_invitations",
        ClientFrame::Logout { .. } => "logout",
        ClientFrame::Hello { .. } => "hello",
        ClientFrame::Sync { .. } => "sync",
        ClientFrame::Receipt { .. } => "receipt",
        ClientFrame::Ack { .. } => "ack",
    }
}
