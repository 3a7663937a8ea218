//! `include/beckon.h` is generated from the Rust source by cbindgen and
//! committed; this test fails when it is stale. Regenerate with
//! `BECKON_BLESS=1 cargo test --test header`.

use std::path::Path;

#[test]
fn header_matches_the_rust_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = root.join("include/beckon.h");
    if std::env::var_os("BECKON_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/beckon.h");
        return;
    }
    let version_macro = format!("#define BECKON_VERSION \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        generated.contains(&version_macro),
        "cbindgen.toml's BECKON_VERSION must match Cargo.toml ({version_macro})"
    );
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/beckon.h is stale: regenerate it with `BECKON_BLESS=1 cargo test --test header` and commit it"
    );
}
