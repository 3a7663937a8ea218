//! The hub: the invitation engine of docs/SEMANTICS.md (rules 1 to 9), with no
//! I/O. The `memory://` transport calls it in-process; `beckon-server` calls the
//! same hub from its WebSocket connections, so the semantics cannot differ.
//!
//! Concurrency: invitations are striped over shards by id, users over shards by
//! user id; there is no hub-wide lock. Lock order is always invitation shard, then
//! user shard (then push-target shard, a leaf), never the reverse, and pushes are handed to session sinks (which
//! only queue) while the invitation's shard is locked, so every device sees one
//! invitation's events in the order the hub decided them. A session's token
//! timer is armed and disarmed under its user's lock (user shard, then
//! token-timer shard); timers fire with no shard lock held.
//!
//! Files: this one holds the `Hub` and its construction; each of the others
//! one concern, most of them a part of `impl Hub`:
//! - `config.rs`: `HubConfig` and the bounds a configuration must keep;
//! - `login.rs`: login, sync and logout, and a session's end (rule 7);
//! - `send.rs`, `cancel.rs`, `answer.rs` (accept, refuse, acknowledge): the
//!   operations on invitations; `reply.rs`: how they answer, and the refusals
//!   they share; `pushes.rs`: the pushes they share; `ending.rs`: the one place
//!   an invitation ends;
//! - `timers.rs`: the timer queues and their driver; `expiry.rs`: what happens
//!   when timers fall due; `tokens.rs`: login tokens, their renewal and expiry;
//! - `snapshot.rs`, `queries.rs`: what can be read without changing anything;
//!   `history.rs`: each user's recent ended invitations;
//! - `push.rs`: the [`PushOutlet`] interface a push service implements, and
//!   `push_targets.rs`: devices' push targets and when the hub pushes
//!   (rings for offline invitees, stop pushes, the inviter's results);
//! - `observer.rs`: the [`HubObserver`] told of every invitation's changes
//!   and every device's login and logout (beckon-server's webhooks);
//! - `remote.rs`: devices logged in at another node of a deployment, and
//!   invitations taken over from a node that stopped;
//! - `store.rs`: the [`Store`] interface invitations are kept through, and
//!   `persistence.rs`: how the hub hands it every change and starts again
//!   from what it kept;
//! - `session.rs` (sessions and users), `invitation.rs`, `shards.rs`,
//!   `clock.rs`, `stats.rs`: the state those work on.

mod answer;
mod cancel;
mod clock;
mod config;
mod ending;
mod expiry;
mod history;
mod invitation;
mod login;
mod observer;
mod persistence;
mod push;
mod push_targets;
mod pushes;
mod queries;
mod remote;
mod reply;
mod send;
mod session;
mod shards;
mod snapshot;
mod stats;
mod store;
#[cfg(test)]
mod test_support;
mod timers;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, Weak};

use tokio::runtime::Handle;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::HubConfig;
pub use observer::{HubEvent, HubObserver, Observed};
pub use persistence::Recovery;
pub use push::{PushJob, PushMessage, PushOutlet, PushReporter, PushResult, PushedDevice, Ring};
pub use session::{Session, SessionId};
pub use stats::{HubStats, StatsSnapshot};
pub use store::{
    frame_ticket, Change, InvitationRecord, InviteeRecord, MemoryStore, PushTargetRecord,
    Recovered, Store, Ticket,
};

use crate::error::Result;
use crate::protocol::{IdHashBuilder, InvitationId};
use invitation::Invitation;
use push_targets::PushTargets;
use session::Users;
use shards::Shards;
use timers::{TimerQueue, TimerSignal, TokenTimers};

const SUB_TAG: &str = "hub";

#[derive(Default)]
struct InvitationShard {
    invitations: HashMap<InvitationId, Invitation, IdHashBuilder>,
    timers: TimerQueue,
}

/// Where a hub sends what leaves it besides its sessions' pushes.
#[derive(Clone, Default)]
pub struct Outlets {
    /// Rings devices that are not connected.
    pub push: Option<Arc<dyn PushOutlet>>,
    /// Told of every change (see [`HubObserver`]); also settable later
    /// with [`Hub::set_observer`].
    pub observer: Option<Arc<dyn HubObserver>>,
}

impl Outlets {
    pub fn push(push: Arc<dyn PushOutlet>) -> Outlets {
        Outlets {
            push: Some(push),
            observer: None,
        }
    }
}

pub struct Hub {
    config: HubConfig,
    clock: Arc<dyn Clock>,
    users: Users,
    invitations: Shards<InvitationShard>,
    next_session_id: AtomicU64,
    /// Key for deriving invitation ids from idempotency keys.
    id_key: [u8; 32],
    timer_signal: Arc<TimerSignal>,
    /// Token timers of sessions (hubs with a secret), striped by session id.
    token_timers: Shards<TokenTimers>,
    stats: HubStats,
    store: Arc<dyn Store>,
    /// `store.keeps_records()`, read once: a hub whose maps are the only copy
    /// builds no records.
    keeps_records: bool,
    /// `store.keeps_history()`, read once.
    keeps_history: bool,
    /// `store.serves_history()`, read once: no history in memory.
    history_in_store: bool,
    /// Devices' push targets, and the service that pushes to them (none:
    /// nobody is pushed, and no target can be set).
    push_targets: PushTargets,
    push_outlet: Option<Arc<dyn PushOutlet>>,
    /// Each user's recent ended invitations (`history.rs`).
    history: history::History,
    /// Who is told what happens (`observer.rs`), once set.
    observer: OnceLock<Arc<dyn HubObserver>>,
    /// This hub, for the push reporters it hands out.
    me: Weak<Hub>,
}

