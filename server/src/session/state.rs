//! A session's state and what it does with frames, pushes and resumes. Only
//! its owner (see `mod.rs`) holds it, so nothing here locks or waits: every
//! method runs to completion on the owner's task and leaves what is to be
//! written in the attached connection's queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::{Session as HubSession, Ticket};
use beckon::protocol::wire::{ClientFrame, ServerFrame, Welcome, WireError, PROTOCOL_VERSION};
use beckon::protocol::{InvitationId, Push};
use beckon::{Error, ErrorCode};
use futures_channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::outbox::Appended;
use super::{Ended, Gated, Handover, Mail, Outbox, Outgoing, RecentResults, Refusal, Release};
use crate::handler::{self, Answer};
use crate::ServerContext;

pub struct Session {
    ctx: Arc<ServerContext>,
    secret: Arc<str>,
    hub_session: Arc<HubSession>,
    outbox: Outbox,
    mailbox: UnboundedReceiver<Mail>,
    /// Mail other than a push, taken from the mailbox while pushes were
    /// brought forward (`take_waiting_pushes`): handled next.
    held_mail: Option<Mail>,
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
    /// What the attached connection is to write, in order; `None` while
    /// detached.
    out: Option<VecDeque<Gated>>,
    /// The session lets the attached connection go once `out` is written.
    released: Option<Release>,
    /// Detached: the session ends then unless the client resumes it.
    grace_until: Option<Instant>,
    ended: Option<Ended>,
    /// The store ticket of the newest change anything queued tells of.
    needs: Ticket,
    /// The login's generation among several nodes (0 on one).
    gen: u64,
}

/// A resume the session agreed to: the owner gives the session away with
/// [`Handoff::give`].
pub struct Handoff {
    reply: oneshot::Sender<Result<Box<Session>, Refusal>>,
}

impl Handoff {
    /// Hands `session` to the connection that asked for it; the session
    /// comes back when that connection is gone.
    pub fn give(self, session: Box<Session>) -> Option<Box<Session>> {
        match self.reply.send(Ok(session)) {
            Ok(()) => None,
            Err(Ok(session)) => Some(session),
            Err(Err(_)) => None,
        }
    }
}

impl Session {
    pub(super) fn new(
        ctx: Arc<ServerContext>,
        secret: Arc<str>,
        hub_session: Arc<HubSession>,
        handover: Option<Handover>,
        mailbox: UnboundedReceiver<Mail>,
        gen: u64,
    ) -> Box<Session> {
        let grace = Duration::from_secs(ctx.config.grace_secs);
        let outbox = Outbox::new(ctx.config.outbox_capacity, ctx.config.outbox_max_bytes);
        let (last_request, results) = match handover {
            Some(handover) => (handover.last_request, handover.results),
            None => (0, RecentResults::new(grace)),
        };
        Box::new(Session {
            ctx,
            secret,
            hub_session,
            outbox,
            mailbox,
            held_mail: None,
            last_request,
            handed_over_through: last_request,
            results,
            grace,
            out: None,
            released: None,
            grace_until: None,
            ended: None,
            needs: 0,
            gen,
        })
    }

    pub fn secret(&self) -> &Arc<str> {
        &self.secret
    }

    pub fn user(&self) -> &beckon::protocol::UserId {
        &self.hub_session.user
    }

    /// Attaches a connection, which is sent `welcome` and what the client has
    /// not seen: after `seen` on a resume, everything on a new session.
    pub fn attach(&mut self, seen: Option<u64>) {
        let mut out = VecDeque::new();
        let after = self.needs;
        out.push_back(Gated {
            outgoing: Outgoing::Text(self.welcome(seen.is_some())),
            after,
        });
        if let Ok(missed) = self.outbox.replay_after(seen.unwrap_or(0)) {
            out.extend(missed.cloned().map(|text| Gated {
                outgoing: Outgoing::Text(text),
                after,
            }));
        }
        self.out = Some(out);
        self.released = None;
        self.grace_until = None;
    }

