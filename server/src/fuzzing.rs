//! Entry points of the fuzz targets in `fuzz/` (see fuzz/README.md), behind the
//! `fuzzing` feature (never in a production build); this crate's tests run them
//! on the seed inputs.
//!
//! They drive the real server code: each input gets a fresh [`ServerContext`]
//! on a hub with a manual clock, and each simulated client talks WebSocket to
//! [`connection::serve`] over an in-memory pipe, on a runtime whose clock is
//! paused (so waiting for silence, grace periods and deadlines takes no real
//! time, and a crash replays). A model of each client checks what the server
//! sends:
//!
//! - every frame decodes as a [`ServerFrame`], and the first of a connection
//!   is `welcome` (or an error and a close);
//! - sequence numbers on a connection run on without gaps, from 1 on a new
//!   session and from the client's last seen one on a resumed session;
//! - a request id is answered at most once per session, and only if a frame
//!   carrying it was sent;
//! - once every connection is gone and the grace period passed, no session,
//!   device or live-session count is left, and the metrics render.
//!
//! A violated invariant panics, which the fuzzer reports as a crash.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::{Clock, Hub, ManualClock};
use beckon::protocol::wire::{ClientFrame, Resume, ServerFrame, PROTOCOL_VERSION};
use beckon::protocol::{DeviceId, UserId};
use futures_util::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{connection, ServerConfig, ServerContext};

/// Steps of one input beyond this are ignored (keeps every run short).
const MAX_STEPS: usize = 64;
/// The smallest outbox the configuration allows, so that overflows happen.
const OUTBOX_CAPACITY: usize = 16;
const SECRET: &[u8] = b"fuzzing-secret-not-for-production";
const START_UNIX: u64 = 1_700_000_000;
const TOKEN_TTL: u64 = 3600;
/// How long a client waits for more frames before it takes the server to be
/// done (virtual time: the clock is paused).
const QUIET: Duration = Duration::from_millis(200);

/// Fuzz target `frame`: `bytes` is one text frame from bob's first device,
/// while an invitation from alice to bob rings (`$I0` names it).
pub fn frame(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return; // WebSocket text frames are UTF-8; tungstenite refuses others
    };
    let text = text.to_owned();
    run(move |mut world| async move {
        world
            .frame(0, r#"{"type":"send","id":1,"request":{"invitees":["bob"],"timeout_secs":60,"extended_data":"","notification":null}}"#)
            .await;
        assert_eq!(
            world.invitations.len(),
            1,
            "alice's invitation was not sent"
        );
        world.frame(1, &text).await;
        world.finish().await;
    });
}

/// Fuzz target `session`: `bytes` is a script, one step a line (at most 64),
/// for three clients: `a` is alice, `b` and `c` two devices of bob.
///
/// - `a FRAME`, `b FRAME`, `c FRAME`: a text frame from that client (it
///   connects first if it has no connection). In a frame, `$I0`..`$I9` become
///   invitation ids seen so far and `$K0`..`$K9` a token of the sender's user
///   valid for 15 s times the digit;
/// - `xW`: client W's connection drops;
/// - `rWN`: client W reconnects and resumes, having lost its last N frames;
/// - `nW`: client W logs in afresh (kicking out its older session);
/// - `g`: the grace period of every dropped session passes;
/// - `tSECONDS`: the hub's clock moves on (deadlines and token timers fire);
/// - any other line is a frame from client a.
pub fn session(bytes: &[u8]) {
    let script = bytes.to_vec();
    run(move |mut world| async move {
        for line in script.split(|&b| b == b'\n').take(MAX_STEPS) {
            world.step(line).await;
        }
        world.finish().await;
    });
}

fn run<F, Fut>(body: F)
where
    F: FnOnce(World) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build();
    let Ok(runtime) = runtime else {
        panic!("no runtime for fuzzing");
    };
    runtime.block_on(async move { body(World::new()).await });
}

struct World {
    ctx: Arc<ServerContext>,
    clock: ManualClock,
    clients: Vec<Client>,
    /// Invitation ids seen in results, for `$I0`..`$I9`.
    invitations: Vec<String>,
}

struct Client {
    user: UserId,
    device: DeviceId,
    ws: Option<WebSocketStream<DuplexStream>>,
    /// Said by the last `welcome`.
    secret: Option<String>,
    /// The last sequence number received, and the next one expected.
    seen: u64,
    /// Request ids sent in frames; per session secret, the sequence number
    /// of each answer (a replay after a resume repeats it, nothing else may).
    sent: HashSet<u64>,
    answered: HashMap<String, HashMap<u64, u64>>,
}

