//! `beckon invite`: sends one invitation, shows each invitee's state as it
//! changes, and exits once every invitee is final, with an exit code that
//! says how the invitation ended. Ctrl-C cancels it first.

use std::time::Duration;

use beckon::protocol::{
    CancelInvitation, InvitationId, InviteeState, Limits, Push, SendInvitation, Text, UserId,
};
use beckon::{ErrorCode, Event};
use clap::Args;
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use crate::failure::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::output::{event, quoted, report_warning, Output};
use crate::session::{connection_note, session_over, ConnectArgs, Login, Session};

/// How long after the deadline the server may take to say how the
/// invitation ended before the command gives up on it (a server gone for
/// good: the library would reconnect forever).
const AFTER_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct InviteArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The users to invite (their devices ring).
    #[arg(value_name = "INVITEE", required = true)]
    pub invitees: Vec<String>,
    /// Seconds the invitees' devices ring: 1 to 600 (a server may allow less).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u32,
    /// Text for the invitees' apps (a call type, a room name...).
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub data: String,
    /// Invitees with no device online are final at once (OFFLINE) instead
    /// of ringing on any device that logs in before the timeout.
    #[arg(long)]
    pub online_only: bool,
    /// One JSON object per line for each event (docs/CLI.md).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: InviteArgs, out: &mut Output) -> Result<Exit, Failure> {
    let target = args.connect.check()?;
    let request = request(&args, &target.user)?;
    let mut interrupts = Interrupts::catch(Exit::Cancelled).await;
    let mut session = match target.login(&mut interrupts).await? {
        Login::Done(session) => session,
        Login::Interrupted => {
            out.interrupted();
            out.line(&out.warn("interrupted before the invitation was sent"));
            event!(
                out,
                "ended",
                "invitation_id" => serde_json::Value::Null,
                "outcome" => "cancelled",
                "accepted" => Vec::<serde_json::Value>::new(),
                "invitees" => Vec::<serde_json::Value>::new(),
                "exit_code" => Exit::Cancelled as u8,
            );
            return Ok(Exit::Cancelled);
        }
    };
    let result = ring(&mut session, request, out, &mut interrupts).await;
    out.clear_status();
    session.close().await;
    result
}

