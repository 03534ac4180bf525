//! `veil export snowflake`: the sample workspace's Immuta-style policies,
//! exported as Snowflake DDL and loaded back as a DDL-only workspace, give
//! every user the same results for every golden query (the round trip of
//! SPEC §4), and the DDL itself has the shape Snowflake needs.

use veil_engine::tools::export::{ExportOptions, export_snowflake, write_workspace};
use veil_engine::{Engine, SessionOptions};

use crate::common::{Failed, load, run, sample};

/// Each user's results (or error) for each query, sessions keyed by user
/// and purpose. In the exported workspace a purpose is a secondary role.
fn results(engine: &Engine, exported: bool, queries: &[String]) -> Vec<(String, String)> {
    let ws = sample().workspace();
    let mut sessions: Vec<(String, Option<String>)> =
        ws.users.iter().map(|u| (u.name.clone(), None)).collect();
    for u in &ws.users {
        for p in &u.purposes {
            sessions.push((u.name.clone(), Some(p.clone())));
        }
    }
    let mut out = Vec::new();
    for (user, purpose) in sessions {
        let (purpose_option, secondary_roles) = match (&purpose, exported) {
            (Some(p), true) => (
                None,
                Some(vec![veil_engine::compile::render::purpose_role(p)]),
            ),
            (p, _) => (p.clone(), None),
        };
        let label = format!("{user} (purpose {purpose:?})");
        let session = match engine.session_with(SessionOptions {
            user: user.clone(),
            role: None,
            purpose: purpose_option,
            mode: None,
            secondary_roles,
            statement_timeout: None,
        }) {
            Ok(s) => s,
            Err(e) => {
                out.push((label, format!("cannot open: {e}")));
                continue;
            }
        };
        for q in queries {
            let r = match run(&session, q) {
                Ok(rows) => format!("{rows:?}"),
                Err(e) => format!("error: {e}"),
            };
            out.push((format!("{label}: {q}"), r));
        }
    }
    out
}

#[test]
fn export_then_import_gives_identical_results() -> Result<(), Failed> {
    let original = sample();
    let dir = tempfile::tempdir()?;
    write_workspace(
        &original.workspace(),
        &ExportOptions { with_secret: true },
        dir.path(),
    )?;
    let exported = load(dir.path())?;
    // A DDL-only workspace: every policy came from the exported script.
    let ews = exported.workspace();
    if !ews.policies.is_empty() || ews.snowflake.masking_policies.is_empty() {
        return Err("the exported workspace should hold only Snowflake DDL policies".into());
    }
    let queries = veil_tests::shared_queries();
    if queries.len() < 10 {
        return Err(format!("only {} golden queries found", queries.len()).into());
    }
    let want = results(&original, false, &queries);
    let got = results(&exported, true, &queries);
    let mut differences = Vec::new();
    for ((label, a), (_, b)) in want.iter().zip(&got) {
        if a != b {
            differences.push(format!("{label}\n  immuta-style: {a}\n  exported DDL: {b}"));
        }
    }
    if want.len() != got.len() || !differences.is_empty() {
        return Err(differences.join("\n").into());
    }
    // The comparison is not vacuous: masked, filtered and denied results occur.
    let all = want.iter().map(|(_, r)| r.as_str()).collect::<String>();
    for expected in ["***@example.com", "nnn-nn-", "REDACTED", "error: Object"] {
        if !all.contains(expected) {
            return Err(format!("no result shows {expected}").into());
        }
    }
    Ok(())
}

