//! Snowflake functions DataFusion lacks or reads differently (IFF,
//! ZEROIFNULL, NVL2, DIV0, SHA2/SHA2_HEX, LISTAGG, ARRAY_CONTAINS, [I]LIKE
//! ANY) and SAMPLE, which DataFusion would silently ignore: each run
//! through SQL on the sample, and each refusal's text.

use veil_engine::EnforcementMode;

use crate::common::{Failed, run, session};

fn as_user(user: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    run(&session(user, None, EnforcementMode::Inlined), sql)
}

fn expect(user: &str, sql: &str, want: &[&[&str]]) -> Result<(), Failed> {
    let got = as_user(user, sql).map_err(Failed::from)?;
    let want: Vec<Vec<String>> = want
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    if got == want {
        Ok(())
    } else {
        Err(format!("{sql}\n  want {want:?}\n  got  {got:?}").into())
    }
}

fn refused(user: &str, sql: &str, text: &str) -> Result<(), Failed> {
    match as_user(user, sql) {
        Err(e) if e.contains(text) => Ok(()),
        other => Err(format!("{sql}: expected an error with '{text}', got {other:?}").into()),
    }
}

#[test]
fn iff_runs_only_the_taken_branch() -> Result<(), Failed> {
    expect(
        "carol",
        "SELECT id, iff(region = 'EU', 'eu', 'other'), iff(id = 2, 1, 1 / (id - 2)) FROM customers WHERE id IN (1, 2) ORDER BY id",
        &[&["1", "other", "-1"], &["2", "eu", "1"]],
    )
}

#[test]
fn zeroifnull_nvl2_div0() -> Result<(), Failed> {
    expect(
        "carol",
        "SELECT zeroifnull(balance), nvl2(balance, 'has', 'none'), div0(balance, 0), div0(10, 5) FROM customers WHERE id IN (5, 7) ORDER BY id",
        &[&["12", "has", "0", "2"], &["0", "none", "0", "2"]],
    )
}

#[test]
fn sha2_is_lower_hex_like_snowflake() -> Result<(), Failed> {
    expect(
        "bob",
        "SELECT sha2('abc'), sha2_hex('abc', 256) = sha2('abc'), length(sha2('abc', 512))",
        &[&[
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "true",
            "128",
        ]],
    )?;
    refused(
        "bob",
        "SELECT sha2('abc', 100)",
        "digest size must be 224, 256, 384 or 512",
    )
}

#[test]
fn listagg_orders_within_group() -> Result<(), Failed> {
    expect(
        "carol",
        "SELECT listagg(region, ',') WITHIN GROUP (ORDER BY region) FROM (SELECT DISTINCT region FROM customers)",
        &[&["APAC,EU,GLOBAL,US"]],
    )
}

#[test]
fn array_contains_takes_value_then_array() -> Result<(), Failed> {
    expect(
        "bob",
        "SELECT array_contains(2, make_array(1, 2, 3)), array_contains(5, make_array(1, 2, 3))",
        &[&["true", "false"]],
    )
}

#[test]
fn regexp_replace_replaces_every_match() -> Result<(), Failed> {
    // In Snowflake SQL a backreference is written '\\1' (the literal's
    // backslash escape leaves \1).
    expect(
        "bob",
        r#"SELECT regexp_replace('a-b-c', '-', '+'), regexp_replace('a1b22', '[0-9]'), regexp_replace('x.y', '([a-z])', '<\\1>', 1)"#,
        &[&["a+b+c", "ab", "<x>.<y>"]],
    )?;
    refused(
        "bob",
        "SELECT regexp_replace('aaa', 'a', 'b', 1, 2)",
        "REGEXP_REPLACE with a position other than 1, an occurrence or regex parameters is not supported by Veil.",
    )
}

#[test]
fn ilike_any_matches_any_pattern() -> Result<(), Failed> {
    expect(
        "carol",
        "SELECT id FROM customers WHERE email ILIKE ANY ('%.FR', '%.it') ORDER BY id",
        &[&["3"], &["7"]],
    )?;
    refused(
        "carol",
        "SELECT id FROM customers WHERE email NOT ILIKE ANY ('%.fr')",
        "NOT ILIKE ANY is not supported by Veil",
    )
}

#[test]
fn sample_samples_or_refuses() -> Result<(), Failed> {
    expect(
        "carol",
        "SELECT count(*) FROM customers SAMPLE (0)",
        &[&["0"]],
    )?;
    expect(
        "carol",
        "SELECT count(*) FROM customers SAMPLE (100)",
        &[&["10"]],
    )?;
    expect(
        "carol",
        "SELECT count(*) FROM customers c SAMPLE (4 ROWS)",
        &[&["4"]],
    )?;
    // Sampling happens above the policy: BOB samples only his rows, masked.
    let bob = as_user(
        "bob",
        "SELECT id, email FROM customers TABLESAMPLE BERNOULLI (100) ORDER BY id",
    )
    .map_err(Failed::from)?;
    if bob.len() != 3 || bob.iter().any(|r| !r[1].starts_with("***@")) {
        return Err(format!("BOB's sample: {bob:?}").into());
    }
    refused(
        "carol",
        "SELECT count(*) FROM customers SAMPLE (10) SEED (42)",
        "SEED/REPEATABLE, BUCKET or OFFSET is not supported by Veil",
    )
}
