//! Exported test hooks; only with the `test-hooks` feature (the header guards
//! them with `BECKON_TEST_HOOKS`). Never in a release build.

use std::ffi::c_char;
use std::sync::Arc;

use super::boundary::guard;
use super::convert::required_str;
use super::error::beckon_error;
use super::push::{beckon_push_target, push_target};
use crate::protocol::{DeviceId, UserId};
use crate::testing::{arm, disarm, PanicPoint, ScriptedOutlet};

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

/// Creates the memory hub `name` with a scripted push outlet (test builds
/// only): every provider is accepted; a push to a token starting with "bad"
/// fails with reason "BadDeviceToken" as no longer valid (the target is
/// forgotten), one starting with "fail" fails with "ServiceUnavailable",
/// any other is sent. Results are reported from another thread, as a real
/// provider's are. Since ABI 2.2.
///
/// Memory: `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn beckon_test_memory_hub_create_with_push(
    name: *const c_char,
) -> beckon_error {
    guard("beckon_test_memory_hub_create_with_push", || {
        // SAFETY: caller's contract.
        let name = unsafe { required_str(name, "name") }?;
        crate::testing::install_push_hub(name, Arc::new(ScriptedOutlet::default()))
    })
}

/// On the memory hub `name`: device `device_id` of `user_id` sets `target`,
/// then its connection drops (not a logout, which would forget the target):
/// a phone whose app was killed, reachable by push only (test builds only).
/// Since ABI 2.2.
///
/// Memory: Pointers are NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn beckon_test_offline_push_target(
    name: *const c_char,
    user_id: *const c_char,
    device_id: *const c_char,
    target: *const beckon_push_target,
) -> beckon_error {
    guard("beckon_test_offline_push_target", || {
        // SAFETY: caller's contract.
        let (name, user, device, target) = unsafe {
            (
                required_str(name, "name")?,
                UserId::parse(required_str(user_id, "user_id")?, "user_id")?,
                DeviceId::parse(required_str(device_id, "device_id")?, "device_id")?,
                push_target(target, "target")?,
            )
        };
        crate::testing::offline_push_target(name, user, device, target)
    })
}
