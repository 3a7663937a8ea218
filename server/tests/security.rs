//! Security and limits of `beckon-server`, tested with a raw WebSocket client
//! (tokio-tungstenite, not the beckon client) that writes protocol frames by
//! hand: what a hostile or broken peer can do, and that it cannot hurt anyone
//! else on the same server.
//!
//! Every wait is bounded by `WAIT`; "nothing else happened" is shown with a
//! marker request whose result must come next, never with a sleep.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beckon::protocol::UserId;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

mod common;
use common::{unique, ServerProcess, WAIT};

// Error codes (docs/SEMANTICS.md, "Error codes").
const INVALID_ARGUMENT: i64 = 1;
const PAYLOAD_TOO_LARGE: i64 = 3;
const NOT_LOGGED_IN: i64 = 4;
const AUTH_FAILED: i64 = 5;
const TOKEN_EXPIRED: i64 = 6;
const INVITATION_NOT_FOUND: i64 = 7;
const NOT_PERMITTED: i64 = 8;
const ALREADY_ANSWERED: i64 = 9;
const INVITATION_CLOSED: i64 = 10;
const RATE_LIMITED: i64 = 13;

/// Just above the largest valid request under the default limits (the server
/// refuses a frame limit below it).
const MAX_FRAME_BYTES: usize = 96 * 1024;

/// The server most tests share: a token secret, a small frame limit and a
/// small rate limit (20 frames per second, bursts of 20), and the default
/// heartbeat so that a test that pauses is not dropped.
struct SecretServer {
    server: ServerProcess,
    secret: Vec<u8>,
}

fn secret_server() -> &'static SecretServer {
    static SERVER: OnceLock<SecretServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let secret = format!("test-secret-{}", common::rand_suffix()).into_bytes();
        let path = std::env::temp_dir().join(format!("beckon-secret-{}", common::rand_suffix()));
        std::fs::write(&path, &secret).unwrap();
        let max_frame = MAX_FRAME_BYTES.to_string();
        let server = ServerProcess::start(&[
            "--secret-file",
            path.to_str().unwrap(),
            "--max-frame-bytes",
            &max_frame,
            "--messages-per-sec",
            "20",
            "--messages-burst",
            "20",
        ]);
        // The server read the secret before it wrote its port file.
        let _ = std::fs::remove_file(&path);
        SecretServer { server, secret }
    })
}

