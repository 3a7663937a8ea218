//! The client object: create, handle events, log in and out, poll, free.

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{guard, UserData};
use super::convert::{optional_str, required_str, sized_struct};
use super::error::beckon_error;
use super::event::{beckon_event_callback, EventHolder};
use super::results::{beckon_result_callback, result_callback};
use crate::client::{Client, ClientConfig, DispatchMode, Event};
use crate::error::{Error, Result};
use crate::protocol::{DeviceId, UserId};

/// A client: one device of one user. Create with `beckon_client_new`, free with
/// `beckon_client_free`. Every function taking it may be called from any thread.
pub struct beckon_client {
    client: Client,
}

/// Callbacks run on a thread the client owns (the default).
pub const BECKON_DISPATCH_THREAD: i32 = 0;
/// Callbacks are queued until the application calls `beckon_client_poll`.
pub const BECKON_DISPATCH_POLL: i32 = 1;
/// Callbacks run on a small pool of library threads shared by every pool-mode
/// client of the process (as many as the CPUs, 2 to 8; each client's callbacks
/// still one at a time and in order): for processes with many clients.
pub const BECKON_DISPATCH_POOL: i32 = 2;

/// How to create a client. Zero-valued fields mean "default".
///
/// Extensible: set `struct_size` to `sizeof(beckon_client_config)`. A library
/// newer than your header reads only the fields your header knew; a library
/// older than your header accepts the struct if the fields it does not know
/// are zero.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_client_config {
    pub struct_size: u32,
    /// Required. `memory://NAME` for the in-process hub NAME.
    pub server_url: *const c_char,
    /// This device's id (same rule as user ids); NULL for a random one.
    pub device_id: *const c_char,
    /// `BECKON_DISPATCH_THREAD` (0), `BECKON_DISPATCH_POLL` or
    /// `BECKON_DISPATCH_POOL`.
    pub dispatch_mode: i32,
    /// How long a request may wait for the server; 0 means 10000 ms.
    pub request_timeout_ms: u32,
}

/// The size of the struct's first version (ABI 2.0), frozen: the end of its
/// last field, whatever is added after it.
const CLIENT_CONFIG_V1: usize =
    offset_of!(beckon_client_config, request_timeout_ms) + size_of::<u32>();

/// Bytes of `beckon_client_info.user_id` and `.device_id`: an id (at most 64
/// bytes) and its NUL, rounded up so the struct has no padding.
pub const BECKON_ID_CAPACITY: usize = 68;

/// What `beckon_client_get_info` tells about a client, at the moment of the
/// call. The caller sets `struct_size` to `sizeof(beckon_client_info)`; the
/// library fills that many bytes (a library newer than your header fills only
/// the fields your header knew).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_client_info {
    pub struct_size: u32,
    /// The `BECKON_CONNECTION_*` state of the last CONNECTION_STATE_CHANGED
    /// event this client dispatched (DISCONNECTED before any): the state
    /// your handler has been told.
    pub connection_state: i32,
    /// The logged-in user, NUL-terminated; "" unless a login has succeeded
    /// and no logout (or end of session) has happened since.
    pub user_id: [c_char; BECKON_ID_CAPACITY],
    /// This client's device id, NUL-terminated: `config.device_id`, or the
    /// random one the client made. A random id differs for every client, so
    /// an app that restarts (say, after a crash) within the server's grace
    /// period would log in as another device and count against the user's
    /// device limit: apps pass their own id and keep it.
    pub device_id: [c_char; BECKON_ID_CAPACITY],
}

/// The size of `beckon_client_info`'s first version (ABI 2.0), frozen.
const CLIENT_INFO_V1: usize = offset_of!(beckon_client_info, device_id) + BECKON_ID_CAPACITY;

/// Copies `text` (at most `BECKON_ID_CAPACITY - 1` bytes: ids are at most 64)
/// with its NUL into `field`.
fn copy_id(field: &mut [c_char; BECKON_ID_CAPACITY], text: &str) {
    *field = [0; BECKON_ID_CAPACITY];
    for (slot, byte) in field
        .iter_mut()
        .zip(text.bytes().take(BECKON_ID_CAPACITY - 1))
    {
        *slot = byte as c_char;
    }
}

