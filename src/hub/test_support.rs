//! What the hub's unit tests share: a store that keeps its records in
//! memory (and can hand them to a second hub, as after a restart), a session
//! sink that keeps what it gets, and short names.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Result;
use crate::hub::{Change, InvitationRecord, PushTargetRecord, Recovered, Store, Ticket};
use crate::protocol::{
    DeviceId, InvitationId, InvitationSummary, Push, PushTarget, SessionSink, UserId,
};

/// A store that keeps the latest record of each invitation in memory and
/// logs every change in order; "durable" at once.
#[derive(Default)]
pub struct Recording {
    pub kept: Mutex<HashMap<InvitationId, InvitationRecord>>,
    pub targets: Mutex<HashMap<(UserId, DeviceId), PushTarget>>,
    pub log: Mutex<Vec<Change>>,
    pub history: Mutex<Vec<InvitationSummary>>,
    pub id_key: [u8; 32],
    /// Handed to the next hub that starts on this store.
    pub pending: Mutex<Option<Recovered>>,
}

impl Recording {
    /// A store for a second hub, holding what `self` kept.
    pub fn restarted(&self) -> Arc<Recording> {
        let invitations = self.kept.lock().values().cloned().collect();
        let push_targets = self
            .targets
            .lock()
            .iter()
            .map(|((user, device), target)| PushTargetRecord {
                user: user.clone(),
                device: device.clone(),
                target: target.clone(),
            })
            .collect();
        Arc::new(Recording {
            history: Mutex::new(self.history.lock().clone()),
            kept: Mutex::new(self.kept.lock().clone()),
            targets: Mutex::new(self.targets.lock().clone()),
            id_key: self.id_key,
            pending: Mutex::new(Some(Recovered {
                id_key: self.id_key,
                invitations,
                push_targets,
            })),
            ..Recording::default()
        })
    }
}

impl Store for Recording {
    fn keeps_records(&self) -> bool {
        true
    }
    fn recover(&self) -> Result<Recovered> {
        Ok(self.pending.lock().take().unwrap_or(Recovered {
            id_key: self.id_key,
            invitations: Vec::new(),
            push_targets: Vec::new(),
        }))
    }
    fn submit(&self, change: Change) -> Ticket {
        match &change {
            Change::Put(record) => {
                self.kept.lock().insert(record.id.clone(), record.clone());
            }
            Change::Forget { id, .. } => {
                self.kept.lock().remove(id);
            }
            Change::PushTarget {
                user,
                device,
                target,
            } => {
                let key = (user.clone(), device.clone());
                match target {
                    Some(target) => self.targets.lock().insert(key, target.clone()),
                    None => self.targets.lock().remove(&key),
                };
            }
            Change::History(summary) => self.history.lock().push(summary.clone()),
            Change::ForgetHistory { before_ms } => {
                self.history.lock().retain(|s| s.created_ms >= *before_ms)
            }
        }
        let mut log = self.log.lock();
        log.push(change);
        log.len() as Ticket
    }
    fn durable(&self) -> Ticket {
        self.log.lock().len() as Ticket
    }
    fn check_writable(&self) -> Result<()> {
        Ok(())
    }
    fn keeps_history(&self) -> bool {
        true
    }
    fn recover_history(&self, since_ms: u64, _per_user: usize) -> Result<Vec<InvitationSummary>> {
        let mut kept = self.history.lock().clone();
        kept.retain(|s| s.created_ms >= since_ms);
        kept.sort_by_key(|s| s.position());
        Ok(kept)
    }
}

#[derive(Default)]
pub struct Inbox(pub Mutex<Vec<Push>>);
impl SessionSink for Inbox {
    fn deliver(&self, push: Push) {
        self.0.lock().push(push);
    }
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name, "u").unwrap()
}

pub fn device() -> DeviceId {
    DeviceId::parse("d", "d").unwrap()
}