/// A development server with short deadlines and a one-second heartbeat.
fn deadline_server() -> &'static ServerProcess {
    static SERVER: OnceLock<ServerProcess> = OnceLock::new();
    SERVER.get_or_init(|| {
        ServerProcess::start(&[
            "--handshake-timeout-ms",
            "300",
            "--login-timeout-ms",
            "300",
            "--heartbeat-secs",
            "1",
        ])
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl SecretServer {
    fn url(&self) -> String {
        self.server.url()
    }

    fn token(&self, user: &UserId) -> String {
        beckon::token::mint(&self.secret, user, unix_now() + 3600)
    }
}

/// What the raw client read next.
#[derive(Debug)]
enum Frame {
    Json(Value),
    /// A close frame, with its code if it had one.
    Close(Option<u16>),
    /// The connection ended without a close frame (or failed).
    Gone,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket connection driven by hand.
struct Raw {
    ws: Socket,
}

impl Raw {
    async fn connect(url: &str) -> Raw {
        let (ws, _) = timeout(WAIT, connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Raw { ws }
    }

    /// Connects and says hello; returns the connection and the server's first
    /// frame (a welcome, or an error).
    async fn hello(url: &str, hello: Value) -> (Raw, Value) {
        let mut raw = Raw::connect(url).await;
        raw.send(hello).await;
        let first = raw.json().await;
        (raw, first)
    }

    /// Logs in as `user` on `device` and sends `sync`; returns the welcome.
    async fn login(url: &str, user: &UserId, device: &str, token: &str) -> (Raw, Value) {
        let (mut raw, welcome) = Raw::hello(url, hello(user, device, token, None)).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        raw.send(json!({"type": "sync"})).await;
        (raw, welcome)
    }

    async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// The next frame (pings and pongs skipped); panics after `WAIT`.
    async fn next(&mut self) -> Frame {
        let deadline = Instant::now() + WAIT;
        loop {
            let read = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame within WAIT");
            match read {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).expect("JSON from the server"))
                }
                Some(Ok(Message::Close(close))) => {
                    return Frame::Close(close.map(|c| u16::from(c.code)))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("binary frame from the server"),
                Some(Err(_)) | None => return Frame::Gone,
            }
        }
    }

    /// The next frame, which must be JSON.
    async fn json(&mut self) -> Value {
        match self.next().await {
            Frame::Json(value) => value,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    /// Reads up to the result of request `id`; returns it and the frames before it.
    async fn result_after(&mut self, id: u64) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        for _ in 0..1000 {
            let frame = self.json().await;
            if frame["type"] == "result" && frame["id"] == id {
                return (frame, before);
            }
            assert!(
                frame["type"] == "push" || frame["type"] == "result",
                "unexpected frame while waiting for result {id}: {frame}"
            );
            before.push(frame);
        }
        panic!("no result {id} within 1000 frames");
    }

    /// The result of request `id`, skipping pushes; no other result may come first.
    async fn result(&mut self, id: u64) -> Value {
        let (result, before) = self.result_after(id).await;
        for frame in &before {
            assert_eq!(frame["type"], "push", "a result before {id}: {frame}");
        }
        result
    }

    /// Reads until the server closes; returns the JSON frames before the close
    /// and the close code (`None` when the connection just ended).
    async fn until_closed(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut frames = Vec::new();
        for _ in 0..10_000 {
            match self.next().await {
                Frame::Json(value) => frames.push(value),
                Frame::Close(code) => return (frames, code),
                Frame::Gone => return (frames, None),
            }
        }
        panic!("the server did not close the connection");
    }
}

fn hello(user: &UserId, device: &str, token: &str, resume: Option<(&str, u64)>) -> Value {
    let mut hello =
        json!({"type": "hello", "v": 1, "user": user, "device": device, "token": token});
    if let Some((session, seq)) = resume {
        hello["resume"] = json!({"session": session, "seq": seq});
    }
    hello
}

fn send_frame(id: u64, invitees: &[&UserId]) -> Value {
    json!({"type": "send", "id": id, "request": {
        "invitees": invitees, "timeout_secs": 120, "extended_data": "", "notification": null,
    }})
}

fn cancel_frame(id: u64, invitation: &str) -> Value {
    json!({"type": "cancel", "id": id, "request": {
        "invitation_id": invitation, "invitees": null, "extended_data": "",
    }})
}

fn answer_frame(kind: &str, id: u64, invitation: &str) -> Value {
    json!({"type": kind, "id": id, "answer": {"invitation_id": invitation, "extended_data": ""}})
}

/// A well-formed invitation id that no hub made.
fn unknown_invitation() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn error_code(frame: &Value) -> i64 {
    frame["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {frame}"))
}

/// Asserts that the first frame was a connection error `code`, followed by a
/// close with `close`.
async fn assert_refused(raw: &mut Raw, first: &Value, code: i64, close: u16) {
    assert_eq!(first["type"], "error", "{first}");
    assert_eq!(first["code"], code, "{first}");
    let (rest, closed) = raw.until_closed().await;
    assert!(rest.is_empty(), "frames after the error: {rest:?}");
    assert_eq!(closed, Some(close));
}

/// The counter `name` with `label` from `/metrics`, 0 when absent.
fn metric(server: &ServerProcess, name: &str, label: &str) -> u64 {
    let (status, body) = server.admin_get("/metrics");
    assert!(status.contains("200"), "{status}");
    let prefix = format!("{name}{{{label}}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |value| value.trim().parse().unwrap())
}

fn count_pushes(frames: &[Value], kind: &str) -> usize {
    frames
        .iter()
        .filter(|f| f["type"] == "push" && f["push"]["type"] == kind)
        .count()
}

/// A user logged in on the secret server, with a marker request that proves
/// which pushes reached it so far.
struct Online {
    raw: Raw,
    user: UserId,
    welcome: Value,
    next_id: u64,
    /// Pushes read while waiting for results, not yet looked at.
    pushes: Vec<Value>,
}

impl Online {
    async fn new(name: &str) -> Online {
        let server = secret_server();
        let user = unique(name);
        let (raw, welcome) = Raw::login(&server.url(), &user, "d1", &server.token(&user)).await;
        Online {
            raw,
            user,
            welcome,
            next_id: 1,
            pushes: Vec::new(),
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends `frame(id)` with the next id and returns its result; keeps the
    /// pushes that came first.
    async fn request(&mut self, frame: impl FnOnce(u64) -> Value) -> Value {
        let id = self.id();
        self.raw.send(frame(id)).await;
        let (result, before) = self.raw.result_after(id).await;
        for frame in &before {
            assert_eq!(frame["type"], "push", "a result before {id}: {frame}");
        }
        self.pushes.extend(before);
        result
    }

    /// Every push queued for this connection so far (and not returned
    /// before), read up to the result of a harmless marker request.
    async fn pushes_so_far(&mut self) -> Vec<Value> {
        let marker = self
            .request(|id| cancel_frame(id, &unknown_invitation()))
            .await;
        assert_eq!(error_code(&marker), INVITATION_NOT_FOUND, "{marker}");
        std::mem::take(&mut self.pushes)
    }

    /// Sends an invitation to `invitees`; returns its id.
    async fn invite(&mut self, invitees: &[&UserId]) -> String {
        let result = self.request(|id| send_frame(id, invitees)).await;
        result["ok"]["invitation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("send failed: {result}"))
            .to_owned()
    }
}

#[tokio::test]
async fn nothing_is_served_before_login() {
    let server = secret_server();
    let mut bob = Online::new("bob").await;

    let (mut raw, first) = Raw::hello(&server.url(), send_frame(1, &[&bob.user])).await;
    assert_refused(&mut raw, &first, NOT_LOGGED_IN, 1008).await;
    for frame in [json!({"type": "sync"}), json!({"type": "logout", "id": 1})] {
        let (mut raw, first) = Raw::hello(&server.url(), frame).await;
        assert_refused(&mut raw, &first, NOT_LOGGED_IN, 1008).await;
    }
    // The refused send never reached the hub: the invitee got nothing.
    let pushes = bob.pushes_so_far().await;
    assert_eq!(
        count_pushes(&pushes, "invitation_received"),
        0,
        "{pushes:?}"
    );

    // A first frame that is not JSON is refused as malformed.
    let mut raw = Raw::connect(&server.url()).await;
    raw.send_text("hello?".into()).await;
    let first = raw.json().await;
    assert_refused(&mut raw, &first, INVALID_ARGUMENT, 1007).await;
}

#[tokio::test]
async fn tokens_are_checked_at_login() {
    let server = secret_server();
    let url = server.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let now = unix_now();
    let refused = [
        ("garbage".to_owned(), AUTH_FAILED),
        (String::new(), AUTH_FAILED),
        (
            beckon::token::mint(b"another-secret-0123456789", &alice, now + 3600),
            AUTH_FAILED,
        ),
        (
            beckon::token::mint(&server.secret, &bob, now + 3600),
            AUTH_FAILED,
        ),
        (
            beckon::token::mint(&server.secret, &alice, now - 10),
            TOKEN_EXPIRED,
        ),
    ];
    for (token, code) in refused {
        let (mut raw, first) = Raw::hello(&url, hello(&alice, "d1", &token, None)).await;
        assert_refused(&mut raw, &first, code, 1008).await;
    }

    // Another protocol version is refused, whatever the token.
    let mut wrong_version = hello(&alice, "d1", &server.token(&alice), None);
    wrong_version["v"] = json!(2);
    let (mut raw, first) = Raw::hello(&url, wrong_version).await;
    assert_refused(&mut raw, &first, INVALID_ARGUMENT, 1002).await;

    // The right token logs in.
    let (mut raw, welcome) = Raw::login(&url, &alice, "d1", &server.token(&alice)).await;
    assert_eq!(welcome["v"], 1);
    assert_eq!(welcome["resumed"], false);
    assert_eq!(welcome["last_request"], 0);
    assert_eq!(
        welcome["session"].as_str().map(str::len),
        Some(32),
        "{welcome}"
    );

    // A renewal with a bad token fails and the session goes on.
    raw.send(json!({"type": "renew_token", "id": 1, "token": "garbage"}))
        .await;
    assert_eq!(error_code(&raw.result(1).await), AUTH_FAILED);
    let foreign = beckon::token::mint(&server.secret, &bob, now + 3600);
    raw.send(json!({"type": "renew_token", "id": 2, "token": foreign}))
        .await;
    assert_eq!(error_code(&raw.result(2).await), AUTH_FAILED);
    raw.send(json!({"type": "renew_token", "id": 3, "token": server.token(&alice)}))
        .await;
    let renewed = raw.result(3).await;
    assert!(renewed.get("error").is_none(), "{renewed}");
}

#[tokio::test]
async fn only_participants_act_on_an_invitation() {
    let mut alice = Online::new("alice").await;
    let mut bob = Online::new("bob").await;
    let mut carol = Online::new("carol").await;
    let invitation = alice.invite(&[&bob.user]).await;

    // Not the inviter: no cancel.
    for who in [&mut carol, &mut bob] {
        let result = who.request(|id| cancel_frame(id, &invitation)).await;
        assert_eq!(error_code(&result), NOT_PERMITTED, "{result}");
    }
    // Not an invitee: no answer, not even the inviter.
    for who in [&mut carol, &mut alice] {
        for kind in ["accept", "refuse"] {
            let result = who.request(|id| answer_frame(kind, id, &invitation)).await;
            assert_eq!(error_code(&result), NOT_PERMITTED, "{kind}: {result}");
        }
    }
    // Unknown ids, for everyone.
    for who in [&mut alice, &mut bob, &mut carol] {
        let unknown = unknown_invitation();
        let result = who.request(|id| cancel_frame(id, &unknown)).await;
        assert_eq!(error_code(&result), INVITATION_NOT_FOUND, "{result}");
        for kind in ["accept", "refuse"] {
            let result = who.request(|id| answer_frame(kind, id, &unknown)).await;
            assert_eq!(
                error_code(&result),
                INVITATION_NOT_FOUND,
                "{kind}: {result}"
            );
        }
    }
    // The refused attempts changed nothing: the invitee still answers, and
    // nobody else was told anything.
    let carol_saw = carol.pushes_so_far().await;
    assert!(carol_saw.is_empty(), "{carol_saw:?}");
    let accepted = bob
        .request(|id| answer_frame("accept", id, &invitation))
        .await;
    assert!(accepted.get("error").is_none(), "{accepted}");
    let closed = alice.request(|id| cancel_frame(id, &invitation)).await;
    assert_eq!(error_code(&closed), INVITATION_CLOSED, "{closed}");
    let alice_saw = alice.pushes_so_far().await;
    assert_eq!(
        count_pushes(&alice_saw, "invitation_accepted"),
        1,
        "{alice_saw:?}"
    );
}

#[tokio::test]
async fn an_oversized_frame_is_cut_off() {
    let mut alice = Online::new("alice").await;
    let mut bob = Online::new("bob").await;
    let mut big = send_frame(1, &[&bob.user]);
    big["request"]["extended_data"] = json!("x".repeat(MAX_FRAME_BYTES + 100));
    alice.raw.send(big).await;
    let (frames, closed) = alice.raw.until_closed().await;
    assert_eq!(closed, Some(1009), "{frames:?}");
    let last = frames.last().expect("an error frame before the close");
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], PAYLOAD_TOO_LARGE, "{last}");
    assert!(
        frames.iter().all(|f| f["type"] != "result"),
        "the oversized request was served: {frames:?}"
    );

    // Someone else on the same server is not affected, and got nothing.
    let seen = bob.pushes_so_far().await;
    assert_eq!(count_pushes(&seen, "invitation_received"), 0, "{seen:?}");
    let result = bob
        .request(|id| cancel_frame(id, &unknown_invitation()))
        .await;
    assert_eq!(error_code(&result), INVITATION_NOT_FOUND);
    // A frame just under the limit is read and answered: its extended data
    // is over the hub's limit, which is an answer, not a cut.
    let mut fits = send_frame(bob.id(), &[&alice.user]);
    let room = MAX_FRAME_BYTES - fits.to_string().len() - 16;
    fits["request"]["extended_data"] = json!("y".repeat(room));
    let id = fits["id"].as_u64().unwrap();
    bob.raw.send(fits).await;
    let result = bob.raw.result(id).await;
    assert_eq!(error_code(&result), PAYLOAD_TOO_LARGE, "{result}");
    let result = bob.request(|id| send_frame(id, &[&alice.user])).await;
    assert!(result["ok"]["invitation_id"].is_string(), "{result}");
}

#[tokio::test]
async fn malformed_frames_are_answered_then_cut_off() {
    let mut alice = Online::new("alice").await;
    let mut bob = Online::new("bob").await;
    // With a readable id: a result for that id.
    alice.raw.send(json!({"type": "send", "id": 1})).await;
    let result = alice.raw.result(1).await;
    assert_eq!(error_code(&result), INVALID_ARGUMENT, "{result}");
    alice.raw.send(json!({"type": "teleport", "id": 2})).await;
    let result = alice.raw.result(2).await;
    assert_eq!(error_code(&result), INVALID_ARGUMENT, "{result}");
    // Without one: an error frame, and the connection goes on.
    let mut errors = 2;
    for text in ["{not json", r#"{"type":"teleport"}"#, "[1,2,3]", r#""x""#] {
        alice.raw.send_text(text.into()).await;
        errors += 1;
        let frame = alice.raw.json().await;
        assert_eq!(frame["type"], "error", "{text}: {frame}");
        assert_eq!(frame["code"], INVALID_ARGUMENT, "{text}: {frame}");
    }
    alice.next_id = 3;
    let result = alice
        .request(|id| cancel_frame(id, &unknown_invitation()))
        .await;
    assert_eq!(error_code(&result), INVITATION_NOT_FOUND);

    // Too many: the connection is closed.
    let mut closed = None;
    let mut frames = Vec::new();
    for _ in 0..32 {
        if alice.raw.ws.send(Message::text("{oops")).await.is_err() {
            break;
        }
        errors += 1;
        match alice.raw.next().await {
            Frame::Json(frame) => frames.push(frame),
            Frame::Close(code) => {
                closed = Some(code);
                break;
            }
            Frame::Gone => break,
        }
        if errors >= 16 {
            let (rest, code) = alice.raw.until_closed().await;
            frames.extend(rest);
            closed = Some(code);
            break;
        }
    }
    assert_eq!(closed, Some(Some(1008)), "{frames:?}");
    let last = frames.last().expect("a final error frame");
    assert_eq!(last["code"], INVALID_ARGUMENT, "{last}");
    assert!(
        last["message"].as_str().unwrap_or("").contains("too many"),
        "{last}"
    );

    // The other connection is unaffected.
    let result = bob
        .request(|id| cancel_frame(id, &unknown_invitation()))
        .await;
    assert_eq!(error_code(&result), INVITATION_NOT_FOUND);
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_cut_off() {
    let server = secret_server();
    let floods_before = metric(
        &server.server,
        "beckon_connections_dropped_total",
        "result=\"flood\"",
    );
    let mut alice = Online::new("alice").await;
    let mut bob = Online::new("bob").await;
    // Far more than the burst of 20 plus 20 over it, as fast as possible.
    let unknown = unknown_invitation();
    let mut sent = 0;
    for id in 1..=200u64 {
        let text = cancel_frame(id, &unknown).to_string();
        match timeout(WAIT, alice.raw.ws.send(Message::text(text))).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    assert!(sent > 41, "only {sent} frames could be sent");
    let (frames, closed) = alice.raw.until_closed().await;
    assert_eq!(closed, Some(1008), "{frames:?}");
    let codes: Vec<i64> = frames
        .iter()
        .filter(|f| f["type"] == "result")
        .map(error_code)
        .collect();
    assert!(
        codes.contains(&INVITATION_NOT_FOUND),
        "the burst was served: {codes:?}"
    );
    assert!(codes.contains(&RATE_LIMITED), "no RATE_LIMITED: {codes:?}");
    // Once limited, results stay limited until the cut.
    let first_limited = codes.iter().position(|c| *c == RATE_LIMITED).unwrap();
    assert!(
        codes[first_limited..].iter().all(|c| *c == RATE_LIMITED),
        "{codes:?}"
    );
    assert!(codes.len() < sent, "every frame was answered: {codes:?}");
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], RATE_LIMITED, "{last}");

    // Another connection on the same server still gets its results.
    for _ in 0..3 {
        let result = bob.request(|id| cancel_frame(id, &unknown)).await;
        assert_eq!(error_code(&result), INVITATION_NOT_FOUND, "{result}");
    }
    let after = metric(
        &server.server,
        "beckon_connections_dropped_total",
        "result=\"flood\"",
    );
    assert!(after > floods_before);
}

#[tokio::test]
async fn a_silent_tcp_peer_is_dropped_at_the_handshake_deadline() {
    let server = deadline_server();
    let mut tcp = timeout(WAIT, TcpStream::connect(("127.0.0.1", server.port)))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut buffer = [0u8; 64];
    // Nothing was sent, so the server has nothing to say: it just hangs up.
    let read = timeout(WAIT, tcp.read(&mut buffer))
        .await
        .expect("the server hangs up within WAIT");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The socket closes as the timed-out handshake is dropped, a moment
    // before the drop is counted: wait for the count.
    let counted = Instant::now() + WAIT;
    while metric(
        server,
        "beckon_connections_dropped_total",
        "result=\"handshake_timeout\"",
    ) == 0
    {
        assert!(Instant::now() < counted, "the drop was never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_trickled_handshake_is_dropped_at_the_deadline() {
    let server = deadline_server();
    let mut tcp = timeout(WAIT, TcpStream::connect(("127.0.0.1", server.port)))
        .await
        .expect("connect in time")
        .expect("connect");
    // A request line, then one header byte every 50 ms: the deadline covers
    // the whole handshake, it does not restart with each byte.
    let trickle = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let deadline = Instant::now() + WAIT;
    let mut buffer = [0u8; 64];
    let mut sent = 0;
    let ended = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break false,
            read = tcp.read(&mut buffer) => {
                assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
                break true;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)), if sent < trickle.len() => {
                if tcp.write_all(&trickle[sent..sent + 1]).await.is_err() {
                    break true;
                }
                sent += 1;
            }
        }
    };
    assert!(ended, "still connected after {WAIT:?} of trickling");
    assert!(sent < trickle.len(), "the whole trickle went through");
}

#[tokio::test]
async fn a_plain_http_request_is_answered_and_the_port_still_speaks_websocket() {
    let server = deadline_server();
    for (request, status, result) in [
        (
            &b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"[..],
            "426",
            "not_websocket",
        ),
        (
            &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1"[..],
            "400",
            "not_http",
        ),
    ] {
        let mut tcp = timeout(WAIT, TcpStream::connect(("127.0.0.1", server.port)))
            .await
            .expect("connect in time")
            .expect("connect");
        tcp.write_all(request).await.expect("send the request");
        let mut answer = Vec::new();
        timeout(WAIT, tcp.read_to_end(&mut answer))
            .await
            .expect("the server answers and hangs up within WAIT")
            .expect("read the answer");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        assert!(answer.contains("subprotocol beckon.v1"), "{answer}");
        let label = format!("result=\"{result}\"");
        let counted = Instant::now() + WAIT;
        while metric(server, "beckon_connections_dropped_total", &label) == 0 {
            assert!(Instant::now() < counted, "{result} was never counted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A WebSocket client on the same port is served as before.
    let mut raw = Raw::connect(&server.url()).await;
    let first = raw.json().await;
    assert_refused(&mut raw, &first, NOT_LOGGED_IN, 1008).await;
}

#[tokio::test]
async fn a_connection_without_hello_is_closed_at_the_login_deadline() {
    let server = deadline_server();
    let mut raw = Raw::connect(&server.url()).await;
    let first = raw.json().await;
    assert_refused(&mut raw, &first, NOT_LOGGED_IN, 1008).await;
}

#[tokio::test]
async fn pings_do_not_extend_the_login_deadline() {
    let server = deadline_server();
    let mut raw = Raw::connect(&server.url()).await;
    // A ping every 50 ms, far more often than the 300 ms deadline, but no hello.
    let deadline = Instant::now() + WAIT;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let ended = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break None,
            _ = ticks.tick() => {
                if raw.ws.send(Message::Ping(Default::default())).await.is_err() {
                    break Some(Frame::Gone);
                }
            }
            frame = raw.ws.next() => match frame {
                Some(Ok(Message::Pong(_) | Message::Ping(_))) => {}
                Some(Ok(Message::Text(text))) => {
                    break Some(Frame::Json(serde_json::from_str(&text).unwrap()))
                }
                Some(Ok(Message::Close(close))) => break Some(Frame::Close(close.map(|c| u16::from(c.code)))),
                _ => break Some(Frame::Gone),
            },
        }
    };
    match ended {
        Some(Frame::Json(first)) => assert_refused(&mut raw, &first, NOT_LOGGED_IN, 1008).await,
        Some(other) => panic!("closed without an error frame: {other:?}"),
        None => panic!("still connected after {WAIT:?} of pings without a hello"),
    }
}

/// Reads server frames off the socket by hand, without answering anything,
/// until the connection ends: (opcode, payload) of each. Server frames are
/// not masked; these are small, so only the short length forms occur.
async fn raw_frames(socket: &mut MaybeTlsStream<TcpStream>) -> Vec<(u8, Vec<u8>)> {
    let mut bytes = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut chunk)).await {
            Err(_) => panic!("the connection is still open after {WAIT:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (length, header) = match rest[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 => panic!("an unexpectedly long frame"),
            short => (usize::from(short), 2),
        };
        let payload = rest[header..header + length].to_vec();
        frames.push((opcode, payload));
        rest = &rest[header + length..];
    }
    frames
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_dropped() {
    let server = deadline_server();
    let url = server.url();
    let (dead_user, live_user) = (unique("dead"), unique("live"));
    let (mut dead, welcome) = Raw::login(&url, &dead_user, "d1", "dev").await;
    assert_eq!(welcome["heartbeat_secs"], 1);
    let (mut live, _) = Raw::login(&url, &live_user, "d1", "dev").await;
    // The dead peer is not read for six heartbeats: its pings go unanswered.
    // The live one reads (and so answers pings) all the while.
    let quiet = Instant::now() + Duration::from_secs(6);
    loop {
        match tokio::time::timeout_at(quiet, live.ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => panic!("the live peer got {other:?}"),
        }
    }
    // Read what the server sent, bytes as they are (tungstenite would answer
    // the pings as it reads them): pings, then a close for the heartbeat.
    let frames = raw_frames(dead.ws.get_mut()).await;
    let pings = frames.iter().filter(|(op, _)| *op == 0x9).count();
    assert!(pings >= 1, "{frames:?}");
    let (op, close) = frames.last().expect("a close frame");
    assert_eq!(*op, 0x8, "{frames:?}");
    assert_eq!(
        close.get(..2),
        Some(&1001u16.to_be_bytes()[..]),
        "{frames:?}"
    );
    assert!(
        metric(
            server,
            "beckon_connections_dropped_total",
            "result=\"heartbeat\""
        ) >= 1
    );
    // The peer that answered its pings is still served.
    live.send(cancel_frame(1, &unknown_invitation())).await;
    assert_eq!(error_code(&live.result(1).await), INVITATION_NOT_FOUND);
}

#[tokio::test]
async fn repeated_request_ids_are_ignored() {
    let mut alice = Online::new("alice").await;
    let mut bob = Online::new("bob").await;
    let send = send_frame(1, &[&bob.user]);
    alice.raw.send(send.clone()).await;
    let first = alice.raw.result(1).await;
    assert!(first["ok"]["invitation_id"].is_string(), "{first}");
    // The same id again, and an older one with another body: both ignored, so
    // the next result is that of id 3.
    alice.raw.send(send).await;
    alice.raw.send(cancel_frame(1, &unknown_invitation())).await;
    alice.raw.send(cancel_frame(3, &unknown_invitation())).await;
    let (third, before) = alice.raw.result_after(3).await;
    assert!(
        before.iter().all(|f| f["type"] != "result"),
        "a repeat was answered: {before:?}"
    );
    assert_eq!(error_code(&third), INVITATION_NOT_FOUND);
    let (s1, s3) = (
        first["seq"].as_u64().unwrap(),
        third["seq"].as_u64().unwrap(),
    );
    assert!(s3 > s1, "seq must grow: {s1} then {s3}");
    // Id 2 was skipped, and is below the last one handled: ignored too.
    alice.raw.send(cancel_frame(2, &unknown_invitation())).await;
    alice.raw.send(cancel_frame(4, &unknown_invitation())).await;
    let (fourth, before) = alice.raw.result_after(4).await;
    assert!(
        before.iter().all(|f| f["type"] != "result"),
        "a skipped id was answered: {before:?}"
    );
    assert!(fourth["seq"].as_u64().unwrap() > s3, "{fourth}");

    // One invitation only reached the invitee.
    let seen = bob.pushes_so_far().await;
    assert_eq!(count_pushes(&seen, "invitation_received"), 1, "{seen:?}");
}

/// The seq of every frame in `frames`, which must follow `after` one by one.
fn assert_consecutive(frames: &[Value], after: u64) -> u64 {
    let mut last = after;
    for frame in frames {
        let seq = frame["seq"].as_u64().unwrap_or_else(|| panic!("{frame}"));
        assert_eq!(seq, last + 1, "replayed out of order or twice: {frames:?}");
        last = seq;
    }
    last
}

#[tokio::test]
async fn a_resumed_session_replays_what_was_missed_exactly_once() {
    let server = secret_server();
    let url = server.url();
    let alice = unique("alice");
    let token = server.token(&alice);
    let (mut a, welcome) = Raw::login(&url, &alice, "d1", &token).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    let mut bob = Online::new("bob").await;
    a.send(send_frame(1, &[&bob.user])).await;
    let sent = a.result(1).await;
    let invitation = sent["ok"]["invitation_id"].as_str().unwrap().to_owned();
    let seen = sent["seq"].as_u64().unwrap();
    // The network goes: no close frame.
    drop(a);

    // While alice is away, bob answers; alice's session queues the news.
    let accepted = bob
        .request(|id| answer_frame("accept", id, &invitation))
        .await;
    assert!(accepted.get("error").is_none(), "{accepted}");

    let resume = hello(&alice, "d1", &token, Some((&session, seen)));
    let (mut a, welcome) = Raw::hello(&url, resume.clone()).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["session"], session.as_str());
    assert_eq!(welcome["last_request"], 1);
    // A client that re-sends request 1 (its result might have been lost) is
    // ignored: no second invitation.
    a.send(send_frame(1, &[&bob.user])).await;
    a.send(cancel_frame(2, &invitation)).await;
    let (closed, replayed) = a.result_after(2).await;
    assert_eq!(error_code(&closed), INVITATION_CLOSED, "{closed}");
    assert!(!replayed.is_empty(), "nothing was replayed");
    assert!(replayed.iter().all(|f| f["type"] == "push"), "{replayed:?}");
    assert_eq!(
        count_pushes(&replayed, "invitation_accepted"),
        1,
        "{replayed:?}"
    );
    let last = assert_consecutive(&replayed, seen);
    assert_eq!(closed["seq"].as_u64(), Some(last + 1), "{closed}");
    let last = last + 1;
    drop(a);

    // Once more, having seen everything: nothing is replayed again.
    let resume = hello(&alice, "d1", &token, Some((&session, last)));
    let (mut a, welcome) = Raw::hello(&url, resume).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["last_request"], 2);
    a.send(cancel_frame(3, &unknown_invitation())).await;
    let (marker, replayed) = a.result_after(3).await;
    assert!(replayed.is_empty(), "replayed twice: {replayed:?}");
    assert_eq!(marker["seq"].as_u64(), Some(last + 1), "{marker}");
    // Bob got exactly one invitation.
    let bob_saw = bob.pushes_so_far().await;
    assert_eq!(
        count_pushes(&bob_saw, "invitation_received"),
        1,
        "{bob_saw:?}"
    );
}

#[tokio::test]
async fn a_resume_with_a_wrong_secret_or_user_starts_afresh() {
    let server = secret_server();
    let url = server.url();
    let (alice, carol) = (unique("alice"), unique("carol"));
    let token = server.token(&alice);
    let (mut a, welcome) = Raw::login(&url, &alice, "d1", &token).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    a.send(cancel_frame(1, &unknown_invitation())).await;
    let seen = a.result(1).await["seq"].as_u64().unwrap();
    drop(a);

    let fresh = |welcome: &Value| {
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["resumed"], false, "{welcome}");
        assert_eq!(welcome["last_request"], 0, "{welcome}");
        assert_ne!(welcome["session"], session.as_str(), "{welcome}");
    };
    // A made-up secret (on another device, so alice's session stays).
    let wrong = format!("{:032x}", rand::random::<u128>());
    let (_d2, welcome) = Raw::hello(&url, hello(&alice, "d2", &token, Some((&wrong, seen)))).await;
    fresh(&welcome);
    // Alice's secret, presented by another user with a good token of their own.
    let carol_token = server.token(&carol);
    let (_c, welcome) = Raw::hello(
        &url,
        hello(&carol, "d1", &carol_token, Some((&session, seen))),
    )
    .await;
    fresh(&welcome);
    // Alice's secret and user, on another device.
    let (_d3, welcome) =
        Raw::hello(&url, hello(&alice, "d3", &token, Some((&session, seen)))).await;
    fresh(&welcome);
    // Alice's secret, user and device, but no valid token.
    let (mut raw, first) =
        Raw::hello(&url, hello(&alice, "d1", "garbage", Some((&session, seen)))).await;
    assert_refused(&mut raw, &first, AUTH_FAILED, 1008).await;
    let carols_token_for_alice = hello(&alice, "d1", &carol_token, Some((&session, seen)));
    let (mut raw, first) = Raw::hello(&url, carols_token_for_alice).await;
    assert_refused(&mut raw, &first, AUTH_FAILED, 1008).await;

    // None of that took the session from its owner.
    let (mut a, welcome) =
        Raw::hello(&url, hello(&alice, "d1", &token, Some((&session, seen)))).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["last_request"], 1, "{welcome}");
    a.send(cancel_frame(2, &unknown_invitation())).await;
    let (marker, replayed) = a.result_after(2).await;
    assert!(replayed.is_empty(), "{replayed:?}");
    assert_eq!(marker["seq"].as_u64(), Some(seen + 1), "{marker}");
}

