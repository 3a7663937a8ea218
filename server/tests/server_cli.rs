//! The `beckon-server` command line as an operator meets it: `token`, the
//! refusals of `serve` (no secret, bad values), the development-mode warning,
//! the admin endpoints, and a graceful SIGTERM. Every child process is waited
//! for with a bound, and killed if it outlives it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beckon::protocol::UserId;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

mod common;
use common::{unique, ServerProcess, WAIT};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("beckon-cli-{}", common::rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished `beckon-server` run printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Starts `beckon-server args` without BECKON_SECRET in its environment;
/// output goes to files in `scratch`.
fn spawn(scratch: &Scratch, args: &[&str]) -> Child {
    let stdout = std::fs::File::create(scratch.path("stdout")).unwrap();
    let stderr = std::fs::File::create(scratch.path("stderr")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_beckon-server"))
        .args(args)
        .env_remove("BECKON_SECRET")
        .env_remove("BECKON_LOG")
        // The default data directory of a `serve` without --data-dir: in
        // this test's scratch, never the machine's.
        .env("XDG_STATE_HOME", scratch.path("state"))
        .env_remove("STATE_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start beckon-server")
}

/// Waits (at most WAIT) for `child` to exit; kills it and panics if it does not.
fn wait_for_exit(child: &mut Child, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `beckon-server args` to completion.
fn run(args: &[&str]) -> Run {
    let scratch = Scratch::new();
    let mut child = spawn(&scratch, args);
    let status = wait_for_exit(&mut child, &args.join(" "));
    Run {
        status,
        stdout: std::fs::read_to_string(scratch.path("stdout")).unwrap(),
        stderr: std::fs::read_to_string(scratch.path("stderr")).unwrap(),
    }
}

/// Runs `beckon-server args`, which must fail, with `needle` in its error.
fn assert_refused(args: &[&str], needle: &str) {
    let run = run(args);
    assert!(!run.status.success(), "{args:?} succeeded: {}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{args:?}: no '{needle}' in: {}",
        run.stderr
    );
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn token_mints_what_verify_accepts() {
    let scratch = Scratch::new();
    let secret = "a-secret-of-enough-bytes-0123";
    // A trailing newline, as `echo` writes it, is not part of the secret.
    let secret_file = scratch.file("secret", &format!("{secret}\n"));
    let user = UserId::parse("alice.smith@example", "user").unwrap();
    let before = unix_now();
    let run = run(&[
        "token",
        "--user",
        user.as_str(),
        "--ttl",
        "120",
        "--secret-file",
        path_str(&secret_file),
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    let token = run.stdout.trim();
    let expiry = beckon::token::verify(secret.as_bytes(), &user, token, before)
        .unwrap_or_else(|e| panic!("{token}: {e}"));
    assert!(expiry > before && expiry <= unix_now() + 120, "{expiry}");
    // For that user only, and under that secret only.
    let bob = UserId::parse("bob", "user").unwrap();
    assert!(beckon::token::verify(secret.as_bytes(), &bob, token, before).is_err());
    assert!(beckon::token::verify(b"another-secret-0123456", &user, token, before).is_err());

    // Refusals.
    let file = path_str(&secret_file);
    assert_refused(
        &[
            "token",
            "--user",
            "alice",
            "--ttl",
            "0",
            "--secret-file",
            file,
        ],
        "ttl",
    );
    assert_refused(
        &[
            "token",
            "--user",
            "bad user",
            "--ttl",
            "60",
            "--secret-file",
            file,
        ],
        "user",
    );
    assert_refused(&["token", "--user", "alice", "--ttl", "60"], "no secret");
    let short = scratch.file("short", "tiny");
    let short = path_str(&short);
    assert_refused(
        &[
            "token",
            "--user",
            "alice",
            "--ttl",
            "60",
            "--secret-file",
            short,
        ],
        "16 bytes",
    );
}

#[test]
fn serve_refuses_to_start_without_a_secret() {
    assert_refused(&["serve", "--listen", "127.0.0.1:0"], "no secret");
    // A secret and --dev together are a mistake too.
    let scratch = Scratch::new();
    let secret = scratch.file("secret", "a-secret-of-enough-bytes-0123");
    assert_refused(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dev",
            "--secret-file",
            path_str(&secret),
        ],
        "--dev",
    );
    let missing = scratch.path("missing");
    assert_refused(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            path_str(&missing),
        ],
        "secret_file",
    );
}

#[test]
fn dev_mode_warns_loudly() {
    let scratch = Scratch::new();
    let port_file = scratch.path("ports.json");
    let mut child = spawn(
        &scratch,
        &[
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--exit-on-stdin-close",
            "--port-file",
            path_str(&port_file),
        ],
    );
    let started = Instant::now();
    while !port_file.exists() {
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the development server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Closing its stdin stops it, gracefully.
    drop(child.stdin.take());
    let status = wait_for_exit(&mut child, "dev server");
    assert!(status.success(), "{status}");
    let stderr = std::fs::read_to_string(scratch.path("stderr")).unwrap();
    assert!(stderr.contains("WARNING"), "{stderr}");
    assert!(stderr.contains("DEVELOPMENT MODE"), "{stderr}");
    assert!(stderr.contains("every token is accepted"), "{stderr}");
}

#[test]
fn bad_config_values_are_refused() {
    let serve = ["serve", "--dev", "--listen", "127.0.0.1:0"];
    let bad: [(&[&str], &str); 9] = [
        (&["--heartbeat-secs", "0"], "heartbeat_secs"),
        // Over the range's floor, but a valid request would not fit.
        (&["--max-frame-bytes", "8192"], "largest valid request"),
        (&["--heartbeat-secs", "100000"], "heartbeat_secs"),
        (&["--max-frame-bytes", "10"], "max_frame_bytes"),
        (&["--messages-per-sec", "0"], "messages_per_sec"),
        (&["--messages-burst", "0"], "messages_burst"),
        (&["--login-timeout-ms", "5"], "login_timeout_ms"),
        (&["--handshake-timeout-ms", "5"], "handshake_timeout_ms"),
        (&["--max-invitees", "0"], "limits"),
    ];
    for (flags, needle) in bad {
        let args: Vec<&str> = serve.iter().chain(flags).copied().collect();
        assert_refused(&args, needle);
    }
    // Not a number, not an address: clap refuses them.
    assert_refused(
        &["serve", "--dev", "--heartbeat-secs", "soon"],
        "heartbeat-secs",
    );
    assert_refused(&["serve", "--dev", "--listen", "nowhere"], "listen");

    // The same checks apply to a config file, which also refuses unknown keys.
    let scratch = Scratch::new();
    let files = [
        ("unknown = 1\n", "unknown"),
        ("heartbeat_secs = 0\n", "heartbeat_secs"),
        ("max_frame_bytes = \"big\"\n", "max_frame_bytes"),
    ];
    for (i, (text, needle)) in files.into_iter().enumerate() {
        let config = scratch.file(&format!("config-{i}.toml"), text);
        let args = [
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path_str(&config),
        ];
        assert_refused(&args, needle);
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn next_json(ws: &mut Socket) -> Option<Value> {
    loop {
        match timeout(WAIT, ws.next()).await.expect("a frame within WAIT") {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

/// Logs in (development server) and syncs; returns the socket.
async fn login(url: &str, user: &UserId) -> Socket {
    let (mut ws, _) = timeout(WAIT, connect_async(url)).await.unwrap().unwrap();
    let hello = json!({"type": "hello", "v": 1, "user": user, "device": "d1", "token": "dev"});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let welcome = next_json(&mut ws).await.expect("welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws.send(Message::text(r#"{"type":"sync"}"#)).await.unwrap();
    ws
}

/// Sends request `frame` and returns its result, skipping pushes.
async fn request(ws: &mut Socket, frame: Value) -> Value {
    let id = frame["id"].clone();
    ws.send(Message::text(frame.to_string())).await.unwrap();
    for _ in 0..100 {
        let frame = next_json(ws).await.expect("a result");
        if frame["type"] == "result" && frame["id"] == id {
            return frame;
        }
    }
    panic!("no result for {id}");
}

/// The value of the sample `line_start` (name and labels) in `metrics`.
fn sample(metrics: &str, line_start: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn admin_endpoints_answer_and_count() {
    let server = ServerProcess::start(&[]);
    let (status, body) = server.admin_get("/healthz");
    assert!(status.contains(" 200"), "{status}");
    assert_eq!(body.trim(), "ok");
    let (status, _) = server.admin_get("/nothing-here");
    assert!(status.contains(" 404"), "{status}");

    // A flow: two logins, one invitation, accepted; and one refused login.
    let url = server.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut a = login(&url, &alice).await;
    let mut b = login(&url, &bob).await;
    let send = json!({"type": "send", "id": 1, "request": {
        "invitees": [bob], "timeout_secs": 60, "extended_data": "", "notification": null}});
    let sent = request(&mut a, send).await;
    let invitation = sent["ok"]["invitation_id"].clone();
    assert!(invitation.is_string(), "{sent}");
    let accept = json!({"type": "accept", "id": 1, "answer": {
        "invitation_id": invitation, "extended_data": ""}});
    let accepted = request(&mut b, accept).await;
    assert!(accepted.get("error").is_none(), "{accepted}");
    let (mut old, _) = timeout(WAIT, connect_async(&url)).await.unwrap().unwrap();
    let wrong = json!({"type": "hello", "v": 99, "user": alice, "device": "d9", "token": "dev"});
    old.send(Message::text(wrong.to_string())).await.unwrap();
    let refused = next_json(&mut old).await.expect("an error frame");
    assert_eq!(refused["type"], "error", "{refused}");

    let (status, metrics) = server.admin_get("/metrics");
    assert!(status.contains(" 200"), "{status}");
    let expected = [
        ("beckon_logins_total{result=\"ok\"}", 2),
        ("beckon_logins_total{result=\"bad_version\"}", 1),
        ("beckon_invitations_total{outcome=\"created\"}", 1),
        ("beckon_invitations_total{outcome=\"accepted\"}", 1),
        ("beckon_requests_total{op=\"send\"}", 1),
        ("beckon_requests_total{op=\"accept\"}", 1),
        ("beckon_connections_opened_total", 3),
        ("beckon_sessions_live", 2),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&metrics, name), Some(value), "{name} in:\n{metrics}");
    }
}

/// Reads text frames until the server closes; returns them and the close code.
async fn until_closed(ws: &mut Socket) -> (Vec<String>, Option<u16>) {
    let mut frames = Vec::new();
    for _ in 0..100 {
        match timeout(WAIT, ws.next()).await.expect("a close within WAIT") {
            Some(Ok(Message::Text(text))) => frames.push(text.to_string()),
            Some(Ok(Message::Close(close))) => return (frames, close.map(|c| u16::from(c.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (frames, None),
        }
    }
    panic!("no close after 100 frames: {frames:?}");
}

#[tokio::test]
async fn sigterm_tells_clients_and_exits_cleanly() {
    // A long login deadline: a connection that has not said hello yet must
    // not hold the shutdown up until it passes.
    let server = ServerProcess::start(&["--login-timeout-ms", "60000"]);
    let url = server.url();
    let user = unique("alice");
    let mut ws = login(&url, &user).await;
    let cancel = json!({"type": "cancel", "id": 1, "request": {
        "invitation_id": format!("{:032x}", 7u128), "invitees": null, "extended_data": ""}});
    let result = request(&mut ws, cancel).await;
    assert_eq!(result["error"]["code"], 7, "{result}");
    let (mut lurker, _) = timeout(WAIT, connect_async(&url)).await.unwrap().unwrap();

    let (tx, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut server = server;
        let _ = tx.send(server.terminate());
    });
    for (name, socket) in [("logged in", &mut ws), ("before hello", &mut lurker)] {
        let (frames, close) = until_closed(socket).await;
        assert_eq!(frames, [r#"{"type":"shutdown"}"#], "{name}");
        assert_eq!(close, Some(1001), "{name}");
    }
    let status = exited
        .recv_timeout(WAIT)
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "{status}");
}