#[test]
fn the_secret_is_printed_only_on_request() -> Result<(), Failed> {
    let ws = sample().workspace();
    let plain = export_snowflake(&ws, &ExportOptions::default())?;
    if plain.contains(&ws.settings.secret) {
        return Err("the secret is printed without --with-secret".into());
    }
    if !plain.contains("-- CREATE OR REPLACE SECURE FUNCTION ANALYTICS.VEIL_POLICY.HASH_SECRET()") {
        return Err(format!("no secret template:\n{plain}").into());
    }
    let with = export_snowflake(&ws, &ExportOptions { with_secret: true })?;
    if !with.contains(&format!("AS $$'{}'$$", ws.settings.secret)) {
        return Err("--with-secret does not define the secret function".into());
    }
    // With the secret installed, neither a user's EXPLAIN nor `veil explain`
    // shows it (nor any policy body).
    let dir = tempfile::tempdir()?;
    write_workspace(&ws, &ExportOptions { with_secret: true }, dir.path())?;
    let alice = load(dir.path())?.session("alice")?;
    let plan = run(&alice, "EXPLAIN SELECT name FROM customers")?;
    if crate::common::contains_text(&plan, &ws.settings.secret)
        || crate::common::contains_text(&plan, "USER_GROUPS")
        || !crate::common::contains_text(&plan, "policy internals hidden")
    {
        return Err(format!("EXPLAIN shows policy internals: {plan:?}").into());
    }
    let explained = alice.explain("SELECT name FROM customers")?.to_string();
    if explained.contains(&ws.settings.secret)
        || !explained.contains("<secure function HASH_SECRET>")
    {
        return Err(format!("explain prints the secret:\n{explained}").into());
    }
    // Without the secret function, the exported workspace fails closed on
    // hashed columns rather than showing raw values.
    let dir = tempfile::tempdir()?;
    write_workspace(&ws, &ExportOptions::default(), dir.path())?;
    let exported = load(dir.path())?;
    let alice = exported.session("alice")?;
    match run(&alice, "SELECT name FROM customers") {
        Err(_) => {}
        Ok(rows) => return Err(format!("hashed column without a secret: {rows:?}").into()),
    }
    let explained = alice.explain("SELECT name FROM customers")?.to_string();
    if explained.contains(&ws.settings.secret) {
        return Err("explain prints the secret".into());
    }
    Ok(())
}

#[test]
fn ddl_never_leaves_a_column_unprotected() -> Result<(), Failed> {
    let ddl = export_snowflake(&sample().workspace(), &ExportOptions::default())?;
    let first_grant = ddl
        .find("GRANT SELECT ON TABLE")
        .ok_or("no table grant in the export")?;
    let last_policy = ddl
        .rfind("ADD ROW ACCESS POLICY")
        .ok_or("no row access policy in the export")?;
    if first_grant < last_policy {
        return Err("a table is granted before its policies are attached".into());
    }
    for line in ddl.lines().filter(|l| l.contains("SET MASKING POLICY")) {
        if !line.ends_with("FORCE;") {
            return Err(format!("a policy swap without FORCE: {line}").into());
        }
    }
    for needle in [
        "CREATE MASKING POLICY IF NOT EXISTS ANALYTICS.VEIL_POLICY$PUBLIC$CUSTOMERS.\"hash-pii\"",
        "ALTER MASKING POLICY ANALYTICS.VEIL_POLICY$HR$EMPLOYEES.\"hash-pii\" SET BODY",
        "CREATE OR REPLACE MEMOIZABLE FUNCTION ANALYTICS.VEIL_POLICY.USER_GROUPS()",
        "GRANT ROLE PURPOSE_FRAUD_ANALYSIS TO USER ALICE;",
        "IS_ROLE_IN_SESSION('PURPOSE_FRAUD_ANALYSIS')",
    ] {
        if !ddl.contains(needle) {
            return Err(format!("the export lacks {needle}").into());
        }
    }
    Ok(())
}

#[test]
fn ddl_tables_and_set_body() -> Result<(), Failed> {
    let dir = crate::common::temp_workspace(
        "settings: {default_database: DB, default_schema: S, access: snowflake}\nusers: [{name: U}]\n",
        &[(
            "01.sql",
            "CREATE SCHEMA IF NOT EXISTS DB.S;
CREATE OR REPLACE TABLE t (id NUMBER(10,0), label VARCHAR(10) NOT NULL);
INSERT INTO t VALUES (1, 'one'), (-2, NULL);
INSERT INTO t (label, id) VALUES ('three', 3);
CREATE ROLE r; GRANT ROLE r TO USER u; GRANT SELECT ON TABLE t TO ROLE r;
CREATE MASKING POLICY m AS (v VARCHAR) RETURNS VARCHAR -> v;
ALTER TABLE t MODIFY COLUMN label SET MASKING POLICY m;
ALTER MASKING POLICY m SET BODY -> UPPER(v);",
        )],
    );
    let engine = load(dir.path())?;
    let rows = run(&engine.session("u")?, "SELECT id, label FROM t ORDER BY id")?;
    let want = [["-2", "NULL"], ["1", "ONE"], ["3", "THREE"]];
    if rows != want.map(|r| r.map(str::to_string).to_vec()) {
        return Err(format!("{rows:?}").into());
    }
    let bad = crate::common::temp_workspace(
        "settings: {default_database: DB, default_schema: S}\nusers: [{name: U}]\n",
        &[(
            "01.sql",
            "CREATE TABLE t (id NUMBER(10,0));\nINSERT INTO t VALUES (1, 2);",
        )],
    );
    match load(bad.path()) {
        Err(e) if e.contains("01.sql:2:1") && e.contains("has 2 value(s) but 1 column(s)") => {}
        other => return Err(format!("{other:?}").into()),
    }
    Ok(())
}
