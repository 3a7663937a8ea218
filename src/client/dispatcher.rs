//! Where a client's callbacks run: one at a time, in the order their jobs were
//! queued, on a thread the client owns (thread mode) or inside `poll` on the
//! application's thread (poll mode). Never on the thread that made the API call
//! and never on a runtime worker, so a slow callback cannot stall the network.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};

use super::pending::Call;
use super::{DispatchMode, Event};
use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;
use crate::protocol::{ConnectionReason, ConnectionState, Push, UserId};
use crate::wakes::{self, Wake};

pub(crate) enum Job {
    /// A push from the hub, tagged with the login it belongs to.
    Push {
        login_epoch: u64,
        user: UserId,
        push: Push,
    },
    /// An event the client itself raises (connection state changes).
    Event(Event),
    /// A network transport's link changed (reconnecting, reconnected, gone).
    Link {
        login_epoch: u64,
        state: ConnectionState,
        reason: ConnectionReason,
    },
    /// An operation's callback.
    Call(Box<dyn Call>),
}

/// Runs jobs; implemented by the client.
pub(crate) trait JobRunner: Send + Sync + 'static {
    fn run(&self, job: Job, shutdown: bool);
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
    /// The dispatcher thread sleeps on `ready`; only then is a wake-up needed.
    waiting: bool,
    /// Pool mode: on the pool's run queue or being run by a worker.
    scheduled: bool,
}

pub(crate) struct Dispatcher {
    mode: DispatchMode,
    queue: Mutex<Queue>,
    ready: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set when the dispatcher thread has run its last job and ended; a second
    /// `close` waits for it.
    thread_done: Mutex<bool>,
    thread_ended: Condvar,
    /// Keeps two threads polling one client from running callbacks at once.
    poll_lock: Mutex<()>,
    /// Pool mode: who runs the jobs, held until the queue is closed and empty
    /// (the client holds this dispatcher; this breaks the cycle at the end).
    runner: Mutex<Option<Arc<dyn JobRunner>>>,
    /// Pool mode: signalled when the dispatcher stops being scheduled.
    idle: Condvar,
}

thread_local! {
    /// The dispatcher whose callback is running on this thread, if any.
    static RUNNING: Cell<*const Dispatcher> = const { Cell::new(std::ptr::null()) };
}

/// Which dispatcher's callback is waiting, inside a `free`, for which other
/// dispatcher to finish (by address). A `free` that would close a cycle is
/// refused instead of hanging: two clients freeing each other from their
/// callbacks at once would each wait for the other forever.
static WAITING_FOR: Lazy<Mutex<HashMap<usize, usize>>> = Lazy::new(Mutex::default);

/// Held while a callback waits for another dispatcher (see `wait_for`).
pub(crate) struct Waiting {
    waiter: usize,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING_FOR.lock().remove(&self.waiter);
    }
}

/// True on a thread that is running a callback of any client.
pub(crate) fn in_a_callback() -> bool {
    RUNNING.with(|r| !r.get().is_null())
}

impl Dispatcher {
    /// The most a dispatcher yields, waiting for its next job, before it
    /// sleeps. Few: on a machine with more busy threads than cores each
    /// yield is a context switch, and a server that sends in bursts (a
    /// durable store releases frames at each group commit) leaves gaps no
    /// spinning bridges. 64 cost 0.2 cores more and doubled p99 at 4,000
    /// invitations/s in `beckon-bench` (benches/README.md).
    const MAX_SPINS: u32 = 4;

