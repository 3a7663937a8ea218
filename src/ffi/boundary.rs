//! The panic boundary and the per-thread last error message.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorCode, Result};
use crate::log::Level;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A C string that never fails to build: NUL bytes are dropped.
pub(crate) fn cstring(text: &str) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        // Validated text never has NUL; anything else loses its NUL bytes.
        Err(_) => CString::new(text.replace('\0', "")).unwrap_or_default(),
    }
}

fn set_last_error(message: &str) {
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        // Successful calls clear it; skip the allocation when already clear.
        if !(message.is_empty() && slot.as_bytes().is_empty()) {
            *slot = cstring(message);
        }
    });
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// Runs the body of an exported function: catches panics (INTERNAL), records
/// the message of any error for `beckon_last_error_message`, returns the code.
pub(crate) fn guard(what: &str, body: impl FnOnce() -> Result<()>) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        #[cfg(feature = "test-hooks")]
        crate::testing::maybe_panic(crate::testing::PanicPoint::Entry);
        body()
    }));
    let result = match outcome {
        Ok(result) => result,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::internal(format!(
                "{what}: panic inside the library: {detail}"
            )))
        }
    };
    match result {
        Ok(()) => {
            set_last_error("");
            ErrorCode::Ok as i32
        }
        Err(error) => {
            crate::log!(Level::Warn, "api", "{what}: {error}");
            set_last_error(&error.message);
            error.code as i32
        }
    }
}

/// Like `guard` for functions that return a value instead of an error code.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The application's `void *user_data`: the library only hands it back, on the
/// dispatcher thread, so moving it between threads is the application's contract.
#[derive(Clone, Copy)]
pub struct UserData(*mut c_void);

impl UserData {
    pub fn new(pointer: *mut c_void) -> UserData {
        UserData(pointer)
    }

    /// A method (not field access) so that closures capture the whole `Send`
    /// wrapper, not the raw pointer inside it.
    pub fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the pointer is never dereferenced by the library; the C API documents
// that callbacks receive it on the client's dispatcher thread.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}
