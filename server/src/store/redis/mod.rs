//! The Redis store: invitations and push targets in a Redis that the nodes
//! of a deployment share (docs/ARCHITECTURE.md, "The Redis store").
//!
//! Each node owns the invitations it created and holds a lease in Redis (a
//! key with a time to live that it renews); every write is one script that
//! first checks the lease is still this process's (a fencing token), so a
//! node that was taken for dead can no longer change anything. A node that
//! starts under its old name takes its invitations back at once; a node
//! that starts beside a node whose lease lapsed takes that node's.
//!
//! - `keys.rs`: the keys; `scripts.rs`: the Lua scripts;
//! - `load.rs`: what a start reads; `writer.rs`: the writer thread (the
//!   queue of `store/queue.rs`, in group commits); the lease's renewal is
//!   here.

pub mod history;
mod keys;
mod load;
mod scripts;
mod writer;

pub use keys::{target_field, Keys};
pub use load::decode_target;
pub use scripts::claim_id;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::hub::{Change, InvitationRecord, Recovered, Store, Ticket};
use beckon::{Error, ErrorCode};
use parking_lot::{Condvar, Mutex};
use redis::Client;
use tokio::sync::watch;

use super::queue::{self, Shared};
use super::sqlite::StoreMetrics;
use super::{DurableGate, OpenError};
use crate::config::{redact_url, RedisConfig};
pub use history::HistoryLimits;
use load::Place;
use writer::{connect, RedisWriter};

pub use load::SCHEMA;

/// The node's name: the configured one, else the host's.
pub fn node_name(config: &RedisConfig) -> String {
    if let Some(node) = &config.node {
        return node.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let cleaned: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "beckon".to_owned()
    } else {
        cleaned
    }
}

/// A client for `config`'s Redis: with `rediss://` and a `ca_file`,
/// trusting that CA alone.
pub fn client(config: &RedisConfig) -> Result<Client, String> {
    match &config.ca_file {
        None => Client::open(config.url.as_str()).map_err(|e| format!("bad URL: {e}")),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("redis.ca_file {}: {e}", path.display()))?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            Client::build_with_tls(config.url.as_str(), certs)
                .map_err(|e| format!("redis.ca_file {}: {e}", path.display()))
        }
    }
}

/// The lease, renewed by its own thread.
struct Lease {
    stop: Mutex<bool>,
    wake: Condvar,
    /// Why this node may no longer write (its lease lapsed or was taken):
    /// set once, for good.
    lost: watch::Sender<Option<String>>,
    /// When the lease may have lapsed in Redis at the earliest, unless
    /// renewed: `lease_ms` after the last successful renewal was sent (the
    /// claim, at first), in ms since `base`. Past it the node acts as if the
    /// lease were lost, whatever its renewal thread is doing.
    valid_until_ms: AtomicU64,
    base: Instant,
    lease_ms: u64,
}

impl Lease {
    fn renewed(&self, sent_at: Instant) {
        let at = sent_at.saturating_duration_since(self.base).as_millis() as u64;
        self.valid_until_ms
            .fetch_max(at + self.lease_ms, Ordering::AcqRel);
    }

    /// Why the node may no longer act: lost, or past its lease's validity.
    fn lost_why(&self) -> Option<String> {
        if let Some(why) = self.lost.borrow().as_ref() {
            return Some(why.clone());
        }
        let now = self.base.elapsed().as_millis() as u64;
        (now >= self.valid_until_ms.load(Ordering::Acquire)).then(|| {
            format!(
                "its lease could not be renewed for {} ms: other nodes may be taking its invitations over",
                self.lease_ms
            )
        })
    }
}

pub struct RedisStore {
    shared: Arc<Shared>,
    lease: Arc<Lease>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    recovered: Mutex<Option<Recovered>>,
    client: Client,
    keys: Keys,
    node: String,
    epoch: i64,
    /// The URL without its password, for messages.
    url: String,
    /// Where the push-target changes stood when the targets were read.
    targets_from: String,
    /// The connection of `adopt`, `records` and `nodes` (made again after
    /// a failure).
    reads: Mutex<Option<redis::Connection>>,
}

