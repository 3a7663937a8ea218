//! The queue between the hub and a store's one writer thread (SQLite's
//! `writer.rs`, Redis's `redis/writer.rs`). Changes queue up while the
//! writer commits; it then takes them all and commits them together (a group
//! commit), so a busy server pays one commit for many requests. Only the
//! latest change of an invitation in a batch is written: records are whole,
//! so the newer one says everything.
//!
//! A record is encoded when it is queued, on the thread that made it, into a
//! buffer the writer hands back after the commit: no record crosses threads
//! to be freed (glibc's allocator pays dearly for frees of another thread's
//! memory), and a busy server allocates nothing per change here.
//!
//! A batch that fails (disk full, an I/O error) goes back into the queue under
//! the changes made since, and is tried again with a growing pause; meanwhile
//! the store reports itself unwritable, so the hub refuses requests that would
//! change anything. Nothing that waits for a failed batch leaves the server.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon::hub::{Change, Ticket};
use beckon::protocol::{DeviceId, InvitationId, UserId};
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::sqlite::StoreMetrics;

/// Pause after a failed batch, growing to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// A batch smaller than this is taken only once its oldest change has
/// waited [`LINGER`]: a commit costs about as much for one change as for
/// dozens, and a busy server would otherwise commit (and wake its
/// connections) for every few. Changes that queued while the writer
/// committed have waited already, so a busy writer commits back to back.
const LINGER_BELOW: usize = 64;
const LINGER: Duration = Duration::from_micros(200);

/// Encoding buffers kept for reuse, at most this many of at most
/// [`KEPT_BUFFER_BYTES`] each.
const KEPT_BUFFERS: usize = 8192;
const KEPT_BUFFER_BYTES: usize = 16 * 1024;

/// A change as a writer writes it.
pub(super) enum Write {
    /// An invitation's record (the columns, and the whole record encoded).
    Put {
        version: u64,
        inviter: UserId,
        deadline_ms: u64,
        ended_ms: Option<u64>,
        encoded: Vec<u8>,
    },
    Forget,
    /// A record that could not be encoded (a bug): its batch fails, loudly.
    Unencodable(String),
}

/// A push target encoded (`Some`) or forgotten (`None`), or why it could
/// not be encoded.
pub(super) type TargetWrite = Result<Option<Vec<u8>>, String>;

/// An ended invitation for history, or why it could not be encoded.
pub(super) type HistoryWrite = Result<HistoryEntry, String>;

/// An ended invitation as a store keeps it for history.
pub(super) struct HistoryEntry {
    /// When it was sent (Unix milliseconds).
    pub created_ms: u64,
    pub id: InvitationId,
    /// Each participant once, with its part: `s` sent, `r` received, `b`
    /// both (the Redis store lists it under each).
    pub parts: Vec<(UserId, u8)>,
    /// The summary (postcard).
    pub encoded: Vec<u8>,
}

/// Changes taken together: the newest of each invitation and of each
/// device's push target (encoded, or `None` to forget it), with its ticket;
/// the invitations that ended, for history, and how far back history is
/// past its keeping.
#[derive(Default)]
pub(super) struct Batch {
    pub invitations: HashMap<InvitationId, (Ticket, Write)>,
    pub targets: HashMap<(UserId, DeviceId), (Ticket, TargetWrite)>,
    pub history: Vec<HistoryWrite>,
    pub forget_history_before: Option<u64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.invitations.len() + self.targets.len() + self.history.len()
    }

    fn is_empty(&self) -> bool {
        self.invitations.is_empty()
            && self.targets.is_empty()
            && self.history.is_empty()
            && self.forget_history_before.is_none()
    }
}

#[derive(Default)]
pub(super) struct Queue {
    /// The last ticket handed out.
    last: Ticket,
    /// The newest change of each invitation (and push target) not yet taken
    /// by the writer.
    changes: Batch,
    stopping: bool,
    /// The writer waits for work: a change must wake it.
    idle: bool,
    /// When the oldest change of `changes` was queued.
    oldest: Option<Instant>,
    /// Empty buffers to encode records into.
    buffers: Vec<Vec<u8>>,
}

impl Queue {
    fn keep(&mut self, write: Write) {
        if let Write::Put { mut encoded, .. } = write {
            if self.buffers.len() < KEPT_BUFFERS && encoded.capacity() <= KEPT_BUFFER_BYTES {
                encoded.clear();
                self.buffers.push(encoded);
            }
        }
    }
}

