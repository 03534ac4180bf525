//! The policy-as-code loop: `veil test` files, `veil diff`, `veil lint`,
//! the audit log, policy versions with rollback, and the decision cache —
//! including many sessions querying while versions are swapped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libtest_mimic::{Failed, Trial};
use veil_engine::Engine;
use veil_engine::audit::read_log;
use veil_engine::model::{User, UserStatus};
use veil_engine::tools::lint::{Finding, Severity};
use veil_engine::tools::test_runner as policy_test;

use crate::common::{rows, run, runtime, sample, testdata};

type TestFn = fn() -> Result<(), Failed>;

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// A fresh engine (not the shared cache: these tests change versions and
/// set audit logs).
fn fresh(name: &str) -> Engine {
    runtime()
        .block_on(Engine::load(testdata(name)))
        .expect("workspace loads")
}

fn rows_of(engine: &Engine, user: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let session = engine.session(user).map_err(|e| e.to_string())?;
    run(&session, sql)
}

// ---------------------------------------------------------------------------
// veil test

fn shipped_tests_pass() -> Result<(), Failed> {
    let engine = sample();
    let files = policy_test::workspace_test_files(&testdata("sample"))?;
    ensure(
        files.iter().any(|f| f.ends_with("tests/access.slt")) && files.len() >= 9,
        format!("expected the golden files and tests/access.slt, found {files:?}"),
    )?;
    let report = runtime().block_on(policy_test::run_files(&engine, &files, None))?;
    ensure(report.passed(), report.text())
}

/// bob.slt with BOB's masked email replaced by the raw one.
fn broken_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(testdata("sample").join("golden/bob.slt")).expect("bob.slt");
    let broken = text.replacen(
        "2 33903a27a35037d87c5a ***@example.org",
        "2 33903a27a35037d87c5a bob.jones@example.org",
        1,
    );
    assert_ne!(text, broken, "the golden file changed: update this test");
    let path = dir.path().join("bob.slt");
    std::fs::write(&path, broken).expect("write");
    (dir, path)
}

fn broken_test_fails_with_a_diff() -> Result<(), Failed> {
    let (_dir, path) = broken_copy();
    let report = runtime().block_on(policy_test::run_files(&sample(), &[path], None))?;
    ensure(!report.passed(), "a broken expectation must fail")?;
    let text = report.text();
    ensure(
        text.contains("-   2 33903a27a35037d87c5a bob.jones@example.org")
            && text.contains("+   2 33903a27a35037d87c5a ***@example.org")
            && text.contains("bob.slt:5")
            && text.contains("test result: FAILED"),
        format!("the report shows expected vs actual rows and the location:\n{text}"),
    )?;
    let junit = report.junit();
    ensure(
        junit.contains("failures=\"1\"") && junit.contains("bob.jones@example.org"),
        format!("JUnit names the failure:\n{junit}"),
    )
}

fn complete_rewrites_expected_rows() -> Result<(), Failed> {
    let (_dir, path) = broken_copy();
    runtime().block_on(policy_test::complete_file(&sample(), &path, None))?;
    let text = std::fs::read_to_string(&path)?;
    ensure(
        !text.contains("bob.jones@example.org") && text.contains("# veil-session: user=BOB"),
        "--complete writes the actual rows and keeps the header",
    )?;
    let report = runtime().block_on(policy_test::run_files(&sample(), &[path], None))?;
    ensure(report.passed(), report.text())
}

fn records_before_a_session_header_fail() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.slt");
    std::fs::write(&path, "query I\nSELECT 1\n----\n1\n")?;
    let report = runtime().block_on(policy_test::run_files(&sample(), &[path], None))?;
    ensure(
        !report.passed()
            && report
                .text()
                .contains("no '# veil-session: user=NAME' line"),
        report.text(),
    )
}

// ---------------------------------------------------------------------------
// veil diff

