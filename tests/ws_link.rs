//! The client's WebSocket link against a fake server scripted here (raw
//! tokio-tungstenite on 127.0.0.1): what the link writes, when, and what the
//! application is told, in cases a real server cannot easily be made to show.
//!
//! Every wait is bounded (`WAIT`); the only timing assertions are generous
//! ones that tell "at once" from "after a 1 s block".

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use beckon::protocol::{
    Answer, ConnectionReason, ConnectionState, InvitationId, InviteeState, Push, SendInvitation,
    SendOutcome, UserId,
};
#[cfg(feature = "test-hooks")]
use beckon::testing::{self as hooks, LinkPanic};
use beckon::{Client, ClientConfig, Error, ErrorCode, Event};

const WAIT: Duration = Duration::from_secs(5);

// ---- the fake server ------------------------------------------------------------

/// Accepts WebSocket connections (offering `beckon.v1`), reads each one's
/// `hello`, and hands it to the test.
struct FakeServer {
    rt: Runtime,
    port: u16,
    peers: mpsc::UnboundedReceiver<Peer>,
}

/// One client connection, after its `hello`.
struct Peer {
    ws: WebSocketStream<TcpStream>,
    hello: Value,
}

impl FakeServer {
    fn start() -> FakeServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, peers) = mpsc::unbounded_channel();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) =
                        tokio_tungstenite::accept_hdr_async(stream, offer_subprotocol).await
                    else {
                        return;
                    };
                    if let Some(hello) = next_json(&mut ws).await {
                        let _ = tx.send(Peer { ws, hello });
                    }
                });
            }
        });
        FakeServer { rt, port, peers }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The next connection that said hello.
    fn next_peer(&mut self) -> Peer {
        let peers = &mut self.peers;
        self.rt
            .block_on(async { tokio::time::timeout(WAIT, peers.recv()).await })
            .expect("no client connected")
            .expect("the fake server stopped")
    }

    /// Whether another connection said hello within `within`.
    fn peer_within(&mut self, within: Duration) -> Option<Peer> {
        let peers = &mut self.peers;
        self.rt
            .block_on(async { tokio::time::timeout(within, peers.recv()).await })
            .ok()
            .flatten()
    }

    fn block<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(work)
    }
}

// The signature is tungstenite's handshake callback's.
#[allow(clippy::result_large_err)]
fn offer_subprotocol(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    response
        .headers_mut()
        .insert("sec-websocket-protocol", "beckon.v1".parse().unwrap());
    Ok(response)
}

/// The next text frame as JSON, skipping pings; `None` once the connection ends.
async fn next_json(ws: &mut WebSocketStream<TcpStream>) -> Option<Value> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).ok(),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

impl Peer {
    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next frame from the client (`None` if it closed), within `WAIT`.
    async fn recv(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, next_json(&mut self.ws))
            .await
            .expect("the client sent nothing")
    }

    /// The next frame whose type is not `ack` or `receipt`.
    async fn recv_request(&mut self) -> Option<Value> {
        loop {
            let frame = self.recv().await?;
            if !matches!(frame["type"].as_str(), Some("ack" | "receipt")) {
                return Some(frame);
            }
        }
    }

    /// Every frame the client sends within `within` (until it closes).
    async fn frames_within(&mut self, within: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        let until = tokio::time::Instant::now() + within;
        while let Ok(Some(frame)) = tokio::time::timeout_at(until, next_json(&mut self.ws)).await {
            frames.push(frame);
        }
        frames
    }
}

fn welcome(resumed: bool, last_request: u64, max_frame_bytes: usize) -> Value {
    json!({
        "type": "welcome", "v": 1, "session": "s3cr3t", "resumed": resumed,
        "last_request": last_request, "limits": {}, "heartbeat_secs": 15,
        "grace_secs": 30, "max_frame_bytes": max_frame_bytes,
    })
}

// ---- the client side --------------------------------------------------------------

fn user(name: &str) -> UserId {
    UserId::parse(name, "user_id").unwrap()
}

