//! The dispatcher pool: a few threads shared by every client created in pool
//! mode, for processes with many clients (thousands of threads would cost more
//! than the callbacks they run). A client with work is scheduled on the pool's
//! run queue; one worker at a time runs a batch of its callbacks, in order, so
//! each client's callbacks stay serial and ordered as with a thread of its own.

use std::collections::VecDeque;
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};

use super::dispatcher::Dispatcher;
use crate::log::Level;

/// Callbacks a worker runs for one client before it lets the next client go.
pub(crate) const BATCH: usize = 64;

pub(crate) struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

struct PoolState {
    runnable: VecDeque<Arc<Dispatcher>>,
    /// Workers alive, and how many there should be: one more for each worker
    /// blocked in a `free` waiting for another client's callbacks, so the pool
    /// never runs out of threads that way.
    live: usize,
    wanted: usize,
}

static POOL: Lazy<Pool> = Lazy::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    Pool {
        state: Mutex::new(PoolState {
            runnable: VecDeque::new(),
            live: 0,
            wanted: threads,
        }),
        ready: Condvar::new(),
    }
});

thread_local! {
    static IS_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub(crate) fn pool() -> &'static Pool {
    &POOL
}

impl Pool {
    /// Puts a client with work on the run queue (the caller marked it
    /// scheduled, so it is here at most once).
    pub fn schedule(&'static self, dispatcher: Arc<Dispatcher>) {
        let mut state = self.state.lock();
        state.runnable.push_back(dispatcher);
        self.grow(&mut state);
        drop(state);
        self.ready.notify_one();
    }

    /// Called by a worker about to block on another client: adds a thread for
    /// the time it waits.
    pub fn blocking<R>(&'static self, wait: impl FnOnce() -> R) -> R {
        if !IS_WORKER.with(|w| w.get()) {
            return wait();
        }
        {
            let mut state = self.state.lock();
            state.wanted += 1;
            self.grow(&mut state);
        }
        struct Unblock(&'static Pool);
        impl Drop for Unblock {
            fn drop(&mut self) {
                self.0.state.lock().wanted -= 1;
                self.0.ready.notify_all();
            }
        }
        let _unblock = Unblock(self);
        wait()
    }

    fn grow(&'static self, state: &mut PoolState) {
        while state.live < state.wanted {
            let spawned = std::thread::Builder::new()
                .name("beckon-pool".into())
                .spawn(move || self.work());
            match spawned {
                Ok(_) => state.live += 1,
                Err(e) => {
                    crate::log!(Level::Error, "client", "cannot start a pool thread: {e}");
                    break;
                }
            }
        }
    }

    fn work(&'static self) {
        IS_WORKER.with(|w| w.set(true));
        loop {
            let dispatcher = {
                let mut state = self.state.lock();
                loop {
                    if state.live > state.wanted {
                        state.live -= 1;
                        return;
                    }
                    if let Some(dispatcher) = state.runnable.pop_front() {
                        break dispatcher;
                    }
                    self.ready.wait(&mut state);
                }
            };
            if dispatcher.run_batch(BATCH) {
                // More to do: back of the line, so one busy client cannot
                // starve the others.
                self.schedule(dispatcher);
            }
        }
    }
}
