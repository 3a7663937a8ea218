//! How operations answer: the `*_then` form replies through a callback (see
//! [`Hub::send_then`]), its plain form returns that reply; and the refusals
//! several operations share.

use super::{Hub, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::InvitationId;

/// Runs a `*_then` operation and returns what it replied.
pub(super) fn returned<T>(operation: impl FnOnce(&mut dyn FnMut(Result<T>))) -> Result<T> {
    let mut outcome = None;
    operation(&mut |result| outcome = Some(result));
    outcome.unwrap_or_else(|| Err(Error::internal("the hub did not reply")))
}

impl Hub {
    pub(super) fn require_alive(session: &Session) -> Result<()> {
        if session.is_alive() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::NotLoggedIn,
                "the session has ended (logged out or kicked out)",
            ))
        }
    }

    pub(super) fn not_found(id: &InvitationId) -> Error {
        Error::new(
            ErrorCode::InvitationNotFound,
            format!("invitation_id: {id} is unknown or was forgotten"),
        )
    }
}
