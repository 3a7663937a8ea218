//! Events as C sees them: one flat struct with a `kind`, and the constants of
//! every enumeration that appears in events and results.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{cstring, guard_value};
use super::results::InviteeArray;
use crate::client::Event;
use crate::protocol::{InviteeState, Notification, Push};

// Per-invitee states (docs/SEMANTICS.md); the values match ZIM's and never
// change.
pub const BECKON_INVITEE_INVITING: i32 = 0;
pub const BECKON_INVITEE_ACCEPTED: i32 = 1;
pub const BECKON_INVITEE_REJECTED: i32 = 2;
pub const BECKON_INVITEE_CANCELLED: i32 = 3;
pub const BECKON_INVITEE_OFFLINE: i32 = 4;
pub const BECKON_INVITEE_RECEIVED: i32 = 5;
pub const BECKON_INVITEE_TIMEOUT: i32 = 6;
// 7 (QUIT), 8 (ENDED) and 9 (NOT_YET_RECEIVED) are reserved.

// Event kinds.
pub const BECKON_EVENT_CONNECTION_STATE_CHANGED: i32 = 1;
pub const BECKON_EVENT_TOKEN_WILL_EXPIRE: i32 = 2;
pub const BECKON_EVENT_INVITATION_RECEIVED: i32 = 3;
pub const BECKON_EVENT_INVITATION_CANCELLED: i32 = 4;
pub const BECKON_EVENT_INVITATION_ACCEPTED: i32 = 5;
pub const BECKON_EVENT_INVITATION_REFUSED: i32 = 6;
pub const BECKON_EVENT_INVITATION_TIMEOUT: i32 = 7;
pub const BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT: i32 = 8;
pub const BECKON_EVENT_INVITATION_USER_STATE_CHANGED: i32 = 9;
/// What happened to the push for one invitee's device (to the inviter).
/// Since ABI 2.2.
pub const BECKON_EVENT_INVITATION_PUSH_RESULT: i32 = 10;

// Connection states.
pub const BECKON_CONNECTION_DISCONNECTED: i32 = 0;
pub const BECKON_CONNECTION_CONNECTING: i32 = 1;
pub const BECKON_CONNECTION_CONNECTED: i32 = 2;
pub const BECKON_CONNECTION_RECONNECTING: i32 = 3;

// Why the connection state changed.
pub const BECKON_REASON_LOGIN: i32 = 0;
pub const BECKON_REASON_LOGOUT: i32 = 1;
pub const BECKON_REASON_NETWORK: i32 = 2;
pub const BECKON_REASON_KICKED_OUT: i32 = 3;
pub const BECKON_REASON_TOKEN_EXPIRED: i32 = 4;
pub const BECKON_REASON_SERVER_SHUTDOWN: i32 = 5;

