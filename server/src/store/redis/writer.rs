//! The one thread that writes the Redis store: each batch the queue
//! (`store/queue.rs`) hands it is one call of the `commit` script, fenced by
//! the node's lease. A connection that fails is dropped and made again for
//! the batch's retry.

use std::time::{Duration, Instant};

use redis::{Client, Connection, Script};

use super::history::{self, HistoryLimits};
use super::keys::{target_field, Keys};
use crate::store::queue::{Batch, BatchWriter, Write};
use crate::store::sqlite::StoreMetrics;

/// How long connecting, and waiting for one answer, may take.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How often Redis's memory is read for the metrics.
const SIZE_EVERY: Duration = Duration::from_secs(1);

pub(super) struct RedisWriter {
    pub client: Client,
    pub conn: Option<Connection>,
    pub keys: Keys,
    pub node: String,
    pub epoch: i64,
    pub wait_replicas: u32,
    pub wait_timeout_ms: u64,
    pub metrics: StoreMetrics,
    pub commit: Script,
    pub sized: Option<Instant>,
    pub history: HistoryLimits,
}

/// A connection with the store's timeouts.
pub(super) fn connect(client: &Client) -> redis::RedisResult<Connection> {
    connect_within(client, IO_TIMEOUT)
}

/// A connection whose connecting and each answer take at most `limit`.
pub(super) fn connect_within(client: &Client, limit: Duration) -> redis::RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(limit)?;
    conn.set_read_timeout(Some(limit))?;
    conn.set_write_timeout(Some(limit))?;
    Ok(conn)
}

impl RedisWriter {
    fn commit(&mut self, batch: &Batch) -> redis::RedisResult<()> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(connect(&self.client)?),
        };
        let mut call = self.commit.prepare_invoke();
        call.key(self.keys.lease(&self.node))
            .key(self.keys.owned(&self.node))
            .key(self.keys.push_targets())
            .key(self.keys.push_target_changes())
            .arg(self.epoch)
            .arg(&self.node)
            .arg(batch.invitations.len());
        for (id, (_, write)) in &batch.invitations {
            call.key(self.keys.invitation(id));
            match write {
                Write::Put {
                    version, encoded, ..
                } => {
                    call.arg("p")
                        .arg(id.as_str())
                        .arg(*version)
                        .arg(&encoded[..]);
                }
                Write::Forget => {
                    call.arg("f").arg(id.as_str()).arg(0).arg("");
                }
                Write::Unencodable(why) => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "a record cannot be encoded",
                        why.clone(),
                    )));
                }
            }
        }
        call.arg(batch.targets.len());
        for ((user, device), (_, target)) in &batch.targets {
            call.arg(target_field(user, device));
            match target {
                Ok(Some(encoded)) => call.arg(&encoded[..]),
                Ok(None) => call.arg(""),
                Err(why) => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "a push target cannot be encoded",
                        why.clone(),
                    )));
                }
            };
        }
        let mut ended = Vec::with_capacity(batch.history.len());
        for write in &batch.history {
            match write {
                Ok(entry) => ended.push(entry),
                Err(why) => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "history cannot be encoded",
                        why.clone(),
                    )))
                }
            }
        }
        history::add_to_commit(&mut call, &self.keys, &ended, self.history, unix_ms());
        let _written: i64 = call.invoke(conn)?;
        if self.wait_replicas > 0 {
            let acknowledged: i64 = redis::cmd("WAIT")
                .arg(self.wait_replicas)
                .arg(self.wait_timeout_ms)
                .query(conn)?;
            if acknowledged < i64::from(self.wait_replicas) {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "too few replicas",
                    format!(
                        "{acknowledged} of {} replicas acknowledged within {} ms",
                        self.wait_replicas, self.wait_timeout_ms
                    ),
                )));
            }
        }
        if self.sized.is_none_or(|at| at.elapsed() >= SIZE_EVERY) {
            self.sized = Some(Instant::now());
            if let Ok(info) = redis::cmd("INFO").arg("memory").query::<String>(conn) {
                if let Some(bytes) = used_memory(&info) {
                    self.metrics.db_bytes.set(bytes);
                }
            }
        }
        Ok(())
    }
}

impl BatchWriter for RedisWriter {
    fn write(&mut self, batch: &Batch) -> Result<(), String> {
        self.commit(batch).map_err(|error| {
            // A reply may have been lost half-way: the next try starts on a
            // fresh connection (and a retried batch writes the same versions
            // again, which the script accepts).
            self.conn = None;
            error.to_string()
        })
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `used_memory` of `INFO memory`.
fn used_memory(info: &str) -> Option<i64> {
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
}
