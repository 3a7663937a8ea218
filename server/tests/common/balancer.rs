//! A small TCP forwarder on 127.0.0.1 for the fault tests: clients reach
//! "the deployment" at one address, and each connection goes to the next
//! backend in turn (round-robin; a backend that refuses is skipped), so a
//! client whose node died reconnects to another one. In front of Redis, with
//! one backend, it can cut the link (every connection dropped, new ones
//! refused) and restore it: a partition between one node and Redis; or hold
//! back the reply to a chosen command: a slow answer on one connection.
//!
//! Threads of its own: one accepting, two per connection. Everything stops
//! when it is dropped.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long connecting to one backend may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Balancer {
    pub port: u16,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

struct Inner {
    backends: Mutex<Vec<SocketAddr>>,
    next: AtomicUsize,
    /// While set, accepted connections are closed at once.
    cut: AtomicBool,
    stop: AtomicBool,
    next_id: AtomicU64,
    /// Both sockets of every open connection (to shut them down), and the
    /// backend it went to.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream, SocketAddr)>>,
    /// Connections forwarded so far, by backend.
    forwarded: Mutex<HashMap<SocketAddr, usize>>,
    /// While set: replies to chosen commands are held back.
    stall: Mutex<Option<Stall>>,
    stalled: AtomicUsize,
}

impl Balancer {
    /// A forwarder in front of `backends` (ports on 127.0.0.1).
    pub fn new(backends: &[u16]) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("balancer: bind");
        listener
            .set_nonblocking(true)
            .expect("balancer: non-blocking listener");
        let port = listener.local_addr().expect("balancer: address").port();
        let inner = Arc::new(Inner {
            backends: Mutex::new(
                backends
                    .iter()
                    .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                    .collect(),
            ),
            next: AtomicUsize::new(0),
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            forwarded: Mutex::new(HashMap::new()),
            stall: Mutex::new(None),
            stalled: AtomicUsize::new(0),
        });
        let for_thread = inner.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("balancer-{port}"))
            .spawn(move || accept(&for_thread, &listener))
            .expect("balancer: thread");
        Balancer {
            port,
            inner,
            acceptor: Some(acceptor),
        }
    }

    /// `ws://` at the balancer, for clients.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// `redis://` at the balancer, for a node (in front of Redis).
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Drops every connection and refuses new ones (they are closed as soon
    /// as they are accepted) until [`Balancer::restore`].
    pub fn cut(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        self.inner.close_all();
    }

    pub fn restore(&self) {
        self.inner.cut.store(false, Ordering::SeqCst);
    }

    /// From now on, the replies to the next `times` commands whose bytes
    /// contain `marker` are held back for `delay` (the command itself goes
    /// on at once: in front of Redis, it has run while its sender still
    /// waits). A `NOSCRIPT` error is not held back and not counted (the
    /// client loads the script and sends the command again). The marker
    /// must come in one read, as a command a client writes whole does on
    /// loopback; one command at a time per connection, as a blocking
    /// client sends them.
    pub fn stall_replies_to(&self, marker: &str, delay: Duration, times: usize) {
        *self.inner.stall.lock().unwrap() = Some(Stall {
            marker: marker.as_bytes().to_vec(),
            delay,
            left: times,
        });
    }

    /// Commands that held back their replies so far.
    pub fn stalled(&self) -> usize {
        self.inner.stalled.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.open.lock().unwrap().len()
    }

    /// Connections forwarded so far to the backend on `port`.
    pub fn forwarded_to(&self, port: u16) -> usize {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.inner
            .forwarded
            .lock()
            .unwrap()
            .get(&addr)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.inner.close_all();
    }
}

impl Inner {
    fn close_all(&self) {
        let open: Vec<_> = self.open.lock().unwrap().drain().collect();
        for (_, (client, backend, _)) in open {
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend.shutdown(Shutdown::Both);
        }
    }

