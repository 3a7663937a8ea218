//! `beckon-bench idle`: N logged-in devices that then do nothing, to measure
//! what an idle device costs the server. Each device is one raw WebSocket
//! (`raw`): `hello` as user `PREFIX-<i>`, device `d`, then `sync`, then it only
//! reads (tungstenite answers the server's pings while it does). With
//! `--large-frame N` each device first sends one N-byte request (answered with
//! an error), to show whether the server's read buffer shrinks back after a
//! large frame. Logins go at most `--concurrency` at a time. With `--server-pid` the server's VmRSS is
//! read before, after the logins settle, and at the end of the hold.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::wire::{ClientFrame, ServerFrame};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::pair::new_histogram;
use crate::probe::record;
use crate::raw::{self, Login, Target};
use crate::report::Summary;

/// Devices one run may hold: each is a socket in this process (and one in the
/// server), under the 20,000 open files a process gets here.
pub const MAX_DEVICES: usize = 19_000;

/// The largest `--large-frame`: the server's frame limit is lower still.
pub const MAX_LARGE_FRAME: usize = 16 << 20;

#[derive(clap::Args, Debug)]
pub struct IdleOptions {
    /// The server: ws://HOST:PORT.
    #[arg(long)]
    pub url: String,

    /// Devices to log in and hold (at most 19,000; each needs an open file
    /// here and at the server).
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,

    /// Logins under way at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,

    /// Seconds to wait after the last login before reading the server's RSS.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,

    /// Seconds to hold the idle devices after that (RSS read again at the
    /// end). Over 45 s shows whether idle devices survive the heartbeat.
    #[arg(long, default_value_t = 3.0)]
    pub hold: f64,

    /// Seconds all the logins together may take.
    #[arg(long, default_value_t = 120)]
    pub login_deadline: u64,

    /// Users are PREFIX-0 .. PREFIX-(N-1), each with device `d`.
    #[arg(long, default_value = "idle")]
    pub user_prefix: String,

    /// The login token (a --dev server accepts any).
    #[arg(long, default_value = "t")]
    pub token: String,

    /// The server's process id, to read its VmRSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Stop after the WebSocket handshake (no hello): what a connection costs
    /// without a session. The server closes these after its login timeout
    /// (10 s by default): keep --settle and --hold under it.
    #[arg(long)]
    pub handshake_only: bool,

