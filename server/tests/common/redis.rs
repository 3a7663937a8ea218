//! A private `redis-server` (Debian's, installed by scripts/install-redis.sh)
//! on a free loopback port, in a directory of its own: started by a test,
//! stopped by its PID when dropped. Its port stays the same across
//! `restart`, and with `--appendonly yes` what it held comes back. One kept
//! in a `static` (shared by a file's tests) is never dropped: the PIDs of
//! the servers still running are killed when the test process exits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use super::{rand_suffix, WAIT};

/// The redis-servers this process runs now, killed at its exit.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_running() {
    if let Ok(running) = RUNNING.lock() {
        for pid in running.iter() {
            // SAFETY: kill(2) on a PID this process started and still owns.
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

fn running(pid: u32, alive: bool) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain function with no captured state.
        unsafe {
            libc::atexit(kill_running);
        }
    });
    if let Ok(mut running) = RUNNING.lock() {
        running.retain(|p| *p != pid);
        if alive {
            running.push(pid);
        }
    }
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Persistence off: what a test needs unless it restarts Redis.
    pub fn start() -> RedisServer {
        Self::start_with(&["--appendonly", "no"])
    }

    /// With `extra` options (e.g. `--appendonly yes --appendfsync always`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("beckon-redis-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let started = Instant::now();
        loop {
            // A port the kernel just gave out is almost always still free.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            match Self::spawn(port, &dir, &extra) {
                Ok(child) => {
                    return RedisServer {
                        child,
                        port,
                        dir,
                        extra,
                    }
                }
                Err(why) if started.elapsed() < WAIT => eprintln!("redis on {port}: {why}"),
                Err(why) => panic!("redis-server did not start: {why}"),
            }
        }
    }

    fn spawn(port: u16, dir: &PathBuf, extra: &[String]) -> Result<Child, String> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(dir)
            .args(["--logfile", "redis.log"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server (scripts/install-redis.sh): {e}"))?;
        let started = Instant::now();
        while started.elapsed() < WAIT {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}"));
            }
            if ping(port) {
                running(child.id(), true);
                return Ok(child);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("no answer to PING".into())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        running(self.child.id(), false);
    }

    /// Starts it again on the same port and directory (after `kill`).
    pub fn restart(&mut self) {
        let started = Instant::now();
        loop {
            match Self::spawn(self.port, &self.dir, &self.extra) {
                Ok(child) => {
                    self.child = child;
                    return;
                }
                Err(why) if started.elapsed() < WAIT => {
                    eprintln!("redis restart: {why}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(why) => panic!("redis-server did not restart: {why}"),
            }
        }
    }

    /// A connection for the test to look inside.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(WAIT))
            .expect("connect to the test's redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}
