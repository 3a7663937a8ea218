//! Push targets: where a device is rung while it is not connected (APNs,
//! FCM, a webhook), and the constants of the inviter's push results. Since
//! ABI 2.2.

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};

use super::boundary::{guard, guard_value, UserData};
use super::client::{beckon_client, client_ref};
use super::convert::{optional_str, required_str, sized_struct};
use super::error::beckon_error;
use super::results::{beckon_result_callback, result_callback};
use crate::error::{Error, Result};
use crate::protocol::{ApnsEnvironment, PushOutcome, PushProvider, PushTarget, Text};

// Push providers (`beckon_push_target.provider`, `beckon_event.push_provider`).
/// APNs alert pushes.
pub const BECKON_PUSH_PROVIDER_APNS: i32 = 1;
/// APNs VoIP pushes, for PushKit and CallKit (the server adds `.voip` to the
/// topic).
pub const BECKON_PUSH_PROVIDER_APNS_VOIP: i32 = 2;
/// Firebase Cloud Messaging (HTTP v1), high-priority data messages.
pub const BECKON_PUSH_PROVIDER_FCM: i32 = 3;
/// A signed HTTP POST to the app's own backend.
pub const BECKON_PUSH_PROVIDER_WEBHOOK: i32 = 4;

// APNs environments (`beckon_push_target.environment`).
/// The production APNs servers (release builds); the default.
pub const BECKON_APNS_PRODUCTION: i32 = 0;
/// The APNs sandbox (development builds' tokens only work there).
pub const BECKON_APNS_SANDBOX: i32 = 1;

// Push outcomes (`beckon_event.push_outcome`).
/// The provider took the push.
pub const BECKON_PUSH_SENT: i32 = 1;
/// The provider refused it or could not be reached; `push_reason` says why.
pub const BECKON_PUSH_FAILED: i32 = 2;
/// The invitee is offline and none of its devices has a push target.
pub const BECKON_PUSH_NO_TARGET: i32 = 3;

/// Where this device is rung by push while it is not connected. Since ABI
/// 2.2.
///
/// Extensible: set `struct_size` to `sizeof(beckon_push_target)`; zero
/// fields mean "default".
#[repr(C)]
#[derive(Clone, Copy)]
pub struct beckon_push_target {
    pub struct_size: u32,
    /// A `BECKON_PUSH_PROVIDER_*` value (required).
    pub provider: i32,
    /// Required: the APNs device token (16 to 200 hex digits; PushKit's for
    /// APNS_VOIP), the FCM registration token, or for a webhook what the
    /// app's backend knows the device by. Printable ASCII, at most 4096 bytes.
    pub token: *const c_char,
    /// APNS and APNS_VOIP only: the app's bundle id (the server adds `.voip`
    /// for APNS_VOIP); NULL or "" for the topic configured on the server.
    pub topic: *const c_char,
    /// APNS and APNS_VOIP only: `BECKON_APNS_PRODUCTION` (0) or
    /// `BECKON_APNS_SANDBOX`.
    pub environment: i32,
    /// APNS_VOIP only: the device's regular APNs token (from
    /// `registerForRemoteNotifications`), where stop pushes go as alerts (a
    /// PushKit token takes VoIP pushes only, and iOS requires every VoIP push
    /// to report a call). NULL or "" for none: then the app learns that a
    /// call ended when it connects.
    pub alert_token: *const c_char,
}

/// The size of the struct's first version (ABI 2.2), frozen.
const PUSH_TARGET_V1: usize =
    offset_of!(beckon_push_target, alert_token) + size_of::<*const c_char>();

/// The Rust provider of a C value.
pub(crate) fn provider_of(value: i32) -> Option<PushProvider> {
    match value {
        BECKON_PUSH_PROVIDER_APNS => Some(PushProvider::Apns),
        BECKON_PUSH_PROVIDER_APNS_VOIP => Some(PushProvider::ApnsVoip),
        BECKON_PUSH_PROVIDER_FCM => Some(PushProvider::Fcm),
        BECKON_PUSH_PROVIDER_WEBHOOK => Some(PushProvider::Webhook),
        _ => None,
    }
}

