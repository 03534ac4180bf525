//! The `veil` binary's exit codes and output for the policy-as-code
//! commands (`test`, `lint`, `diff`, `query --audit/--admin`), and the
//! README's transcripts against the binary's real output. These run the
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
/// `veil` with extra environment variables.
fn veil_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_veil"));
    c.args(args).env_remove("VEIL_SAMPLE_SECRET");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("veil runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A copy of a sample workspace in a temporary directory (without any
/// `state/` a manual run left), for tests that write into the workspace.
fn workspace_copy(name: &str) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                if entry.file_name() != "state" {
                    copy(&entry.path(), &target);
                }
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&testdata(name), dir.path());
    dir
}

/// Runs `veil` with its stdout already closed by the reader, as in
/// `veil query … | head -0`.
fn veil_into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("VEIL_SAMPLE_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("veil runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("veil ends")
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

#[test]
fn shell_reads_statements_and_meta_commands_from_a_pipe() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "shell",
            "-w",
            path(&testdata("sample")),
            "-u",
            "bob",
            "--audit",
            path(&audit),
        ])
        .env_remove("VEIL_SAMPLE_SECRET")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("veil runs");
    let input = "select count(*) as n\n  from customers;\n\\dt\n\\d customers\n\\explain select ssn from customers\nselect nope from customers;\n\\timing\n\\user alice\nselect count(*) from customers;\n\\user nobody\n\\q\nselect 'after quit';\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let err = stderr(&out);
    // BOB (EU) sees 3 customers; ALICE (US) others, under COUNT(*).
    assert!(text.contains("| N |\n+---+\n| 3 |"), "{text}");
    assert!(
        text.contains("| ANALYTICS     | PUBLIC      | CUSTOMERS |"),
        "{text}"
    );
    assert!(text.contains("| SSN "), "{text}");
    assert!(text.contains("Timing is on."), "{text}");
    assert!(
        text.contains("You are now ALICE with role ANALYST."),
        "{text}"
    );
    assert!(text.contains("| COUNT(*) |"), "{text}");
    assert!(text.contains("Time: "), "{text}");
    assert!(!text.contains("AFTER QUIT"), "{text}");
    assert!(!text.contains('\x1b'), "no colour on a pipe: {text}");
    assert!(err.contains("error: "), "{err}");
    assert!(err.contains("NOBODY"), "{err}");
    assert!(!err.contains('\x1b'), "{err}");
    let records = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(records.lines().count(), 5, "{records}");
}

