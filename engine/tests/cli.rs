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
    let clean = veil(&["lint", "-w", path(&sample), "--deny", "warnings"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    // The sample without its `lint: allow` list has warnings, which deny fails on.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&sample, dir.path());
    let manifest = std::fs::read_to_string(sample.join("veil.yaml")).unwrap();
    let without_allow = manifest.split("\nlint:").next().unwrap().to_string();
    std::fs::write(dir.path().join("veil.yaml"), without_allow).unwrap();
    let warned = veil(&["lint", "-w", path(dir.path())]);
    assert_eq!(warned.status.code(), Some(0), "{}", stdout(&warned));
    assert!(stdout(&warned).contains("warning"), "{}", stdout(&warned));
    let denied = veil(&["lint", "-w", path(dir.path()), "--deny", "warnings"]);
    assert_eq!(denied.status.code(), Some(1));
    let errors = veil(&["lint", "-w", path(&testdata("lint")), "-f", "json"]);
    assert_eq!(errors.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&errors.stdout).unwrap();
    assert_eq!(findings.as_array().map(Vec::len), Some(12), "{findings}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
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

/// Issue 14.4: text in a NUMBER(2,0) column is an error naming the table,
/// column and data file in both modes (not zero rows and exit 0), and
/// `veil lint` names it at file:line.
#[test]
fn query_over_text_in_a_number_column_fails_naming_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("veil.yaml"),
        "tables:\n  - name: ANALYTICS.PUBLIC.T\n    location: data/t.csv\n    columns:\n      - {name: ID, type: NUMBER(10,0)}\n      - {name: STATE, type: NUMBER(2,0)}\n\
         roles: [{name: ANALYST, grants: [ANALYTICS.PUBLIC.T]}]\n\
         users: [{name: BOB, roles: [ANALYST], groups: [Analysts], attributes: {State: [NY]}}]\n\
         policies:\n  - {name: rows, type: row, on: {data_sources: [ANALYTICS.PUBLIC.T]}, rule: {match_attribute: State, column: STATE}}\n  - {name: sub, type: subscription, on: {data_sources: [ANALYTICS.PUBLIC.T]}, allow: {groups: [Analysts]}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("data/t.csv"), "id,state\n1,NY\n2,CA\n").unwrap();
    let want = "Table ANALYTICS.PUBLIC.T: data file data/t.csv: line 2: column STATE: not a valid NUMBER(2,0); run `veil lint -w DIR` for details.";
    for mode in ["inlined", "profile-join"] {
        let out = veil(&[
            "query",
            "-w",
            path(dir.path()),
            "-u",
            "BOB",
            "--mode",
            mode,
            "SELECT * FROM t",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains(want), "{mode}: {stderr}");
        assert!(
            !stderr.contains("NY") && stdout(&out).is_empty(),
            "{mode}: {stderr}"
        );
    }
    let lint = veil(&["lint", "-w", path(dir.path())]);
    assert_eq!(lint.status.code(), Some(1), "{}", stdout(&lint));
    assert!(
        stdout(&lint).contains("error[data-invalid-value] data/t.csv:2: table ANALYTICS.PUBLIC.T: column STATE: not a valid NUMBER(2,0)"),
        "{}",
        stdout(&lint)
    );
}
