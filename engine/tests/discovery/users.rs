//! `veil users sync|stage|activate` through the library: SCIM exports in,
//! `state/users.yaml` out (all or nothing), the 5 % guard, dry runs,
//! malformed exports, staged users refused, and a sync followed by a
//! policy change seen per user in `veil diff`.

use std::path::Path;

use serde_json::json;
use veil_engine::Engine;
use veil_engine::directory::{staging, sync::sync};
use veil_engine::load::load_workspace;
use veil_engine::model::UserStatus;

/// A SCIM user: name, groups, department, active.
fn scim_user(name: &str, groups: &[&str], department: &str, active: bool) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": format!("id-{name}"),
        "userName": name,
        "active": active,
        "groups": groups.iter().map(|g| json!({"value": format!("gid-{g}"), "display": g})).collect::<Vec<_>>(),
        "roles": [{"value": "ANALYST"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": department, "costCenter": "CC-1"},
        "urn:ietf:params:scim:schemas:extension:veil:2.0:User": {"region": ["US", "EU"]}
    })
}

fn list(users: Vec<serde_json::Value>) -> String {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": users.len(),
        "itemsPerPage": users.len(),
        "startIndex": 1,
        "Resources": users,
    })
    .to_string()
}

/// 40 users in groups Sales (even) and Finance (odd); `u7` also in Audit.
fn directory(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let g: &[&str] = if i == 7 {
                &["Finance", "Audit"]
            } else if i.is_multiple_of(2) {
                &["Sales"]
            } else {
                &["Finance"]
            };
            scim_user(
                &format!("u{i}"),
                g,
                if i.is_multiple_of(2) {
                    "Sales"
                } else {
                    "Finance"
                },
                true,
            )
        })
        .collect()
}

fn workspace(dir: &Path, policies: &str) {
    std::fs::write(
        dir.join("customers.csv"),
        "id,email\n1,a@example.com\n2,b@example.com\n",
    )
    .expect("csv");
    std::fs::write(
        dir.join("veil.yaml"),
        format!("tables:\n  - name: CUSTOMERS\n    location: customers.csv\n    columns:\n      - {{name: ID, type: NUMBER(10,0)}}\n      - {{name: EMAIL, type: VARCHAR, tags: [PII]}}\nroles:\n  - {{name: ANALYST, grants: [CUSTOMERS]}}\nusers:\n  - {{name: U0, roles: [ANALYST], groups: [Declared]}}\npolicies:\n  - name: all-read\n    type: subscription\n    on: {{data_sources: [CUSTOMERS]}}\n    allow: anyone\n{policies}"),
    )
    .expect("veil.yaml");
}

fn write_scim(dir: &Path, name: &str, users: Vec<serde_json::Value>) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, list(users)).expect("scim");
    path
}

#[test]
fn sync_adds_removes_and_changes_users_and_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), "");
    let v1 = write_scim(dir.path(), "v1.json", directory(40));
    let plan = sync(
        &load_workspace(dir.path()).expect("loads"),
        &v1,
        false,
        false,
    )
    .expect("first sync");
    assert_eq!(
        (plan.added.len(), plan.removed.len(), plan.users_after),
        (40, 0, 40)
    );
    assert_eq!(plan.declared_win, vec!["U0".to_string()]);
    let ws = load_workspace(dir.path()).expect("loads");
    let u3 = ws.user("U3").expect("synced user");
    assert!(u3.groups.contains("Finance") && u3.roles == ["ANALYST"]);
    assert_eq!(
        u3.attributes
            .get("Department")
            .map(|v| v.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["Finance".to_string()])
    );
    assert!(
        u3.attributes
            .get("Region")
            .is_some_and(|v| v.contains("EU"))
    );
    // veil.yaml wins over the directory for U0.
    assert_eq!(
        ws.user("U0")
            .map(|u| u.groups.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["Declared".to_string()])
    );

    // One leaves, one joins, one changes groups, one is disabled.
    let mut users = directory(40);
    users.remove(5);
    users.push(scim_user("u40", &["Sales"], "Sales", true));
    users[2] = scim_user("u2", &["Sales", "Audit"], "Sales", true);
    users[3] = scim_user("u3", &["Finance"], "Finance", false);
    let v2 = write_scim(dir.path(), "v2.json", users);
    let plan = sync(
        &load_workspace(dir.path()).expect("loads"),
        &v2,
        false,
        false,
    )
    .expect("second sync");
    assert_eq!(plan.added, vec!["U40".to_string()]);
    assert_eq!(plan.removed, vec!["U5".to_string()]);
    assert_eq!(plan.changed.len(), 2, "{plan}");
    assert!(
        plan.changed
            .iter()
            .any(|c| c.starts_with("U2:") && c.contains("groups +Audit")),
        "{plan}"
    );
    assert!(
        plan.changed
            .iter()
            .any(|c| c.starts_with("U3:") && c.contains("status active → disabled")),
        "{plan}"
    );
    let ws = load_workspace(dir.path()).expect("loads");
    assert!(ws.user("U5").is_none() && ws.user("U40").is_some());
    assert_eq!(ws.user("U3").map(|u| u.status), Some(UserStatus::Disabled));
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).expect("audit");
    assert_eq!(audit.matches("\"USER_SYNC\"").count(), 2);
    assert!(audit.contains("user U5 (removed)"));
}

