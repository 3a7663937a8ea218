//! Presence across nodes: every login and logout of a device is published
//! on one stream, `{prefix}:directory`, that every node reads from where it
//! joined, and kept in a hash, `{prefix}:presence` ("USER DEVICE" -> "NODE
//! EPOCH GEN"), that a node reads when it joins. A node mirrors each device of
//! another node into its hub (`Cluster::remote_session`), and ends the
//! mirror when the device logs out there.
//!
//! The same reader follows `{prefix}:push_target_changes`, where the Redis
//! store's commits append every push-target change: a device's target set on
//! one node rings it by push from an invitation made on any node.

use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_util::StreamExt;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Script};

use super::messages::Presence;
use super::{Cluster, Device};
use crate::store::redis::{target_field, Keys};
use crate::ConfigError;

/// The directory keeps about this many events (XADD MAXLEN ~); a node
/// further behind than that reads the presence hash again.
const DIRECTORY_LENGTH: usize = 100_000;
const BLOCK_MS: usize = 2000;

/// Sets a device's presence unless a newer login is recorded. KEYS:
/// presence. ARGV: field, "NODE EPOCH GEN", gen.
fn set_presence() -> Script {
    Script::new(
        r"
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local gen = tonumber(string.match(stored, ' (%d+)$'))
  if gen and gen > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
",
    )
}

/// A device's presence as the hash keeps it.
pub(super) fn presence_value(node: &str, epoch: i64, gen: u64) -> String {
    format!("{node} {epoch} {gen}")
}

/// Removes a device's presence if it is still this login. KEYS: presence.
/// ARGV: field, "NODE EPOCH GEN".
pub(super) fn clear_presence() -> Script {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
",
    )
}

/// Publishes this node's logins and logouts, in order.
pub(super) struct Publisher {
    keys: Keys,
    queue: UnboundedSender<Presence>,
    events: parking_lot::Mutex<Option<UnboundedReceiver<Presence>>>,
}

impl Publisher {
    pub fn new(keys: Keys) -> Publisher {
        let (queue, events) = unbounded();
        Publisher {
            keys,
            queue,
            events: parking_lot::Mutex::new(Some(events)),
        }
    }

    pub fn publish(&self, event: Presence) {
        let _ = self.queue.unbounded_send(event);
    }

    pub fn start(&self, cluster: &Arc<Cluster>) {
        if let Some(events) = self.events.lock().take() {
            let keys = self.keys.clone();
            tokio::spawn(publish(Arc::downgrade(cluster), keys, events));
        }
    }
}