/// A client whose events are recorded.
struct Probe {
    client: Client,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Probe {
    fn new(url: &str) -> Probe {
        let client = Client::new(ClientConfig::new(url)).unwrap();
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let record = events.clone();
        client.set_event_handler(Some(Arc::new(move |e: &Event| {
            record.lock().unwrap().push(e.clone())
        })));
        Probe { client, events }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

/// Collects the results of callbacks, to wait for and count.
struct Results<T>(Arc<Mutex<Vec<Result<T, Error>>>>);

impl<T> Default for Results<T> {
    fn default() -> Self {
        Results(Arc::default())
    }
}

impl<T: Send + Clone + 'static> Results<T> {
    fn callback(&self) -> Box<dyn FnOnce(Result<T, Error>) + Send> {
        let all = self.0.clone();
        Box::new(move |r| all.lock().unwrap().push(r))
    }

    /// Waits for the first result.
    fn first(&self) -> Result<T, Error> {
        wait_until("a callback", || !self.0.lock().unwrap().is_empty());
        self.0.lock().unwrap()[0].clone()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---- task 1: the link never waits for itself ----------------------------------------

/// Freed while its login is under way, a client whose login then succeeds
/// must log that session out at once: the link answers the login and writes
/// the logout frame itself, without a runtime worker waiting a second for it
/// (the reviewer's repro, `review_login_free.rs`).
#[test]
fn a_login_answered_after_free_is_logged_out_at_once() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let login = Results::<()>::default();
    probe
        .client
        .login_then(user("alice"), "t".into(), login.callback())
        .unwrap();
    let mut peer = server.next_peer();
    assert_eq!(peer.hello["user"], "alice");
    let freed = Instant::now();
    drop(probe); // free while the login is under way
    assert!(
        freed.elapsed() < Duration::from_millis(750),
        "free waited {:?} for a login under way",
        freed.elapsed()
    );
    assert_eq!(
        login.count(),
        1,
        "the login's callback ran before free returned"
    );
    assert_eq!(login.first().unwrap_err().code, ErrorCode::Shutdown);

    let waited = server.block(async {
        peer.send(welcome(false, 0, 0)).await;
        let sent = Instant::now();
        loop {
            match peer.recv().await {
                Some(frame) if frame["type"] == "logout" => return sent.elapsed(),
                Some(_) => continue,
                None => panic!("the connection closed without a logout"),
            }
        }
    });
    assert!(
        waited < Duration::from_millis(750),
        "the logout frame came {waited:?} after the welcome: something waited for the link"
    );
    assert_eq!(login.count(), 1, "the login's callback ran once");
}

/// Logs in and answers the login's welcome and sync; returns the connection.
fn logged_in(server: &mut FakeServer, probe: &Probe, name: &str) -> Peer {
    let login = Results::<()>::default();
    probe
        .client
        .login_then(user(name), "t".into(), login.callback())
        .unwrap();
    let mut peer = server.next_peer();
    server.block(peer.send(welcome(false, 0, 0)));
    login.first().unwrap();
    let sync = server.block(peer.recv()).unwrap();
    assert_eq!(sync, json!({"type": "sync"}));
    peer
}

fn is_state(event: &Event, wanted: ConnectionState) -> bool {
    matches!(event, Event::ConnectionStateChanged { state, .. } if *state == wanted)
}

/// A server that welcomes each reconnect and drops it at once is redialled
/// with growing delays (250 ms, 500 ms, 1 s, 2 s, ..., each with jitter
/// down to half), not four times a second: the delays start over only
/// after a connection that stayed up as long as the wait before it.
#[test]
fn a_server_that_drops_each_connection_after_its_welcome_is_redialled_ever_more_slowly() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let first = logged_in(&mut server, &probe, "alice");
    drop(first);
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let mut redials = 0;
    while let Some(mut peer) = server.peer_within(window.saturating_sub(started.elapsed())) {
        redials += 1;
        server.block(peer.send(welcome(true, 0, 0)));
        drop(peer);
    }
    assert!(redials >= 1, "the client did not reconnect");
    // The delays' lower bounds (125, 250, 500, 1000, 2000 ms) add up to
    // 1.875 s by the fourth redial and 3.875 s by the fifth; delays that
    // started over at every welcome would redial at least 12 times.
    assert!(
        redials <= 4,
        "{redials} redials within {window:?}: the delay did not grow between short connections"
    );
}

/// A reconnect that is welcomed after the client was freed must end that
/// session with a logout, not leave it to ring for the grace period.
#[test]
fn a_reconnect_welcomed_after_free_sends_logout() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let first = logged_in(&mut server, &probe, "alice");
    drop(first); // the connection drops: the client reconnects
    wait_until("RECONNECTING", || {
        probe
            .events()
            .iter()
            .any(|e| is_state(e, ConnectionState::Reconnecting))
    });
    let mut second = server.next_peer();
    assert_eq!(second.hello["resume"]["session"], "s3cr3t");
    drop(probe); // free while the reconnect waits for its welcome
    let frames = server.block(async {
        second.send(welcome(true, 0, 0)).await;
        second.frames_within(Duration::from_secs(2)).await
    });
    assert!(
        frames.iter().any(|f| f["type"] == "logout"),
        "the session was left open: {frames:?}"
    );
}

// ---- task 3: limits that agree ----------------------------------------------------

/// A request whose frame is over the server's `max_frame_bytes` fails at once
/// with PAYLOAD_TOO_LARGE and is never sent (the server would close the
/// connection, and the client reconnect and send it again, in a loop).
#[test]
fn a_request_over_the_servers_frame_limit_fails_at_once_unsent() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let login = Results::<()>::default();
    probe
        .client
        .login_then(user("alice"), "t".into(), login.callback())
        .unwrap();
    let mut peer = server.next_peer();
    server.block(peer.send(welcome(false, 0, 2000)));
    login.first().unwrap();

