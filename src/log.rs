//! Library logging: every notable step is reported with a level, the tag
//! `signaling` (as the SDKs Beckon replaces do), a sub-tag naming the layer, and a
//! message. Nothing is printed unless the application installs a sink
//! (`beckon_set_log_handler` from C). A disabled level costs one atomic load.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::RwLock;

/// Log levels; the numbers are part of the C ABI.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub fn from_i32(value: i32) -> Option<Level> {
        Some(match value {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            5 => Level::Trace,
            _ => return None,
        })
    }
}

/// The tag on every line the library logs.
pub const TAG: &str = "signaling";

/// Receives (level, tag, sub-tag, message). May be called from any thread.
pub type LogSink = Arc<dyn Fn(Level, &str, &str, &str) + Send + Sync>;

static MAX_LEVEL: AtomicI32 = AtomicI32::new(0);
static SINK: Lazy<RwLock<Option<LogSink>>> = Lazy::new(|| RwLock::new(None));

/// Installs `sink` for levels up to `max_level`, or removes logging with `None`.
pub fn set_sink(sink: Option<LogSink>, max_level: Level) {
    let mut slot = SINK.write();
    let level = if sink.is_some() { max_level as i32 } else { 0 };
    *slot = sink;
    MAX_LEVEL.store(level, Ordering::Release);
}

#[inline]
pub fn enabled(level: Level) -> bool {
    (level as i32) <= MAX_LEVEL.load(Ordering::Relaxed)
}

pub fn emit(level: Level, sub_tag: &str, message: &str) {
    // Clone the sink out of the lock so that a handler that logs or replaces the
    // handler cannot deadlock.
    let sink = SINK.read().clone();
    if let Some(sink) = sink {
        // Logging must never break what it reports on: a panicking sink (a
        // Rust closure; C handlers cannot panic) is ignored.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sink(level, TAG, sub_tag, message)
        }));
    }
}

/// `log!(Level::Info, "hub", "format {}", args)`: formats only when enabled.
#[macro_export]
#[doc(hidden)]
macro_rules! log {
    ($level:expr, $sub_tag:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::emit($level, $sub_tag, &format!($($arg)*));
        }
    };
}