fn diff_reports_exactly_the_change() -> Result<(), Failed> {
    let old = sample();
    let new = crate::common::engine("sample-v2");
    let report = runtime().block_on(veil_engine::tools::diff::diff(&old, &new))?;
    let text = report.to_string();
    let golden = testdata("sample-v2").join("expected-diff.txt");
    if std::env::var("VEIL_COMPLETE").is_ok() {
        std::fs::write(&golden, &text)?;
    }
    let expected = std::fs::read_to_string(&golden)?;
    ensure(
        text == expected,
        format!("diff output changed (VEIL_COMPLETE=1 regenerates):\n{text}"),
    )?;
    let pairs: BTreeSet<(String, String)> = report
        .changes
        .iter()
        .map(|c| (c.user.clone(), c.table.clone()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("ALICE", "ANALYTICS.HR.EMPLOYEES"),
        ("BOB", "ANALYTICS.HR.EMPLOYEES"),
        ("DANA", "ANALYTICS.PUBLIC.CUSTOMERS"),
        ("FRANK", "ANALYTICS.HR.EMPLOYEES"),
    ]
    .into_iter()
    .map(|(u, t)| (u.to_string(), t.to_string()))
    .collect();
    ensure(pairs == want, format!("changed pairs {pairs:?}"))?;
    let dana = report
        .changes
        .iter()
        .find(|c| c.user == "DANA")
        .ok_or("DANA")?;
    ensure(
        dana.columns.len() == 1
            && dana.columns[0].column == "EMAIL"
            && dana.columns[0].new == "raw"
            && dana.rows_gained == 0
            && dana.rows_lost == 0,
        format!("DANA: only EMAIL becomes raw: {dana:?}"),
    )?;
    let bob = report
        .changes
        .iter()
        .find(|c| c.user == "BOB")
        .ok_or("BOB")?;
    ensure(
        bob.rows_gained == 2 && bob.rows_lost == 0 && bob.columns.is_empty(),
        format!("BOB gains the two HR rows: {bob:?}"),
    )?;
    let json = report.json()?;
    ensure(
        json.contains("\"rows_gained\": 2") && json.contains("\"old_access\": \"subscribed\""),
        json,
    )
}

fn diff_reports_users_gaining_and_losing_access() -> Result<(), Failed> {
    let old = sample();
    let mut ws = old.workspace();
    if let Some(charlie) = ws.users.iter_mut().find(|u| u.name == "CHARLIE") {
        charlie.groups.insert("Analysts".to_string());
    }
    let new = runtime().block_on(Engine::from_workspace(ws))?;
    let forward = runtime().block_on(veil_engine::tools::diff::diff(&old, &new))?;
    let gained: BTreeSet<&str> = forward
        .gained_access
        .iter()
        .map(|(u, _)| u.as_str())
        .collect();
    ensure(
        gained == BTreeSet::from(["CHARLIE"]) && forward.lost_access.is_empty(),
        forward.to_string(),
    )?;
    let charlie_customers = forward
        .changes
        .iter()
        .find(|c| c.user == "CHARLIE" && c.table.ends_with("CUSTOMERS"))
        .ok_or("CHARLIE × CUSTOMERS")?;
    ensure(
        charlie_customers.rows_gained == 4 && charlie_customers.old_rows == 0,
        format!("CHARLIE (Region US) gains the 4 US customers: {charlie_customers:?}"),
    )?;
    let backward = runtime().block_on(veil_engine::tools::diff::diff(&new, &old))?;
    ensure(
        backward.lost_access.len() == forward.gained_access.len()
            && backward.gained_access.is_empty(),
        backward.to_string(),
    )
}

// ---------------------------------------------------------------------------
// veil lint

fn lint_findings() -> &'static Vec<Finding> {
    static FINDINGS: OnceLock<Vec<Finding>> = OnceLock::new();
    FINDINGS.get_or_init(|| {
        let engine = crate::common::engine("lint");
        runtime()
            .block_on(veil_engine::tools::lint::lint(&engine))
            .expect("lint runs")
    })
}

