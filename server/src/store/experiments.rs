//! Measuring instruments for `bench/store-floor.sh`, compiled only with the
//! `experiments` feature (never in a production build). Each knob breaks a
//! promise of the store on purpose, to measure what that promise costs:
//!
//! - `BECKON_EXPERIMENT_NULL_WRITER=1`: the SQLite writer commits nothing
//!   and reports every batch durable at once. Frames still wait for their
//!   commits, so this is a store that costs nothing: what is left of the
//!   difference to `--store memory` is the cost of waiting at all.
//! - `BECKON_EXPERIMENT_UNGATED=1`: frames leave without waiting for their
//!   changes to be durable; the writer still writes everything. What is left
//!   is the cost of the writing alone.

use std::sync::OnceLock;

fn knob(name: &str, cell: &OnceLock<bool>) -> bool {
    *cell.get_or_init(|| {
        let on = std::env::var_os(name).is_some_and(|v| v == "1");
        if on {
            tracing::warn!(
                knob = name,
                "experiment: the store's durability is broken on purpose"
            );
        }
        on
    })
}

/// The writer commits nothing (see the module's text).
pub fn null_writer() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    knob("BECKON_EXPERIMENT_NULL_WRITER", &CELL)
}

/// Frames do not wait for the store (see the module's text).
pub fn ungated() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    knob("BECKON_EXPERIMENT_UNGATED", &CELL)
}
