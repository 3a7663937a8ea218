//! Test hooks (feature `test-hooks` only): make the library panic at a chosen
//! point, so tests can see that no panic crosses the ABI and that a panicking
//! operation still completes its callback exactly once.

use std::sync::atomic::{AtomicU32, Ordering};

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanicPoint {
    /// At the entry of the next exported function that returns an error code.
    Entry = 1,
    /// Inside the transport, while it runs the next operation.
    Transport = 2,
    /// Inside the dispatcher, just before the next event reaches the handler.
    Dispatch = 3,
}

static ARMED: AtomicU32 = AtomicU32::new(0);

pub fn arm(point: PanicPoint) {
    ARMED.store(point as u32, Ordering::SeqCst);
}

pub fn disarm() {
    ARMED.store(0, Ordering::SeqCst);
}

/// Panics (once) if `point` is armed.
pub fn maybe_panic(point: PanicPoint) {
    if ARMED
        .compare_exchange(point as u32, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        panic!("beckon test hook: forced panic at {point:?}");
    }
}

pub use crate::transport::ws::hooks::{panic_link, LinkPanic};
