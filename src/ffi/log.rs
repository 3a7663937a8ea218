//! The process-wide log handler.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use std::mem::{offset_of, size_of};

use super::boundary::{cstring, guard, UserData};
use super::convert::sized_struct;
use super::error::beckon_error;
use crate::error::{Error, Result};
use crate::log::{install, Delivery, Level, LogSink};

pub const BECKON_LOG_OFF: i32 = 0;
pub const BECKON_LOG_ERROR: i32 = 1;
pub const BECKON_LOG_WARN: i32 = 2;
pub const BECKON_LOG_INFO: i32 = 3;
pub const BECKON_LOG_DEBUG: i32 = 4;
pub const BECKON_LOG_TRACE: i32 = 5;

/// Receives one log line: level (`BECKON_LOG_*`), tag (always "signaling"),
/// sub-tag (the layer: "api", "room", "client", "hub") and message. The strings
/// are valid until it returns. Delivered directly (the default), it may be
/// called from any library thread, concurrently, and while the library holds
/// internal locks: it must be thread-safe and quick, and must not call any
/// `beckon_*` function. Queued (`BECKON_LOG_QUEUED`), it runs on one library
/// thread outside the library's locks and may call the library.
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

/// Delivery for `beckon_log_config.delivery`: the handler runs on the thread
/// that logs, at once, possibly while the library holds internal locks (as
/// `beckon_set_log_handler` installs it). It must be thread-safe and quick,
/// and must not call any `beckon_*` function.
pub const BECKON_LOG_DIRECT: u32 = 0;
/// Delivery for `beckon_log_config.delivery`: records are queued and the
/// handler runs on one library thread, one record at a time, in order,
/// outside every lock of the library: it may take its time and call
/// `beckon_*` functions (a language runtime's callback, say). At most 10,000
/// records wait; beyond that they are dropped, and a WARN record with sub-tag
/// "log" tells how many once there is room.
pub const BECKON_LOG_QUEUED: u32 = 1;

/// How to log. Extensible: set `struct_size` to `sizeof(beckon_log_config)`.
/// Since ABI 2.1.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_log_config {
    pub struct_size: u32,
    /// `BECKON_LOG_ERROR` to `BECKON_LOG_TRACE`, or `BECKON_LOG_OFF`.
    pub max_level: i32,
    /// `BECKON_LOG_DIRECT` (0) or `BECKON_LOG_QUEUED`.
    pub delivery: u32,
    /// Must be 0 (it fills what would otherwise be padding).
    pub reserved: u32,
    /// NULL stops logging.
    pub handler: beckon_log_callback,
    pub user_data: *mut c_void,
}

const LOG_CONFIG_V1: usize = offset_of!(beckon_log_config, user_data) + size_of::<*mut c_void>();

/// Installs the process-wide log handler for levels up to `max_level`
/// (`BECKON_LOG_ERROR` to `BECKON_LOG_TRACE`), delivered directly
/// (`BECKON_LOG_DIRECT`); NULL `handler` or `BECKON_LOG_OFF` stops logging.
/// Without a handler the library prints nothing. As `beckon_set_log_config`.
///
/// Memory: `handler`, if set, stays callable with `user_data` until replaced.
#[no_mangle]
pub unsafe extern "C" fn beckon_set_log_handler(
    handler: beckon_log_callback,
    user_data: *mut c_void,
    max_level: i32,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_set_log_handler", || {
        configure(handler, user_data, max_level, BECKON_LOG_DIRECT, "")
    })
}

/// Installs the process-wide log handler as `config` says: which levels, and
/// how records reach it (`BECKON_LOG_DIRECT` or `BECKON_LOG_QUEUED`). A NULL
/// handler or `BECKON_LOG_OFF` stops logging.
///
/// Returns once the handler it replaces is not running and will not be called
/// again (records still queued for it are dropped), so its `user_data` may be
/// released. Called from inside that handler, it does not wait for the call
/// it is made from. Since ABI 2.1.
///
/// Memory: `config` is NULL or valid; its handler stays callable with its
/// `user_data` until replaced.
#[no_mangle]
pub unsafe extern "C" fn beckon_set_log_config(config: *const beckon_log_config) -> beckon_error {
    guard("beckon_set_log_config", || {
        // SAFETY: the caller's contract.
        let config = unsafe { sized_struct(config, "config", LOG_CONFIG_V1) }?;
        if config.reserved != 0 {
            return Err(Error::invalid(format!(
                "config.reserved: {} is not 0",
                config.reserved
            )));
        }
        configure(
            config.handler,
            UserData::new(config.user_data),
            config.max_level,
            config.delivery,
            "config.",
        )
    })
}

fn configure(
    handler: beckon_log_callback,
    user_data: UserData,
    max_level: i32,
    delivery: u32,
    prefix: &str,
) -> Result<()> {
    let delivery = match delivery {
        BECKON_LOG_DIRECT => Delivery::Direct,
        BECKON_LOG_QUEUED => Delivery::Queued,
        other => {
            return Err(Error::invalid(format!(
                "{prefix}delivery: {other} is not a BECKON_LOG_DIRECT or BECKON_LOG_QUEUED"
            )))
        }
    };
    let level = match max_level {
        BECKON_LOG_OFF => None,
        _ => Some(Level::from_i32(max_level).ok_or_else(|| {
            Error::invalid(format!(
                "{prefix}max_level: {max_level} is not a BECKON_LOG_* value"
            ))
        })?),
    };
    let (Some(callback), Some(level)) = (handler, level) else {
        install(None, Level::Error, delivery);
        return Ok(());
    };
    let sink: LogSink = Arc::new(
        move |level: Level, tag: &str, sub_tag: &str, message: &str| {
            let (tag, sub_tag, message) = (cstring(tag), cstring(sub_tag), cstring(message));
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
    );
    install(Some(sink), level, delivery);
    Ok(())
}