impl RedisStore {
    /// Connects, checks the schema, takes the node's name (a new epoch),
    /// takes over the invitations of nodes whose lease lapsed, reads what
    /// the node owns, and starts the writer and the lease's renewal.
    pub fn open(
        config: &RedisConfig,
        history: HistoryLimits,
        metrics: StoreMetrics,
    ) -> Result<Arc<RedisStore>, OpenError> {
        let url = redact_url(&config.url);
        let node = node_name(config);
        let keys = Keys::new(&config.prefix);
        let place = Place {
            url: &url,
            keys: &keys,
        };
        let client = client(config).map_err(|e| OpenError(format!("redis {url}: {e}")))?;
        let mut conn = connect(&client).map_err(|e| place.error("cannot connect", e))?;
        load::check_schema(&mut conn, &place)?;
        let (live, lapsed) = load::other_nodes(&mut conn, &place, &node)?;
        if !live.is_empty() {
            tracing::info!(nodes = ?live, "joining the nodes running on this Redis");
        }
        let lease_ms = config.lease_ms;
        let claimed_at = Instant::now();
        let epoch: i64 = scripts::claim()
            .key(keys.epochs())
            .key(keys.nodes())
            .key(keys.lease(&node))
            .arg(&node)
            .arg(lease_ms)
            .invoke(&mut conn)
            .map_err(|e| place.error("cannot take the node's lease", e))?;
        for dead in &lapsed {
            if let Some(moved) = load::adopt(&mut conn, &place, &node, epoch, dead)? {
                tracing::info!(node = %dead, invitations = moved.len(), "took over the invitations of a node whose lease lapsed");
            }
        }
        let (recovered, targets_from) = load::recover(&mut conn, &place, &node)?;
        let shared = Arc::new(Shared::new(
            metrics.clone(),
            format!("redis {url} as node {node}"),
        ));
        let lease = Arc::new(Lease {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            lost: watch::channel(None).0,
            valid_until_ms: AtomicU64::new(lease_ms),
            base: claimed_at,
            lease_ms,
        });
        let mut writer = RedisWriter {
            client: client.clone(),
            conn: Some(conn),
            keys: Keys::new(&config.prefix),
            node: node.clone(),
            epoch,
            wait_replicas: config.wait_replicas,
            wait_timeout_ms: config.wait_timeout_ms,
            metrics,
            commit: scripts::commit(),
            sized: None,
            history,
        };
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("beckon-store".into())
            .spawn(move || queue::run(&for_writer, &mut writer))
            .map_err(|e| OpenError(format!("store writer thread: {e}")))?;
        let renewal = {
            let lease = lease.clone();
            let client = client.clone();
            let key = keys.lease(&node);
            let every = Duration::from_millis(lease_ms / 3);
            std::thread::Builder::new()
                .name("beckon-lease".into())
                .spawn(move || renew(&lease, &client, &key, epoch, lease_ms, every))
                .map_err(|e| OpenError(format!("lease thread: {e}")))?
        };
        tracing::info!(url = %url, prefix = %config.prefix, node = %node, epoch, "store: redis");
        Ok(Arc::new(RedisStore {
            shared,
            lease,
            threads: Mutex::new(vec![writer, renewal]),
            recovered: Mutex::new(Some(recovered)),
            client,
            keys,
            node,
            epoch,
            url,
            targets_from,
            reads: Mutex::new(None),
        }))
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The id in the stream of push-target changes after which the
    /// changes are not in what the hub started from.
    pub fn targets_from(&self) -> &str {
        &self.targets_from
    }

    /// Runs `read` on the reads' connection (made if there is none; dropped
    /// when `read` fails, so that the next call connects afresh).
    fn reading<T>(
        &self,
        read: impl FnOnce(&mut redis::Connection, &Place) -> Result<T, OpenError>,
    ) -> Result<T, OpenError> {
        let place = Place {
            url: &self.url,
            keys: &self.keys,
        };
        let mut slot = self.reads.lock();
        let conn = match &mut *slot {
            Some(conn) => conn,
            None => {
                slot.insert(connect(&self.client).map_err(|e| place.error("cannot connect", e))?)
            }
        };
        let result = read(conn, &place);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Takes over the invitations of `dead`, a node whose lease lapsed:
    /// their records, for the hub to adopt. None when that node is alive
    /// after all, or another node took them first (then there are none).
    /// Blocks on Redis: call it off the runtime's threads.
    pub fn adopt(&self, dead: &str) -> Result<Option<Vec<InvitationRecord>>, OpenError> {
        self.reading(|conn, place| {
            let Some(ids) = load::adopt(conn, place, &self.node, self.epoch, dead)? else {
                return Ok(None);
            };
            let owned = self.keys.owned(&self.node);
            load::records(conn, place, &owned, &ids).map(Some)
        })
    }

    /// This node's invitations in Redis that its hub does not hold
    /// (`held` says which it does): what a takeover moved here when the
    /// script's reply was lost (the script ran, the node saw an error).
    /// Blocks on Redis.
    pub fn strays(
        &self,
        held: impl Fn(&beckon::protocol::InvitationId) -> bool,
    ) -> Result<Vec<InvitationRecord>, OpenError> {
        self.reading(|conn, place| {
            let (owned, ids) = load::owned_ids(conn, place, &self.node)?;
            // An id that does not parse is kept: reading it reports it.
            let strays: Vec<String> = ids
                .into_iter()
                .filter(|id| {
                    beckon::protocol::InvitationId::parse(id, "invitation_id")
                        .map_or(true, |id| !held(&id))
                })
                .collect();
            load::records(conn, place, &owned, &strays)
        })
    }

    /// The stored records of `ids` (those with none, or that cannot be
    /// read, are left out). Blocks on Redis.
    pub fn records(
        &self,
        ids: &[beckon::protocol::InvitationId],
    ) -> Result<Vec<InvitationRecord>, OpenError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys.invitation(id))
                .arg("v")
                .arg("r");
        }
        let rows: Vec<(Option<String>, Option<Vec<u8>>)> = self.reading(|conn, place| {
            pipe.query(conn)
                .map_err(|e| place.error("cannot read invitations", e))
        })?;
        Ok(ids
            .iter()
            .zip(rows)
            .filter_map(|(id, row)| match row {
                (Some(version), Some(bytes)) => {
                    let version = version.parse().ok()?;
                    super::open::decode(id.as_str(), version, &bytes).ok()
                }
                _ => None,
            })
            .collect())
    }

    /// The other nodes that ever joined, each with the epoch of its running
    /// process (None: its lease lapsed). Blocks on Redis.
    pub fn nodes(&self) -> Result<Vec<(String, Option<i64>)>, OpenError> {
        self.reading(|conn, place| {
            let names: Vec<String> = redis::Commands::smembers(conn, self.keys.nodes())
                .map_err(|e| place.error("cannot list its nodes", e))?;
            let mut nodes = Vec::with_capacity(names.len());
            for name in names.into_iter().filter(|n| n != &self.node) {
                let epoch: Option<i64> = redis::Commands::get(conn, self.keys.lease(&name))
                    .map_err(|e| place.error("cannot read a node's lease", e))?;
                nodes.push((name, epoch));
            }
            Ok(nodes)
        })
    }

    /// What connections wait on before frames leave.
    pub fn gate(&self) -> DurableGate {
        DurableGate::new(
            self.shared.last_durable.clone(),
            self.shared.durable.subscribe(),
        )
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.shared.metrics
    }

    /// Some(why) once the node lost its lease: it must stop (what it holds
    /// in memory may be another node's now).
    pub fn lost(&self) -> watch::Receiver<Option<String>> {
        self.lease.lost.subscribe()
    }

    /// Why this node lost its lease, if it did (or may have: past the
    /// lease's validity without a renewal): it must change and send nothing
    /// more.
    pub fn lease_lost(&self) -> Option<String> {
        self.lease.lost_why()
    }

    /// Writes what is queued, stops the writer and gives the lease up.
    pub fn close(&self) {
        self.shared.stop();
        *self.lease.stop.lock() = true;
        self.lease.wake.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            let _ = thread.join();
        }
        if self.lease.lost.borrow().is_none() {
            let released = connect(&self.client).and_then(|mut conn| {
                scripts::release()
                    .key(self.keys.lease(&self.node))
                    .arg(self.epoch)
                    .invoke::<i64>(&mut conn)
            });
            if let Err(error) = released {
                tracing::warn!(url = %self.url, %error, "could not give the lease up: it lapses by itself");
            }
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Renews the lease every `every` until stopped. A lease found lapsed or
/// taken is lost for good (`Lease::lost`). A renewal that fails (Redis
/// unreachable) is tried again at the next tick; once the lease's validity
/// (`Lease::valid_until_ms`, counted from before the last renewal that
/// succeeded was sent) has passed, it is lost too: other nodes may be taking
/// the invitations over. The node acts as lost from that instant on
/// (`Lease::lost_why`), whatever this thread is waiting for.
fn renew(lease: &Lease, client: &Client, key: &str, epoch: i64, lease_ms: u64, every: Duration) {
    let script = scripts::renew();
    let mut conn = None;
    let mut failing = false;
    loop {
        {
            let mut stop = lease.stop.lock();
            if !*stop {
                lease.wake.wait_for(&mut stop, every);
            }
            if *stop {
                return;
            }
        }
        // One attempt may not outlast a tick: a lapse is told in time.
        let attempt_limit = every.clamp(Duration::from_millis(50), writer::IO_TIMEOUT);
        let sent_at = Instant::now();
        let renewed = match &mut conn {
            Some(c) => Ok(c),
            None => writer::connect_within(client, attempt_limit).map(|c| conn.insert(c)),
        }
        .and_then(|c| script.key(key).arg(epoch).arg(lease_ms).invoke::<i64>(c));
        let why = match renewed {
            Ok(1) => {
                lease.renewed(sent_at);
                if failing {
                    failing = false;
                    tracing::warn!("the lease is renewed again");
                }
                continue;
            }
            Ok(0) => format!("its lease ({key}) lapsed: Redis could not be reached for {lease_ms} ms or more, and other nodes may have taken its invitations"),
            Ok(_) => format!("its lease ({key}) was taken by another process started under the same node name"),
            Err(error) => {
                conn = None;
                match lease.lost_why() {
                    None => {
                        if !failing {
                            failing = true;
                            tracing::warn!(%error, "cannot renew the lease; trying again");
                        }
                        continue;
                    }
                    Some(why) => format!("{why} ({key}: {error})"),
                }
            }
        };
        tracing::error!("this node stops: {why}");
        lease.lost.send_replace(Some(why));
        return;
    }
}

impl Store for RedisStore {
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
        if let Some(why) = self.lease.lost_why() {
            return Err(Error::new(
                ErrorCode::Server,
                format!("this server node is stopping ({why}); nothing was changed"),
            ));
        }
        self.shared.check_writable()
    }

    fn keeps_history(&self) -> bool {
        true
    }

    /// Every node reads history from Redis (`history::page`).
    fn serves_history(&self) -> bool {
        true
    }
}
