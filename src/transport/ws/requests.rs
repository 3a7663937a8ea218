//! The requests of one link, from the moment the application makes them until
//! each is answered: their ids (growing, as the server requires), their
//! encoded frames (kept for re-sending after a reconnect), their deadlines, and
//! the one completion each gets. Owned by the link task alone.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::wire::ClientFrame;
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, SendInvitation, SendOutcome, UserId,
};
use crate::transport::Reply;

/// A request as the application's handle passes it to the link.
pub(crate) enum Request {
    Send {
        request: SendInvitation,
        reply: Reply<SendOutcome>,
    },
    Cancel {
        request: CancelInvitation,
        reply: Reply<CancelOutcome>,
    },
    Accept {
        answer: Answer,
        reply: Reply<()>,
    },
    Refuse {
        answer: Answer,
        reply: Reply<()>,
    },
    RenewToken {
        token: String,
        reply: Reply<()>,
    },
}

impl Request {
    /// Completes a request that never reached the link's table.
    pub(crate) fn fail(self, error: Error) {
        match self {
            Request::Send { reply, .. } => reply(Err(error)),
            Request::Cancel { reply, .. } => reply(Err(error)),
            Request::Accept { reply, .. }
            | Request::Refuse { reply, .. }
            | Request::RenewToken { reply, .. } => reply(Err(error)),
        }
    }
}

/// How a request's result is read and handed back.
enum Replying {
    /// A send also tells the tracker what the application now knows.
    Send {
        invitees: Vec<UserId>,
        timeout_secs: u32,
        reply: Reply<SendOutcome>,
    },
    Cancel(Reply<CancelOutcome>),
    Unit(Reply<()>),
    /// The new token is used for reconnects once the server accepted it.
    RenewToken {
        token: String,
        reply: Reply<()>,
    },
}

impl Replying {
    fn fail(self, error: Error) {
        match self {
            Replying::Send { reply, .. } => reply(Err(error)),
            Replying::Cancel(reply) => reply(Err(error)),
            Replying::Unit(reply) | Replying::RenewToken { reply, .. } => reply(Err(error)),
        }
    }
}

/// What an answered request means to the link, beyond its callback.
pub(super) enum Answered {
    Nothing,
    /// A send succeeded: the application knows this invitation now.
    Sent {
        outcome: SendOutcome,
        invitees: Vec<UserId>,
        timeout_secs: u32,
    },
    /// The server took this token: use it from now on.
    Token(String),
}

struct Pending {
    frame: String,
    deadline: Instant,
    replying: Replying,
}

pub(super) struct Requests {
    next_id: u64,
    /// By id, so also by deadline (every request gets the same timeout).
    pending: BTreeMap<u64, Pending>,
    timeout: Duration,
}

impl Requests {
    pub fn new(timeout: Duration) -> Requests {
        Requests {
            next_id: 1,
            pending: BTreeMap::new(),
            timeout,
        }
    }

    /// Takes the next id for a frame (a request, or the logout).
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A server never ignores a new request as a repeat: ids stay above the
    /// highest one it says it handled.
    pub fn ids_above(&mut self, last_request: u64) {
        self.next_id = self.next_id.max(last_request.saturating_add(1));
    }

    /// Gives `request` the next id and keeps it until it is answered; returns
    /// the id (`None` if it could not be encoded, then it is completed).
    pub fn add(&mut self, request: Request, now: Instant) -> Option<u64> {
        let id = self.take_id();
        let (frame, replying) = match request {
            Request::Send { request, reply } => {
                let replying = Replying::Send {
                    invitees: request.invitees.clone(),
                    timeout_secs: request.timeout_secs,
                    reply,
                };
                (encode(&ClientFrame::Send { id, request }), replying)
            }
            Request::Cancel { request, reply } => (
                encode(&ClientFrame::Cancel { id, request }),
                Replying::Cancel(reply),
            ),
            Request::Accept { answer, reply } => (
                encode(&ClientFrame::Accept { id, answer }),
                Replying::Unit(reply),
            ),
            Request::Refuse { answer, reply } => (
                encode(&ClientFrame::Refuse { id, answer }),
                Replying::Unit(reply),
            ),
            Request::RenewToken { token, reply } => (
                encode(&ClientFrame::RenewToken {
                    id,
                    token: token.clone(),
                }),
                Replying::RenewToken { token, reply },
            ),
        };
        match frame {
            Ok(frame) => {
                let deadline = now + self.timeout;
                self.pending.insert(
                    id,
                    Pending {
                        frame,
                        deadline,
                        replying,
                    },
                );
                Some(id)
            }
            Err(error) => {
                replying.fail(error);
                None
            }
        }
    }

