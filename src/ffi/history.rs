//! History: a page of the user's ended invitations, newest first. Since ABI
//! 2.3.

use std::ffi::{c_char, c_void, CString};
use std::mem::{offset_of, size_of};

use super::boundary::{cstring, guard, UserData};
use super::client::{beckon_client, client_ref};
use super::convert::{optional_str, sized_struct};
use super::error::{beckon_error, BECKON_OK};
use super::results::{beckon_invitee, InviteeArray};
use crate::client::Callback;
use crate::error::{Error, Result};
use crate::protocol::{HistoryRole, InvitationPage, InvitationQuery, Text};

// Roles (`beckon_invitation_query.role`).
/// Sent and received; the default.
pub const BECKON_HISTORY_ANY: i32 = 0;
/// Those the user sent (from a device, or the server API on its behalf).
pub const BECKON_HISTORY_SENT: i32 = 1;
/// Those the user was invited to.
pub const BECKON_HISTORY_RECEIVED: i32 = 2;

/// Which of the user's ended invitations `beckon_query_invitations` asks
/// for. Since ABI 2.3.
///
/// Extensible: set `struct_size` to `sizeof(beckon_invitation_query)`;
/// zero fields mean "default". A NULL query is all defaults.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_invitation_query {
    pub struct_size: u32,
    /// A `BECKON_HISTORY_*` value.
    pub role: i32,
    /// Only invitations sent at or after this (Unix milliseconds; 0: no
    /// bound).
    pub since_ms: u64,
    /// Only invitations sent before this (Unix milliseconds; 0: no bound).
    pub until_ms: u64,
    /// Invitations per page, 1 to 100; 0 for 20.
    pub limit: u32,
    /// NULL or "" for the first page; else the `next_cursor` of the page
    /// before.
    pub cursor: *const c_char,
}

/// The size of the struct's first version (ABI 2.3), frozen.
const QUERY_V1: usize = offset_of!(beckon_invitation_query, cursor) + size_of::<*const c_char>();

/// One ended invitation of a page.
#[repr(C)]
pub struct beckon_invitation_summary {
    pub invitation_id: *const c_char,
    pub inviter: *const c_char,
    /// Every invitee with its final state (`BECKON_INVITEE_*`).
    pub invitees: *const beckon_invitee,
    pub invitee_count: usize,
    /// When it was sent and when it ended (Unix milliseconds).
    pub created_ms: u64,
    pub ended_ms: u64,
    /// 1 if the server API sent it on the inviter's behalf, else 0.
    pub sent_by_server: i32,
}

/// The result of `beckon_query_invitations`. On error there are no
/// invitations and `next_cursor` is "".
#[repr(C)]
pub struct beckon_invitation_page_result {
    pub error: beckon_error,
    pub error_message: *const c_char,
    /// Newest sent first.
    pub invitations: *const beckon_invitation_summary,
    pub invitation_count: usize,
    /// "" on the last page; else the `cursor` of the next query.
    pub next_cursor: *const c_char,
}

/// Called once with the result of `beckon_query_invitations`; everything in
/// it is valid until the callback returns.
pub type beckon_invitation_page_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, result: *const beckon_invitation_page_result),
>;

/// Reads and checks a query (NULL: every default); errors name
/// `query.<member>`.
///
/// # Safety
/// `ptr` is NULL or a valid `beckon_invitation_query` whose `cursor` is NULL
/// or NUL-terminated, all valid during the call.
unsafe fn query(ptr: *const beckon_invitation_query) -> Result<InvitationQuery> {
    if ptr.is_null() {
        return Ok(InvitationQuery::default());
    }
    // SAFETY: caller's contract.
    let c = unsafe { sized_struct(ptr, "query", QUERY_V1) }?;
    let role = match c.role {
        BECKON_HISTORY_ANY => HistoryRole::Any,
        BECKON_HISTORY_SENT => HistoryRole::Sent,
        BECKON_HISTORY_RECEIVED => HistoryRole::Received,
        other => {
            return Err(Error::invalid(format!(
                "query.role: {other} is not a BECKON_HISTORY_* value"
            )))
        }
    };
    // SAFETY: NULL or a valid C string (caller's contract).
    let cursor = unsafe { optional_str(c.cursor, "query.cursor") }?;
    let query = InvitationQuery {
        role,
        since_ms: c.since_ms,
        until_ms: c.until_ms,
        limit: c.limit,
        cursor: (!cursor.is_empty()).then(|| Text::from(cursor)),
    };
    query.validate()?;
    Ok(query)
}

