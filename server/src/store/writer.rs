//! The one thread that writes the SQLite store: each batch the queue
//! (`queue.rs`) hands it is one transaction.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use beckon::protocol::InvitationId;
use rusqlite::{params, Connection};

use super::open::RowIndex;
use super::queue::{Batch, BatchWriter, Write};
use super::sqlite::StoreMetrics;

/// How often the database's size is measured for the metrics.
const SIZE_EVERY: Duration = Duration::from_secs(1);

const INSERT: &str = "INSERT INTO invitations (id, version, inviter, deadline_ms, ended_ms, record)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const UPDATE: &str = "UPDATE invitations SET version = ?2, ended_ms = ?3, record = ?4
     WHERE row = ?1";
const FORGET: &str = "DELETE FROM invitations WHERE row = ?1";
const SET_TARGET: &str =
    "INSERT OR REPLACE INTO push_targets (user, device, target) VALUES (?1, ?2, ?3)";
const CLEAR_TARGET: &str = "DELETE FROM push_targets WHERE user = ?1 AND device = ?2";
const ADD_HISTORY: &str = "INSERT INTO history (newest_ms, summaries) VALUES (?1, ?2)";
const FORGET_HISTORY: &str = "DELETE FROM history WHERE newest_ms < ?1";

pub(super) struct SqliteWriter {
    pub conn: Connection,
    /// Each stored invitation's row.
    pub rows: RowIndex,
    pub path: PathBuf,
    pub metrics: StoreMetrics,
    /// When the database's size was last measured.
    pub sized: Option<Instant>,
}

impl BatchWriter for SqliteWriter {
    fn write(&mut self, batch: &Batch) -> Result<(), String> {
        #[cfg(feature = "experiments")]
        if super::experiments::null_writer() {
            return Ok(());
        }
        let moved = write(&mut self.conn, &self.rows, batch).map_err(|e| e.to_string())?;
        for (id, row) in moved {
            match row {
                Some(row) => self.rows.insert(id, row),
                None => self.rows.remove(&id),
            };
        }
        if self.sized.is_none_or(|at| at.elapsed() >= SIZE_EVERY) {
            self.metrics.set_size(&self.path);
            self.sized = Some(Instant::now());
        }
        Ok(())
    }

    fn stopped(&mut self) {
        // A clean stop leaves no write-ahead log behind.
        if let Err(error) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(file = %self.path.display(), %error, "checkpoint at stop failed");
        }
    }
}

/// Commits one batch in one transaction. Returns the rows it added (`Some`)
/// and removed (`None`), for the index once the commit stands.
fn write(
    conn: &mut Connection,
    rows: &RowIndex,
    batch: &Batch,
) -> rusqlite::Result<Vec<(InvitationId, Option<i64>)>> {
    let mut moved = Vec::new();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        let mut update = tx.prepare_cached(UPDATE)?;
        let mut forget = tx.prepare_cached(FORGET)?;
        for (id, (_, write)) in &batch.invitations {
            match write {
                Write::Put {
                    version,
                    inviter,
                    deadline_ms,
                    ended_ms,
                    encoded,
                } => {
                    let version = to_i64(*version);
                    let ended = ended_ms.map(to_i64);
                    match rows.get(id) {
                        Some(row) => {
                            update.execute(params![row, version, ended, encoded])?;
                        }
                        None => {
                            insert.execute(params![
                                id.as_str(),
                                version,
                                inviter.as_str(),
                                to_i64(*deadline_ms),
                                ended,
                                encoded,
                            ])?;
                            moved.push((id.clone(), Some(tx.last_insert_rowid())));
                        }
                    }
                }
                Write::Forget => {
                    if let Some(row) = rows.get(id) {
                        forget.execute(params![row])?;
                        moved.push((id.clone(), None));
                    }
                }
                Write::Unencodable(why) => {
                    return Err(rusqlite::Error::ToSqlConversionFailure(why.clone().into()));
                }
            }
        }
        let mut set_target = tx.prepare_cached(SET_TARGET)?;
        let mut clear_target = tx.prepare_cached(CLEAR_TARGET)?;
        for ((user, device), (_, target)) in &batch.targets {
            match target {
                Ok(Some(encoded)) => {
                    set_target.execute(params![user.as_str(), device.as_str(), encoded])?;
                }
                Ok(None) => {
                    clear_target.execute(params![user.as_str(), device.as_str()])?;
                }
                Err(why) => {
                    return Err(rusqlite::Error::ToSqlConversionFailure(why.clone().into()));
                }
            }
        }
        if !batch.history.is_empty() {
            let (newest, summaries) = history_row(&batch.history)
                .map_err(|why| rusqlite::Error::ToSqlConversionFailure(why.into()))?;
            tx.prepare_cached(ADD_HISTORY)?
                .execute(params![to_i64(newest), summaries])?;
        }
        if let Some(before) = batch.forget_history_before {
            tx.execute(FORGET_HISTORY, params![to_i64(before)])?;
        }
    }
    tx.commit()?;
    Ok(moved)
}

/// One batch's ended invitations as one history row: the newest sent time,
/// and the summaries as postcard encodes a `Vec` of them (their count, then
/// each), so a commit adds one row however many invitations ended.
fn history_row(writes: &[super::queue::HistoryWrite]) -> Result<(u64, Vec<u8>), String> {
    let mut summaries = postcard::to_allocvec(&writes.len()).map_err(|e| e.to_string())?;
    let mut newest = 0;
    for write in writes {
        let entry = write.as_ref().map_err(String::clone)?;
        newest = newest.max(entry.created_ms);
        summaries.extend_from_slice(&entry.encoded);
    }
    Ok((newest, summaries))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
