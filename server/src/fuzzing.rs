//! Entry points of the fuzz targets in `fuzz/` (see fuzz/README.md), also run by
//! this crate's unit tests on the seed inputs.
//!
//! Each input gets a fresh [`ServerContext`] on a hub with a manual clock (no
//! timer thread, nothing left over from earlier inputs, so a crash replays), and
//! three clients logged in and synced: `a` is alice, `b` and `c` are two devices
//! of bob. Connections are simulated: the steps `connection.rs` runs around
//! [`handle`] (login and resume, the per-frame loop, the end of a connection,
//! the grace timer) are mirrored here without a socket, and whatever a session
//! sends is read back by a model of the client, which checks:
//!
//! - nothing panics, and every frame the server sends decodes as a
//!   [`ServerFrame`] (what the client transport reads);
//! - sequence numbers on a connection run on without gaps;
//! - a request id is answered at most once per session, only if it was sent,
//!   and a fresh id (above the last one handled) exactly once, during the call;
//!   a repeat is never answered again; a rate-limited one gets RATE_LIMITED;
//! - frames that fail to decode are INVALID_ARGUMENT; a decoded frame encodes
//!   back to itself;
//! - request id 0 is refused with INVALID_ARGUMENT each time;
//! - only logout, a second hello, a connection no longer attached (replaced or
//!   ended) or a client too far behind close the connection;
//! - a resume succeeds exactly when it should (session live, nothing it needs
//!   dropped from the outbox, token good), then replays exactly the frames the
//!   client lost, and every request at or below `last_request` has its result;
//! - a server session has ended exactly when its hub session has;
//! - once every connection is gone and the grace period passed, no session,
//!   device or pending invitation is left, and the metrics render.
//!
//! A violated invariant panics, which the fuzzer reports as a crash.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::{Hub, HubConfig, ManualClock};
use beckon::protocol::wire::{ClientFrame, ServerFrame, Welcome, PROTOCOL_VERSION};
use beckon::protocol::{DeviceId, InvitationId, InviteeState, SendOutcome, UserId};
use beckon::ErrorCode;
use futures_util::FutureExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::connection::welcome;
use crate::handler::{answer_bad_request, decode, handle, Flow};
use crate::session::{new_secret, Outbox, Outgoing, ServerSession};
use crate::{ServerConfig, ServerContext};

/// Steps of one input beyond this are ignored (keeps every run short).
const MAX_STEPS: usize = 64;
/// Frames a client remembers, for losing some of them before a resume.
const MAX_REMEMBERED: usize = 64;
/// As in connection.rs: malformed frames before the connection is cut.
const MAX_PROTOCOL_ERRORS: u32 = 16;
/// The smallest outbox the configuration allows, so that overflows happen.
const OUTBOX_CAPACITY: usize = 16;
const SECRET: &[u8] = b"fuzzing-secret-not-for-production";
const START_UNIX: u64 = 1_700_000_000;
/// Lifetime of the tokens the clients' "backend" mints.
const TOKEN_TTL: u64 = 3600;

/// Fuzz target `frame`: `bytes` is one text frame from bob's first device,
/// while an invitation from alice to bob rings (`$I0` names it).
pub fn frame(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return; // WebSocket text frames are UTF-8; tungstenite refuses others
    };
    let mut world = World::new();
    world.frame(
        0,
        r#"{"type":"send","id":1,"request":{"invitees":["bob"],"timeout_secs":60,"extended_data":"","notification":null}}"#,
        false,
        false,
    );
    world.frame(1, text, false, false);
    world.finish();
}

