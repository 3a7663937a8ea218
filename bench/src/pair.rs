//! One inviter and one invitee, each a `beckon::Client` with its own dispatcher
//! thread (on the same server, or on two nodes of one deployment). A complete invitation is: the inviter sends, the invitee's handler
//! sees INVITATION_RECEIVED and accepts, the inviter's handler sees
//! INVITATION_ACCEPTED.
//!
//! The send time travels in the invitation's extended data (and back in the
//! answer's), so neither side needs a table of what is in flight, and the
//! invitee can time an invitation that reaches it before the inviter's send
//! callback has run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::{Answer, ConnectionState, InvitationId, Push, SendInvitation, Text, UserId};
use beckon::{Client, ClientConfig, DispatchMode, ErrorCode, Event};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::run::{now_ns, Phase, Run};

/// Latencies are kept in nanoseconds, up to a little over the longest
/// invitation timeout, with 3 significant digits.
const HIGHEST_NS: u64 = 700_000_000_000;

pub fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).map_err(|e| format!("histogram: {e}"))
}

pub struct Pair {
    run: Arc<Run>,
    inviter: Client,
    invitee: Client,
    inviter_user: UserId,
    invitee_user: UserId,
    /// Invitations this pair may have in flight.
    window: usize,
    /// Sent and not yet settled (answered back, failed or timed out).
    outstanding: AtomicUsize,
    /// Send to INVITATION_RECEIVED at the invitee (written by its dispatcher).
    pub received: Mutex<Histogram<u64>>,
    /// Send to INVITATION_ACCEPTED at the inviter (written by its dispatcher).
    pub answered: Mutex<Histogram<u64>>,
}

impl Pair {
    pub fn new(
        run: Arc<Run>,
        dispatch: DispatchMode,
        (inviter_url, invitee_url): (&str, &str),
        tag: &str,
        index: usize,
        window: usize,
    ) -> Result<Arc<Pair>, String> {
        let user = |role: &str| {
            UserId::parse(&format!("{tag}-{role}{index}"), "user").map_err(|e| e.message)
        };
        let client = |url: &str| {
            Client::new(ClientConfig {
                dispatch,
                ..ClientConfig::new(url)
            })
            .map_err(|e| format!("client: {}", e.message))
        };
        let pair = Arc::new(Pair {
            run,
            inviter: client(inviter_url)?,
            invitee: client(invitee_url)?,
            inviter_user: user("i")?,
            invitee_user: user("e")?,
            window,
            outstanding: AtomicUsize::new(0),
            received: Mutex::new(new_histogram()?),
            answered: Mutex::new(new_histogram()?),
        });
        // Handlers and callbacks hold the pair weakly: the pair owns the
        // clients, the clients own the handlers.
        let weak = Arc::downgrade(&pair);
        pair.invitee
            .set_event_handler(Some(Arc::new(move |event: &Event| {
                if let Some(pair) = weak.upgrade() {
                    pair.invitee_event(event);
                }
            })));
        let weak = Arc::downgrade(&pair);
        pair.inviter
            .set_event_handler(Some(Arc::new(move |event: &Event| {
                if let Some(pair) = weak.upgrade() {
                    pair.inviter_event(event);
                }
            })));
        Ok(pair)
    }