    let mut big = SendInvitation::new(vec![user("bob")], 30);
    big.extended_data = "x".repeat(3000).into();
    let refused = Results::<SendOutcome>::default();
    probe
        .client
        .send_invitation_then(big, refused.callback())
        .unwrap();
    let error = refused.first().unwrap_err();
    assert_eq!(error.code, ErrorCode::PayloadTooLarge, "{error}");
    assert!(error.message.contains("max_frame_bytes"), "{error}");
    assert!(error.message.contains("2000"), "{error}");

    // The next request goes through: the first request the server sees.
    let small = Results::<SendOutcome>::default();
    probe
        .client
        .send_invitation_then(SendInvitation::new(vec![user("bob")], 30), small.callback())
        .unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    server.block(async {
        let sync = peer.recv_request().await.unwrap();
        assert_eq!(sync["type"], "sync");
        let send = peer.recv_request().await.unwrap();
        assert_eq!(send["type"], "send");
        assert_eq!(
            send["request"]["extended_data"], "",
            "the big send was sent"
        );
        let result = json!({"type": "result", "id": send["id"], "seq": 1,
            "ok": {"invitation_id": id, "error_invitees": []}});
        peer.send(result).await;
    });
    assert_eq!(small.first().unwrap().invitation_id.to_string(), id);
    assert!(server.peer_within(Duration::from_millis(300)).is_none());
    assert!(
        !probe
            .events()
            .iter()
            .any(|e| is_state(e, ConnectionState::Reconnecting)),
        "{:?}",
        probe.events()
    );
    assert_eq!(refused.count(), 1);
}

// ---- task 2: a supervisor for the link task -------------------------------------------

fn states(probe: &Probe) -> Vec<(ConnectionState, ConnectionReason)> {
    probe
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionStateChanged { state, reason } => Some((*state, *reason)),
            _ => None,
        })
        .collect()
}

fn accept_of(n: u8) -> Answer {
    Answer {
        invitation_id: InvitationId::from_bits(u128::from(n)),
        extended_data: "".into(),
    }
}

/// A link that dies before the login is answered: the login fails with
/// INTERNAL, and the client is not left "logging in" (which refused every
/// later login).
#[cfg(feature = "test-hooks")]
#[test]
fn a_link_that_panics_during_login_fails_it_and_a_later_login_works() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let name = "panics-at-login";
    hooks::panic_link(&user(name), LinkPanic::Login);
    let login = Results::<()>::default();
    probe
        .client
        .login_then(user(name), "t".into(), login.callback())
        .unwrap();
    let mut peer = server.next_peer();
    server.block(peer.send(welcome(false, 0, 0)));
    let error = login.first().unwrap_err();
    assert_eq!(error.code, ErrorCode::Internal, "{error}");
    wait_until("DISCONNECTED", || states(&probe).len() == 2);
    assert_eq!(
        states(&probe),
        vec![
            (ConnectionState::Connecting, ConnectionReason::Login),
            (ConnectionState::Disconnected, ConnectionReason::Login),
        ]
    );

    let again = Results::<()>::default();
    probe
        .client
        .login_then(user(name), "t".into(), again.callback())
        .unwrap();
    let mut peer = server.next_peer();
    server.block(peer.send(welcome(false, 0, 0)));
    again.first().unwrap();
    assert_eq!(login.count(), 1);
}

