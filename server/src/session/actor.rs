//! The task that owns one session (see `mod.rs`): it handles the frames of the
//! attached connection, queues the hub's pushes, replays on resume and ends
//! the session after the grace period. Everything here runs on that task, so
//! nothing here takes a lock of its own; the hub keeps its locks inside.

use std::sync::Arc;
use std::time::Duration;

use beckon::hub::Session;
use beckon::protocol::wire::{ClientFrame, ServerFrame, Welcome, PROTOCOL_VERSION};
use beckon::protocol::{InvitationId, Push};
use beckon::{Error, ErrorCode};
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{Command, Ended, Handover, Link, Outbox, Outgoing, RecentResults, Refusal, Release};
use crate::handler::{self, Answer};
use crate::ServerContext;

/// Messages handled per wake-up beyond the first, before the session yields
/// to the select again.
const BATCH: usize = 32;

pub(super) fn spawn(
    ctx: Arc<ServerContext>,
    secret: Arc<str>,
    hub_session: Arc<Session>,
    link: Link,
    handover: Option<Handover>,
    commands: Receiver<Box<Command>>,
    pushes: UnboundedReceiver<Box<Push>>,
) {
    let grace = Duration::from_secs(ctx.config.grace_secs);
    let outbox = Outbox::new(ctx.config.outbox_capacity, ctx.config.outbox_max_bytes);
    let (last_request, results) = match handover {
        Some(handover) => (handover.last_request, handover.results),
        None => (0, RecentResults::new(grace)),
    };
    let mut actor = SessionActor {
        ctx,
        secret,
        hub_session,
        outbox,
        link: None,
        last_request,
        handed_over_through: last_request,
        results,
        grace,
        grace_until: None,
        ended: None,
    };
    actor.attach(link, None);
    tokio::spawn(actor.run(commands, pushes));
}

struct SessionActor {
    ctx: Arc<ServerContext>,
    secret: Arc<str>,
    hub_session: Arc<Session>,
    outbox: Outbox,
    link: Option<Link>,
    /// The highest request id handled. Requests at or below it are repeats
    /// from a reconnect and are not run again: their results are in the
    /// outbox, or, at or below `handed_over_through`, in `results`.
    last_request: u64,
    /// Requests up to here ran in the session this one took over from.
    handed_over_through: u64,
    /// Answers that never reached the client, for a fresh session after this
    /// one (or taken over from the session before).
    results: RecentResults,
    grace: Duration,
    /// Detached: the session ends then unless the client resumes it.
    grace_until: Option<Instant>,
    ended: Option<Ended>,
}

impl SessionActor {
    async fn run(
        mut self,
        mut commands: Receiver<Box<Command>>,
        mut pushes: UnboundedReceiver<Box<Push>>,
    ) {
        while self.ended.is_none() {
            let grace_until = self.grace_until;
            // The timer exists only while detached (made when first polled).
            let grace = async move {
                match grace_until {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(push) = pushes.recv() => self.push(*push),
                command = commands.recv() => match command {
                    Some(command) => self.command(*command),
                    None => break,
                },
                () = grace, if grace_until.is_some() => self.abandon(),
            }
            // Whatever else has queued meanwhile, without another trip
            // through the select (bounded, so neither queue starves the other).
            for _ in 0..BATCH {
                if self.ended.is_some() {
                    break;
                }
                let mut idle = true;
                if let Ok(push) = pushes.try_recv() {
                    self.push(*push);
                    idle = false;
                }
                if let Ok(command) = commands.try_recv() {
                    self.command(*command);
                    idle = false;
                }
                if idle {
                    break;
                }
            }
        }
        self.ctx.sessions.remove(&self.secret);
        self.ctx.metrics.sessions_live.dec();
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Resume(request) => {
                let super::ResumeRequest {
                    link,
                    seen,
                    token,
                    reply,
                } = request;
                let resumed = self.resume(link, seen, &token);
                let _ = reply.send(resumed);
            }
            Command::Frame {
                epoch,
                frame,
                limited,
            } => self.frame(epoch, frame, limited),
            Command::BadRequest { epoch, id, error } => {
                if self.is_attached(epoch) {
                    self.bad_request(id, &error);
                }
            }
            Command::Detach { epoch } => {
                if self.is_attached(epoch) {
                    self.link = None;
                    self.start_grace();
                }
            }
            Command::Close { epoch, last } => {
                if let Some(link) = self.link.take_if(|l| l.epoch == epoch) {
                    for outgoing in last {
                        let _ = link.tx.send(outgoing);
                    }
                    self.start_grace();
                }
            }
        }
    }