/// `welcome.synced` tells a resuming client whether its `sync` (a notice:
/// no result, no seq) reached the server before the drop.
#[tokio::test]
async fn a_resumed_welcome_says_whether_the_sync_arrived() {
    let server = secret_server();
    let url = server.url();
    let alice = unique("alice");
    let token = server.token(&alice);
    let (a, welcome) = Raw::hello(&url, hello(&alice, "d1", &token, None)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["resumed"], false, "{welcome}");
    assert_eq!(welcome["synced"], false, "a fresh session: {welcome}");
    let session = welcome["session"].as_str().unwrap().to_owned();
    // The connection goes before any sync.
    drop(a);

    let resume = hello(&alice, "d1", &token, Some((&session, 0)));
    let (mut a, welcome) = Raw::hello(&url, resume).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["synced"], false, "no sync arrived: {welcome}");
    a.send(json!({"type": "sync"})).await;
    // A request after it: once answered, the sync was handled.
    a.send(cancel_frame(1, &unknown_invitation())).await;
    let marker = a.result(1).await;
    assert_eq!(error_code(&marker), INVITATION_NOT_FOUND, "{marker}");
    let seen = marker["seq"].as_u64().unwrap();
    drop(a);

    let resume = hello(&alice, "d1", &token, Some((&session, seen)));
    let (mut a, welcome) = Raw::hello(&url, resume).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["synced"], true, "the sync arrived: {welcome}");
    // A sync sent again is harmless: what rings is handed once per session.
    let mut bob = Online::new("bob").await;
    let invitation = bob.invite(&[&alice]).await;
    a.send(json!({"type": "sync"})).await;
    a.send(json!({"type": "sync"})).await;
    a.send(cancel_frame(2, &unknown_invitation())).await;
    let (_, before) = a.result_after(2).await;
    let rung: Vec<&Value> = before
        .iter()
        .filter(|f| f["push"]["type"] == "invitation_received")
        .collect();
    assert_eq!(rung.len(), 1, "{before:?}");
    assert_eq!(rung[0]["push"]["invitation_id"], invitation.as_str());
    // And a repeated receipt changes nothing: RECEIVED is announced once.
    let receipt = json!({"type": "receipt", "invitation_id": invitation});
    a.send(receipt.clone()).await;
    a.send(receipt).await;
    a.send(cancel_frame(3, &unknown_invitation())).await;
    let (_, before) = a.result_after(3).await;
    assert_eq!(count_pushes(&before, "user_state_changed"), 1, "{before:?}");
    let bob_saw = bob.pushes_so_far().await;
    let received: Vec<&Value> = bob_saw
        .iter()
        .filter(|f| f["push"]["type"] == "user_state_changed")
        .collect();
    assert_eq!(received.len(), 1, "{bob_saw:?}");
    assert_eq!(received[0]["push"]["state"], "received", "{bob_saw:?}");
}

