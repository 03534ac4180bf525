//! `veil tag`, `veil tags` (with export and import) and `veil lineage
//! ingest` on a copy of `testdata/lineage`, through the real binary: the
//! CUSTOMER chain as the README shows it, the exit codes, and an import
//! that writes all or nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .output()
        .expect("veil runs")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn copy(from: &Path, to: &Path) {
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

fn lineage_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy(&testdata("lineage"), dir.path());
    dir
}

#[test]
fn the_customer_chain_through_the_cli() {
    let dir = lineage_copy();
    let ws = dir.path().to_str().unwrap();
    let history = testdata("lineage").join("access_history.json");
    let o = veil(&["lineage", "ingest", "-w", ws, history.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("2 row(s), 6 column edge(s), 6 new"),
        "{}",
        out(&o)
    );

    let o = veil(&[
        "tag",
        "add",
        "-w",
        ws,
        "CRM.CORE.CUSTOMER.EMAIL",
        "PII.Email",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains(
            "propagated PII.Email to CRM.CORE.CUSTOMER_3.EMAIL (origin CRM.CORE.CUSTOMER.EMAIL)"
        ),
        "{}",
        out(&o)
    );
    let o = veil(&[
        "query",
        "-w",
        ws,
        "-u",
        "bob",
        "-f",
        "csv",
        "select id, email from customer_3 order by id",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    assert!(
        !text.contains("@example"),
        "BOB must not see raw e-mails: {text}"
    );

    let o = veil(&[
        "tag",
        "remove",
        "-w",
        ws,
        "CRM.CORE.CUSTOMER_2.EMAIL",
        "PII.Email",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = veil(&["tags", "-w", ws, "customer_2"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let line = out(&o)
        .lines()
        .find(|l| l.contains("CUSTOMER_2.EMAIL"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.contains("lineage")
            && line.contains("soft-deleted")
            && line.contains("CRM.CORE.CUSTOMER.EMAIL"),
        "{}",
        out(&o)
    );
    let o = veil(&["tags", "-w", ws, "-f", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "soft-deleted")
    );

    // The journal is under Git: the audit log's .gitignore lets it through.
    let ignore = std::fs::read_to_string(dir.path().join("state/.gitignore")).unwrap_or_default();
    assert!(
        !ignore.contains('*') || ignore.contains("!catalog.jsonl"),
        "{ignore}"
    );
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"TAG_PROPAGATED\"").count(), 2, "{audit}");
}

#[test]
fn removing_a_snowflake_object_tag_exits_2_and_says_to_use_ddl() {
    let dir = lineage_copy();
    let o = veil(&[
        "tag",
        "remove",
        "-w",
        dir.path().to_str().unwrap(),
        "CRM.CORE.CONTACTS.PHONE",
        "SENSITIVITY",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        out(&o).contains("remove it in the DDL script"),
        "{}",
        out(&o)
    );
}

#[test]
fn tags_export_and_import_move_the_catalogue_all_or_nothing() {
    let from = lineage_copy();
    let ws = from.path().to_str().unwrap();
    for column in ["CRM.CORE.CUSTOMER.EMAIL", "CRM.CORE.CUSTOMER.NAME"] {
        let o = veil(&["tag", "add", "-w", ws, column, "PII.Contact"]);
        assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    }
    let export = from.path().join("tags.json");
    let o = veil(&["tags", "export", "-w", ws, "-o", export.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.contains("\"parent\": \"PII\""), "{text}");
    assert!(!text.contains("\"id\""), "no internal ids: {text}");

    let to = lineage_copy();
    let target = to.path().to_str().unwrap();
    let o = veil(&[
        "tags",
        "import",
        "-w",
        target,
        export.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("would add PII.Contact on CRM.CORE.CUSTOMER.EMAIL"),
        "{}",
        out(&o)
    );
    assert!(
        !to.path().join("state/catalog.jsonl").exists(),
        "a dry run writes nothing"
    );
    let o = veil(&["tags", "import", "-w", target, export.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = veil(&["tags", "-w", target, "customer"]);
    assert_eq!(out(&o).matches("PII.Contact").count(), 2, "{}", out(&o));

    // A file naming an unknown column and a duplicate: every problem is
    // reported, nothing is written.
    let broken = text
        .replacen("CRM.CORE.CUSTOMER.NAME", "CRM.CORE.CUSTOMER.NICKNAME", 1)
        .replacen(
            "\"name\": \"PII\"",
            "\"name\": \"PII\"\n    }, {\n      \"name\": \"PII\"",
            1,
        );
    let file = to.path().join("broken.json");
    std::fs::write(&file, broken).unwrap();
    let third = lineage_copy();
    let o = veil(&[
        "tags",
        "import",
        "-w",
        third.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("has no column NICKNAME"), "{text}");
    assert!(text.contains("tag PII is listed 2 times"), "{text}");
    assert!(text.contains("nothing was imported"), "{text}");
    assert!(!third.path().join("state/catalog.jsonl").exists());
}