/// A link that dies with requests under way: each completes once with
/// INTERNAL, the session ends (DISCONNECTED, NETWORK), and a new login works.
#[cfg(feature = "test-hooks")]
#[test]
fn a_link_that_panics_completes_its_requests_once_and_the_client_recovers() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let name = "panics-at-request";
    let mut peer = logged_in(&mut server, &probe, name);
    let waiting = Results::<()>::default();
    probe
        .client
        .accept_invitation_then(accept_of(1), waiting.callback())
        .unwrap();
    let sent = server.block(peer.recv_request()).unwrap();
    assert_eq!(sent["type"], "accept"); // the link holds it, unanswered
    hooks::panic_link(&user(name), LinkPanic::Request);
    let taken = Results::<()>::default();
    probe
        .client
        .accept_invitation_then(accept_of(2), taken.callback())
        .unwrap();
    for results in [&waiting, &taken] {
        let error = results.first().unwrap_err();
        assert_eq!(error.code, ErrorCode::Internal, "{error}");
    }
    wait_until("DISCONNECTED", || {
        probe
            .events()
            .iter()
            .any(|e| is_state(e, ConnectionState::Disconnected))
    });
    assert_eq!(
        states(&probe).last(),
        Some(&(ConnectionState::Disconnected, ConnectionReason::Network))
    );
    // Operations are refused at once now, and a new login works.
    let refused = probe
        .client
        .accept_invitation_then(accept_of(3), Box::new(|_| {}))
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotLoggedIn);
    let _peer = logged_in(&mut server, &probe, name);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!((waiting.count(), taken.count()), (1, 1), "each ran once");
}

// ---- task 4: nothing lost after a gap ------------------------------------------------------

const X: &str = "00000000000000000000000000000001";
const Y: &str = "00000000000000000000000000000002";

fn push(seq: u64, push: Value) -> Value {
    json!({"type": "push", "seq": seq, "push": push})
}

fn state_changed(id: &str, who: &str, state: &str) -> Value {
    json!({"type": "user_state_changed", "invitation_id": id, "user_id": who,
        "state": state, "extended_data": ""})
}

/// The invitation pushes the application saw, from the `from`th event on.
fn invitation_events(probe: &Probe, from: usize) -> Vec<Push> {
    probe.events()[from..]
        .iter()
        .filter_map(|e| match e {
            Event::Invitation(push) => Some(push.clone()),
            _ => None,
        })
        .collect()
}

/// A welcome for a resume that says whether the sync arrived (`None`: an
/// older server that does not say).
fn resumed_welcome(synced: Option<bool>) -> Value {
    let mut welcome = welcome(true, 0, 0);
    if let Some(synced) = synced {
        welcome["synced"] = json!(synced);
    }
    welcome
}

/// The notices (`sync`, `receipt`) among `frames`.
fn notices(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| matches!(f["type"].as_str(), Some("sync" | "receipt")))
        .cloned()
        .collect()
}

