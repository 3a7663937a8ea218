//! Error codes and their text.

use std::ffi::c_char;

use super::boundary::{guard_value, last_error_ptr};
use crate::error::ErrorCode;

/// A result code: `BECKON_OK` or one of the `BECKON_ERROR_*` values.
#[allow(non_camel_case_types)]
pub type beckon_error = i32;

pub const BECKON_OK: beckon_error = 0;
/// NULL, empty, malformed or out-of-range input; the message names the field.
pub const BECKON_ERROR_INVALID_ARGUMENT: beckon_error = 1;
/// More distinct invitees than the limit.
pub const BECKON_ERROR_TOO_MANY_INVITEES: beckon_error = 2;
/// Extended data or a notification field over its limit.
pub const BECKON_ERROR_PAYLOAD_TOO_LARGE: beckon_error = 3;
/// The operation needs a logged-in session.
pub const BECKON_ERROR_NOT_LOGGED_IN: beckon_error = 4;
/// Bad token, or a token for another user.
pub const BECKON_ERROR_AUTH_FAILED: beckon_error = 5;
/// The token's expiry has passed.
pub const BECKON_ERROR_TOKEN_EXPIRED: beckon_error = 6;
/// Unknown invitation id, or forgotten after retention.
pub const BECKON_ERROR_INVITATION_NOT_FOUND: beckon_error = 7;
/// Not the inviter (cancel) or not an invitee (accept, refuse).
pub const BECKON_ERROR_NOT_PERMITTED: beckon_error = 8;
/// This invitee already accepted or refused (possibly on another device).
pub const BECKON_ERROR_ALREADY_ANSWERED: beckon_error = 9;
/// Cancelled or timed out for this invitee, or the invitation ended.
pub const BECKON_ERROR_INVITATION_CLOSED: beckon_error = 10;
/// The server cannot be reached, or the connection dropped mid-request.
pub const BECKON_ERROR_NETWORK: beckon_error = 11;
/// No answer from the server within the client's request timeout.
pub const BECKON_ERROR_REQUEST_TIMEOUT: beckon_error = 12;
/// The server refused the request under its rate limit.
pub const BECKON_ERROR_RATE_LIMITED: beckon_error = 13;
/// The client was freed or logged out before the operation completed.
pub const BECKON_ERROR_SHUTDOWN: beckon_error = 14;
/// The server failed to process the request.
pub const BECKON_ERROR_SERVER: beckon_error = 15;
/// A bug, including a caught panic; the message has the detail.
pub const BECKON_ERROR_INTERNAL: beckon_error = 16;
/// The call would wait for a callback that is itself waiting for the caller
/// (two clients freeing each other from their callbacks); nothing was done.
/// Since ABI 2.1.
pub const BECKON_ERROR_WOULD_DEADLOCK: beckon_error = 17;

/// The name of an error code without the `BECKON_` prefix, e.g.
/// "NOT_PERMITTED"; "UNKNOWN" for a value that is not a code. Static storage:
/// never free it.
#[no_mangle]
pub extern "C" fn beckon_error_name(code: beckon_error) -> *const c_char {
    guard_value(c"UNKNOWN".as_ptr(), || match ErrorCode::from_i32(code) {
        Some(code) => code.c_name().as_ptr(),
        None => c"UNKNOWN".as_ptr(),
    })
}

/// One sentence describing an error code; "unknown error code" for a value that
/// is not a code. Static storage: never free it.
#[no_mangle]
pub extern "C" fn beckon_error_description(code: beckon_error) -> *const c_char {
    guard_value(
        c"unknown error code".as_ptr(),
        || match ErrorCode::from_i32(code) {
            Some(code) => code.c_description().as_ptr(),
            None => c"unknown error code".as_ptr(),
        },
    )
}

/// The message of the last error returned by a `beckon_*` function on this
/// thread ("" after a success). Valid until the next `beckon_*` call on this
/// thread; copy it to keep it. Errors delivered to callbacks carry their own
/// message in the result struct.
#[no_mangle]
pub extern "C" fn beckon_last_error_message() -> *const c_char {
    guard_value(c"".as_ptr(), last_error_ptr)
}
