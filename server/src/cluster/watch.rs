//! Watching the other nodes: forwarded requests left unanswered are failed,
//! and a node whose lease lapsed is taken over. One node (whichever runs the
//! takeover script first) adopts its invitations into its hub; every node
//! ends that node's devices' remote sessions once the grace period has
//! passed without a login elsewhere (rule 7 then applies as after a dropped
//! connection), and forgets their presence.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::hub::InvitationRecord;
use beckon::protocol::InvitationId;

use super::{Cluster, Device};

/// How a takeover of a stopped node ended.
enum Takeover {
    /// These records are this node's now (none when another node took
    /// them first).
    Adopted(Vec<InvitationRecord>),
    /// The node is running again; these records (moved by an earlier
    /// attempt whose reply was lost) are this node's all the same.
    Alive(Vec<InvitationRecord>),
    /// This node lost its lease: it is stopping.
    Stopping,
    /// Tried for [`TAKEOVER_PATIENCE`] without success.
    GaveUp,
}

/// How long a failing takeover is tried again before this node gives up.
/// What it could not take stays in Redis: still the stopped node's (another
/// node may take it), or this node's (read back when it restarts).
const TAKEOVER_PATIENCE: Duration = Duration::from_secs(60);

/// The pauses between a takeover's attempts: 200 ms, doubling up to the
/// lease, for [`TAKEOVER_PATIENCE`] at most.
struct Retry {
    started: Instant,
    pause: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry {
            started: Instant::now(),
            pause: Duration::from_millis(200),
        }
    }

    /// Waits before the next attempt; or how the takeover ends instead,
    /// when this node is stopping or has tried long enough.
    async fn again(&mut self, cluster: &Cluster, dead: &str) -> Result<(), Takeover> {
        if cluster.stopping() {
            return Err(Takeover::Stopping);
        }
        if self.started.elapsed() >= TAKEOVER_PATIENCE {
            tracing::error!(
                node = dead,
                "cluster: gave up taking over a stopped node's invitations after {} s",
                TAKEOVER_PATIENCE.as_secs()
            );
            return Err(Takeover::GaveUp);
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(cluster.lease);
        Ok(())
    }
}

pub(super) fn start(cluster: &Arc<Cluster>) {
    tokio::spawn(watch(Arc::downgrade(cluster)));
}

async fn watch(cluster: std::sync::Weak<Cluster>) {
    let every = match cluster.upgrade() {
        Some(c) => (c.lease / 2).max(Duration::from_millis(200)),
        None => return,
    };
    // Nodes found stopped, handled once each (a node that comes back under
    // the same name joins again with a new lease and is watched again).
    let mut handled: HashSet<String> = HashSet::new();
    // Each running node's epoch as last seen: a new one means it started
    // again, and the devices of its earlier process are gone.
    let mut epochs: HashMap<String, i64> = HashMap::new();
    loop {
        tokio::time::sleep(every).await;
        let Some(strong) = cluster.upgrade() else {
            return;
        };
        strong.expire_pending();
        strong.forget_owners(None);
        // Named before the list is read: a node that joins in between is
        // listed, never taken for vanished.
        let named = strong.nodes_named();
        let store = strong.store.clone();
        let nodes = match tokio::task::spawn_blocking(move || store.nodes()).await {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cluster: cannot list the nodes");
                continue;
            }
            Err(_) => continue,
        };
        let mut listed = HashSet::new();
        for (node, epoch) in nodes {
            listed.insert(node.clone());
            match epoch {
                Some(epoch) => {
                    handled.remove(&node);
                    strong.node_running(&node);
                    if let Some(before) = epochs.insert(node.clone(), epoch) {
                        if before != epoch {
                            strong.clone().node_restarted(node, before);
                        }
                    }
                }
                None => {
                    epochs.remove(&node);
                    if handled.insert(node.clone()) {
                        strong.clone().node_stopped(node);
                    }
                }
            }
        }
        // A node another node already took over is no longer listed (the
        // takeover removes it): one seen running, or that devices here or
        // requests sent from here still name, stopped all the same.
        let mut vanished: HashSet<String> = epochs
            .keys()
            .filter(|node| !listed.contains(*node))
            .cloned()
            .collect();
        vanished.extend(
            named
                .into_iter()
                .filter(|node| !listed.contains(node) && *node != strong.me),
        );
        for node in vanished {
            epochs.remove(&node);
            if handled.insert(node.clone()) {
                strong.clone().node_stopped(node);
            }
        }
    }
}

impl Cluster {
    /// The other nodes this node's devices map and forwarded requests name.
    fn nodes_named(&self) -> HashSet<String> {
        let mut named: HashSet<String> = self
            .devices
            .lock()
            .values()
            .filter_map(|d| match d {
                Device::Remote { node, .. } => Some(node.clone()),
                Device::Local { .. } => None,
            })
            .collect();
        named.extend(self.pending.lock().values().map(|p| p.node.clone()));
        named.extend(self.api_pending.lock().values().map(|w| w.node.clone()));
        named
    }

