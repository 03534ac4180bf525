//! What the CLI tests share: running the `veil` binary (with or without
//! extra environment, into a closed pipe), reading its output, and copies
//! of the `testdata/` workspaces.

use std::path::PathBuf;
use std::process::{Command, Output};

pub(crate) fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

pub(crate) fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("VEIL_SAMPLE_SECRET")
        .output()
        .expect("veil runs")
}

/// `veil` with extra environment variables.
pub(crate) fn veil_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_veil"));
    c.args(args).env_remove("VEIL_SAMPLE_SECRET");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("veil runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub(crate) fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub(crate) fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
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

/// A copy of a sample workspace in a temporary directory (without any
/// `state/` a manual run left), for tests that write into the workspace.
pub(crate) fn workspace_copy(name: &str) -> tempfile::TempDir {
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
pub(crate) fn veil_into_closed_pipe(args: &[&str]) -> Output {
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
