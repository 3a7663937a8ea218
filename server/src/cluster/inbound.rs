//! This node's inbox: a Redis stream this node alone reads, from the entry
//! after the last one it handled, so that what arrived while the connection
//! was broken is read when it is back. What an earlier process of this node
//! left unread is skipped at start (its sessions are gone). A plain XREAD
//! with the position kept in the process does what a consumer group would
//! (no other reader shares the stream, and a restart skips the backlog
//! anyway) without an XACK per batch.

use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;

use super::messages::Message;
use super::Cluster;
use crate::ConfigError;

/// Entries read at once.
const COUNT: usize = 512;
/// How long one read waits for entries (the connection's reply timeout is
/// longer).
const BLOCK_MS: usize = 2000;

fn reader_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_millis(BLOCK_MS as u64 + 5000)))
}

/// Reads the inbox from its end on.
pub(super) async fn start(cluster: &Arc<Cluster>) -> Result<(), ConfigError> {
    let stream = cluster.keys.inbox(&cluster.me);
    let from = cluster
        .stream_end(&stream)
        .await
        .map_err(|e| ConfigError(format!("cluster: inbox {stream}: {e}")))?;
    let reader = cluster
        .client
        .get_multiplexed_async_connection_with_config(&reader_config())
        .await
        .map_err(|e| ConfigError(format!("cluster: inbox reader: {e}")))?;
    tokio::spawn(read(Arc::downgrade(cluster), stream, from, reader));
    Ok(())
}

async fn read(
    cluster: std::sync::Weak<Cluster>,
    stream: String,
    mut from: String,
    mut conn: redis::aio::MultiplexedConnection,
) {
    let mut failing = false;
    loop {
        if cluster.strong_count() == 0 {
            return;
        }
        let options = StreamReadOptions::default().count(COUNT).block(BLOCK_MS);
        let read: redis::RedisResult<Option<StreamReadReply>> =
            conn.xread_options(&[&stream], &[&from], &options).await;
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
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(cluster) = cluster.upgrade() {
                    if let Ok(fresh) = cluster
                        .client
                        .get_multiplexed_async_connection_with_config(&reader_config())
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
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        for entry in entries {
            from = entry.id.clone();
            let batch: Option<String> = entry.get("b");
            // Each message on its own: one that cannot be read loses only
            // itself.
            let messages = batch
                .as_deref()
                .map(serde_json::from_str::<Vec<&serde_json::value::RawValue>>);
            match messages {
                Some(Ok(messages)) => {
                    for raw in messages {
                        match serde_json::from_str::<Message>(raw.get()) {
                            Ok(message) => cluster.received(message),
                            Err(error) => tracing::error!(
                                %error,
                                id = entry.id,
                                "cluster: an inbox message cannot be read"
                            ),
                        }
                    }
                }
                Some(Err(error)) => {
                    tracing::error!(%error, id = entry.id, "cluster: an inbox entry cannot be read")
                }
                None => tracing::error!(id = entry.id, "cluster: an inbox entry has no messages"),
            }
        }
    }
}
