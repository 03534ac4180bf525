//! Veil's test-only crate. Its test binaries hold the tests; this library
//! holds the little they share:
//!
//! - `integration/` (`cargo test -p veil-tests --test integration`): one
//!   binary of plain `#[test]` functions, one module per concern (security,
//!   semantics, hardening, the policy-as-code loop, ...);
//! - `golden/` (`cargo test -p veil-tests --test golden`): the per-user
//!   golden files in `testdata/sample/golden/`, run through sqllogictest in
//!   both enforcement modes, regenerated with `-- --complete`.

use std::path::PathBuf;

/// Path of a directory under the repository's `testdata/`.
pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

/// The folder of the sample workspace's per-user golden files.
pub fn golden_dir() -> PathBuf {
    testdata("sample").join("golden")
}

/// The shared queries of the golden files (`golden/shared.sql`: queries
/// separated by blank lines, `--` comment lines dropped), in order.
pub fn shared_queries() -> Vec<String> {
    let path = golden_dir().join("shared.sql");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .filter(|q| !q.is_empty())
        .collect()
}