impl World {
    fn new() -> World {
        let config = ServerConfig {
            outbox_capacity: OUTBOX_CAPACITY,
            ..ServerConfig::default()
        };
        let clock = ManualClock::new(START_UNIX);
        let hub_config = config.hub_config(Some(SECRET.to_vec()));
        let Ok(hub) = Hub::with_manual_clock(hub_config, clock.clone()) else {
            panic!("the default hub configuration is refused");
        };
        let ctx = ServerContext::new(config, hub);
        let client = |user: &str, device: &str| Client {
            user: UserId::parse(user, "user").unwrap_or_else(|e| panic!("{e}")),
            device: DeviceId::parse(device, "device").unwrap_or_else(|e| panic!("{e}")),
            ws: None,
            secret: None,
            seen: 0,
            sent: HashSet::new(),
            answered: HashMap::new(),
        };
        let clients = vec![
            client("alice", "a1"),
            client("bob", "b1"),
            client("bob", "b2"),
        ];
        World {
            ctx,
            clock,
            clients,
            invitations: Vec::new(),
        }
    }

    async fn step(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let who = |c: Option<char>| match c {
            Some('a') => Some(0),
            Some('b') => Some(1),
            Some('c') => Some(2),
            _ => None,
        };
        let mut chars = line.chars();
        let (first, second) = (chars.next(), chars.next());
        match (first, who(second)) {
            (Some('a' | 'b' | 'c'), _) if second == Some(' ') => {
                if let Some(w) = who(first) {
                    self.frame(w, &line[2..]).await;
                }
            }
            (Some('x'), Some(w)) => self.clients[w].ws = None,
            (Some('r'), Some(w)) => {
                let lost = line[2..].parse::<u64>().unwrap_or(0).min(9);
                self.reconnect(w, Some(lost)).await;
            }
            (Some('n'), Some(w)) => self.reconnect(w, None).await,
            (Some('g'), _) => self.grace_passes().await,
            (Some('t'), _) => {
                let seconds = line[1..].parse::<u64>().unwrap_or(1).min(3600);
                self.ctx
                    .hub
                    .advance(&self.clock, Duration::from_secs(seconds));
                self.read_all().await;
            }
            _ => self.frame(0, line).await,
        }
    }

    fn token(&self, user: &UserId, ttl: u64) -> String {
        beckon::token::mint(SECRET, user, self.clock.unix_now() + ttl)
    }

    /// Connects client `w`: resuming its session (having lost its last
    /// `lost` frames), or afresh with `None`.
    async fn reconnect(&mut self, w: usize, lost: Option<u64>) {
        let token = self.token(&self.clients[w].user, TOKEN_TTL);
        let client = &mut self.clients[w];
        client.ws = None;
        let resume = match (lost, &client.secret) {
            (Some(lost), Some(secret)) => Some(Resume {
                session: secret.clone(),
                seq: client.seen.saturating_sub(lost),
            }),
            _ => None,
        };
        let (near, far) = tokio::io::duplex(64 * 1024);
        let peer = SocketAddr::from(([127, 0, 0, 1], 40_000 + w as u16));
        let Ok(ticket) = self.ctx.admission.admit(peer.ip()) else {
            panic!("the default caps refused a fuzzing client");
        };
        tokio::spawn(connection::serve(self.ctx.clone(), far, peer, ticket));
        let Ok(mut request) = "ws://fuzzing/".into_client_request() else {
            panic!("a request to a constant URL");
        };
        if let Ok(value) = beckon::protocol::wire::SUBPROTOCOL.parse() {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, near).await else {
            panic!("the WebSocket handshake failed");
        };
        let hello = ClientFrame::Hello {
            v: PROTOCOL_VERSION,
            user: client.user.clone(),
            device: client.device.clone(),
            token,
            resume: resume.clone(),
        };
        let text = serde_json::to_string(&hello).unwrap_or_default();
        if ws.send(Message::text(text)).await.is_err() {
            return;
        }
        match next_frame(&mut ws).await {
            Some(ServerFrame::Welcome(welcome)) => {
                let resumed = welcome.resumed;
                assert!(
                    !resumed
                        || resume
                            .as_ref()
                            .is_some_and(|r| r.session == welcome.session),
                    "resumed a session that was not asked for"
                );
                client.seen = if resumed {
                    resume.map_or(0, |r| r.seq)
                } else {
                    0
                };
                client.secret = Some(welcome.session);
                client.ws = Some(ws);
                let sync = serde_json::to_string(&ClientFrame::Sync { known: None });
                self.send_text(w, &sync.unwrap_or_default()).await;
            }
            Some(ServerFrame::Error(_)) | None => {} // refused
            Some(other) => panic!("the first frame is not welcome: {other:?}"),
        }
    }