#[test]
fn the_five_percent_guard_refuses_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), "");
    let v1 = write_scim(dir.path(), "v1.json", directory(40));
    sync(
        &load_workspace(dir.path()).expect("loads"),
        &v1,
        false,
        false,
    )
    .expect("first sync");
    let before = std::fs::read_to_string(dir.path().join("state/users.yaml")).expect("users.yaml");
    // 40 → 36 users: 10 %.
    let v2 = write_scim(dir.path(), "v2.json", directory(36));
    let e = sync(
        &load_workspace(dir.path()).expect("loads"),
        &v2,
        false,
        false,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("user count changes from 40 to 36") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/users.yaml")).expect("users.yaml"),
        before
    );
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).expect("audit");
    assert!(audit.contains("\"FAILURE\""));
    // Same users, but the Audit group disappears: 3 → 2 groups.
    let mut users = directory(40);
    users[7] = scim_user("u7", &["Finance"], "Finance", true);
    let v3 = write_scim(dir.path(), "v3.json", users);
    let e = sync(
        &load_workspace(dir.path()).expect("loads"),
        &v3,
        false,
        false,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("group count changes from 3 to 2"), "{e}");
    let plan = sync(
        &load_workspace(dir.path()).expect("loads"),
        &v2,
        false,
        true,
    )
    .expect("forced");
    assert!(plan.written && plan.guard.is_some());
    assert_eq!(load_workspace(dir.path()).expect("loads").users.len(), 36);
}

#[test]
fn a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), "");
    let v1 = write_scim(dir.path(), "v1.json", directory(10));
    let plan = sync(
        &load_workspace(dir.path()).expect("loads"),
        &v1,
        true,
        false,
    )
    .expect("dry run");
    assert_eq!(plan.added.len(), 10);
    assert!(!plan.written);
    assert!(
        !dir.path().join("state").exists(),
        "a dry run wrote into state/"
    );
}

