//! Link settings for the shared library (libbeckon.so).
//!
//! On ELF targets the cdylib is linked with `packaging/libbeckon.map`, a linker
//! version script whose only global pattern is `beckon_*`: the export list of
//! the C ABI is stated in the repository, not left to the toolchain. It applies
//! to `cargo build` and to `cargo cinstall` (cargo-c runs this script too).
//!
//! rustc passes its own version script as well, listing the crate's exported
//! `#[no_mangle]` functions by name; GNU ld takes an exact name over a
//! wildcard, so ours cannot hide a function that rustc chose to export. That
//! case is what `scripts/packaging-test.sh` (and `scripts/test.sh`) catch with
//! `nm -D --defined-only`. The SONAME is not set here: only installed copies
//! carry one (cargo-c sets it; docs/INSTALL.md has the scheme), so that
//! programs linked against `target/*/libbeckon.so` in the tree keep running.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=packaging/libbeckon.map");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf_with_gnu_style_linker = matches!(
        target_os.as_str(),
        "linux" | "android" | "freebsd" | "dragonfly" | "netbsd" | "openbsd" | "illumos" | "hurd"
    );
    if !elf_with_gnu_style_linker {
        // Mach-O and PE: rustc's own export list (or .def file) applies.
        return;
    }
    let Ok(manifest_dir) = env::var("CARGO_MANIFEST_DIR") else {
        println!("cargo:warning=CARGO_MANIFEST_DIR is not set: libbeckon.map not applied");
        return;
    };
    let map = Path::new(&manifest_dir)
        .join("packaging")
        .join("libbeckon.map");
    if !map.is_file() {
        println!(
            "cargo:warning={} is missing: libbeckon.map not applied",
            map.display()
        );
        return;
    }
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
}
