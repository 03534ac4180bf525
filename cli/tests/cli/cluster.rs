//! `veil scheduler` and `veil executor` as people start them, through
//! `scripts/cluster.sh` (a scheduler and two executors on loopback for one
//! command, stopped after it): BOB's masked, row-filtered query answers
//! the same through the cluster as single-node; a scheduler that is not
//! there is an error naming it.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{path, stderr, stdout, veil, workspace_copy};

const SQL: &str = "SELECT id, name, email, ssn, balance FROM customers ORDER BY id";

#[test]
fn a_query_through_a_script_started_cluster_answers_as_single_node() {
    let ws = workspace_copy("sample");
    let args = ["query", "-w", path(ws.path()), "-u", "bob", SQL];
    let local = veil(&args);
    assert!(local.status.success(), "{}", stderr(&local));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster.sh");
    let bin = env!("CARGO_BIN_EXE_veil");
    let clustered = Command::new("bash")
        .arg(script)
        .args(["-n", "2", "-t", "120", bin])
        .args(args)
        .env("VEIL", bin)
        .env_remove("VEIL_SECRET")
        .env_remove("VEIL_SAMPLE_SECRET")
        .env_remove("VEIL_CLUSTER")
        .output()
        .expect("scripts/cluster.sh runs");
    let err = stderr(&clustered);
    assert!(clustered.status.success(), "{err}");
    assert!(
        err.contains("veil cluster: scheduler df://127.0.0.1:") && err.contains("2 executors"),
        "{err}"
    );
    assert_eq!(stdout(&clustered), stdout(&local));
    // BOB's rows only, masked.
    assert!(
        !stdout(&local).contains("111-11-1111"),
        "{}",
        stdout(&local)
    );
}

#[test]
fn a_scheduler_that_is_not_there_is_named() {
    let ws = workspace_copy("sample");
    let bob_on = |cluster| {
        veil(&[
            "query",
            "-w",
            path(ws.path()),
            "-u",
            "bob",
            "--cluster",
            cluster,
            SQL,
        ])
    };
    // Nothing listens on port 9 (discard) here: a refused connection.
    let out = bob_on("df://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scheduler at 127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
    let bad = bob_on("nowhere");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("df://HOST:PORT"), "{}", stderr(&bad));
}
