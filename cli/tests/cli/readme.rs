//! The README's transcripts against the binary: every `$ cargo run -- …`
//! command in its ```text blocks runs, and its output and exit code must
//! match what the README shows (`...` elides text).

use std::path::PathBuf;
use std::process::Command;

use crate::common::{copy_dir, stderr, stdout, workspace_copy};

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
    for name in [
        "sample",
        "sample-v2",
        "snowflake",
        "lint",
        "masks",
        "approval",
    ] {
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
