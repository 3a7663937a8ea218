//! `beckon-bench storm`: N clients connect at the same instant (each a raw
//! WebSocket, `raw`), log in, and hold their connection until all have
//! settled. Reports how long each took to a completed WebSocket handshake and
//! to `welcome`, how many the server refused cleanly (HTTP 503 during the
//! handshake) and how many failed otherwise (resets, timeouts: not clean), and,
//! with `--admin`, how `/healthz` and `/metrics` answered meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::wire::ClientFrame;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::idle::{labels, MAX_DEVICES};
use crate::pair::new_histogram;
use crate::probe::{self, record, AdminReport, RssReport};
use crate::raw::{self, Login, Target};
use crate::report::Summary;

#[derive(clap::Args, Debug)]
pub struct StormOptions {
    /// The server: ws://HOST:PORT.
    #[arg(long)]
    pub url: String,

    /// Clients started at once (at most 19,000: each is an open file here).
    #[arg(long, default_value_t = 5000)]
    pub clients: usize,

    /// Seconds one client may take from its start to `welcome`.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,

    /// Seconds every connection is held after the last one settled.
    #[arg(long, default_value_t = 1.0)]
    pub hold: f64,

    /// The server's admin address (HOST:PORT): `/healthz` and `/metrics` are
    /// polled through the storm.
    #[arg(long)]
    pub admin: Option<String>,

    /// Milliseconds between admin polls.
    #[arg(long, default_value_t = 100)]
    pub admin_interval_ms: u64,

    /// The server's process id, to sample its VmRSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Users are PREFIX-0 .. PREFIX-(N-1), each with device `d`.
    #[arg(long, default_value = "storm")]
    pub user_prefix: String,

    /// The login token (a --dev server accepts any).
    #[arg(long, default_value = "t")]
    pub token: String,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl StormOptions {
    fn validate(&self) -> Result<Target, String> {
        if !(1..=MAX_DEVICES).contains(&self.clients) {
            return Err(format!(
                "--clients: {} is outside 1..={MAX_DEVICES}",
                self.clients
            ));
        }
        if !(1..=300).contains(&self.timeout) {
            return Err(format!("--timeout: {} s is outside 1..=300", self.timeout));
        }
        if !(0.0..=60.0).contains(&self.hold) {
            return Err(format!("--hold: {} s is outside [0, 60]", self.hold));
        }
        if !(10..=10_000).contains(&self.admin_interval_ms) {
            return Err(format!(
                "--admin-interval-ms: {} is outside 10..=10000",
                self.admin_interval_ms
            ));
        }
        raw::user_id(&format!("{}-{}", self.user_prefix, self.clients))
            .map_err(|e| format!("--user-prefix: {e}"))?;
        raw::check_fds(self.clients, "--clients")?;
        Target::parse(&self.url)
    }

    pub fn limit(&self) -> Duration {
        Duration::from_secs(self.timeout + 60) + Duration::from_secs_f64(self.hold)
    }
}

/// How one client fared.
struct Outcome {
    /// From the common start to this client's own start.
    launch: Duration,
    /// From its own start: TCP connected, handshake done, welcome read.
    opened: Option<raw::Opened>,
    welcome: Option<Duration>,
    /// Why it failed, and when.
    failure: Option<(String, Duration)>,
}

#[derive(Serialize)]
pub struct StormReport {
    pub url: String,
    pub clients: usize,
    /// Welcomed.
    pub ok: u64,
    /// Refused with HTTP 503 during the handshake: clean.
    pub refused_clean: u64,
    /// ... of which with a Retry-After header.
    pub refused_with_retry_after: u64,
    /// Every other failure (resets, timeouts, closes, login errors): not clean.
    pub failed_not_clean: u64,
    /// Failures by label (clean ones included).
    pub failures: BTreeMap<String, u64>,
    /// From the common start to the last client settled.
    pub wall_secs: f64,
    /// The latest a client started after the common start (this process's
    /// own delay), in microseconds.
    pub launch_spread_us: f64,
    /// From each client's start, microseconds: TCP connected; WebSocket
    /// handshake done (the connect time); `welcome` read.
    pub tcp_us: Summary,
    pub connect_us: Summary,
    pub welcome_us: Summary,
    /// From the start to a clean refusal.
    pub refused_us: Summary,
    /// TCP connects that took a second or more: Linux resends a SYN after 1 s
    /// (then 3 s), so these are SYNs the server's listen queue dropped.
    pub tcp_over_1s: u64,
    /// Welcomed connections the server closed while they were held, by why.
    pub dropped_while_held: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss: Option<RssReport>,
}

impl StormReport {
    pub fn ok(&self) -> bool {
        self.ok + self.refused_clean > 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "beckon-bench storm: {} clients at once against {}\n",
            self.clients, self.url
        );
        out.push_str(&format!(
            "welcomed {}, refused cleanly (HTTP 503) {} ({} with Retry-After), failed otherwise {}; all settled in {:.2} s (launch spread {:.1} ms)\n",
            self.ok,
            self.refused_clean,
            self.refused_with_retry_after,
            self.failed_not_clean,
            self.wall_secs,
            self.launch_spread_us / 1000.0
        ));
        out.push_str(&format!("failures: {}\n", labels(&self.failures)));
        out.push_str(&self.tcp_us.line("tcp connect"));
        out.push_str(&format!(
            "   ({} took 1 s or more: SYNs resent)\n",
            self.tcp_over_1s
        ));
        out.push_str(&self.connect_us.line("ws handshake"));
        out.push('\n');
        out.push_str(&self.welcome_us.line("welcome"));
        out.push('\n');
        if self.refused_us.count > 0 {
            out.push_str(&self.refused_us.line("refused (503)"));
            out.push('\n');
        }
        out.push_str(&format!(
            "dropped by the server while held: {}\n",
            labels(&self.dropped_while_held)
        ));
        if let Some(rss) = &self.server_rss {
            out.push_str(&rss.line());
            out.push('\n');
        }
        if let Some(admin) = &self.admin {
            out.push_str(&admin.lines());
        }
        out
    }
}

