//! `beckon listen`: logs in as an invitee, shows each invitation that rings
//! and what becomes of it, and answers it: always yes, always no, by asking
//! on the terminal, or not at all (only prints).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, IsTerminal};

use beckon::protocol::{Answer, InvitationId, InviteeState, Push, Text, UserId};
use beckon::{Client, Event};
use clap::Args;
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::failure::{Exit, Failure};
use crate::interrupt::Interrupts;
use crate::output::{event, quoted, report_warning, Output};
use crate::session::{connection_note, session_over, ConnectArgs, Login, Session};

const PROMPT: &str = "accept? [y/n] ";

#[derive(Args, Debug)]
pub struct ListenArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Accept every invitation as soon as it rings.
    #[arg(long, conflicts_with = "auto_refuse")]
    pub auto_accept: bool,
    /// Refuse every invitation as soon as it rings.
    #[arg(long)]
    pub auto_refuse: bool,
    /// Text sent to the inviter with each answer.
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub data: String,
    /// One JSON object per line for each event (docs/CLI.md); never asks.
    #[arg(long)]
    pub json: bool,
    /// Exit after N invitations have been handled (answered, cancelled or
    /// timed out) [default: run until Ctrl-C].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// What to do with an invitation that rings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    Refuse,
    /// Ask on the terminal.
    Ask,
    /// Only print.
    Watch,
}

impl Mode {
    fn of(args: &ListenArgs, out: &Output) -> Mode {
        if args.auto_accept {
            Mode::Accept
        } else if args.auto_refuse {
            Mode::Refuse
        } else if !out.is_json() && out.is_live() && std::io::stdin().is_terminal() {
            Mode::Ask
        } else {
            Mode::Watch
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Accept => "accepting every invitation",
            Mode::Refuse => "refusing every invitation",
            Mode::Ask => "asking for each invitation",
            Mode::Watch => "only printing (no --auto-accept or --auto-refuse, no terminal)",
        }
    }
}

/// One invitation that rang here.
struct Call {
    inviter: UserId,
    /// No longer ringing for this user (answered, cancelled, timed out).
    done: bool,
    /// This command's answer is on its way.
    answering: bool,
    /// Counted for --count.
    counted: bool,
}

/// An answer's result, back from its task.
struct Answered {
    id: InvitationId,
    accept: bool,
    result: beckon::Result<()>,
}

struct Listener<'a> {
    out: &'a mut Output,
    client: std::sync::Arc<Client>,
    me: UserId,
    mode: Mode,
    data: Text,
    calls: HashMap<InvitationId, Call>,
    /// Invitations waiting for the terminal's answer, oldest first.
    queue: VecDeque<InvitationId>,
    /// The invitation the prompt on screen is about.
    asking: Option<InvitationId>,
    handled: u64,
    answers: UnboundedSender<Answered>,
}

pub async fn run(args: ListenArgs, out: &mut Output) -> Result<Exit, Failure> {
    let target = args.connect.check()?;
    let mode = Mode::of(&args, out);
    let mut interrupts = Interrupts::catch(Exit::Ok).await;
    let mut session = match target.login(&mut interrupts).await? {
        Login::Done(session) => session,
        Login::Interrupted => return Ok(Exit::Ok),
    };
    event!(
        out,
        "ready",
        "user_id" => session.user.as_str(),
        "device_id" => session.client.device_id().as_str(),
        "server" => session.url.as_str(),
    );
    out.line(&format!(
        "listening as {} at {} (device {}), {}; Ctrl-C to stop",
        out.bold(session.user.as_str()),
        session.url,
        session.client.device_id(),
        mode.describe()
    ));
    let result = listen(&mut session, &args, mode, out, &mut interrupts).await;
    out.clear_status();
    session.close().await;
    result
}

