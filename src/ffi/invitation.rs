//! Invitations: send, cancel, accept, refuse.

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::time::Duration;

use super::boundary::{guard, UserData};
use super::client::{beckon_client, client_ref};
use super::convert::{optional_config, optional_text, sized_struct, user_ids};
use super::error::beckon_error;
use super::results::{
    beckon_cancel_callback, beckon_result_callback, beckon_send_callback, cancel_callback,
    result_callback, send_callback,
};
use crate::client::CallOptions;
use crate::error::{Error, Result};
use crate::protocol::{Answer, CancelInvitation, InvitationId, Notification, SendInvitation};

/// What an offline device's push notification shows (used when push delivery
/// lands; validated and carried to invitees today). NULL fields mean "".
/// Limits: title 256 bytes, message 1 KiB, resource_id 64 bytes, payload 4 KiB.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_notification_config {
    /// Set to `sizeof(beckon_notification_config)`.
    pub struct_size: u32,
    pub title: *const c_char,
    pub message: *const c_char,
    pub resource_id: *const c_char,
    pub payload: *const c_char,
}

/// Flag for `beckon_invitation_config.flags`: invitees with no device online
/// at send time are closed at once instead of kept pending until the deadline.
pub const BECKON_INVITATION_ONLINE_ONLY: u32 = 1;

/// How to send one invitation. Zero-valued fields mean "default", except
/// `timeout_seconds`, which is required.
///
/// Extensible: set `struct_size` to `sizeof(beckon_invitation_config)`. A
/// library newer than your header reads only the fields your header knew.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_invitation_config {
    pub struct_size: u32,
    /// 1 to 600 seconds (the hub's maximum).
    pub timeout_seconds: u32,
    /// UTF-8 text for the invitees, at most 8 KiB; NULL means "".
    pub extended_data: *const c_char,
    /// NULL for none.
    pub notification: *const beckon_notification_config,
    /// `BECKON_INVITATION_*` flags; unknown bits are refused.
    pub flags: u32,
    /// How long the send may wait for the server; 0 means the client's
    /// `request_timeout_ms`. Since ABI 2.1 (in 2.0 a reserved field that had
    /// to be 0, so a 2.0 program gets the default).
    pub request_timeout_ms: u32,
}

/// How to accept or refuse an invitation. All fields may be zero.
///
/// Extensible: set `struct_size` to `sizeof(beckon_answer_config)`. Since
/// ABI 2.1.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_answer_config {
    pub struct_size: u32,
    /// How long the answer may wait for the server; 0 means the client's
    /// `request_timeout_ms`.
    pub request_timeout_ms: u32,
    /// UTF-8 text for the inviter, at most 8 KiB; NULL means "".
    pub extended_data: *const c_char,
}

/// How to cancel an invitation. All fields may be zero.
///
/// Extensible: set `struct_size` to `sizeof(beckon_cancel_config)`. Since
/// ABI 2.1.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_cancel_config {
    pub struct_size: u32,
    /// How long the cancel may wait for the server; 0 means the client's
    /// `request_timeout_ms`.
    pub request_timeout_ms: u32,
    /// The invitees to cancel for (`invitee_count` user ids); NULL with a
    /// count of 0 cancels for all of them.
    pub invitees: *const *const c_char,
    pub invitee_count: usize,
    /// UTF-8 text for the invitees, at most 8 KiB; NULL means "".
    pub extended_data: *const c_char,
}

/// The sizes of the structs' first versions, frozen: the end of their last
/// fields, whatever is added after them.
const INVITATION_CONFIG_V1: usize =
    offset_of!(beckon_invitation_config, request_timeout_ms) + size_of::<u32>();
const NOTIFICATION_CONFIG_V1: usize =
    offset_of!(beckon_notification_config, payload) + size_of::<*const c_char>();
const ANSWER_CONFIG_V1: usize =
    offset_of!(beckon_answer_config, extended_data) + size_of::<*const c_char>();
const CANCEL_CONFIG_V1: usize =
    offset_of!(beckon_cancel_config, extended_data) + size_of::<*const c_char>();

