//! The encrypting and cell-level masks on `testdata/masks`: reversible
//! tokens and `VEIL_UNMASK` (SPEC rule 21), format-preserving FF1 (rule 22),
//! and the leaks each must not open — unmasking by a user the policy does
//! not admit, masked values as a WHERE oracle, internal mask functions
//! called directly.

use veil_engine::{EnforcementMode, Engine, Session, SessionOptions};

use crate::common::{Failed, both_modes, engine, load, run, runtime, temp_workspace};

const EMAIL: &str = "'CLINIC.PUBLIC.PATIENTS.EMAIL'";
const SSN: &str = "'CLINIC.PUBLIC.PATIENTS.SSN'";

fn masks() -> Engine {
    engine("masks")
}

fn session(user: &str, mode: EnforcementMode) -> Session {
    masks()
        .session_with(SessionOptions {
            user: user.to_string(),
            role: None,
            purpose: None,
            mode: Some(mode),
            secondary_roles: None,
            statement_timeout: None,
        })
        .expect("session opens")
}

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// The single cell of a one-row, one-column result.
fn cell(s: &Session, sql: &str) -> Result<String, Failed> {
    let rows = run(s, sql)?;
    match rows.as_slice() {
        [row] if row.len() == 1 => Ok(row[0].clone()),
        other => Err(format!("{sql}: expected one cell, got {other:?}").into()),
    }
}

#[test]
fn reversible_tokens_replace_values_and_join() -> Result<(), Failed> {
    both_modes(|mode| {
        let ben = session("BEN", mode);
        let token = cell(&ben, "SELECT email FROM patients WHERE id = 1")?;
        ensure(
            token.starts_with("v1.") && !token.contains("alice"),
            format!("BEN sees {token}"),
        )?;
        // Deterministic: the same token in another query, and equal values
        // group together.
        let again = cell(&ben, "SELECT max(email) FROM patients WHERE id = 1")?;
        ensure(token == again, "tokens differ between queries")?;
        let raw_distinct = cell(
            &session("ADA", mode),
            "SELECT count(DISTINCT email) FROM patients",
        )?;
        let masked_distinct = cell(&ben, "SELECT count(DISTINCT email) FROM patients")?;
        ensure(
            raw_distinct == masked_distinct,
            format!("{raw_distinct} distinct e-mails, {masked_distinct} distinct tokens"),
        )?;
        // SUE (Support) is excepted: the raw value.
        let sue = session("SUE", mode);
        ensure(
            cell(&sue, "SELECT email FROM patients WHERE id = 1")? == "alice.smith@example.com",
            "SUE should see the raw e-mail",
        )
    })
}

#[test]
fn veil_unmask_admits_only_the_policy_exception() -> Result<(), Failed> {
    both_modes(|mode| {
        let ben = session("BEN", mode);
        let token = cell(&ben, "SELECT email FROM patients WHERE id = 3")?;
        let unmask = format!("SELECT VEIL_UNMASK('{token}', {EMAIL})");
        // SUE is admitted by email-tokens' exception (group Support).
        ensure(
            cell(&session("SUE", mode), &unmask)? == "carla.diaz@example.net",
            "SUE cannot unmask the token",
        )?;
        ensure(
            cell(&session("ADA", mode), &unmask)? == "carla.diaz@example.net",
            "ADA cannot unmask the token",
        )?;
        // BEN is not: NULL, never an error or the value.
        ensure(cell(&ben, &unmask)? == "NULL", "BEN unmasked a token")?;
        // Nor over the whole column, in any spelling of the column name.
        for sql in [
            format!("SELECT VEIL_UNMASK(email, {EMAIL}) FROM patients"),
            "SELECT veil_unmask(email, 'clinic.public.patients.email') FROM patients".to_string(),
            format!("SELECT id FROM patients WHERE VEIL_UNMASK(email, {EMAIL}) LIKE 'a%'"),
        ] {
            let rows = run(&ben, &sql)?;
            ensure(
                rows.iter().flatten().all(|c| c == "NULL") || rows.is_empty(),
                format!("BEN got {rows:?} from {sql}"),
            )?;
        }
        // A token under another column's name does not decrypt: SUE is
        // admitted for EMAIL, not SSN.
        let bad = format!("SELECT VEIL_UNMASK('{token}', {SSN})");
        ensure(
            cell(&session("SUE", mode), &bad)? == "NULL",
            "wrong column decrypted",
        )
    })
}

