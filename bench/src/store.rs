//! `beckon-bench store`: the SQLite store on its own, in a fresh temporary
//! data directory. First N invitations are sent through a hub on the store
//! (each to one invitee, nobody online, so each is one record), and the time
//! until the last is durable gives the store's write rate. Then the store is
//! closed, opened again and the hub restored from it, as a server does at
//! start: that time is the recovery time for N open invitations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::hub::{Hub, HubConfig, Store};
use beckon::protocol::{DeviceId, SendInvitation, SessionSink, UserId};
use beckon_server::store::{SqliteStore, StoreMetrics};
use beckon_server::Durability;
use clap::Args;
use serde::Serialize;

#[derive(Args)]
pub struct StoreOptions {
    /// Open invitations to write and then recover (at most 1,000,000).
    #[arg(long, default_value_t = 100_000)]
    pub invitations: usize,

    /// normal or full.
    #[arg(long, value_enum, default_value_t = Durability::Normal)]
    pub durability: Durability,

    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl StoreOptions {
    pub fn limit(&self) -> Duration {
        Duration::from_secs(600)
    }
}

#[derive(Serialize)]
pub struct StoreReport {
    pub invitations: usize,
    pub durability: String,
    /// From the first send to the last change durable.
    pub write_secs: f64,
    pub writes_per_sec: f64,
    pub database_bytes: u64,
    /// Opening the store (lock, schema, reading every row).
    pub open_secs: f64,
    /// Restoring the hub from what was read.
    pub restore_secs: f64,
    /// Both: what a server's start adds for this many open invitations.
    pub recovery_secs: f64,
    pub recovered_open: usize,
}

impl StoreReport {
    pub fn text(&self) -> String {
        format!(
            "beckon-bench store: {} open invitations, durability {}\n\
             written in {:.2} s ({:.0} changes/s), database {} bytes\n\
             recovery: {:.3} s (open and read {:.3} s, restore {:.3} s), {} open invitations restored\n",
            self.invitations,
            self.durability,
            self.write_secs,
            self.writes_per_sec,
            self.database_bytes,
            self.recovery_secs,
            self.open_secs,
            self.restore_secs,
            self.recovered_open
        )
    }

    pub fn ok(&self) -> bool {
        self.recovered_open == self.invitations
    }
}

struct Nowhere;

impl SessionSink for Nowhere {
    fn deliver(&self, _push: beckon::protocol::Push) {}
}

pub fn run(options: &StoreOptions) -> Result<StoreReport, String> {
    if options.invitations == 0 || options.invitations > 1_000_000 {
        return Err("--invitations: must be 1 to 1,000,000".into());
    }
    let dir =
        std::env::temp_dir().join(format!("beckon-bench-store-{:016x}", rand::random::<u64>()));
    let result = measure(options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(options: &StoreOptions, dir: &std::path::Path) -> Result<StoreReport, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let config = HubConfig {
        max_open_invitations: HubConfig::OPEN_INVITATIONS_CEILING,
        retention: Duration::from_secs(600),
        ..HubConfig::default()
    };
    let grace = Duration::from_secs(600);
    let open =
        |metrics| SqliteStore::open(dir, options.durability, metrics).map_err(|e| e.to_string());
    let error = |e: beckon::Error| e.message;

    // Write: inviters of at most 100,000 open invitations each.
    let store = open(StoreMetrics::default())?;
    let (hub, _) = Hub::with_store(
        config.clone(),
        runtime.handle(),
        store.clone(),
        grace,
        Default::default(),
    )
    .map_err(error)?;
    let device = DeviceId::parse("bench", "device").map_err(error)?;
    let per_inviter = HubConfig::OPEN_INVITATIONS_CEILING;
    let started = Instant::now();
    let mut sessions = Vec::new();
    for index in 0..options.invitations {
        if index % per_inviter == 0 {
            let user =
                UserId::parse(&format!("inviter{}", index / per_inviter), "user").map_err(error)?;
            sessions.push(
                hub.login(user, device.clone(), "", Arc::new(Nowhere))
                    .map_err(error)?,
            );
        }
        let Some(session) = sessions.last() else {
            return Err("no inviter".into());
        };
        let invitee = UserId::parse(&format!("invitee{}", index % 1000), "user").map_err(error)?;
        hub.send(session, SendInvitation::new(vec![invitee], 300))
            .map_err(error)?;
    }
    let last = beckon::hub::frame_ticket();
    while Store::durable(&*store) < last {
        std::thread::sleep(Duration::from_millis(1));
    }
    let write_secs = started.elapsed().as_secs_f64();
    // Nobody logs out: the invitations stay open, as at a server's shutdown.
    drop(sessions);
    drop(hub);
    store.close();
    let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let database_bytes = size(dir.join("beckon.db")) + size(dir.join("beckon.db-wal"));
    drop(store);

    // Recover.
    let started = Instant::now();
    let store = open(StoreMetrics::default())?;
    let opened = started.elapsed();
    let (_hub, recovery) = Hub::with_store(
        config,
        runtime.handle(),
        store.clone(),
        grace,
        Default::default(),
    )
    .map_err(error)?;
    let recovery_secs = started.elapsed().as_secs_f64();
    store.close();
    Ok(StoreReport {
        invitations: options.invitations,
        durability: format!("{:?}", options.durability).to_lowercase(),
        write_secs,
        writes_per_sec: options.invitations as f64 / write_secs.max(1e-9),
        database_bytes,
        open_secs: opened.as_secs_f64(),
        restore_secs: recovery_secs - opened.as_secs_f64(),
        recovery_secs,
        recovered_open: recovery.open,
    })
}