/// Fuzz target `session`: `bytes` is a script, one step a line (at most 64):
///
/// - `a FRAME`, `b FRAME`, `c FRAME`: a text frame from client a, b or c; with
///   `A`, `B`, `C` the connection is over its rate (requests get RATE_LIMITED).
///   In a frame, `$I0`..`$I9` become invitation ids seen so far and `$K0`..`$K9`
///   a token of the sender's user valid for 15 s times the digit;
/// - `xW`: client W's connection drops;
/// - `rWN`: client W reconnects and resumes, having lost its last N frames;
/// - `RWN`: the same before the server saw the old connection drop; `oW FRAME`
///   is then a frame on that old connection;
/// - `nW`: client W logs in afresh (kicking out its older session);
/// - `g`: the grace period of every dropped session passes;
/// - `tSECONDS`: the clock moves on (deadlines and token timers fire);
/// - any other line is a frame from client a.
pub fn session(bytes: &[u8]) {
    let mut world = World::new();
    for line in bytes.split(|&b| b == b'\n').take(MAX_STEPS) {
        world.step(line);
    }
    world.finish();
}

/// What one client sees of its session, and a model of the server's outbox
/// for it.
struct Client {
    user: UserId,
    device: DeviceId,
    token: String,
    /// The server's session (to check it; a real client knows its secret only).
    session: Option<Arc<ServerSession>>,
    link: Option<Link>,
    /// An older connection the server has not seen drop yet (`R` lines).
    stale: Option<Link>,
    /// Said by `welcome`.
    secret: Option<String>,
    /// The last sequence number received.
    seen: u64,
    /// The last frames received, with their sequence numbers.
    received: VecDeque<(u64, Utf8Bytes)>,
    /// Request id -> the sequence number of its result.
    results: HashMap<u64, u64>,
    /// Request ids the server took (fresh when sent): each gets one result.
    sent: BTreeSet<u64>,
    /// The highest sequence number this client acknowledged.
    acked: u64,
    outbox: OutboxModel,
}

/// One simulated connection.
struct Link {
    epoch: u64,
    session: Arc<ServerSession>,
    rx: UnboundedReceiver<Outgoing>,
    /// A close frame was queued: the writer sends nothing after it.
    closed: bool,
    protocol_errors: u32,
}

impl Link {
    /// The text frames the writer sends (none after a close frame).
    fn take_texts(&mut self) -> Vec<Utf8Bytes> {
        let mut texts = Vec::new();
        while let Ok(outgoing) = self.rx.try_recv() {
            match outgoing {
                Outgoing::Text(text) if !self.closed => texts.push(text),
                Outgoing::Close(..) => self.closed = true,
                Outgoing::Text(_) | Outgoing::Ping => {}
            }
        }
        texts
    }

    /// The session told this connection to give up (its client fell behind).
    fn is_cut(&self) -> bool {
        self.session
            .outbox
            .cut_signal(self.epoch)
            .is_some_and(|cut| cut.notified().now_or_never().is_some())
    }
}

/// What the server's outbox should hold: the sequence numbers not acknowledged,
/// and whether any was dropped unacknowledged (then no resume can work).
#[derive(Default)]
struct OutboxModel {
    unacked: VecDeque<u64>,
    last: u64,
    gap: bool,
}

impl OutboxModel {
    /// Catches up with the frames the session appended since.
    fn appended_up_to(&mut self, last: u64) {
        while self.last < last {
            self.last += 1;
            self.unacked.push_back(self.last);
            if self.unacked.len() > OUTBOX_CAPACITY {
                self.unacked.pop_front();
                self.gap = true;
            }
        }
    }

    fn ack(&mut self, seq: u64) {
        while self.unacked.front().is_some_and(|&s| s <= seq) {
            self.unacked.pop_front();
        }
    }

    /// Whether a resume after `seen` can replay everything the client lacks.
    fn can_resume_after(&self, seen: u64) -> bool {
        let first_kept = self.unacked.front().copied().unwrap_or(self.last + 1);
        !self.gap && seen <= self.last && seen + 1 >= first_kept
    }
}

/// What a step's frames told the client.
#[derive(Default)]
struct Heard {
    /// (request id, error code or None for ok) of each result.
    results: Vec<(u64, Option<i32>)>,
}

struct World {
    ctx: Arc<ServerContext>,
    clock: ManualClock,
    clients: Vec<Client>,
    /// Every invitation id a client learned, in order.
    invitations: Vec<InvitationId>,
    /// Dropped connections whose grace period has not passed.
    grace: Vec<(Arc<ServerSession>, u64)>,
}