fn finds(code: &str, severity: Severity, needle: &str) -> Result<(), Failed> {
    let all = lint_findings();
    ensure(
        all.iter()
            .any(|f| f.code == code && f.severity == severity && f.to_string().contains(needle)),
        format!(
            "no {code} finding mentioning '{needle}' in:\n{}",
            all.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    )
}

fn lint_column_tagged_without_column() -> Result<(), Failed> {
    finds(
        "column-tagged-matches-nothing",
        Severity::Error,
        "@columnTagged('Nope')",
    )
}

fn lint_tag_policy_matching_nothing() -> Result<(), Failed> {
    finds(
        "tag-policy-matches-nothing",
        Severity::Warning,
        "PII.Pasport",
    )
}

fn lint_negated_role_check() -> Result<(), Failed> {
    finds(
        "negated-role-check",
        Severity::Error,
        "policy 'not-interns' uses a negated identity check (CURRENT_ROLE() <> 'INTERN')",
    )?;
    // The same smell in a Snowflake masking policy body.
    finds(
        "negated-role-check",
        Severity::Error,
        "03_deny_list.sql:3: masking policy ANALYTICS.PUBLIC.REGION_UNLESS_INTERN uses a negated identity check (CURRENT_ROLE() <> 'INTERN')",
    )
}

fn lint_conflicting_masks() -> Result<(), Failed> {
    finds(
        "conflicting-masks",
        Severity::Warning,
        "CUSTOMERS.EMAIL: policy 'hash-pii'",
    )
}

fn lint_short_hash_with_collision_rate() -> Result<(), Failed> {
    // 4 distinct regions into 16^6 values: 4*3/2/16^6 = 3.576e-7 pairs.
    finds("short-hash", Severity::Warning, "VARCHAR(6)")?;
    finds(
        "short-hash",
        Severity::Warning,
        "(4 distinct values) about 3.576e-7 pairs",
    )?;
    ensure(
        (veil_engine::tools::lint::expected_collision_pairs(1_000_000, 8) - 116.415).abs() < 0.01,
        "a million values in 8 hex characters collide in ~116 pairs",
    )
}

fn lint_too_many_conditions() -> Result<(), Failed> {
    finds(
        "too-many-conditions",
        Severity::Warning,
        "'notes-redacted' has 6 conditions",
    )
}

fn lint_unused_tag() -> Result<(), Failed> {
    finds("unused-tag", Severity::Warning, "Legacy.Unused")
}

fn lint_unused_role() -> Result<(), Failed> {
    finds("unused-role", Severity::Warning, "role ORPHAN")
}

fn lint_user_without_subscriptions() -> Result<(), Failed> {
    finds(
        "user-without-subscriptions",
        Severity::Warning,
        "user NOSUB",
    )?;
    ensure(
        !lint_findings()
            .iter()
            .any(|f| f.message.contains("user OWNER")),
        "OWNER owns CUSTOMERS, so it is subscribed",
    )
}

fn lint_values_beyond_declared_type() -> Result<(), Failed> {
    finds(
        "value-exceeds-declared-type",
        Severity::Warning,
        "13 characters in a VARCHAR(5)",
    )
}

fn lint_sample_has_no_errors() -> Result<(), Failed> {
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&sample()))?;
    ensure(
        findings.iter().all(|f| f.severity == Severity::Warning),
        format!("{findings:?}"),
    )
}

fn lint_mask_falling_back_to_null_is_a_warning() -> Result<(), Failed> {
    finds(
        "mask-falls-back-to-null",
        Severity::Warning,
        "policy 'round-names' on column NAME of ANALYTICS.PUBLIC.CUSTOMERS: rounding to a step cannot mask a VARCHAR(20) column, so it shows NULL",
    )
}

/// A workspace with one unused role (a `unused-role` warning) and `extra`
/// appended to its manifest.
fn unused_role_workspace(extra: &str) -> tempfile::TempDir {
    let manifest = format!(
        "tables:\n  - name: DB.S.T\n    location: t.csv\n    columns: [{{name: A, type: VARCHAR(5)}}]\n\
         roles:\n  - {{name: R, grants: [DB.S.T]}}\n  - {{name: SPARE, grants: [DB.S.T]}}\n\
         users:\n  - {{name: U, roles: [R]}}\n\
         settings: {{access: snowflake}}\n{extra}"
    );
    crate::common::temp_workspace(&manifest, &[("t.csv", "a\nx\n")])
}

fn lint_codes(dir: &Path) -> Result<Vec<&'static str>, Failed> {
    let engine = crate::common::load(dir)?;
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&engine))?;
    Ok(findings.iter().map(|f| f.code).collect())
}

fn lint_allow_silences_the_named_rules() -> Result<(), Failed> {
    let plain = unused_role_workspace("");
    let codes = lint_codes(plain.path())?;
    ensure(codes.contains(&"unused-role"), format!("{codes:?}"))?;
    let allowed = unused_role_workspace("lint:\n  allow: [unused-role]\n");
    let codes = lint_codes(allowed.path())?;
    ensure(!codes.contains(&"unused-role"), format!("{codes:?}"))
}

