//! `veil lint`: one test per rule, `lint.allow`, the rule list and the
//! sample workspace passing with warnings denied.

use std::path::Path;
use std::sync::OnceLock;

use veil_engine::tools::lint::{Finding, Severity};

use super::ensure;
use crate::common::{Failed, runtime, sample};

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

#[test]
fn lint_column_tagged_without_column() -> Result<(), Failed> {
    finds(
        "column-tagged-matches-nothing",
        Severity::Error,
        "@columnTagged('Nope')",
    )
}

#[test]
fn lint_tag_policy_matching_nothing() -> Result<(), Failed> {
    finds(
        "tag-policy-matches-nothing",
        Severity::Warning,
        "PII.Pasport",
    )
}

#[test]
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

#[test]
fn lint_conflicting_masks() -> Result<(), Failed> {
    finds(
        "conflicting-masks",
        Severity::Warning,
        "CUSTOMERS.EMAIL: policy 'hash-pii'",
    )
}

#[test]
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

#[test]
fn lint_too_many_conditions() -> Result<(), Failed> {
    finds(
        "too-many-conditions",
        Severity::Warning,
        "'notes-redacted' has 6 conditions",
    )
}

#[test]
fn lint_unused_tag() -> Result<(), Failed> {
    finds("unused-tag", Severity::Warning, "Legacy.Unused")
}

#[test]
fn lint_unused_role() -> Result<(), Failed> {
    finds("unused-role", Severity::Warning, "role ORPHAN")
}

#[test]
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

#[test]
fn lint_values_beyond_declared_type() -> Result<(), Failed> {
    finds(
        "value-exceeds-declared-type",
        Severity::Warning,
        "13 characters in a VARCHAR(5)",
    )
}

#[test]
fn lint_sample_has_no_errors() -> Result<(), Failed> {
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&sample()))?;
    ensure(
        findings.iter().all(|f| f.severity == Severity::Warning),
        format!("{findings:?}"),
    )
}

#[test]
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

#[test]
fn lint_allow_silences_the_named_rules() -> Result<(), Failed> {
    let plain = unused_role_workspace("");
    let codes = lint_codes(plain.path())?;
    ensure(codes.contains(&"unused-role"), format!("{codes:?}"))?;
    let allowed = unused_role_workspace("lint:\n  allow: [unused-role]\n");
    let codes = lint_codes(allowed.path())?;
    ensure(!codes.contains(&"unused-role"), format!("{codes:?}"))
}

#[test]
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

#[test]
fn lint_rules_list_every_finding_code() -> Result<(), Failed> {
    for f in lint_findings() {
        ensure(
            veil_engine::model::LINT_RULES.contains(&f.code),
            format!("{} is not in LINT_RULES", f.code),
        )?;
    }
    Ok(())
}

#[test]
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