    /// The next backend that takes a connection, starting from the next in
    /// turn; None if every one refuses.
    fn dial(&self) -> Option<(TcpStream, SocketAddr)> {
        let backends = self.backends.lock().unwrap().clone();
        let first = self.next.fetch_add(1, Ordering::SeqCst);
        (0..backends.len()).find_map(|i| {
            let addr = backends[(first + i) % backends.len()];
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                .ok()
                .map(|s| (s, addr))
        })
    }
}

fn accept(inner: &Arc<Inner>, listener: &TcpListener) {
    while !inner.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if inner.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Some((backend, addr)) = inner.dial() else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        let _ = backend.set_nodelay(true);
        let (Ok(c2), Ok(b2), Ok(c3), Ok(b3)) = (
            client.try_clone(),
            backend.try_clone(),
            client.try_clone(),
            backend.try_clone(),
        ) else {
            continue;
        };
        let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
        {
            let mut open = inner.open.lock().unwrap();
            // A cut may have come since the check above.
            if inner.cut.load(Ordering::SeqCst) {
                let _ = client.shutdown(Shutdown::Both);
                let _ = backend.shutdown(Shutdown::Both);
                continue;
            }
            open.insert(id, (c3, b3, addr));
        }
        *inner.forwarded.lock().unwrap().entry(addr).or_default() += 1;
        let up = inner.clone();
        let down = inner.clone();
        // Until when the replies of this connection are held back.
        let hold_up = Arc::new(Mutex::new(None));
        let hold_down = hold_up.clone();
        let spawned = std::thread::Builder::new()
            .name("balancer-up".into())
            .spawn(move || pump(&up, id, client, backend, Direction::Up(hold_up)))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("balancer-down".into())
                    .spawn(move || pump(&down, id, b2, c2, Direction::Down(hold_down)))
            });
        if spawned.is_err() {
            inner.close(id);
        }
    }
}

impl Inner {
    fn close(&self, id: u64) {
        if let Some((client, backend, _)) = self.open.lock().unwrap().remove(&id) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend.shutdown(Shutdown::Both);
        }
    }
}

/// Replies to hold back: those to commands containing `marker`, `left`
/// more times.
struct Stall {
    marker: Vec<u8>,
    delay: Duration,
    left: usize,
}

/// Which way a pump copies, with the connection's hold on its next reply:
/// the client's write of a chosen command sets it, the backend's reply
/// takes it.
enum Direction {
    Up(Arc<Mutex<Option<Instant>>>),
    Down(Arc<Mutex<Option<Instant>>>),
}

impl Direction {
    /// Before `bytes` go on: a chosen command sets the hold (before it
    /// reaches the backend, so before its reply can come back); the next
    /// reply waits until the hold has passed.
    fn before_forwarding(&self, inner: &Inner, bytes: &[u8]) {
        match self {
            Direction::Up(hold) => {
                let mut stall = inner.stall.lock().unwrap();
                if let Some(stall) = stall.as_mut().filter(|s| s.left > 0) {
                    let marker = stall.marker.as_slice();
                    if bytes.windows(marker.len()).any(|w| w == marker) {
                        *hold.lock().unwrap() = Some(Instant::now() + stall.delay);
                    }
                }
            }
            Direction::Down(hold) => {
                let Some(until) = hold.lock().unwrap().take() else {
                    return;
                };
                if bytes.starts_with(b"-NOSCRIPT") {
                    return;
                }
                if let Some(stall) = inner.stall.lock().unwrap().as_mut() {
                    stall.left = stall.left.saturating_sub(1);
                }
                inner.stalled.fetch_add(1, Ordering::SeqCst);
                if let Some(wait) = until.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

/// Copies `from` to `to` until either side ends; then the connection ends
/// on both sides (as when a node dies: its clients see the drop).
fn pump(inner: &Inner, id: u64, mut from: TcpStream, mut to: TcpStream, direction: Direction) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
            Ok(n) => {
                direction.before_forwarding(inner, &buffer[..n]);
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    inner.close(id);
}
