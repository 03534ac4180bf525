//! `veil shell` read from a pipe, the default workspace (`-w .`), and
//! `veil completions`.

use std::process::Command;

use crate::common::{path, stderr, stdout, testdata, veil};

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