/// Fills `*out_info` (whose `struct_size` the caller has set) with the
/// client's connection state, logged-in user and device id. Safe from any
/// thread, callbacks included.
///
/// Memory: `client` is NULL or a live client; `out_info` is NULL or points to
/// `out_info->struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_get_info(
    client: *mut beckon_client,
    out_info: *mut beckon_client_info,
) -> beckon_error {
    guard("beckon_client_get_info", || {
        // SAFETY: caller's contract.
        let client = unsafe { client_ref(client) }?;
        if out_info.is_null() {
            return Err(Error::invalid("out_info: is NULL"));
        }
        // SAFETY: caller's contract: at least the leading u32 is there.
        let declared = unsafe { out_info.cast::<u32>().read_unaligned() } as usize;
        if !(CLIENT_INFO_V1..=64 * 1024).contains(&declared) {
            return Err(Error::invalid(format!(
                "out_info.struct_size: {declared} is not a size of beckon_client_info (set it to sizeof the struct, {})",
                size_of::<beckon_client_info>()
            )));
        }
        let mut info = beckon_client_info {
            struct_size: declared as u32,
            connection_state: client.connection_state() as i32,
            user_id: [0; BECKON_ID_CAPACITY],
            device_id: [0; BECKON_ID_CAPACITY],
        };
        if let Some(user) = client.user_id() {
            copy_id(&mut info.user_id, user.as_str());
        }
        copy_id(&mut info.device_id, client.device_id().as_str());
        let known = size_of::<beckon_client_info>();
        // SAFETY: the caller declared `declared` writable bytes; `info` has
        // `known` readable ones; fields this library does not know stay as the
        // caller left them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&info as *const beckon_client_info).cast::<u8>(),
                out_info.cast::<u8>(),
                declared.min(known),
            );
        }
        Ok(())
    })
}

/// # Safety
/// `client` is NULL or a pointer from `beckon_client_new` not yet freed.
pub(crate) unsafe fn client_ref<'a>(client: *mut beckon_client) -> Result<&'a Client> {
    if client.is_null() {
        return Err(Error::invalid("client: is NULL"));
    }
    // SAFETY: a live client by the caller's contract.
    Ok(unsafe { &(*client).client })
}

/// Creates a client and stores it in `*out_client` (set to NULL on error).
/// Nothing connects until `beckon_client_login`.
///
/// Memory: `config` is NULL or a valid config; `out_client` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_new(
    config: *const beckon_client_config,
    out_client: *mut *mut beckon_client,
) -> beckon_error {
    if !out_client.is_null() {
        // Before anything that can fail, even by a panic: NULL on every error.
        // SAFETY: non-NULL, writable by the caller's contract.
        unsafe { *out_client = std::ptr::null_mut() };
    }
    guard("beckon_client_new", || {
        if out_client.is_null() {
            return Err(Error::invalid("out_client: is NULL"));
        }
        // SAFETY: caller's contract.
        let c = unsafe { sized_struct(config, "config", CLIENT_CONFIG_V1) }?;
        // SAFETY: strings in the config are NULL or valid C strings.
        let (server_url, device_id) = unsafe {
            (
                required_str(c.server_url, "config.server_url")?,
                optional_str(c.device_id, "config.device_id")?,
            )
        };
        let mut settings = ClientConfig::new(server_url);
        if !device_id.is_empty() {
            settings.device_id = Some(DeviceId::parse(device_id, "config.device_id")?);
        }
        settings.dispatch = match c.dispatch_mode {
            BECKON_DISPATCH_THREAD => DispatchMode::Thread,
            BECKON_DISPATCH_POLL => DispatchMode::Poll,
            BECKON_DISPATCH_POOL => DispatchMode::Pool,
            other => {
                return Err(Error::invalid(format!(
                    "config.dispatch_mode: {other} is not a BECKON_DISPATCH_* value"
                )))
            }
        };
        if c.request_timeout_ms != 0 {
            settings.request_timeout = Duration::from_millis(u64::from(c.request_timeout_ms));
        }
        let client = Client::new(settings)?;
        let raw = Box::into_raw(Box::new(beckon_client { client }));
        // SAFETY: checked non-NULL above.
        unsafe { *out_client = raw };
        Ok(())
    })
}

/// Sets the function that receives this client's events (NULL removes it).
/// It runs on the client's dispatcher thread (or inside `beckon_client_poll`),
/// one event at a time, in order with the operation callbacks; it may call any
/// `beckon_*` function, including `beckon_client_free` on this client.
///
/// Returns once the previous handler is not running and will not be called
/// again, so its `user_data` may be released. Called from inside a callback,
/// it does not wait (that could deadlock): from this client's own callback the
/// old handler may be the caller itself, and is not called again once that
/// returns; from another client's callback, an event already being handled
/// may still be finishing.
///
/// Memory: `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_set_event_handler(
    client: *mut beckon_client,
    handler: beckon_event_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_client_set_event_handler", || {
        // SAFETY: caller's contract.
        let client = unsafe { client_ref(client) }?;
        let handler = handler.map(|callback| {
            Arc::new(move |event: &Event| {
                let holder = EventHolder::new(event);
                // SAFETY: the application's handler; `holder` outlives the call.
                unsafe { callback(user_data.get(), &holder.event) };
            }) as crate::client::EventHandler
        });
        client.set_event_handler(handler);
        Ok(())
    })
}

