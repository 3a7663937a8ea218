//! Error codes shared by every layer. The numeric values are part of the C ABI and
//! never change; a retired value stays here as a comment.

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
}

impl ErrorCode {
    /// Every code, in numeric order (index == value).
    pub const ALL: [ErrorCode; 17] = [
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
    ];

    pub fn from_i32(value: i32) -> Option<ErrorCode> {
        usize::try_from(value)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The constant's name without the `BECKON_` prefix, e.g. `ERROR_NOT_PERMITTED`.
    /// Static text: the error path never allocates.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::TooManyInvitees => "TOO_MANY_INVITEES",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::NotLoggedIn => "NOT_LOGGED_IN",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::InvitationNotFound => "INVITATION_NOT_FOUND",
            ErrorCode::NotPermitted => "NOT_PERMITTED",
            ErrorCode::AlreadyAnswered => "ALREADY_ANSWERED",
            ErrorCode::InvitationClosed => "INVITATION_CLOSED",
            ErrorCode::Network => "NETWORK",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Shutdown => "SHUTDOWN",
            ErrorCode::Server => "SERVER",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// One sentence for people, static text.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::Ok => "success",
            ErrorCode::InvalidArgument => "an argument was NULL, empty, malformed or out of range",
            ErrorCode::TooManyInvitees => "more distinct invitees than the limit",
            ErrorCode::PayloadTooLarge => "extended data or a notification field is over its limit",
            ErrorCode::NotLoggedIn => "the operation needs a logged-in session",
            ErrorCode::AuthFailed => "the token is invalid or was made for another user",
            ErrorCode::TokenExpired => "the token has expired",
            ErrorCode::InvitationNotFound => {
                "no such invitation (unknown id, or forgotten after retention)"
            }
            ErrorCode::NotPermitted => "the user may not do this to this invitation",
            ErrorCode::AlreadyAnswered => "this invitee already accepted or refused",
            ErrorCode::InvitationClosed => {
                "the invitation was cancelled, timed out or ended for this invitee"
            }
            ErrorCode::Network => "the server cannot be reached or the connection dropped",
            ErrorCode::RequestTimeout => "no answer from the server within the request timeout",
            ErrorCode::RateLimited => "the server refused the request under its rate limit",
            ErrorCode::Shutdown => {
                "the client was freed or logged out before the operation completed"
            }
            ErrorCode::Server => "the server failed to process the request",
            ErrorCode::Internal => "an internal error (a bug) in the library",
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
        assert_eq!(ErrorCode::from_i32(17), None);
        assert_eq!(ErrorCode::from_i32(-1), None);
        assert_eq!(ErrorCode::Internal as i32, 16);
        assert_eq!(ErrorCode::Shutdown.name(), "SHUTDOWN");
    }
}