    fn is_attached(&self, epoch: u64) -> bool {
        self.link.as_ref().is_some_and(|l| l.epoch == epoch)
    }

    /// Sends `welcome` and what the client has not seen (everything on a
    /// session's first connection), then keeps the link.
    fn attach(&mut self, link: Link, seen: Option<u64>) {
        let _ = link.tx.send(Outgoing::Text(self.welcome(seen.is_some())));
        let missed: Vec<Utf8Bytes> = match seen {
            Some(seen) => self
                .outbox
                .replay_after(seen)
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            None => self
                .outbox
                .replay_after(0)
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        };
        for text in missed {
            let _ = link.tx.send(Outgoing::Text(text));
        }
        self.link = Some(link);
        self.grace_until = None;
    }

    fn resume(&mut self, link: Link, seen: u64, token: &str) -> Result<(), Refusal> {
        let hub = &self.ctx.hub;
        // Re-authenticate: the token must be good now, and becomes the
        // session's token.
        hub.check_token(&self.hub_session.user, token)
            .map_err(Refusal::Token)?;
        if self.outbox.replay_after(seen).is_err() {
            return Err(Refusal::CannotResume(Some(self.hand_over())));
        }
        if hub.renew_token(&self.hub_session, token).is_err() {
            return Err(Refusal::CannotResume(None)); // ended meanwhile
        }
        if let Some(old) = self.link.take() {
            let _ = old
                .tx
                .send(Outgoing::Close(4000, "replaced by a newer connection"));
        }
        self.attach(link, Some(seen));
        Ok(())
    }

    /// What a fresh session of the same device needs to answer requests the
    /// client re-sends: every answer the client may not have received.
    fn hand_over(&mut self) -> Handover {
        let now = Instant::now();
        let mut results = std::mem::replace(&mut self.results, RecentResults::new(self.grace));
        for (id, answer) in self.outbox.unacked_results() {
            results.remember(id, answer, now);
        }
        Handover {
            last_request: self.last_request,
            results,
        }
    }

    fn welcome(&self, resumed: bool) -> Utf8Bytes {
        let config = &self.ctx.config;
        let welcome = Welcome {
            v: PROTOCOL_VERSION,
            session: self.secret.to_string(),
            resumed,
            // A fresh session runs every request the client re-sends (and
            // answers those its predecessor ran as they were answered).
            last_request: if resumed { self.last_request } else { 0 },
            limits: self.ctx.hub.config().limits.clone(),
            heartbeat_secs: config.heartbeat_secs,
            grace_secs: u32::try_from(config.grace_secs).unwrap_or(u32::MAX),
            max_frame_bytes: config.max_frame_bytes,
        };
        Utf8Bytes::from(serde_json::to_string(&ServerFrame::Welcome(welcome)).unwrap_or_default())
    }

    fn frame(&mut self, epoch: u64, frame: ClientFrame, limited: bool) {
        match frame {
            // What the client received, from whichever connection it says so.
            ClientFrame::Ack { seq } => return self.outbox.ack(seq),
            ClientFrame::Receipt { invitation_id } => {
                return self.ctx.hub.acknowledge(&self.hub_session, &invitation_id)
            }
            _ => {}
        }
        if !self.is_attached(epoch) {
            return; // from a connection that was replaced or let go
        }
        let Some(id) = frame.request_id() else {
            if let ClientFrame::Sync { known } = frame {
                if let Some(known) = known {
                    self.snapshot(&known);
                }
                self.ctx.hub.sync(&self.hub_session);
            }
            return;
        };
        self.request(id, frame, limited);
    }

