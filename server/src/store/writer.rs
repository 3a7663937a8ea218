//! The one thread that writes the SQLite store. Changes queue up while it
//! commits; it then takes them all and commits them in one transaction (a
//! group commit), so a busy server pays one commit for many requests. Only
//! the latest change of an invitation in a batch is written: records are
//! whole, so the newer one says everything.
//!
//! A batch that fails (disk full, an I/O error) goes back into the queue under
//! the changes made since, and is tried again with a growing pause; meanwhile
//! the store reports itself unwritable, so the hub refuses requests that would
//! change anything. Nothing that waits for a failed batch leaves the server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use beckon::hub::{Change, Ticket};
use beckon::protocol::InvitationId;
use parking_lot::{Condvar, Mutex};
use rusqlite::{params, Connection};
use tokio::sync::watch;

use super::sqlite::StoreMetrics;

/// Pause after a failed batch, growing to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// How often the database's size is measured for the metrics.
const SIZE_EVERY: Duration = Duration::from_secs(1);

const PUT: &str = "INSERT INTO invitations (id, version, inviter, deadline_ms, ended_ms, record)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (id) DO UPDATE SET version = excluded.version, inviter = excluded.inviter,
         deadline_ms = excluded.deadline_ms, ended_ms = excluded.ended_ms, record = excluded.record";
const FORGET: &str = "DELETE FROM invitations WHERE id = ?1 AND version < ?2";

#[derive(Default)]
pub(super) struct Queue {
    /// The last ticket handed out.
    last: Ticket,
    /// The newest change of each invitation not yet taken by the writer.
    changes: HashMap<InvitationId, (Ticket, Change)>,
    stopping: bool,
}

/// What the store and its writer share.
pub(super) struct Shared {
    pub queue: Mutex<Queue>,
    pub wake: Condvar,
    /// The highest ticket committed (with everything before it).
    pub durable: watch::Sender<Ticket>,
    /// Why writing fails, while it does.
    pub failure: Mutex<Option<String>>,
    pub failing: AtomicBool,
    pub metrics: StoreMetrics,
    pub path: PathBuf,
}

impl Shared {
    pub fn new(metrics: StoreMetrics, path: PathBuf) -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable: watch::channel(0).0,
            failure: Mutex::new(None),
            failing: AtomicBool::new(false),
            metrics,
            path,
        }
    }

    /// Queues `change`; returns its ticket.
    pub fn submit(&self, change: Change) -> Ticket {
        let mut queue = self.queue.lock();
        queue.last += 1;
        let ticket = queue.last;
        queue.changes.insert(change.id().clone(), (ticket, change));
        drop(queue);
        self.wake.notify_one();
        ticket
    }

    /// Lets the writer finish what is queued and stop.
    pub fn stop(&self) {
        self.queue.lock().stopping = true;
        self.wake.notify_one();
    }
}

/// The writer's loop, until [`Shared::stop`] and an empty queue.
pub(super) fn run(mut conn: Connection, shared: &Shared) {
    let mut pause = FIRST_RETRY_PAUSE;
    let mut sized = Instant::now() - SIZE_EVERY;
    loop {
        let (batch, upto) = {
            let mut queue = shared.queue.lock();
            while queue.changes.is_empty() && !queue.stopping {
                shared.wake.wait(&mut queue);
            }
            if queue.changes.is_empty() {
                break; // stopping, and everything is written
            }
            (std::mem::take(&mut queue.changes), queue.last)
        };
        let started = Instant::now();
        match write(&mut conn, &batch) {
            Ok(()) => {
                shared.metrics.observe_batch(started.elapsed(), batch.len());
                shared.durable.send_replace(upto);
                if shared.failing.swap(false, Ordering::AcqRel) {
                    *shared.failure.lock() = None;
                    tracing::warn!(file = %shared.path.display(), "the store writes again");
                }
                pause = FIRST_RETRY_PAUSE;
                if sized.elapsed() >= SIZE_EVERY {
                    shared.metrics.set_size(&shared.path);
                    sized = Instant::now();
                }
            }
            Err(error) => {
                shared.metrics.write_failures.inc();
                let cause = format!("writing {}: {error}", shared.path.display());
                if !shared.failing.swap(true, Ordering::AcqRel) {
                    tracing::error!(file = %shared.path.display(), %error, "the store cannot write: requests that change anything are refused until it can");
                }
                *shared.failure.lock() = Some(cause);
                let stopping = {
                    let mut queue = shared.queue.lock();
                    // Changes made meanwhile are newer: they stay.
                    for (id, change) in batch {
                        queue.changes.entry(id).or_insert(change);
                    }
                    queue.stopping
                };
                if stopping {
                    tracing::error!(file = %shared.path.display(), "stopping with changes that could not be written");
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
    // A clean stop leaves no write-ahead log behind.
    if let Err(error) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(file = %shared.path.display(), %error, "checkpoint at stop failed");
    }
}

/// Commits one batch in one transaction.
fn write(
    conn: &mut Connection,
    batch: &HashMap<InvitationId, (Ticket, Change)>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(PUT)?;
        let mut forget = tx.prepare_cached(FORGET)?;
        for (_, change) in batch.values() {
            match change {
                Change::Put(record) => {
                    let text = serde_json::to_string(record)
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                    put.execute(params![
                        record.id.as_str(),
                        to_i64(record.version),
                        record.inviter.as_str(),
                        to_i64(record.deadline_ms),
                        record.ended_ms.map(to_i64),
                        text,
                    ])?;
                }
                Change::Forget { id, version } => {
                    forget.execute(params![id.as_str(), to_i64(*version)])?;
                }
            }
        }
    }
    tx.commit()
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
