//! Who is logged in: users, their devices (sessions) and the invitations each user
//! takes part in. Striped by user id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::shards::{hash_str, Shards};
use crate::protocol::{DeviceId, IdHashBuilder, InvitationId, Push, SessionSink, UserId};

pub type SessionId = u64;

/// One logged-in device.
pub struct Session {
    pub id: SessionId,
    pub user: UserId,
    pub device: DeviceId,
    sink: Arc<dyn SessionSink>,
    /// Cleared (under the user's lock) by logout and by being kicked out.
    alive: AtomicBool,
    /// Unix seconds; 0 when the hub has no secret.
    token_expiry: AtomicU64,
    /// Bumped whenever token timers are set: only the newest set may fire.
    token_timers: AtomicU64,
    synced: AtomicBool,
    /// Makes "is it live and synced? then queue" one step against `end`, so
    /// nothing is queued for a session after its logout returned.
    delivery: parking_lot::Mutex<()>,
    /// A device logged in at another node of the deployment (see
    /// `remote.rs`): its token and its timers are that node's business.
    remote: bool,
}

impl Session {
    pub(crate) fn new(
        id: SessionId,
        user: UserId,
        device: DeviceId,
        sink: Arc<dyn SessionSink>,
        token_expiry: u64,
    ) -> Session {
        Session {
            id,
            user,
            device,
            sink,
            alive: AtomicBool::new(true),
            token_expiry: AtomicU64::new(token_expiry),
            token_timers: AtomicU64::new(0),
            synced: AtomicBool::new(false),
            delivery: parking_lot::Mutex::new(()),
            remote: false,
        }
    }

    /// A device logged in at another node, reached through `sink`.
    pub(crate) fn new_remote(
        id: SessionId,
        user: UserId,
        device: DeviceId,
        sink: Arc<dyn SessionSink>,
    ) -> Session {
        Session {
            remote: true,
            ..Session::new(id, user, device, sink, 0)
        }
    }

    /// Whether this is a device of another node (see [`Session::new_remote`]).
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Starts a new generation of token timers; returns its number.
    pub(crate) fn next_token_timers(&self) -> u64 {
        self.token_timers.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub(crate) fn token_timers(&self) -> u64 {
        self.token_timers.load(Ordering::Acquire)
    }

    /// True the first time only.
    pub(crate) fn first_sync(&self) -> bool {
        let _delivery = self.delivery.lock();
        !self.synced.swap(true, Ordering::AcqRel)
    }

    /// Whether this session has had its first sync (and so gets pushes).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn token_expiry(&self) -> u64 {
        self.token_expiry.load(Ordering::Relaxed)
    }

    pub(crate) fn set_token_expiry(&self, expiry: u64) {
        self.token_expiry.store(expiry, Ordering::Relaxed);
    }

    /// Returns whether this call ended the session.
    pub(crate) fn end(&self) -> bool {
        let _delivery = self.delivery.lock();
        self.alive.swap(false, Ordering::AcqRel)
    }

    /// Hands `push` to a live session that has synced; says whether it did.
    /// Until its first sync a session gets nothing: its client is still
    /// setting up, and the sync hands over whatever is ringing by then.
    pub(crate) fn deliver(&self, push: Push) -> bool {
        let _delivery = self.delivery.lock();
        let ready = self.is_alive() && self.synced.load(Ordering::Acquire);
        if ready {
            self.sink.deliver(push);
        }
        ready
    }

    /// For the one push a session gets after it ended (KickedOut, TokenExpired).
    pub(crate) fn deliver_final(&self, push: Push) {
        self.sink.deliver(push);
    }
}

#[derive(Default)]
pub(crate) struct UserEntry {
    pub sessions: Vec<Arc<Session>>,
    /// Invitations not yet ended that this user sent or was invited to.
    pub active: HashSet<InvitationId, IdHashBuilder>,
    /// How many of `active` this user sent: the open-invitation quota.
    pub sent_open: usize,
}

impl UserEntry {
    fn is_unused(&self) -> bool {
        self.sessions.is_empty() && self.active.is_empty() && self.sent_open == 0
    }
}

pub(crate) struct Users {
    shards: Shards<HashMap<UserId, UserEntry>>,
}

impl Users {
    pub fn new() -> Users {
        Users {
            shards: Shards::new(),
        }
    }

    /// Runs `f` on the user's entry (made if missing, dropped again when unused).
    pub fn update<R>(&self, user: &UserId, f: impl FnOnce(&mut UserEntry) -> R) -> R {
        let mut map = self.shards.lock(hash_str(user.as_str()));
        if let Some(entry) = map.get_mut(user) {
            let result = f(entry);
            if entry.is_unused() {
                map.remove(user);
            }
            return result;
        }
        let mut entry = UserEntry::default();
        let result = f(&mut entry);
        if !entry.is_unused() {
            map.insert(user.clone(), entry);
        }
        result
    }

    /// Forgets an ended invitation for this user; for its inviter (`sent`),
    /// also gives back its place in the quota. Only an id still active counts,
    /// so a repeat cannot give a place back twice.
    pub fn deactivate(&self, user: &UserId, id: &InvitationId, sent: bool) {
        let mut map = self.shards.lock(hash_str(user.as_str()));
        if let Some(entry) = map.get_mut(user) {
            if entry.active.remove(id) && sent {
                debug_assert!(entry.sent_open > 0, "'{user}' gave back more than it took");
                entry.sent_open = entry.sent_open.saturating_sub(1);
            }
            if entry.is_unused() {
                map.remove(user);
            }
        }
    }

    /// Sends `push` to every device of `user` that is logged in.
    pub fn deliver(&self, user: &UserId, push: &Push) {
        let map = self.shards.lock(hash_str(user.as_str()));
        if let Some(entry) = map.get(user) {
            for session in &entry.sessions {
                let _ = session.deliver(push.clone());
            }
        }
    }

    /// The invitations not yet ended that `user` takes part in.
    pub fn active(&self, user: &UserId) -> Vec<InvitationId> {
        let map = self.shards.lock(hash_str(user.as_str()));
        map.get(user)
            .map_or_else(Vec::new, |e| e.active.iter().cloned().collect())
    }

    pub fn open_sent(&self, user: &UserId) -> usize {
        let map = self.shards.lock(hash_str(user.as_str()));
        map.get(user).map_or(0, |e| e.sent_open)
    }

    /// The user's sessions (local and remote).
    pub fn sessions(&self, user: &UserId) -> Vec<Arc<Session>> {
        let map = self.shards.lock(hash_str(user.as_str()));
        map.get(user).map_or_else(Vec::new, |e| e.sessions.clone())
    }

    pub fn session_count(&self, user: &UserId) -> usize {
        let map = self.shards.lock(hash_str(user.as_str()));
        map.get(user).map_or(0, |e| e.sessions.len())
    }
}