/// The C value of a provider.
pub(crate) fn provider_value(provider: PushProvider) -> i32 {
    match provider {
        PushProvider::Apns => BECKON_PUSH_PROVIDER_APNS,
        PushProvider::ApnsVoip => BECKON_PUSH_PROVIDER_APNS_VOIP,
        PushProvider::Fcm => BECKON_PUSH_PROVIDER_FCM,
        PushProvider::Webhook => BECKON_PUSH_PROVIDER_WEBHOOK,
    }
}

/// The C value of an outcome.
pub(crate) fn outcome_value(outcome: PushOutcome) -> i32 {
    match outcome {
        PushOutcome::Sent => BECKON_PUSH_SENT,
        PushOutcome::Failed => BECKON_PUSH_FAILED,
        PushOutcome::NoPushTarget => BECKON_PUSH_NO_TARGET,
    }
}

/// Reads and checks a `beckon_push_target`; errors name `field.<member>`
/// (`target.token: ...`).
///
/// # Safety
/// `ptr` is NULL or a valid `beckon_push_target` whose strings are NULL or
/// NUL-terminated, all valid during the call.
pub(crate) unsafe fn push_target(
    ptr: *const beckon_push_target,
    field: &str,
) -> Result<PushTarget> {
    // SAFETY: caller's contract.
    let c = unsafe { sized_struct(ptr, field, PUSH_TARGET_V1) }?;
    let provider = provider_of(c.provider).ok_or_else(|| {
        Error::invalid(format!(
            "{field}.provider: {} is not a BECKON_PUSH_PROVIDER_* value",
            c.provider
        ))
    })?;
    let environment = match c.environment {
        BECKON_APNS_PRODUCTION => ApnsEnvironment::Production,
        BECKON_APNS_SANDBOX => ApnsEnvironment::Sandbox,
        other => {
            return Err(Error::invalid(format!(
                "{field}.environment: {other} is not a BECKON_APNS_* value"
            )))
        }
    };
    // SAFETY: the strings are NULL or valid C strings (caller's contract).
    let (token, topic, alert_token) = unsafe {
        (
            required_str(c.token, &format!("{field}.token"))?,
            optional_str(c.topic, &format!("{field}.topic"))?,
            optional_str(c.alert_token, &format!("{field}.alert_token"))?,
        )
    };
    let some = |text: &str| (!text.is_empty()).then(|| Text::from(text));
    let target = PushTarget {
        provider,
        token: Text::from(token),
        topic: some(topic),
        environment,
        alert_token: some(alert_token),
    };
    // The protocol names the fields `push_target.<field>`; here the argument
    // is `field`.
    target.validate().map_err(|mut error| {
        if let Some(rest) = error.message.strip_prefix("push_target.") {
            error.message = format!("{field}.{rest}");
        }
        error
    })?;
    Ok(target)
}

/// Rings this device by push while it is not connected (its app killed or
/// in the background), replacing the target it had. Since ABI 2.2.
///
/// The server keeps the target past this connection: after a dropped
/// connection, a reconnect or a new login of the same device it is still
/// there, so there is no need to set it again. An explicit logout
/// (`beckon_client_logout`, and `beckon_client_free`, which logs out)
/// forgets it, and so does the provider saying the token is no longer
/// valid: set it again after logging in anew, and whenever the platform
/// gives the app a new token.
///
/// Returns at once with `BECKON_ERROR_INVALID_ARGUMENT` (NULL, invalid
/// UTF-8, an unknown provider or environment, a malformed token or topic, a
/// field its provider does not have), `BECKON_ERROR_PAYLOAD_TOO_LARGE` (a
/// token over 4096 bytes) or `BECKON_ERROR_NOT_LOGGED_IN`; messages name
/// `target.<field>`. Otherwise `callback` (may be NULL) runs exactly once:
/// OK, or `BECKON_ERROR_INVALID_ARGUMENT` when the server does not push
/// through that provider (a memory hub pushes through none).
///
/// Memory: Pointers are NULL or valid; `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_set_push_target(
    client: *mut beckon_client,
    target: *const beckon_push_target,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_client_set_push_target", || {
        // SAFETY: the caller's contract for each pointer.
        let (client, target) = unsafe { (client_ref(client)?, push_target(target, "target")?) };
        client.set_push_target_then(target, result_callback(callback, user_data))
    })
}