    /// After the sync, send one request of about this many bytes (a token
    /// renewal with an over-long token, which the server refuses), then idle:
    /// what an idle device costs after a large frame. Keep it under the
    /// server's max_frame_bytes.
    #[arg(long, default_value_t = 0)]
    pub large_frame: usize,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl IdleOptions {
    fn validate(&self) -> Result<Target, String> {
        if !(1..=MAX_DEVICES).contains(&self.devices) {
            return Err(format!(
                "--devices: {} is outside 1..={MAX_DEVICES}",
                self.devices
            ));
        }
        if !(1..=4096).contains(&self.concurrency) {
            return Err(format!(
                "--concurrency: {} is outside 1..=4096",
                self.concurrency
            ));
        }
        if !(0.0..=60.0).contains(&self.settle) {
            return Err(format!("--settle: {} s is outside [0, 60]", self.settle));
        }
        if !(0.0..=600.0).contains(&self.hold) {
            return Err(format!("--hold: {} s is outside [0, 600]", self.hold));
        }
        if self.large_frame > MAX_LARGE_FRAME {
            return Err(format!(
                "--large-frame: {} bytes is over {MAX_LARGE_FRAME}",
                self.large_frame
            ));
        }
        if self.large_frame > 0 && self.handshake_only {
            return Err("--large-frame needs a session: drop --handshake-only".to_owned());
        }
        if !(1..=600).contains(&self.login_deadline) {
            return Err(format!(
                "--login-deadline: {} s is outside 1..=600",
                self.login_deadline
            ));
        }
        raw::user_id(&format!("{}-{}", self.user_prefix, self.devices))
            .map_err(|e| format!("--user-prefix: {e}"))?;
        raw::check_fds(self.devices, "--devices")?;
        Target::parse(&self.url)
    }

    /// The longest the run can take, for the watchdog.
    pub fn limit(&self) -> Duration {
        Duration::from_secs(self.login_deadline + 60)
            + Duration::from_secs_f64(self.settle + self.hold)
    }
}

/// What the devices share with the main task.
#[derive(Default)]
struct Tally {
    /// Devices whose login ended, well or not.
    settled: AtomicU64,
    /// Devices logged in and still open.
    open: AtomicU64,
    pings: AtomicU64,
    other_frames: AtomicU64,
    state: Mutex<TallyState>,
}

#[derive(Default)]
struct TallyState {
    logged_in: u64,
    failures: BTreeMap<String, u64>,
    /// Logged-in devices the server closed while they were idle, by why.
    dropped: BTreeMap<String, u64>,
    login: Option<Histogram<u64>>,
}

impl Tally {
    fn count(map: &mut BTreeMap<String, u64>, label: String) {
        *map.entry(label).or_insert(0) += 1;
    }
}

#[derive(Serialize)]
pub struct IdleReport {
    pub url: String,
    pub devices: usize,
    pub concurrency: usize,
    /// `--handshake-only`: "logged in" means handshake done, no session.
    pub handshake_only: bool,
    /// `--large-frame`: bytes of the one large request each device sent.
    pub large_frame: usize,
    pub logged_in: u64,
    /// Logins that failed, by why.
    pub failures: BTreeMap<String, u64>,
    /// From the first connection to the last login settled.
    pub login_secs: f64,
    pub logins_per_sec: f64,
    /// Connect + handshake + hello to welcome, per device (its wait for a
    /// concurrency slot not counted), in microseconds.
    pub login_us: Summary,
    pub settle_secs: f64,
    pub hold_secs: f64,
    /// Devices the server closed while they idled, by why.
    pub dropped_while_idle: BTreeMap<String, u64>,
    pub open_at_end: u64,
    /// Pings heard from the server, and other frames, while idle.
    pub pings_received: u64,
    pub other_frames_received: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerMemory>,
    /// This process's own RSS with every device open.
    pub client_rss_bytes: Option<u64>,
}

#[derive(Serialize)]
pub struct ServerMemory {
    pub pid: u32,
    /// Before the first connection.
    pub rss_before: u64,
    /// `--settle` seconds after the last login.
    pub rss_logged_in: u64,
    /// At the end of the hold.
    pub rss_after_hold: u64,
    /// The highest read, from before the logins to the end of the hold
    /// (sampled every 100 ms).
    pub rss_peak: u64,
    /// (rss_logged_in - rss_before) / logged_in.
    pub bytes_per_device: f64,
    /// The same at the end of the hold.
    pub bytes_per_device_after_hold: f64,
}

impl IdleReport {
    pub fn ok(&self) -> bool {
        self.logged_in > 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "beckon-bench idle: {} devices against {}, {} logins at once{}{}\n",
            self.devices,
            self.url,
            self.concurrency,
            if self.handshake_only {
                " (handshake only: no hello, no session)"
            } else {
                ""
            },
            if self.large_frame > 0 {
                format!(", one {}-byte request each", self.large_frame)
            } else {
                String::new()
            }
        );
        out.push_str(&format!(
            "logged in {} of {} in {:.2} s ({:.0}/s); failed: {}\n",
            self.logged_in,
            self.devices,
            self.login_secs,
            self.logins_per_sec,
            labels(&self.failures)
        ));
        out.push_str(&self.login_us.line("login"));
        out.push('\n');
        out.push_str(&format!(
            "held {:.1} s after {:.1} s settle: {} still open, dropped by the server: {}; {} pings and {} other frames received\n",
            self.hold_secs,
            self.settle_secs,
            self.open_at_end,
            labels(&self.dropped_while_idle),
            self.pings_received,
            self.other_frames_received
        ));
        if let Some(server) = &self.server {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            out.push_str(&format!(
                "server pid {}: RSS {:.1} MiB before, {:.1} MiB logged in, {:.1} MiB after the hold, peak {:.1} MiB\n",
                server.pid,
                mib(server.rss_before),
                mib(server.rss_logged_in),
                mib(server.rss_after_hold),
                mib(server.rss_peak)
            ));
            out.push_str(&format!(
                "server memory per idle device: {:.0} bytes ({:.1} KiB); after the hold {:.0} bytes\n",
                server.bytes_per_device,
                server.bytes_per_device / 1024.0,
                server.bytes_per_device_after_hold
            ));
        }
        if let Some(client) = self.client_rss_bytes {
            out.push_str(&format!(
                "this process: RSS {:.1} MiB with the devices open\n",
                client as f64 / (1024.0 * 1024.0)
            ));
        }
        out
    }
}

