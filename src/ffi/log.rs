//! The process-wide log handler.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::{cstring, guard, UserData};
use super::error::beckon_error;
use crate::error::Error;
use crate::log::{set_sink, Level};

pub const BECKON_LOG_OFF: i32 = 0;
pub const BECKON_LOG_ERROR: i32 = 1;
pub const BECKON_LOG_WARN: i32 = 2;
pub const BECKON_LOG_INFO: i32 = 3;
pub const BECKON_LOG_DEBUG: i32 = 4;
pub const BECKON_LOG_TRACE: i32 = 5;

/// Receives one log line: level (`BECKON_LOG_*`), tag (always "signaling"),
/// sub-tag (the layer: "api", "room", "client", "hub") and message. The strings
/// are valid until it returns. It may be called from any library thread,
/// concurrently, and while the library holds internal locks: it must be
/// thread-safe and quick, and must not call any `beckon_*` function.
#[allow(non_camel_case_types)]
pub type beckon_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: i32,
        tag: *const c_char,
        sub_tag: *const c_char,
        message: *const c_char,
    ),
>;

/// Installs the process-wide log handler for levels up to `max_level`
/// (`BECKON_LOG_ERROR` to `BECKON_LOG_TRACE`); NULL `handler` or
/// `BECKON_LOG_OFF` stops logging. Without a handler the library prints nothing.
///
/// A handler being replaced may still be running on another thread when this
/// returns: keep what its `user_data` points to alive until logging has gone
/// quiet (or for the life of the process).
///
/// Memory: `handler`, if set, stays callable with `user_data` as described above.
#[no_mangle]
pub unsafe extern "C" fn beckon_set_log_handler(
    handler: beckon_log_callback,
    user_data: *mut c_void,
    max_level: i32,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_set_log_handler", || {
        if max_level == BECKON_LOG_OFF || handler.is_none() {
            if !(BECKON_LOG_OFF..=BECKON_LOG_TRACE).contains(&max_level) {
                return Err(Error::invalid(format!(
                    "max_level: {max_level} is not a BECKON_LOG_* value"
                )));
            }
            set_sink(None, Level::Error);
            return Ok(());
        }
        let level = Level::from_i32(max_level).ok_or_else(|| {
            Error::invalid(format!(
                "max_level: {max_level} is not a BECKON_LOG_* value"
            ))
        })?;
        let Some(callback) = handler else {
            return Ok(());
        };
        set_sink(
            Some(Arc::new(
                move |level: Level, tag: &str, sub_tag: &str, message: &str| {
                    let (tag, sub_tag, message) =
                        (cstring(tag), cstring(sub_tag), cstring(message));
                    // SAFETY: the application's handler; the strings outlive the call.
                    unsafe {
                        callback(
                            user_data.get(),
                            level as i32,
                            tag.as_ptr(),
                            sub_tag.as_ptr(),
                            message.as_ptr(),
                        )
                    };
                },
            )),
            level,
        );
        Ok(())
    })
}