    /// What the hub knows of the user's invitations, for a client whose
    /// session was lost: sequenced before anything the hub pushes after it.
    fn snapshot(&mut self, known: &[InvitationId]) {
        let snapshot = self.ctx.hub.snapshot(&self.hub_session, known);
        match serde_json::to_string(&snapshot) {
            Ok(body) => {
                let frame = |seq| format!(r#"{{"type":"snapshot","seq":{seq},"snapshot":{body}}}"#);
                let appended = self.outbox.append(frame);
                self.sent(appended);
            }
            Err(_) => {
                self.ctx.metrics.encode_failures.inc();
            }
        }
    }

    fn request(&mut self, id: u64, frame: ClientFrame, limited: bool) {
        let metrics = self.ctx.metrics.clone();
        if id == 0 {
            metrics.protocol_errors.inc();
            let error = Error::invalid("id: request ids start at 1");
            return self.answer(0, Answer::error(&error));
        }
        if id <= self.last_request {
            let answered = (id <= self.handed_over_through)
                .then(|| self.results.take(id, Instant::now()))
                .flatten();
            match answered {
                // Ran in the session this one took over from: the same answer.
                Some(answer) => {
                    return self.answer(
                        id,
                        Answer {
                            body: answer,
                            failed: false,
                        },
                    )
                }
                // Its answer is gone: it runs again.
                None if id <= self.handed_over_through => {}
                // Answered already; the answer is in the outbox.
                None => return,
            }
        }
        self.last_request = self.last_request.max(id);
        let started = std::time::Instant::now();
        let op = handler::op_name(&frame);
        if limited {
            metrics.observe(op, started.elapsed(), true);
            let error = Error::new(
                ErrorCode::RateLimited,
                format!(
                    "{op}: over this connection's limit of {} messages per second",
                    self.ctx.config.messages_per_sec
                ),
            );
            return self.answer(id, Answer::error(&error));
        }
        if let ClientFrame::Logout { .. } = frame {
            self.ctx.hub.logout(&self.hub_session);
            metrics.observe(op, started.elapsed(), false);
            self.answer(id, Answer::of(Ok(())));
            return self.end(Ended::LoggedOut);
        }
        let hub = self.ctx.hub.clone();
        let hub_session = self.hub_session.clone();
        handler::run(&hub, &hub_session, frame, |answer| {
            metrics.observe(op, started.elapsed(), answer.failed);
            self.answer(id, answer);
        });
    }

    /// A request that could not be decoded: answered with its error unless it
    /// is a repeat; then the error goes alone (not sequenced).
    fn bad_request(&mut self, id: u64, error: &Error) {
        if id > self.last_request {
            self.last_request = id;
            self.answer(id, Answer::error(error));
        } else if let Some(link) = &self.link {
            let _ = link.tx.send(crate::connection::error_frame(error));
        }
    }

    fn answer(&mut self, id: u64, answer: Answer) {
        let appended = self.outbox.append_result(id, &answer.body);
        self.sent(appended);
    }

    fn push(&mut self, push: Push) {
        let ends = match push {
            Push::KickedOut => Some(Ended::KickedOut),
            Push::TokenExpired => Some(Ended::TokenExpired),
            _ => None,
        };
        match serde_json::to_string(&push) {
            Ok(body) => {
                let frame = |seq| format!(r#"{{"type":"push","seq":{seq},"push":{body}}}"#);
                let appended = self.outbox.append(frame);
                self.sent(appended);
            }
            Err(_) => {
                self.ctx.metrics.encode_failures.inc();
            }
        }
        self.ctx.metrics.pushes.inc();
        if let Some(why) = ends {
            self.end(why);
        }
    }

    /// Sends what was appended to the outbox; a client whose outbox overflowed
    /// is dropped (it does not read), so its connection's queue stays bounded
    /// too, and it comes back on a fresh session.
    fn sent(&mut self, appended: super::outbox::Appended) {
        if !appended.lost_results.is_empty() {
            let now = Instant::now();
            for (id, answer) in appended.lost_results {
                self.results.remember(id, answer, now);
            }
        }
        if let Some(link) = &self.link {
            let _ = link.tx.send(Outgoing::Text(appended.text));
        }
        if appended.overflowed {
            self.ctx.metrics.outbox_overflows.inc();
            if let Some(link) = self.link.take() {
                let _ = link.released.send(Release::TooSlow);
                self.start_grace();
            }
        }
    }

    fn start_grace(&mut self) {
        if self.ended.is_none() {
            self.grace_until = Some(Instant::now() + self.grace);
        }
    }

    /// The grace period passed without a resume.
    fn abandon(&mut self) {
        tracing::debug!(user = %self.hub_session.user, device = %self.hub_session.device, "session abandoned after the grace period");
        self.ctx.hub.logout(&self.hub_session);
        self.end(Ended::Abandoned);
    }

    /// The session can no longer be resumed; the attached connection, if any,
    /// is closed after what was queued.
    fn end(&mut self, why: Ended) {
        self.ended.get_or_insert(why);
        self.grace_until = None;
        if let Some(link) = self.link.take() {
            let _ = link.tx.send(Outgoing::Close(1000, close_reason(why)));
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