/// The invitation, checked against the default limits before anything is
/// sent (the send checks it again against the server's).
fn request(args: &InviteArgs, inviter: &UserId) -> Result<SendInvitation, Failure> {
    let invitees = args
        .invitees
        .iter()
        .map(|name| {
            UserId::parse(name, &format!("invitee '{name}'")).map_err(|e| Failure::usage(e.message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limits = Limits::default();
    limits
        .check_timeout(args.timeout)
        .map_err(|e| Failure::library(&format!("--timeout {}", args.timeout), &e))?;
    let mut request = SendInvitation::new(invitees, args.timeout);
    request.extended_data = Text::from(args.data.as_str());
    request.online_only = args.online_only;
    request
        .validate(Some(inviter), &limits)
        .map_err(|e| Failure::library("invitation", &e))?;
    Ok(request)
}

/// Every invitee's state, in the order they were invited.
struct Board {
    invitees: Vec<(UserId, InviteeState)>,
    online_only: bool,
}

impl Board {
    fn set(&mut self, user: &UserId, state: InviteeState) -> bool {
        match self.invitees.iter_mut().find(|(u, _)| u == user) {
            Some((_, old)) if *old != state => {
                *old = state;
                true
            }
            _ => false,
        }
    }

    fn is_final(&self, state: InviteeState) -> bool {
        state.is_terminal() || (self.online_only && state == InviteeState::Offline)
    }

    fn ended(&self) -> bool {
        self.invitees.iter().all(|(_, s)| self.is_final(*s))
    }

    fn with(&self, state: InviteeState) -> Vec<&UserId> {
        self.invitees
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(u, _)| u)
            .collect()
    }

    fn ringing(&self) -> Vec<&UserId> {
        self.invitees
            .iter()
            .filter(|(_, s)| !self.is_final(*s))
            .map(|(u, _)| u)
            .collect()
    }

    fn json(&self) -> serde_json::Value {
        self.invitees
            .iter()
            .map(|(user, state)| json!({"user_id": user.as_str(), "state": state.name()}))
            .collect()
    }
}

async fn ring(
    session: &mut Session,
    request: SendInvitation,
    out: &mut Output,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let invitees = request.invitees.clone();
    let timeout_secs = request.timeout_secs;
    let data = request.extended_data.clone();
    let mut board = Board {
        invitees: invitees
            .iter()
            .map(|u| (u.clone(), InviteeState::Inviting))
            .collect(),
        online_only: request.online_only,
    };
    let what = format!("send invitation to {} at {}", names(&invitees), session.url);
    let client = session.client.clone();
    let send = client.send_invitation(request);
    tokio::pin!(send);
    // A Ctrl-C during the send still waits for its result: the invitation
    // may exist, and only its id lets us cancel it.
    let mut interrupted = false;
    let sent = loop {
        tokio::select! {
            result = &mut send => break result.map_err(|e| Failure::library(&what, &e))?,
            _ = interrupts.next(), if !interrupted => interrupted = true,
        }
    };
    let id = sent.invitation_id;
    let deadline = Instant::now() + Duration::from_secs(timeout_secs.into());
    event!(
        out,
        "sent",
        "invitation_id" => id.as_str(),
        "inviter" => session.user.as_str(),
        "invitees" => invitees.iter().map(UserId::as_str).collect::<Vec<_>>(),
        "timeout_secs" => timeout_secs,
        "extended_data" => &*data,
    );
    out.line(&format!(
        "invitation {} sent to {}, ringing for {timeout_secs} s",
        out.bold(id.as_str()),
        names(&invitees)
    ));
    for status in &sent.error_invitees {
        if board.set(&status.user_id, status.state) {
            show_state(out, &id, &status.user_id, status.state, "");
        }
    }

    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Only one Ctrl-C gets here: a second one ends the process at once.
    let mut cancel_now = interrupted;
    while !board.ended() {
        if cancel_now {
            cancel_now = false;
            cancel(&client, &id, out).await?;
            // Its state changes came before its result: they are queued.
            continue;
        }
        tokio::select! {
            // Events first: what is queued is shown before a countdown tick.
            biased;
            event = session.events.recv() => {
                let Some(event) = event else {
                    return Err(Failure::local("the client's event channel closed (a bug)"));
                };
                if let Some(failure) = session_over(&session.user, &session.url, &event) {
                    return Err(failure);
                }
                on_event(out, &mut board, &id, &event);
            }
            _ = ticks.tick() => {
                let now = Instant::now();
                if now > deadline + AFTER_DEADLINE {
                    return Err(Failure::server(
                        "NO_OUTCOME",
                        format!(
                            "invitation {id}: the server has not said how it ended, {} s after its deadline",
                            AFTER_DEADLINE.as_secs()
                        ),
                    ));
                }
                let left = deadline.saturating_duration_since(now).as_secs_f64().ceil();
                out.status(&format!("waiting for {}: {left} s left", names(board.ringing())));
            }
            _ = interrupts.next() => cancel_now = true,
        }
    }
    out.clear_status();
    Ok(finish(out, &board, &id))
}

/// Cancels for every invitee still ringing. An invitation that has just
/// ended (INVITATION_CLOSED) is no failure: its last states are queued.
async fn cancel(
    client: &beckon::Client,
    id: &InvitationId,
    out: &mut Output,
) -> Result<(), Failure> {
    out.interrupted();
    out.line(&out.warn("interrupted: cancelling the invitation"));
    let request = CancelInvitation {
        invitation_id: id.clone(),
        invitees: None,
        extended_data: Text::from(""),
    };
    match client.cancel_invitation(request).await {
        Ok(_) => Ok(()),
        Err(error) if error.code == ErrorCode::InvitationClosed => Ok(()),
        Err(error) => Err(Failure::library(&format!("cancel invitation {id}"), &error)),
    }
}

fn on_event(out: &mut Output, board: &mut Board, id: &InvitationId, event: &Event) {
    match event {
        Event::Invitation(Push::UserStateChanged {
            invitation_id,
            user_id,
            state,
            extended_data,
        }) if invitation_id == id => {
            if board.set(user_id, *state) {
                show_state(out, id, user_id, *state, extended_data);
            }
        }
        Event::Invitation(Push::InvitationPushResult {
            invitation_id,
            invitee,
            device,
            provider,
            outcome,
            reason,
        }) if invitation_id == id => {
            let outcome = serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null);
            event!(
                out,
                "push",
                "invitation_id" => id.as_str(),
                "user_id" => invitee.as_str(),
                "device_id" => device.as_ref().map(|d| d.as_str()),
                "provider" => provider.map(|p| p.name()),
                "outcome" => outcome.clone(),
                "reason" => &**reason,
            );
            let outcome = outcome.as_str().unwrap_or("?").replace('_', " ");
            let on = device
                .as_ref()
                .map(|d| format!(" to device {d}"))
                .unwrap_or_default();
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            out.line(&out.dim(&format!("  {invitee}: push{on}: {outcome}{why}")));
        }
        Event::TokenWillExpire { seconds_left } => report_warning(
            out,
            "TOKEN_WILL_EXPIRE",
            &format!("the login token expires in {seconds_left} s"),
        ),
        other => {
            if let Some((state, reason, text)) = connection_note(other) {
                event!(
                    out,
                    "connection",
                    "state" => state,
                    "reason" => reason,
                );
                out.line(&out.dim(&text));
            }
        }
    }
}

fn show_state(out: &mut Output, id: &InvitationId, user: &UserId, state: InviteeState, data: &str) {
    event!(
        out,
        "state",
        "invitation_id" => id.as_str(),
        "user_id" => user.as_str(),
        "state" => state.name(),
        "extended_data" => data,
    );
    let meaning = match state {
        InviteeState::Rejected => " (refused)",
        InviteeState::Received => " (ringing)",
        InviteeState::Offline => " (no device online)",
        InviteeState::Timeout => " (no answer in time)",
        _ => "",
    };
    let data = if data.is_empty() {
        String::new()
    } else {
        format!("  data: {}", quoted(data))
    };
    out.line(&format!("  {user}: {}{meaning}{data}", out.state(state)));
}

/// The last line, and the exit code: someone accepted beats everything,
/// then a cancel; otherwise nobody accepted.
fn finish(out: &mut Output, board: &Board, id: &InvitationId) -> Exit {
    let accepted = board.with(InviteeState::Accepted);
    let (exit, outcome) = if !accepted.is_empty() {
        (Exit::Ok, "accepted")
    } else if !board.with(InviteeState::Cancelled).is_empty() {
        (Exit::Cancelled, "cancelled")
    } else {
        (Exit::NotAccepted, "not_accepted")
    };
    event!(
        out,
        "ended",
        "invitation_id" => id.as_str(),
        "outcome" => outcome,
        "accepted" => accepted.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "invitees" => board.json(),
        "exit_code" => exit as u8,
    );
    let line = match exit {
        Exit::Ok => out.good(&format!("accepted by {}", names(accepted.iter().copied()))),
        Exit::Cancelled => out.warn("cancelled"),
        _ => out.bad("nobody accepted"),
    };
    out.line(&line);
    exit
}

fn names<'a>(users: impl IntoIterator<Item = &'a UserId>) -> String {
    users
        .into_iter()
        .map(UserId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
