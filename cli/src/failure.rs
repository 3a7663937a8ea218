//! Exit codes and the one error type every command returns. The codes are a
//! promise to scripts (docs/CLI.md, "Exit codes"): never renumber them.

use std::process::ExitCode;

use beckon::ErrorCode;

/// How a run of `beckon` ended, as its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// invite: at least one invitee accepted. listen, token: done.
    Ok = 0,
    /// Something local failed: a file could not be read, a bug.
    Local = 1,
    /// Bad arguments (clap's own usage errors exit 2 as well).
    Usage = 2,
    /// invite: the invitation ended and nobody accepted (refused, timed
    /// out, offline).
    NotAccepted = 3,
    /// invite: cancelled (Ctrl-C) before anyone accepted.
    Cancelled = 4,
    /// The server could not be reached, refused the login, or failed a
    /// request; or the session ended (kicked out, token expired).
    Server = 5,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// What went wrong, said so that a person knows what failed and why.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    /// For `--json`: the library's error code name, or USAGE, LOCAL.
    pub code: &'static str,
    /// The whole sentence, without the "beckon: " prefix.
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            code: "USAGE",
            message: message.into(),
        }
    }

    pub fn local(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Local,
            code: "LOCAL",
            message: message.into(),
        }
    }

    /// A library error while doing `what`: bad input is a usage error,
    /// anything the server or the network said is a server error.
    pub fn library(what: &str, error: &beckon::Error) -> Failure {
        let exit = match error.code {
            ErrorCode::InvalidArgument
            | ErrorCode::TooManyInvitees
            | ErrorCode::PayloadTooLarge => Exit::Usage,
            ErrorCode::Internal => Exit::Local,
            _ => Exit::Server,
        };
        Failure {
            exit,
            code: error.code.name(),
            message: format!("{what}: {error}"),
        }
    }

    /// A server-side failure that has no library error behind it.
    pub fn server(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Server,
            code,
            message: message.into(),
        }
    }
}
