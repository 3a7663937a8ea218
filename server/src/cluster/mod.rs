//! Several nodes on one Redis (`--store redis`; docs/ARCHITECTURE.md,
//! "Several nodes"). The rules stay in each node's hub: an invitation
//! belongs to the node that created it (the Redis store's `owned:NODE`), and
//! only that node's hub changes it. What crosses nodes:
//!
//! - **presence** (`directory.rs`): every login and logout is published on
//!   one stream that every node reads; a node mirrors each device of another
//!   node into its hub as a remote session (`Hub::login_remote`), so its
//!   invitations ring that device, count it as online, and apply rule 7 when
//!   the user's last device anywhere leaves;
//! - **deliveries** (`sink.rs`, `outbound.rs`): a remote session's pushes go,
//!   once the change they tell of is durable, to its node's inbox stream, in
//!   order; the node reads its inbox from the last entry it handled
//!   (`inbound.rs`) and hands them to the device's session;
//! - **requests**: a request about an invitation this node does not hold
//!   (accept, refuse, cancel, a receipt; a send whose idempotency key another
//!   node claimed) goes to the owner's inbox (the owner as the invitation's
//!   deliveries named it, else as Redis says) and runs there on the device's
//!   remote session; its answer comes back the same way;
//! - **a node that stops** (`watch.rs`): when its lease lapses, one node
//!   takes its invitations over (`Hub::adopt`), and every node ends its
//!   devices' remote sessions after the grace period unless they logged in
//!   elsewhere meanwhile.
//!
//! Lock order: [`Cluster`]'s `devices` lock, then the hub's locks, then the
//! outbound queues' lock (a leaf; a remote session's sink takes it under the
//! hub's locks). Nothing calls into the hub holding `pending`; `owners`,
//! `stopped` and the takeovers' state are leaves too.

pub mod api;
mod directory;
mod inbound;
pub mod messages;
mod outbound;
mod sink;
mod takeover;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use beckon::hub::{Hub, Session as HubSession, Ticket};
use beckon::protocol::wire::ClientFrame;
use beckon::protocol::{DeviceId, InvitationId, InvitationPage, InvitationQuery, UserId};
use beckon::{Error, ErrorCode};
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::Handle;

use crate::config::RedisConfig;
use crate::handler::Answer;
use crate::session::SessionHandle;
use crate::store::redis::{history, Keys};
use crate::store::{DurableGate, RedisStore};
use crate::ServerContext;
use messages::{Message, Presence};

/// A forwarded request whose answer did not come within this is answered
/// SERVER (its owner stopped, say).
const REQUEST_PATIENCE: Duration = Duration::from_secs(30);

/// An invitation's owner learnt from a delivery is used this long (a
/// request about it comes while it rings: within its timeout).
const OWNER_KEPT: Duration = Duration::from_secs(15 * 60);
/// Owners learnt kept at most; past that the oldest go.
const OWNERS_MAX: usize = 200_000;

/// How long one lookup or claim in Redis may take before its request is
/// answered SERVER: a request its client was told failed must not run once
/// Redis answers late (after a partition heals, say).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// What this node knows of one device's latest login.
enum Device {
    /// Logged in here.
    Local { gen: u64, handle: SessionHandle },
    /// Logged in at `node` (its process `epoch`), mirrored into this hub.
    Remote {
        gen: u64,
        node: String,
        epoch: i64,
        session: Arc<HubSession>,
    },
}

impl Device {
    fn gen(&self) -> u64 {
        match self {
            Device::Local { gen, .. } | Device::Remote { gen, .. } => *gen,
        }
    }
}

/// A request forwarded to another node, waiting for its answer: all of it,
/// to send it again to whoever takes over if that node stops.
struct Pending {
    secret: Arc<str>,
    request_id: u64,
    since: Instant,
    node: String,
    request: Routed,
}

/// A request of the server API forwarded to `node`: dropped unanswered if
/// that node stops, so that the API asks where to send it now.
struct ApiWaiting {
    node: String,
    answered: tokio::sync::oneshot::Sender<Answer>,
}

/// A request on its way to the node that holds its invitation.
#[derive(Clone)]
struct Routed {
    user: UserId,
    device: DeviceId,
    gen: u64,
    invitation: InvitationId,
    frame: ClientFrame,
}

