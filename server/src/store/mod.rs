//! Where the server keeps its invitations (docs/ARCHITECTURE.md, "The
//! store"). The hub's rules hand every change to a [`beckon::hub::Store`];
//! this module supplies the server's three: memory (the hub's maps are the
//! only copy), SQLite in a data directory (the default), and Redis (shared
//! by the nodes of a deployment, `redis/`).
//!
//! - `sqlite.rs`: the SQLite store, opened with every check a data directory
//!   needs (`open.rs`: lock, schema version, migrations, reading it back);
//! - `queue.rs`: changes waiting for the store's one writer thread, taken
//!   in group commits; `writer.rs`: SQLite's writer;
//! - `schema.rs`: the numbered schema and its migrations; `codec.rs`: how a
//!   record is encoded in its row;
//! - `maintenance.rs`: `beckon-server store check` and `store compact`;
//! - [`DurableGate`]: what connections wait on before a frame leaves;
//! - `experiments.rs`: knobs that measure what durability costs (the
//!   `experiments` feature, for `bench/store-floor.sh` only).

pub mod codec;
#[cfg(feature = "experiments")]
mod experiments;
mod maintenance;
mod open;
mod queue;
pub mod redis;
pub mod schema;
mod sqlite;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use beckon::hub::Ticket;
use tokio::sync::watch;

pub use maintenance::{backup, check, compact, dump, CheckReport};
pub use open::{OpenError, DATABASE_FILE, LOCK_FILE};
pub use redis::RedisStore;
pub use sqlite::{SqliteStore, StoreMetrics};

/// The data directory when none is configured: systemd's
/// `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/beckon-server`, else
/// `~/.local/state/beckon-server`, else `./beckon-data`.
pub fn default_data_dir() -> PathBuf {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = from_env("STATE_DIRECTORY") {
        // systemd may list several, separated by colons: the first is ours.
        let text = dir.to_string_lossy().into_owned();
        if let Some(first) = text.split(':').next().filter(|f| !f.is_empty()) {
            return PathBuf::from(first);
        }
    }
    if let Some(state) = from_env("XDG_STATE_HOME") {
        return PathBuf::from(state).join("beckon-server");
    }
    if let Some(home) = from_env("HOME") {
        return PathBuf::from(home).join(".local/state/beckon-server");
    }
    PathBuf::from("beckon-data")
}

/// A store the server opened (a memory store needs nothing of this).
#[derive(Clone)]
pub enum OpenedStore {
    Sqlite(Arc<SqliteStore>),
    Redis(Arc<RedisStore>),
}

impl OpenedStore {
    /// What connections wait on before frames leave.
    pub fn gate(&self) -> DurableGate {
        #[cfg(feature = "experiments")]
        if experiments::ungated() {
            return DurableGate::default();
        }
        match self {
            OpenedStore::Sqlite(store) => store.gate(),
            OpenedStore::Redis(store) => store.gate(),
        }
    }

    pub fn metrics(&self) -> &StoreMetrics {
        match self {
            OpenedStore::Sqlite(store) => store.metrics(),
            OpenedStore::Redis(store) => store.metrics(),
        }
    }

    /// Writes what is queued and stops writing (blocks: call it off the
    /// runtime's threads).
    pub fn close(&self) {
        match self {
            OpenedStore::Sqlite(store) => store.close(),
            OpenedStore::Redis(store) => store.close(),
        }
    }

    /// Some(why) once the server must stop because of its store (a Redis
    /// node that lost its lease); never for SQLite.
    pub fn lost(&self) -> Option<watch::Receiver<Option<String>>> {
        match self {
            OpenedStore::Sqlite(_) => None,
            OpenedStore::Redis(store) => Some(store.lost()),
        }
    }
}

/// Whether frames that depend on a change may leave: a change's answer and
/// pushes wait until its ticket is durable. Always open on a memory store.
#[derive(Clone, Default)]
pub struct DurableGate {
    /// The last committed ticket, to read (every frame asks), and the same
    /// as a watch, to wait on.
    durable: Option<(Arc<AtomicU64>, watch::Receiver<Ticket>)>,
}

impl DurableGate {
    pub fn new(last: Arc<AtomicU64>, durable: watch::Receiver<Ticket>) -> DurableGate {
        DurableGate {
            durable: Some((last, durable)),
        }
    }

    /// True when everything up to `ticket` is durable.
    pub fn covers(&self, ticket: Ticket) -> bool {
        match &self.durable {
            Some((last, _)) => ticket == 0 || last.load(Ordering::Acquire) >= ticket,
            None => true,
        }
    }

    /// Waits until [`DurableGate::covers`] `ticket`. Never returns if the
    /// store stops for good (the caller selects it against other events).
    pub async fn wait(&self, ticket: Ticket) {
        let Some((_, durable)) = &self.durable else {
            return;
        };
        let mut durable = durable.clone();
        if durable.wait_for(|d| *d >= ticket).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
