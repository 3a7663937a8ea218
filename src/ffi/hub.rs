//! Memory hubs with a non-default configuration, and login tokens.

use std::ffi::c_char;
use std::mem::{offset_of, size_of};
use std::time::Duration;

use super::boundary::guard;
use super::convert::{optional_str, required_str, sized_struct};
use super::error::beckon_error;
use crate::error::{Error, ErrorCode};
use crate::hub::{Hub, HubConfig};
use crate::protocol::{Limits, UserId};

/// How a memory hub behaves. Zero-valued fields mean "default".
/// Extensible like `beckon_client_config`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_hub_config {
    /// Set to `sizeof(beckon_hub_config)`.
    pub struct_size: u32,
    /// When set, logins need a token made by `beckon_token_create` with this
    /// secret; NULL accepts any token.
    pub secret: *const c_char,
    /// Distinct invitees per invitation, 1 to 1000; 0 means 32.
    pub max_invitees: u32,
    /// How long an ended invitation is remembered, in ms; 0 means 600000.
    pub retention_ms: u32,
}

/// The size of the struct's first version (ABI 2.0), frozen.
const HUB_CONFIG_V1: usize = offset_of!(beckon_hub_config, retention_ms) + size_of::<u32>();

/// The longest token `beckon_token_create` writes, with its NUL.
pub const BECKON_TOKEN_MAX_LEN: usize = 96;

/// Creates the memory hub `name` (then reached as `memory://NAME`) with
/// `config`. Fails with INVALID_ARGUMENT if a hub of that name already exists,
/// including one made by a client's first use of the name with defaults.
///
/// Memory: Pointers are NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn beckon_memory_hub_create(
    name: *const c_char,
    config: *const beckon_hub_config,
) -> beckon_error {
    guard("beckon_memory_hub_create", || {
        // SAFETY: caller's contract.
        let (name, c) = unsafe {
            (
                required_str(name, "name")?,
                sized_struct(config, "config", HUB_CONFIG_V1)?,
            )
        };
        // SAFETY: caller's contract.
        let secret = unsafe { optional_str(c.secret, "config.secret") }?;
        let mut settings = HubConfig::in_process();
        if !secret.is_empty() {
            settings.secret = Some(secret.as_bytes().to_vec());
        }
        if c.max_invitees != 0 {
            settings.limits = Limits {
                max_invitees: c.max_invitees as usize,
                ..Limits::default()
            };
        }
        if c.retention_ms != 0 {
            settings.retention = Duration::from_millis(u64::from(c.retention_ms));
        }
        crate::transport::memory::install(name, Hub::new(settings, crate::runtime::handle())?)
    })
}

/// Writes a login token for `user_id`, valid until `expiry_unix_seconds`, made
/// with `secret` (the recipe is in docs/C_API.md, so a backend can make the
/// same tokens). `buffer` needs at least `BECKON_TOKEN_MAX_LEN` bytes.
///
/// Memory: Strings are NULL or valid; `buffer` is NULL or has `buffer_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn beckon_token_create(
    secret: *const c_char,
    user_id: *const c_char,
    expiry_unix_seconds: u64,
    buffer: *mut c_char,
    buffer_len: usize,
) -> beckon_error {
    guard("beckon_token_create", || {
        // SAFETY: caller's contract.
        let (secret, user) = unsafe {
            (
                required_str(secret, "secret")?,
                UserId::parse(required_str(user_id, "user_id")?, "user_id")?,
            )
        };
        if secret.is_empty() {
            return Err(Error::invalid("secret: must not be empty"));
        }
        if buffer.is_null() {
            return Err(Error::invalid("buffer: is NULL"));
        }
        let token = crate::token::mint(secret.as_bytes(), &user, expiry_unix_seconds);
        if token.len() + 1 > buffer_len {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "buffer_len: {buffer_len} bytes, the token needs {}",
                    token.len() + 1
                ),
            ));
        }
        // SAFETY: `buffer` has room for the token and its NUL (checked above).
        unsafe {
            std::ptr::copy_nonoverlapping(token.as_ptr(), buffer as *mut u8, token.len());
            *buffer.add(token.len()) = 0;
        }
        Ok(())
    })
}
