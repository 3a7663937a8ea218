//! Results handed to C callbacks. Each is built on the dispatcher thread in a
//! holder that owns its strings and arrays, passed by pointer, and dropped when
//! the callback returns: that is the "valid until the callback returns" rule.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{cstring, UserData};
use super::error::{beckon_error, BECKON_OK};
use crate::client::Callback;
use crate::error::Result;
use crate::protocol::{CancelOutcome, InviteeStatus, SendOutcome};

/// A user id with its per-invitee state (`BECKON_INVITEE_*`).
#[repr(C)]
pub struct beckon_invitee {
    pub user_id: *const c_char,
    pub state: i32,
}

/// The result of an operation that returns nothing but success or an error.
#[repr(C)]
pub struct beckon_result {
    pub error: beckon_error,
    /// "" on success. Valid until the callback returns.
    pub error_message: *const c_char,
}

/// The result of `beckon_send_invitation`. On error, `invitation_id` is "" and
/// there are no error invitees.
#[repr(C)]
pub struct beckon_send_result {
    pub error: beckon_error,
    pub error_message: *const c_char,
    pub invitation_id: *const c_char,
    /// Invitees that could not be reached at once (state OFFLINE).
    pub error_invitees: *const beckon_invitee,
    pub error_invitee_count: usize,
}

/// The result of `beckon_cancel_invitation`.
#[repr(C)]
pub struct beckon_cancel_result {
    pub error: beckon_error,
    pub error_message: *const c_char,
    /// Invitees that could not be cancelled (already in a terminal state), with
    /// that state.
    pub error_invitees: *const beckon_invitee,
    pub error_invitee_count: usize,
}

/// Called once with the result of login, logout, renew_token, accept or refuse.
#[allow(non_camel_case_types)]
pub type beckon_result_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: *const beckon_result)>;

/// Called once with the result of `beckon_send_invitation`.
#[allow(non_camel_case_types)]
pub type beckon_send_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: *const beckon_send_result)>;

/// Called once with the result of `beckon_cancel_invitation`.
#[allow(non_camel_case_types)]
pub type beckon_cancel_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: *const beckon_cancel_result)>;

/// Owns the C strings of a list of invitee states.
pub(crate) struct InviteeArray {
    _names: Vec<CString>,
    items: Vec<beckon_invitee>,
}

impl InviteeArray {
    pub fn new<'a>(statuses: impl Iterator<Item = (&'a str, i32)>) -> InviteeArray {
        let mut names = Vec::new();
        let mut items = Vec::new();
        for (user, state) in statuses {
            let name = cstring(user);
            // The CString's heap buffer does not move when `names` grows.
            items.push(beckon_invitee {
                user_id: name.as_ptr(),
                state,
            });
            names.push(name);
        }
        InviteeArray {
            _names: names,
            items,
        }
    }

    pub fn from_statuses(statuses: &[InviteeStatus]) -> InviteeArray {
        InviteeArray::new(
            statuses
                .iter()
                .map(|s| (s.user_id.as_str(), s.state as i32)),
        )
    }

    pub fn as_ptr(&self) -> *const beckon_invitee {
        if self.items.is_empty() {
            std::ptr::null()
        } else {
            self.items.as_ptr()
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// Code and message of a result, as C sees them.
fn code_and_message<T>(result: &Result<T>) -> (beckon_error, CString) {
    match result {
        Ok(_) => (BECKON_OK, CString::default()),
        Err(e) => (e.code as beckon_error, cstring(&e.message)),
    }
}

pub(crate) fn result_callback(
    callback: beckon_result_callback,
    user_data: UserData,
) -> Callback<()> {
    Box::new(move |result: Result<()>| {
        let Some(callback) = callback else { return };
        let (error, message) = code_and_message(&result);
        let c_result = beckon_result {
            error,
            error_message: message.as_ptr(),
        };
        // SAFETY: the application's callback, with a pointer valid for the call.
        unsafe { callback(user_data.get(), &c_result) };
    })
}

pub(crate) fn send_callback(
    callback: beckon_send_callback,
    user_data: UserData,
) -> Callback<SendOutcome> {
    Box::new(move |result: Result<SendOutcome>| {
        let Some(callback) = callback else { return };
        let (error, message) = code_and_message(&result);
        let (id, invitees) = match &result {
            Ok(outcome) => (
                cstring(outcome.invitation_id.as_str()),
                InviteeArray::from_statuses(&outcome.error_invitees),
            ),
            Err(_) => (CString::default(), InviteeArray::new(std::iter::empty())),
        };
        let c_result = beckon_send_result {
            error,
            error_message: message.as_ptr(),
            invitation_id: id.as_ptr(),
            error_invitees: invitees.as_ptr(),
            error_invitee_count: invitees.len(),
        };
        // SAFETY: the application's callback, with a pointer valid for the call.
        unsafe { callback(user_data.get(), &c_result) };
    })
}

pub(crate) fn cancel_callback(
    callback: beckon_cancel_callback,
    user_data: UserData,
) -> Callback<CancelOutcome> {
    Box::new(move |result: Result<CancelOutcome>| {
        let Some(callback) = callback else { return };
        let (error, message) = code_and_message(&result);
        let invitees = match &result {
            Ok(outcome) => InviteeArray::from_statuses(&outcome.error_invitees),
            Err(_) => InviteeArray::new(std::iter::empty()),
        };
        let c_result = beckon_cancel_result {
            error,
            error_message: message.as_ptr(),
            error_invitees: invitees.as_ptr(),
            error_invitee_count: invitees.len(),
        };
        // SAFETY: the application's callback, with a pointer valid for the call.
        unsafe { callback(user_data.get(), &c_result) };
    })
}