async fn listen(
    session: &mut Session,
    args: &ListenArgs,
    mode: Mode,
    out: &mut Output,
    interrupts: &mut Interrupts,
) -> Result<Exit, Failure> {
    let (answers, mut answered) = unbounded_channel();
    let mut lines = if mode == Mode::Ask {
        Some(read_lines())
    } else {
        None
    };
    let mut listener = Listener {
        out,
        client: session.client.clone(),
        me: session.user.clone(),
        mode,
        data: Text::from(args.data.as_str()),
        calls: HashMap::new(),
        queue: VecDeque::new(),
        asking: None,
        handled: 0,
        answers,
    };
    let reason = loop {
        if args.count.is_some_and(|count| listener.handled >= count) {
            break "count";
        }
        tokio::select! {
            // Events first: an answer's own state change is queued before
            // its result, and is shown before it.
            biased;
            event = session.events.recv() => {
                let Some(event) = event else {
                    return Err(Failure::local("the client's event channel closed (a bug)"));
                };
                if let Some(failure) = session_over(&session.user, &session.url, &event) {
                    return Err(failure);
                }
                listener.on_event(&event);
            }
            // Never None: the listener holds a sender.
            Some(done) = answered.recv() => listener.on_answered(done),
            line = next_line(&mut lines), if lines.is_some() => match line {
                Some(line) => listener.on_line(&line),
                None => break "stdin_closed",
            },
            _ = interrupts.next() => {
                listener.out.interrupted();
                break "interrupted";
            }
        }
    };
    listener.out.clear_prompt();
    event!(
        listener.out,
        "stopped",
        "reason" => reason,
        "handled" => listener.handled,
    );
    let why = match reason {
        "count" => "as many invitations as --count handled",
        "stdin_closed" => "standard input closed",
        _ => "interrupted",
    };
    let handled = listener.handled;
    listener.out.line(
        &listener
            .out
            .dim(&format!("stopped ({why}): {handled} handled")),
    );
    Ok(Exit::Ok)
}

