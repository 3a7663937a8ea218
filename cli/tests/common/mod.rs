//! For the `beckon` tests: a real `beckon-server` process on 127.0.0.1 with
//! ephemeral ports, and `beckon` runs whose output can be awaited line by
//! line. Every wait is bounded by WAIT; every process started here is
//! killed when its handle drops.
#![allow(dead_code)] // each test uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(20);

/// The `beckon` binary under test.
pub fn beckon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_beckon"))
}

/// `beckon-server`, from the same target directory as `beckon`. Cargo gives
/// integration tests only their own package's binaries: a workspace
/// `cargo test` has built it already; after `cargo test -p beckon-cli` it
/// may be missing, and is built here, once. (Not rebuilt when present: a
/// workspace build with other features, `beckon/test-hooks` in CI, would
/// be undone, and the next one would build it all again.)
pub fn server_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    let beckon = beckon_bin();
    let dir = beckon.parent().expect("the target directory").to_path_buf();
    let server = dir.join(format!("beckon-server{}", std::env::consts::EXE_SUFFIX));
    BUILD.call_once(|| {
        if server.exists() {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut build = Command::new(cargo);
        build.current_dir(&workspace).args([
            "build",
            "-p",
            "beckon-server",
            "--bin",
            "beckon-server",
        ]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build -p beckon-server");
        assert!(status.success(), "cargo build -p beckon-server: {status}");
    });
    assert!(
        server.exists(),
        "{} is missing after building it",
        server.display()
    );
    server
}

/// A directory of this test process's own, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "beckon-cli-test-{}-{what}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `beckon-server serve` child process with the in-memory store. Killed
/// when dropped; it also stops when this test process dies (its stdin
/// closes).
pub struct Server {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    dir: TempDir,
}

impl Server {
    /// Any token accepted.
    pub fn dev() -> Server {
        Self::start(&["--dev"])
    }

    /// Tokens must be minted with `secret_file`'s secret.
    pub fn with_secret_file(secret_file: &Path) -> Server {
        Self::start(&["--secret-file", secret_file.to_str().unwrap()])
    }

    fn start(extra: &[&str]) -> Server {
        let dir = TempDir::new("server");
        let port_file = dir.0.join("ports.json");
        let log = std::fs::File::create(dir.0.join("stderr.log")).unwrap();
        let child = Command::new(server_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--store",
                "memory",
                "--exit-on-stdin-close",
                "--port-file",
            ])
            .arg(&port_file)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start beckon-server");
        let mut server = Server {
            child,
            port: 0,
            admin_port: 0,
            dir,
        };
        let started = Instant::now();
        let text = loop {
            // Written once complete: an empty or partial read is retried.
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(ports) = serde_json::from_str::<Value>(&text) {
                    break ports;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("beckon-server exited at start ({status}): {}", server.log());
            }
            assert!(started.elapsed() < WAIT, "beckon-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let port_of = |key: &str| -> u16 {
            text[key]
                .as_str()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no {key} port in {text}"))
        };
        server.port = port_of("listen");
        server.admin_port = port_of("admin");
        server
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("stderr.log")).unwrap_or_default()
    }

    /// How many devices of `user` are logged in (the admin endpoint).
    pub fn devices(&self, user: &str) -> u64 {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET /users/{user}/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let value: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("devices of {user}: {e}: {text}"));
        value["devices"].as_u64().unwrap()
    }

    /// Waits until `user` has `wanted` devices logged in.
    pub fn wait_devices(&self, user: &str, wanted: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let devices = self.devices(user);
            if devices == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{user}: {devices} devices, never {wanted}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `beckon`, its stdout read line by line.
pub struct Run {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    args: Vec<String>,
}

/// How a `beckon` run ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Finished {
    /// Every stdout line, each parsed as JSON (a line that is not fails the
    /// test).
    pub fn json(&self) -> Vec<Value> {
        self.stdout.iter().map(|line| parse_json(line)).collect()
    }

    /// The `event` names of the JSON lines, in order.
    pub fn events(&self) -> Vec<String> {
        self.json()
            .iter()
            .map(|v| v["event"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

pub fn parse_json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
}

impl Run {
    pub fn start<S: AsRef<str>>(args: &[S]) -> Run {
        Self::start_with(args, &[])
    }

    /// With extra environment variables. The caller's BECKON_* and NO_COLOR
    /// are removed, so that only the arguments count.
    pub fn start_with<S: AsRef<str>>(args: &[S], env: &[(&str, &str)]) -> Run {
        let mut command = beckon_command(args, env);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start beckon");
        let (sender, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Run {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            args: args.iter().map(|s| s.as_ref().to_owned()).collect(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line for which `wanted` is true (earlier ones are
    /// kept in `seen`); fails after WAIT.
    pub fn expect_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "beckon {:?}: no {what} within {WAIT:?}; stdout: {:#?}; stderr: {}",
                    self.args,
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// The next JSON line for which `wanted` is true.
    pub fn expect_json(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let line = self.expect_line(what, |line| wanted(&parse_json(line)));
        parse_json(&line)
    }

    /// Waits (at most WAIT) for the process to exit and its output to end.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "beckon {:?} did not exit within {WAIT:?}; stdout: {:#?}; stderr: {}",
                    self.args,
                    self.seen,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The readers end at EOF, now that the process is gone (a child
        // of its own could keep the pipe open: bounded all the same).
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.max(Duration::from_secs(2))) {
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        let stderr_deadline = Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < stderr_deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Finished {
            code: status.code(),
            stdout: std::mem::take(&mut self.seen),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `beckon` to the end.
pub fn beckon<S: AsRef<str>>(args: &[S]) -> Finished {
    Run::start(args).finish()
}

pub fn beckon_with<S: AsRef<str>>(args: &[S], env: &[(&str, &str)]) -> Finished {
    Run::start_with(args, env).finish()
}

/// The command `beckon args`, with a clean environment of its own.
pub fn beckon_command<S: AsRef<str>>(args: &[S], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(beckon_bin());
    command.args(args.iter().map(AsRef::as_ref));
    for var in [
        "BECKON_SERVER",
        "BECKON_USER",
        "BECKON_TOKEN",
        "BECKON_DEVICE",
        "BECKON_SECRET",
        "NO_COLOR",
    ] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// `--server URL --user USER --token TOKEN`.
pub fn login_args(url: &str, user: &str, token: &str) -> Vec<String> {
    ["--server", url, "--user", user, "--token", token]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A port on 127.0.0.1 that nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