async fn publish(
    cluster: std::sync::Weak<Cluster>,
    keys: Keys,
    mut events: UnboundedReceiver<Presence>,
) {
    let set = set_presence();
    let clear = clear_presence();
    while let Some(event) = events.next().await {
        let Ok(text) = serde_json::to_string(&event) else {
            continue;
        };
        loop {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            let mut conn = cluster.conn.clone();
            let kept: redis::RedisResult<()> = match &event {
                Presence::Login {
                    user,
                    device,
                    node,
                    epoch,
                    gen,
                } => set
                    .key(keys.presence())
                    .arg(target_field(user, device))
                    .arg(presence_value(node, *epoch, *gen))
                    .arg(*gen)
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map(drop),
                Presence::Logout {
                    user,
                    device,
                    node,
                    epoch,
                    gen,
                } => clear
                    .key(keys.presence())
                    .arg(target_field(user, device))
                    .arg(presence_value(node, *epoch, *gen))
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map(drop),
            };
            let added = match kept {
                Ok(()) => {
                    redis::cmd("XADD")
                        .arg(keys.directory())
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(DIRECTORY_LENGTH)
                        .arg("*")
                        .arg("m")
                        .arg(&text)
                        .query_async::<()>(&mut conn)
                        .await
                }
                Err(e) => Err(e),
            };
            match added {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, "cluster: cannot publish a login or logout; trying again");
                    drop(cluster);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// At join: the directory's end (read from there on), then every device of
/// another node's running process in the presence hash, mirrored into the
/// hub.
pub(super) async fn snapshot(cluster: &Arc<Cluster>) -> Result<String, ConfigError> {
    let mut conn = cluster.conn.clone();
    let error = |e: redis::RedisError| ConfigError(format!("cluster: directory: {e}"));
    let from = cluster
        .stream_end(&cluster.keys.directory())
        .await
        .map_err(error)?;
    let present: Vec<(String, String)> =
        conn.hgetall(cluster.keys.presence()).await.map_err(error)?;
    // Each node's running epoch (None: stopped).
    let mut running: std::collections::HashMap<String, Option<i64>> =
        std::collections::HashMap::new();
    for (field, value) in present {
        let parts: Vec<&str> = value.split(' ').collect();
        let (Some((user, device)), [node, epoch, gen]) = (field.split_once(' '), parts.as_slice())
        else {
            continue;
        };
        if *node == cluster.me {
            continue; // an earlier process of this node: those sessions are gone
        }
        let current = match running.get(*node) {
            Some(current) => *current,
            None => {
                let current: Option<i64> =
                    conn.get(cluster.keys.lease(node)).await.map_err(error)?;
                running.insert((*node).to_owned(), current);
                current
            }
        };
        let (Ok(user), Ok(device), Ok(epoch), Ok(gen)) = (
            beckon::protocol::UserId::parse(user, "user"),
            beckon::protocol::DeviceId::parse(device, "device"),
            epoch.parse::<i64>(),
            gen.parse::<u64>(),
        ) else {
            continue;
        };
        if current == Some(epoch) {
            cluster.remote_session(node, epoch, &user, &device, gen);
        }
    }
    Ok(from)
}

pub(super) fn start_reader(cluster: &Arc<Cluster>, from: String) {
    let targets_from = cluster.store.targets_from().to_owned();
    tokio::spawn(read(Arc::downgrade(cluster), from, targets_from));
}

async fn read(cluster: std::sync::Weak<Cluster>, mut from: String, mut targets_from: String) {
    let mut conn = None;
    loop {
        let Some(strong) = cluster.upgrade() else {
            return;
        };
        let stream = strong.keys.directory();
        let changes = strong.keys.push_target_changes();
        if conn.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(Duration::from_millis(BLOCK_MS as u64 + 5000)));
            match strong
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(fresh) => conn = Some(fresh),
                Err(error) => {
                    tracing::warn!(%error, "cluster: cannot read the directory; trying again");
                    drop(strong);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        drop(strong);
        let Some(reader) = conn.as_mut() else {
            continue;
        };
        let options = StreamReadOptions::default().count(512).block(BLOCK_MS);
        let read: redis::RedisResult<Option<StreamReadReply>> = reader
            .xread_options(&[&stream, &changes], &[&from, &targets_from], &options)
            .await;
        let streams = match read {
            Ok(reply) => reply.map(|r| r.keys).unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "cluster: cannot read the directory; trying again");
                conn = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(strong) = cluster.upgrade() else {
            return;
        };
        for read in streams {
            let presence = read.key == stream;
            for entry in read.ids {
                if presence {
                    from = entry.id.clone();
                    let text: Option<String> = entry.get("m");
                    match text.as_deref().map(serde_json::from_str::<Presence>) {
                        Some(Ok(event)) => strong.presence(event),
                        _ => tracing::error!(
                            id = entry.id,
                            "cluster: a directory entry cannot be read"
                        ),
                    }
                } else {
                    targets_from = entry.id.clone();
                    strong.push_target_changed(&entry);
                }
            }
        }
    }
}

impl Cluster {
    /// A push target changed, as committed: this node's own changes too,
    /// so that every hub ends as Redis does whatever order the nodes'
    /// commits took (a change a node made in its hub before another node's
    /// later commit is applied again in the commits' order).
    fn push_target_changed(&self, entry: &redis::streams::StreamId) {
        let (Some(field), Some(value)) = (entry.get::<String>("f"), entry.get::<Vec<u8>>("v"))
        else {
            tracing::error!(
                id = entry.id,
                "cluster: a push-target change cannot be read"
            );
            return;
        };
        let (user, device, target) = if value.is_empty() {
            let (user, device) = field.split_once(' ').unwrap_or((&field, ""));
            match (
                beckon::protocol::UserId::parse(user, "user"),
                beckon::protocol::DeviceId::parse(device, "device"),
            ) {
                (Ok(user), Ok(device)) => (user, device, None),
                _ => {
                    tracing::error!(
                        id = entry.id,
                        "cluster: a push-target change names no device"
                    );
                    return;
                }
            }
        } else {
            match crate::store::redis::decode_target(&field, &value) {
                Ok(record) => (record.user, record.device, Some(record.target)),
                Err(error) => {
                    tracing::error!(id = entry.id, %error, "cluster: a push-target change cannot be read");
                    return;
                }
            }
        };
        self.hub.mirror_push_target(&user, &device, target);
    }

    /// A login or logout at some node (this one's own are already applied).
    fn presence(self: &Arc<Self>, event: Presence) {
        match event {
            Presence::Login {
                user,
                device,
                node,
                epoch,
                gen,
            } => {
                if node != self.me {
                    self.remote_session(&node, epoch, &user, &device, gen);
                }
            }
            Presence::Logout {
                user,
                device,
                node,
                gen,
                ..
            } => {
                if node == self.me {
                    return;
                }
                let mut devices = self.devices.lock();
                let key = (user, device);
                let ended = match devices.get(&key) {
                    Some(Device::Remote {
                        gen: known,
                        session,
                        ..
                    }) if *known == gen => Some(session.clone()),
                    _ => None,
                };
                if let Some(session) = ended {
                    devices.remove(&key);
                    self.hub.logout(&session);
                }
            }
        }
    }
}
