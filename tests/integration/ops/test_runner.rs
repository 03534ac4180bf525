//! `veil test`: the shipped test files pass, a broken expectation fails
//! with a diff, `--complete` rewrites expected rows, and records need a
//! session header.

use std::path::PathBuf;

use veil_engine::tools::test_runner as policy_test;

use super::ensure;
use crate::common::{Failed, runtime, sample, testdata};

#[test]
fn veil_test_passes_on_shipped_tests() -> Result<(), Failed> {
    let engine = sample();
    let files = policy_test::workspace_test_files(&testdata("sample"))?;
    ensure(
        files.iter().any(|f| f.ends_with("tests/access.slt")) && files.len() >= 9,
        format!("expected the golden files and tests/access.slt, found {files:?}"),
    )?;
    let report = runtime().block_on(policy_test::run_files(&engine, &files, None))?;
    ensure(report.passed(), report.text())
}

/// bob.slt with BOB's masked email replaced by the raw one.
fn broken_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(testdata("sample").join("golden/bob.slt")).expect("bob.slt");
    let broken = text.replacen(
        "2 33903a27a35037d87c5a ***@example.org",
        "2 33903a27a35037d87c5a bob.jones@example.org",
        1,
    );
    assert_ne!(text, broken, "the golden file changed: update this test");
    let path = dir.path().join("bob.slt");
    std::fs::write(&path, broken).expect("write");
    (dir, path)
}

#[test]
fn veil_test_fails_with_a_diff() -> Result<(), Failed> {
    let (_dir, path) = broken_copy();
    let report = runtime().block_on(policy_test::run_files(&sample(), &[path], None))?;
    ensure(!report.passed(), "a broken expectation must fail")?;
    let text = report.text();
    ensure(
        text.contains("-   2 33903a27a35037d87c5a bob.jones@example.org")
            && text.contains("+   2 33903a27a35037d87c5a ***@example.org")
            && text.contains("bob.slt:5")
            && text.contains("test result: FAILED"),
        format!("the report shows expected vs actual rows and the location:\n{text}"),
    )?;
    let junit = report.junit();
    ensure(
        junit.contains("failures=\"1\"") && junit.contains("bob.jones@example.org"),
        format!("JUnit names the failure:\n{junit}"),
    )
}

#[test]
fn veil_test_complete_rewrites_expected_rows() -> Result<(), Failed> {
    let (_dir, path) = broken_copy();
    runtime().block_on(policy_test::complete_file(&sample(), &path, None))?;
    let text = std::fs::read_to_string(&path)?;
    ensure(
        !text.contains("bob.jones@example.org") && text.contains("# veil-session: user=BOB"),
        "--complete writes the actual rows and keeps the header",
    )?;
    let report = runtime().block_on(policy_test::run_files(&sample(), &[path], None))?;
    ensure(report.passed(), report.text())
}

#[test]
fn veil_test_needs_a_session_header() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.slt");
    std::fs::write(&path, "query I\nSELECT 1\n----\n1\n")?;
    let report = runtime().block_on(policy_test::run_files(&sample(), &[path], None))?;
    ensure(
        !report.passed()
            && report
                .text()
                .contains("no '# veil-session: user=NAME' line"),
        report.text(),
    )
}