pub fn run(options: &StormOptions) -> Result<StormReport, String> {
    let target = Arc::new(options.validate()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-storm")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let report = runtime.block_on(storm(options, target));
    runtime.shutdown_timeout(Duration::from_secs(5));
    report
}

async fn storm(options: &StormOptions, target: Arc<Target>) -> Result<StormReport, String> {
    let (stop_probes, probes_stop) = watch::channel(false);
    let admin = options.admin.clone().map(|addr| {
        tokio::spawn(probe::poll_admin(
            addr,
            Duration::from_millis(options.admin_interval_ms),
            probes_stop.clone(),
        ))
    });
    let rss = options.server_pid.map(|pid| {
        tokio::spawn(probe::sample_rss(
            pid,
            Duration::from_millis(50),
            probes_stop.clone(),
        ))
    });
    // A few quiet polls first, to compare with.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (go_tx, go) = watch::channel(None);
    let (release_tx, release) = watch::channel(false);
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let (drops_tx, mut drops) = mpsc::unbounded_channel();
    let token: Arc<str> = Arc::from(options.token.as_str());
    let timeout = Duration::from_secs(options.timeout);
    let mut clients = Vec::with_capacity(options.clients);
    for index in 0..options.clients {
        clients.push(tokio::spawn(client(
            format!("{}-{index}", options.user_prefix),
            token.clone(),
            target.clone(),
            timeout,
            go.clone(),
            release.clone(),
            outcomes_tx.clone(),
            drops_tx.clone(),
        )));
    }
    drop((outcomes_tx, drops_tx));
    // Every client is parked on `go` once the spawning task yields.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let go_at = Instant::now();
    let _ = go_tx.send(Some(go_at));

    let mut tcp = new_histogram()?;
    let mut connect = new_histogram()?;
    let mut welcome = new_histogram()?;
    let mut refused = new_histogram()?;
    let mut failures = BTreeMap::new();
    let (mut ok, mut clean, mut retry_after, mut not_clean) = (0u64, 0u64, 0u64, 0u64);
    let mut spread = Duration::ZERO;
    let mut tcp_over_1s = 0u64;
    let mut settled = 0usize;
    let give_up = go_at + timeout + Duration::from_secs(10);
    while settled < options.clients {
        let Ok(Some(outcome)) = tokio::time::timeout_at(give_up, outcomes.recv()).await else {
            break;
        };
        settled += 1;
        spread = spread.max(outcome.launch);
        if let Some(opened) = outcome.opened {
            record(&mut tcp, opened.tcp);
            if opened.tcp >= Duration::from_secs(1) {
                tcp_over_1s += 1;
            }
            record(&mut connect, opened.handshake);
        }
        if let Some(took) = outcome.welcome {
            record(&mut welcome, took);
            ok += 1;
        }
        if let Some((label, took)) = outcome.failure {
            if raw::clean_refusal(&label) {
                clean += 1;
                if label.ends_with("retry_after") {
                    retry_after += 1;
                }
                record(&mut refused, took);
            } else {
                not_clean += 1;
            }
            *failures.entry(label).or_insert(0) += 1;
        }
    }
    let wall = go_at.elapsed();
    if settled < options.clients {
        let missing = (options.clients - settled) as u64;
        not_clean += missing;
        failures.insert("never_settled".to_owned(), missing);
    }
    tokio::time::sleep(Duration::from_secs_f64(options.hold)).await;
    let _ = release_tx.send(true);
    let leave = async {
        for client in clients {
            let _ = client.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), leave).await;
    let mut dropped = BTreeMap::new();
    while let Ok(label) = drops.try_recv() {
        *dropped.entry(label).or_insert(0) += 1;
    }
    let _ = stop_probes.send(true);
    let admin = match admin {
        Some(task) => Some(task.await.map_err(|e| format!("admin probe: {e}"))??),
        None => None,
    };
    let server_rss = match rss {
        Some(task) => Some(task.await.map_err(|e| format!("rss probe: {e}"))??),
        None => None,
    };
    Ok(StormReport {
        url: options.url.clone(),
        clients: options.clients,
        ok,
        refused_clean: clean,
        refused_with_retry_after: retry_after,
        failed_not_clean: not_clean,
        failures,
        wall_secs: wall.as_secs_f64(),
        launch_spread_us: spread.as_secs_f64() * 1e6,
        tcp_us: Summary::of(&tcp),
        connect_us: Summary::of(&connect),
        welcome_us: Summary::of(&welcome),
        refused_us: Summary::of(&refused),
        tcp_over_1s,
        dropped_while_held: dropped,
        admin,
        server_rss,
    })
}

/// One client: waits for the common start, connects, logs in, reports, then
/// holds its connection (reading, so pings are answered) until released.
#[allow(clippy::too_many_arguments)]
async fn client(
    user: String,
    token: Arc<str>,
    target: Arc<Target>,
    timeout: Duration,
    mut go: watch::Receiver<Option<Instant>>,
    mut release: watch::Receiver<bool>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    drops: mpsc::UnboundedSender<String>,
) {
    let go_at = match go.wait_for(|go| go.is_some()).await {
        Ok(go) => *go,
        Err(_) => return,
    };
    let start = Instant::now();
    let mut outcome = Outcome {
        launch: go_at.map_or(Duration::ZERO, |at| start.saturating_duration_since(at)),
        opened: None,
        welcome: None,
        failure: None,
    };
    let deadline = start + timeout;
    let attempt = async {
        let user = raw::user_id(&user)?;
        let device = raw::device_id("d")?;
        let (mut ws, opened) = raw::open(&target, deadline).await?;
        outcome.opened = Some(opened);
        let login = Login {
            user: &user,
            device: &device,
            token: &token,
            resume: None,
        };
        raw::hello(&mut ws, login, deadline).await?;
        outcome.welcome = Some(start.elapsed());
        raw::send(
            &mut ws,
            &ClientFrame::Sync { known: None },
            Duration::from_secs(5),
        )
        .await?;
        Ok::<_, String>(ws)
    };
    let ws = attempt.await;
    let ws = match ws {
        Ok(ws) => Some(ws),
        Err(label) => {
            outcome.failure = Some((label, start.elapsed()));
            None
        }
    };
    let _ = outcomes.send(outcome);
    let Some(mut ws) = ws else { return };
    loop {
        tokio::select! {
            () = crate::probe::until_true(&mut release) => return,
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(frame))) => {
                    let _ = drops.send(raw::ending_label(None, frame.map(|f| u16::from(f.code))));
                    return;
                }
                Some(Ok(_)) => {}
                None => {
                    let _ = drops.send("closed".to_owned());
                    return;
                }
                Some(Err(e)) => {
                    let _ = drops.send(raw::ws_label("held", &e));
                    return;
                }
            }
        }
    }
}
