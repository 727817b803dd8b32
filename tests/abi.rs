//! Honesty of the C header: the committed `include/natsbridge.h` equals a fresh cbindgen
//! generation (made by `build.rs` into `OUT_DIR`), and the shared library exports exactly the
//! functions the header declares.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed_header() -> String {
    let path = root().join("include/natsbridge.h");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn committed_header_matches_a_fresh_generation() {
    let fresh_path = Path::new(env!("OUT_DIR")).join("natsbridge.h");
    let fresh = std::fs::read_to_string(&fresh_path).unwrap_or_else(|e| {
        panic!(
            "build.rs did not generate {} ({e}); look for its cargo warning in the build output",
            fresh_path.display()
        )
    });
    if fresh != committed_header() {
        let first = fresh
            .lines()
            .zip(committed_header().lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "at the end".to_owned(), |i| format!("at line {}", i + 1));
        panic!(
            "include/natsbridge.h is stale: it differs from a fresh cbindgen generation ({first}).\n\
             Update it with `make header` (NATSBRIDGE_UPDATE_HEADER=1 cargo build --lib) and \
             commit it; check that the change to the C ABI is intended (and bump NB_ABI_VERSION \
             if it breaks existing callers)."
        );
    }
}

/// Function names declared by the header.
fn declared_functions(header: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in header.lines() {
        let t = line.trim_start();
        if line.starts_with(' ')
            || t.starts_with("/*")
            || t.starts_with('*')
            || t.starts_with("typedef")
            || t.starts_with('#')
        {
            continue;
        }
        if let Some(open) = line.find('(') {
            let before = &line[..open];
            let name = before.rsplit([' ', '*']).next().unwrap_or("");
            if name.starts_with("nb_") {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The shared library of this build: `cargo test` leaves it in `target/<profile>/deps`, next to
/// this test; `cargo build` also copies it to `target/<profile>`.
fn shared_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join("libnatsbridge.so"),
        deps.parent().unwrap().join("libnatsbridge.so"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!("libnatsbridge.so not found in {candidates:?}: run `cargo build --lib`")
        })
}

#[test]
fn exported_symbols_match_the_header() {
    let declared = declared_functions(&committed_header());
    assert!(
        declared.len() > 50,
        "parsed only {declared:?} from the header"
    );
    let lib = shared_library();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("cannot run nm (binutils)");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exported = BTreeSet::new();
    let mut foreign = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split_whitespace().rev();
        let (Some(name), Some(kind)) = (f.next(), f.next()) else {
            continue;
        };
        if kind == "T" {
            if name.starts_with("nb_") {
                exported.insert(name.to_owned());
            } else {
                foreign.push(name.to_owned());
            }
        }
    }
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty() && undeclared.is_empty() && foreign.is_empty(),
        "the library and the header disagree.\n declared but not exported: {missing:?}\n \
         exported but not declared: {undeclared:?}\n exported without the nb_ prefix: {foreign:?}"
    );
}