fn lint_allow_of_an_unknown_rule_is_a_load_error_at_its_line() -> Result<(), Failed> {
    let dir = unused_role_workspace("lint:\n  allow:\n    - unused-role\n    - unused-rule\n");
    match crate::common::load(dir.path()) {
        Ok(_) => Err("a workspace allowing an unknown lint rule loaded".into()),
        Err(e) => ensure(
            e.starts_with("veil.yaml:14: lint allows unknown rule 'unused-rule'"),
            e,
        ),
    }
}

fn lint_rules_list_every_finding_code() -> Result<(), Failed> {
    for f in lint_findings() {
        ensure(
            veil_engine::model::LINT_RULES.contains(&f.code),
            format!("{} is not in LINT_RULES", f.code),
        )?;
    }
    Ok(())
}

fn lint_sample_passes_deny_warnings() -> Result<(), Failed> {
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&sample()))?;
    ensure(
        findings.is_empty(),
        findings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

// ---------------------------------------------------------------------------
// Audit, versions, decision cache

fn audit_path(dir: &Path) -> PathBuf {
    dir.join("audit.jsonl")
}

fn audit_records_allowed_and_denied_queries() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let bob = engine.session("bob")?;
    let erin = engine.session("erin")?;
    run(&bob, "SELECT id, email FROM customers").map_err(Failed::from)?;
    let denied = run(&erin, "SELECT * FROM customers");
    ensure(denied.is_err(), "ERIN is not granted CUSTOMERS")?;
    let (records, torn) = read_log(&audit_path(dir.path()))?;
    ensure(torn == 0 && records.len() == 2, format!("{records:?}"))?;
    let ok = &records[0];
    ensure(
        ok.action == "QUERY"
            && ok.action_status == "SUCCESS"
            && ok.actor.name == "BOB"
            && ok.actor.role.as_deref() == Some("ANALYST")
            && ok.rows_returned == Some(3)
            && ok.targets == vec!["ANALYTICS.PUBLIC.CUSTOMERS".to_string()]
            && ok.policies_applied.contains(&"rows-by-region".to_string())
            && ok
                .policies_applied
                .contains(&"email-domain-only".to_string())
            && !ok.policies_applied.contains(&"order-month".to_string())
            && ok.policy_version == 1
            && ok.duration_ms.is_some(),
        format!("{ok:?}"),
    )?;
    let no = &records[1];
    ensure(
        no.action_status == "FAILURE"
            && no.actor.name == "ERIN"
            && no.rows_returned.is_none()
            && no.action_status_reason.as_deref()
                == Some("Object 'ANALYTICS.PUBLIC.CUSTOMERS' does not exist or not authorized."),
        format!("{no:?}"),
    )
}

fn administrators_read_the_audit_table() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let bob = engine.session("bob")?;
    run(&bob, "SELECT count(*) FROM orders").map_err(Failed::from)?;
    run(&bob, "DELETE FROM orders")
        .err()
        .ok_or("DELETE is refused")?;
    let batches = runtime().block_on(engine.admin_sql(
        "SELECT actor, status, rows_returned FROM veil.audit WHERE action = 'QUERY' ORDER BY timestamp",
    ))?;
    let got = rows(&batches);
    ensure(
        got == vec![
            vec!["BOB".to_string(), "SUCCESS".to_string(), "1".to_string()],
            vec!["BOB".to_string(), "FAILURE".to_string(), "NULL".to_string()],
        ],
        format!("{got:?}"),
    )?;
    // Users cannot name the audit table, under either name.
    for sql in [
        "SELECT * FROM veil.audit",
        "SELECT * FROM veil.system.audit",
    ] {
        let err = run(&bob, sql)
            .err()
            .ok_or("users must not read the audit")?;
        ensure(err.contains("does not exist or not authorized"), err)?;
    }
    Ok(())
}