/// `{a: 1, b: 2}` as `a 1, b 2`, or `none`.
pub fn labels(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(label, count)| format!("{label} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(options: &IdleOptions) -> Result<IdleReport, String> {
    let target = Arc::new(options.validate()?);
    let rss = |pid: u32| {
        raw::rss_bytes(pid).ok_or_else(|| format!("--server-pid {pid}: no VmRSS in /proc"))
    };
    let rss_before = options.server_pid.map(rss).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-idle")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let tally = Arc::new(Tally::default());
    tally.state.lock().login = Some(new_histogram()?);
    let (stop_tx, stop) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.login_deadline);
    let user_prefix = options.user_prefix.clone();
    let token: Arc<str> = Arc::from(options.token.as_str());

    let report = runtime.block_on(async {
        // The server's RSS, sampled for its peak from here to the end.
        let sampler = options.server_pid.map(|pid| {
            tokio::spawn(crate::probe::sample_rss(
                pid,
                Duration::from_millis(100),
                stop.clone(),
            ))
        });
        let mut devices = Vec::with_capacity(options.devices);
        for index in 0..options.devices {
            devices.push(tokio::spawn(device(
                format!("{user_prefix}-{index}"),
                token.clone(),
                options.handshake_only,
                options.large_frame,
                target.clone(),
                permits.clone(),
                deadline,
                tally.clone(),
                stop.clone(),
            )));
        }
        let total = options.devices as u64;
        let give_up = deadline + Duration::from_secs(1);
        while tally.settled.load(Ordering::Acquire) < total && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let login_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs_f64(options.settle)).await;
        let rss_logged_in = options.server_pid.and_then(raw::rss_bytes);
        let client_rss_bytes = raw::rss_bytes(std::process::id());
        tokio::time::sleep(Duration::from_secs_f64(options.hold)).await;
        let rss_after_hold = options.server_pid.and_then(raw::rss_bytes);
        let open_at_end = tally.open.load(Ordering::Acquire);
        let _ = stop_tx.send(true);
        // Each device leaves at once (drops its socket); bounded anyway.
        let leave = async {
            for device in devices {
                let _ = device.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), leave).await;
        let peak = match sampler {
            Some(sampler) => match sampler.await {
                Ok(Ok(rss)) => Some(rss.peak_bytes),
                _ => None,
            },
            None => None,
        };
        (
            login_secs,
            rss_logged_in,
            rss_after_hold,
            peak,
            open_at_end,
            client_rss_bytes,
        )
    });
    let (login_secs, rss_logged_in, rss_after_hold, peak, open_at_end, client_rss_bytes) = report;
    runtime.shutdown_timeout(Duration::from_secs(5));

    let state = std::mem::take(&mut *tally.state.lock());
    let logged_in = state.logged_in;
    let per_device = |before: u64, after: u64| {
        if logged_in == 0 {
            0.0
        } else {
            (after as f64 - before as f64) / logged_in as f64
        }
    };
    let server = match (
        options.server_pid,
        rss_before,
        rss_logged_in,
        rss_after_hold,
    ) {
        (Some(pid), Some(before), Some(logged), Some(held)) => Some(ServerMemory {
            pid,
            rss_before: before,
            rss_logged_in: logged,
            rss_after_hold: held,
            rss_peak: peak.unwrap_or(logged.max(held)),
            bytes_per_device: per_device(before, logged),
            bytes_per_device_after_hold: per_device(before, held),
        }),
        (Some(pid), ..) => return Err(format!("--server-pid {pid}: the process went away")),
        _ => None,
    };
    let login = match state.login {
        Some(histogram) => Summary::of(&histogram),
        None => Summary::of(&new_histogram()?),
    };
    Ok(IdleReport {
        url: options.url.clone(),
        devices: options.devices,
        concurrency: options.concurrency,
        handshake_only: options.handshake_only,
        large_frame: options.large_frame,
        logged_in,
        failures: state.failures,
        login_secs,
        logins_per_sec: if login_secs > 0.0 {
            logged_in as f64 / login_secs
        } else {
            0.0
        },
        login_us: login,
        settle_secs: options.settle,
        hold_secs: options.hold,
        dropped_while_idle: state.dropped,
        open_at_end,
        pings_received: tally.pings.load(Ordering::Relaxed),
        other_frames_received: tally.other_frames.load(Ordering::Relaxed),
        server,
        client_rss_bytes,
    })
}

