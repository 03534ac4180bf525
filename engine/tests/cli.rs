//! The `veil` binary's exit codes and output for the policy-as-code
//! commands (`test`, `lint`, `diff`, `query --audit/--admin`). These run the
//! real binary, which only this package's integration tests can locate
//! (`CARGO_BIN_EXE_veil`); everything else is tested in `tests/`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("VEIL_SAMPLE_SECRET")
        .output()
        .expect("veil runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn test_command_exits_1_with_a_diff_on_a_broken_copy() {
    let sample = testdata("sample");
    let ok = veil(&["test", "-w", path(&sample)]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("test result: ok. 9 files"),
        "{}",
        stdout(&ok)
    );

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample.join("golden/bob.slt")).unwrap();
    let broken = dir.path().join("bob.slt");
    std::fs::write(
        &broken,
        text.replacen("***@example.org", "bob.jones@example.org", 1),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let failed = veil(&[
        "test",
        "-w",
        path(&sample),
        path(&broken),
        "--junit",
        path(&junit),
    ]);
    assert_eq!(failed.status.code(), Some(1));
    let out = stdout(&failed);
    assert!(out.contains("[Diff] (-expected|+actual)"), "{out}");
    assert!(
        out.contains("-   2 33903a27a35037d87c5a bob.jones@example.org"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<failure")
    );
}

#[test]
fn lint_exit_codes_follow_severity_and_deny() {
    let sample = testdata("sample");
    let warnings_only = veil(&["lint", "-w", path(&sample)]);
    assert_eq!(
        warnings_only.status.code(),
        Some(0),
        "{}",
        stdout(&warnings_only)
    );
    let denied = veil(&["lint", "-w", path(&sample), "--deny", "warnings"]);
    assert_eq!(denied.status.code(), Some(1));
    let errors = veil(&["lint", "-w", path(&testdata("lint")), "-f", "json"]);
    assert_eq!(errors.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&errors.stdout).unwrap();
    assert_eq!(findings.as_array().map(Vec::len), Some(11), "{findings}");
}

#[test]
fn diff_prints_json() {
    let out = veil(&[
        "diff",
        path(&testdata("sample")),
        path(&testdata("sample-v2")),
        "-f",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["changes"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );
}

#[test]
fn queries_are_audited_and_administrators_read_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let ws = testdata("sample");
    let q = veil(&[
        "query",
        "-w",
        path(&ws),
        "-u",
        "bob",
        "--audit",
        path(&audit),
        "select count(*) from customers",
    ]);
    assert_eq!(q.status.code(), Some(0));
    let denied = veil(&[
        "query",
        "-w",
        path(&ws),
        "-u",
        "bob",
        "--audit",
        path(&audit),
        "select * from veil.audit",
    ]);
    assert_eq!(
        denied.status.code(),
        Some(1),
        "users may not read the audit"
    );
    let admin = veil(&[
        "query",
        "-w",
        path(&ws),
        "-u",
        "admin",
        "--admin",
        "--audit",
        path(&audit),
        "-f",
        "csv",
        "select actor, status from veil.audit order by timestamp",
    ]);
    assert_eq!(admin.status.code(), Some(0));
    assert_eq!(
        stdout(&admin).trim(),
        "ACTOR,STATUS\nBOB,SUCCESS\nBOB,FAILURE"
    );
}