/// One event. Which fields mean something depends on `kind`; the others are
/// "" (strings), 0 or NULL. Every pointer is valid until the handler returns.
///
/// | kind | fields |
/// |---|---|
/// | CONNECTION_STATE_CHANGED | connection_state, connection_reason |
/// | TOKEN_WILL_EXPIRE | seconds_left |
/// | INVITATION_RECEIVED | invitation_id, inviter, invitees (all, with states), extended_data, notification (NULL if none), seconds_left |
/// | INVITATION_CANCELLED | invitation_id, inviter, extended_data |
/// | INVITATION_ACCEPTED / _REFUSED | invitation_id, user_id (the invitee), extended_data |
/// | INVITATION_TIMEOUT | invitation_id, inviter |
/// | INVITATION_RESPONSE_TIMEOUT | invitation_id, invitees (those that timed out) |
/// | INVITATION_USER_STATE_CHANGED | invitation_id, user_id, state, extended_data |
/// | INVITATION_PUSH_RESULT (2.2) | invitation_id, user_id (the invitee), device_id, push_provider, push_outcome, push_reason |
///
/// INVITATION_PUSH_RESULT comes to the inviter's devices for each invitee
/// that had no device online at send: one per device pushed (SENT or FAILED,
/// with that device's id and provider), or one NO_TARGET (device_id "",
/// push_provider 0) when none of its devices has a push target.
///
/// The struct may grow at the end in a minor version (2.2 added the fields
/// from `push_provider` on): read its fields, never copy it by `sizeof`.
#[repr(C)]
pub struct beckon_event {
    /// One of `BECKON_EVENT_*`.
    pub kind: i32,
    pub invitation_id: *const c_char,
    pub inviter: *const c_char,
    pub user_id: *const c_char,
    /// A `BECKON_INVITEE_*` state.
    pub state: i32,
    pub extended_data: *const c_char,
    pub invitees: *const super::results::beckon_invitee,
    pub invitee_count: usize,
    pub notification: *const beckon_event_notification,
    pub seconds_left: u32,
    /// A `BECKON_CONNECTION_*` state.
    pub connection_state: i32,
    /// A `BECKON_REASON_*` value.
    pub connection_reason: i32,
    /// A `BECKON_PUSH_PROVIDER_*` value; 0 when none applies. Since ABI 2.2.
    pub push_provider: i32,
    /// A `BECKON_PUSH_*` outcome; 0 when none applies. Since ABI 2.2.
    pub push_outcome: i32,
    /// The device a push result is about. Since ABI 2.2.
    pub device_id: *const c_char,
    /// Why a push failed (the provider's reason, e.g. "BadDeviceToken");
    /// "" otherwise. Since ABI 2.2.
    pub push_reason: *const c_char,
}

/// Receives every event of a client, on its dispatcher thread (or inside
/// `beckon_client_poll`), one at a time, in order.
#[allow(non_camel_case_types)]
pub type beckon_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const beckon_event)>;

/// Owns the strings an event points to while the handler runs.
pub(crate) struct EventHolder {
    _strings: Vec<CString>,
    _invitees: InviteeArray,
    /// Boxed: `event.notification` points into it, so it must not move.
    _notification: Option<Box<NotificationHolder>>,
    pub event: beckon_event,
}