impl Routed {
    fn new(session: &HubSession, gen: u64, invitation: InvitationId, frame: ClientFrame) -> Routed {
        Routed {
            user: session.user.clone(),
            device: session.device.clone(),
            gen,
            invitation,
            frame,
        }
    }
}

pub struct Cluster {
    me: String,
    store: Arc<RedisStore>,
    keys: Keys,
    client: redis::Client,
    /// Writes and lookups (the readers have connections of their own).
    conn: ConnectionManager,
    hub: Arc<Hub>,
    gate: DurableGate,
    ctx: Weak<ServerContext>,
    grace: Duration,
    lease: Duration,
    runtime: Handle,
    next_key: AtomicU64,
    devices: Mutex<HashMap<(UserId, DeviceId), Device>>,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Requests of the server API forwarded to another node, waiting for
    /// their answers (`api.rs`). A leaf lock.
    api_pending: Mutex<HashMap<u64, ApiWaiting>>,
    /// The node that holds an invitation, as its deliveries said: requests
    /// about it go there without a lookup in Redis. Forgotten for a node
    /// that stopped (its invitations moved).
    owners: Mutex<HashMap<InvitationId, (String, Instant)>>,
    /// Nodes found stopped and not seen running since: what they still
    /// send teaches no owner. A leaf lock.
    stopped: Mutex<std::collections::HashSet<String>>,
    /// Takeovers running here and the requests they hold (`takeover.rs`).
    takeovers: takeover::Takeovers,
    outbound: outbound::Outbound,
    directory: directory::Publisher,
}

