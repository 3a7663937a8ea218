//! A client's session at the server, which outlives its connections: the hub
//! session, and the outbox of sequenced frames the client has not acknowledged.
//! When a connection drops, the session waits a grace period for the client to
//! resume it; a resumed session replays what the client missed, so nothing is
//! lost and nothing comes twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use beckon::hub::{Session, SessionSink};
use beckon::protocol::wire::WireError;
use beckon::protocol::{DeviceId, Push, UserId};
use beckon::Error;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Metrics;

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Outgoing {
    Text(Utf8Bytes),
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

/// Why a session can no longer be resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    LoggedOut,
    KickedOut,
    TokenExpired,
    /// The client did not come back within the grace period.
    Abandoned,
}

/// The frames a session has sent and the client has not acknowledged, and the
/// connection currently attached, if any. It is the hub session's sink.
pub struct Outbox {
    state: Mutex<OutboxState>,
    /// At most this many unacknowledged frames; beyond it the oldest go and the
    /// session can no longer be resumed (the client logs in afresh).
    capacity: usize,
    metrics: Arc<Metrics>,
}

struct OutboxState {
    next_seq: u64,
    unacked: VecDeque<(u64, Utf8Bytes)>,
    link: Option<Link>,
    /// Frames were dropped unacknowledged: a resume would miss them.
    gap: bool,
    /// The connection that detached last, while none is attached: its grace
    /// timer may end the session.
    detached: Option<u64>,
    ended: Option<Ended>,
}

struct Link {
    tx: UnboundedSender<Outgoing>,
    epoch: u64,
    /// Tells the connection to give up: its client does not keep up (the
    /// writer may be stuck on a full socket, so a queued close would not do).
    cut: Arc<Notify>,
}