    /// Logs both clients in, the invitee first so that it is online for the
    /// first send.
    pub async fn login(
        &self,
        token: impl Fn(&UserId) -> String,
        wait: Duration,
    ) -> Result<(), String> {
        for (client, user) in [
            (&self.invitee, &self.invitee_user),
            (&self.inviter, &self.inviter_user),
        ] {
            match tokio::time::timeout(wait, client.login(user.clone(), token(user))).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("login of '{user}': {e}")),
                Err(_) => return Err(format!("login of '{user}': no answer within {wait:?}")),
            }
        }
        Ok(())
    }

    /// Logs out and frees both clients; pending callbacks run with SHUTDOWN
    /// (not counted: the run is done). Returns once no callback of the pair runs.
    pub fn close(&self) {
        self.inviter.shutdown();
        self.invitee.shutdown();
    }

    pub fn invitee_user(&self) -> &UserId {
        &self.invitee_user
    }

    pub fn window(&self) -> usize {
        self.window
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Reserves one place in the window; false when it is full.
    pub fn take_slot(&self) -> bool {
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.window).then_some(n + 1)
            })
            .is_ok()
    }

    /// Sends one invitation stamped `stamp_ns` (a `now_ns` value). The caller
    /// holds a slot for it.
    pub fn send(self: &Arc<Self>, stamp_ns: u64) {
        let mut request =
            SendInvitation::new(vec![self.invitee_user.clone()], self.run.timeout_secs);
        request.extended_data = Text::from(stamp_ns.to_string());
        self.run.sent.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(self);
        let started = self.inviter.send_invitation_then(
            request,
            Box::new(move |result| {
                if let (Err(e), Some(pair)) = (result, weak.upgrade()) {
                    pair.failed("send", e.code, true);
                }
            }),
        );
        if let Err(e) = started {
            self.failed("send", e.code, false);
        }
    }

    /// One invitation is settled. Closed loop: its slot goes to the next send
    /// at once (unless the failure was immediate: no spinning on a refusal).
    fn settled(self: &Arc<Self>, may_resend: bool) {
        if may_resend && !self.run.paced && self.run.sending() {
            self.send(now_ns());
        } else {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn failed(self: &Arc<Self>, what: &str, code: ErrorCode, may_resend: bool) {
        let name = code.name();
        let name = name.strip_prefix("ERROR_").unwrap_or(name);
        self.run.count_error(&format!("{what}:{name}"));
        self.settled(may_resend);
    }

    fn invitee_event(self: &Arc<Self>, event: &Event) {
        match event {
            Event::Invitation(Push::InvitationReceived {
                invitation_id,
                extended_data,
                ..
            }) => self.on_received(invitation_id, extended_data),
            Event::ConnectionStateChanged { state, reason } => {
                self.link_changed("invitee", *state, *reason)
            }
            _ => {}
        }
    }

    fn inviter_event(self: &Arc<Self>, event: &Event) {
        match event {
            Event::Invitation(Push::InvitationAccepted { extended_data, .. }) => {
                self.on_answered(extended_data)
            }
            Event::Invitation(Push::InvitationRefused { .. }) => {
                self.run.count_error("answer:REFUSED");
                self.settled(true);
            }
            Event::Invitation(Push::InvitationResponseTimeout { .. }) => {
                self.run.count_error("invitation:TIMEOUT");
                self.settled(true);
            }
            Event::ConnectionStateChanged { state, reason } => {
                self.link_changed("inviter", *state, *reason)
            }
            _ => {}
        }
    }

    fn on_received(self: &Arc<Self>, invitation_id: &InvitationId, stamp: &Text) {
        let now = now_ns();
        match stamp.parse::<u64>() {
            Ok(sent) => {
                if self.run.measured_send(sent) && self.run.phase() < Phase::Done {
                    self.received
                        .lock()
                        .saturating_record(now.saturating_sub(sent));
                }
            }
            Err(_) => self.run.count_error("received:BAD_STAMP"),
        }
        let answer = Answer {
            invitation_id: invitation_id.clone(),
            // Echoed, so the inviter reads the send time from the answer.
            extended_data: stamp.clone(),
        };
        let weak = Arc::downgrade(self);
        let started = self.invitee.accept_invitation_then(
            answer,
            Box::new(move |result| {
                if let (Err(e), Some(pair)) = (result, weak.upgrade()) {
                    pair.failed("accept", e.code, true);
                }
            }),
        );
        if let Err(e) = started {
            self.failed("accept", e.code, false);
        }
    }

    fn on_answered(self: &Arc<Self>, stamp: &Text) {
        let now = now_ns();
        let run = &self.run;
        run.completed.fetch_add(1, Ordering::Relaxed);
        if run.phase() == Phase::Measure {
            run.completed_measured.fetch_add(1, Ordering::Relaxed);
        }
        match stamp.parse::<u64>() {
            Ok(sent) => {
                if run.measured_send(sent) && run.phase() < Phase::Done {
                    self.answered
                        .lock()
                        .saturating_record(now.saturating_sub(sent));
                }
            }
            Err(_) => run.count_error("answered:BAD_STAMP"),
        }
        self.settled(true);
    }

    fn link_changed(
        &self,
        role: &str,
        state: ConnectionState,
        reason: beckon::protocol::ConnectionReason,
    ) {
        if matches!(
            state,
            ConnectionState::Reconnecting | ConnectionState::Disconnected
        ) {
            self.run
                .count_error(&format!("{role}_link:{state:?}/{reason:?}"));
        }
    }
}