    pub fn new(mode: DispatchMode) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            mode,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            thread: Mutex::new(None),
            thread_done: Mutex::new(false),
            thread_ended: Condvar::new(),
            poll_lock: Mutex::new(()),
            runner: Mutex::new(None),
            idle: Condvar::new(),
        })
    }

    /// Starts the dispatcher thread (thread mode), or hands the runner to the
    /// shared pool's workers (pool mode).
    pub fn start(self: &Arc<Self>, runner: Arc<dyn JobRunner>) -> Result<()> {
        if self.mode == DispatchMode::Pool {
            *self.runner.lock() = Some(runner);
            return Ok(());
        }
        if self.mode != DispatchMode::Thread {
            return Ok(());
        }
        let dispatcher = self.clone();
        let handle = std::thread::Builder::new()
            .name("beckon-dispatch".into())
            .spawn(move || {
                dispatcher.thread_main(&*runner);
                *dispatcher.thread_done.lock() = true;
                dispatcher.thread_ended.notify_all();
            })
            .map_err(|e| Error::internal(format!("cannot start the dispatcher thread: {e}")))?;
        *self.thread.lock() = Some(handle);
        Ok(())
    }

    /// Before waiting for this dispatcher to finish (a `free`): from inside
    /// another dispatcher's callback, notes that that one waits for this one,
    /// or fails with WOULD_DEADLOCK if this one already waits, directly or
    /// through others, for that one. `None` when no callback waits (not in a
    /// callback, or in one of this dispatcher's own, which never waits).
    pub fn wait_for(&self) -> Result<Option<Waiting>> {
        let waiter = RUNNING.with(|r| r.get()) as usize;
        let me = std::ptr::from_ref(self) as usize;
        if waiter == 0 || waiter == me {
            return Ok(None);
        }
        let mut waiting = WAITING_FOR.lock();
        let mut at = me;
        // Each dispatcher waits for at most one other: the chain ends, or
        // comes back to the waiter (a cycle through it).
        for _ in 0..=waiting.len() {
            match waiting.get(&at) {
                Some(&next) if next == waiter => {
                    return Err(Error::new(
                        ErrorCode::WouldDeadlock,
                        "client: freed from another client's callback while that client is being freed from one of this client's callbacks; the two would wait for each other forever. Free it outside the callbacks",
                    ));
                }
                Some(&next) => at = next,
                None => break,
            }
        }
        waiting.insert(waiter, me);
        Ok(Some(Waiting { waiter }))
    }

    /// True on the thread that is running one of this dispatcher's callbacks.
    /// (`in_a_callback` asks the same of any dispatcher.)
    pub fn is_current(&self) -> bool {
        RUNNING.with(|r| std::ptr::eq(r.get(), self))
    }

    pub fn enqueue(self: &Arc<Self>, job: Job) {
        let mut queue = self.queue.lock();
        if queue.closed {
            drop(queue);
            if matches!(job, Job::Call(_)) {
                // Unreachable by construction: the client stops everything that
                // completes operations before it closes its dispatcher.
                crate::log!(
                    Level::Error,
                    "client",
                    "an operation completed after its client was freed; its callback is dropped"
                );
            }
            return;
        }
        queue.jobs.push_back(job);
        let wake = if self.mode == DispatchMode::Pool {
            !std::mem::replace(&mut queue.scheduled, true)
        } else {
            queue.waiting
        };
        drop(queue);
        if wake && !self.defer_wake() {
            self.wake_now();
        }
    }

    /// Thread and poll mode: wakes the sleeper. Pool mode: puts this client on
    /// the pool's run queue (`enqueue` marked it scheduled).
    fn wake_now(self: &Arc<Self>) {
        match self.mode {
            DispatchMode::Pool => super::pool::pool().schedule(self.clone()),
            DispatchMode::Thread | DispatchMode::Poll => {
                self.ready.notify_one();
            }
        }
    }

    /// Pool mode, on a worker: runs up to `limit` queued jobs; says whether
    /// more are waiting (then the dispatcher stays scheduled).
    pub(crate) fn run_batch(&self, limit: usize) -> bool {
        let runner = self.runner.lock().clone();
        for _ in 0..limit {
            let next = {
                let mut queue = self.queue.lock();
                match queue.jobs.pop_front() {
                    Some(job) => (job, queue.closed),
                    None => {
                        self.unschedule(queue);
                        return false;
                    }
                }
            };
            let (job, shutdown) = next;
            match &runner {
                Some(runner) => self.run_one(&**runner, job, shutdown),
                // Unreachable: the runner goes only once the queue is closed
                // and empty, and a closed queue takes no jobs.
                None => drop(job),
            }
        }
        let queue = self.queue.lock();
        if queue.jobs.is_empty() {
            self.unschedule(queue);
            false
        } else {
            true
        }
    }

    fn unschedule(&self, mut queue: parking_lot::MutexGuard<'_, Queue>) {
        queue.scheduled = false;
        let finished = queue.closed;
        drop(queue);
        if finished {
            self.runner.lock().take();
        }
        self.idle.notify_all();
    }

    /// Inside `wakes::with_deferred_wakes`, notes this dispatcher for waking later.
    fn defer_wake(self: &Arc<Self>) -> bool {
        let target: Arc<dyn Wake> = self.clone();
        wakes::defer(&target)
    }

    fn thread_main(&self, runner: &dyn JobRunner) {
        // Under load the next job is usually a few microseconds away: yielding
        // a little first saves a sleep and a wake-up, the dearest part of a
        // hand-over between threads. A dispatcher whose jobs come rarely would
        // only burn CPU so: the budget doubles each time a yield found a job
        // and halves each time the dispatcher had to sleep anyway, so an idle
        // client's thread goes straight to sleep.
        let mut budget = 0u32;
        loop {
            let (job, shutdown) = {
                let mut queue = self.queue.lock();
                let mut spins = 0;
                loop {
                    if let Some(job) = queue.jobs.pop_front() {
                        if spins > 0 {
                            budget = (budget * 2).clamp(1, Self::MAX_SPINS);
                        }
                        break (job, queue.closed);
                    }
                    if queue.closed {
                        return;
                    }
                    if spins < budget {
                        spins += 1;
                        drop(queue);
                        std::thread::yield_now();
                        queue = self.queue.lock();
                        continue;
                    }
                    // Nothing came while yielding (or no budget): sleep, and
                    // yield less next time, or try again once after a sleep.
                    budget = if spins > 0 { budget / 2 } else { 1 };
                    queue.waiting = true;
                    self.ready.wait(&mut queue);
                    queue.waiting = false;
                }
            };
            self.run_one(runner, job, shutdown);
        }
    }

    fn run_one(&self, runner: &dyn JobRunner, job: Job, shutdown: bool) {
        let previous = RUNNING.with(|r| r.replace(self));
        let outcome = catch_unwind(AssertUnwindSafe(|| runner.run(job, shutdown)));
        RUNNING.with(|r| r.set(previous));
        if outcome.is_err() {
            crate::log!(
                Level::Error,
                "client",
                "a callback or event handler panicked; the dispatcher goes on"
            );
        }
    }

    fn pop(&self) -> Option<(Job, bool)> {
        let mut queue = self.queue.lock();
        let closed = queue.closed;
        queue.jobs.pop_front().map(|job| (job, closed))
    }

    /// Poll mode: waits up to `timeout` for work, then runs the callbacks queued
    /// at that moment (not those they queue in turn). Returns how many ran.
    pub fn poll(&self, runner: &dyn JobRunner, timeout: Duration) -> Result<usize> {
        if self.mode != DispatchMode::Poll {
            return Err(Error::invalid(
                "client: poll is only for clients created in poll mode",
            ));
        }
        if self.is_current() {
            return Err(Error::invalid(
                "client: poll was called from inside one of this client's callbacks",
            ));
        }
        let _polling = self.poll_lock.lock();
        let deadline = Instant::now() + timeout;
        let available = {
            let mut queue = self.queue.lock();
            while queue.jobs.is_empty() && !queue.closed {
                queue.waiting = true;
                let timed_out = self.ready.wait_until(&mut queue, deadline).timed_out();
                queue.waiting = false;
                if timed_out {
                    break;
                }
            }
            queue.jobs.len()
        };
        let mut ran = 0;
        while ran < available {
            let Some((job, shutdown)) = self.pop() else {
                break;
            };
            self.run_one(runner, job, shutdown);
            ran += 1;
        }
        Ok(ran)
    }

    /// Closes the queue: every job still queued runs in shutdown mode (calls get
    /// SHUTDOWN, events are dropped), and when this returns no callback of this
    /// dispatcher is running or will run, except the one this is called from.
    /// Idempotent: a second call (from another thread, or nested) also returns
    /// only once that holds.
    pub fn close(self: &Arc<Self>, runner: &dyn JobRunner) {
        {
            let mut queue = self.queue.lock();
            queue.closed = true;
        }
        self.ready.notify_all();
        if self.is_current() {
            // Called from one of our own callbacks: finish the queue here; the
            // thread (if any) ends once that callback returns.
            self.drain(runner);
            return;
        }
        match self.mode {
            DispatchMode::Thread => {
                let handle = self.thread.lock().take();
                match handle {
                    Some(handle) => {
                        if handle.join().is_err() {
                            crate::log!(Level::Error, "client", "the dispatcher thread panicked");
                        }
                    }
                    None => {
                        // Another close took the handle: wait for the thread.
                        let mut done = self.thread_done.lock();
                        while !*done {
                            self.thread_ended.wait(&mut done);
                        }
                    }
                }
            }
            DispatchMode::Poll => {
                let _polling = self.poll_lock.lock();
                self.drain(runner);
            }
            DispatchMode::Pool => {
                // A worker runs what is queued (with SHUTDOWN); wait until no
                // worker has this client any more.
                let schedule = {
                    let mut queue = self.queue.lock();
                    !queue.jobs.is_empty() && !std::mem::replace(&mut queue.scheduled, true)
                };
                if schedule {
                    super::pool::pool().schedule(self.clone());
                }
                super::pool::pool().blocking(|| {
                    let mut queue = self.queue.lock();
                    while queue.scheduled {
                        self.idle.wait(&mut queue);
                    }
                });
                self.runner.lock().take();
            }
        }
    }

    fn drain(&self, runner: &dyn JobRunner) {
        while let Some((job, _)) = self.pop() {
            self.run_one(runner, job, true);
        }
    }
}

impl Wake for Dispatcher {
    fn wake_now(self: Arc<Self>) {
        Dispatcher::wake_now(&self);
    }
}