#[test]
fn workspace_defaults_to_the_current_directory_and_completions_print() {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["lint"])
        .current_dir(testdata("sample"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("finding(s)"));
    for (shell, marker) in [
        ("bash", "_veil()"),
        ("zsh", "#compdef veil"),
        ("fish", "complete -c veil"),
    ] {
        let out = veil(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("shell"), "{shell}");
    }
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
fn queries_are_audited_by_default_in_state_and_denials_name_the_table() {
    let ws = workspace_copy("sample");
    let erin = veil(&[
        "query",
        "-w",
        path(ws.path()),
        "-u",
        "erin",
        "select name from customers",
    ]);
    assert_eq!(erin.status.code(), Some(1));
    let bob = veil(&[
        "query",
        "-w",
        path(ws.path()),
        "-u",
        "bob",
        "select count(*) from customers",
    ]);
    assert_eq!(bob.status.code(), Some(0), "{}", stderr(&bob));
    let state = ws.path().join("state");
    assert_eq!(
        std::fs::read_to_string(state.join(".gitignore")).unwrap(),
        "*\n"
    );
    let log = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{log}");
    assert_eq!(records[0]["actor"]["name"], "ERIN");
    assert_eq!(records[0]["actionStatus"], "FAILURE");
    assert_eq!(
        records[0]["targets"],
        serde_json::json!(["ANALYTICS.PUBLIC.CUSTOMERS"])
    );
    assert_eq!(records[1]["actionStatus"], "SUCCESS");

    // Administrators' queries are audited too, and read the default log.
    let admin = veil(&[
        "query",
        "-w",
        path(ws.path()),
        "-u",
        "admin",
        "--admin",
        "-f",
        "csv",
        "select actor, status from veil.audit order by timestamp",
    ]);
    assert_eq!(
        stdout(&admin),
        "ACTOR,STATUS\nERIN,FAILURE\nBOB,SUCCESS\n",
        "{}",
        stderr(&admin)
    );
    let log = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    assert!(
        log.lines().last().unwrap().contains("\"ADMINISTRATOR\""),
        "{log}"
    );

    // `settings.audit: off` writes nothing.
    let off = workspace_copy("sample");
    let manifest = off.path().join("veil.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("settings:\n", "settings:\n  audit: off\n", 1),
    )
    .unwrap();
    let q = veil(&["query", "-w", path(off.path()), "-u", "bob", "select 1"]);
    assert_eq!(q.status.code(), Some(0), "{}", stderr(&q));
    assert!(!off.path().join("state").exists());
}

/// One `$ cargo run -- ARGS` command of a README transcript, with the output
/// and exit code the README shows for it.
#[derive(Debug)]
struct Transcript {
    command: String,
    args: Vec<String>,
    output: Vec<String>,
    exit: i32,
}

/// Splits a command line as a POSIX shell would for the quoting the README
/// uses (single and double quotes, `\` escapes); `None` when it holds shell
/// syntax (a redirect or a pipe) that running the binary alone cannot show.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '>' | '<' | '|' | ';' | '&' => return None,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// Removes a trailing `(exit N)` annotation, returning the line and N.
fn exit_annotation(line: &str) -> (String, Option<i32>) {
    let trimmed = line.trim_end();
    if let Some(head) = trimmed.strip_suffix(')')
        && let Some(at) = head.rfind("(exit ")
        && let Ok(code) = head[at + "(exit ".len()..].parse()
    {
        return (head[..at].trim_end().to_string(), Some(code));
    }
    (trimmed.to_string(), None)
}

/// Every `$ cargo run -- …` command in the README's ```text blocks, with
/// the output shown under it (up to the next `$ ` line or the block's end).
fn readme_transcripts(readme: &str) -> Vec<Transcript> {
    let mut found = Vec::new();
    let mut in_text = false;
    let mut lines = readme.lines().peekable();
    let mut current: Option<Transcript> = None;
    let finish = |t: Option<Transcript>, found: &mut Vec<Transcript>| {
        if let Some(mut t) = t {
            while t.output.last().is_some_and(|l| l.is_empty()) {
                t.output.pop();
            }
            found.push(t);
        }
    };
    while let Some(line) = lines.next() {
        if !in_text {
            in_text = line == "```text";
            continue;
        }
        if line.starts_with("```") {
            in_text = false;
            finish(current.take(), &mut found);
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            finish(current.take(), &mut found);
            let (mut cmd, mut exit) = exit_annotation(cmd);
            while let Some(head) = cmd.strip_suffix('\\') {
                let next = lines.next().unwrap_or_default();
                let (rest, code) = exit_annotation(next);
                cmd = format!("{} {}", head.trim_end(), rest.trim_start());
                exit = exit.or(code);
            }
            current = cmd.strip_prefix("cargo run -- ").map(|rest| Transcript {
                command: cmd.clone(),
                args: shell_words(rest).unwrap_or_default(),
                output: Vec::new(),
                exit: exit.unwrap_or(0),
            });
            if current.as_ref().is_some_and(|t| t.args.is_empty()) {
                current = None;
            }
            continue;
        }
        if let Some(t) = current.as_mut() {
            let (line, code) = exit_annotation(line);
            if let Some(code) = code {
                t.exit = code;
            }
            t.output.push(line);
        }
    }
    found
}

/// `pattern` with `...` standing for any text matches `line`.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == line;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The README's output matches the real one; a line `...` stands for any
/// number of lines, `...` within a line for any text.
fn transcript_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| transcript_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.split_first().is_some_and(|(line, more)| {
            line_matches(first, line) && transcript_matches(rest, more)
        }),
    }
}

#[test]
fn readme_transcripts_match_the_binary() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // The commands name `testdata/...` from the repository root; run them
    // in a copy so the default audit log lands in a temporary directory.
    let dir = tempfile::tempdir().unwrap();
    for name in ["sample", "sample-v2", "snowflake", "lint"] {
        let copy = workspace_copy(name);
        copy_dir(copy.path(), &dir.path().join("testdata").join(name));
    }
    let mut checked = Vec::new();
    for t in readme_transcripts(&readme) {
        // Skipped: commands that write or read files the README made earlier
        // (`--audit`, `/tmp`), and `test`, whose output holds timings.
        if t.args[0] == "test" || t.command.contains("/tmp") || t.command.contains("--audit") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_veil"))
            .args(&t.args)
            .current_dir(dir.path())
            .env_remove("VEIL_SAMPLE_SECRET")
            .output()
            .expect("veil runs");
        let text = format!("{}{}", stderr(&out), stdout(&out));
        let mut actual: Vec<&str> = text.lines().map(str::trim_end).collect();
        while actual.last().is_some_and(|l| l.is_empty()) {
            actual.pop();
        }
        assert_eq!(
            out.status.code(),
            Some(t.exit),
            "README shows `{}` ending with exit {}:\n{text}",
            t.command,
            t.exit
        );
        assert!(
            transcript_matches(&t.output, &actual),
            "README transcript of `{}` differs from the binary's output.\nREADME:\n{}\n\nbinary:\n{}",
            t.command,
            t.output.join("\n"),
            actual.join("\n")
        );
        checked.push(t.command);
    }
    for must in [
        "cargo run -- query -w testdata/sample -u erin \"select * from customers\"",
        "cargo run -- query -w testdata/sample -u dave \"select 1\"",
        "cargo run -- lint -w testdata/lint",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} not checked: {checked:#?}"
        );
    }
    assert!(checked.len() >= 10, "{checked:#?}");
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