/// The login's sync and a receipt are notices: no result tells whether the
/// server read them. After a resume, the link sends the sync again exactly
/// once when the welcome says it never arrived (`synced: false`), not when it
/// did or the server does not say; and sends each receipt again until this
/// user's own USER_STATE_CHANGED shows the server has it.
#[test]
fn a_resume_sends_the_notices_the_server_may_not_have_had_once() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let peer = logged_in(&mut server, &probe, "alice");
    let resume = |server: &mut FakeServer, peer: Peer, synced: Option<bool>| {
        drop(peer);
        let mut next = server.next_peer();
        assert_eq!(next.hello["resume"]["session"], "s3cr3t");
        let frames = server.block(async {
            next.send(resumed_welcome(synced)).await;
            next.frames_within(Duration::from_millis(700)).await
        });
        (next, notices(&frames))
    };
    // The sync was lost: sent again, once.
    let (peer, sent) = resume(&mut server, peer, Some(false));
    assert_eq!(sent, vec![json!({"type": "sync"})]);
    // It arrived, or the server does not say: not again.
    let (peer, sent) = resume(&mut server, peer, Some(true));
    assert!(sent.is_empty(), "{sent:?}");
    let (mut peer, sent) = resume(&mut server, peer, None);
    assert!(sent.is_empty(), "{sent:?}");

    // Alice is rung; her device sends the receipt.
    let receipt = json!({"type": "receipt", "invitation_id": Y});
    let first = server.block(async {
        let ringing = json!({"type": "invitation_received", "invitation_id": Y,
            "inviter": "dave", "invitees": [{"user_id": "alice", "state": "inviting"}],
            "extended_data": "", "notification": null, "seconds_left": 60});
        peer.send(push(1, ringing)).await;
        peer.recv().await.unwrap()
    });
    assert_eq!(first, receipt);
    // Lost or not, it is sent again after each resume until its effect shows
    // (and the sync, which arrived, is not).
    let (peer, sent) = resume(&mut server, peer, Some(true));
    assert_eq!(sent, vec![receipt.clone()]);
    let (mut peer, sent) = resume(&mut server, peer, Some(true));
    assert_eq!(sent, vec![receipt.clone()]);
    // Another user's RECEIVED is not alice's; her own confirms the receipt.
    server.block(async {
        peer.send(push(2, state_changed(Y, "carol", "received")))
            .await;
    });
    let (mut peer, sent) = resume(&mut server, peer, Some(true));
    assert_eq!(sent, vec![receipt.clone()]);
    server.block(async {
        peer.send(push(3, state_changed(Y, "alice", "received")))
            .await;
    });
    wait_until("alice's RECEIVED", || {
        invitation_events(&probe, 0).iter().any(|p| {
            matches!(p, Push::UserStateChanged { user_id, state, .. }
                if user_id.as_str() == "alice" && *state == InviteeState::Received)
        })
    });
    let (_peer, sent) = resume(&mut server, peer, Some(true));
    assert!(sent.is_empty(), "{sent:?}");
    drop(probe);
}