/// Logs in as `user_id` with `token` (NULL for "": memory hubs without a secret
/// accept any token). Events: CONNECTION_STATE_CHANGED to CONNECTING, then
/// CONNECTED (or DISCONNECTED on failure), before the callback runs.
/// Invitations still ringing for the user arrive after the callback.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_login(
    client: *mut beckon_client,
    user_id: *const c_char,
    token: *const c_char,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_client_login", || {
        // SAFETY: caller's contract.
        let (client, user, token) = unsafe {
            (
                client_ref(client)?,
                UserId::parse(required_str(user_id, "user_id")?, "user_id")?,
                optional_str(token, "token")?,
            )
        };
        if token.len() > 4096 {
            return Err(Error::invalid("token: longer than 4096 bytes"));
        }
        client.login_then(user, token.to_owned(), result_callback(callback, user_data))
    })
}

/// Logs out. If this was the user's last device, the invitations it sent that
/// are still pending are cancelled. Event: DISCONNECTED (LOGOUT).
///
/// Called while a login is under way, it cancels the login: the login's
/// callback gets `BECKON_ERROR_SHUTDOWN`, and once this logout's callback is
/// queued the abandoned attempt can no longer make a session (a server
/// welcome that still comes is logged out), so a new login of this device is
/// not kicked by it. This may wait up to about a second for the server.
///
/// Memory: `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_logout(
    client: *mut beckon_client,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_client_logout", || {
        // SAFETY: caller's contract.
        let client = unsafe { client_ref(client) }?;
        client.logout_then(result_callback(callback, user_data))
    })
}

/// Replaces the session's token before it expires.
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_renew_token(
    client: *mut beckon_client,
    token: *const c_char,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_client_renew_token", || {
        // SAFETY: caller's contract.
        let (client, token) = unsafe { (client_ref(client)?, required_str(token, "token")?) };
        if token.len() > 4096 {
            return Err(Error::invalid("token: longer than 4096 bytes"));
        }
        client.renew_token_then(token.to_owned(), result_callback(callback, user_data))
    })
}

/// Poll mode: waits up to `timeout_ms` (0 to 3600000) for callbacks to become
/// due, then runs, on this thread, the callbacks queued at that moment, and
/// stores how many ran in `*out_ran` (NULL if you do not need it; 0 on
/// error). Errors: a NULL client, a client not in poll mode, a timeout out of
/// range, or a call from inside one of this client's own callbacks
/// (`BECKON_ERROR_INVALID_ARGUMENT`).
///
/// Memory: `client` is NULL or a live client; `out_ran` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_poll(
    client: *mut beckon_client,
    timeout_ms: i32,
    out_ran: *mut u32,
) -> beckon_error {
    if !out_ran.is_null() {
        // SAFETY: non-NULL, writable by the caller's contract.
        unsafe { *out_ran = 0 };
    }
    guard("beckon_client_poll", || {
        if !(0..=3_600_000).contains(&timeout_ms) {
            return Err(Error::invalid(format!(
                "timeout_ms: {timeout_ms} is outside 0..=3600000"
            )));
        }
        // The poller owns what it uses: a callback may free the client while
        // this runs, and no borrow of the client is held meanwhile.
        // SAFETY: caller's contract.
        let poller = unsafe { client_ref(client) }?.poller();
        let ran = poller.poll(Duration::from_millis(timeout_ms as u64))?;
        if !out_ran.is_null() {
            // SAFETY: as above.
            unsafe { *out_ran = u32::try_from(ran).unwrap_or(u32::MAX) };
        }
        Ok(())
    })
}

/// Frees a client (NULL is accepted and ignored). Logs out (or cancels a
/// login under way), then runs every callback still pending with
/// `BECKON_ERROR_SHUTDOWN` (events still queued are dropped). When it returns
/// `BECKON_OK`, no callback of this client is running or will run, so
/// `user_data` may be released; do not use `client` after that.
///
/// Called from inside one of this client's own callbacks, it does not
/// deadlock: the pending callbacks run (with SHUTDOWN) nested inside this
/// call, the dispatcher thread ends after the current callback returns, and
/// the memory is released then.
///
/// Returns `BECKON_ERROR_WOULD_DEADLOCK`, and leaves the client as it was
/// (still live: free it later, outside the callbacks), when called from
/// another client's callback while a callback of this client is itself
/// freeing that other client: each would wait for the other. (Returns
/// `beckon_error` since ABI 2.1; `void` before, which callers may ignore.)
///
/// Memory: `client` is NULL or a pointer from `beckon_client_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_free(client: *mut beckon_client) -> beckon_error {
    guard("beckon_client_free", || {
        if client.is_null() {
            return Ok(());
        }
        // SAFETY: a live client (the caller's contract).
        unsafe { &*client }.client.try_shutdown()?;
        // SAFETY: freed above and never used again: owned here now.
        drop(unsafe { Box::from_raw(client) });
        Ok(())
    })
}