impl Hub {
    /// A hub on the system clock. Its timers (deadlines, retention, token
    /// expiry) are one task spawned on `runtime`, which must outlive the hub:
    /// if that runtime shuts down first, nothing times out or expires any more.
    /// The task holds the hub weakly and ends within a minute of its drop.
    ///
    /// The owner gives the spawner because only the owner knows which runtime
    /// lives as long as the hub. `beckon-server` passes the runtime it serves
    /// on, so it runs one runtime, not a second one just for hub timers. The
    /// in-process `memory://` hubs (`transport::memory`, the C ABI's
    /// `beckon_memory_hub_create`) pass the library's own
    /// (`crate::runtime::handle()`): a memory hub lives as long as the process,
    /// longer than any runtime an app may have, and an app may have none.
    pub fn new(config: HubConfig, runtime: &Handle) -> Result<Arc<Hub>> {
        let (hub, _nothing_kept) = Self::build(
            config,
            Arc::new(SystemClock),
            Arc::new(MemoryStore),
            Outlets::default(),
        )?;
        drop(runtime.spawn(timers::drive(Arc::downgrade(&hub))));
        Ok(hub)
    }

    /// A hub on the system clock that keeps its invitations in `store` and
    /// starts from what the store kept (see [`Recovery`]). Inviters of the
    /// invitations still open have `inviter_grace` to log in again before
    /// their invitations are cancelled (rule 7, as after a dropped
    /// connection). Timers run on `runtime` as with [`Hub::new`]. With a
    /// push outlet, devices that are not connected are rung through it
    /// (docs/PUSH.md); an observer is told of everything from recovery on.
    pub fn with_store(
        config: HubConfig,
        runtime: &Handle,
        store: Arc<dyn Store>,
        inviter_grace: std::time::Duration,
        outlets: Outlets,
    ) -> Result<(Arc<Hub>, Recovery)> {
        let (hub, kept) = Self::build(config, Arc::new(SystemClock), store, outlets)?;
        let recovery = hub.recover(kept, inviter_grace);
        drop(runtime.spawn(timers::drive(Arc::downgrade(&hub))));
        Ok((hub, recovery))
    }

    /// A hub on a clock the caller moves; nothing fires timers but
    /// [`Hub::advance`], so it spawns nothing and needs no runtime. For tests
    /// of deadlines and retention.
    pub fn with_manual_clock(config: HubConfig, clock: ManualClock) -> Result<Arc<Hub>> {
        Ok(Self::build(
            config,
            Arc::new(clock),
            Arc::new(MemoryStore),
            Outlets::default(),
        )?
        .0)
    }

    /// [`Hub::with_store`] on a manual clock, for tests of recovery.
    pub fn with_store_and_manual_clock(
        config: HubConfig,
        clock: ManualClock,
        store: Arc<dyn Store>,
        inviter_grace: std::time::Duration,
        outlets: Outlets,
    ) -> Result<(Arc<Hub>, Recovery)> {
        let (hub, kept) = Self::build(config, Arc::new(clock), store, outlets)?;
        let recovery = hub.recover(kept, inviter_grace);
        Ok((hub, recovery))
    }

    /// The hub, and the invitations its store kept (not yet restored).
    fn build(
        config: HubConfig,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
        outlets: Outlets,
    ) -> Result<(Arc<Hub>, Vec<InvitationRecord>)> {
        let Outlets {
            push: push_outlet,
            observer,
        } = outlets;
        config.validate()?;
        let epoch = clock.now();
        let keeps_records = store.keeps_records();
        let keeps_history = store.keeps_history();
        let history_in_store = keeps_history && store.serves_history();
        let Recovered {
            id_key,
            invitations: kept,
            push_targets,
        } = store.recover()?;
        let hub = Arc::new_cyclic(|me| Hub {
            config,
            clock,
            users: Users::new(),
            invitations: Shards::new(),
            next_session_id: AtomicU64::new(1),
            id_key,
            timer_signal: Arc::new(TimerSignal::new(epoch)),
            token_timers: Shards::new(),
            stats: HubStats::default(),
            store,
            keeps_records,
            keeps_history,
            history_in_store,
            push_targets: PushTargets::new(),
            push_outlet,
            history: history::History::new(),
            observer: observer.map(OnceLock::from).unwrap_or_default(),
            me: me.clone(),
        });
        hub.restore_push_targets(push_targets);
        let cutoff = hub.history_cutoff_ms();
        let per_user = hub.config.history_per_user;
        if per_user > 0 && !history_in_store {
            hub.restore_history(hub.store.recover_history(cutoff, per_user)?);
        }
        // What passed its keeping while the hub was down goes now, not only
        // once enough invitations have ended (also with history turned off).
        if hub.keeps_history && !history_in_store {
            hub.store
                .submit(Change::ForgetHistory { before_ms: cutoff });
        }
        Ok((hub, kept))
    }
}