#[test]
fn a_malformed_export_writes_nothing_and_names_the_resource() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), "");
    let mut users = directory(5);
    users[3] = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "active": true, "groups": []});
    let bad = write_scim(dir.path(), "bad.json", users);
    let e = sync(
        &load_workspace(dir.path()).expect("loads"),
        &bad,
        false,
        false,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("Resources[3]") && e.contains("userName"), "{e}");
    let mut users = directory(5);
    users[1]["groups"] = json!("Sales");
    let bad = write_scim(dir.path(), "bad2.json", users);
    let e = sync(
        &load_workspace(dir.path()).expect("loads"),
        &bad,
        false,
        false,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("Resources[1]"), "{e}");
    std::fs::write(dir.path().join("bad3.json"), "{\"Resources\": [").expect("write");
    assert!(
        sync(
            &load_workspace(dir.path()).expect("loads"),
            &dir.path().join("bad3.json"),
            false,
            false
        )
        .is_err()
    );
    // A role the workspace does not declare.
    let mut users = directory(5);
    users[2]["roles"] = json!([{"value": "NO_SUCH_ROLE"}]);
    let bad = write_scim(dir.path(), "bad4.json", users);
    let e = sync(
        &load_workspace(dir.path()).expect("loads"),
        &bad,
        false,
        false,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("NO_SUCH_ROLE"), "{e}");
    assert!(!dir.path().join("state/users.yaml").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_user_cannot_query_until_activated() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), "");
    let v1 = write_scim(dir.path(), "v1.json", directory(10));
    sync(
        &load_workspace(dir.path()).expect("loads"),
        &v1,
        false,
        false,
    )
    .expect("sync");
    let engine = Engine::load(dir.path()).await.expect("engine");
    assert!(
        engine
            .session("u4")
            .expect("active")
            .sql("SELECT id FROM customers")
            .await
            .is_ok()
    );
    let staged = staging::stage(
        &load_workspace(dir.path()).expect("loads"),
        &["u4".into(), "U0".into()],
    )
    .expect("stage");
    assert_eq!(staged, vec!["U4".to_string(), "U0".to_string()]);
    let engine = Engine::load(dir.path()).await.expect("engine");
    for user in ["u4", "u0"] {
        let refused = match engine.session(user) {
            Err(e) => e.to_string(),
            Ok(s) => s
                .sql("SELECT id FROM customers")
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        };
        assert!(
            refused.to_lowercase().contains("staged"),
            "{user}: {refused}"
        );
    }
    // A staged user stays staged across a sync.
    sync(
        &load_workspace(dir.path()).expect("loads"),
        &v1,
        false,
        false,
    )
    .expect("sync again");
    assert_eq!(
        load_workspace(dir.path())
            .expect("loads")
            .user("U4")
            .map(|u| u.status),
        Some(UserStatus::Staged)
    );
    let e = staging::stage(
        &load_workspace(dir.path()).expect("loads"),
        &["nobody".into()],
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("NOBODY"), "{e}");
    staging::activate(&load_workspace(dir.path()).expect("loads"), &["u4".into()])
        .expect("activate");
    let engine = Engine::load(dir.path()).await.expect("engine");
    assert!(
        engine
            .session("u4")
            .expect("active again")
            .sql("SELECT id FROM customers")
            .await
            .is_ok()
    );
    assert!(
        engine.session("u0").is_err()
            || engine
                .session("u0")
                .expect("s")
                .sql("SELECT id FROM customers")
                .await
                .is_err()
    );
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).expect("audit");
    assert!(audit.contains("USER_STAGED") && audit.contains("USER_ACTIVATED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_then_a_policy_change_shows_per_user_in_diff() {
    let old = tempfile::tempdir().expect("tempdir");
    workspace(old.path(), "");
    let v1 = write_scim(old.path(), "v1.json", directory(6));
    sync(
        &load_workspace(old.path()).expect("loads"),
        &v1,
        false,
        false,
    )
    .expect("sync");
    let new = tempfile::tempdir().expect("tempdir");
    workspace(
        new.path(),
        "  - name: mask-pii\n    type: masking\n    on: {tags: [PII]}\n    mask: {constant: REDACTED}\n    except: {attributes: {Department: [Finance]}}\n",
    );
    std::fs::create_dir_all(new.path().join("state")).expect("state");
    std::fs::copy(
        old.path().join("state/users.yaml"),
        new.path().join("state/users.yaml"),
    )
    .expect("copy users");
    let report = veil_engine::tools::diff::diff(
        &Engine::load(old.path()).await.expect("old"),
        &Engine::load(new.path()).await.expect("new"),
    )
    .await
    .expect("diff");
    let mut changed: Vec<String> = report
        .changes
        .iter()
        .filter(|c| !c.columns.is_empty())
        .map(|c| c.user.clone())
        .collect();
    changed.sort();
    // Synced Sales users (even) lose the raw e-mail; Finance users keep it;
    // U0 is declared in veil.yaml (no Department) and so is masked too.
    assert_eq!(changed, vec!["U0", "U2", "U4"]);
}
