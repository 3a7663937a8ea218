//! Shared by the server's integration tests: a real `beckon-server` process on
//! 127.0.0.1 with an ephemeral port, and clients whose events can be awaited.
#![allow(dead_code)] // each test file uses its own subset

pub mod api;
pub mod balancer;
pub mod members;
pub mod push_fakes;
pub mod redis;
pub mod slots;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beckon::protocol::{InvitationId, Push, SendInvitation, UserId};
use beckon::{Client, ClientConfig, Event};

pub const WAIT: Duration = Duration::from_secs(10);

/// A `beckon-server` child process. Killed when dropped; it also exits by
/// itself when this test process dies (its stdin closes).
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    /// The server API's port, when `[api] listen` is set.
    pub api_port: Option<u16>,
    args: Vec<String>,
    dir: PathBuf,
}

impl ServerProcess {
    /// Starts a server with `extra` flags; `--dev` unless a secret is given.
    pub fn start(extra: &[&str]) -> ServerProcess {
        Self::start_on(0, extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> ServerProcess {
        let dir = std::env::temp_dir().join(format!("beckon-test-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--admin".into(),
            "127.0.0.1:0".into(),
            "--exit-on-stdin-close".into(),
        ];
        if !extra.contains(&"--secret-file") {
            args.push("--dev".into());
        }
        // The default store (SQLite) in this server's own directory, which a
        // restart finds again.
        if !extra.contains(&"--data-dir") {
            args.push("--data-dir".into());
            args.push(dir.join("data").display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(args, dir)
    }

    fn spawn(args: Vec<String>, dir: PathBuf) -> ServerProcess {
        let port_file = dir.join("ports.json");
        let _ = std::fs::remove_file(&port_file);
        let child = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
            .args(&args)
            .arg("--port-file")
            .arg(&port_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .env(
                "BECKON_LOG",
                std::env::var("BECKON_TEST_SERVER_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            )
            .stderr(if std::env::var_os("BECKON_TEST_SERVER_LOG").is_some() {
                Stdio::inherit()
            } else {
                // Kept for tests that read it (`log`); gone with the
                // server's directory.
                std::fs::File::create(dir.join("stderr.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null())
            })
            .spawn()
            .expect("start beckon-server");
        let started = Instant::now();
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text;
            }
            assert!(started.elapsed() < WAIT, "beckon-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let ports: serde_json::Value = serde_json::from_str(&text).unwrap();
        let port_of = |key: &str| -> u16 {
            ports[key]
                .as_str()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap()
        };
        ServerProcess {
            port: port_of("listen"),
            admin_port: port_of("admin"),
            api_port: ports["api"].is_string().then(|| port_of("api")),
            child,
            args,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status, if the process has exited by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }

    /// Starts the same server again on the same port (after `kill`).
    pub fn restart(&mut self) {
        let mut args = self.args.clone();
        if let Some(i) = args.iter().position(|a| a == "--listen") {
            args[i + 1] = format!("127.0.0.1:{}", self.port);
        }
        let started = Instant::now();
        loop {
            // The port may linger for a moment after the kill.
            let fresh = std::panic::catch_unwind(|| Self::spawn(args.clone(), self.dir.clone()));
            match fresh {
                Ok(mut server) => {
                    std::mem::swap(&mut self.child, &mut server.child);
                    self.admin_port = server.admin_port;
                    self.api_port = server.api_port;
                    std::mem::forget(server);
                    return;
                }
                Err(_) if started.elapsed() < WAIT => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }

    /// What the server wrote to its standard error so far (its log, at
    /// BECKON_TEST_SERVER_LOG_LEVEL, else info), unless
    /// BECKON_TEST_SERVER_LOG sends it to the test's.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// GET on the admin address; returns (status line, body).
    pub fn admin_get(&self, path: &str) -> (String, String) {
        http_get(self.admin_port, path)
    }
}

/// `beckon-server serve` that is expected to refuse to start: its stderr.
pub fn refused_start(args: &[&str]) -> String {
    // A server that does start stops at once (its stdin is closed).
    let output = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--exit-on-stdin-close",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run beckon-server");
    assert!(
        !output.status.success(),
        "beckon-server {args:?} started; it should have refused"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// GET `path` on 127.0.0.1:`port`; returns (status line, body).
pub fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn rand_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A user id unique to this run.
pub fn unique(name: &str) -> UserId {
    UserId::parse(&format!("{name}-{}", &rand_suffix()[..8]), "user").unwrap()
}

/// A client whose events arrive on a channel.
pub struct Peer {
    pub client: Client,
    pub user: UserId,
    events: Mutex<mpsc::Receiver<Event>>,
    /// Every event seen so far, in order.
    pub seen: Arc<Mutex<Vec<Event>>>,
}

impl Peer {
    pub fn new(url: &str, user: &UserId) -> Peer {
        Self::with_config(ClientConfig::new(url), user)
    }

    pub fn with_config(config: ClientConfig, user: &UserId) -> Peer {
        let client = Client::new(config).unwrap();
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let tx = Mutex::new(tx);
        client.set_event_handler(Some(Arc::new(move |event: &Event| {
            log.lock().unwrap().push(event.clone());
            let _ = tx.lock().unwrap().send(event.clone());
        })));
        Peer {
            client,
            user: user.clone(),
            events: Mutex::new(rx),
            seen,
        }
    }

    /// Logs in with a token accepted by development servers and memory hubs.
    pub fn online(url: &str, user: &UserId) -> Peer {
        let peer = Self::new(url, user);
        block(peer.client.login(user.clone(), "dev-token")).unwrap();
        peer
    }

    /// Logs in, then waits until the server has the device's first sync: a
    /// device gets pushes from its sync on (the client sends it right after
    /// the login's callback), so a test that has another client act at once
    /// and expects this device to hear of it must wait for that. A request
    /// answered after the login (a token renewal) went after the sync.
    pub fn online_synced(url: &str, user: &UserId) -> Peer {
        let peer = Self::online(url, user);
        block(peer.client.renew_token("dev-token")).unwrap();
        peer
    }

    /// The next event matching `wanted`, skipping others; panics after WAIT.
    pub fn expect<T>(&self, what: &str, mut wanted: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        let events = self.events.lock().unwrap();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(event) => {
                    if let Some(found) = wanted(&event) {
                        return found;
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} within {WAIT:?}; seen: {:#?}",
                    self.user,
                    self.seen.lock().unwrap()
                ),
            }
        }
    }

    /// Waits for INVITATION_RECEIVED and returns the invitation id.
    pub fn ringing(&self) -> InvitationId {
        self.expect("INVITATION_RECEIVED", |e| match e {
            Event::Invitation(Push::InvitationReceived { invitation_id, .. }) => {
                Some(invitation_id.clone())
            }
            _ => None,
        })
    }

    pub fn invite(&self, invitees: &[&UserId], timeout_secs: u32) -> beckon::protocol::SendOutcome {
        let request = SendInvitation::new(
            invitees.iter().map(|u| (*u).clone()).collect(),
            timeout_secs,
        );
        block(self.client.send_invitation(request)).unwrap()
    }

    /// Events seen so far that match `pick`.
    pub fn count(&self, pick: impl Fn(&Event) -> bool) -> usize {
        self.seen.lock().unwrap().iter().filter(|e| pick(e)).count()
    }
}

/// Runs a future to completion on a small runtime of the test's own.
pub fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}
