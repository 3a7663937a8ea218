//! Requests, their outcomes and the pushes (events) a hub sends to a session.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{DeviceId, InvitationId, InviteeState, Limits, PushOutcome, PushProvider, UserId};
use crate::error::{Error, ErrorCode, Result};

/// Shared immutable text: cloned once per receiving device, so it must be cheap.
pub type Text = Arc<str>;

/// What an offline device's push notification would show (limits in
/// docs/SEMANTICS.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub title: Text,
    pub message: Text,
    pub resource_id: Text,
    pub payload: Text,
}

impl Notification {
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        Limits::check_text("notification.title", &self.title, limits.max_title)?;
        Limits::check_text("notification.message", &self.message, limits.max_message)?;
        Limits::check_text(
            "notification.resource_id",
            &self.resource_id,
            limits.max_resource_id,
        )?;
        Limits::check_text("notification.payload", &self.payload, limits.max_payload)
    }
}

/// One invitee and its state, as reported in results and events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteeStatus {
    pub user_id: UserId,
    pub state: InviteeState,
}

/// `send_invitation`. Invitees are folded (duplicates removed, first order kept)
/// by [`SendInvitation::new`] so that every later check sees distinct users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendInvitation {
    pub invitees: Vec<UserId>,
    pub timeout_secs: u32,
    pub extended_data: Text,
    pub notification: Option<Notification>,
    #[serde(default)]
    pub online_only: bool,
    /// Makes a retried send return the first attempt's invitation instead of a
    /// second one. Any text up to 64 bytes, unique per inviter.
    #[serde(default)]
    pub idempotency_key: Option<Text>,
}

impl SendInvitation {
    pub fn new(invitees: Vec<UserId>, timeout_secs: u32) -> SendInvitation {
        let mut send = SendInvitation {
            invitees,
            timeout_secs,
            extended_data: Text::from(""),
            notification: None,
            online_only: false,
            idempotency_key: None,
        };
        send.fold_invitees();
        send
    }

    /// Removes repeated invitees, keeping the first of each.
    pub fn fold_invitees(&mut self) {
        if self.invitees.len() > 64 {
            let mut seen = std::collections::HashSet::with_capacity(self.invitees.len());
            self.invitees.retain(|u| seen.insert(u.clone()));
            return;
        }
        // Lists are short (32 by default): a quadratic scan beats hashing.
        let mut kept = 0;
        for i in 0..self.invitees.len() {
            if !self.invitees[..kept].contains(&self.invitees[i]) {
                self.invitees.swap(kept, i);
                kept += 1;
            }
        }
        self.invitees.truncate(kept);
    }