#[test]
fn format_preserving_keeps_shape_and_unmasks_for_compliance() -> Result<(), Failed> {
    both_modes(|mode| {
        let ben = session("BEN", mode);
        let rows = run(&ben, "SELECT id, ssn, card FROM patients ORDER BY id")?;
        let raw = run(
            &session("ADA", mode),
            "SELECT id, ssn, card FROM patients ORDER BY id",
        )?;
        for (masked, raw) in rows.iter().zip(&raw) {
            for (m, r) in masked.iter().zip(raw).skip(1) {
                if r.is_empty() {
                    continue;
                }
                if r == "NULL" || r == "12-34" {
                    // Too few digits for FF1: NULL, never the raw value.
                    ensure(m == "NULL", format!("{r} showed as {m}"))?;
                    continue;
                }
                ensure(m != r, format!("{r} unchanged"))?;
                ensure(
                    m.len() == r.len()
                        && m.chars().zip(r.chars()).all(|(a, b)| {
                            a.is_ascii_digit() == b.is_ascii_digit()
                                && (b.is_ascii_alphanumeric() || a == b)
                        }),
                    format!("{r} became {m}: shape not kept"),
                )?;
            }
        }
        // Equal cards (rows 1 and 6) stay equal: they join.
        let pairs = cell(
            &ben,
            "SELECT count(*) FROM patients a JOIN patients b ON a.card = b.card AND a.id < b.id",
        )?;
        ensure(pairs == "1", format!("{pairs} card pairs"))?;
        // ADA (Compliance) unmasks what BEN sees; SUE and BEN get NULL.
        let masked = cell(&ben, "SELECT ssn FROM patients WHERE id = 2")?;
        let unmask = format!("SELECT VEIL_UNMASK('{masked}', {SSN})");
        ensure(
            cell(&session("ADA", mode), &unmask)? == "987-65-4321",
            "ADA cannot unmask",
        )?;
        ensure(
            cell(&session("SUE", mode), &unmask)? == "NULL",
            "SUE unmasked an SSN",
        )?;
        ensure(cell(&ben, &unmask)? == "NULL", "BEN unmasked an SSN")
    })
}

#[test]
fn format_preserving_output_is_no_where_oracle() -> Result<(), Failed> {
    both_modes(|mode| {
        let ben = session("BEN", mode);
        // WHERE compares masked values: the raw SSN matches nothing, its
        // prefix tells nothing.
        for (sql, want) in [
            (
                "SELECT count(*) FROM patients WHERE ssn = '123-45-6789'",
                "0",
            ),
            (
                "SELECT count(*) FROM patients WHERE email = 'bob@example.org'",
                "0",
            ),
        ] {
            ensure(cell(&ben, sql)? == want, format!("{sql} was an oracle"))?;
        }
        let masked = cell(&ben, "SELECT ssn FROM patients WHERE id = 1")?;
        ensure(
            cell(
                &ben,
                &format!("SELECT count(*) FROM patients WHERE ssn = '{masked}'"),
            )? == "1",
            "the masked value should match itself",
        )?;
        // The internal mask functions stay internal: no encryption oracle.
        for sql in [
            "SELECT veil_mask_fpe('123-45-6789', 'CLINIC.PUBLIC.PATIENTS', 'ssn-ff1', 'VARCHAR(11)')",
            "SELECT veil_mask_reversible('bob@example.org', 'CLINIC.PUBLIC.PATIENTS', 'email-tokens', 'STRING')",
        ] {
            match run(&ben, sql) {
                Err(e) if e.contains("internal to Veil") => {}
                other => return Err(format!("{sql} gave {other:?}").into()),
            }
        }
        Ok(())
    })
}