    /// The next message from outside, and the attached connection's queue
    /// (both borrowed at once by the connection's loop).
    pub(crate) fn io(
        &mut self,
    ) -> (
        impl std::future::Future<Output = Option<Mail>> + '_,
        Option<&mut VecDeque<Gated>>,
    ) {
        let (held, mailbox) = (&mut self.held_mail, &mut self.mailbox);
        let next = async move {
            match held.take() {
                Some(mail) => Some(mail),
                None => mailbox.next().await,
            }
        };
        (next, self.out.as_mut())
    }

    /// Mail that is already waiting, without waiting for more.
    pub(crate) fn waiting_mail(&mut self) -> Option<Mail> {
        self.held_mail
            .take()
            .or_else(|| self.mailbox.try_recv().ok())
    }

    /// Queues the pushes already in the mailbox. Called before an answer is
    /// queued: the hub sent them before it answered, so the client learns of
    /// an accept by another user before its own cancel's INVITATION_CLOSED,
    /// and of what its own request caused before the request's answer.
    fn take_waiting_pushes(&mut self) {
        while self.held_mail.is_none() {
            match self.mailbox.try_recv() {
                Ok(Mail::Push(push)) => {
                    let (push, ticket) = *push;
                    self.push(push, ticket);
                }
                Ok(other) => self.held_mail = Some(other),
                Err(_) => break,
            }
        }
    }

    /// Why the attached connection is to go, once its queue is written.
    pub fn released(&self) -> Option<Release> {
        self.released
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    pub(super) fn grace_until(&self) -> Option<Instant> {
        self.grace_until
    }

    /// Lets the attached connection go: returns what it still has to write.
    /// Unless the session has ended, the grace period starts.
    pub fn detach(&mut self) -> VecDeque<Gated> {
        if self.ended.is_none() {
            self.grace_until = Some(Instant::now() + self.grace);
        }
        self.released = None;
        self.out.take().unwrap_or_default()
    }

    /// Closes the attached connection after everything queued, with `last`
    /// (an error frame, a close frame).
    pub fn close_with(&mut self, last: impl IntoIterator<Item = Outgoing>) {
        let after = self.needs;
        if let Some(out) = &mut self.out {
            out.extend(last.into_iter().map(|outgoing| Gated { outgoing, after }));
        }
        self.released.get_or_insert(Release::Closed);
    }

    /// Queues a heartbeat ping.
    pub fn ping(&mut self) {
        self.write(Outgoing::Ping);
    }

    /// Queues an unsequenced frame (an error about a frame that was not a
    /// request).
    pub fn write(&mut self, outgoing: Outgoing) {
        let after = self.needs;
        if let Some(out) = &mut self.out {
            out.push_back(Gated { outgoing, after });
        }
    }

    /// Handles a message from outside. A resume that can go ahead comes back
    /// as a [`Handoff`]: the owner lets its connection go and gives the
    /// session away.
    pub(crate) fn mail(&mut self, mail: Mail) -> Option<Handoff> {
        match mail {
            Mail::Push(push) => {
                let (push, ticket) = *push;
                self.push(push, ticket);
                None
            }
            Mail::Answer(answer) => {
                let (id, answer) = *answer;
                self.answer(id, answer);
                None
            }
            Mail::RunHere(request) => {
                let (id, frame) = *request;
                self.run_here(id, frame);
                None
            }
            Mail::Resume(request) => {
                let super::ResumeRequest { seen, token, reply } = *request;
                match self.check_resume(seen, &token) {
                    Ok(()) => {
                        if self.out.is_some() {
                            self.close_with([Outgoing::Close(
                                4000,
                                "replaced by a newer connection",
                            )]);
                        }
                        Some(Handoff { reply })
                    }
                    Err(refusal) => {
                        let _ = reply.send(Err(refusal));
                        None
                    }
                }
            }
        }
    }

    fn check_resume(&mut self, seen: u64, token: &str) -> Result<(), Refusal> {
        if self.ended.is_some() {
            return Err(Refusal::CannotResume(None));
        }
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
            // On a resume, whether the client's sync arrived before the drop:
            // a client that sent one re-sends it when not.
            synced: Some(self.hub_session.is_synced()),
        };
        Utf8Bytes::from(serde_json::to_string(&ServerFrame::Welcome(welcome)).unwrap_or_default())
    }