    /// Every limit of docs/SEMANTICS.md that can be checked without the hub's
    /// state.
    pub fn validate(&self, inviter: Option<&UserId>, limits: &Limits) -> Result<()> {
        if self.invitees.is_empty() {
            return Err(Error::invalid("invitees: the list is empty"));
        }
        if self.invitees.len() > limits.max_invitees {
            return Err(Error::new(
                ErrorCode::TooManyInvitees,
                format!(
                    "invitees: {} distinct users, the limit is {}",
                    self.invitees.len(),
                    limits.max_invitees
                ),
            ));
        }
        if let Some(inviter) = inviter {
            if self.invitees.contains(inviter) {
                return Err(Error::invalid(format!(
                    "invitees: the inviter '{inviter}' may not invite itself"
                )));
            }
        }
        limits.check_timeout(self.timeout_secs)?;
        limits.check_extended_data("extended_data", &self.extended_data)?;
        if let Some(notification) = &self.notification {
            notification.validate(limits)?;
        }
        if let Some(key) = &self.idempotency_key {
            if key.is_empty() || key.len() > 64 {
                return Err(Error::invalid("idempotency_key: must be 1 to 64 bytes"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOutcome {
    pub invitation_id: InvitationId,
    /// Invitees that could not be reached at once (OFFLINE).
    pub error_invitees: Vec<InviteeStatus>,
}

/// What a hub knows of one invitation a user takes part in (as inviter or
/// invitee), for a client whose session was lost: it compares this with what it
/// knew and tells the app what it missed (docs/PROTOCOL.md, "Snapshot").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationSnapshot {
    pub invitation_id: InvitationId,
    pub inviter: UserId,
    /// Every invitee with its state now.
    pub invitees: Arc<[InviteeStatus]>,
    /// Every invitee is final: the invitation is over.
    pub ended: bool,
    /// Seconds until the deadline; 0 once ended.
    pub seconds_left: u32,
}

/// The answer to a `sync` that names the invitations the client knew of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every invitation still open that the user takes part in, then each
    /// named one that ended and is still remembered.
    pub invitations: Vec<InvitationSnapshot>,
    /// Named invitations the hub no longer knows (forgotten after retention),
    /// or that the user does not take part in.
    pub unknown: Vec<InvitationId>,
}

impl Snapshot {
    /// The most invitation ids a client may name in one `sync`.
    /// cbindgen:ignore
    pub const MAX_KNOWN: usize = 1000;
}

/// `cancel_invitation`: `invitees: None` cancels every invitee still pending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelInvitation {
    pub invitation_id: InvitationId,
    pub invitees: Option<Vec<UserId>>,
    pub extended_data: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOutcome {
    /// Invitees that could not be cancelled (already terminal), with their state.
    pub error_invitees: Vec<InviteeStatus>,
}

/// `accept_invitation` and `refuse_invitation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub invitation_id: InvitationId,
    pub extended_data: Text,
}

/// What a hub pushes to a session without being asked: the events of
/// docs/SEMANTICS.md that concern invitations, and the session-level notices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Push {
    InvitationReceived {
        invitation_id: InvitationId,
        inviter: UserId,
        invitees: Arc<[InviteeStatus]>,
        extended_data: Text,
        notification: Option<Notification>,
        seconds_left: u32,
    },
    InvitationCancelled {
        invitation_id: InvitationId,
        inviter: UserId,
        extended_data: Text,
    },
    InvitationAccepted {
        invitation_id: InvitationId,
        invitee: UserId,
        extended_data: Text,
    },
    InvitationRefused {
        invitation_id: InvitationId,
        invitee: UserId,
        extended_data: Text,
    },
    InvitationTimeout {
        invitation_id: InvitationId,
        inviter: UserId,
    },
    InvitationResponseTimeout {
        invitation_id: InvitationId,
        invitees: Arc<[UserId]>,
    },
    UserStateChanged {
        invitation_id: InvitationId,
        user_id: UserId,
        state: InviteeState,
        extended_data: Text,
    },
    /// What happened to the push for one device of an invitee that was not
    /// connected when the invitation was sent (to the inviter's devices).
    /// `NoPushTarget` names no device and no provider.
    InvitationPushResult {
        invitation_id: InvitationId,
        invitee: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<DeviceId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<PushProvider>,
        outcome: PushOutcome,
        /// Why it failed (the provider's reason when it gave one); empty
        /// otherwise.
        #[serde(default)]
        reason: Text,
    },
    /// The same device id logged in elsewhere: this session is over.
    KickedOut,
    /// The session's token expired without being renewed: this session is over.
    TokenExpired,
    /// The session's token expires in `seconds_left` seconds.
    TokenWillExpire { seconds_left: u32 },
}

impl Push {
    pub fn invitation_id(&self) -> Option<&InvitationId> {
        match self {
            Push::InvitationReceived { invitation_id, .. }
            | Push::InvitationCancelled { invitation_id, .. }
            | Push::InvitationAccepted { invitation_id, .. }
            | Push::InvitationRefused { invitation_id, .. }
            | Push::InvitationTimeout { invitation_id, .. }
            | Push::InvitationResponseTimeout { invitation_id, .. }
            | Push::UserStateChanged { invitation_id, .. }
            | Push::InvitationPushResult { invitation_id, .. } => Some(invitation_id),
            Push::KickedOut | Push::TokenExpired | Push::TokenWillExpire { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(names: &[&str]) -> Vec<UserId> {
        names
            .iter()
            .map(|n| UserId::parse(n, "u").unwrap())
            .collect()
    }

    #[test]
    fn duplicates_are_folded_keeping_first_order() {
        let send = SendInvitation::new(users(&["b", "c", "b", "d", "c"]), 10);
        assert_eq!(send.invitees, users(&["b", "c", "d"]));
    }

    #[test]
    fn validation_names_the_field_and_code() {
        let limits = Limits::default();
        let alice = UserId::parse("alice", "u").unwrap();
        let ok = SendInvitation::new(users(&["bob"]), 10);
        assert!(ok.validate(Some(&alice), &limits).is_ok());

        let empty = SendInvitation::new(vec![], 10);
        assert_eq!(
            empty.validate(None, &limits).unwrap_err().code,
            ErrorCode::InvalidArgument
        );

        let many: Vec<String> = (0..33).map(|i| format!("u{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let too_many = SendInvitation::new(users(&many), 10);
        assert_eq!(
            too_many.validate(None, &limits).unwrap_err().code,
            ErrorCode::TooManyInvitees
        );

        let selfish = SendInvitation::new(users(&["alice", "bob"]), 10);
        assert!(selfish
            .validate(Some(&alice), &limits)
            .unwrap_err()
            .message
            .contains("itself"));

        for timeout in [0, 601] {
            let bad = SendInvitation::new(users(&["bob"]), timeout);
            let err = bad.validate(None, &limits).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument);
            assert!(err.message.starts_with("config.timeout_seconds"), "{err}");
        }

        let mut big = SendInvitation::new(users(&["bob"]), 10);
        big.extended_data = "x".repeat(8 * 1024 + 1).into();
        assert_eq!(
            big.validate(None, &limits).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        big.extended_data = "x".repeat(8 * 1024).into();
        assert!(big.validate(None, &limits).is_ok());

        big.notification = Some(Notification {
            payload: "p".repeat(4097).into(),
            ..Notification::default()
        });
        let err = big.validate(None, &limits).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        assert!(err.message.starts_with("notification.payload"));
    }

    #[test]
    fn pushes_round_trip_through_json() {
        let push = Push::UserStateChanged {
            invitation_id: InvitationId::from_bits(7),
            user_id: UserId::parse("bob", "u").unwrap(),
            state: InviteeState::Received,
            extended_data: "".into(),
        };
        let json = serde_json::to_string(&push).unwrap();
        assert!(json.contains("\"type\":\"user_state_changed\""), "{json}");
        assert_eq!(serde_json::from_str::<Push>(&json).unwrap(), push);
    }
}