/// # Safety
/// `ptr` is NULL or a valid `beckon_notification_config`.
unsafe fn notification(ptr: *const beckon_notification_config) -> Result<Option<Notification>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: caller's contract.
    let c = unsafe { sized_struct(ptr, "config.notification", NOTIFICATION_CONFIG_V1) }?;
    // SAFETY: the strings are NULL or valid C strings (caller's contract).
    unsafe {
        Ok(Some(Notification {
            title: optional_text(c.title, "config.notification.title")?,
            message: optional_text(c.message, "config.notification.message")?,
            resource_id: optional_text(c.resource_id, "config.notification.resource_id")?,
            payload: optional_text(c.payload, "config.notification.payload")?,
        }))
    }
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn parse_invitation_id(ptr: *const c_char) -> Result<InvitationId> {
    // SAFETY: caller's contract.
    let text = unsafe { super::convert::required_str(ptr, "invitation_id") }?;
    InvitationId::parse(text, "invitation_id")
}

/// Sends an invitation: every online device of every invitee rings.
///
/// - `invitees`: `invitee_count` user ids (1 to 32 distinct after folding
///   duplicates; the inviter may not invite itself). No entry may be NULL.
/// - `config`: required (the timeout has no default).
/// - `callback` (may be NULL) runs exactly once if this returns `BECKON_OK`,
///   with the invitation id and the invitees that were offline, or an error.
///
/// Returns at once with `BECKON_ERROR_INVALID_ARGUMENT`,
/// `BECKON_ERROR_TOO_MANY_INVITEES`, `BECKON_ERROR_PAYLOAD_TOO_LARGE` or
/// `BECKON_ERROR_NOT_LOGGED_IN` for input it can judge at once (see
/// `beckon_last_error_message`); then the callback never runs. Every input is
/// copied before this returns.
///
/// Memory: Pointers are NULL or valid as described; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_send_invitation(
    client: *mut beckon_client,
    invitees: *const *const c_char,
    invitee_count: usize,
    config: *const beckon_invitation_config,
    callback: beckon_send_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_send_invitation", || {
        // SAFETY: the caller's contract for each pointer.
        let (client, invitees, config) = unsafe {
            (
                client_ref(client)?,
                user_ids(invitees, invitee_count, "invitees")?,
                sized_struct(config, "config", INVITATION_CONFIG_V1)?,
            )
        };
        if config.flags & !BECKON_INVITATION_ONLINE_ONLY != 0 {
            return Err(Error::invalid(format!(
                "config.flags: unknown bits {:#x}",
                config.flags & !BECKON_INVITATION_ONLINE_ONLY
            )));
        }
        let mut request = SendInvitation::new(invitees, config.timeout_seconds);
        // SAFETY: as above.
        unsafe {
            request.extended_data = optional_text(config.extended_data, "config.extended_data")?;
            request.notification = notification(config.notification)?;
        }
        request.online_only = config.flags & BECKON_INVITATION_ONLINE_ONLY != 0;
        client.send_invitation_then_with(
            request,
            call_options(config.request_timeout_ms),
            send_callback(callback, user_data),
        )
    })
}

/// Cancels an invitation for all its invitees (`invitees` NULL and
/// `invitee_count` 0) or for the listed ones. Only the inviter may cancel.
/// Invitees already in a terminal state come back in the result's
/// `error_invitees` with their state. `extended_data` may be NULL.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_cancel_invitation(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    invitees: *const *const c_char,
    invitee_count: usize,
    extended_data: *const c_char,
    callback: beckon_cancel_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_cancel_invitation", || {
        let config = beckon_cancel_config {
            struct_size: size_of::<beckon_cancel_config>() as u32,
            request_timeout_ms: 0,
            invitees,
            invitee_count,
            extended_data,
        };
        // SAFETY: the caller's contract for each pointer.
        unsafe { cancel(client, invitation_id, &config, false, callback, user_data) }
    })
}

/// `beckon_cancel_invitation` with a config (NULL for the defaults: every
/// invitee, no extended data, the client's request timeout). Since ABI 2.1.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_cancel_invitation_ex(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    config: *const beckon_cancel_config,
    callback: beckon_cancel_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_cancel_invitation_ex", || {
        // SAFETY: the caller's contract.
        let config = unsafe { optional_config(config, "config", CANCEL_CONFIG_V1) }?;
        // SAFETY: the caller's contract for each pointer.
        unsafe { cancel(client, invitation_id, &config, true, callback, user_data) }
    })
}

