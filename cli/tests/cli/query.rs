//! `veil query` and `veil explain`: byte-exact output in every format,
//! data errors that name the file, a closed pipe, `--admin` limited to
//! administrators, the secret warning, and `VEIL_TRACE_STARTUP`.

use std::process::Command;

use crate::common::{path, stderr, stdout, testdata, veil, veil_into_closed_pipe};

#[test]
fn query_output_is_byte_exact_and_names_expressions_as_snowflake_does() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let sample = testdata("sample");
    let sql = "select 1, id+1, 'boost ' as c from customers where id = 2";
    let run = |format: &str| {
        let out = veil(&[
            "query",
            "-w",
            path(&sample),
            "-u",
            "bob",
            "--audit",
            path(&audit),
            "-f",
            format,
            sql,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(run("csv"), "1,ID+1,C\n1,3,boost \n");
    assert_eq!(run("json"), "[{\"1\":1,\"ID+1\":3,\"C\":\"boost \"}]\n");
    let table = run("table");
    assert!(table.contains("| 1 | ID+1 | C      |"), "{table}");
    assert!(table.contains("| 1 | 3    | boost  |"), "{table}");
    let admin = veil(&[
        "query",
        "-w",
        path(&sample),
        "-u",
        "admin",
        "--admin",
        "--audit",
        path(&audit),
        "-f",
        "csv",
        "select 1",
    ]);
    assert_eq!(stdout(&admin), "1\n1\n", "{}", stderr(&admin));
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

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let sample = testdata("sample");
    for args in [
        vec![
            "query",
            "-w",
            path(&sample),
            "-u",
            "carol",
            "--audit",
            path(&audit),
            "select * from customers, orders",
        ],
        vec!["lint", "-w", path(&sample)],
        vec![
            "explain",
            "-w",
            path(&sample),
            "-u",
            "bob",
            "--audit",
            path(&audit),
            "select * from customers",
        ],
        vec!["completions", "bash"],
    ] {
        let out = veil_into_closed_pipe(&args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn admin_is_refused_to_non_administrators() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let out = veil(&[
        "query",
        "-w",
        path(&testdata("sample")),
        "-u",
        "bob",
        "--admin",
        "--audit",
        path(&audit),
        "select ssn from customers",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("'BOB' is not a workspace administrator"),
        "{err}"
    );
    assert_eq!(
        err.trim().lines().count(),
        2,
        "the secret warning and one error: {err}"
    );
}

#[test]
fn the_secret_warning_shows_once_and_only_when_hashing() {
    let warning = "is not set: hashing uses Veil's development secret";
    let diff = veil(&[
        "diff",
        path(&testdata("sample")),
        path(&testdata("sample-v2")),
    ]);
    assert_eq!(
        stderr(&diff).matches(warning).count(),
        1,
        "{}",
        stderr(&diff)
    );
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let no_hash = veil(&[
        "query",
        "-w",
        path(&testdata("snowflake")),
        "-u",
        "admin",
        "--admin",
        "--audit",
        path(&audit),
        "select 1",
    ]);
    assert_eq!(no_hash.status.code(), Some(0), "{}", stderr(&no_hash));
    assert!(!stderr(&no_hash).contains(warning), "{}", stderr(&no_hash));
}

#[test]
fn trace_startup_prints_phase_timings_on_stderr_only() {
    let sample = testdata("sample");
    let args = [
        "query",
        "-w",
        path(&sample),
        "-u",
        "bob",
        "--audit",
        "/dev/null",
        "select 1",
    ];
    let plain = veil(&args);
    let traced = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("VEIL_SAMPLE_SECRET")
        .env("VEIL_TRACE_STARTUP", "1")
        .output()
        .expect("veil runs");
    assert_eq!(traced.status.code(), Some(0));
    assert_eq!(stdout(&traced), stdout(&plain), "the trace changed stdout");
    let err = String::from_utf8_lossy(&traced.stderr);
    for phase in [
        "load: read + parse YAML",
        "version: data check",
        "session: bind",
        "statement: plan",
        "main: total",
    ] {
        assert!(
            err.contains(&format!("veil-trace: {phase}")),
            "{phase}: {err}"
        );
    }
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("veil-trace"));
}