#[tokio::test]
async fn the_same_device_logging_in_again_kicks_out_the_old_session() {
    let server = secret_server();
    let mut old = Online::new("alice").await;
    let token = server.token(&old.user);
    let (mut new, welcome) = Raw::login(&server.url(), &old.user, "d1", &token).await;
    assert_eq!(welcome["resumed"], false);
    assert_ne!(welcome["session"], old.welcome["session"]);
    let (frames, closed) = old.raw.until_closed().await;
    let last = frames.last().expect("a kicked_out push");
    assert_eq!(last["type"], "push", "{frames:?}");
    assert_eq!(last["push"]["type"], "kicked_out", "{frames:?}");
    assert_eq!(closed, Some(1000));
    // The new connection is served.
    new.send(cancel_frame(1, &unknown_invitation())).await;
    assert_eq!(error_code(&new.result(1).await), INVITATION_NOT_FOUND);
    // The old session is over for good: presenting its secret logs in afresh
    // (and, being the same device again, kicks out the newer one in turn).
    let old_session = old.welcome["session"].as_str().unwrap();
    let resume = hello(&old.user, "d1", &token, Some((old_session, 0)));
    let (_again, welcome) = Raw::hello(&server.url(), resume).await;
    assert_eq!(welcome["resumed"], false, "{welcome}");
    let (frames, closed) = new.until_closed().await;
    assert_eq!(count_pushes(&frames, "kicked_out"), 1, "{frames:?}");
    assert_eq!(closed, Some(1000));
}