fn policy_changes_are_versioned_audited_and_rolled_back() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let dana = engine.session("dana")?;
    let email = "SELECT email FROM customers ORDER BY id";
    let masked = run(&dana, email).map_err(Failed::from)?;
    ensure(masked[0][0].starts_with("***@"), format!("{masked:?}"))?;
    let v2 = runtime().block_on(engine.apply_dir(testdata("sample-v2")))?;
    ensure(v2 == 2 && engine.version() == 2, "apply installs version 2")?;
    // The same session's next statement runs on the new version.
    let raw = run(&dana, email).map_err(Failed::from)?;
    ensure(
        !raw[0][0].starts_with("***@") && dana.version() == 2,
        format!("{raw:?}"),
    )?;
    runtime().block_on(engine.rollback(1))?;
    let again = run(&dana, email).map_err(Failed::from)?;
    ensure(
        again == masked && engine.version() == 1,
        format!("{again:?}"),
    )?;
    let err = runtime()
        .block_on(engine.rollback(7))
        .err()
        .ok_or("no version 7")?;
    ensure(
        err.to_string().contains("there is no policy version 7"),
        err.to_string(),
    )?;
    let changes: Vec<_> = engine
        .audit_log()
        .ok_or("audit log")?
        .records()?
        .into_iter()
        .filter(|r| r.action != "QUERY")
        .collect();
    ensure(changes.len() == 2, format!("{changes:?}"))?;
    ensure(
        changes[0].action == "POLICY_CHANGE"
            && changes[0].previous_version == Some(1)
            && changes[0].policy_version == 2
            && changes[0].targets
                == vec![
                    "policy email-domain-only (changed)".to_string(),
                    "policy own-department (changed)".to_string(),
                ],
        format!("{:?}", changes[0]),
    )?;
    ensure(
        changes[1].action == "POLICY_ROLLBACK" && changes[1].policy_version == 1,
        format!("{:?}", changes[1]),
    )
}

fn entitlement_change_invalidates_cached_decisions() -> Result<(), Failed> {
    let engine = fresh("sample");
    let bob = engine.session("bob")?;
    let sql = "SELECT email FROM customers WHERE id = 2";
    ensure(
        run(&bob, sql).map_err(Failed::from)? == vec![vec!["***@example.org".to_string()]],
        "masked before",
    )?;
    ensure(engine.cached_decisions() >= 1, "the decision is cached")?;
    runtime().block_on(engine.change(|ws| {
        if let Some(u) = ws.users.iter_mut().find(|u| u.name == "BOB") {
            u.groups.insert("Compliance".to_string());
        }
        Ok(())
    }))?;
    ensure(
        engine.cached_decisions() == 0,
        "a change drops every decision",
    )?;
    ensure(
        run(&bob, sql).map_err(Failed::from)? == vec![vec!["bob.jones@example.org".to_string()]],
        "the exemption applies to the next statement",
    )
}

fn concurrent_changes_are_all_kept() -> Result<(), Failed> {
    // Each change copies the workspace under the change lock, so one can
    // never undo another (a revocation must not come back).
    let engine = fresh("sample");
    let (revoked, staged) = runtime().block_on(async {
        let a = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .change(|ws| {
                        if let Some(u) = ws.users.iter_mut().find(|u| u.name == "BOB") {
                            u.groups.remove("Analysts");
                        }
                        Ok(())
                    })
                    .await
            })
        };
        let b = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .change(|ws| {
                        if let Some(u) = ws.users.iter_mut().find(|u| u.name == "STAN") {
                            u.status = UserStatus::Active;
                        }
                        Ok(())
                    })
                    .await
            })
        };
        (a.await, b.await)
    });
    let (Ok(Ok(_)), Ok(Ok(_))) = (revoked, staged) else {
        return Err("both changes apply".into());
    };
    let ws = engine.workspace();
    let bob = ws.user("BOB").ok_or("BOB")?;
    let stan = ws.user("STAN").ok_or("STAN")?;
    ensure(
        !bob.groups.contains("Analysts")
            && stan.status == UserStatus::Active
            && engine.version() == 3,
        format!(
            "both changes kept: BOB {:?}, STAN {:?}",
            bob.groups, stan.status
        ),
    )?;
    let got = rows_of(&engine, "bob", "SELECT count(*) FROM customers").map_err(Failed::from)?;
    ensure(
        got == vec![vec!["0".to_string()]],
        format!("BOB unsubscribed: {got:?}"),
    )
}