    /// A frame from the attached connection (`limited`: over the
    /// connection's rate, answered RATE_LIMITED).
    pub fn frame(&mut self, frame: ClientFrame, limited: bool) {
        match frame {
            ClientFrame::Ack { seq } => self.outbox.ack(seq),
            ClientFrame::Receipt { invitation_id } => match self.ctx.cluster() {
                Some(cluster) if !self.ctx.hub.has_invitation(&invitation_id) => {
                    let frame = ClientFrame::Receipt {
                        invitation_id: invitation_id.clone(),
                    };
                    cluster.forward(
                        self.secret.clone(),
                        0,
                        &self.hub_session,
                        self.gen,
                        invitation_id,
                        frame,
                    );
                }
                _ => self.ctx.hub.acknowledge(&self.hub_session, &invitation_id),
            },
            ClientFrame::Sync { known } => {
                if let Some(known) = known {
                    self.snapshot(&known);
                }
                self.ctx.hub.sync(&self.hub_session);
            }
            // (Hello, the one other frame without an id, is the connection's.)
            frame => {
                if let Some(id) = frame.request_id() {
                    self.request(id, frame, limited);
                }
            }
        }
    }

    /// What the hub knows of the user's invitations, for a client whose
    /// session was lost: sequenced before anything the hub pushes after it.
    fn snapshot(&mut self, known: &[InvitationId]) {
        let mut snapshot = self.ctx.hub.snapshot(&self.hub_session, known);
        self.needs = self.needs.max(beckon::hub::frame_ticket());
        if let Some(cluster) = self.ctx.cluster() {
            cluster.complete_snapshot(&self.hub_session.user, &mut snapshot);
        }
        self.append_sequenced("snapshot", &snapshot);
    }