#[test]
fn explain_and_lint_say_which_values_show_null() -> Result<(), Failed> {
    let ben = session("BEN", EnforcementMode::Inlined);
    let text = ben.explain("SELECT email, ssn FROM patients")?.to_string();
    for needle in [
        "column EMAIL: reversible by email-tokens",
        "column SSN: format_preserving by ssn-ff1",
        "values longer than 41 bytes show NULL",
        "1 to 5 digits",
    ] {
        ensure(
            text.contains(needle),
            format!("explain lacks {needle}:\n{text}"),
        )?;
    }
    ensure(
        !text.contains(&masks().workspace().settings.secret),
        "explain shows the secret",
    )?;
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&masks()))?;
    ensure(
        findings.iter().any(|f| f.code == "mask-nulls-some-values"),
        "lint does not report the NULL values",
    )
}

#[test]
fn reversible_in_a_short_varchar_is_null_and_explained() -> Result<(), Failed> {
    let dir = temp_workspace(
        r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.T
    location: t.csv
    columns:
      - {name: ID, type: NUMBER(10,0)}
      - {name: CODE, type: VARCHAR(20)}
      - {name: N, type: NUMBER(5,0)}
roles: [{name: R, grants: [DB.S.T]}]
users: [{name: U, roles: [R]}]
policies:
  - {name: sub, type: subscription, on: {data_sources: [DB.S.T]}, allow: anyone}
  - {name: code-token, type: masking, on: {columns: [DB.S.T.CODE]}, mask: reversible}
  - {name: n-ff1, type: masking, on: {columns: [DB.S.T.N]}, mask: format_preserving}
"#,
        &[("t.csv", "id,code,n\n1,abc,12345\n")],
    );
    let engine = load(dir.path())?;
    let s = engine.session("U")?;
    ensure(
        run(&s, "SELECT code, n FROM t")? == vec![vec!["NULL".to_string(), "NULL".to_string()]],
        "a token cut to VARCHAR(20) or FF1 on a NUMBER must show NULL",
    )?;
    let text = s.explain("SELECT code, n FROM t")?.to_string();
    for needle in [
        "a truncated token could not be decrypted",
        "format_preserving cannot mask a NUMBER(5,0) column",
    ] {
        ensure(
            text.contains(needle),
            format!("explain lacks {needle}:\n{text}"),
        )?;
    }
    Ok(())
}

#[test]
fn export_refuses_encrypting_masks_by_name() -> Result<(), Failed> {
    let ws = masks().workspace();
    match veil_engine::tools::export::export_snowflake(&ws, &Default::default()) {
        Err(e) => {
            let e = e.to_string();
            ensure(
                e.contains("email-tokens") && e.contains("no Snowflake equivalent"),
                format!("unclear refusal: {e}"),
            )
        }
        Ok(_) => Err("exporting reversible tokens should be refused".into()),
    }
}

#[test]
fn encrypting_mask_yaml_errors_name_file_line_and_policy() -> Result<(), Failed> {
    let dir = temp_workspace(
        r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.T
    location: t.csv
    columns: [{name: A, type: VARCHAR(50)}]
policies:
  - name: bad-token
    type: masking
    on: {columns: [DB.S.T.A]}
    mask: {reversible: yes}
"#,
        &[("t.csv", "a\nx\n")],
    );
    let e = load(dir.path()).err().unwrap_or_default();
    ensure(
        e.contains("veil.yaml:")
            && e.contains("bad-token")
            && e.contains("reversible takes no parameters"),
        format!("unclear error: {e}"),
    )
}