/// Forgets this device's push target, if it has one: the device is no
/// longer rung while it is not connected. The callback (may be NULL) runs
/// exactly once if this returns `BECKON_OK`. Since ABI 2.2.
///
/// Memory: `client` is a live client.
#[no_mangle]
pub unsafe extern "C" fn beckon_client_clear_push_target(
    client: *mut beckon_client,
    callback: beckon_result_callback,
    user_data: *mut c_void,
) -> beckon_error {
    let user_data = UserData::new(user_data);
    guard("beckon_client_clear_push_target", || {
        // SAFETY: caller's contract.
        let client = unsafe { client_ref(client) }?;
        client.clear_push_target_then(result_callback(callback, user_data))
    })
}

/// The name of a push provider, e.g. "APNS_VOIP"; "UNKNOWN" otherwise.
/// Static storage: never free it. Since ABI 2.2.
#[no_mangle]
pub extern "C" fn beckon_push_provider_name(provider: i32) -> *const c_char {
    guard_value(c"UNKNOWN".as_ptr(), || {
        match provider {
            BECKON_PUSH_PROVIDER_APNS => c"APNS",
            BECKON_PUSH_PROVIDER_APNS_VOIP => c"APNS_VOIP",
            BECKON_PUSH_PROVIDER_FCM => c"FCM",
            BECKON_PUSH_PROVIDER_WEBHOOK => c"WEBHOOK",
            _ => c"UNKNOWN",
        }
        .as_ptr()
    })
}

/// The name of a push outcome, e.g. "NO_TARGET"; "UNKNOWN" otherwise.
/// Static storage: never free it. Since ABI 2.2.
#[no_mangle]
pub extern "C" fn beckon_push_outcome_name(outcome: i32) -> *const c_char {
    guard_value(c"UNKNOWN".as_ptr(), || {
        match outcome {
            BECKON_PUSH_SENT => c"SENT",
            BECKON_PUSH_FAILED => c"FAILED",
            BECKON_PUSH_NO_TARGET => c"NO_TARGET",
            _ => c"UNKNOWN",
        }
        .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn target(provider: i32, token: &std::ffi::CStr) -> beckon_push_target {
        beckon_push_target {
            struct_size: size_of::<beckon_push_target>() as u32,
            provider,
            token: token.as_ptr(),
            topic: std::ptr::null(),
            environment: 0,
            alert_token: std::ptr::null(),
        }
    }

    #[test]
    fn every_provider_round_trips() {
        for provider in PushProvider::ALL {
            assert_eq!(provider_of(provider_value(provider)), Some(provider));
        }
        assert_eq!(provider_of(0), None);
    }

    #[test]
    fn errors_name_the_argument_s_fields() {
        let read = |c: beckon_push_target| {
            // SAFETY: a valid struct with static strings.
            unsafe { push_target(&c, "target") }
        };
        let ok = read(target(BECKON_PUSH_PROVIDER_FCM, c"fcm-token")).unwrap();
        assert_eq!(ok.provider, PushProvider::Fcm);
        let error = read(target(9, c"t")).unwrap_err();
        assert!(error.message.starts_with("target.provider: 9"), "{error}");
        let error = read(target(BECKON_PUSH_PROVIDER_APNS, c"zz")).unwrap_err();
        assert!(error.message.starts_with("target.token"), "{error}");
        let mut sandbox = target(BECKON_PUSH_PROVIDER_FCM, c"t");
        sandbox.environment = BECKON_APNS_SANDBOX;
        let error = read(sandbox).unwrap_err();
        assert!(error.message.starts_with("target.environment"), "{error}");
        sandbox.environment = 2;
        let error = read(sandbox).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidArgument);
        assert!(error.message.contains("BECKON_APNS_"), "{error}");
        // "" is no topic, as NULL is.
        let mut empty = target(
            BECKON_PUSH_PROVIDER_APNS,
            c"abababababababababababababababab",
        );
        empty.topic = c"".as_ptr();
        assert_eq!(read(empty).unwrap().topic, None);
    }
}