impl EventHolder {
    pub fn new(event: &Event) -> EventHolder {
        let mut strings: Vec<CString> = Vec::new();
        let mut text = |value: &str| {
            let owned = cstring(value);
            let ptr = owned.as_ptr();
            strings.push(owned);
            ptr
        };
        let empty = c"".as_ptr(); // static: fields that do not apply cost nothing
        let mut c = beckon_event {
            kind: 0,
            invitation_id: empty,
            inviter: empty,
            user_id: empty,
            state: 0,
            extended_data: empty,
            invitees: std::ptr::null(),
            invitee_count: 0,
            notification: std::ptr::null(),
            seconds_left: 0,
            connection_state: 0,
            connection_reason: 0,
            push_provider: 0,
            push_outcome: 0,
            device_id: empty,
            push_reason: empty,
        };
        let mut invitees = InviteeArray::new(std::iter::empty());
        let mut notification = None;
        match event {
            Event::ConnectionStateChanged { state, reason } => {
                c.kind = BECKON_EVENT_CONNECTION_STATE_CHANGED;
                c.connection_state = *state as i32;
                c.connection_reason = *reason as i32;
            }
            Event::TokenWillExpire { seconds_left } => {
                c.kind = BECKON_EVENT_TOKEN_WILL_EXPIRE;
                c.seconds_left = *seconds_left;
            }
            Event::Invitation(push) => match push {
                Push::InvitationReceived {
                    invitation_id,
                    inviter,
                    invitees: all,
                    extended_data,
                    notification: note,
                    seconds_left,
                } => {
                    c.kind = BECKON_EVENT_INVITATION_RECEIVED;
                    c.invitation_id = text(invitation_id.as_str());
                    c.inviter = text(inviter.as_str());
                    c.extended_data = text(extended_data);
                    c.seconds_left = *seconds_left;
                    invitees = InviteeArray::from_statuses(all);
                    notification = note.as_ref().map(|n| Box::new(NotificationHolder::new(n)));
                }
                Push::InvitationCancelled {
                    invitation_id,
                    inviter,
                    extended_data,
                } => {
                    c.kind = BECKON_EVENT_INVITATION_CANCELLED;
                    c.invitation_id = text(invitation_id.as_str());
                    c.inviter = text(inviter.as_str());
                    c.extended_data = text(extended_data);
                }
                Push::InvitationAccepted {
                    invitation_id,
                    invitee,
                    extended_data,
                }
                | Push::InvitationRefused {
                    invitation_id,
                    invitee,
                    extended_data,
                } => {
                    c.kind = if matches!(push, Push::InvitationAccepted { .. }) {
                        BECKON_EVENT_INVITATION_ACCEPTED
                    } else {
                        BECKON_EVENT_INVITATION_REFUSED
                    };
                    c.invitation_id = text(invitation_id.as_str());
                    c.user_id = text(invitee.as_str());
                    c.extended_data = text(extended_data);
                }
                Push::InvitationTimeout {
                    invitation_id,
                    inviter,
                } => {
                    c.kind = BECKON_EVENT_INVITATION_TIMEOUT;
                    c.invitation_id = text(invitation_id.as_str());
                    c.inviter = text(inviter.as_str());
                }
                Push::InvitationResponseTimeout {
                    invitation_id,
                    invitees: timed_out,
                } => {
                    c.kind = BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT;
                    c.invitation_id = text(invitation_id.as_str());
                    invitees = InviteeArray::new(
                        timed_out
                            .iter()
                            .map(|u| (u.as_str(), InviteeState::Timeout as i32)),
                    );
                }
                Push::UserStateChanged {
                    invitation_id,
                    user_id,
                    state,
                    extended_data,
                } => {
                    c.kind = BECKON_EVENT_INVITATION_USER_STATE_CHANGED;
                    c.invitation_id = text(invitation_id.as_str());
                    c.user_id = text(user_id.as_str());
                    c.state = *state as i32;
                    c.extended_data = text(extended_data);
                }
                // Session notices become the events above before reaching here.
                Push::KickedOut | Push::TokenExpired | Push::TokenWillExpire { .. } => {}
                Push::InvitationPushResult {
                    invitation_id,
                    invitee,
                    device,
                    provider,
                    outcome,
                    reason,
                } => {
                    c.kind = BECKON_EVENT_INVITATION_PUSH_RESULT;
                    c.invitation_id = text(invitation_id.as_str());
                    c.user_id = text(invitee.as_str());
                    if let Some(device) = device {
                        c.device_id = text(device.as_str());
                    }
                    c.push_provider = provider.map_or(0, super::push::provider_value);
                    c.push_outcome = super::push::outcome_value(*outcome);
                    c.push_reason = text(reason);
                }
            },
        }
        c.invitees = invitees.as_ptr();
        c.invitee_count = invitees.len();
        if let Some(holder) = &notification {
            c.notification = holder.as_ptr();
        }
        EventHolder {
            _strings: strings,
            _invitees: invitees,
            _notification: notification,
            event: c,
        }
    }
}