/// What the store and its writer share.
pub(super) struct Shared {
    pub queue: Mutex<Queue>,
    pub wake: Condvar,
    /// The highest ticket committed (with everything before it).
    pub durable: watch::Sender<Ticket>,
    /// The same, for readers that do not wait.
    pub last_durable: Arc<AtomicU64>,
    /// Why writing fails, while it does.
    pub failure: Mutex<Option<String>>,
    pub failing: AtomicBool,
    pub metrics: StoreMetrics,
    /// What the writer writes to (a file, a Redis URL without its
    /// password), for messages.
    pub target: String,
}

impl Shared {
    pub fn new(metrics: StoreMetrics, target: String) -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable: watch::channel(0).0,
            last_durable: Arc::new(AtomicU64::new(0)),
            failure: Mutex::new(None),
            failing: AtomicBool::new(false),
            metrics,
            target,
        }
    }

    /// Fails (SERVER, with the cause) while the writer cannot write.
    pub fn check_writable(&self) -> beckon::Result<()> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        let cause = self
            .failure
            .lock()
            .clone()
            .unwrap_or_else(|| "it cannot write".into());
        Err(beckon::Error::new(
            beckon::ErrorCode::Server,
            format!("the server cannot store changes now ({cause}); nothing was changed"),
        ))
    }

    /// Queues `change`; returns its ticket.
    pub fn submit(&self, change: Change) -> Ticket {
        // A summary for history is encoded before the queue is locked: the
        // hub's threads queue changes all the time.
        let history = match &change {
            Change::History(summary) => Some(encode_summary(summary)),
            _ => None,
        };
        let mut queue = self.queue.lock();
        let (id, write) = match change {
            Change::Put(record) => {
                let mut encoded = queue.buffers.pop().unwrap_or_default();
                let write = match super::codec::encode(&record, &mut encoded) {
                    Ok(()) => Write::Put {
                        version: record.version,
                        inviter: record.inviter.clone(),
                        deadline_ms: record.deadline_ms,
                        ended_ms: record.ended_ms,
                        encoded,
                    },
                    Err(why) => Write::Unencodable(format!("invitation {}: {why}", record.id)),
                };
                (record.id, write)
            }
            Change::Forget { id, .. } => (id, Write::Forget),
            Change::History(summary) => {
                let write = history.unwrap_or_else(|| encode_summary(&summary));
                queue.changes.history.push(write);
                queue.last += 1;
                let ticket = queue.last;
                return self.queued(queue, ticket);
            }
            Change::ForgetHistory { before_ms } => {
                let before = queue.changes.forget_history_before.unwrap_or(0);
                queue.changes.forget_history_before = Some(before.max(before_ms));
                queue.last += 1;
                let ticket = queue.last;
                return self.queued(queue, ticket);
            }
            Change::PushTarget {
                user,
                device,
                target,
            } => {
                let encoded = match target {
                    Some(target) => postcard::to_allocvec(&target)
                        .map(Some)
                        .map_err(|e| format!("push target of {user}/{device}: {e}")),
                    None => Ok(None),
                };
                queue.last += 1;
                let ticket = queue.last;
                queue
                    .changes
                    .targets
                    .insert((user, device), (ticket, encoded));
                return self.queued(queue, ticket);
            }
        };
        queue.last += 1;
        let ticket = queue.last;
        if let Some((_, replaced)) = queue.changes.invitations.insert(id, (ticket, write)) {
            queue.keep(replaced);
        }
        self.queued(queue, ticket)
    }

    /// Wakes the writer if it waits for work.
    fn queued(&self, mut queue: parking_lot::MutexGuard<'_, Queue>, ticket: Ticket) -> Ticket {
        queue.oldest.get_or_insert_with(Instant::now);
        let idle = std::mem::take(&mut queue.idle);
        drop(queue);
        if idle {
            self.wake.notify_one();
        }
        ticket
    }

    /// Lets the writer finish what is queued and stop.
    pub fn stop(&self) {
        self.queue.lock().stopping = true;
        self.wake.notify_one();
    }

    /// The next batch, and the last ticket in it; `None` once stopping with
    /// nothing left. `spare`, an empty map, takes the batch's place in the
    /// queue (so the queue keeps the capacity it grew to).
    fn next_batch(&self, spare: Batch) -> Option<(Batch, Ticket)> {
        debug_assert!(spare.is_empty());
        let mut queue = self.queue.lock();
        while queue.changes.is_empty() && !queue.stopping {
            queue.idle = true;
            self.wake.wait(&mut queue);
        }
        queue.idle = false;
        if queue.changes.is_empty() {
            return None; // stopping, and everything is written
        }
        if queue.changes.len() < LINGER_BELOW && !queue.stopping {
            let waited = queue.oldest.map_or(Duration::ZERO, |at| at.elapsed());
            if let Some(rest) = LINGER.checked_sub(waited).filter(|r| !r.is_zero()) {
                drop(queue);
                std::thread::sleep(rest);
                queue = self.queue.lock();
            }
        }
        queue.oldest = None;
        Some((std::mem::replace(&mut queue.changes, spare), queue.last))
    }
}