#[tokio::test]
async fn an_oversized_hello_is_cut_off() {
    let server = secret_server();
    let user = unique("alice");
    let mut big = hello(&user, "d1", &server.token(&user), None);
    big["padding"] = json!("x".repeat(MAX_FRAME_BYTES + 100));
    let (mut raw, first) = Raw::hello(&server.url(), big).await;
    assert_refused(&mut raw, &first, PAYLOAD_TOO_LARGE, 1009).await;
}

#[tokio::test]
async fn binary_frames_are_refused() {
    let server = secret_server();
    let mut raw = Raw::connect(&server.url()).await;
    raw.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let first = raw.json().await;
    assert_refused(&mut raw, &first, INVALID_ARGUMENT, 1003).await;
    let mut alice = Online::new("alice").await;
    alice.raw.ws.send(Message::binary(vec![1u8])).await.unwrap();
    let first = alice.raw.json().await;
    assert_refused(&mut alice.raw, &first, INVALID_ARGUMENT, 1003).await;
}

#[tokio::test]
async fn a_ping_flood_is_cut_off_too() {
    let mut alice = Online::new("alice").await;
    let mut bob = Online::new("bob").await;
    for _ in 0..300 {
        let ping = Message::Ping(Default::default());
        if !matches!(timeout(WAIT, alice.raw.ws.send(ping)).await, Ok(Ok(()))) {
            break;
        }
    }
    let (frames, closed) = alice.raw.until_closed().await;
    assert_eq!(closed, Some(1008), "{frames:?}");
    let last = frames.last().expect("an error frame");
    assert_eq!(last["code"], RATE_LIMITED, "{last}");
    let result = bob
        .request(|id| cancel_frame(id, &unknown_invitation()))
        .await;
    assert_eq!(error_code(&result), INVITATION_NOT_FOUND);
}