/// A session the server could not resume (its outbox overflowed, the grace
/// period passed): the link logs in afresh, names what the application knows
/// as open, and turns the server's snapshot into the events missed, once.
#[test]
fn after_a_lost_session_the_snapshot_tells_what_was_missed_once() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let mut peer = logged_in(&mut server, &probe, "alice");
    let sent = Results::<SendOutcome>::default();
    probe
        .client
        .send_invitation_then(
            SendInvitation::new(vec![user("bob"), user("carol")], 60),
            sent.callback(),
        )
        .unwrap();
    server.block(async {
        let send = peer.recv_request().await.unwrap();
        let ok = json!({"invitation_id": X, "error_invitees": []});
        peer.send(json!({"type": "result", "id": send["id"], "seq": 1, "ok": ok}))
            .await;
        peer.send(push(2, state_changed(X, "bob", "received")))
            .await;
        let ringing = json!({"type": "invitation_received", "invitation_id": Y,
            "inviter": "dave", "invitees": [{"user_id": "alice", "state": "inviting"}],
            "extended_data": "", "notification": null, "seconds_left": 60});
        peer.send(push(3, ringing)).await;
    });
    sent.first().unwrap();
    wait_until("the pushes", || invitation_events(&probe, 0).len() == 2);

    // The connection drops, and the server no longer has the session.
    drop(peer);
    let mut peer = server.next_peer();
    assert_eq!(peer.hello["resume"]["seq"], 3);
    let before = probe.events().len();
    let sync = server.block(async {
        peer.send(welcome(false, 1, 0)).await;
        peer.recv_request().await.unwrap()
    });
    assert_eq!(sync["type"], "sync");
    let mut known: Vec<&str> = sync["known"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    known.sort();
    assert_eq!(known, vec![X, Y]);

    let snapshot = json!({"type": "snapshot", "seq": 1, "snapshot": {
        "invitations": [
            {"invitation_id": X, "inviter": "alice", "ended": false, "seconds_left": 30,
             "invitees": [{"user_id": "bob", "state": "accepted"},
                          {"user_id": "carol", "state": "received"}]},
            {"invitation_id": Y, "inviter": "dave", "ended": true, "seconds_left": 0,
             "invitees": [{"user_id": "alice", "state": "cancelled"}]}
        ],
        "unknown": []}});
    server.block(async {
        peer.send(snapshot).await;
        // A push of what the snapshot told already, then news.
        peer.send(push(2, state_changed(X, "bob", "accepted")))
            .await;
        let refused = json!({"type": "invitation_refused", "invitation_id": X,
            "invitee": "carol", "extended_data": "no"});
        peer.send(push(3, refused)).await;
        peer.send(push(4, state_changed(X, "carol", "rejected")))
            .await;
    });
    let x = InvitationId::parse(X, "x").unwrap();
    let y = InvitationId::parse(Y, "y").unwrap();
    let changed = |id: &InvitationId, who: &str, state, data: &str| Push::UserStateChanged {
        invitation_id: id.clone(),
        user_id: user(who),
        state,
        extended_data: data.into(),
    };
    let expected = vec![
        Push::InvitationAccepted {
            invitation_id: x.clone(),
            invitee: user("bob"),
            extended_data: "".into(),
        },
        changed(&x, "bob", InviteeState::Accepted, ""),
        changed(&x, "carol", InviteeState::Received, ""),
        Push::InvitationCancelled {
            invitation_id: y.clone(),
            inviter: user("dave"),
            extended_data: "".into(),
        },
        changed(&y, "alice", InviteeState::Cancelled, ""),
        Push::InvitationRefused {
            invitation_id: x.clone(),
            invitee: user("carol"),
            extended_data: "no".into(),
        },
        changed(&x, "carol", InviteeState::Rejected, ""),
    ];
    wait_until("the missed events and the news", || {
        invitation_events(&probe, before).len() >= expected.len()
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(invitation_events(&probe, before), expected);
    assert_eq!(
        states(&probe),
        vec![
            (ConnectionState::Connecting, ConnectionReason::Login),
            (ConnectionState::Connected, ConnectionReason::Login),
            (ConnectionState::Reconnecting, ConnectionReason::Network),
            (ConnectionState::Connected, ConnectionReason::Login),
        ],
        "CONNECTED after a gap says LOGIN (logged in afresh), not NETWORK"
    );
}

/// On a fresh session every unanswered request is sent again, with its id
/// and frame (so its idempotency key) unchanged, before the sync; each
/// completes once with the answer the server gives (here: kept from the lost
/// session). New requests get ids above the server's `last_request`.
#[test]
fn a_fresh_session_resends_unanswered_requests_unchanged() {
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let mut peer = logged_in(&mut server, &probe, "alice");
    let sent = Results::<SendOutcome>::default();
    let accepted = Results::<()>::default();
    probe
        .client
        .send_invitation_then(SendInvitation::new(vec![user("bob")], 60), sent.callback())
        .unwrap();
    probe
        .client
        .accept_invitation_then(accept_of(7), accepted.callback())
        .unwrap();
    let first = server.block(async {
        vec![
            peer.recv_request().await.unwrap(),
            peer.recv_request().await.unwrap(),
        ]
    });
    assert!(first[0]["request"]["idempotency_key"].is_string());
    drop(peer);

    let mut peer = server.next_peer();
    let again = server.block(async {
        peer.send(welcome(false, 2, 0)).await;
        vec![
            peer.recv_request().await.unwrap(),
            peer.recv_request().await.unwrap(),
            peer.recv_request().await.unwrap(),
        ]
    });
    assert_eq!(&again[..2], &first[..], "re-sent unchanged, in id order");
    assert_eq!(again[2]["type"], "sync");
    server.block(async {
        let ok = json!({"invitation_id": X, "error_invitees": []});
        peer.send(json!({"type": "result", "id": first[0]["id"], "seq": 1, "ok": ok}))
            .await;
        peer.send(json!({"type": "result", "id": first[1]["id"], "seq": 2, "ok": null}))
            .await;
    });
    assert_eq!(sent.first().unwrap().invitation_id.to_string(), X);
    accepted.first().unwrap();

    probe
        .client
        .accept_invitation_then(accept_of(8), Box::new(|_| {}))
        .unwrap();
    let next = server.block(peer.recv_request()).unwrap();
    assert_eq!(next["type"], "accept");
    assert!(next["id"].as_u64().unwrap() > 2, "{next}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!((sent.count(), accepted.count()), (1, 1));
}

// ---- cancelling a login under way ---------------------------------------------------

/// A probe whose requests wait up to a minute: a login that ends sooner was
/// cancelled, not timed out.
fn patient_probe(url: &str) -> Probe {
    let mut config = ClientConfig::new(url);
    config.request_timeout = Duration::from_secs(60);
    let client = Client::new(config).unwrap();
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let record = events.clone();
    client.set_event_handler(Some(Arc::new(move |e: &Event| {
        record.lock().unwrap().push(e.clone())
    })));
    Probe { client, events }
}

/// A logout while the WebSocket is still opening (the server never answers
/// the upgrade) cancels the login: its callback gets SHUTDOWN, the logout
/// succeeds, and the events say CONNECTING then DISCONNECTED (LOGOUT).
#[test]
fn a_logout_cancels_a_login_still_connecting() {
    // Accepts TCP connections (the kernel does) but never reads them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let probe = patient_probe(&url);
    let login = Results::<()>::default();
    probe
        .client
        .login_then(user("alice"), "t".into(), login.callback())
        .unwrap();
    let logout = Results::<()>::default();
    probe.client.logout_then(logout.callback()).unwrap();
    logout.first().unwrap();
    assert_eq!(login.first().unwrap_err().code, ErrorCode::Shutdown);
    wait_until("DISCONNECTED", || states(&probe).len() == 2);
    assert_eq!(
        states(&probe),
        vec![
            (ConnectionState::Connecting, ConnectionReason::Login),
            (ConnectionState::Disconnected, ConnectionReason::Logout),
        ]
    );
    assert_eq!(probe.client.user_id(), None);
    drop(silent);
}

/// A logout after the hello was written cancels the login, and a welcome
/// that comes after all is logged out by the client, so the abandoned
/// attempt leaves no session behind; a new login then works.
#[test]
fn a_logout_cancels_a_login_whose_welcome_comes_late() {
    let mut server = FakeServer::start();
    let probe = patient_probe(&server.url());
    let login = Results::<()>::default();
    probe
        .client
        .login_then(user("alice"), "t".into(), login.callback())
        .unwrap();
    let mut first = server.next_peer();
    let logout = Results::<()>::default();
    probe.client.logout_then(logout.callback()).unwrap();
    logout.first().unwrap();
    assert_eq!(login.first().unwrap_err().code, ErrorCode::Shutdown);

    // The late welcome: the cancelled attempt logs its session out.
    let frames = server.block(async {
        first.send(welcome(false, 0, 0)).await;
        first.frames_within(Duration::from_secs(2)).await
    });
    assert!(
        frames.iter().any(|f| f["type"] == "logout"),
        "no logout after the late welcome: {frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f["type"] == "sync"),
        "the cancelled login synced: {frames:?}"
    );

    // Logging in again works, on a new connection.
    let _second = logged_in(&mut server, &probe, "alice");
    assert_eq!(probe.client.user_id(), Some(user("alice")));
    assert_eq!(login.count(), 1, "the cancelled login's callback ran once");
}

/// A request given its own timeout fails by it, while one on the client's
/// (a minute here) still waits and is answered.
#[test]
fn a_request_with_its_own_timeout_fails_by_it() {
    let mut server = FakeServer::start();
    let probe = patient_probe(&server.url());
    let mut peer = logged_in(&mut server, &probe, "alice");
    let patient = Results::<()>::default();
    probe
        .client
        .accept_invitation_then(accept_of(1), patient.callback())
        .unwrap();
    let hasty = Results::<()>::default();
    probe
        .client
        .refuse_invitation_then_with(
            accept_of(2),
            beckon::CallOptions::within(Duration::from_millis(300)),
            hasty.callback(),
        )
        .unwrap();
    let error = hasty.first().unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestTimeout);
    assert!(error.message.contains("300 ms"), "{error}");
    assert_eq!(patient.count(), 0, "the other request is still waiting");
    // Both reached the server; answer the patient one.
    let id = server.block(async {
        let first = peer.recv_request().await.unwrap();
        let second = peer.recv_request().await.unwrap();
        assert_eq!(second["type"], "refuse");
        let id = first["id"].clone();
        peer.send(json!({"type": "result", "id": id, "seq": 1, "ok": null}))
            .await;
        id
    });
    assert!(id.is_u64());
    patient.first().unwrap();

    // A zero timeout is refused at once.
    let refused = probe.client.accept_invitation_then_with(
        accept_of(3),
        beckon::CallOptions::within(Duration::ZERO),
        Box::new(|_| {}),
    );
    assert_eq!(refused.unwrap_err().code, ErrorCode::InvalidArgument);
}

// ---- push targets (issue 11) ----------------------------------------------------------

/// `set_push_target` and `clear_push_target` are requests like the others:
/// written as their frames (`ok` is null), re-sent unchanged on a fresh
/// session when unanswered (they are idempotent), each completed once. The
/// inviter's `invitation_push_result` pushes reach the application each once,
/// several for one invitation (the tracker and rule 9 keep none back).
#[test]
fn push_targets_are_requests_and_push_results_are_shown_once() {
    use beckon::protocol::{PushOutcome, PushProvider, PushTarget};
    let mut server = FakeServer::start();
    let probe = Probe::new(&server.url());
    let mut peer = logged_in(&mut server, &probe, "alice");
    let set = Results::<()>::default();
    let cleared = Results::<()>::default();
    let target = PushTarget {
        topic: Some("com.example.calls".into()),
        ..PushTarget::new(PushProvider::ApnsVoip, "ab".repeat(32))
    };
    probe
        .client
        .set_push_target_then(target, set.callback())
        .unwrap();
    let first = server.block(peer.recv_request()).unwrap();
    assert_eq!(
        first,
        json!({"type": "set_push_target", "id": first["id"], "target": {
            "provider": "apns_voip", "token": "ab".repeat(32),
            "topic": "com.example.calls", "environment": "production", "alert_token": null}})
    );
    drop(peer); // unanswered: re-sent on the next session

    let mut peer = server.next_peer();
    let again = server.block(async {
        peer.send(welcome(false, 0, 0)).await;
        peer.recv_request().await.unwrap()
    });
    assert_eq!(again, first, "re-sent unchanged");
    server.block(async {
        assert_eq!(peer.recv_request().await.unwrap()["type"], "sync");
        peer.send(json!({"type": "result", "id": first["id"], "seq": 1, "ok": null}))
            .await;
    });
    set.first().unwrap();

    probe
        .client
        .clear_push_target_then(cleared.callback())
        .unwrap();
    let clear = server.block(peer.recv_request()).unwrap();
    assert_eq!(
        clear,
        json!({"type": "clear_push_target", "id": clear["id"]})
    );
    let result = |seq: u64, device: &str, outcome: &str| {
        push(
            seq,
            json!({"type": "invitation_push_result", "invitation_id": X, "invitee": "bob",
                "device": device, "provider": "fcm", "outcome": outcome, "reason": ""}),
        )
    };
    let from = probe.events().len();
    server.block(async {
        let error = json!({"code": 1, "message": "push_target.provider: no"});
        peer.send(json!({"type": "result", "id": clear["id"], "seq": 2, "error": error}))
            .await;
        peer.send(result(3, "bob-phone", "sent")).await;
        peer.send(result(4, "bob-tablet", "failed")).await;
        peer.send(push(
            5,
            json!({"type": "invitation_push_result", "invitation_id": X, "invitee": "erin",
                "outcome": "no_push_target"}),
        ))
        .await;
    });
    assert_eq!(
        cleared.first().unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    wait_until("three push results", || {
        invitation_events(&probe, from).len() >= 3
    });
    std::thread::sleep(Duration::from_millis(100));
    let shown = invitation_events(&probe, from);
    let outcomes: Vec<_> = shown
        .iter()
        .map(|p| match p {
            Push::InvitationPushResult {
                invitee,
                device,
                outcome,
                ..
            } => (
                invitee.to_string(),
                device.clone().map(|d| d.to_string()),
                *outcome,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("bob".into(), Some("bob-phone".into()), PushOutcome::Sent),
            ("bob".into(), Some("bob-tablet".into()), PushOutcome::Failed),
            ("erin".into(), None, PushOutcome::NoPushTarget),
        ]
    );
    assert_eq!((set.count(), cleared.count()), (1, 1));
}
