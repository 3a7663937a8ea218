//! The public listener: a deep listen backlog, admission before any work
//! (connections in total, per IP address, and not yet logged in), clean
//! refusals (HTTP 503 with Retry-After, which a WebSocket client reads as a
//! failed handshake), and accept errors backed off and logged once per
//! interval instead of once per attempt.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::{connection, ServerContext};

/// File descriptors kept free of client connections: the admin listener, its
/// clients, log files, TLS files, the resolver.
pub const FD_RESERVE: u64 = 1024;

/// Refusals answered at once with a 503 (the rest are closed without a word,
/// so refusing never uses many descriptors itself).
const MAX_REFUSALS_IN_FLIGHT: usize = 512;

/// How often repeated accept errors are logged.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Binds `addr` with a listen backlog of `backlog`.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Raises this process's soft limit of open files to its hard limit, and
/// returns the soft limit then in force.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Who may connect now. Counters are atomics; the per-address table is a leaf
/// lock (nothing else is taken or called while it is held).
pub struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    max_pending: usize,
    open: AtomicUsize,
    pending: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused (the `connections_dropped` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    MaxConnections,
    PerIp,
    PendingLogins,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::MaxConnections => "max_connections",
            Refused::PerIp => "max_connections_per_ip",
            Refused::PendingLogins => "max_pending_logins",
        }
    }
}

impl Admission {
    /// `max_per_ip` 0: no per-address cap.
    pub fn new(max_connections: usize, max_per_ip: usize, max_pending: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections,
            max_per_ip,
            max_pending,
            open: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Admits a connection from `ip`, which counts as pending (not logged in)
    /// until [`Ticket::logged_in`].
    pub fn admit(self: &Arc<Admission>, ip: IpAddr) -> Result<Ticket, Refused> {
        if !take(&self.open, self.max_connections) {
            return Err(Refused::MaxConnections);
        }
        if !take(&self.pending, self.max_pending) {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::PendingLogins);
        }
        if self.max_per_ip > 0 {
            let mut per_ip = self.per_ip.lock();
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= self.max_per_ip {
                drop(per_ip);
                self.open.fetch_sub(1, Ordering::AcqRel);
                self.pending.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::PerIp);
            }
            *count += 1;
        }
        Ok(Ticket {
            admission: self.clone(),
            ip,
            pending: true,
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// Takes one of `max` places in `counter`, if one is free.
fn take(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// An admitted connection's places; given back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    pending: bool,
}

impl Ticket {
    /// The connection logged in: it no longer counts as pending.
    pub fn logged_in(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.admission.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.logged_in();
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
        if self.admission.max_per_ip > 0 {
            let mut per_ip = self.admission.per_ip.lock();
            if let Some(count) = per_ip.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Accepts connections until the server shuts down, then waits for them.
pub async fn accept_loop(ctx: Arc<ServerContext>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let mut shutdown = ctx.shutdown_signal();
    let mut connections = JoinSet::new();
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let mut errors = AcceptErrors::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: wait, go on.
                        ctx.metrics.accept_errors.inc();
                        let pause = errors.failed(&e);
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                };
                errors.succeeded();
                let ticket = match ctx.admission.admit(peer.ip()) {
                    Ok(ticket) => ticket,
                    Err(why) => {
                        ctx.metrics.count_drop(why.label());
                        refuse(stream, tls.is_some(), &refusals);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                match &tls {
                    None => {
                        connections.spawn(connection::serve(ctx, stream, peer, ticket));
                    }
                    // Boxed: the TLS path is the larger future, and a plain
                    // connection should not carry its size.
                    Some(tls) => {
                        connections.spawn(Box::pin(serve_tls(ctx, tls.clone(), stream, peer, ticket)));
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Connections see the same signal, tell their clients and close.
    while connections.join_next().await.is_some() {}
}

async fn serve_tls(
    ctx: Arc<ServerContext>,
    tls: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
) {
    // The TLS handshake counts against the same deadline as the WebSocket
    // handshake that follows (see `connection::serve`).
    let deadline = Instant::now() + Duration::from_millis(ctx.config.handshake_timeout_ms);
    match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
        Ok(Ok(stream)) => connection::serve_until(ctx, stream, peer, ticket, deadline).await,
        _ => ctx.metrics.count_drop("tls_handshake"),
    }
}

/// Refuses a connection: a 503 the client can read (plain listeners, while
/// few refusals are under way), else a plain close.
fn refuse(mut stream: TcpStream, tls: bool, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    if tls {
        return;
    }
    tokio::spawn(async move {
        let _permit = permit;
        let answer = async {
            stream.write_all(REFUSAL).await?;
            stream.shutdown().await?;
            // Read what the client sent, so the close is not a reset that
            // could destroy the 503 before the client reads it.
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
    });
}

/// Accept errors come in bursts (out of descriptors): pause longer each time,
/// and log the first and then a count once per interval.
#[derive(Default)]
struct AcceptErrors {
    in_a_row: u32,
    since_logged: u64,
    last_logged: Option<Instant>,
}

impl AcceptErrors {
    /// How long to pause after this error.
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.since_logged += 1;
        let now = Instant::now();
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_EVERY);
        if due {
            tracing::warn!(error = %error, errors = self.since_logged, "accept failed (logged at most once per 10 s)");
            self.since_logged = 0;
            self.last_logged = Some(now);
        }
        // 10 ms doubling to 1 s.
        Duration::from_millis(10u64 << self.in_a_row.min(7)).min(Duration::from_secs(1))
    }

    fn succeeded(&mut self) {
        self.in_a_row = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_every_cap_and_gives_places_back() {
        let admission = Admission::new(3, 2, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let mut first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refused::PendingLogins));
        first.logged_in();
        assert_eq!(admission.admit(a).err(), Some(Refused::PerIp));
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refused::MaxConnections));
        assert_eq!((admission.open(), admission.pending()), (3, 2));
        drop(first);
        assert_eq!((admission.open(), admission.pending()), (2, 2));
        assert!(admission.per_ip.lock().get(&a) == Some(&1));
    }

    #[test]
    fn accept_errors_pause_longer_and_log_once_per_interval() {
        let mut errors = AcceptErrors::default();
        let error = std::io::Error::other("too many open files");
        let pauses: Vec<Duration> = (0..10).map(|_| errors.failed(&error)).collect();
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(pauses[9], Duration::from_secs(1));
        assert_eq!(errors.since_logged, 9, "logged the first only");
        errors.succeeded();
        assert_eq!(errors.failed(&error), Duration::from_millis(20));
    }
}