impl Cluster {
    /// Joins the deployment: connects, mirrors the devices other nodes have,
    /// and starts reading the directory and this node's inbox.
    pub async fn start(
        ctx: &Arc<ServerContext>,
        store: &Arc<RedisStore>,
        config: &RedisConfig,
    ) -> Result<Arc<Cluster>, crate::ConfigError> {
        let client = crate::store::redis::client(config)
            .map_err(|e| crate::ConfigError(format!("cluster: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(LOOKUP_TIMEOUT))
            .set_response_timeout(Some(LOOKUP_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), manager)
            .await
            .map_err(|e| {
                crate::ConfigError(format!(
                    "cluster: cannot connect to {}: {e}",
                    crate::config::redact_url(&config.url)
                ))
            })?;
        let keys = Keys::new(&config.prefix);
        let cluster = Arc::new(Cluster {
            me: store.node().to_owned(),
            store: store.clone(),
            outbound: outbound::Outbound::new(keys.clone()),
            directory: directory::Publisher::new(keys.clone()),
            keys,
            client,
            conn,
            hub: ctx.hub.clone(),
            gate: ctx.durable.clone(),
            ctx: Arc::downgrade(ctx),
            grace: Duration::from_secs(ctx.config.grace_secs),
            lease: Duration::from_millis(config.lease_ms),
            runtime: Handle::current(),
            next_key: AtomicU64::new(1),
            devices: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            api_pending: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            stopped: Mutex::new(std::collections::HashSet::new()),
            takeovers: takeover::Takeovers::default(),
        });
        let from = directory::snapshot(&cluster).await?;
        inbound::start(&cluster).await?;
        directory::start_reader(&cluster, from);
        cluster.directory.start(&cluster);
        watch::start(&cluster);
        tracing::info!(node = %cluster.me, "cluster: joined");
        Ok(cluster)
    }

    pub fn node(&self) -> &str {
        &self.me
    }

    /// The next login generation (taken before a login, so that a later
    /// login of the same device has a higher one, whichever node it is on).
    pub async fn next_gen(&self) -> Result<u64, Error> {
        let mut conn = self.conn.clone();
        redis::cmd("INCR")
            .arg(self.keys.gens())
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::new(ErrorCode::Server, format!("cluster: {e}")))
    }

    /// A device logged in here (after `Hub::login`).
    pub fn logged_in(&self, handle: &SessionHandle, gen: u64) {
        let key = (handle.user.clone(), handle.device.clone());
        self.devices.lock().insert(
            key,
            Device::Local {
                gen,
                handle: handle.clone(),
            },
        );
        self.directory.publish(Presence::Login {
            user: handle.user.clone(),
            device: handle.device.clone(),
            node: self.me.clone(),
            epoch: self.store.epoch(),
            gen,
        });
    }

    /// A device's session here ended (logged out, kicked, abandoned).
    pub fn logged_out(&self, user: &UserId, device: &DeviceId, gen: u64) {
        let key = (user.clone(), device.clone());
        {
            let mut devices = self.devices.lock();
            match devices.get(&key) {
                Some(Device::Local { gen: known, .. }) if *known == gen => {
                    devices.remove(&key);
                }
                // A newer login (here or elsewhere) took its place.
                _ => return,
            }
        }
        self.directory.publish(Presence::Logout {
            user: user.clone(),
            device: device.clone(),
            node: self.me.clone(),
            epoch: self.store.epoch(),
            gen,
        });
    }

    /// The invitation a request is about, when it may run on another node.
    pub fn invitation_of(frame: &ClientFrame) -> Option<&InvitationId> {
        match frame {
            ClientFrame::Accept { answer, .. } | ClientFrame::Refuse { answer, .. } => {
                Some(&answer.invitation_id)
            }
            ClientFrame::Cancel { request, .. } => Some(&request.invitation_id),
            ClientFrame::Receipt { invitation_id } => Some(invitation_id),
            _ => None,
        }
    }

    /// Runs `frame` (request `request_id` of the session `secret`, a device
    /// logged in here) where its invitation is: its answer comes back to the
    /// session as mail. `id` is the invitation, which this hub does not
    /// hold. When no node holds it (or this one took it over meanwhile),
    /// the session runs it itself.
    pub fn forward(
        self: &Arc<Self>,
        secret: Arc<str>,
        request_id: u64,
        session: &HubSession,
        gen: u64,
        id: InvitationId,
        frame: ClientFrame,
    ) {
        self.route(secret, request_id, Routed::new(session, gen, id, frame));
    }

    /// Sends `request` to the node that owns its invitation (as its
    /// deliveries named it, else as Redis says), or back to the session to
    /// run here.
    fn route(self: &Arc<Self>, secret: Arc<str>, request_id: u64, request: Routed) {
        if let Some(owner) = self.known_owner(&request.invitation) {
            if !self.stopping() {
                return self.send_request(owner, secret, request_id, request);
            }
        }
        let this = self.clone();
        self.runtime.spawn(async move {
            match this.stored_owner(&request.invitation).await {
                Ok(Some(owner)) if owner != this.me => {
                    this.send_request(owner, secret, request_id, request)
                }
                Ok(_) => this.run_here(secret, request_id, request),
                Err(why) => this.answer_error(&secret, request_id, &why),
            }
        });
    }

    /// A page of `user`'s history, read from Redis, where every node's hub
    /// hands the invitations that end on it (store/redis/history.rs).
    pub async fn history_page(
        &self,
        user: &UserId,
        query: &InvitationQuery,
    ) -> beckon::Result<InvitationPage> {
        let limit = query.validate()?;
        if self.hub.config().history_per_user == 0 {
            return Ok(InvitationPage::default());
        }
        let mut conn = self.conn.clone();
        let cutoff_ms = self.hub.history_cutoff_ms();
        let read = history::page(&mut conn, &self.keys, user, query, limit, cutoff_ms);
        tokio::time::timeout(LOOKUP_TIMEOUT, read)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorCode::Server,
                    format!(
                        "history: the server's store did not answer within {} ms",
                        LOOKUP_TIMEOUT.as_millis()
                    ),
                ))
            })
    }

    /// Answers a device's history query (request `request_id` of the
    /// session `secret`) from Redis.
    pub fn query_history(
        self: &Arc<Self>,
        secret: Arc<str>,
        request_id: u64,
        user: UserId,
        query: InvitationQuery,
    ) {
        let this = self.clone();
        self.runtime.spawn(async move {
            let started = Instant::now();
            let answer = Answer::of(this.history_page(&user, &query).await);
            if let Some(ctx) = this.ctx.upgrade() {
                ctx.metrics
                    .observe("query_invitations", started.elapsed(), answer.failed);
            }
            if let Some(handle) = this.session(&secret) {
                handle.answer(request_id, answer);
            }
        });
    }

    /// The node that holds `id`, as Redis says (none: nobody holds it).
    async fn stored_owner(&self, id: &InvitationId) -> Result<Option<String>, String> {
        let mut conn = self.conn.clone();
        let mut lookup = redis::cmd("HGET");
        lookup.arg(self.keys.invitation(id)).arg("o");
        self.within_lease(lookup.query_async::<Option<String>>(&mut conn))
            .await
    }

    /// Claims `id` (an idempotent send's) for this node; returns its owner:
    /// this node, or the node that claimed it first.
    async fn claim(&self, id: &InvitationId) -> Result<String, String> {
        let mut conn = self.conn.clone();
        let script = crate::store::redis::claim_id();
        let mut claim = script.prepare_invoke();
        claim
            .key(self.keys.invitation(id))
            .key(self.keys.owned(&self.me))
            .key(self.keys.lease(&self.me))
            .arg(&self.me)
            .arg(id.as_str())
            .arg(self.store.epoch());
        self.within_lease(claim.invoke_async::<String>(&mut conn))
            .await
    }

    /// The result of a lookup or claim in Redis, if it came in time and
    /// this node still holds its lease (else the request must not go on).
    async fn within_lease<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        if let Some(why) = self.store.lease_lost() {
            return Err(format!("this server node is stopping ({why})"));
        }
        let result = match tokio::time::timeout(LOOKUP_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(format!("the server cannot reach its store now ({error})")),
            Err(_) => Err(format!(
                "the server's store did not answer within {} ms",
                LOOKUP_TIMEOUT.as_millis()
            )),
        };
        match self.store.lease_lost() {
            Some(why) => Err(format!("this server node is stopping ({why})")),
            None => result,
        }
    }

    /// The owner of `id` as a delivery told it, if recent.
    fn known_owner(&self, id: &InvitationId) -> Option<String> {
        let owners = self.owners.lock();
        let (owner, since) = owners.get(id)?;
        (since.elapsed() < OWNER_KEPT).then(|| owner.clone())
    }

    /// `node` sent a delivery about `id`: it holds it (unless `node` was
    /// found stopped since: a late delivery of its last process).
    fn learn_owner(&self, id: &InvitationId, node: &str) {
        if self.stopped.lock().contains(node) {
            return;
        }
        let mut owners = self.owners.lock();
        if owners.len() >= OWNERS_MAX && !owners.contains_key(id) {
            owners.retain(|_, (_, since)| since.elapsed() < OWNER_KEPT);
            if owners.len() >= OWNERS_MAX {
                owners.clear();
            }
        }
        owners.insert(id.clone(), (node.to_owned(), Instant::now()));
    }

    /// `node` runs (its lease is held).
    fn node_running(&self, node: &str) {
        self.stopped.lock().remove(node);
    }

    /// Forgets the owners learnt: those older than [`OWNER_KEPT`], and all
    /// of `stopped`'s (another node holds its invitations now).
    fn forget_owners(&self, stopped: Option<&str>) {
        self.owners.lock().retain(|_, (owner, since)| {
            since.elapsed() < OWNER_KEPT && Some(owner.as_str()) != stopped
        });
    }

    /// Requests that went to `node`, which stopped, go again to whoever
    /// holds their invitations now (the server API's, dropped here, are
    /// sent again by the API, which looks their node up again).
    fn reroute_from(self: &Arc<Self>, node: &str) {
        self.api_pending
            .lock()
            .retain(|_, waiting| waiting.node != node);
        let stranded: Vec<Pending> = {
            let mut pending = self.pending.lock();
            let keys: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.node == node)
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| pending.remove(&k))
                .collect()
        };
        for pending in stranded {
            self.route(pending.secret, pending.request_id, pending.request);
        }
    }

    /// A send with an idempotency key whose id this hub does not hold: the
    /// id is claimed for this node first; if another node has it, the send
    /// goes there (and is answered with that invitation).
    pub fn claim_then_send(
        self: &Arc<Self>,
        secret: Arc<str>,
        request_id: u64,
        session: &HubSession,
        gen: u64,
        id: InvitationId,
        frame: ClientFrame,
    ) {
        let this = self.clone();
        let request = Routed::new(session, gen, id.clone(), frame);
        self.runtime.spawn(async move {
            match this.claim(&id).await {
                Ok(owner) if owner != this.me => {
                    this.send_request(owner, secret, request_id, request)
                }
                Ok(_) => this.run_here(secret, request_id, request),
                Err(why) => this.answer_error(&secret, request_id, &why),
            }
        });
    }

    fn send_request(
        self: &Arc<Self>,
        owner: String,
        secret: Arc<str>,
        request_id: u64,
        request: Routed,
    ) {
        let key = if matches!(request.frame, ClientFrame::Receipt { .. }) {
            0
        } else {
            let key = self.next_key.fetch_add(1, Ordering::Relaxed);
            self.pending.lock().insert(
                key,
                Pending {
                    secret,
                    request_id,
                    since: Instant::now(),
                    node: owner.clone(),
                    request: request.clone(),
                },
            );
            key
        };
        let Routed {
            user,
            device,
            gen,
            frame,
            ..
        } = request;
        let message = Message::Request {
            from: self.me.clone(),
            epoch: self.store.epoch(),
            key,
            user,
            device,
            gen,
            frame,
        };
        self.outbound.send(self, &owner, message, 0);
    }

    /// Runs a request of a device logged in here on this node's hub (once
    /// the takeovers running here end, if it is about an invitation the hub
    /// does not hold yet).
    fn run_here(self: &Arc<Self>, secret: Arc<str>, request_id: u64, request: Routed) {
        let held = takeover::Held::Local {
            secret,
            request_id,
            frame: request.frame,
        };
        self.run_unless_held(Some(&request.invitation), held);
    }

    fn run_local(&self, secret: &str, request_id: u64, frame: ClientFrame) {
        if let Some(handle) = self.session(secret) {
            handle.run_here(request_id, frame);
        }
    }

    fn answer_error(&self, secret: &str, request_id: u64, why: &str) {
        tracing::warn!(why, "cluster: a request could not be routed");
        // A receipt (id 0) has no answer: it is dropped, as the hub drops
        // one it cannot store.
        if request_id == 0 {
            return;
        }
        if let Some(handle) = self.session(secret) {
            let error = Error::new(ErrorCode::Server, format!("{why}; nothing was changed"));
            handle.answer(request_id, Answer::error(&error));
        }
    }

    /// Whether this node lost its lease: it is stopping, and sends nothing
    /// more to the other nodes.
    fn stopping(&self) -> bool {
        self.store.lease_lost().is_some()
    }

    fn session(&self, secret: &str) -> Option<SessionHandle> {
        self.ctx.upgrade()?.sessions.get(secret)
    }

    /// An answer to a request this node forwarded.
    fn answered(&self, key: u64, body: String, failed: bool) {
        let Some(pending) = self.pending.lock().remove(&key) else {
            if let Some(waiting) = self.api_pending.lock().remove(&key) {
                // The API may have stopped waiting.
                let _ = waiting.answered.send(Answer { body, failed });
            }
            return;
        };
        if let Some(handle) = self.session(&pending.secret) {
            handle.answer(pending.request_id, Answer { body, failed });
        }
    }

    /// Forwarded requests unanswered for too long are answered SERVER.
    fn expire_pending(&self) {
        let now = Instant::now();
        let expired: Vec<Pending> = {
            let mut pending = self.pending.lock();
            let keys: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| now.duration_since(p.since) > REQUEST_PATIENCE)
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| pending.remove(&k))
                .collect()
        };
        for pending in expired {
            if let Some(handle) = self.session(&pending.secret) {
                let error = Error::new(
                    ErrorCode::Server,
                    "the node that holds the invitation did not answer; try again",
                );
                handle.answer(pending.request_id, Answer::error(&error));
            }
        }
    }

    /// A message for this node's devices, or the node's hub.
    fn received(self: &Arc<Self>, message: Message) {
        match message {
            Message::Deliver {
                from,
                user,
                device,
                gen,
                push,
            } => {
                if let Some(id) = push.invitation_id() {
                    self.learn_owner(id, &from);
                }
                let handle = match self.devices.lock().get(&(user, device)) {
                    Some(Device::Local { gen: known, handle }) if *known == gen => {
                        Some(handle.clone())
                    }
                    _ => None,
                };
                if let Some(handle) = handle {
                    handle.push(push);
                }
            }
            Message::Request { .. } | Message::Api { .. } => {
                let invitation = self.invitation_asked(&message);
                self.run_unless_held(invitation.as_ref(), takeover::Held::Message(message));
            }
            Message::Answer { key, body, failed } => self.answered(key, body, failed),
        }
    }

    /// Runs a request another node sent (a device's or its server API's).
    fn run_message(self: &Arc<Self>, message: Message) {
        match message {
            Message::Request {
                from,
                epoch,
                key,
                user,
                device,
                gen,
                frame,
            } => self.run_request((from, epoch), key, user, device, gen, frame),
            Message::Api {
                from,
                epoch: _,
                key,
                request,
            } => self.run_api_request(from, key, request),
            // Never held: handled as received.
            other @ (Message::Deliver { .. } | Message::Answer { .. }) => self.received(other),
        }
    }

    /// Runs a request of a device of node `from` (with its epoch) on its
    /// remote session here.
    fn run_request(
        self: &Arc<Self>,
        (from, epoch): (String, i64),
        key: u64,
        user: UserId,
        device: DeviceId,
        gen: u64,
        frame: ClientFrame,
    ) {
        let Some(session) = self.remote_session(&from, epoch, &user, &device, gen) else {
            if key != 0 {
                let error = Error::new(
                    ErrorCode::NotPermitted,
                    format!("device_id: '{device}' of '{user}' logged in again elsewhere"),
                );
                let answer = Answer::error(&error);
                let message = Message::Answer {
                    key,
                    body: answer.body,
                    failed: true,
                };
                self.outbound.send(self, &from, message, 0);
            }
            return;
        };
        if let ClientFrame::Receipt { invitation_id } = &frame {
            self.hub.acknowledge(&session, invitation_id);
            return;
        }
        crate::handler::run(&self.hub, &session, frame, |answer| {
            let ticket = beckon::hub::frame_ticket();
            let message = Message::Answer {
                key,
                body: answer.body,
                failed: answer.failed,
            };
            self.outbound.send(self, &from, message, ticket);
        });
    }

    /// The remote session of a device of node `node` (process `epoch`) at
    /// login `gen`: the one mirrored, or a new one if the directory has not
    /// told of it yet. None when a newer login of the device is known.
    fn remote_session(
        self: &Arc<Self>,
        node: &str,
        epoch: i64,
        user: &UserId,
        device: &DeviceId,
        gen: u64,
    ) -> Option<Arc<HubSession>> {
        let mut devices = self.devices.lock();
        let key = (user.clone(), device.clone());
        match devices.get(&key) {
            Some(Device::Remote {
                gen: known,
                session,
                ..
            }) if *known == gen => return Some(session.clone()),
            Some(known) if known.gen() > gen => return None,
            _ => {}
        }
        let session = self.mirror(node, user, device, gen);
        devices.insert(
            key,
            Device::Remote {
                gen,
                node: node.to_owned(),
                epoch,
                session: session.clone(),
            },
        );
        Some(session)
    }

    /// Logs a device of `node` in to this hub (the caller holds `devices`).
    fn mirror(
        self: &Arc<Self>,
        node: &str,
        user: &UserId,
        device: &DeviceId,
        gen: u64,
    ) -> Arc<HubSession> {
        let sink = sink::RemoteSink::new(self, node, user, device, gen);
        self.hub
            .login_remote(user.clone(), device.clone(), Arc::new(sink))
    }

    /// Completes a snapshot taken from this node's hub: the named
    /// invitations it does not hold are read from Redis (another node holds
    /// them). Blocks on Redis (briefly, and only after a lost session).
    pub fn complete_snapshot(&self, user: &UserId, snapshot: &mut beckon::protocol::Snapshot) {
        if snapshot.unknown.is_empty() {
            return;
        }
        let store = self.store.clone();
        let ids = snapshot.unknown.clone();
        let read = tokio::task::block_in_place(|| store.records(&ids));
        let records = match read {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "cluster: a snapshot could not read other nodes' invitations");
                return;
            }
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for record in records {
            if let Some(found) = record.snapshot_for(user, now_ms) {
                snapshot.unknown.retain(|id| id != &found.invitation_id);
                // Open ones first, as the hub lists them.
                if found.ended {
                    snapshot.invitations.push(found);
                } else {
                    snapshot.invitations.insert(0, found);
                }
            }
        }
    }

    /// The id of `stream`'s last entry ("0-0" when empty): reading from
    /// there gets what comes after.
    async fn stream_end(&self, stream: &str) -> redis::RedisResult<String> {
        let mut conn = self.conn.clone();
        let last: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(last
            .first()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id.clone()))
    }

    /// The durable gate frames wait on (the outbound queues use it).
    fn gate(&self) -> &DurableGate {
        &self.gate
    }

    /// Waits until everything up to `ticket` is durable.
    async fn durable(&self, ticket: Ticket) {
        self.gate().wait(ticket).await;
    }
}
