//! Library logging: every notable step is reported with a level, the tag
//! `signaling` (as the SDKs Beckon replaces do), a sub-tag naming the layer, and a
//! message. Nothing is printed unless the application installs a sink
//! (`beckon_set_log_handler` from C). A disabled level costs one atomic load.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex, RwLock};

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

/// How records reach the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Delivery {
    /// On the thread that logs, at once, possibly while the library holds
    /// internal locks: the sink must be quick and must not call the library.
    #[default]
    Direct,
    /// Queued, and delivered in order by one library thread ("beckon-log")
    /// that holds no lock of the library's: the sink may take its time and
    /// call the library (a language runtime's callback, say). At most
    /// `MAX_QUEUED` records wait; beyond that they are dropped and counted,
    /// and a WARN record tells how many once the queue has room.
    Queued,
}

/// The most records waiting for a queued sink.
const MAX_QUEUED: usize = 10_000;

static MAX_LEVEL: AtomicI32 = AtomicI32::new(0);
static SINK: Lazy<RwLock<Option<Arc<Installed>>>> = Lazy::new(|| RwLock::new(None));

/// A sink as installed, with what replacing it waits for.
struct Installed {
    sink: LogSink,
    delivery: Delivery,
    state: Mutex<CallState>,
    idle: Condvar,
}

#[derive(Default)]
struct CallState {
    /// Calls of the sink running now, on any thread.
    running: usize,
    /// Replaced: not called again.
    retired: bool,
}

thread_local! {
    /// The sink this thread is calling, and how deeply (a sink may log).
    static CALLING: Cell<(*const Installed, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

impl Installed {
    /// Calls the sink unless it has been replaced.
    fn call(&self, level: Level, sub_tag: &str, message: &str) {
        {
            let mut state = self.state.lock();
            if state.retired {
                return;
            }
            state.running += 1;
        }
        let me: *const Installed = self;
        let outer = CALLING.with(|c| {
            let outer = c.get();
            let depth = if outer.0 == me { outer.1 + 1 } else { 1 };
            c.set((me, depth));
            outer
        });
        // Logging must never break what it reports on: a panicking sink (a
        // Rust closure; C handlers cannot panic) is ignored.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (self.sink)(level, TAG, sub_tag, message)
        }));
        CALLING.with(|c| c.set(outer));
        let mut state = self.state.lock();
        state.running -= 1;
        if state.running == 0 {
            self.idle.notify_all();
        }
    }

    /// Stops calls of this sink and waits until none is running, except
    /// those of this very thread (a sink that replaces itself).
    fn retire(&self) {
        let me: *const Installed = self;
        let own = CALLING.with(|c| match c.get() {
            (current, depth) if current == me => depth,
            _ => 0,
        });
        let mut state = self.state.lock();
        state.retired = true;
        while state.running > own {
            self.idle.wait(&mut state);
        }
    }
}

/// Installs `sink` for levels up to `max_level`, delivered directly; `None`
/// removes logging. See `install`.
pub fn set_sink(sink: Option<LogSink>, max_level: Level) {
    install(sink, max_level, Delivery::Direct);
}

/// Installs `sink` for levels up to `max_level`, or removes logging with
/// `None`. Returns once the sink it replaces is not running and will not be
/// called again (records still queued for it are dropped), so what it uses
/// may be released; a sink that replaces itself from inside a call is not
/// waited for (the call returns to it).
pub fn install(sink: Option<LogSink>, max_level: Level, delivery: Delivery) {
    let installed = sink.map(|sink| {
        Arc::new(Installed {
            sink,
            delivery,
            state: Mutex::default(),
            idle: Condvar::new(),
        })
    });
    if delivery == Delivery::Queued && installed.is_some() {
        queue::start();
    }
    let old = {
        let mut slot = SINK.write();
        let level = if installed.is_some() {
            max_level as i32
        } else {
            0
        };
        MAX_LEVEL.store(level, Ordering::Release);
        std::mem::replace(&mut *slot, installed)
    };
    if let Some(old) = old {
        old.retire();
    }
}

#[inline]
pub(crate) fn enabled(level: Level) -> bool {
    (level as i32) <= MAX_LEVEL.load(Ordering::Relaxed)
}

pub(crate) fn emit(level: Level, sub_tag: &str, message: &str) {
    // Cloned out of the lock, so that a sink that logs or replaces the sink
    // cannot deadlock; a replaced sink is told apart by `retired`.
    let Some(installed) = SINK.read().clone() else {
        return;
    };
    match installed.delivery {
        Delivery::Direct => installed.call(level, sub_tag, message),
        Delivery::Queued => queue::push(installed, level, sub_tag, message),
    }
}

/// The queue of a `Delivery::Queued` sink and the thread that empties it.
mod queue {
    use std::collections::VecDeque;
    use std::sync::{Arc, Once};

    use once_cell::sync::Lazy;
    use parking_lot::{Condvar, Mutex};

    use super::{Installed, Level, MAX_QUEUED};

    struct Record {
        sink: Arc<Installed>,
        level: Level,
        sub_tag: String,
        message: String,
    }

    #[derive(Default)]
    struct Queue {
        records: VecDeque<Record>,
        /// Dropped since the last report, and the sink they were for.
        dropped: Option<(Arc<Installed>, u64)>,
    }

    static QUEUE: Lazy<(Mutex<Queue>, Condvar)> = Lazy::new(Default::default);
    static STARTED: Once = Once::new();

    pub(super) fn start() {
        STARTED.call_once(|| {
            // Without a thread the records would only pile up: logging is
            // best effort, so a failure to start one is not an error.
            let _ = std::thread::Builder::new()
                .name("beckon-log".into())
                .spawn(deliver);
        });
    }

    pub(super) fn push(sink: Arc<Installed>, level: Level, sub_tag: &str, message: &str) {
        let (queue, ready) = &*QUEUE;
        let mut queue = queue.lock();
        if queue.records.len() >= MAX_QUEUED {
            match &mut queue.dropped {
                Some((_, count)) => *count += 1,
                None => queue.dropped = Some((sink, 1)),
            }
            return;
        }
        queue.records.push_back(Record {
            sink,
            level,
            sub_tag: sub_tag.to_owned(),
            message: message.to_owned(),
        });
        if queue.records.len() == 1 {
            ready.notify_one();
        }
    }

    fn deliver() {
        let (queue, ready) = &*QUEUE;
        loop {
            let (record, dropped) = {
                let mut queue = queue.lock();
                while queue.records.is_empty() {
                    ready.wait(&mut queue);
                }
                let record = queue.records.pop_front();
                // Told once the queue is down to half: there is room again.
                let dropped = if queue.records.len() <= MAX_QUEUED / 2 {
                    queue.dropped.take()
                } else {
                    None
                };
                (record, dropped)
            };
            if let Some(record) = record {
                record
                    .sink
                    .call(record.level, &record.sub_tag, &record.message);
            }
            if let Some((sink, count)) = dropped.filter(|_| super::enabled(Level::Warn)) {
                let message = format!(
                    "{count} log records were dropped: the log handler is slower than logging"
                );
                sink.call(Level::Warn, "log", &message);
            }
        }
    }
}

/// `log!(Level::Info, "hub", "format {}", args)`: formats only when enabled.
macro_rules! log_formatted {
    ($level:expr, $sub_tag:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::emit($level, $sub_tag, &format!($($arg)*));
        }
    };
}

pub(crate) use log_formatted as log;