#[test]
fn mask_where_masks_only_matching_rows() -> Result<(), Failed> {
    both_modes(|mode| {
        let ben = session("BEN", mode);
        let rows = run(&ben, "SELECT id, name FROM patients ORDER BY id")?;
        let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        // CA rows (1, 3, 8) redacted; NY, TX, WA and the row without a state raw.
        let want = [
            "REDACTED",
            "Bob Jones",
            "REDACTED",
            "Dan Wu",
            "Eve Park",
            "Finn Lee",
            "Gia Russo",
            "REDACTED",
        ];
        ensure(names == want, format!("BEN sees {names:?}"))?;
        // The mask applies in WHERE too: a redacted name matches nothing.
        ensure(
            cell(
                &ben,
                "SELECT count(*) FROM patients WHERE name = 'Alice Smith'",
            )? == "0",
            "a redacted cell answered a WHERE",
        )?;
        ensure(
            cell(
                &ben,
                "SELECT count(*) FROM patients WHERE name = 'Bob Jones'",
            )? == "1",
            "an unmasked cell should match",
        )?;
        // Compliance is excepted.
        let ada = session("ADA", mode);
        ensure(
            cell(&ada, "SELECT name FROM patients WHERE id = 1")? == "Alice Smith",
            "ADA should see the raw name",
        )?;
        let text = ben.explain("SELECT name FROM patients")?.to_string();
        ensure(
            text.contains("constant 'REDACTED' only on rows where STATE = 'CA'"),
            format!("explain lacks the cell predicate:\n{text}"),
        )
    })
}

const CELL_MANIFEST: &str = r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.P
    location: p.csv
    columns:
      - {name: ID, type: NUMBER(10,0)}
      - {name: NAME, type: VARCHAR(20)}
      - {name: SSN, type: VARCHAR(11)}
      - {name: STATE, type: VARCHAR(2)}
      - {name: AGE, type: NUMBER(3,0)}
roles: [{name: R, grants: [DB.S.P]}]
users: [{name: U, roles: [R]}]
policies:
  - {name: sub, type: subscription, on: {data_sources: [DB.S.P]}, allow: anyone}
  - {name: no-texas, type: row, on: {data_sources: [DB.S.P]}, rule: {where: "STATE <> 'TX'"}}
  - {name: ssn-ff1, type: masking, on: {columns: [DB.S.P.SSN]}, mask: format_preserving}
  - name: names-by-raw-ssn
    type: masking
    on: {columns: [DB.S.P.NAME]}
    mask: nullify
    where: "SSN LIKE '1%' OR 1 / (AGE - 29) > 1"
"#;

const CELL_DATA: &str = "id,name,ssn,state,age\n\
1,Alice,123-45-6789,CA,34\n\
2,Bob,987-65-4321,NY,51\n\
3,Dan,555-12-3456,TX,29\n";

#[test]
fn mask_where_reads_raw_values_of_visible_rows_only() -> Result<(), Failed> {
    let dir = temp_workspace(CELL_MANIFEST, &[("p.csv", CELL_DATA)]);
    let engine = load(dir.path())?;
    for mode in crate::common::MODES {
        let s = engine.session_with(SessionOptions {
            user: "U".into(),
            role: None,
            purpose: None,
            mode: Some(mode),
            secondary_roles: None,
            statement_timeout: None,
        })?;
        // The predicate reads the raw SSN (masked by FF1 in the output), and
        // runs only on rows the row rule lets through: Dan's AGE - 29 = 0
        // would fail the division if it ran on the hidden TX row.
        let rows = run(&s, "SELECT id, name FROM p ORDER BY id")?;
        ensure(
            rows == vec![
                vec!["1".to_string(), "NULL".to_string()],
                vec!["2".to_string(), "Bob".to_string()],
            ],
            format!("{mode:?}: {rows:?}"),
        )?;
        for sql in [
            "SELECT count(*) FROM p WHERE name = 'Dan'",
            "SELECT count(*) FROM p WHERE name = 'Alice'",
            "SELECT count(*) FROM p WHERE ssn = '123-45-6789'",
        ] {
            ensure(cell(&s, sql)? == "0", format!("{mode:?}: {sql} leaked"))?;
        }
    }
    Ok(())
}

