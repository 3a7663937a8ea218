//! The SQLite store: a data directory with one database (WAL mode), owned by
//! one server at a time, written by one thread in group commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::{Change, Recovered, Store, Ticket};
use beckon::protocol::InvitationSummary;
use beckon::Error;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::open::{self, OpenError};
use super::queue::{self, Shared};
use super::writer::SqliteWriter;
use crate::config::Durability;

/// The store's metrics, registered with the server's (`Metrics::register_store`).
#[derive(Clone)]
pub struct StoreMetrics {
    /// Seconds one group commit took.
    pub write_seconds: Histogram,
    /// Changes in one group commit.
    pub batch_changes: Histogram,
    /// Bytes of the database and its write-ahead log.
    pub db_bytes: Gauge,
    pub write_failures: Counter,
    /// Seconds the last start took to read and restore the store.
    pub recovery_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Invitations the last start restored (open, timed out at start, or
    /// retained).
    pub recovered_invitations: Gauge,
}

impl Default for StoreMetrics {
    fn default() -> StoreMetrics {
        StoreMetrics {
            // 50 µs .. ~3 s
            write_seconds: Histogram::new(exponential_buckets(0.00005, 3.0, 11)),
            // 1 .. 59049
            batch_changes: Histogram::new(exponential_buckets(1.0, 3.0, 11)),
            db_bytes: Gauge::default(),
            write_failures: Counter::default(),
            recovery_seconds: Gauge::default(),
            recovered_invitations: Gauge::default(),
        }
    }
}

impl StoreMetrics {
    pub(super) fn observe_batch(&self, took: Duration, changes: usize) {
        self.write_seconds.observe(took.as_secs_f64());
        self.batch_changes.observe(changes as f64);
    }

    pub(super) fn set_size(&self, path: &Path) {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let wal = path.with_extension("db-wal");
        let bytes = size(path) + size(&wal);
        self.db_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

pub struct SqliteStore {
    shared: Arc<Shared>,
    path: PathBuf,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// What the database held at open, until the hub takes it.
    recovered: Mutex<Option<Recovered>>,
    /// The data directory's lock, held while the store lives.
    _lock: std::fs::File,
}

impl SqliteStore {
    /// Opens (or creates) the store in `dir`: locks it, migrates it, reads
    /// it, and starts its writer. Fails with a message naming the file and
    /// the cause.
    pub fn open(
        dir: &Path,
        durability: Durability,
        metrics: StoreMetrics,
    ) -> Result<Arc<SqliteStore>, OpenError> {
        let opened = open::open(dir, durability)?;
        let open::Loaded { recovered, rows } = open::load(&opened.conn, &opened.path)?;
        metrics.set_size(&opened.path);
        let shared = Arc::new(Shared::new(
            metrics.clone(),
            opened.path.display().to_string(),
        ));
        let for_writer = shared.clone();
        let mut writer = SqliteWriter {
            conn: opened.conn,
            rows,
            path: opened.path.clone(),
            metrics,
            sized: None,
        };
        let writer = std::thread::Builder::new()
            .name("beckon-store".into())
            .spawn(move || queue::run(&for_writer, &mut writer))
            .map_err(|e| OpenError(format!("store writer thread: {e}")))?;
        Ok(Arc::new(SqliteStore {
            shared,
            path: opened.path,
            writer: Mutex::new(Some(writer)),
            recovered: Mutex::new(Some(recovered)),
            _lock: opened.lock,
        }))
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// What connections wait on before frames leave.
    pub fn gate(&self) -> super::DurableGate {
        super::DurableGate::new(
            self.shared.last_durable.clone(),
            self.shared.durable.subscribe(),
        )
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.shared.metrics
    }

    /// Writes what is queued and stops the writer. Later changes are not
    /// written (and so never acknowledged).
    pub fn close(&self) {
        self.shared.stop();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl Store for SqliteStore {
    fn keeps_records(&self) -> bool {
        true
    }

    fn recover(&self) -> beckon::Result<Recovered> {
        self.recovered
            .lock()
            .take()
            .ok_or_else(|| Error::internal("the store was recovered already: one hub per store"))
    }

    fn submit(&self, change: Change) -> Ticket {
        self.shared.submit(change)
    }

    fn durable(&self) -> Ticket {
        self.shared.last_durable.load(Ordering::Acquire)
    }

    fn check_writable(&self) -> beckon::Result<()> {
        self.shared.check_writable()
    }

    fn keeps_history(&self) -> bool {
        true
    }

    /// Read on a connection of its own (the writer has the store's), which
    /// WAL mode lets run beside it.
    fn recover_history(
        &self,
        since_ms: u64,
        per_user: usize,
    ) -> beckon::Result<Vec<InvitationSummary>> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags).map_err(|e| {
            Error::new(
                beckon::ErrorCode::Server,
                format!("{}: cannot read history: {e}", self.path.display()),
            )
        })?;
        open::load_history(&conn, &self.path, since_ms, per_user)
            .map_err(|e| Error::new(beckon::ErrorCode::Server, e.to_string()))
    }
}