/// One device: log in (holding a concurrency slot), then read until told to
/// stop or the server closes.
#[allow(clippy::too_many_arguments)]
async fn device(
    user: String,
    token: Arc<str>,
    handshake_only: bool,
    large_frame: usize,
    target: Arc<Target>,
    permits: Arc<Semaphore>,
    deadline: Instant,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) {
    let logged_in = async {
        let Ok(_permit) = permits.acquire().await else {
            return Err("no_permit".to_owned());
        };
        let start = Instant::now();
        let user = raw::user_id(&user)?;
        let device = raw::device_id("d")?;
        let (mut ws, _) = raw::open(&target, deadline).await?;
        if handshake_only {
            return Ok((ws, start.elapsed()));
        }
        let login = Login {
            user: &user,
            device: &device,
            token: &token,
            resume: None,
        };
        raw::hello(&mut ws, login, deadline).await?;
        raw::send(
            &mut ws,
            &ClientFrame::Sync { known: None },
            Duration::from_secs(5),
        )
        .await?;
        if large_frame > 0 {
            let renew = ClientFrame::RenewToken {
                id: 1,
                token: "x".repeat(large_frame),
            };
            raw::send(&mut ws, &renew, Duration::from_secs(5)).await?;
        }
        Ok((ws, start.elapsed()))
    };
    let mut ws = match logged_in.await {
        Ok((ws, took)) => {
            {
                let mut state = tally.state.lock();
                state.logged_in += 1;
                if let Some(histogram) = state.login.as_mut() {
                    record(histogram, took);
                }
            }
            tally.open.fetch_add(1, Ordering::AcqRel);
            tally.settled.fetch_add(1, Ordering::AcqRel);
            ws
        }
        Err(label) => {
            Tally::count(&mut tally.state.lock().failures, label);
            tally.settled.fetch_add(1, Ordering::AcqRel);
            return;
        }
    };
    let mut last_error = None;
    let ending = loop {
        tokio::select! {
            () = crate::probe::until_true(&mut stop) => break None,
            frame = ws.next() => match frame {
                Some(Ok(Message::Ping(_))) => {
                    tally.pings.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Text(text))) => {
                    tally.other_frames.fetch_add(1, Ordering::Relaxed);
                    if let Ok(ServerFrame::Error(error)) = ServerFrame::decode(&text) {
                        last_error = Some(error.code);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break Some(raw::ending_label(last_error, frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => {
                    tally.other_frames.fetch_add(1, Ordering::Relaxed);
                }
                None => break Some(raw::ending_label(last_error, None)),
                Some(Err(e)) => break Some(raw::ws_label("idle", &e)),
            }
        }
    };
    if let Some(label) = ending {
        tally.open.fetch_sub(1, Ordering::AcqRel);
        Tally::count(&mut tally.state.lock().dropped, label);
    }
}