#[test]
fn mask_where_yaml_errors_name_file_line_and_policy() -> Result<(), Failed> {
    let base = CELL_MANIFEST.replace(
        "mask: nullify\n    where: \"SSN LIKE '1%' OR 1 / (AGE - 29) > 1\"",
        "mask: nullify\n    where: \"STATE = = 'CA'\"",
    );
    let dir = temp_workspace(&base, &[("p.csv", CELL_DATA)]);
    let e = load(dir.path()).err().unwrap_or_default();
    ensure(
        e.contains("veil.yaml:") && e.contains("names-by-raw-ssn") && e.contains("does not parse"),
        format!("unclear error: {e}"),
    )?;
    let on_row = CELL_MANIFEST.replace(
        "rule: {where: \"STATE <> 'TX'\"}}",
        "rule: {where: \"STATE <> 'TX'\"}, where: \"ID = 1\"}",
    );
    let dir = temp_workspace(&on_row, &[("p.csv", CELL_DATA)]);
    let e = load(dir.path()).err().unwrap_or_default();
    ensure(
        e.contains("no-texas") && e.contains("does not belong in a row policy"),
        format!("unclear error: {e}"),
    )?;
    // A predicate naming a column the table lacks fails closed at query time.
    let missing = CELL_MANIFEST.replace("SSN LIKE '1%' OR 1 / (AGE - 29) > 1", "NOPE = 1");
    let dir = temp_workspace(&missing, &[("p.csv", CELL_DATA)]);
    let engine = load(dir.path())?;
    let s = engine.session("U")?;
    match run(&s, "SELECT name FROM p") {
        Err(_) => Ok(()),
        Ok(rows) => Err(format!("a broken cell predicate showed {rows:?}").into()),
    }
}

#[test]
fn randomized_response_draws_from_the_domain_and_repeats() -> Result<(), Failed> {
    both_modes(|mode| {
        let ben = session("BEN", mode);
        let sql = "SELECT id, diagnosis, age FROM patients ORDER BY id";
        let first = run(&ben, sql)?;
        ensure(first == run(&ben, sql)?, "repeated queries disagree")?;
        let raw = run(&session("ADA", mode), sql)?;
        let domain = ["asthma", "diabetes", "flu", "migraine"];
        for (m, r) in first.iter().zip(&raw) {
            ensure(
                domain.contains(&m[1].as_str()),
                format!("{} is not in the domain", m[1]),
            )?;
            // NULL stays NULL; a number stays a NUMBER(3,0).
            if r[2] == "NULL" {
                ensure(m[2] == "NULL", "a NULL age became a number")?;
            } else {
                let age: i64 = m[2].parse()?;
                ensure(
                    age.abs() <= 999,
                    format!("age {age} does not fit NUMBER(3,0)"),
                )?;
            }
        }
        // The other sessions' modes and users see the same draws.
        let other = session("BEN", EnforcementMode::ProfileJoin);
        ensure(first == run(&other, sql)?, "modes disagree on the draws")
    })
}