/// # Safety
/// As `beckon_cancel_invitation_ex`. `from_config` says whether the fields
/// came in a config (then errors name them `config.<field>`) or as arguments.
unsafe fn cancel(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    config: &beckon_cancel_config,
    from_config: bool,
    callback: beckon_cancel_callback,
    user_data: UserData,
) -> Result<()> {
    // SAFETY: the caller's contract for each pointer.
    let (client, request) = unsafe {
        let client = client_ref(client)?;
        let invitation_id = parse_invitation_id(invitation_id)?;
        let invitees = if config.invitees.is_null() && config.invitee_count == 0 {
            None
        } else {
            Some(user_ids(
                config.invitees,
                config.invitee_count,
                if from_config {
                    "config.invitees"
                } else {
                    "invitees"
                },
            )?)
        };
        let extended_data = optional_text(
            config.extended_data,
            if from_config {
                "config.extended_data"
            } else {
                "extended_data"
            },
        )?;
        (
            client,
            CancelInvitation {
                invitation_id,
                invitees,
                extended_data,
            },
        )
    };
    client.cancel_invitation_then_with(
        request,
        call_options(config.request_timeout_ms),
        cancel_callback(callback, user_data),
    )
}

/// A per-operation timeout: 0 means the client's.
fn call_options(request_timeout_ms: u32) -> CallOptions {
    CallOptions {
        request_timeout: (request_timeout_ms != 0)
            .then(|| Duration::from_millis(u64::from(request_timeout_ms))),
    }
}

/// Where an answer's settings come from.
enum AnswerInput {
    /// The 2.0 functions: the extended data as an argument.
    Arguments(*const c_char),
    /// The `_ex` functions: a config, NULL for the defaults.
    Config(*const beckon_answer_config),
}

/// The body of the four answer exports.
///
/// # Safety
/// As the exported functions below.
unsafe fn answer(
    what: &str,
    accept: bool,
    client: *mut beckon_client,
    invitation_id: *const c_char,
    input: AnswerInput,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard(what, || {
        let (config, from_config) = match input {
            AnswerInput::Arguments(extended_data) => (
                beckon_answer_config {
                    struct_size: size_of::<beckon_answer_config>() as u32,
                    request_timeout_ms: 0,
                    extended_data,
                },
                false,
            ),
            // SAFETY: the caller's contract.
            AnswerInput::Config(config) => (
                unsafe { optional_config(config, "config", ANSWER_CONFIG_V1) }?,
                true,
            ),
        };
        // SAFETY: the caller's contract for each pointer.
        let (client, answer) = unsafe {
            (
                client_ref(client)?,
                Answer {
                    invitation_id: parse_invitation_id(invitation_id)?,
                    extended_data: optional_text(
                        config.extended_data,
                        if from_config {
                            "config.extended_data"
                        } else {
                            "extended_data"
                        },
                    )?,
                },
            )
        };
        let options = call_options(config.request_timeout_ms);
        let done = result_callback(callback, user_data);
        if accept {
            client.accept_invitation_then_with(answer, options, done)
        } else {
            client.refuse_invitation_then_with(answer, options, done)
        }
    })
}

/// Accepts an invitation this user was invited to. The first answer from any
/// of the user's devices wins; the others are told by
/// INVITATION_USER_STATE_CHANGED. `extended_data` may be NULL.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_accept_invitation(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    extended_data: *const c_char,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let input = AnswerInput::Arguments(extended_data);
    // SAFETY: forwarded contract.
    unsafe {
        answer(
            "beckon_accept_invitation",
            true,
            client,
            invitation_id,
            input,
            callback,
            user_data,
        )
    }
}

/// Refuses an invitation this user was invited to; as `beckon_accept_invitation`.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_refuse_invitation(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    extended_data: *const c_char,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let input = AnswerInput::Arguments(extended_data);
    // SAFETY: forwarded contract.
    unsafe {
        answer(
            "beckon_refuse_invitation",
            false,
            client,
            invitation_id,
            input,
            callback,
            user_data,
        )
    }
}

/// `beckon_accept_invitation` with a config (NULL for the defaults). Since
/// ABI 2.1.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_accept_invitation_ex(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    config: *const beckon_answer_config,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let input = AnswerInput::Config(config);
    // SAFETY: forwarded contract.
    unsafe {
        answer(
            "beckon_accept_invitation_ex",
            true,
            client,
            invitation_id,
            input,
            callback,
            user_data,
        )
    }
}

/// `beckon_refuse_invitation` with a config (NULL for the defaults). Since
/// ABI 2.1.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_refuse_invitation_ex(
    client: *mut beckon_client,
    invitation_id: *const c_char,
    config: *const beckon_answer_config,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let input = AnswerInput::Config(config);
    // SAFETY: forwarded contract.
    unsafe {
        answer(
            "beckon_refuse_invitation_ex",
            false,
            client,
            invitation_id,
            input,
            callback,
            user_data,
        )
    }
}
