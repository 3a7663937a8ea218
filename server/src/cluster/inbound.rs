//! This node's inbox: a Redis stream read with a consumer group, so that an
//! entry read but not yet handled when the connection broke is read again
//! (XREADGROUP from 0 after a failure), and one handled is never handled
//! twice in this process (entries at or below the last handled id are
//! skipped). What an earlier process of this node left unread is skipped at
//! start: its sessions are gone.

use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;

use super::messages::Message;
use super::Cluster;
use crate::ConfigError;

const GROUP: &str = "beckon";
/// Entries read at once.
const COUNT: usize = 512;
/// How long one read waits for entries (the connection's reply timeout is
/// longer).
const BLOCK_MS: usize = 2000;

/// A stream entry id as two numbers, to compare.
fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Creates the group at the stream's end (or moves it there) and starts the
/// reader.
pub(super) async fn start(cluster: &Arc<Cluster>) -> Result<(), ConfigError> {
    let stream = cluster.keys.inbox(&cluster.me);
    let mut conn = cluster.conn.clone();
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(&stream, GROUP, "$").await;
    if let Err(error) = created {
        if error.code() != Some("BUSYGROUP") {
            return Err(ConfigError(format!("cluster: inbox {stream}: {error}")));
        }
        redis::cmd("XGROUP")
            .arg("SETID")
            .arg(&stream)
            .arg(GROUP)
            .arg("$")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| ConfigError(format!("cluster: inbox {stream}: {e}")))?;
    }
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_millis(BLOCK_MS as u64 + 5000)));
    let reader = cluster
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| ConfigError(format!("cluster: inbox reader: {e}")))?;
    tokio::spawn(read(Arc::downgrade(cluster), stream, reader));
    Ok(())
}

async fn read(
    cluster: std::sync::Weak<Cluster>,
    stream: String,
    mut conn: redis::aio::MultiplexedConnection,
) {
    let mut done = (0u64, 0u64);
    // After a failure, first what was read but maybe not handled.
    let mut from_pending = false;
    let mut failing = false;
    loop {
        let Some(me) = cluster.upgrade().map(|c| c.me.clone()) else {
            return;
        };
        let options = StreamReadOptions::default()
            .group(GROUP, &me)
            .count(COUNT)
            .block(BLOCK_MS);
        let position = if from_pending { "0" } else { ">" };
        let read: redis::RedisResult<Option<StreamReadReply>> =
            conn.xread_options(&[&stream], &[position], &options).await;
        let reply = match read {
            Ok(reply) => {
                if failing {
                    tracing::warn!(stream, "cluster: the inbox is read again");
                    failing = false;
                }
                reply
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, stream, "cluster: cannot read the inbox; trying again");
                    failing = true;
                }
                from_pending = true;
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(cluster) = cluster.upgrade() {
                    let config = redis::AsyncConnectionConfig::new()
                        .set_response_timeout(Some(Duration::from_millis(BLOCK_MS as u64 + 5000)));
                    if let Ok(fresh) = cluster
                        .client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                    {
                        conn = fresh;
                    }
                }
                continue;
            }
        };
        let entries: Vec<_> = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        if entries.is_empty() {
            // Nothing pending left: back to new entries.
            from_pending = false;
            continue;
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let mut ids = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = parse_id(&entry.id);
            ids.push(entry.id.clone());
            if id <= done {
                continue;
            }
            done = id;
            let text: Option<String> = entry.get("m");
            match text.as_deref().map(serde_json::from_str::<Message>) {
                Some(Ok(message)) => cluster.received(message),
                Some(Err(error)) => {
                    tracing::error!(%error, id = entry.id, "cluster: an inbox entry cannot be read")
                }
                None => tracing::error!(id = entry.id, "cluster: an inbox entry has no message"),
            }
        }
        let acked: redis::RedisResult<()> = conn.xack(&stream, GROUP, &ids).await;
        if let Err(error) = acked {
            tracing::warn!(%error, "cluster: cannot acknowledge inbox entries");
        }
    }
}