#[test]
fn randomized_response_keeps_one_minus_p_over_100_000_rows() -> Result<(), Failed> {
    let mut csv = String::from("id,cat\n");
    let cats = ["a", "b", "c", "d"];
    for i in 0..100_000 {
        csv.push_str(&format!("{i},{}\n", cats[i % 4]));
    }
    let dir = temp_workspace(
        r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.R
    location: r.csv
    columns: [{name: ID, type: NUMBER(10,0)}, {name: CAT, type: VARCHAR(1)}]
roles: [{name: R, grants: [DB.S.R]}]
users: [{name: U, roles: [R]}, {name: V, roles: [R], groups: [Raw]}]
policies:
  - {name: sub, type: subscription, on: {data_sources: [DB.S.R]}, allow: anyone}
  - name: rr
    type: masking
    on: {columns: [DB.S.R.CAT]}
    mask: {randomized_response: {probability: 0.2, seed: 11}}
    except: {groups: [Raw]}
"#,
        &[("r.csv", csv.as_str())],
    );
    let engine = load(dir.path())?;
    let s = engine.session("U")?;
    // Reported = raw when kept (1 − p) or replaced by itself (p / k).
    let same: f64 = cell(
        &s,
        "SELECT avg(CASE WHEN cat = CASE id % 4 WHEN 0 THEN 'a' WHEN 1 THEN 'b' WHEN 2 THEN 'c' ELSE 'd' END THEN 1.0 ELSE 0.0 END) FROM r",
    )?
    .parse()?;
    let expected = 1.0 - 0.2 + 0.2 / 4.0;
    ensure(
        (same - expected).abs() < 0.01,
        format!("reported = raw on {same} of rows, expected {expected}"),
    )?;
    // The replacements are uniform over the domain.
    let rows = run(&s, "SELECT cat, count(*) FROM r GROUP BY cat ORDER BY cat")?;
    for row in &rows {
        let n: f64 = row[1].parse()?;
        ensure((n / 100_000.0 - 0.25).abs() < 0.01, format!("{row:?}"))?;
    }
    let raw = engine.session("V")?;
    ensure(
        cell(&raw, "SELECT count(*) FROM r WHERE cat = 'a'")? == "25000",
        "the excepted user should see raw values",
    )
}

#[test]
fn randomized_response_yaml_errors_name_the_policy() -> Result<(), Failed> {
    for (mask, needle) in [
        ("randomized_response", "needs its parameters"),
        (
            "{randomized_response: {probability: 1.5}}",
            "probability: P",
        ),
        (
            "{randomized_response: {probability: 0.2, epsilon: 1}}",
            "probability: P",
        ),
        (
            "{randomized_response: {p: 0.2}}",
            "unknown randomized_response key 'p'",
        ),
        (
            "{randomized_response: {epsilon: 1, seed: -3}}",
            "seed must be",
        ),
    ] {
        let dir = temp_workspace(
            &format!(
                "settings: {{default_database: DB, default_schema: S}}\ntables:\n  - name: DB.S.T\n    location: t.csv\n    columns: [{{name: A, type: VARCHAR(5)}}]\npolicies:\n  - name: bad-rr\n    type: masking\n    on: {{columns: [DB.S.T.A]}}\n    mask: {mask}\n"
            ),
            &[("t.csv", "a\nx\n")],
        );
        let e = load(dir.path()).err().unwrap_or_default();
        ensure(
            e.contains("veil.yaml:") && e.contains("bad-rr") && e.contains(needle),
            format!("{mask}: unclear error: {e}"),
        )?;
    }
    Ok(())
}

#[test]
fn veil_unmask_needs_a_subscription_too() -> Result<(), Failed> {
    let dir = temp_workspace(
        r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.T
    location: t.csv
    columns: [{name: ID, type: NUMBER(10,0)}, {name: EMAIL, type: VARCHAR(80)}]
roles: [{name: R, grants: [DB.S.T]}]
users:
  - {name: MASKED, roles: [R], groups: [Analysts]}
  - {name: SUPPORT, roles: [R], groups: [Analysts, Support]}
  - {name: OUTSIDER, roles: [R], groups: [Support]}
policies:
  - {name: sub, type: subscription, on: {data_sources: [DB.S.T]}, allow: {groups: [Analysts]}}
  - {name: tokens, type: masking, on: {columns: [DB.S.T.EMAIL]}, mask: reversible, except: {groups: [Support]}}
"#,
        &[("t.csv", "id,email\n1,x@example.com\n")],
    );
    let engine = load(dir.path())?;
    let token = cell(&engine.session("MASKED")?, "SELECT email FROM t")?;
    let unmask = format!("SELECT VEIL_UNMASK('{token}', 'DB.S.T.EMAIL')");
    ensure(
        cell(&engine.session("SUPPORT")?, &unmask)? == "x@example.com",
        "an admitted, subscribed user cannot unmask",
    )?;
    // Excepted by the mask but not subscribed to the table: NULL.
    ensure(
        cell(&engine.session("OUTSIDER")?, &unmask)? == "NULL",
        "an unsubscribed user unmasked a token",
    )?;
    ensure(
        cell(&engine.session("MASKED")?, &unmask)? == "NULL",
        "a masked user unmasked a token",
    )
}

