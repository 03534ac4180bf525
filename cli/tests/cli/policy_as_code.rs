//! The policy-as-code commands' exit codes and output: `veil test` (a
//! broken copy, `--junit`, `--complete` and the secret's fingerprint),
//! `veil lint` (severity and `--deny`), and `veil diff` (JSON,
//! `--exit-code`).

use crate::common::{copy_dir, path, stderr, stdout, testdata, veil, veil_env, workspace_copy};

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
fn tests_completed_with_another_secret_fail_with_that_reason() {
    let ws = workspace_copy("sample");
    let file = ws.path().join("golden/bob.slt");
    let secret = [(
        "VEIL_SAMPLE_SECRET",
        "the secret the file was completed with",
    )];
    let completed = veil_env(
        &["test", "-w", path(ws.path()), path(&file), "--complete"],
        &secret,
    );
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    let text = std::fs::read_to_string(&file).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("# veil-secret-fingerprint: "), "{text}");
    assert_eq!(header.len(), "# veil-secret-fingerprint: ".len() + 16);
    assert!(!text.contains("the secret the file"));
    assert_eq!(text.matches("veil-secret-fingerprint").count(), 1);

    let same = veil_env(&["test", "-w", path(ws.path()), path(&file)], &secret);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    let other = veil_env(
        &["test", "-w", path(ws.path()), path(&file)],
        &[("VEIL_SAMPLE_SECRET", "another secret")],
    );
    assert_eq!(other.status.code(), Some(1));
    let out = stdout(&other);
    assert!(
        out.contains("was completed with another hashing secret"),
        "{out}"
    );
    assert!(!out.contains("[Diff]"), "{out}");

    // Completing again keeps one header.
    let again = veil_env(
        &["test", "-w", path(ws.path()), path(&file), "--complete"],
        &secret,
    );
    assert_eq!(again.status.code(), Some(0));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("veil-secret-fingerprint").count(), 1, "{text}");
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
fn diff_exit_code_fails_on_changes_and_modes_take_both_spellings() {
    let sample = testdata("sample");
    let changed = veil(&[
        "diff",
        path(&sample),
        path(&testdata("sample-v2")),
        "--exit-code",
    ]);
    assert_eq!(changed.status.code(), Some(1), "{}", stderr(&changed));
    assert!(stdout(&changed).contains("→"));
    let same = veil(&["diff", path(&sample), path(&sample), "--exit-code"]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    let without = veil(&["diff", path(&sample), path(&testdata("sample-v2"))]);
    assert_eq!(without.status.code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    for mode in ["profile-join", "profile_join", "inlined"] {
        let out = veil(&[
            "query",
            "-w",
            path(&sample),
            "-u",
            "bob",
            "--audit",
            path(&audit),
            "--mode",
            mode,
            "-f",
            "csv",
            "select count(*) as n from customers",
        ]);
        assert_eq!(stdout(&out), "N\n3\n", "{mode}: {}", stderr(&out));
    }
    let test = veil(&["test", "-w", path(&sample), "--mode", "profile_join"]);
    assert_eq!(test.status.code(), Some(0), "{}", stdout(&test));
}
