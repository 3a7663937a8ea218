//! Versions, at run time and as header macros, so a binding can check what it
//! loaded.

use std::ffi::c_char;

pub const BECKON_VERSION_MAJOR: u32 = 0;
pub const BECKON_VERSION_MINOR: u32 = 1;
pub const BECKON_VERSION_PATCH: u32 = 0;
/// Changes whenever the ABI does (a function, struct layout or constant).
pub const BECKON_ABI_VERSION: u32 = 1;

/// The library's version, e.g. "0.1.0". Static storage: never free it.
#[no_mangle]
pub extern "C" fn beckon_version() -> *const c_char {
    c"0.1.0".as_ptr()
}

/// The ABI version the library was built with; compare it with
/// `BECKON_ABI_VERSION` from the header you compiled against.
#[no_mangle]
pub extern "C" fn beckon_abi_version() -> u32 {
    BECKON_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_agree_with_cargo() {
        // SAFETY: a static NUL-terminated string.
        let runtime = unsafe { std::ffi::CStr::from_ptr(beckon_version()) };
        assert_eq!(runtime.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            parts,
            [
                BECKON_VERSION_MAJOR,
                BECKON_VERSION_MINOR,
                BECKON_VERSION_PATCH
            ]
        );
    }
}
