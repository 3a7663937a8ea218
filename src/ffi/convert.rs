//! Checked conversions of C arguments into Rust values. Each error names the
//! argument, so the C caller learns exactly what was wrong.

use std::ffi::{c_char, CStr};
use std::mem::{size_of, MaybeUninit};

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{Text, UserId};

/// A NUL-terminated UTF-8 string that must not be NULL.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for the
/// returned lifetime (the duration of the API call).
pub(crate) unsafe fn required_str<'a>(ptr: *const c_char, field: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{field}: is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Error::invalid(format!(
            "{field}: not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })
}

/// Like `required_str`, with NULL read as "".
///
/// # Safety
/// As `required_str`.
pub(crate) unsafe fn optional_str<'a>(ptr: *const c_char, field: &str) -> Result<&'a str> {
    if ptr.is_null() {
        Ok("")
    } else {
        // SAFETY: forwarded contract.
        unsafe { required_str(ptr, field) }
    }
}

/// # Safety
/// As `required_str`.
pub(crate) unsafe fn optional_text(ptr: *const c_char, field: &str) -> Result<Text> {
    // SAFETY: forwarded contract.
    unsafe { optional_str(ptr, field) }.map(Text::from)
}

/// The most entries an invitee array may have before folding duplicates; far
/// above any configurable limit, so a wild count is refused before it is read.
const MAX_RAW_INVITEES: usize = 10_000;

/// An array of `count` user ids.
///
/// # Safety
/// `ptr` is NULL or points to `count` pointers, each NULL or a NUL-terminated
/// string, all valid during the call.
pub(crate) unsafe fn user_ids(
    ptr: *const *const c_char,
    count: usize,
    field: &str,
) -> Result<Vec<UserId>> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{field}: is NULL")));
    }
    if count == 0 {
        return Err(Error::invalid(format!("{field}: the list is empty")));
    }
    if count > MAX_RAW_INVITEES {
        return Err(Error::new(
            ErrorCode::TooManyInvitees,
            format!("{field}: {count} entries, far over any limit"),
        ));
    }
    // SAFETY: `ptr` points to `count` readable pointers (caller's contract).
    let entries = unsafe { std::slice::from_raw_parts(ptr, count) };
    entries
        .iter()
        .enumerate()
        .map(|(index, &entry)| {
            // SAFETY: each entry is NULL or a valid C string (caller's contract).
            // The field name is only formatted on the error path.
            let text = unsafe { required_str(entry, "") }
                .map_err(|e| Error::invalid(format!("{field}[{index}]{}", e.message)))?;
            UserId::parse(text, "")
                .map_err(|e| Error::invalid(format!("{field}[{index}]{}", e.message)))
        })
        .collect()
}

/// A config struct with a leading `uint32_t struct_size`: reads the fields the
/// caller's header knew (the rest stay zero, meaning "default"); a larger struct
/// from a newer header is accepted only if the fields this library does not know
/// are all zero.
///
/// # Safety
/// `ptr` is NULL or points to at least `struct_size` readable bytes, and `T` is
/// a `#[repr(C)]` struct of integers and pointers (valid when all zero) whose
/// first field is the `u32` size.
pub(crate) unsafe fn sized_struct<T: Copy>(
    ptr: *const T,
    field: &str,
    min_size: usize,
) -> Result<T> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{field}: is NULL")));
    }
    // SAFETY: at least the leading u32 is readable.
    let declared = unsafe { (ptr as *const u32).read_unaligned() } as usize;
    if declared < min_size {
        return Err(Error::invalid(format!(
            "{field}.struct_size: {declared} is below the smallest known size {min_size} (set it to sizeof the struct)"
        )));
    }
    if declared > 64 * 1024 {
        return Err(Error::invalid(format!(
            "{field}.struct_size: {declared} is not a plausible size"
        )));
    }
    let known = size_of::<T>();
    if declared > known {
        // SAFETY: the caller declared `declared` readable bytes.
        let tail =
            unsafe { std::slice::from_raw_parts((ptr as *const u8).add(known), declared - known) };
        if tail.iter().any(|&b| b != 0) {
            return Err(Error::invalid(format!(
                "{field}: sets fields this library version does not know (struct_size {declared}, known {known})"
            )));
        }
    }
    let mut value = MaybeUninit::<T>::zeroed();
    // SAFETY: copies min(declared, known) bytes into a zeroed T; an all-zero
    // prefix/suffix is a valid T for the structs this is used with.
    unsafe {
        std::ptr::copy_nonoverlapping(
            ptr as *const u8,
            value.as_mut_ptr() as *mut u8,
            declared.min(known),
        );
        Ok(value.assume_init())
    }
}

/// Like `sized_struct`, with NULL read as a config of defaults (all zero).
///
/// # Safety
/// As `sized_struct`.
pub(crate) unsafe fn optional_config<T: Copy>(
    ptr: *const T,
    field: &str,
    min_size: usize,
) -> Result<T> {
    if ptr.is_null() {
        // SAFETY: the config structs are integers and pointers, valid when
        // zero (as `sized_struct` relies on too).
        return Ok(unsafe { MaybeUninit::<T>::zeroed().assume_init() });
    }
    // SAFETY: forwarded contract.
    unsafe { sized_struct(ptr, field, min_size) }
}