    /// Appends `{"type":KIND,"seq":N,KIND:value}` to the outbox (an encoding
    /// failure, a bug, is counted and the frame left out).
    fn append_sequenced(&mut self, kind: &str, value: &impl serde::Serialize) {
        match serde_json::to_string(value) {
            Ok(body) => {
                let frame = |seq| format!(r#"{{"type":"{kind}","seq":{seq},"{kind}":{body}}}"#);
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
            self.ctx.hub.logout_for_good(&self.hub_session);
            metrics.observe(op, started.elapsed(), false);
            self.answer_from_hub(id, Answer::of(Ok(())));
            return self.end(Ended::LoggedOut);
        }
        if let Some(cluster) = self.ctx.cluster() {
            // History is shared by the nodes, in Redis.
            if let ClientFrame::QueryInvitations { query, .. } = frame {
                let user = self.hub_session.user.clone();
                cluster.query_history(self.secret.clone(), id, user, query);
                return;
            }
            // Another node may hold the invitation.
            if let Some(invitation) = crate::cluster::Cluster::invitation_of(&frame) {
                if !self.ctx.hub.has_invitation(invitation) {
                    let invitation = invitation.clone();
                    let (secret, gen) = (self.secret.clone(), self.gen);
                    cluster.forward(secret, id, &self.hub_session, gen, invitation, frame);
                    return;
                }
            }
            // Every node derives the same id from an idempotency key: the
            // first to claim it makes the invitation.
            if let ClientFrame::Send { request, .. } = &frame {
                if let Some(key) = &request.idempotency_key {
                    let invitation = self.ctx.hub.idempotent_id(&self.hub_session.user, key);
                    if !self.ctx.hub.has_invitation(&invitation) {
                        let (secret, gen) = (self.secret.clone(), self.gen);
                        cluster.claim_then_send(
                            secret,
                            id,
                            &self.hub_session,
                            gen,
                            invitation,
                            frame,
                        );
                        return;
                    }
                }
            }
        }
        self.run_here(id, frame);
    }

    /// Runs request `id` on this node's hub.
    fn run_here(&mut self, id: u64, frame: ClientFrame) {
        let metrics = self.ctx.metrics.clone();
        let started = std::time::Instant::now();
        let op = handler::op_name(&frame);
        let hub = self.ctx.hub.clone();
        let hub_session = self.hub_session.clone();
        handler::run(&hub, &hub_session, frame, |answer| {
            metrics.observe(op, started.elapsed(), answer.failed);
            self.answer_from_hub(id, answer);
        });
    }

    /// A request that could not be decoded: answered with its error unless it
    /// is a repeat; then the error goes alone (not sequenced).
    pub fn bad_request(&mut self, id: u64, error: &Error) {
        if id > self.last_request {
            self.last_request = id;
            self.answer(id, Answer::error(error));
        } else {
            self.write(error_frame(error));
        }
    }

    /// Queues the answer of a request the hub ran: it waits for the store
    /// ticket of what the hub call changed or read.
    fn answer_from_hub(&mut self, id: u64, answer: Answer) {
        // Read first: the hub call that made this answer set it.
        let ticket = beckon::hub::frame_ticket();
        self.needs = self.needs.max(ticket);
        self.answer(id, answer);
    }

    /// Queues an answer (after what was queued before it).
    fn answer(&mut self, id: u64, answer: Answer) {
        self.take_waiting_pushes();
        let appended = self.outbox.append_result(id, &answer.body);
        self.sent(appended);
    }

    fn push(&mut self, push: Push, ticket: Ticket) {
        self.needs = self.needs.max(ticket);
        let ends = match push {
            Push::KickedOut => Some(Ended::KickedOut),
            Push::TokenExpired => Some(Ended::TokenExpired),
            _ => None,
        };
        self.append_sequenced("push", &push);
        self.ctx.metrics.pushes.inc();
        if let Some(why) = ends {
            self.end(why);
        }
    }

    /// Sends what was appended to the outbox. A client whose outbox
    /// overflowed does not read: its connection is let go at once (so its
    /// queue stays bounded too), and it comes back on a fresh session.
    fn sent(&mut self, appended: Appended) {
        if !appended.lost_results.is_empty() {
            let now = Instant::now();
            for (id, answer) in appended.lost_results {
                self.results.remember(id, answer, now);
            }
        }
        if self.released.is_none() {
            self.write(Outgoing::Text(appended.text));
        }
        if appended.overflowed {
            self.ctx.metrics.outbox_overflows.inc();
            if self.out.is_some() && self.released.is_none() {
                self.released = Some(Release::TooSlow);
            }
        }
    }

    /// The ticket the first queued frame the store has not yet made durable
    /// waits for (the frames before it may leave now; the tickets of queued
    /// frames never decrease).
    pub fn held_for(&self, durable: &crate::store::DurableGate) -> Option<Ticket> {
        let out = self.out.as_ref()?;
        out.iter()
            .map(|g| g.after)
            .find(|after| !durable.covers(*after))
    }

    /// The grace period passed without a resume.
    pub(super) fn abandon(&mut self) {
        tracing::debug!(user = %self.hub_session.user, device = %self.hub_session.device, "session abandoned after the grace period");
        // Not at shutdown: see `drop`.
        if !self.ctx.shutting_down() {
            self.ctx.hub.abandon(&self.hub_session);
        }
        self.end(Ended::Abandoned);
    }

    /// The session can no longer be resumed; the attached connection, if any,
    /// is closed after what was queued.
    fn end(&mut self, why: Ended) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(why);
        self.grace_until = None;
        if self.out.is_some() {
            self.write(Outgoing::Close(1000, close_reason(why)));
            self.released = Some(Release::Ended);
        }
    }
}

impl Drop for Session {
    /// However the session goes (ended, abandoned, or its owner gone at
    /// shutdown), it leaves the hub and the table once.
    fn drop(&mut self) {
        // At shutdown the hub goes too: its inviters are not "gone" (rule
        // 7). With a durable store, the next start gives them the grace
        // period again.
        if self.ended.is_none() && !self.ctx.shutting_down() {
            self.ctx.hub.abandon(&self.hub_session);
        }
        // At shutdown the other nodes keep this node's devices for the grace
        // period after its lease goes, as after a crash.
        if let Some(cluster) = self.ctx.cluster() {
            if !self.ctx.shutting_down() {
                let session = &self.hub_session;
                cluster.logged_out(&session.user, &session.device, self.gen);
            }
        }
        self.ctx.sessions.remove(&self.secret);
        self.ctx.metrics.sessions_live.dec();
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

/// An unsequenced error frame.
pub fn error_frame(error: &Error) -> Outgoing {
    let frame = ServerFrame::Error(WireError::from(error));
    Outgoing::Text(Utf8Bytes::from(
        serde_json::to_string(&frame).unwrap_or_default(),
    ))
}