fn invalid_changes_are_not_applied() -> Result<(), Failed> {
    let engine = fresh("sample");
    let err = runtime()
        .block_on(engine.change(|ws| {
            if let Some(u) = ws.users.iter_mut().find(|u| u.name == "BOB") {
                u.roles.push("NOPE".to_string());
            }
            Ok(())
        }))
        .err()
        .ok_or("a role that does not exist is refused")?;
    ensure(
        err.to_string()
            .contains("user BOB is granted role NOPE, which is not declared")
            && engine.version() == 1
            && engine.versions().len() == 1,
        err.to_string(),
    )
}

fn staged_users_query_once_activated() -> Result<(), Failed> {
    let engine = fresh("sample");
    let user = User {
        name: "newbie".to_string(),
        status: UserStatus::Active,
        roles: vec!["ANALYST".to_string()],
        groups: BTreeSet::from(["Analysts".to_string()]),
        attributes: [("Region".to_string(), BTreeSet::from(["EU".to_string()]))]
            .into_iter()
            .collect(),
        purposes: BTreeSet::new(),
        origin: Default::default(),
    };
    runtime().block_on(engine.stage_user(user))?;
    let err = engine
        .session("newbie")
        .err()
        .ok_or("staged users cannot query")?;
    ensure(err.to_string().contains("is staged"), err.to_string())?;
    runtime().block_on(engine.activate_user("NEWBIE"))?;
    let got = rows_of(&engine, "newbie", "SELECT count(*) FROM customers").map_err(Failed::from)?;
    ensure(got == vec![vec!["3".to_string()]], format!("{got:?}"))
}

/// Many sessions of different users query while versions are swapped and
/// rolled back: every result equals that user's result under exactly one
/// version, no user ever sees another's, and the audit log holds exactly
/// one complete record per statement.
fn concurrent_sessions_see_one_version_each() -> Result<(), Failed> {
    const USERS: [&str; 5] = ["BOB", "ALICE", "DANA", "FRANK", "CAROL"];
    const QUERIES: [&str; 2] = [
        "SELECT id, email, balance FROM customers ORDER BY id",
        "SELECT emp_id, name, salary FROM analytics.hr.employees ORDER BY emp_id",
    ];
    const ROUNDS: usize = 12;
    let v1 = fresh("sample");
    let v2 = fresh("sample-v2");
    let expect = |engine: &Engine| -> Vec<Vec<Result<Vec<Vec<String>>, String>>> {
        USERS
            .iter()
            .map(|u| QUERIES.iter().map(|q| rows_of(engine, u, q)).collect())
            .collect()
    };
    let (e1, e2) = (expect(&v1), expect(&v2));
    // The versions differ for some users, and users differ from each other.
    ensure(e1 != e2, "the two versions must give different results")?;
    for (i, a) in e1.iter().enumerate() {
        for b in e1.iter().skip(i + 1) {
            ensure(a != b, "every user must see something different")?;
        }
    }
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let swaps = runtime().block_on(async {
        let mut tasks = Vec::new();
        for (ui, user) in USERS.iter().enumerate() {
            let engine = engine.clone();
            let (e1, e2) = (e1[ui].clone(), e2[ui].clone());
            tasks.push(tokio::spawn(async move {
                let session = engine.session(user).map_err(|e| e.to_string())?;
                for round in 0..ROUNDS {
                    for (qi, q) in QUERIES.iter().enumerate() {
                        let got = session
                            .sql(q)
                            .await
                            .map(|b| rows(&b))
                            .map_err(|e| e.to_string());
                        if got != e1[qi] && got != e2[qi] {
                            return Err(format!(
                                "{user} round {round}: {q} gave {got:?}, which is neither version's result"
                            ));
                        }
                    }
                    tokio::task::yield_now().await;
                }
                Ok::<usize, String>(ROUNDS * QUERIES.len())
            }));
        }
        let swapper = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let v2 = Engine::load(testdata("sample-v2")).await.map_err(|e| e.to_string())?;
                engine.apply(v2.workspace()).await.map_err(|e| e.to_string())?;
                let mut swaps = 1;
                for i in 0..20 {
                    engine
                        .rollback(if i % 2 == 0 { 1 } else { 2 })
                        .await
                        .map_err(|e| e.to_string())?;
                    swaps += 1;
                    tokio::task::yield_now().await;
                }
                Ok::<usize, String>(swaps)
            })
        };
        let mut queries = 0;
        for t in tasks {
            queries += t.await.map_err(|e| e.to_string())??;
        }
        let swaps = swapper.await.map_err(|e| e.to_string())??;
        Ok::<(usize, usize), String>((queries, swaps))
    });
    let (queries, swaps) = swaps.map_err(Failed::from)?;
    let (records, torn) = read_log(&audit_path(dir.path()))?;
    let query_records = records.iter().filter(|r| r.action == "QUERY").count();
    let change_records = records.iter().filter(|r| r.action != "QUERY").count();
    ensure(
        torn == 0 && query_records == queries && change_records == swaps,
        format!(
            "{queries} statements and {swaps} swaps, but {query_records} query records, {change_records} change records, {torn} torn lines"
        ),
    )?;
    let ids: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    ensure(ids.len() == records.len(), "audit ids are unique")
}