    /// `node`'s lease lapsed: take its invitations if no node did, and end
    /// its devices after the grace period.
    fn node_stopped(self: Arc<Self>, node: String) {
        tracing::warn!(node, "cluster: a node stopped (its lease lapsed)");
        self.outbound.forget(&node);
        self.stopped.lock().insert(node.clone());
        self.forget_owners(Some(&node));
        let this = self.clone();
        // Started before the adopt script moves anything: requests about
        // what it moves wait for the hub to hold it (takeover.rs).
        let running = self.takeover_started();
        tokio::spawn(async move {
            let (records, taken_over) = match this.take_over(&node).await {
                Takeover::Adopted(records) => (records, true),
                // The node is running again under its name; its inbox is
                // its new process's.
                Takeover::Alive(strays) => (strays, false),
                Takeover::Stopping | Takeover::GaveUp => (Vec::new(), false),
            };
            if !records.is_empty() {
                let recovery = this.hub.adopt(records, this.grace);
                tracing::info!(
                    node = %node,
                    open = recovery.open,
                    timed_out = recovery.timed_out,
                    retained = recovery.retained,
                    "cluster: took over a stopped node's invitations"
                );
            }
            drop(running);
            // Whoever took them, requests stranded there go to it now.
            this.reroute_from(&node);
            if taken_over {
                let mut conn = this.conn.clone();
                let _: redis::RedisResult<()> = redis::cmd("DEL")
                    .arg(this.keys.inbox(&node))
                    .query_async(&mut conn)
                    .await;
            }
            tokio::time::sleep(this.grace).await;
            this.end_devices_of(&node, None);
        });
    }

    /// Runs the takeover script for `dead` until it answers, then reads
    /// what it moved. A failed attempt is tried again after a growing pause
    /// ([`Retry`]). Redis may have run a script whose reply was lost: what
    /// it moved is then this node's in Redis only, so after a failure this
    /// node's invitations that its hub does not hold are read too.
    async fn take_over(self: &Arc<Self>, dead: &str) -> Takeover {
        let mut retry = Retry::new();
        let mut failed = false;
        let moved = loop {
            let (store, name) = (self.store.clone(), dead.to_owned());
            match tokio::task::spawn_blocking(move || store.adopt(&name)).await {
                Ok(Ok(moved)) => break moved,
                Ok(Err(error)) => tracing::error!(
                    %error,
                    node = dead,
                    "cluster: cannot take over a stopped node's invitations; trying again"
                ),
                Err(error) => {
                    tracing::error!(%error, node = dead, "cluster: a takeover failed; trying again")
                }
            }
            failed = true;
            if let Err(end) = retry.again(self, dead).await {
                return end;
            }
        };
        if !failed {
            return match moved {
                Some(records) => Takeover::Adopted(records),
                None => Takeover::Alive(Vec::new()),
            };
        }
        let moved_ids: HashSet<InvitationId> =
            moved.iter().flatten().map(|r| r.id.clone()).collect();
        let moved_ids = Arc::new(moved_ids);
        let strays = loop {
            let (store, hub, moved_ids) = (self.store.clone(), self.hub.clone(), moved_ids.clone());
            let read = tokio::task::spawn_blocking(move || {
                store.strays(|id| hub.has_invitation(id) || moved_ids.contains(id))
            });
            match read.await {
                Ok(Ok(strays)) => break strays,
                Ok(Err(error)) => {
                    tracing::error!(%error, node = dead, "cluster: cannot read this node's invitations; trying again")
                }
                Err(error) => {
                    tracing::error!(%error, node = dead, "cluster: reading this node's invitations failed; trying again")
                }
            }
            match retry.again(self, dead).await {
                Ok(()) => {}
                // What the script moved is still adopted.
                Err(Takeover::GaveUp) => break Vec::new(),
                Err(end) => return end,
            }
        };
        if !strays.is_empty() {
            tracing::warn!(
                node = dead,
                invitations = strays.len(),
                "cluster: a takeover whose reply was lost had moved invitations here"
            );
        }
        match moved {
            Some(mut records) => {
                records.extend(strays);
                Takeover::Adopted(records)
            }
            None => Takeover::Alive(strays),
        }
    }

    /// `node` started again (its lease holds a new epoch): the devices of
    /// its earlier process end after the grace period, unless they logged in
    /// again meanwhile (its invitations it took back itself at start).
    fn node_restarted(self: Arc<Self>, node: String, before: i64) {
        tracing::warn!(node, "cluster: a node started again");
        // Its invitations may have moved while it was away (adopted by a
        // node that saw its lease lapse): look the owners up again.
        self.forget_owners(Some(&node));
        // What its earlier process read but never answered is asked again.
        self.reroute_from(&node);
        tokio::spawn(async move {
            tokio::time::sleep(self.grace).await;
            self.end_devices_of(&node, Some(before));
        });
    }

    /// Ends the remote sessions of `node` (of its process `epoch`, or any)
    /// that no later login replaced.
    fn end_devices_of(&self, node: &str, epoch: Option<i64>) {
        let mut devices = self.devices.lock();
        let gone: Vec<_> = devices
            .iter()
            .filter(|(_, d)| {
                matches!(d, Device::Remote { node: n, epoch: e, .. }
                    if n == node && epoch.is_none_or(|wanted| wanted == *e))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(Device::Remote {
                session,
                gen,
                epoch,
                ..
            }) = devices.remove(&key)
            {
                self.hub.logout(&session);
                let field = crate::store::redis::target_field(&key.0, &key.1);
                let value = super::directory::presence_value(node, epoch, gen);
                let mut conn = self.conn.clone();
                let presence = self.keys.presence();
                tokio::spawn(async move {
                    let _: redis::RedisResult<i64> = super::directory::clear_presence()
                        .key(presence)
                        .arg(field)
                        .arg(value)
                        .invoke_async(&mut conn)
                        .await;
                });
            }
        }
    }
}
