//! The tokio runtime the library owns: made on first use, shared by every client
//! and memory hub of the process, never visible to callers.

use once_cell::sync::Lazy;
use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: Lazy<Runtime> = Lazy::new(|| {
    match Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("beckon-rt")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        // Without threads the library cannot work at all; there is no caller to
        // return this to, and the panic is caught at the ABI boundary.
        Err(e) => panic!("beckon: cannot start the tokio runtime: {e}"),
    }
});

pub fn handle() -> &'static Handle {
    RUNTIME.handle()
}