pub(crate) fn trials() -> Vec<Trial> {
    let tests: Vec<(&str, TestFn)> = vec![
        ("veil_test_passes_on_shipped_tests", shipped_tests_pass),
        ("veil_test_fails_with_a_diff", broken_test_fails_with_a_diff),
        (
            "veil_test_complete_rewrites_expected_rows",
            complete_rewrites_expected_rows,
        ),
        (
            "veil_test_needs_a_session_header",
            records_before_a_session_header_fail,
        ),
        (
            "diff_reports_exactly_the_change",
            diff_reports_exactly_the_change,
        ),
        (
            "diff_reports_users_gaining_and_losing_access",
            diff_reports_users_gaining_and_losing_access,
        ),
        (
            "lint_column_tagged_without_column",
            lint_column_tagged_without_column,
        ),
        (
            "lint_tag_policy_matching_nothing",
            lint_tag_policy_matching_nothing,
        ),
        ("lint_negated_role_check", lint_negated_role_check),
        ("lint_conflicting_masks", lint_conflicting_masks),
        (
            "lint_short_hash_with_collision_rate",
            lint_short_hash_with_collision_rate,
        ),
        ("lint_too_many_conditions", lint_too_many_conditions),
        ("lint_unused_tag", lint_unused_tag),
        ("lint_unused_role", lint_unused_role),
        (
            "lint_user_without_subscriptions",
            lint_user_without_subscriptions,
        ),
        (
            "lint_values_beyond_declared_type",
            lint_values_beyond_declared_type,
        ),
        ("lint_sample_has_no_errors", lint_sample_has_no_errors),
        (
            "lint_mask_falling_back_to_null_is_a_warning",
            lint_mask_falling_back_to_null_is_a_warning,
        ),
        (
            "lint_allow_silences_the_named_rules",
            lint_allow_silences_the_named_rules,
        ),
        (
            "lint_allow_of_an_unknown_rule_is_a_load_error_at_its_line",
            lint_allow_of_an_unknown_rule_is_a_load_error_at_its_line,
        ),
        (
            "lint_rules_list_every_finding_code",
            lint_rules_list_every_finding_code,
        ),
        (
            "lint_sample_passes_deny_warnings",
            lint_sample_passes_deny_warnings,
        ),
        (
            "audit_records_allowed_and_denied_queries",
            audit_records_allowed_and_denied_queries,
        ),
        (
            "administrators_read_the_audit_table",
            administrators_read_the_audit_table,
        ),
        (
            "policy_changes_are_versioned_audited_and_rolled_back",
            policy_changes_are_versioned_audited_and_rolled_back,
        ),
        (
            "entitlement_change_invalidates_cached_decisions",
            entitlement_change_invalidates_cached_decisions,
        ),
        (
            "concurrent_changes_are_all_kept",
            concurrent_changes_are_all_kept,
        ),
        (
            "invalid_changes_are_not_applied",
            invalid_changes_are_not_applied,
        ),
        (
            "staged_users_query_once_activated",
            staged_users_query_once_activated,
        ),
        (
            "concurrent_sessions_see_one_version_each",
            concurrent_sessions_see_one_version_each,
        ),
    ];
    tests
        .into_iter()
        .map(|(name, f)| Trial::test(format!("ops::{name}"), f))
        .collect()
}