fn id<T>(parsed: beckon::Result<T>) -> T {
    match parsed {
        Ok(id) => id,
        Err(e) => unreachable!("a constant id is valid: {e}"),
    }
}

impl World {
    fn new() -> World {
        let config = ServerConfig {
            outbox_capacity: OUTBOX_CAPACITY,
            ..ServerConfig::default()
        };
        let clock = ManualClock::new(START_UNIX);
        let hub = match Hub::with_manual_clock(
            HubConfig {
                secret: Some(SECRET.to_vec()),
                ..config.hub_config(None)
            },
            clock.clone(),
        ) {
            Ok(hub) => hub,
            Err(e) => panic!("the default hub configuration is valid: {e}"),
        };
        let ctx = ServerContext::new(config, hub);
        let alice = id(UserId::parse("alice", "user"));
        let bob = id(UserId::parse("bob", "user"));
        let clients = [(alice, "a1"), (bob.clone(), "b1"), (bob, "b2")]
            .into_iter()
            .map(|(user, device)| Client {
                token: beckon::token::mint(SECRET, &user, START_UNIX + TOKEN_TTL),
                user,
                device: id(DeviceId::parse(device, "device")),
                session: None,
                link: None,
                stale: None,
                secret: None,
                seen: 0,
                received: VecDeque::new(),
                results: HashMap::new(),
                sent: BTreeSet::new(),
                acked: 0,
                outbox: OutboxModel::default(),
            })
            .collect();
        let mut world = World {
            ctx,
            clock,
            clients,
            invitations: Vec::new(),
            grace: Vec::new(),
        };
        for who in 0..world.clients.len() {
            world.connect(who, None, false);
            world.frame(who, r#"{"type":"sync"}"#, false, false);
        }
        world
    }

    fn step(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let bytes = line.as_bytes();
        let who = match bytes.get(1) {
            Some(b'b') => 1,
            Some(b'c') => 2,
            _ => 0,
        };
        let lost = bytes
            .get(2)
            .map_or(0, |d| usize::from(d.wrapping_sub(b'0') % 10));
        match bytes.first() {
            Some(&c @ (b'a' | b'b' | b'c' | b'A' | b'B' | b'C')) => {
                let target = usize::from(c.to_ascii_lowercase() - b'a');
                let text = line[1..].strip_prefix(' ').unwrap_or(&line[1..]);
                self.frame(target, text, c.is_ascii_uppercase(), false);
            }
            Some(b'o') => {
                let text = line.get(2..).unwrap_or_default().trim_start_matches(' ');
                self.frame(who, text, false, true);
            }
            Some(b'x') => {
                self.disconnect(who);
                self.check_sessions();
            }
            Some(b'r') => self.connect(who, Some(lost), false),
            Some(b'R') => self.connect(who, Some(lost), true),
            Some(b'n') => self.connect(who, None, false),
            Some(b'g') => self.grace_passes(),
            Some(b't') => {
                let seconds: u64 = line[1..].trim().parse().unwrap_or(1);
                self.clock_moves(Duration::from_secs(seconds.min(100_000)));
            }
            _ => self.frame(0, line, false, false),
        }
    }

    /// Replaces `$I<digit>` and `$K<digit>` (see [`session`]).
    fn substitute(&self, who: usize, text: &str) -> String {
        if !text.contains('$') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let tag = tail.as_bytes().get(1).copied();
            let digit = tail.as_bytes().get(2).filter(|d| d.is_ascii_digit());
            match (tag, digit) {
                (Some(b'I'), Some(d)) => {
                    let n = usize::from(d - b'0');
                    match self.invitations.len() {
                        0 => out.push_str(&"0".repeat(32)),
                        len => out.push_str(self.invitations[n % len].as_str()),
                    }
                    rest = &tail[3..];
                }
                (Some(b'K'), Some(d)) => {
                    let expiry = self.now_unix() + 15 * u64::from(d - b'0');
                    out.push_str(&beckon::token::mint(
                        SECRET,
                        &self.clients[who].user,
                        expiry,
                    ));
                    rest = &tail[3..];
                }
                _ => {
                    out.push('$');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn now_unix(&self) -> u64 {
        use beckon::hub::Clock;
        self.clock.unix_now()
    }

    /// One text frame from client `who` (on its older connection if `stale`):
    /// what `run_session` does with it.
    fn frame(&mut self, who: usize, text: &str, limited: bool, stale: bool) {
        if !stale && self.clients[who].link.as_ref().is_none_or(|l| l.closed) {
            self.connect(who, Some(0), false);
        }
        let text = self.substitute(who, text);
        let client = &self.clients[who];
        let Some(link) = (if stale { &client.stale } else { &client.link }) else {
            return;
        };
        let (session, epoch) = (link.session.clone(), link.epoch);
        let attached = session.outbox.is_attached(epoch);
        let last_request = *session.last_request.lock();
        let fresh = |id: u64| attached && id > last_request;
        let mut close = false;
        // The request this step must answer: (id, the error code it must have).
        let mut answer: Option<(u64, Option<ErrorCode>)> = None;
        let mut repeat = None;
        match decode(&text) {
            Ok(frame) => {
                check_round_trip(&frame);
                let id = frame.request_id();
                let is_hello = matches!(frame, ClientFrame::Hello { .. });
                let is_logout = matches!(frame, ClientFrame::Logout { .. });
                let ack = match frame {
                    ClientFrame::Ack { seq } => Some(seq),
                    _ => None,
                };
                match id {
                    // Never a request id: refused every time it comes.
                    Some(0) if attached => answer = Some((0, Some(ErrorCode::InvalidArgument))),
                    Some(id) if fresh(id) => {
                        self.clients[who].sent.insert(id);
                        answer = Some((id, limited.then_some(ErrorCode::RateLimited)));
                    }
                    Some(id) => repeat = Some(id),
                    None => {}
                }
                let flow = handle(&self.ctx, &session, epoch, frame, limited);
                if let Some(seq) = ack {
                    let client = &mut self.clients[who];
                    if client
                        .session
                        .as_ref()
                        .is_some_and(|s| Arc::ptr_eq(s, &session))
                    {
                        client.outbox.ack(seq);
                        client.acked = client.acked.max(seq);
                    }
                }
                let expected = if is_hello {
                    Flow::OutOfPlace
                } else if (id.is_some() && !attached)
                    || (is_logout && !limited && id.is_some_and(fresh))
                {
                    Flow::Close
                } else {
                    Flow::Continue
                };
                assert_eq!(flow, expected, "{text:?} (attached: {attached})");
                close = flow != Flow::Continue;
            }
            Err(bad) => {
                assert_eq!(
                    bad.error.code,
                    ErrorCode::InvalidArgument,
                    "a malformed frame is INVALID_ARGUMENT: {text:?}"
                );
                let answered = bad
                    .id
                    .is_some_and(|id| answer_bad_request(&session, epoch, id, bad.error.clone()));
                assert_eq!(answered, bad.id.is_some_and(fresh), "{text:?}");
                if let Some(id) = bad.id {
                    if answered {
                        self.clients[who].sent.insert(id);
                        answer = Some((id, Some(ErrorCode::InvalidArgument)));
                    } else {
                        repeat = Some(id);
                    }
                }
                let client = &mut self.clients[who];
                if let Some(link) = if stale {
                    &mut client.stale
                } else {
                    &mut client.link
                } {
                    link.protocol_errors += 1;
                    close = link.protocol_errors >= MAX_PROTOCOL_ERRORS;
                }
            }
        }
        let heard = self.hear_all(who);
        let answers = |id: u64| heard.results.iter().filter(move |(r, _)| *r == id);
        if let Some((id, code)) = answer {
            let got: Vec<_> = answers(id).collect();
            assert_eq!(got.len(), 1, "request {id} must be answered once: {text:?}");
            if let Some(code) = code {
                assert_eq!(got[0].1, Some(code as i32), "request {id}: {text:?}");
            }
        }
        if let Some(id) = repeat {
            assert_eq!(
                answers(id).count(),
                0,
                "repeated request {id} answered again"
            );
        }
        if close {
            self.drop_link(who, stale);
        }
        self.check_sessions();
    }

    /// Reads what every connection was sent, checking it (see [`Client::hear`]),
    /// and drops the connections their session cut off.
    fn hear_all(&mut self, actor: usize) -> Heard {
        let mut heard = Heard::default();
        for who in 0..self.clients.len() {
            let mut learned = Vec::new();
            let mine = self.clients[who].hear(&mut learned);
            if who == actor {
                heard = mine;
            } else {
                assert!(
                    mine.results.is_empty(),
                    "a result reached client {who}, which sent nothing"
                );
            }
            self.learn(learned);
        }
        for who in 0..self.clients.len() {
            let client = &mut self.clients[who];
            if let Some(session) = &client.session {
                client.outbox.appended_up_to(session.outbox.last_seq());
            }
            if client.link.as_ref().is_some_and(Link::is_cut) {
                self.drop_link(who, false);
            }
            if self.clients[who].stale.as_ref().is_some_and(Link::is_cut) {
                self.drop_link(who, true);
            }
        }
        heard
    }

    fn learn(&mut self, learned: Vec<InvitationId>) {
        for invitation in learned {
            if !self.invitations.contains(&invitation) {
                self.invitations.push(invitation);
            }
        }
    }

    /// Both connections of client `who` drop.
    fn disconnect(&mut self, who: usize) {
        self.drop_link(who, true);
        self.drop_link(who, false);
    }

    /// The end of a connection: the tail of `connection::serve`.
    fn drop_link(&mut self, who: usize, stale: bool) {
        let client = &mut self.clients[who];
        let link = if stale {
            client.stale.take()
        } else {
            client.link.take()
        };
        let Some(link) = link else {
            return;
        };
        let session = link.session;
        if session.outbox.detach(link.epoch) {
            self.grace.push((session, link.epoch));
        } else if session.outbox.ended().is_some() {
            self.ctx.forget(&session);
        }
    }

    /// The grace timers of dropped connections fire (`ServerContext::start_grace`).
    fn grace_passes(&mut self) {
        for (session, epoch) in std::mem::take(&mut self.grace) {
            if session.outbox.abandon_if_detached(epoch) {
                self.ctx.hub.logout(&session.hub_session);
                self.ctx.forget(&session);
            } else if session.outbox.ended().is_some() {
                self.ctx.forget(&session);
            }
        }
        self.hear_all(usize::MAX);
        self.check_sessions();
    }

    fn clock_moves(&mut self, by: Duration) {
        self.ctx.hub.advance(&self.clock, by);
        self.hear_all(usize::MAX);
        self.check_sessions();
    }

    /// A new connection for client `who`: resumes, having lost its last `lost`
    /// frames, or logs in afresh (`None`, or when the resume is refused), as
    /// `connection::open_session` does. With `keep_old`, the server has not
    /// seen the current connection drop yet: it stays, as the stale one.
    fn connect(&mut self, who: usize, lost: Option<usize>, keep_old: bool) {
        if keep_old {
            self.drop_link(who, true);
            let client = &mut self.clients[who];
            client.stale = client.link.take();
        } else {
            self.disconnect(who);
        }
        let epoch = self.ctx.next_epoch();
        let (tx, rx) = unbounded_channel();
        let resumed = match lost {
            Some(lost) => self.resume(who, lost, epoch, tx.clone(), rx),
            None => Err(rx),
        };
        if let Err(rx) = resumed {
            self.log_in(who, epoch, tx, rx);
        }
        self.hear_all(usize::MAX);
        self.check_sessions();
    }

    /// Resumes the session, or hands `rx` back when it cannot be resumed;
    /// checks that it worked exactly when it should.
    fn resume(
        &mut self,
        who: usize,
        lost: usize,
        epoch: u64,
        tx: UnboundedSender<Outgoing>,
        rx: UnboundedReceiver<Outgoing>,
    ) -> Result<(), UnboundedReceiver<Outgoing>> {
        let ctx = self.ctx.clone();
        let client = &mut self.clients[who];
        let Some(secret) = client.secret.clone() else {
            return Err(rx);
        };
        // The client never got its last `lost` frames (never those it acknowledged).
        let mut missed = VecDeque::new();
        while missed.len() < lost {
            match client.received.back() {
                Some((seq, _)) if *seq > client.acked => {
                    if let Some(frame) = client.received.pop_back() {
                        missed.push_front(frame);
                    }
                }
                _ => break,
            }
        }
        if let Some((seq, _)) = missed.front() {
            client.seen = seq.saturating_sub(1);
            let seen = client.seen;
            client.results.retain(|_, result_seq| *result_seq <= seen);
        }
        let seen = client.seen;
        let known = client.session.clone();
        let expected = known.as_ref().is_some_and(|session| {
            session.outbox.ended().is_none()
                && client.outbox.can_resume_after(seen)
                && ctx.hub.check_token(&client.user, &client.token).is_ok()
        });
        // As open_session does.
        let mut resumed = None;
        if let Some(session) = ctx.sessions.get(&secret) {
            if session.user == client.user
                && session.device == client.device
                && ctx.hub.check_token(&client.user, &client.token).is_ok()
                && ctx
                    .hub
                    .renew_token(&session.hub_session, &client.token)
                    .is_ok()
            {
                let welcome = || welcome(&ctx, &session, true);
                if session
                    .outbox
                    .attach(tx, epoch, welcome, Some(seen))
                    .is_ok()
                {
                    resumed = Some(session);
                }
            }
        }
        assert_eq!(
            resumed.is_some(),
            expected,
            "client {who}: resume after seq {seen} (lost {lost})"
        );
        let Some(session) = resumed else {
            return Err(rx);
        };
        assert!(
            known.is_some_and(|k| Arc::ptr_eq(&k, &session)),
            "client {who} resumed another session"
        );
        let mut link = Link {
            epoch,
            session: session.clone(),
            rx,
            closed: false,
            protocol_errors: 0,
        };
        let welcome = read_welcome(&mut link);
        assert!(welcome.resumed);
        // The lost frames come again first, in order, then what was sent while
        // the client was away, up to the last frame: nothing lost, nothing twice.
        let replayed = link.take_texts();
        client.link = Some(link);
        let missed: Vec<Utf8Bytes> = missed.into_iter().map(|(_, text)| text).collect();
        assert!(
            replayed.len() >= missed.len() && replayed[..missed.len()] == missed[..],
            "client {who}: replay after seq {seen}: {replayed:?}, lost {missed:?}"
        );
        let mut learned = Vec::new();
        for text in &replayed {
            client.take_sequenced(text, &mut Heard::default(), &mut learned);
        }
        assert_eq!(
            client.seen,
            session.outbox.last_seq(),
            "client {who}: the replay stops short"
        );
        // Every request the server took is answered, and it says which.
        assert_eq!(
            welcome.last_request,
            client.sent.last().copied().unwrap_or(0),
            "client {who}: last_request"
        );
        for id in &client.sent {
            assert!(
                client.results.contains_key(id),
                "client {who}: request {id} is at or below last_request but has no result"
            );
        }
        self.learn(learned);
        Ok(())
    }

    fn log_in(
        &mut self,
        who: usize,
        epoch: u64,
        tx: UnboundedSender<Outgoing>,
        rx: UnboundedReceiver<Outgoing>,
    ) {
        let ctx = self.ctx.clone();
        let now = self.now_unix();
        let client = &mut self.clients[who];
        let outbox = Outbox::new(ctx.config.outbox_capacity, ctx.metrics.clone());
        let sink = outbox.clone();
        let hub_session = match ctx.hub.login(
            client.user.clone(),
            client.device.clone(),
            &client.token,
            sink.clone(),
        ) {
            Ok(session) => session,
            Err(e) => {
                assert!(
                    matches!(e.code, ErrorCode::TokenExpired | ErrorCode::AuthFailed),
                    "client {who}: login refused: {e}"
                );
                // Its backend gives the client a new token; it tries again.
                client.token = beckon::token::mint(SECRET, &client.user, now + TOKEN_TTL);
                let user = client.user.clone();
                match ctx
                    .hub
                    .login(user, client.device.clone(), &client.token, sink)
                {
                    Ok(session) => session,
                    Err(e) => panic!("client {who}: login with a new token refused: {e}"),
                }
            }
        };
        let session = Arc::new(ServerSession {
            secret: new_secret(),
            user: client.user.clone(),
            device: client.device.clone(),
            hub_session,
            outbox,
            last_request: Default::default(),
        });
        ctx.sessions.insert(session.clone());
        ctx.metrics.sessions_live.inc();
        let welcome = || welcome(&ctx, &session, false);
        if let Err(why) = session.outbox.attach(tx, epoch, welcome, None) {
            panic!("client {who}: a new session cannot be attached: {why}");
        }
        let mut link = Link {
            epoch,
            session: session.clone(),
            rx,
            closed: false,
            protocol_errors: 0,
        };
        let welcome = read_welcome(&mut link);
        assert!(!welcome.resumed && welcome.last_request == 0);
        let more = link.take_texts();
        assert!(
            more.is_empty(),
            "client {who}: frames before the first sync"
        );
        client.session = Some(session);
        client.link = Some(link);
        client.secret = Some(welcome.session);
        client.seen = 0;
        client.received.clear();
        client.results.clear();
        client.sent.clear();
        client.acked = 0;
        client.outbox = OutboxModel::default();
    }

    /// Every session: ended exactly when its hub session has ended.
    fn check_sessions(&self) {
        let current = self.clients.iter().filter_map(|c| c.session.as_ref());
        let linked = self
            .clients
            .iter()
            .flat_map(|c| [&c.link, &c.stale])
            .filter_map(|l| l.as_ref().map(|l| &l.session));
        let waiting = self.grace.iter().map(|(s, _)| s);
        for session in current.chain(linked).chain(waiting) {
            let ended = session.outbox.ended();
            assert_eq!(
                session.hub_session.is_alive(),
                ended.is_none(),
                "session of {}/{}: hub and server disagree (ended: {ended:?})",
                session.user,
                session.device
            );
        }
    }

    /// Every connection ends, the grace period passes: nothing may be left.
    fn finish(mut self) {
        for who in 0..self.clients.len() {
            self.disconnect(who);
        }
        self.grace_passes();
        let ctx = &self.ctx;
        assert!(
            ctx.sessions.is_empty(),
            "sessions left after the grace period"
        );
        assert_eq!(ctx.metrics.sessions_live.get(), 0, "sessions_live");
        assert_eq!(ctx.metrics.encode_failures.get(), 0, "encode_failures");
        for client in &self.clients {
            assert_eq!(
                ctx.hub.device_count(&client.user),
                0,
                "{} logged in",
                client.user
            );
        }
        // Rule 7: every inviter is gone, so nothing may still ring.
        for invitation in &self.invitations {
            for status in ctx.hub.invitee_states(invitation).unwrap_or_default() {
                assert!(
                    status.state.is_terminal() || status.state == InviteeState::Offline,
                    "invitation {invitation}: {} still {:?} after every inviter left",
                    status.user_id,
                    status.state
                );
            }
        }
        let text = ctx.render_metrics();
        assert!(text.contains("sessions_live"), "metrics: {text}");
    }
}

/// The first frame of a new connection, which must be `welcome`.
fn read_welcome(link: &mut Link) -> Welcome {
    let first = link.rx.try_recv().ok();
    let Some(Outgoing::Text(text)) = first else {
        panic!("no welcome: {first:?}");
    };
    match ServerFrame::decode(&text) {
        Ok(ServerFrame::Welcome(welcome)) => {
            assert_eq!(welcome.v, PROTOCOL_VERSION);
            welcome
        }
        other => panic!("the first frame is not welcome: {other:?}"),
    }
}

impl Client {
    /// Reads and checks what the connections were sent.
    fn hear(&mut self, learned: &mut Vec<InvitationId>) -> Heard {
        let mut heard = Heard::default();
        if let Some(stale) = self.stale.as_mut() {
            let texts = stale.take_texts();
            // A connection replaced by a resume hears nothing more; one whose
            // session a fresh login replaced hears it was kicked out.
            let replaced = self
                .session
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(s, &stale.session));
            assert!(
                !replaced || texts.is_empty(),
                "a replaced connection was sent {texts:?}"
            );
            for text in texts {
                if let Err(e) = ServerFrame::decode(&text) {
                    panic!("the client cannot decode {text}: {e}");
                }
            }
        }
        let texts = self.link.as_mut().map(Link::take_texts).unwrap_or_default();
        for text in texts {
            match ServerFrame::decode(&text) {
                Ok(ServerFrame::Error(error)) => {
                    assert!(ErrorCode::from_i32(error.code).is_some(), "{text}");
                }
                Ok(ServerFrame::Result { .. } | ServerFrame::Push { .. }) => {
                    self.take_sequenced(&text, &mut heard, learned);
                }
                other => panic!("unexpected frame {text}: {other:?}"),
            }
        }
        heard
    }

    /// A result or push arrived: checks its sequence number and request id.
    fn take_sequenced(
        &mut self,
        text: &Utf8Bytes,
        heard: &mut Heard,
        learned: &mut Vec<InvitationId>,
    ) {
        let frame = match ServerFrame::decode(text) {
            Ok(frame) => frame,
            Err(e) => panic!("the client cannot decode {text}: {e}"),
        };
        let seq = match frame {
            ServerFrame::Result { id, seq, ok, error } => {
                // `"ok":null` (a request with no outcome) decodes as no `ok`.
                let code = match (&ok, &error) {
                    (ok, None) => {
                        let outcome = ok
                            .as_ref()
                            .and_then(|ok| serde_json::from_str::<SendOutcome>(ok.get()).ok());
                        if let Some(outcome) = outcome {
                            learned.push(outcome.invitation_id);
                        }
                        None
                    }
                    (None, Some(error)) => {
                        let code = ErrorCode::from_i32(error.code);
                        assert!(
                            code.is_some_and(|c| c != ErrorCode::Ok),
                            "result with error code {}: {text}",
                            error.code
                        );
                        Some(error.code)
                    }
                    (Some(_), Some(_)) => panic!("a result with both ok and error: {text}"),
                };
                if id == 0 {
                    // Never a request id: refused each time it comes.
                    assert_eq!(code, Some(ErrorCode::InvalidArgument as i32), "{text}");
                } else {
                    assert!(
                        self.sent.contains(&id),
                        "a result for request {id}, never sent: {text}"
                    );
                    if let Some(before) = self.results.insert(id, seq) {
                        panic!("request {id} answered twice (seq {before} and {seq})");
                    }
                }
                heard.results.push((id, code));
                seq
            }
            ServerFrame::Push { seq, push } => {
                if let Some(invitation) = push.invitation_id() {
                    learned.push(invitation.clone());
                }
                seq
            }
            other => panic!("not a sequenced frame: {other:?}"),
        };
        assert_eq!(
            seq,
            self.seen + 1,
            "sequence numbers skip or repeat: {text}"
        );
        self.seen = seq;
        self.received.push_back((seq, text.clone()));
        if self.received.len() > MAX_REMEMBERED {
            self.received.pop_front();
        }
    }
}

/// A decoded frame encodes to text that decodes to the same frame.
fn check_round_trip(frame: &ClientFrame) {
    let text = match serde_json::to_string(frame) {
        Ok(text) => text,
        Err(e) => panic!("{frame:?} cannot be encoded: {e}"),
    };
    match decode(&text) {
        Ok(again) => assert_eq!(&again, frame, "{text}"),
        Err(bad) => panic!(
            "{frame:?} encodes to {text}, which does not decode: {:?}",
            bad.error
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed inputs of both targets run clean (fuzz/seeds/).
    #[test]
    fn seeds_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        let mut count = 0;
        for (target, run) in [("frame", frame as fn(&[u8])), ("session", session)] {
            let Ok(entries) = std::fs::read_dir(root.join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).unwrap();
                eprintln!("seed {}", entry.path().display());
                run(&bytes);
                count += 1;
            }
        }
        assert!(count > 0, "no seeds under {}", root.display());
    }
}