    /// Sends one text frame from client `w` (connecting first if needed) and
    /// reads what every client is sent.
    async fn frame(&mut self, w: usize, template: &str) {
        if self.clients[w].ws.is_none() {
            self.reconnect(w, Some(0)).await;
        }
        let text = self.expand(w, template);
        if let Ok(any) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(id) = any.get("id").and_then(|id| id.as_u64()) {
                self.clients[w].sent.insert(id);
            }
        }
        self.send_text(w, &text).await;
    }

    async fn send_text(&mut self, w: usize, text: &str) {
        if let Some(ws) = &mut self.clients[w].ws {
            if ws.send(Message::text(text.to_owned())).await.is_err() {
                self.clients[w].ws = None;
            }
        }
        self.read_all().await;
    }

    fn expand(&self, w: usize, template: &str) -> String {
        let mut text = template.to_owned();
        for digit in 0..10 {
            let invitation = format!("$I{digit}");
            if text.contains(&invitation) {
                let id = self.invitations.get(digit).cloned().unwrap_or_default();
                text = text.replace(&invitation, &id);
            }
            let token = format!("$K{digit}");
            if text.contains(&token) {
                let minted = self.token(&self.clients[w].user, 15 * digit as u64);
                text = text.replace(&token, &minted);
            }
        }
        text
    }

    /// Reads what each client is sent until the server is quiet, checking it.
    async fn read_all(&mut self) {
        for w in 0..self.clients.len() {
            while let Some(ws) = &mut self.clients[w].ws {
                let Ok(next) = tokio::time::timeout(QUIET, ws.next()).await else {
                    break; // quiet
                };
                match next {
                    Some(Ok(Message::Text(text))) => self.received(w, text.as_str()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        self.clients[w].ws = None;
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }

    fn received(&mut self, w: usize, text: &str) {
        let frame = match ServerFrame::decode(text) {
            Ok(frame) => frame,
            Err(e) => panic!("the server sent a frame a client cannot read: {e}: {text}"),
        };
        let client = &mut self.clients[w];
        let seq = match &frame {
            ServerFrame::Result { seq, .. }
            | ServerFrame::Push { seq, .. }
            | ServerFrame::Snapshot { seq, .. } => Some(*seq),
            ServerFrame::Welcome(_) => panic!("a second welcome on one connection"),
            ServerFrame::Error(_) | ServerFrame::Shutdown => None,
        };
        if let Some(seq) = seq {
            assert_eq!(seq, client.seen + 1, "a gap or a repeat in the sequence");
            client.seen = seq;
        }
        if let ServerFrame::Result { id, ok, .. } = &frame {
            assert!(
                *id == 0 || client.sent.contains(id),
                "a result for request {id}, never sent"
            );
            let secret = client.secret.clone().unwrap_or_default();
            if let Some(seq) = seq.filter(|_| *id != 0) {
                let first = *client
                    .answered
                    .entry(secret)
                    .or_default()
                    .entry(*id)
                    .or_insert(seq);
                assert_eq!(first, seq, "request {id} answered twice");
            }
            let invitation = ok
                .as_ref()
                .and_then(|ok| serde_json::from_str::<serde_json::Value>(ok.get()).ok())
                .and_then(|ok| ok["invitation_id"].as_str().map(str::to_owned));
            if let Some(invitation) = invitation {
                if !self.invitations.contains(&invitation) {
                    self.invitations.push(invitation);
                }
            }
        }
    }

    /// Lets every dropped session's grace period pass.
    async fn grace_passes(&mut self) {
        let grace = Duration::from_secs(self.ctx.config.grace_secs);
        tokio::time::sleep(grace + Duration::from_secs(1)).await;
        self.read_all().await;
    }

    async fn finish(mut self) {
        for client in &mut self.clients {
            client.ws = None;
        }
        // Connections notice, sessions wait out their grace period.
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.grace_passes().await;
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
        let text = ctx.render_metrics();
        assert!(text.contains("sessions_live"), "metrics: {text}");
    }
}

/// The next frame a client reads, decoded.
async fn next_frame(ws: &mut WebSocketStream<DuplexStream>) -> Option<ServerFrame> {
    loop {
        match tokio::time::timeout(QUIET * 50, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return ServerFrame::decode(text.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every seed of both targets runs clean.
    #[test]
    fn the_seeds_run_clean() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        for (target, run) in [
            ("frame", super::frame as fn(&[u8])),
            ("session", super::session as fn(&[u8])),
        ] {
            let Ok(entries) = std::fs::read_dir(seeds.join(target)) else {
                panic!("no seeds for {target}");
            };
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                eprintln!("{target}: {}", entry.path().display());
                run(&bytes);
            }
        }
    }
}
