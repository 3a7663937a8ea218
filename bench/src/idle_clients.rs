//! `beckon-bench idle-clients`: what N idle library clients cost their
//! process in CPU. N clients log in to one in-process hub (`memory://`); each
//! is sent one invitation, so every dispatcher has just run jobs (when an
//! adaptive dispatcher would be spinning, if it spun); then nothing happens
//! for `--hold` seconds and the process's CPU time over that window is read
//! from /proc, by thread name. An idle dispatcher should sleep: the figure to
//! read is `cores` (1.0 = one core busy the whole window).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::protocol::{Push, SendInvitation, UserId};
use beckon::{Client, ClientConfig, DispatchMode, Event};
use clap::Args;
use serde::Serialize;

use crate::cpu::{Sample, Usage};

#[derive(Args)]
pub struct IdleClientsOptions {
    /// Clients to create and hold idle (at most 5,000: each thread-mode
    /// client has a thread).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,

    /// `thread` (a dispatcher thread per client) or `pool`.
    #[arg(long, default_value = "thread")]
    pub dispatch: String,

    /// Seconds to wait after the last invitation was shown before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,

    /// Seconds of idleness measured.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,

    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl IdleClientsOptions {
    pub fn limit(&self) -> Duration {
        Duration::from_secs(120) + Duration::from_secs_f64(self.settle + self.hold)
    }
}

#[derive(Serialize)]
pub struct IdleClientsReport {
    pub clients: usize,
    pub dispatch: String,
    /// Invitations shown to the clients before the hold (one each).
    pub shown: u64,
    pub hold_secs: f64,
    pub cpu: Usage,
    /// All threads' CPU over the hold, in cores.
    pub total_cores: f64,
    /// The same per client, in microseconds of CPU per second.
    pub us_per_client_per_sec: f64,
}

impl IdleClientsReport {
    pub fn text(&self) -> String {
        let mut text = format!(
            "idle clients: {} ({} dispatch), {} invitations shown before the hold\n\
             hold {:.1} s: CPU {:.4} cores in all, {:.2} µs per client per second (load average {:.2})\n",
            self.clients,
            self.dispatch,
            self.shown,
            self.hold_secs,
            self.total_cores,
            self.us_per_client_per_sec,
            self.cpu.load_average
        );
        for (name, cores) in &self.cpu.cores {
            text.push_str(&format!("  {name}: {cores:.4} cores\n"));
        }
        text
    }

    pub fn ok(&self) -> bool {
        self.shown as usize == self.clients
    }
}

pub fn run(options: &IdleClientsOptions) -> Result<IdleClientsReport, String> {
    if options.clients == 0 || options.clients > 5000 {
        return Err("--clients: 1 to 5000".into());
    }
    let dispatch = match options.dispatch.as_str() {
        "thread" => DispatchMode::Thread,
        "pool" => DispatchMode::Pool,
        other => return Err(format!("--dispatch: thread or pool, not '{other}'")),
    };
    let hub = format!("memory://idle-clients-{}", std::process::id());
    let shown = Arc::new(AtomicU64::new(0));
    let user = |i: usize| UserId::parse(&format!("idle-{i}"), "user").map_err(|e| e.to_string());
    let mut clients = Vec::with_capacity(options.clients + 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    for i in 0..options.clients {
        let mut config = ClientConfig::new(hub.clone());
        config.dispatch = dispatch;
        let client = Client::new(config).map_err(|e| e.to_string())?;
        let counter = shown.clone();
        client.set_event_handler(Some(Arc::new(move |event: &Event| {
            if matches!(event, Event::Invitation(Push::InvitationReceived { .. })) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })));
        runtime
            .block_on(client.login(user(i)?, ""))
            .map_err(|e| format!("login {i}: {e}"))?;
        clients.push(client);
    }
    // One inviter rings every client once.
    let inviter = Client::new(ClientConfig::new(hub)).map_err(|e| e.to_string())?;
    runtime
        .block_on(inviter.login(user(options.clients)?, ""))
        .map_err(|e| e.to_string())?;
    for i in 0..options.clients {
        runtime
            .block_on(inviter.send_invitation(SendInvitation::new(vec![user(i)?], 600)))
            .map_err(|e| format!("invitation {i}: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (shown.load(Ordering::Relaxed) as usize) < options.clients && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs_f64(options.settle));

    let before = Sample::take();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(options.hold));
    let after = Sample::take();
    let window = start.elapsed().as_secs_f64();
    let cpu = Usage::between(&before, &after, window, 0);
    let total_seconds = cpu.seconds.values().fold(0.0, |sum, s| sum + s);
    let report = IdleClientsReport {
        clients: options.clients,
        dispatch: options.dispatch.clone(),
        shown: shown.load(Ordering::Relaxed),
        hold_secs: window,
        total_cores: total_seconds / window,
        us_per_client_per_sec: total_seconds * 1e6 / window / options.clients as f64,
        cpu,
    };
    drop(inviter);
    drop(clients);
    Ok(report)
}