/// A page of this user's ended invitations (sent, received, or both, as
/// `query` says), newest sent first, from the server's history: it keeps
/// each user's most recent ones for a configured period (by default 100,
/// for 7 days; a memory hub the same). Since ABI 2.3.
///
/// Returns at once with `BECKON_ERROR_INVALID_ARGUMENT` (an unknown role, a
/// limit over 100, `until_ms` not after `since_ms`, a cursor not of the
/// form a page gives, invalid UTF-8, a bad `struct_size`) or
/// `BECKON_ERROR_NOT_LOGGED_IN`; messages name `query.<field>`. Otherwise
/// `callback` (may be NULL) runs exactly once with the page or an error.
/// Pass the page's `next_cursor` in the next query for the page after.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_query_invitations(
    client: *mut beckon_client,
    query: *const beckon_invitation_query,
    callback: beckon_invitation_page_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_query_invitations", || {
        // SAFETY: the caller's contract for each pointer.
        let (client, query) = unsafe { (client_ref(client)?, self::query(query)?) };
        client.query_invitations_then(query, page_callback(callback, user_data))
    })
}

/// What a page's C view points into.
struct PageHolder {
    _strings: Vec<CString>,
    _invitees: Vec<InviteeArray>,
    items: Vec<beckon_invitation_summary>,
    next_cursor: CString,
}

impl PageHolder {
    fn new(page: &InvitationPage) -> PageHolder {
        let mut strings = Vec::with_capacity(page.invitations.len() * 2);
        let mut invitees = Vec::with_capacity(page.invitations.len());
        let mut items = Vec::with_capacity(page.invitations.len());
        for summary in &page.invitations {
            let id = cstring(summary.invitation_id.as_str());
            let inviter = cstring(summary.inviter.as_str());
            let statuses = InviteeArray::from_statuses(&summary.invitees);
            // The heap buffers do not move when the vectors grow.
            items.push(beckon_invitation_summary {
                invitation_id: id.as_ptr(),
                inviter: inviter.as_ptr(),
                invitees: statuses.as_ptr(),
                invitee_count: statuses.len(),
                created_ms: summary.created_ms,
                ended_ms: summary.ended_ms,
                sent_by_server: i32::from(summary.sent_by_server),
            });
            strings.push(id);
            strings.push(inviter);
            invitees.push(statuses);
        }
        PageHolder {
            _strings: strings,
            _invitees: invitees,
            items,
            next_cursor: cstring(page.next_cursor.as_deref().unwrap_or("")),
        }
    }
}

fn page_callback(
    callback: beckon_invitation_page_callback,
    user_data: UserData,
) -> Callback<InvitationPage> {
    Box::new(move |result: Result<InvitationPage>| {
        let Some(callback) = callback else { return };
        let (error, message, holder) = match &result {
            Ok(page) => (BECKON_OK, CString::default(), PageHolder::new(page)),
            Err(e) => (
                e.code as beckon_error,
                cstring(&e.message),
                PageHolder::new(&InvitationPage::default()),
            ),
        };
        let c_result = beckon_invitation_page_result {
            error,
            error_message: message.as_ptr(),
            invitations: if holder.items.is_empty() {
                std::ptr::null()
            } else {
                holder.items.as_ptr()
            },
            invitation_count: holder.items.len(),
            next_cursor: holder.next_cursor.as_ptr(),
        };
        // SAFETY: the application's callback, with a pointer valid for the call.
        unsafe { callback(user_data.get(), &c_result) };
    })
}
