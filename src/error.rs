//! Error codes shared by every layer. The numeric values are part of the C ABI and
//! never change; a retired value stays here as a comment.

use std::ffi::CStr;
use std::fmt;

/// One of the error codes of docs/SEMANTICS.md. `#[repr(i32)]` because the C
/// side reads these as plain integers.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Ok = 0,
    InvalidArgument = 1,
    TooManyInvitees = 2,
    PayloadTooLarge = 3,
    NotLoggedIn = 4,
    AuthFailed = 5,
    TokenExpired = 6,
    InvitationNotFound = 7,
    NotPermitted = 8,
    AlreadyAnswered = 9,
    InvitationClosed = 10,
    Network = 11,
    RequestTimeout = 12,
    RateLimited = 13,
    Shutdown = 14,
    Server = 15,
    Internal = 16,
    WouldDeadlock = 17,
}

impl ErrorCode {
    /// Every code, in numeric order (index == value).
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::Ok,
        ErrorCode::InvalidArgument,
        ErrorCode::TooManyInvitees,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotLoggedIn,
        ErrorCode::AuthFailed,
        ErrorCode::TokenExpired,
        ErrorCode::InvitationNotFound,
        ErrorCode::NotPermitted,
        ErrorCode::AlreadyAnswered,
        ErrorCode::InvitationClosed,
        ErrorCode::Network,
        ErrorCode::RequestTimeout,
        ErrorCode::RateLimited,
        ErrorCode::Shutdown,
        ErrorCode::Server,
        ErrorCode::Internal,
        ErrorCode::WouldDeadlock,
    ];

    pub fn from_i32(value: i32) -> Option<ErrorCode> {
        usize::try_from(value)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The code's name, e.g. "NOT_PERMITTED" (static text: the error path
    /// never allocates).
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("UNKNOWN")
    }

    /// The name as a static C string (what `beckon_error_name` returns).
    pub fn c_name(self) -> &'static CStr {
        match self {
            ErrorCode::Ok => c"OK",
            ErrorCode::InvalidArgument => c"INVALID_ARGUMENT",
            ErrorCode::TooManyInvitees => c"TOO_MANY_INVITEES",
            ErrorCode::PayloadTooLarge => c"PAYLOAD_TOO_LARGE",
            ErrorCode::NotLoggedIn => c"NOT_LOGGED_IN",
            ErrorCode::AuthFailed => c"AUTH_FAILED",
            ErrorCode::TokenExpired => c"TOKEN_EXPIRED",
            ErrorCode::InvitationNotFound => c"INVITATION_NOT_FOUND",
            ErrorCode::NotPermitted => c"NOT_PERMITTED",
            ErrorCode::AlreadyAnswered => c"ALREADY_ANSWERED",
            ErrorCode::InvitationClosed => c"INVITATION_CLOSED",
            ErrorCode::Network => c"NETWORK",
            ErrorCode::RequestTimeout => c"REQUEST_TIMEOUT",
            ErrorCode::RateLimited => c"RATE_LIMITED",
            ErrorCode::Shutdown => c"SHUTDOWN",
            ErrorCode::Server => c"SERVER",
            ErrorCode::Internal => c"INTERNAL",
            ErrorCode::WouldDeadlock => c"WOULD_DEADLOCK",
        }
    }

    /// One sentence for people, static text.
    pub fn description(self) -> &'static str {
        self.c_description().to_str().unwrap_or("")
    }

    /// One sentence for people, as a static C string.
    pub fn c_description(self) -> &'static CStr {
        match self {
            ErrorCode::Ok => c"success",
            ErrorCode::InvalidArgument => c"an argument was NULL, empty, malformed or out of range",
            ErrorCode::TooManyInvitees => c"more distinct invitees than the limit",
            ErrorCode::PayloadTooLarge => {
                c"extended data or a notification field is over its limit"
            }
            ErrorCode::NotLoggedIn => c"the operation needs a logged-in session",
            ErrorCode::AuthFailed => c"the token is invalid or was made for another user",
            ErrorCode::TokenExpired => c"the token has expired",
            ErrorCode::InvitationNotFound => {
                c"no such invitation (unknown id, or forgotten after retention)"
            }
            ErrorCode::NotPermitted => c"the user may not do this to this invitation",
            ErrorCode::AlreadyAnswered => c"this invitee already accepted or refused",
            ErrorCode::InvitationClosed => {
                c"the invitation was cancelled, timed out or ended for this invitee"
            }
            ErrorCode::Network => c"the server cannot be reached or the connection dropped",
            ErrorCode::RequestTimeout => c"no answer from the server within the request timeout",
            ErrorCode::RateLimited => c"the server refused the request under its rate limit",
            ErrorCode::Shutdown => {
                c"the client was freed or logged out before the operation completed"
            }
            ErrorCode::Server => c"the server failed to process the request",
            ErrorCode::Internal => c"an internal error (a bug) in the library",
            ErrorCode::WouldDeadlock => {
                c"the call would wait for a callback that waits for the caller; nothing was done"
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error code with a message that names what went wrong (the field, the id).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    pub fn shutdown() -> Error {
        Error::new(
            ErrorCode::Shutdown,
            "the client was freed or logged out before the operation completed",
        )
    }

    pub fn not_logged_in() -> Error {
        Error::new(ErrorCode::NotLoggedIn, "the client is not logged in")
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_keep_their_numbers() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as i32, i as i32);
            assert_eq!(ErrorCode::from_i32(i as i32), Some(*code));
        }
        assert_eq!(ErrorCode::from_i32(18), None);
        assert_eq!(ErrorCode::from_i32(-1), None);
        assert_eq!(ErrorCode::Internal as i32, 16);
        assert_eq!(ErrorCode::Shutdown.name(), "SHUTDOWN");
    }
}