/// The name of an event kind, e.g. "INVITATION_RECEIVED"; "UNKNOWN" otherwise.
/// Static storage: never free it.
#[no_mangle]
pub extern "C" fn beckon_event_kind_name(kind: i32) -> *const c_char {
    guard_value(c"UNKNOWN".as_ptr(), || {
        match kind {
            BECKON_EVENT_CONNECTION_STATE_CHANGED => c"CONNECTION_STATE_CHANGED",
            BECKON_EVENT_TOKEN_WILL_EXPIRE => c"TOKEN_WILL_EXPIRE",
            BECKON_EVENT_INVITATION_RECEIVED => c"INVITATION_RECEIVED",
            BECKON_EVENT_INVITATION_CANCELLED => c"INVITATION_CANCELLED",
            BECKON_EVENT_INVITATION_ACCEPTED => c"INVITATION_ACCEPTED",
            BECKON_EVENT_INVITATION_REFUSED => c"INVITATION_REFUSED",
            BECKON_EVENT_INVITATION_TIMEOUT => c"INVITATION_TIMEOUT",
            BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT => c"INVITATION_RESPONSE_TIMEOUT",
            BECKON_EVENT_INVITATION_USER_STATE_CHANGED => c"INVITATION_USER_STATE_CHANGED",
            BECKON_EVENT_INVITATION_PUSH_RESULT => c"INVITATION_PUSH_RESULT",
            _ => c"UNKNOWN",
        }
        .as_ptr()
    })
}

/// The name of a per-invitee state, e.g. "ACCEPTED"; "UNKNOWN" otherwise.
/// Static storage: never free it.
#[no_mangle]
pub extern "C" fn beckon_invitee_state_name(state: i32) -> *const c_char {
    guard_value(c"UNKNOWN".as_ptr(), || {
        match state {
            BECKON_INVITEE_INVITING => InviteeState::Inviting.c_name(),
            BECKON_INVITEE_ACCEPTED => InviteeState::Accepted.c_name(),
            BECKON_INVITEE_REJECTED => InviteeState::Rejected.c_name(),
            BECKON_INVITEE_CANCELLED => InviteeState::Cancelled.c_name(),
            BECKON_INVITEE_OFFLINE => InviteeState::Offline.c_name(),
            BECKON_INVITEE_RECEIVED => InviteeState::Received.c_name(),
            BECKON_INVITEE_TIMEOUT => InviteeState::Timeout.c_name(),
            _ => c"UNKNOWN",
        }
        .as_ptr()
    })
}

/// A notification as an event shows it (`beckon_event.notification`): the
/// same fields as the `beckon_notification_config` the inviter sent. Since
/// ABI 2.1 (2.0 named the input type here; the layout is the same).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_event_notification {
    /// The size the library filled, `sizeof(beckon_event_notification)` of
    /// its version: a newer library may add fields after these.
    pub struct_size: u32,
    pub title: *const c_char,
    pub message: *const c_char,
    pub resource_id: *const c_char,
    pub payload: *const c_char,
}

/// Keeps a notification's strings alive for an event handler.
pub(crate) struct NotificationHolder {
    _strings: [CString; 4],
    config: beckon_event_notification,
}

impl NotificationHolder {
    pub fn new(notification: &Notification) -> NotificationHolder {
        let strings = [
            cstring(&notification.title),
            cstring(&notification.message),
            cstring(&notification.resource_id),
            cstring(&notification.payload),
        ];
        let config = beckon_event_notification {
            struct_size: size_of::<beckon_event_notification>() as u32,
            title: strings[0].as_ptr(),
            message: strings[1].as_ptr(),
            resource_id: strings[2].as_ptr(),
            payload: strings[3].as_ptr(),
        };
        NotificationHolder {
            _strings: strings,
            config,
        }
    }

    pub fn as_ptr(&self) -> *const beckon_event_notification {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConnectionReason, ConnectionState};

    #[test]
    fn rust_and_c_constants_agree() {
        assert_eq!(InviteeState::Timeout as i32, BECKON_INVITEE_TIMEOUT);
        assert_eq!(InviteeState::Received as i32, BECKON_INVITEE_RECEIVED);
        assert_eq!(InviteeState::Offline as i32, BECKON_INVITEE_OFFLINE);
        assert_eq!(
            ConnectionState::Reconnecting as i32,
            BECKON_CONNECTION_RECONNECTING
        );
        assert_eq!(
            ConnectionReason::ServerShutdown as i32,
            BECKON_REASON_SERVER_SHUTDOWN
        );
    }
}
