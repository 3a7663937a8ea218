//! Versions, at run time and as header macros, so a binding can check what it
//! loaded.

use std::ffi::c_char;

use super::boundary::guard_value;

pub const BECKON_VERSION_MAJOR: u32 = 0;
pub const BECKON_VERSION_MINOR: u32 = 1;
pub const BECKON_VERSION_PATCH: u32 = 0;
/// The ABI's major version: changes when a program built against an older
/// header could break (a function, struct layout or constant changed or gone).
pub const BECKON_ABI_VERSION_MAJOR: u32 = 2;
/// The ABI's minor version: changes when something is added (a function, a
/// field at the end of a config struct, a constant); older programs still work.
pub const BECKON_ABI_VERSION_MINOR: u32 = 3;
/// `(BECKON_ABI_VERSION_MAJOR << 16) | BECKON_ABI_VERSION_MINOR`. A library
/// serves a program built against the same major and an older or equal minor
/// (`BECKON_ABI_COMPATIBLE`).
pub const BECKON_ABI_VERSION: u32 = (BECKON_ABI_VERSION_MAJOR << 16) | BECKON_ABI_VERSION_MINOR;

/// The library's version, e.g. "0.1.0". Static storage: never free it.
#[no_mangle]
pub extern "C" fn beckon_version() -> *const c_char {
    guard_value(c"".as_ptr(), || c"0.1.0".as_ptr())
}

/// The ABI version the library was built with,
/// `(major << 16) | minor`. A program built against `BECKON_ABI_VERSION`
/// may use this library if `BECKON_ABI_COMPATIBLE(beckon_abi_version())`:
/// the same major, and a minor at least the header's.
#[no_mangle]
pub extern "C" fn beckon_abi_version() -> u32 {
    guard_value(BECKON_ABI_VERSION, || BECKON_ABI_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compatibility rule itself is the header's `BECKON_ABI_COMPATIBLE`,
    /// tested from C against synthetic versions (tests/c/test_abi.c).
    #[test]
    fn the_abi_version_is_major_and_minor() {
        assert_eq!(BECKON_ABI_VERSION >> 16, 2, "major");
        assert_eq!(BECKON_ABI_VERSION & 0xFFFF, 3, "minor");
        assert_eq!(beckon_abi_version(), BECKON_ABI_VERSION);
    }

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
