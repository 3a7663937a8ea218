//! Exported test hooks; only with the `test-hooks` feature (the header guards
//! them with `BECKON_TEST_HOOKS`). Never in a release build.

use crate::testing::{arm, disarm, PanicPoint};

/// The next exported call that returns an error code panics at its entry.
pub const BECKON_TEST_PANIC_ENTRY: u32 = 1;
/// The next operation panics inside the transport (its callback gets INTERNAL).
pub const BECKON_TEST_PANIC_TRANSPORT: u32 = 2;
/// The next event panics inside the dispatcher (dropped; the dispatcher goes on).
pub const BECKON_TEST_PANIC_DISPATCH: u32 = 3;

/// Arms one forced panic at `point` (0 disarms).
#[no_mangle]
pub extern "C" fn beckon_test_force_panic(point: u32) {
    match point {
        BECKON_TEST_PANIC_ENTRY => arm(PanicPoint::Entry),
        BECKON_TEST_PANIC_TRANSPORT => arm(PanicPoint::Transport),
        BECKON_TEST_PANIC_DISPATCH => arm(PanicPoint::Dispatch),
        _ => disarm(),
    }
}