#[tokio::test]
async fn devices_per_user_are_limited() {
    static SERVER: OnceLock<ServerProcess> = OnceLock::new();
    let server = SERVER.get_or_init(|| ServerProcess::start(&["--max-devices", "2"]));
    let url = server.url();
    let user = unique("alice");
    let (mut d1, _) = Raw::login(&url, &user, "d1", "dev").await;
    let (_d2, _) = Raw::login(&url, &user, "d2", "dev").await;
    let (mut d3, first) = Raw::hello(&url, hello(&user, "d3", "dev", None)).await;
    assert_refused(&mut d3, &first, NOT_PERMITTED, 1008).await;
    // The refused device took nothing from the others; a device that logs in
    // again replaces its own session instead of counting twice.
    d1.send(cancel_frame(1, &unknown_invitation())).await;
    assert_eq!(error_code(&d1.result(1).await), INVITATION_NOT_FOUND);
    let (_d1_again, welcome) = Raw::login(&url, &user, "d1", "dev").await;
    assert_eq!(welcome["resumed"], false);
    let (frames, closed) = d1.until_closed().await;
    assert_eq!(count_pushes(&frames, "kicked_out"), 1, "{frames:?}");
    assert_eq!(closed, Some(1000));
}

#[tokio::test]
async fn a_second_hello_and_request_id_zero_are_refused() {
    let server = secret_server();
    let mut alice = Online::new("alice").await;
    // Id 0 is below every valid id: answered with INVALID_ARGUMENT, not ignored.
    alice.raw.send(cancel_frame(0, &unknown_invitation())).await;
    let (result, _) = alice.raw.result_after(0).await;
    assert_eq!(error_code(&result), INVALID_ARGUMENT, "{result}");
    // A second hello on a logged-in connection: an error, then close 1008.
    let again = hello(&alice.user, "d1", &server.token(&alice.user), None);
    alice.raw.send(again).await;
    let first = alice.raw.json().await;
    assert_refused(&mut alice.raw, &first, INVALID_ARGUMENT, 1008).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped() {
    // An outbox of 16 frames: a client that neither reads nor acknowledges is
    // cut off once it is that far behind, so nothing queues without bound.
    let dir = std::env::temp_dir().join(format!("beckon-slow-{}", common::rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(&config, "outbox_capacity = 16\n").unwrap();
    let server = ServerProcess::start(&["--config", config.to_str().unwrap()]);
    let url = server.url();
    let (bob, alice) = (unique("bob"), unique("alice"));
    let (_slow, _) = Raw::login(&url, &bob, "d1", "t").await; // never read again
    let (mut inviter, _) = Raw::login(&url, &alice, "d1", "t").await;
    for id in 1..=40 {
        inviter.send(send_frame(id, &[&bob])).await;
        let (result, _) = inviter.result_after(id).await;
        // The inviter keeps up: it acknowledges what it read.
        inviter
            .send(json!({"type": "ack", "seq": result["seq"]}))
            .await;
        if metric(
            &server,
            "beckon_connections_dropped_total",
            r#"result="too_slow""#,
        ) == 1
        {
            break;
        }
    }
    assert_eq!(
        metric(
            &server,
            "beckon_connections_dropped_total",
            r#"result="too_slow""#
        ),
        1
    );
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains("\nbeckon_outbox_overflows_total 1\n"),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_answer_lost_in_an_overflow_is_given_again_on_the_fresh_session() {
    // An outbox of 16 frames: bob accepts, then reads nothing while alice
    // keeps inviting him, so his outbox overflows and the accept's result is
    // lost with it. His fresh session answers the re-sent accept as it was
    // answered (OK), instead of running it again (ALREADY_ANSWERED).
    let dir = std::env::temp_dir().join(format!("beckon-handover-{}", common::rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(&config, "outbox_capacity = 16\n").unwrap();
    let server = ServerProcess::start(&["--config", config.to_str().unwrap()]);
    let url = server.url();
    let (bob, alice) = (unique("bob"), unique("alice"));
    let (mut callee, welcome) = Raw::login(&url, &bob, "d1", "t").await;
    let secret = welcome["session"].as_str().unwrap().to_owned();
    let (mut inviter, _) = Raw::login(&url, &alice, "d1", "t").await;
    inviter.send(send_frame(1, &[&bob])).await;
    let (result, _) = inviter.result_after(1).await;
    let invitation = result["ok"]["invitation_id"].as_str().unwrap().to_owned();
    callee.send(answer_frame("accept", 1, &invitation)).await;
    // The accept ran: alice hears of it.
    loop {
        let frame = inviter.json().await;
        if frame["type"] == "push" && frame["push"]["type"] == "invitation_accepted" {
            break;
        }
    }
    for id in 2..=60 {
        inviter.send(send_frame(id, &[&bob])).await;
        let (result, _) = inviter.result_after(id).await;
        inviter
            .send(json!({"type": "ack", "seq": result["seq"]}))
            .await;
        let dropped = metric(
            &server,
            "beckon_connections_dropped_total",
            r#"result="too_slow""#,
        );
        if dropped == 1 {
            break;
        }
    }
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains("\nbeckon_outbox_overflows_total 1\n"),
        "{metrics}"
    );
    drop(callee);

    // Bob comes back: his session cannot be resumed (frames are gone).
    let resume = hello(&bob, "d1", "t", Some((&secret, 0)));
    let (mut again, welcome) = Raw::hello(&url, resume).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["resumed"], false, "{welcome}");
    assert_eq!(welcome["last_request"], 0, "{welcome}");
    again.send(json!({"type": "sync"})).await;
    again.send(answer_frame("accept", 1, &invitation)).await;
    let (result, _) = again.result_after(1).await;
    assert_eq!(result["ok"], Value::Null, "{result}");
    assert!(result.get("error").is_none(), "answered anew: {result}");
    // A new request on the fresh session runs as usual.
    again.send(answer_frame("accept", 2, &invitation)).await;
    let (result, _) = again.result_after(2).await;
    assert_eq!(error_code(&result), ALREADY_ANSWERED, "{result}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn open_invitations_per_user_are_capped_and_a_lost_session_gets_a_snapshot() {
    let server = ServerProcess::start(&["--max-open-invitations", "2"]);
    let url = server.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let (mut inviter, welcome) = Raw::login(&url, &alice, "d1", "t").await;
    let secret = welcome["session"].as_str().unwrap().to_owned();
    let mut invitations = Vec::new();
    for id in 1..=2 {
        inviter.send(send_frame(id, &[&bob])).await;
        let (result, _) = inviter.result_after(id).await;
        invitations.push(result["ok"]["invitation_id"].as_str().unwrap().to_owned());
    }
    inviter.send(send_frame(3, &[&bob])).await;
    let (result, _) = inviter.result_after(3).await;
    assert_eq!(error_code(&result), RATE_LIMITED, "{result}");
    assert!(
        result["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 invitations open"),
        "{result}"
    );
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains("\nbeckon_quota_refused_total 1\n"),
        "{metrics}"
    );

    // Alice's first invitation ends while she is away: bob refuses it.
    drop(inviter);
    let (mut callee, _) = Raw::login(&url, &bob, "d1", "t").await;
    callee
        .send(answer_frame("refuse", 1, &invitations[0]))
        .await;
    let (result, _) = callee.result_after(1).await;
    assert!(result.get("error").is_none(), "{result}");

    // A fresh session (the old secret is not resumed from a future seq) that
    // names what it knew gets a snapshot first.
    let resume = hello(&alice, "d1", "t", Some((&secret, 1_000_000)));
    let (mut again, welcome) = Raw::hello(&url, resume).await;
    assert_eq!(welcome["resumed"], false, "{welcome}");
    again
        .send(json!({"type": "sync", "known": invitations}))
        .await;
    let snapshot = again.json().await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let listed = snapshot["snapshot"]["invitations"].as_array().unwrap();
    let state_of = |id: &str| {
        let entry = listed
            .iter()
            .find(|i| i["invitation_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {snapshot}"));
        (
            entry["ended"].clone(),
            entry["invitees"][0]["state"].clone(),
        )
    };
    assert_eq!(state_of(&invitations[0]), (json!(true), json!("rejected")));
    assert_eq!(state_of(&invitations[1]).0, json!(false));
    // One place is free again.
    again.send(send_frame(1, &[&bob])).await;
    let (result, _) = again.result_after(1).await;
    assert!(result["ok"]["invitation_id"].is_string(), "{result}");
}
