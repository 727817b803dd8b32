//! Generates the C header `include/natsbridge.h` from `src/ffi/` with cbindgen.
//!
//! Every build writes a fresh generation to `$OUT_DIR/natsbridge.h`; `tests/abi.rs` fails when
//! the committed header differs from it. The committed header is written only when it is
//! missing or when `NATSBRIDGE_UPDATE_HEADER=1` (`make header`). A generation failure is a
//! warning, not a build error, so a half-edited `src/ffi/` does not stop other work; the
//! header test then fails.

use std::env;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("natsbridge.h");
    let committed = root.join("include/natsbridge.h");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/natsbridge.h");
    println!("cargo:rerun-if-env-changed=NATSBRIDGE_UPDATE_HEADER");

    let _ = std::fs::remove_file(&out);
    let config = match cbindgen::Config::from_file(root.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            println!("cargo:warning=cbindgen.toml: {e}");
            return;
        }
    };
    let bindings = match cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            println!("cargo:warning=cannot generate include/natsbridge.h: {e}");
            return;
        }
    };
    bindings.write_to_file(&out);
    let update = env::var("NATSBRIDGE_UPDATE_HEADER").is_ok_and(|v| v == "1");
    if update || !committed.exists() {
        bindings.write_to_file(&committed);
    }
}
