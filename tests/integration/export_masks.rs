//! `veil export snowflake` and the newer masks (SPEC rules 21–25): a
//! `mask ... where` is exported as a Snowflake conditional masking policy
//! and gives every user the same results once the DDL is loaded back (the
//! column its predicate reads is masked too, so its policy is
//! `EXEMPT_OTHER_POLICIES = TRUE`); `reversible`, `format_preserving`,
//! `randomized_response` and `k_anonymize`, which Snowflake cannot compute
//! the same way, are refused with a sentence naming the policy and why.

use veil_engine::tools::export::{ExportOptions, export_snowflake, write_workspace};
use veil_engine::{Engine, SessionOptions};

use crate::common::{Failed, MODES, load, run, temp_workspace, testdata};

/// The clinic's patients table with `policies` (YAML list items).
fn clinic(policies: &str) -> tempfile::TempDir {
    let data = testdata("masks").join("data/patients.csv");
    temp_workspace(
        &format!(
            "settings: {{default_database: CLINIC, default_schema: PUBLIC, secret_env: VEIL_MASKS_SECRET}}
tables:
  - name: CLINIC.PUBLIC.PATIENTS
    location: {}
    columns:
      - {{name: ID,        type: NUMBER(10,0)}}
      - {{name: NAME,      type: VARCHAR(40)}}
      - {{name: EMAIL,     type: VARCHAR(80)}}
      - {{name: SSN,       type: VARCHAR(11)}}
      - {{name: CARD,      type: VARCHAR(19)}}
      - {{name: STATE,     type: VARCHAR(2)}}
      - {{name: DIAGNOSIS, type: VARCHAR(20)}}
      - {{name: AGE,       type: NUMBER(3,0)}}
roles:
  - {{name: ANALYST, grants: [CLINIC.PUBLIC.PATIENTS]}}
users:
  - {{name: ADA, roles: [ANALYST], groups: [Compliance]}}
  - {{name: BEN, roles: [ANALYST], groups: [Analysts]}}
policies:
  - {{name: everyone, type: subscription, on: {{data_sources: [CLINIC.PUBLIC.PATIENTS]}}, allow: anyone}}
{policies}",
            data.display()
        ),
        &[],
    )
}

const CELL_LEVEL: &str = "  - name: names-in-california
    type: masking
    on: {columns: [CLINIC.PUBLIC.PATIENTS.NAME]}
    mask: {constant: REDACTED}
    where: \"STATE = 'CA'\"
    except: {groups: [Compliance]}
  - name: state-initial
    type: masking
    on: {columns: [CLINIC.PUBLIC.PATIENTS.STATE]}
    mask: {show_first: 1}
    except: {groups: [Compliance]}
";

fn results(engine: &Engine) -> Result<Vec<String>, Failed> {
    let mut out = Vec::new();
    for user in ["ADA", "BEN"] {
        for mode in MODES {
            let session = engine.session_with(SessionOptions {
                mode: Some(mode),
                ..SessionOptions::user(user)
            })?;
            let rows = run(&session, "SELECT id, name, state FROM patients ORDER BY id")?;
            out.push(format!("{user} {mode:?}: {rows:?}"));
        }
    }
    Ok(out)
}

#[test]
fn export_emits_mask_where_as_a_conditional_masking_policy() -> Result<(), Failed> {
    let dir = clinic(CELL_LEVEL);
    let original = load(dir.path())?;
    let ddl = export_snowflake(&original.workspace(), &ExportOptions::default())?;
    let schema = "CLINIC.VEIL_POLICY$PUBLIC$PATIENTS";
    for needle in [
        format!(
            "CREATE MASKING POLICY IF NOT EXISTS {schema}.\"names-in-california\" AS (VAL VARCHAR(40), STATE VARCHAR(2)) RETURNS VARCHAR(40) ->"
        ),
        format!(
            "ALTER TABLE CLINIC.PUBLIC.PATIENTS MODIFY COLUMN NAME SET MASKING POLICY {schema}.\"names-in-california\" USING (NAME, STATE) FORCE;"
        ),
        "STATE = 'CA'".to_string(),
        format!(
            "ALTER TABLE CLINIC.PUBLIC.PATIENTS MODIFY COLUMN STATE SET MASKING POLICY {schema}.\"state-initial\" FORCE;"
        ),
    ] {
        if !ddl.contains(&needle) {
            return Err(format!("the export lacks {needle}:\n{ddl}").into());
        }
    }
    // STATE's mask is read by the conditional one, so it is exempting; the
    // conditional mask itself is not.
    let exempt: Vec<&str> = ddl
        .split("CREATE MASKING POLICY IF NOT EXISTS ")
        .skip(1)
        .filter(|p| {
            p.split(';')
                .next()
                .is_some_and(|c| c.contains("EXEMPT_OTHER_POLICIES = TRUE"))
        })
        .map(|p| p.split(' ').next().unwrap_or_default())
        .collect();
    if exempt != [format!("{schema}.\"state-initial\"")] {
        return Err(format!("exempting policies: {exempt:?}").into());
    }
    // Loaded back as DDL, every user sees the same rows in both modes.
    let out = tempfile::tempdir()?;
    write_workspace(&original.workspace(), &ExportOptions::default(), out.path())?;
    let exported = load(out.path())?;
    let (want, got) = (results(&original)?, results(&exported)?);
    if want != got {
        return Err(format!("immuta-style:\n{want:#?}\nexported DDL:\n{got:#?}").into());
    }
    // Not vacuous: BEN sees REDACTED on California rows only, ADA raw names.
    let all = want.join("\n");
    for needle in ["\"REDACTED\"", "\"Bob Jones\"", "\"Alice Smith\"", "\"CX\""] {
        if !all.contains(needle) {
            return Err(format!("no result shows {needle}:\n{all}").into());
        }
    }
    Ok(())
}

#[test]
fn export_refuses_masks_snowflake_cannot_compute_by_policy_name() -> Result<(), Failed> {
    let cases = [
        (
            "reversible",
            "EMAIL",
            "reversible (AES-256-SIV) has no Snowflake equivalent",
        ),
        (
            "format_preserving",
            "SSN",
            "format_preserving (NIST FF1) has no Snowflake equivalent",
        ),
        (
            "{randomized_response: {probability: 0.5, seed: 7}}",
            "DIAGNOSIS",
            "randomized_response has no Snowflake equivalent",
        ),
        (
            "{k_anonymize: 2}",
            "AGE",
            "k_anonymize has no Snowflake equivalent: it needs counts across rows",
        ),
    ];
    for (mask, column, why) in cases {
        let dir = clinic(&format!(
            "  - {{name: the-policy, type: masking, on: {{columns: [CLINIC.PUBLIC.PATIENTS.{column}]}}, mask: {mask}, except: {{groups: [Compliance]}}}}\n"
        ));
        let engine = load(dir.path())?;
        match export_snowflake(&engine.workspace(), &ExportOptions::default()) {
            Ok(_) => return Err(format!("{mask} was exported").into()),
            Err(e) => {
                let e = e.to_string();
                let named =
                    format!("policy 'the-policy' on column CLINIC.PUBLIC.PATIENTS.{column}: {why}");
                if !e.contains(&named) || !e.contains("refuses to export") {
                    return Err(format!("{mask}: unclear refusal: {e}").into());
                }
            }
        }
    }
    Ok(())
}
