//! Deferred wake-ups. A hub call queues jobs for clients while it holds the
//! hub's locks; waking their threads right then would have them contend for
//! those locks. Inside `with_deferred_wakes` the wake-ups wait until the call
//! returns. The in-process transport wraps hub calls in it; the client's
//! dispatchers are what gets woken. Its own module, below both, so the
//! transport does not reach up into the client for it.

use std::cell::RefCell;
use std::sync::Arc;

/// Something that can be woken later (a client's dispatcher).
pub(crate) trait Wake: Send + Sync {
    fn wake_now(self: Arc<Self>);
}

thread_local! {
    /// Inside `with_deferred_wakes`: what to wake once it ends.
    static DEFERRED: RefCell<Option<Vec<Arc<dyn Wake>>>> = const { RefCell::new(None) };
}

/// Runs `work` and only then wakes what it asked to wake (see `defer`). Nested
/// calls wake at the end of the outermost.
pub(crate) fn with_deferred_wakes<R>(work: impl FnOnce() -> R) -> R {
    let outermost = DEFERRED.with(|slot| {
        let mut slot = slot.borrow_mut();
        slot.is_none() && {
            *slot = Some(Vec::new());
            true
        }
    });
    if !outermost {
        return work();
    }
    /// Wakes what was deferred even if `work` panics.
    struct WakeOnDrop;
    impl Drop for WakeOnDrop {
        fn drop(&mut self) {
            let deferred = DEFERRED.with(|slot| slot.borrow_mut().take());
            for target in deferred.into_iter().flatten() {
                target.wake_now();
            }
        }
    }
    let _wake = WakeOnDrop;
    work()
}

/// Inside `with_deferred_wakes`, notes `target` for waking once it ends (once,
/// however often it is noted) and returns true; outside, returns false.
pub(crate) fn defer(target: &Arc<dyn Wake>) -> bool {
    DEFERRED.with(|slot| match &mut *slot.borrow_mut() {
        Some(deferred) => {
            if !deferred.iter().any(|d| Arc::ptr_eq(d, target)) {
                deferred.push(target.clone());
            }
            true
        }
        None => false,
    })
}
