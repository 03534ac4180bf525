//! The audit log from the command line: queries are audited (by default in
//! the workspace's `state/`), denials name the table, administrators read
//! `veil.audit`, and `audit: off` writes nothing.

use crate::common::{path, stderr, stdout, testdata, veil, workspace_copy};

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

#[test]
fn access_requests_and_decisions_are_audited_to_the_audit_flag() {
    let ws = workspace_copy("approval");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let w = path(ws.path());
    let a = path(&audit);
    let request = veil(&[
        "access", "request", "-w", w, "-u", "erin", "orders", "--reason", "Q3 audit", "--audit", a,
    ]);
    assert_eq!(request.status.code(), Some(0), "{}", stderr(&request));
    let refused = veil(&[
        "access", "approve", "-w", w, "R1", "--by", "fred", "--audit", a,
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("user FRED is not a data owner of SALES.PUBLIC.ORDERS"),
        "{}",
        stderr(&refused)
    );
    let approve = veil(&[
        "access", "approve", "-w", w, "R1", "--by", "dana", "--audit", a,
    ]);
    assert_eq!(approve.status.code(), Some(0), "{}", stderr(&approve));
    let log = std::fs::read_to_string(&audit).unwrap();
    let actions: Vec<&str> = log
        .lines()
        .map(|l| {
            if l.contains("\"action\":\"ACCESS_REQUESTED\"") && l.contains("\"name\":\"ERIN\"") {
                "requested by ERIN"
            } else if l.contains("\"action\":\"ACCESS_APPROVED\"")
                && l.contains("\"name\":\"DANA\"")
                && l.contains("\"request R1\"")
            {
                "approved by DANA"
            } else {
                l
            }
        })
        .collect();
    assert_eq!(actions, ["requested by ERIN", "approved by DANA"]);
    // Nothing went to the workspace's default log.
    assert!(!ws.path().join("state/audit.jsonl").exists());
}
