//! Semantics and error texts: the seed example (SPEC §3.3), sessions that
//! may not open, fail-closed policies, workspace errors with file and line,
//! `explain`, and the printed rewrite agreeing with enforcement.

use sha2::{Digest, Sha256};
use veil_engine::{EnforcementMode, SessionOptions};

use crate::common::{Failed, load, run, runtime, sample, session, temp_workspace};
use veil_tests::shared_queries;

/// A manifest, its data files, and the error it must produce.
type LoadCase = (String, Vec<(&'static str, &'static str)>, &'static str);

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

const SEED_MANIFEST: &str = r#"
settings: {default_database: DB, default_schema: S, secret_env: VEIL_TEST_UNSET_SECRET}
tables:
  - name: DB.S.SEED
    location: seed.csv
    columns:
      - {name: ID, type: NUMBER(10,0)}
      - {name: A, type: VARCHAR(6), tags: [Hashed]}
      - {name: B, type: VARCHAR(5)}
      - {name: C, type: VARCHAR(6)}
      - {name: D, type: NUMBER(3,0)}
roles:
  - {name: R, grants: [DB.S.SEED]}
users:
  - {name: U, roles: [R], groups: [G]}
policies:
  - {name: a-hash, type: masking, on: {tags: [Hashed]}, mask: hash}
  - {name: b-constant, type: masking, on: {columns: [DB.S.SEED.B]}, mask: {constant: REDACTED}}
  - {name: c-null, type: masking, on: {columns: [DB.S.SEED.C]}, mask: nullify}
  - {name: d-round, type: masking, on: {columns: [DB.S.SEED.D]}, mask: {round: 10}}
  - {name: sub, type: subscription, on: {data_sources: [DB.S.SEED]}, allow: anyone}
"#;

const SEED_CSV: &str =
    "id,a,b,c,d\n1,alpha,bravo,charlie,994\n2,beta,x,y,754\n3,,,,376\n4,gamma,g,h,996\n";

#[test]
fn seed_example_fits_declared_types() -> Result<(), Failed> {
    let dir = temp_workspace(SEED_MANIFEST, &[("seed.csv", SEED_CSV)]);
    let engine = load(dir.path())?;
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        let s = engine
            .session_with(SessionOptions {
                user: "u".into(),
                mode: Some(mode),
                secondary_roles: None,
                statement_timeout: None,
                ..Default::default()
            })
            .map_err(|e| e.to_string())?;
        let rows = run(&s, "SELECT id, a, b, c, d FROM seed ORDER BY id")?;
        let salt = format!("{}/DB.S.SEED", veil_engine::load::DEV_SECRET);
        let expect_hash = |v: &str| -> String {
            let d = Sha256::digest(format!("{salt}{v}").as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()[..6].to_string()
        };
        let expected = vec![
            vec![
                "1".to_string(),
                expect_hash("alpha"),
                "REDAC".into(),
                "NULL".into(),
                "990".into(),
            ],
            vec![
                "2".to_string(),
                expect_hash("beta"),
                "REDAC".into(),
                "NULL".into(),
                "750".into(),
            ],
            // An empty CSV field is NULL: NULL stays NULL except for constant.
            vec![
                "3".to_string(),
                "NULL".into(),
                "REDAC".into(),
                "NULL".into(),
                "380".into(),
            ],
            vec![
                "4".to_string(),
                expect_hash("gamma"),
                "REDAC".into(),
                "NULL".into(),
                "990".into(),
            ],
        ];
        ensure(
            rows == expected,
            format!("{mode:?}: got {rows:?}, expected {expected:?}"),
        )?;
    }
    Ok(())
}

fn session_error(user: &str, role: Option<&str>, purpose: Option<&str>) -> String {
    match sample().session_with(SessionOptions {
        user: user.into(),
        role: role.map(str::to_string),
        purpose: purpose.map(str::to_string),
        mode: None,
        secondary_roles: None,
        statement_timeout: None,
    }) {
        Ok(_) => "opened".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sessions_that_may_not_open() -> Result<(), Failed> {
    let cases = [
        (
            session_error("mallory", None, None),
            "User 'MALLORY' does not exist in this workspace.",
        ),
        (
            session_error("dave", None, None),
            "User 'DAVE' is disabled.",
        ),
        (
            session_error("stan", None, None),
            "User 'STAN' is staged and cannot query yet.",
        ),
        (
            session_error("bob", Some("compliance_officer"), None),
            "Role 'COMPLIANCE_OFFICER' is not granted to user 'BOB'.",
        ),
        (
            session_error("bob", None, Some("Fraud Analysis")),
            "User 'BOB' has not acknowledged purpose 'Fraud Analysis'.",
        ),
    ];
    for (got, want) in cases {
        ensure(got == want, format!("got {got:?}, want {want:?}"))?;
    }
    Ok(())
}

#[test]
fn not_granted_and_missing_read_the_same() -> Result<(), Failed> {
    let erin = session("ERIN", None, EnforcementMode::Inlined);
    let not_granted = run(&erin, "SELECT * FROM customers")
        .err()
        .unwrap_or_default();
    let missing = run(&erin, "SELECT * FROM customerz")
        .err()
        .unwrap_or_default();
    ensure(
        not_granted == "Object 'ANALYTICS.PUBLIC.CUSTOMERS' does not exist or not authorized.",
        not_granted.clone(),
    )?;
    ensure(
        missing == "Object 'ANALYTICS.PUBLIC.CUSTOMERZ' does not exist or not authorized.",
        missing,
    )
}

#[test]
fn granted_but_not_subscribed_is_zero_rows() -> Result<(), Failed> {
    let charlie = session("CHARLIE", None, EnforcementMode::ProfileJoin);
    let rows = run(&charlie, "SELECT * FROM customers")?;
    ensure(rows.is_empty(), format!("{rows:?}"))
}

fn workspace_with_policy(policy: &str) -> tempfile::TempDir {
    let manifest = format!(
        r#"
settings: {{default_database: DB, default_schema: S}}
tables:
  - name: DB.S.T
    location: t.csv
    columns:
      - {{name: ID, type: NUMBER(10,0)}}
      - {{name: REGION, type: VARCHAR(4), tags: [Geo]}}
      - {{name: BALANCE, type: NUMBER(5,0)}}
roles:
  - {{name: R, grants: [DB.S.T]}}
users:
  - {{name: U, roles: [R], groups: [G, US], attributes: {{Region: [EU]}}}}
policies:
  - {{name: sub, type: subscription, on: {{data_sources: [DB.S.T]}}, allow: anyone}}
{policy}
"#
    );
    temp_workspace(
        &manifest,
        &[("t.csv", "id,region,balance\n1,EU,5\n2,US,7\n3,EU,\n")],
    )
}

fn query_on(policy: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let dir = workspace_with_policy(policy);
    let engine = load(dir.path())?;
    let s = engine.session("u").map_err(|e| e.to_string())?;
    run(&s, sql)
}

#[test]
fn column_tagged_without_a_column_fails_closed() -> Result<(), Failed> {
    let r = query_on(
        "  - {name: bad, type: row, on: {data_sources: [DB.S.T]}, rule: {where: \"@columnTagged('Nope') = 'EU'\"}}",
        "SELECT * FROM t",
    );
    match r {
        Err(e) => ensure(
            e.contains("policy 'bad'") && e.contains("@columnTagged('Nope') matches no column"),
            e,
        ),
        Ok(rows) => Err(format!("a broken policy returned rows {rows:?}").into()),
    }
}

#[test]
fn tag_row_policy_naming_a_missing_column_fails_closed() -> Result<(), Failed> {
    let r = query_on(
        "  - {name: bad, type: row, on: {tags: [Geo]}, rule: {match_attribute: Region, column: COUNTRY}}",
        "SELECT id FROM t",
    );
    match r {
        Err(e) => ensure(e.contains("COUNTRY") && e.contains("denied"), e),
        Ok(rows) => Err(format!("a broken policy returned rows {rows:?}").into()),
    }
}

#[test]
fn broken_where_body_fails_closed() -> Result<(), Failed> {
    let r = query_on(
        "  - {name: bad, type: row, on: {data_sources: [DB.S.T]}, rule: {where: \"NO_SUCH_COLUMN = 1\"}}",
        "SELECT id FROM t",
    );
    ensure(r.is_err(), format!("a broken policy returned {r:?}"))
}

#[test]
fn row_rule_returning_null_hides_the_row() -> Result<(), Failed> {
    let rows = query_on(
        "  - {name: positive, type: row, on: {data_sources: [DB.S.T]}, rule: {where: \"BALANCE > 0\"}}",
        "SELECT id FROM t ORDER BY id",
    )?;
    ensure(
        rows == vec![vec!["1".to_string()], vec!["2".to_string()]],
        format!("{rows:?}"),
    )
}

#[test]
fn tag_row_policy_uses_the_tagged_column() -> Result<(), Failed> {
    let rows = query_on(
        "  - {name: geo, type: row, on: {tags: [Geo]}, rule: {match_attribute: Region}}",
        "SELECT id FROM t ORDER BY id",
    )?;
    ensure(
        rows == vec![vec!["1".to_string()], vec!["3".to_string()]],
        format!("{rows:?}"),
    )
}

#[test]
fn match_groups_shows_rows_of_the_users_groups() -> Result<(), Failed> {
    let rows = query_on(
        "  - {name: by-group, type: row, on: {data_sources: [DB.S.T]}, rule: {match_groups: REGION}}",
        "SELECT id FROM t ORDER BY id",
    )?;
    ensure(rows == vec![vec!["2".to_string()]], format!("{rows:?}"))
}

/// Attribute values are text: on an integer column only the canonical text
/// of the integer matches (`'01'`, `'+3'`, `'4.0'`, `' 5'` and a number
/// beyond 64 bits do not), in both modes — both compare integers, inlined
/// mode from the user's entitlements, profile-join mode from the user's
/// values, which its session folds into the plan.
#[test]
fn match_attribute_on_integers_compares_the_text() -> Result<(), Failed> {
    let manifest = r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.T
    location: t.csv
    columns:
      - {name: ID, type: NUMBER(10,0)}
      - {name: BALANCE, type: NUMBER(5,0)}
roles:
  - {name: R, grants: [DB.S.T]}
users:
  - {name: U, roles: [R], attributes: {Id: ['01', '2', '+3', '4.0', ' 5', '-6', '99999999999999999999']}}
  - {name: V, roles: [R], attributes: {Id: ['x', '07']}}
policies:
  - {name: sub, type: subscription, on: {data_sources: [DB.S.T]}, allow: anyone}
  - {name: by-id, type: row, on: {data_sources: [DB.S.T]}, rule: {match_attribute: Id, column: ID}}
"#;
    let dir = temp_workspace(
        manifest,
        &[("t.csv", "id,balance\n1,1\n2,2\n3,3\n4,4\n5,5\n-6,6\n7,7\n")],
    );
    let engine = load(dir.path())?;
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        for (user, expected) in [("u", vec!["-6", "2"]), ("v", vec![])] {
            let s = engine
                .session_with(SessionOptions {
                    mode: Some(mode),
                    ..SessionOptions::user(user)
                })
                .map_err(|e| e.to_string())?;
            let rows = run(&s, "SELECT id FROM t ORDER BY id")?;
            let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
            ensure(ids == expected, format!("{user} in {mode:?}: {ids:?}"))?;
        }
    }
    Ok(())
}

#[test]
fn masks_apply_in_where_and_aggregates() -> Result<(), Failed> {
    let policy = "  - {name: r, type: masking, on: {columns: [DB.S.T.BALANCE]}, mask: {round: 10}}";
    let rows = query_on(policy, "SELECT count(*) FROM t WHERE balance = 5")?;
    ensure(
        rows == vec![vec!["0".to_string()]],
        format!("predicate saw raw values: {rows:?}"),
    )?;
    let rows = query_on(policy, "SELECT sum(balance) FROM t")?;
    ensure(
        rows == vec![vec!["20".to_string()]],
        format!("aggregate saw raw values: {rows:?}"),
    )
}

#[test]
fn snowflake_types_in_user_sql() -> Result<(), Failed> {
    let carol = session("CAROL", None, EnforcementMode::Inlined);
    let rows = run(
        &carol,
        "SELECT CAST(balance AS NUMBER(10,2)) AS b, CAST(id AS NUMBER) AS i FROM customers WHERE id = 1",
    )?;
    ensure(
        rows == vec![vec!["994.00".to_string(), "1".to_string()]],
        format!("{rows:?}"),
    )
}

#[test]
fn load_errors_name_file_and_line() -> Result<(), Failed> {
    let cases: Vec<LoadCase> = vec![
        (
            "tables:\n  - name: DB.S.T\n    location: t.csv\n    columns:\n      - {name: A, type: BLOB}\n".into(),
            vec![("t.csv", "a\n1\n")],
            "veil.yaml:2: table DB.S.T, column A: type 'BLOB' is not a supported Snowflake type",
        ),
        (
            "tables:\n  - name: DB.S.T\n    location: t.csv\n    columns: [{name: A, type: VARCHAR(3)}]\nusers:\n  - {name: U, roles: [NOPE]}\n".into(),
            vec![("t.csv", "a\nx\n")],
            "veil.yaml:6: user U is granted role NOPE, which is not declared",
        ),
        (
            "tables:\n  - name: DB.S.T\n    location: missing.csv\n    columns: [{name: A, type: VARCHAR(3)}]\n".into(),
            vec![],
            "veil.yaml:2: table DB.S.T: data location 'missing.csv' does not exist",
        ),
        (
            "tables:\n  - name: DB.S.T\n    location: t.ndjson\n    columns: [{name: A, type: NUMBER(5,0)}]\n".into(),
            vec![("t.ndjson", "{\"a\": \"text\"}\n")],
            "veil.yaml:2: table DB.S.T: column A is declared NUMBER(5,0) but 't.ndjson' stores Utf8",
        ),
        (
            "tables:\n  - name: DB.S.T\n    location: t.csv\n    columns: [{name: B, type: VARCHAR(3)}]\n".into(),
            vec![("t.csv", "a\nx\n")],
            "veil.yaml:2: table DB.S.T: declared column B is not in 't.csv'",
        ),
        (
            "tables:\n  - name: DB.S.T\n    location: t.csv\n    columns: [{name: A, type: VARCHAR(3)}]\npolicies:\n  - name: p\n    type: masking\n    on: {tags: [X]}\n    mask: null\n".into(),
            vec![("t.csv", "a\nx\n")],
            "veil.yaml:6: policy 'p': a bare null is YAML's null; write `mask: nullify`",
        ),
        (
            "tables:\n  - name: DB.S.T\n    location: t.csv\n    colums: []\n".into(),
            vec![],
            "veil.yaml:4: tables[0]: unknown field `colums`",
        ),
    ];
    for (manifest, files, want) in cases {
        let dir = temp_workspace(&manifest, &files);
        match load(dir.path()) {
            Ok(_) => return Err(format!("loaded a broken workspace; wanted {want:?}").into()),
            Err(e) => ensure(e.starts_with(want), format!("got {e:?}\nwant {want:?}"))?,
        }
    }
    Ok(())
}

#[test]
fn explain_names_policy_tag_exception_conflict_fallback() -> Result<(), Failed> {
    let bob = session("BOB", None, EnforcementMode::Inlined);
    let text = bob
        .explain("SELECT c.ssn, c.name, e.manager_id FROM customers c, analytics.hr.employees e")
        .map_err(|e| e.to_string())?
        .to_string();
    for needle in [
        "show_last 4 by ssn-last-four",
        "tagged PII.SSN (policy tag PII.SSN)",
        "BOB does not meet the exception (group Compliance)",
        "conflict: policy 'hash-pii'",
        "hash cannot mask a NUMBER(10,0) column, so it shows NULL",
        "row rule rows-by-region [filters]",
        "rewritten SQL",
        "veil_mask_show_last",
    ] {
        ensure(
            text.contains(needle),
            format!("explain lacks {needle:?}:\n{text}"),
        )?;
    }
    ensure(
        !text.contains(veil_engine::load::DEV_SECRET),
        "explain shows the secret",
    )
}

#[test]
fn printed_rewrite_matches_enforcement() -> Result<(), Failed> {
    for user in ["CAROL", "BOB", "FRANK", "ERIN", "DANA", "CHARLIE"] {
        for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
            let s = session(user, None, mode);
            for sql in shared_queries() {
                let upper = sql.to_uppercase();
                if upper.starts_with("SHOW") || upper.starts_with("DESCRIBE") {
                    continue;
                }
                let enforced = runtime()
                    .block_on(s.sql(&sql))
                    .map(|b| crate::common::rows(&b));
                let printed = runtime()
                    .block_on(s.run_rewritten(&sql))
                    .map(|b| crate::common::rows(&b));
                match (enforced, printed) {
                    (Ok(a), Ok(b)) => ensure(
                        a == b,
                        format!("{user} {mode:?} {sql}: enforced {a:?} vs printed {b:?}"),
                    )?,
                    (Err(_), Err(_)) => {}
                    (a, b) => {
                        return Err(format!(
                            "{user} {mode:?} {sql}: enforced {a:?} vs printed {b:?}"
                        )
                        .into());
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn global_salt_joins_across_tables() -> Result<(), Failed> {
    let manifest = r#"
settings: {default_database: DB, default_schema: S, salt_scope: global}
tables:
  - {name: DB.S.A, location: a.csv, columns: [{name: K, type: VARCHAR(64), tags: [Key]}]}
  - {name: DB.S.B, location: b.csv, columns: [{name: K, type: VARCHAR(64), tags: [Key]}]}
roles: [{name: R, grants: [DB.S.A, DB.S.B]}]
users: [{name: U, roles: [R]}]
policies:
  - {name: h, type: masking, on: {tags: [Key]}, mask: hash}
  - {name: s, type: subscription, on: {data_sources: [DB.S.A, DB.S.B]}, allow: anyone}
"#;
    let dir = temp_workspace(manifest, &[("a.csv", "k\nx\ny\n"), ("b.csv", "k\nx\nz\n")]);
    let engine = load(dir.path())?;
    let s = engine.session("u").map_err(|e| e.to_string())?;
    let rows = run(&s, "SELECT count(*) FROM a JOIN b ON a.k = b.k")?;
    ensure(rows == vec![vec!["1".to_string()]], format!("{rows:?}"))
}

#[test]
fn result_columns_carry_snowflake_names_when_a_statement_runs_again() -> Result<(), Failed> {
    // Unaliased expressions are named as written, upper-cased (SPEC's
    // Snowflake naming); the second and third runs take the statement (and
    // its names) from the session's statement cache.
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        let s = session("ALICE", None, mode);
        for sql in [
            "select count(*), upper( region ) , region as r from customers group by region",
            "select 1 + 1, *, 'x' from customers limit 1",
        ] {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let batches = runtime()
                    .block_on(s.sql(sql))
                    .map_err(|e| format!("{mode:?}: {sql}: {e}"))?;
                let schema = batches.first().ok_or("no batch")?.schema();
                seen.push(
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>(),
                );
            }
            let first = &seen[0];
            let named = if sql.contains('*') && !sql.contains("count") {
                first.first().map(String::as_str) == Some("1 + 1")
                    && first.last().map(String::as_str) == Some("'X'")
            } else {
                first[..3] == ["COUNT(*)", "UPPER( REGION )", "R"]
            };
            ensure(
                named && seen.iter().all(|names| names == first),
                format!("{mode:?}: {sql}: {seen:?}"),
            )?;
        }
    }
    Ok(())
}