fn encode_summary(summary: &beckon::protocol::InvitationSummary) -> HistoryWrite {
    let encoded = postcard::to_allocvec(summary)
        .map_err(|e| format!("history of {}: {e}", summary.invitation_id))?;
    let mut parts: Vec<(UserId, u8)> = Vec::with_capacity(summary.invitees.len() + 1);
    parts.push((summary.inviter.clone(), b's'));
    for invitee in &summary.invitees {
        match parts.iter_mut().find(|(user, _)| *user == invitee.user_id) {
            Some((_, part)) if *part == b's' => *part = b'b',
            Some(_) => {}
            None => parts.push((invitee.user_id.clone(), b'r')),
        }
    }
    Ok(HistoryEntry {
        created_ms: summary.created_ms,
        id: summary.invitation_id.clone(),
        parts,
        encoded,
    })
}

/// What a store's writer does with a batch.
pub(super) trait BatchWriter {
    /// Commits `batch` as a whole, or fails with the cause (then nothing of
    /// it counts, and it is tried again).
    fn write(&mut self, batch: &Batch) -> Result<(), String>;

    /// The queue is empty and stopping: the last chance to tidy up.
    fn stopped(&mut self) {}
}

/// A writer's loop, until [`Shared::stop`] and an empty queue.
pub(super) fn run(shared: &Shared, writer: &mut impl BatchWriter) {
    let mut pause = FIRST_RETRY_PAUSE;
    let mut spare = Batch::default();
    while let Some((mut batch, upto)) = shared.next_batch(std::mem::take(&mut spare)) {
        let started = Instant::now();
        match writer.write(&batch) {
            Ok(()) => {
                shared.metrics.observe_batch(started.elapsed(), batch.len());
                // The atomic first: a waiter woken by the watch reads it.
                shared.last_durable.store(upto, Ordering::Release);
                shared.durable.send_replace(upto);
                if shared.failing.swap(false, Ordering::AcqRel) {
                    *shared.failure.lock() = None;
                    tracing::warn!(store = %shared.target, "the store writes again");
                }
                pause = FIRST_RETRY_PAUSE;
                // The buffers go back for the next changes.
                let mut queue = shared.queue.lock();
                for (_, (_, write)) in batch.invitations.drain() {
                    queue.keep(write);
                }
                drop(queue);
                batch.targets.clear();
                batch.history.clear();
                batch.forget_history_before = None;
                spare = batch;
            }
            Err(error) => {
                shared.metrics.write_failures.inc();
                let cause = format!("writing {}: {error}", shared.target);
                if !shared.failing.swap(true, Ordering::AcqRel) {
                    tracing::error!(store = %shared.target, %error, "the store cannot write: requests that change anything are refused until it can");
                }
                *shared.failure.lock() = Some(cause);
                let stopping = {
                    let mut queue = shared.queue.lock();
                    queue.oldest.get_or_insert_with(Instant::now);
                    // Changes made meanwhile are newer: they stay.
                    for (id, change) in batch.invitations {
                        if let Entry::Vacant(entry) = queue.changes.invitations.entry(id) {
                            entry.insert(change);
                        }
                    }
                    for (key, change) in batch.targets {
                        if let Entry::Vacant(entry) = queue.changes.targets.entry(key) {
                            entry.insert(change);
                        }
                    }
                    // History only adds: the older rows go first again.
                    let newer = std::mem::take(&mut queue.changes.history);
                    queue.changes.history = batch.history;
                    queue.changes.history.extend(newer);
                    queue.changes.forget_history_before = queue
                        .changes
                        .forget_history_before
                        .max(batch.forget_history_before);
                    queue.stopping
                };
                if stopping {
                    tracing::error!(store = %shared.target, "stopping with changes that could not be written");
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
        }
    }
    writer.stopped();
}