const KANON_MANIFEST: &str = r#"
settings: {default_database: DB, default_schema: S}
tables:
  - name: DB.S.K
    location: k.csv
    columns:
      - {name: ID, type: NUMBER(10,0)}
      - {name: AGE, type: NUMBER(3,0), tags: [QI]}
      - {name: ZIP, type: VARCHAR(5), tags: [QI]}
      - {name: BORN, type: DATE, tags: [QI]}
      - {name: REGION, type: VARCHAR(4)}
      - {name: DX, type: VARCHAR(10)}
roles: [{name: R, grants: [DB.S.K]}]
users:
  - {name: U, roles: [R], attributes: {Region: [EAST, WEST]}}
  - {name: E, roles: [R], attributes: {Region: [EAST]}}
  - {name: RAW, roles: [R], groups: [Research], attributes: {Region: [EAST, WEST]}}
policies:
  - {name: sub, type: subscription, on: {data_sources: [DB.S.K]}, allow: anyone}
  - {name: by-region, type: row, on: {data_sources: [DB.S.K]}, rule: {match_attribute: Region, column: REGION}}
  - {name: k3, type: masking, on: {tags: [QI]}, mask: {k_anonymize: 3}, except: {groups: [Research]}}
"#;

/// The rows of `k.csv`: (age, zip, born, region).
fn kanon_csv(rows: &[(u32, &str, &str, &str)]) -> String {
    let mut csv = String::from("id,age,zip,born,region,dx\n");
    for (i, (age, zip, born, region)) in rows.iter().enumerate() {
        csv.push_str(&format!("{i},{age},{zip},{born},{region},d{i}\n"));
    }
    csv
}

/// Every non-NULL (AGE, ZIP, BORN) combination in `rows` (ID first)
/// occurs at least `k` times.
fn k_anonymous(rows: &[Vec<String>], k: usize) -> Result<(), String> {
    let mut counts = std::collections::HashMap::new();
    for r in rows {
        let qi = (r[1].clone(), r[2].clone(), r[3].clone());
        if qi != ("NULL".into(), "NULL".into(), "NULL".into()) {
            *counts.entry(qi).or_insert(0usize) += 1;
        }
    }
    match counts.iter().find(|(_, n)| **n < k) {
        Some((qi, n)) => Err(format!("{qi:?} occurs {n} times: {rows:?}")),
        None => Ok(()),
    }
}