impl Outbox {
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(OutboxState {
                next_seq: 1,
                unacked: VecDeque::new(),
                link: None,
                gap: false,
                detached: None,
                ended: None,
            }),
            capacity,
            metrics,
        })
    }

    /// Appends a sequenced frame made by `frame(seq)`, and sends it if a
    /// connection is attached.
    fn append(&self, frame: impl FnOnce(u64) -> String) {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let text = Utf8Bytes::from(frame(seq));
        if let Some(link) = &state.link {
            let _ = link.tx.send(Outgoing::Text(text.clone()));
        }
        state.unacked.push_back((seq, text));
        if state.unacked.len() > self.capacity {
            state.unacked.pop_front();
            if !state.gap {
                state.gap = true;
                self.metrics.outbox_overflows.inc();
                // A client this far behind (not reading, not acknowledging)
                // is dropped, so its connection's queue stays bounded too.
                if let Some(link) = &state.link {
                    link.cut.notify_one();
                }
            }
        }
    }

    /// Queues the result of request `id`.
    pub fn result<T: Serialize>(&self, id: u64, result: beckon::Result<T>) {
        let body = match &result {
            Ok(ok) => serde_json::to_string(ok).map(|ok| format!(r#""ok":{ok}"#)),
            Err(error) => serde_json::to_string(&WireError::from(error))
                .map(|error| format!(r#""error":{error}"#)),
        };
        let body = body.unwrap_or_else(|e| {
            let error = WireError::from(&Error::internal(format!("cannot encode a result: {e}")));
            let error = serde_json::to_string(&error).unwrap_or_default();
            format!(r#""error":{error}"#)
        });
        self.append(|seq| format!(r#"{{"type":"result","id":{id},"seq":{seq},{body}}}"#));
    }

    /// Forgets everything up to and including `seq`.
    pub fn ack(&self, seq: u64) {
        let mut state = self.state.lock();
        while state.unacked.front().is_some_and(|(s, _)| *s <= seq) {
            state.unacked.pop_front();
        }
    }

    /// Attaches a connection: sends `welcome` and then, when resuming, every
    /// frame after `resume_from` that the client has not seen. Detaches the
    /// connection attached before, which is closed. Fails if the session cannot
    /// be resumed from there.
    pub fn attach(
        &self,
        tx: UnboundedSender<Outgoing>,
        epoch: u64,
        welcome: impl FnOnce() -> String,
        resume_from: Option<u64>,
    ) -> Result<(), &'static str> {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return Err("the session has ended");
        }
        if let Some(seen) = resume_from {
            if state.gap || seen >= state.next_seq {
                return Err("the session cannot be resumed from there");
            }
            let first_kept = state.unacked.front().map_or(state.next_seq, |(s, _)| *s);
            if seen + 1 < first_kept {
                return Err("frames the client has not seen are gone");
            }
        }
        if let Some(old) = state.link.take() {
            let _ = old
                .tx
                .send(Outgoing::Close(4000, "replaced by a newer connection"));
        }
        let _ = tx.send(Outgoing::Text(Utf8Bytes::from(welcome())));
        if let Some(seen) = resume_from {
            for (_, text) in state.unacked.iter().filter(|(s, _)| *s > seen) {
                let _ = tx.send(Outgoing::Text(text.clone()));
            }
        }
        state.link = Some(Link {
            tx,
            epoch,
            cut: Arc::new(Notify::new()),
        });
        state.detached = None;
        Ok(())
    }

    /// Detaches connection `epoch` if it is still the attached one; says whether
    /// it was.
    pub fn detach(&self, epoch: u64) -> bool {
        let mut state = self.state.lock();
        if state.link.as_ref().is_some_and(|l| l.epoch == epoch) {
            state.link = None;
            state.detached = Some(epoch);
            true
        } else {
            false
        }
    }

    /// Ends the session if connection `epoch` was the last to detach and none
    /// came since; says whether it did (then the caller logs it out of the hub).
    pub fn abandon_if_detached(&self, epoch: u64) -> bool {
        let mut state = self.state.lock();
        if state.link.is_none() && state.detached == Some(epoch) && state.ended.is_none() {
            state.ended = Some(Ended::Abandoned);
            state.unacked.clear();
            true
        } else {
            false
        }
    }

    /// Notified when connection `epoch` must be dropped (its client fell too
    /// far behind).
    pub fn cut_signal(&self, epoch: u64) -> Option<Arc<Notify>> {
        let state = self.state.lock();
        let link = state.link.as_ref().filter(|l| l.epoch == epoch)?;
        Some(link.cut.clone())
    }

    pub fn is_attached(&self, epoch: u64) -> bool {
        self.state
            .lock()
            .link
            .as_ref()
            .is_some_and(|l| l.epoch == epoch)
    }

    /// Marks the session ended (it can no longer be resumed); the attached
    /// connection, if any, is closed after what was queued.
    pub fn end(&self, why: Ended) {
        let mut state = self.state.lock();
        if state.ended.is_none() {
            state.ended = Some(why);
        }
        state.unacked.clear();
        if let Some(link) = state.link.take() {
            let _ = link.tx.send(Outgoing::Close(1000, close_reason(why)));
        }
    }

    pub fn ended(&self) -> Option<Ended> {
        self.state.lock().ended
    }

    pub fn last_seq(&self) -> u64 {
        self.state.lock().next_seq - 1
    }

    /// Sends the `shutdown` notice to the attached connection and closes it.
    pub fn shut_down(&self, notice: &str) {
        let state = self.state.lock();
        if let Some(link) = &state.link {
            let _ = link.tx.send(Outgoing::Text(Utf8Bytes::from(notice)));
            let _ = link
                .tx
                .send(Outgoing::Close(1001, "the server is shutting down"));
        }
    }
}

fn close_reason(why: Ended) -> &'static str {
    match why {
        Ended::LoggedOut => "logged out",
        Ended::KickedOut => "kicked out: the device logged in again",
        Ended::TokenExpired => "the token expired",
        Ended::Abandoned => "the session was abandoned",
    }
}

impl SessionSink for Outbox {
    /// Called by the hub under its locks: encodes and queues, nothing more.
    fn deliver(&self, push: Push) {
        let ends = match push {
            Push::KickedOut => Some(Ended::KickedOut),
            Push::TokenExpired => Some(Ended::TokenExpired),
            _ => None,
        };
        match serde_json::to_string(&push) {
            Ok(body) => {
                self.append(|seq| format!(r#"{{"type":"push","seq":{seq},"push":{body}}}"#))
            }
            Err(_) => {
                self.metrics.encode_failures.inc();
            }
        }
        self.metrics.pushes.inc();
        if let Some(why) = ends {
            self.end(why);
        }
    }
}

/// A session as the server keeps it between connections.
pub struct ServerSession {
    /// The secret a client presents to resume this session.
    pub secret: String,
    pub user: UserId,
    pub device: DeviceId,
    pub hub_session: Arc<Session>,
    pub outbox: Arc<Outbox>,
    /// The highest request id handled; requests at or below it are repeats
    /// from a reconnect and are ignored (their results are in the outbox).
    /// Held while a request is handled, so two connections of one session
    /// never handle the same id.
    pub last_request: Mutex<u64>,
}

/// Every live session by its secret.
#[derive(Default)]
pub struct Sessions {
    by_secret: Mutex<HashMap<String, Arc<ServerSession>>>,
}

impl Sessions {
    pub fn insert(&self, session: Arc<ServerSession>) {
        self.by_secret
            .lock()
            .insert(session.secret.clone(), session);
    }

    pub fn get(&self, secret: &str) -> Option<Arc<ServerSession>> {
        self.by_secret.lock().get(secret).cloned()
    }

    pub fn remove(&self, secret: &str) {
        self.by_secret.lock().remove(secret);
    }

    pub fn all(&self) -> Vec<Arc<ServerSession>> {
        self.by_secret.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_secret.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fresh session secret: 128 random bits in hex.
pub fn new_secret() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}