    pub fn frame(&self, id: u64) -> Option<&str> {
        self.pending.get(&id).map(|p| p.frame.as_str())
    }

    /// The frames of the requests not answered yet with an id above `above`,
    /// in id order.
    pub fn unanswered(&self, above: u64) -> impl Iterator<Item = (u64, &str)> {
        self.pending
            .range(above.saturating_add(1)..)
            .map(|(id, p)| (*id, p.frame.as_str()))
    }

    /// Completes request `id` with the server's answer (a repeat or an unknown
    /// id is ignored).
    pub fn answer(&mut self, id: u64, result: Result<Option<Box<RawValue>>>) -> Answered {
        let Some(pending) = self.pending.remove(&id) else {
            return Answered::Nothing;
        };
        match pending.replying {
            Replying::Send {
                invitees,
                timeout_secs,
                reply,
            } => {
                let outcome = decode::<SendOutcome>(result);
                let answered = match &outcome {
                    Ok(outcome) => Answered::Sent {
                        outcome: outcome.clone(),
                        invitees,
                        timeout_secs,
                    },
                    Err(_) => Answered::Nothing,
                };
                reply(outcome);
                answered
            }
            Replying::Cancel(reply) => {
                reply(decode(result));
                Answered::Nothing
            }
            Replying::Unit(reply) => {
                reply(decode(result));
                Answered::Nothing
            }
            Replying::RenewToken { token, reply } => {
                let result = decode::<()>(result);
                let answered = match result {
                    Ok(()) => Answered::Token(token),
                    Err(_) => Answered::Nothing,
                };
                reply(result);
                answered
            }
        }
    }

    /// Completes request `id` with `error` without an answer from the server.
    pub fn fail(&mut self, id: u64, error: Error) {
        if let Some(pending) = self.pending.remove(&id) {
            pending.replying.fail(error);
        }
    }

    /// Fails every request whose deadline has passed with REQUEST_TIMEOUT.
    pub fn expire(&mut self, now: Instant) {
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().deadline > now {
                return;
            }
            entry.remove().replying.fail(Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "no answer from the server within {} ms",
                    self.timeout.as_millis()
                ),
            ));
        }
    }

    /// Fails every request still waiting with `error`.
    pub fn fail_all(&mut self, error: &Error) {
        for (_, pending) in std::mem::take(&mut self.pending) {
            pending.replying.fail(error.clone());
        }
    }
}

impl Drop for Requests {
    /// Only reached with requests left when the link task panicked (its every
    /// ordinary end fails them first): each still completes, once.
    fn drop(&mut self) {
        self.fail_all(&Error::internal(
            "the connection's link task failed (a bug: it panicked); see the log",
        ));
    }
}

fn encode(frame: &ClientFrame) -> Result<String> {
    serde_json::to_string(frame)
        .map_err(|e| Error::internal(format!("cannot encode a request: {e}")))
}

fn decode<T: DeserializeOwned>(result: Result<Option<Box<RawValue>>>) -> Result<T> {
    result.and_then(|ok| {
        let text = ok.as_ref().map_or("null", |raw| raw.get());
        serde_json::from_str::<T>(text).map_err(|e| {
            Error::new(
                ErrorCode::Server,
                format!("the server's result is malformed: {e}"),
            )
        })
    })
}