#[test]
fn k_anonymize_generalizes_until_every_combination_has_k_rows() -> Result<(), Failed> {
    let rows = [
        (34, "10001", "1990-01-15", "EAST"),
        (36, "10002", "1990-03-02", "EAST"),
        (38, "10003", "1990-07-30", "EAST"),
        (31, "10004", "1990-11-11", "EAST"),
        (52, "94110", "1971-05-05", "WEST"),
        (55, "94112", "1971-06-06", "WEST"),
        (57, "94115", "1971-02-01", "WEST"),
        (99, "60601", "1925-12-24", "WEST"),
    ];
    let dir = temp_workspace(KANON_MANIFEST, &[("k.csv", kanon_csv(&rows).as_str())]);
    let engine = load(dir.path())?;
    for mode in crate::common::MODES {
        let open = |user: &str| {
            engine.session_with(SessionOptions {
                user: user.into(),
                role: None,
                purpose: None,
                mode: Some(mode),
                secondary_roles: None,
                statement_timeout: None,
            })
        };
        let sql = "SELECT id, age, zip, born, dx FROM k ORDER BY id";
        let masked = run(&open("U")?, sql)?;
        ensure(
            masked.len() == 8,
            format!("{mode:?}: rows were dropped: {masked:?}"),
        )?;
        k_anonymous(&masked, 3)?;
        // Generalized, not erased (level 2: ages to hundreds, ZIPs to two
        // characters, dates to years); the lone 1925 birth is suppressed.
        ensure(
            masked[0][1] == "0" && masked[0][2] == "10" && masked[0][3] == "1990-01-01",
            format!("{mode:?}: row 0 is {:?}", masked[0]),
        )?;
        ensure(
            masked[7][1] == "NULL" && masked[7][2] == "NULL",
            format!("{mode:?}: the outlier is {:?}", masked[7]),
        )?;
        // Other columns are untouched.
        ensure(
            masked
                .iter()
                .enumerate()
                .all(|(i, r)| r[4] == format!("d{i}")),
            "DX changed",
        )?;
        // Over the rows E sees (EAST only) the four rows are their own class.
        let east = run(&open("E")?, sql)?;
        ensure(east.len() == 4, format!("{mode:?}: E sees {east:?}"))?;
        k_anonymous(&east, 3)?;
        // Excepted: raw.
        let raw = run(&open("RAW")?, sql)?;
        ensure(
            raw[0][1] == "34" && raw[0][2] == "10001",
            format!("{mode:?}: RAW sees {:?}", raw[0]),
        )?;
        // Predicates see the generalized values: no oracle on raw ages.
        ensure(
            cell(&open("U")?, "SELECT count(*) FROM k WHERE age = 34")? == "0",
            "a raw age answered a WHERE",
        )?;
    }
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, failure_persistence: None, ..Default::default() })]

    #[test]
    fn k_anonymity_holds_for_any_data(
        rows in proptest::collection::vec(
            (0u32..120, proptest::sample::select(vec!["10001", "10002", "10117", "94110", "94999", "60601"]),
             proptest::sample::select(vec!["1950-01-01", "1950-06-30", "1951-02-02", "1990-03-03", "1990-12-31", "2001-07-04"]),
             proptest::sample::select(vec!["EAST", "WEST"])),
            0..40),
        k in 2u32..5,
    ) {
        let manifest = KANON_MANIFEST.replace("k_anonymize: 3", &format!("k_anonymize: {k}"));
        let csv = kanon_csv(&rows.iter().map(|(a, z, b, r)| (*a, *z, *b, *r)).collect::<Vec<_>>());
        let dir = temp_workspace(&manifest, &[("k.csv", csv.as_str())]);
        let engine = load(dir.path()).map_err(proptest::test_runner::TestCaseError::fail)?;
        for user in ["U", "E"] {
            let s = engine.session(user).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let out = run(&s, "SELECT id, age, zip, born FROM k").map_err(proptest::test_runner::TestCaseError::fail)?;
            k_anonymous(&out, k as usize).map_err(proptest::test_runner::TestCaseError::fail)?;
        }
    }
}

#[test]
fn k_anonymize_yaml_and_combination_errors() -> Result<(), Failed> {
    let bad = KANON_MANIFEST.replace("k_anonymize: 3", "k_anonymize: 1");
    let dir = temp_workspace(&bad, &[("k.csv", "id,age,zip,born,region,dx\n")]);
    let e = load(dir.path()).err().unwrap_or_default();
    ensure(
        e.contains("veil.yaml:") && e.contains("k3") && e.contains("between 2 and"),
        format!("unclear error: {e}"),
    )?;
    // With where: the table fails closed.
    let with_where = KANON_MANIFEST.replace(
        "except: {groups: [Research]}}",
        "except: {groups: [Research]}, where: \"AGE > 1\"}",
    );
    let dir = temp_workspace(
        &with_where,
        &[(
            "k.csv",
            "id,age,zip,born,region,dx\n1,30,10001,1990-01-01,EAST,x\n",
        )],
    );
    let engine = load(dir.path())?;
    match run(&engine.session("U")?, "SELECT age FROM k") {
        Err(e) if e.contains("k_anonymize") => Ok(()),
        other => Err(format!("k_anonymize with where gave {other:?}").into()),
    }
}
