//! Gives the heap back to the system after read buffers were released.
//!
//! A connection that read a large frame gives its grown read buffer back at
//! its next heartbeat (`read_buffer`). glibc's malloc keeps such freed chunks
//! (below its mmap threshold, 128 KiB and up) inside its arenas for reuse, so
//! the process's resident memory stays at its high-water mark: measured, 5,000
//! devices that each sent one 60 KB frame held 62 KB each after every buffer
//! was released, and 5.6 KB each after a `malloc_trim(0)`. So once per
//! heartbeat interval, if any buffer was released since the last look, the
//! free pages are returned with `malloc_trim`, on a blocking thread because it
//! walks every arena. Other allocators return memory on their own: there the
//! trim is a no-op.

use std::sync::Arc;

use crate::ServerContext;

/// Runs until the server shuts down.
pub async fn trim_loop(ctx: Arc<ServerContext>) {
    let mut shutdown = ctx.shutdown_signal();
    let mut tick = tokio::time::interval(ctx.config.heartbeat());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut released_before = ctx.metrics.read_buffers_released.get();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let released = ctx.metrics.read_buffers_released.get();
        if released == released_before {
            continue;
        }
        released_before = released;
        ctx.metrics.heap_trims.inc();
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Returns free heap pages to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only reorganises glibc's own free lists; it is
    // thread-safe (it takes each arena's lock) and has no preconditions.
    // (Its result, whether any memory was released, is not needed.)
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