impl Listener<'_> {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Invitation(Push::InvitationReceived {
                invitation_id,
                inviter,
                invitees,
                extended_data,
                notification,
                seconds_left,
            }) => {
                if self.calls.contains_key(invitation_id) {
                    return;
                }
                self.calls.insert(
                    invitation_id.clone(),
                    Call {
                        inviter: inviter.clone(),
                        done: false,
                        answering: false,
                        counted: false,
                    },
                );
                let others: Vec<&str> = invitees
                    .iter()
                    .filter(|i| i.user_id != self.me)
                    .map(|i| i.user_id.as_str())
                    .collect();
                event!(
                    self.out,
                    "invitation",
                    "invitation_id" => invitation_id.as_str(),
                    "inviter" => inviter.as_str(),
                    "invitees" => invitees.iter().map(|i| json!({
                        "user_id": i.user_id.as_str(),
                        "state": i.state.name(),
                    })).collect::<Vec<_>>(),
                    "extended_data" => &**extended_data,
                    "seconds_left" => *seconds_left,
                    "notification" => notification.as_ref().map(|n| json!({
                        "title": &*n.title,
                        "message": &*n.message,
                        "resource_id": &*n.resource_id,
                        "payload": &*n.payload,
                    })),
                );
                let mut text = format!(
                    "invitation {} from {}, rings {seconds_left} s",
                    self.out.bold(invitation_id.as_str()),
                    self.out.bold(inviter.as_str())
                );
                if !extended_data.is_empty() {
                    text.push_str(&format!(", data: {}", quoted(extended_data)));
                }
                if !others.is_empty() {
                    text.push_str(&format!(", also invited: {}", others.join(", ")));
                }
                if let Some(n) = notification {
                    text.push_str(&format!(
                        ", notification: {} / {}",
                        quoted(&n.title),
                        quoted(&n.message)
                    ));
                }
                self.out.line(&text);
                match self.mode {
                    Mode::Accept => self.answer(invitation_id, true),
                    Mode::Refuse => self.answer(invitation_id, false),
                    Mode::Ask => {
                        self.queue.push_back(invitation_id.clone());
                        if self.asking.is_none() {
                            self.ask_next();
                        }
                    }
                    Mode::Watch => {}
                }
            }
            Event::Invitation(Push::InvitationCancelled {
                invitation_id,
                inviter,
                extended_data,
            }) => {
                event!(
                    self.out,
                    "cancelled",
                    "invitation_id" => invitation_id.as_str(),
                    "inviter" => inviter.as_str(),
                    "extended_data" => &**extended_data,
                );
                let data = if extended_data.is_empty() {
                    String::new()
                } else {
                    format!(", data: {}", quoted(extended_data))
                };
                let line = self.out.warn(&format!(
                    "invitation {invitation_id} cancelled by {inviter}{data}"
                ));
                self.out.line(&line);
                self.settle(invitation_id);
            }
            Event::Invitation(Push::InvitationTimeout {
                invitation_id,
                inviter,
            }) => {
                event!(
                    self.out,
                    "timeout",
                    "invitation_id" => invitation_id.as_str(),
                    "inviter" => inviter.as_str(),
                );
                let line = self.out.warn(&format!(
                    "invitation {invitation_id} from {inviter} timed out (no answer in time)"
                ));
                self.out.line(&line);
                self.settle(invitation_id);
            }
            Event::Invitation(Push::UserStateChanged {
                invitation_id,
                user_id,
                state,
                extended_data,
            }) => self.on_state(invitation_id, user_id, *state, extended_data),
            Event::TokenWillExpire { seconds_left } => report_warning(
                self.out,
                "TOKEN_WILL_EXPIRE",
                &format!("the login token expires in {seconds_left} s"),
            ),
            other => {
                if let Some((state, reason, text)) = connection_note(other) {
                    event!(self.out, "connection", "state" => state, "reason" => reason);
                    let line = self.out.dim(&text);
                    self.out.line(&line);
                }
            }
        }
    }

    fn on_state(&mut self, id: &InvitationId, user: &UserId, state: InviteeState, data: &str) {
        event!(
            self.out,
            "state",
            "invitation_id" => id.as_str(),
            "user_id" => user.as_str(),
            "state" => state.name(),
            "extended_data" => data,
        );
        if user != &self.me {
            let line = format!("  {user}: {} (invitation {id})", self.out.state(state));
            self.out.line(&line);
            return;
        }
        if !state.is_terminal() {
            return;
        }
        // Our own answer is told when its result comes; a cancel or a
        // timeout has been told already. Anything else was another device.
        if let Some(call) = self.calls.get(id) {
            if !call.answering && !call.done {
                let line = format!(
                    "invitation {id}: {} on another device",
                    self.out.state(state)
                );
                self.out.line(&line);
            }
        }
        self.settle(id);
    }

    fn on_answered(&mut self, answered: Answered) {
        let Answered { id, accept, result } = answered;
        if let Some(call) = self.calls.get_mut(&id) {
            call.answering = false;
            if result.is_ok() {
                call.done = true;
            }
        }
        let verb = if accept { "accept" } else { "refuse" };
        match result {
            Ok(()) => {
                event!(
                    self.out,
                    "answered",
                    "invitation_id" => id.as_str(),
                    "answer" => if accept { "accepted" } else { "refused" },
                    "extended_data" => &*self.data,
                );
                let line = if accept {
                    self.out.good(&format!("accepted invitation {id}"))
                } else {
                    self.out.bad(&format!("refused invitation {id}"))
                };
                self.out.line(&line);
            }
            // Too late (cancelled, timed out, answered elsewhere) or the
            // network: the invitation's own events tell the rest.
            Err(error) => report_warning(
                self.out,
                error.code.name(),
                &format!("{verb} invitation {id}: {error}"),
            ),
        }
        self.count(&id);
        if self.mode == Mode::Ask && self.asking.is_none() {
            self.ask_next();
        }
    }

    fn on_line(&mut self, line: &str) {
        self.out.prompt_answered();
        let Some(id) = self.asking.clone() else {
            return;
        };
        let accept = match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => true,
            "n" | "no" => false,
            _ => {
                self.out.prompt(&format!("please answer y or n: {PROMPT}"));
                return;
            }
        };
        self.asking = None;
        self.answer(&id, accept);
    }

    /// Sends an answer; its result comes back through `answers`.
    fn answer(&mut self, id: &InvitationId, accept: bool) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.done {
            return;
        }
        call.answering = true;
        let client = self.client.clone();
        let answers = self.answers.clone();
        let answer = Answer {
            invitation_id: id.clone(),
            extended_data: self.data.clone(),
        };
        tokio::spawn(async move {
            let id = answer.invitation_id.clone();
            let result = if accept {
                client.accept_invitation(answer).await
            } else {
                client.refuse_invitation(answer).await
            };
            let _ = answers.send(Answered { id, accept, result });
        });
    }

    /// The invitation no longer rings for this user.
    fn settle(&mut self, id: &InvitationId) {
        if let Some(call) = self.calls.get_mut(id) {
            call.done = true;
        }
        self.count(id);
        if self.asking.as_ref() == Some(id) {
            self.asking = None;
            self.out.clear_prompt();
            self.ask_next();
        }
    }

    /// Counts an invitation once it is over and no answer of ours is on
    /// its way (so that --count never exits before the answer's result).
    fn count(&mut self, id: &InvitationId) {
        if let Some(call) = self.calls.get_mut(id) {
            if call.done && !call.answering && !call.counted {
                call.counted = true;
                self.handled += 1;
            }
        }
    }

    /// Puts the prompt up for the oldest invitation still ringing.
    fn ask_next(&mut self) {
        while let Some(id) = self.queue.pop_front() {
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            if call.done || call.answering {
                continue;
            }
            let header = format!(
                "invitation {} from {}: ",
                self.out.bold(id.as_str()),
                self.out.bold(call.inviter.as_str())
            );
            self.asking = Some(id);
            self.out.prompt(&format!("{header}{PROMPT}"));
            return;
        }
    }
}

/// Lines typed on standard input, read on a thread of their own (a blocked
/// read must not hold up the runtime); None once it closes.
fn read_lines() -> UnboundedReceiver<String> {
    let (sender, lines) = unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

async fn next_line(lines: &mut Option<UnboundedReceiver<String>>) -> Option<String> {
    match lines {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}
