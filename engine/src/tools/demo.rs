//! `veil demo`: the bundled sample workspace, the same queries as several
//! users side by side, with a one-line reason per masked column and the
//! number of hidden rows.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::enforce::Engine;
use crate::error::{Result, VeilError};
use crate::output::{row_count, table};
use crate::tools::explain::explain_table;

/// The sample workspace's files, embedded so `veil demo` works anywhere.
const SAMPLE_FILES: &[(&str, &[u8])] = &[
    (
        "veil.yaml",
        include_bytes!("../../../testdata/sample/veil.yaml"),
    ),
    (
        "policies/masking.yaml",
        include_bytes!("../../../testdata/sample/policies/masking.yaml"),
    ),
    (
        "policies/rows.yaml",
        include_bytes!("../../../testdata/sample/policies/rows.yaml"),
    ),
    (
        "data/customers.csv",
        include_bytes!("../../../testdata/sample/data/customers.csv"),
    ),
    (
        "data/orders.parquet",
        include_bytes!("../../../testdata/sample/data/orders.parquet"),
    ),
    (
        "data/employees.ndjson",
        include_bytes!("../../../testdata/sample/data/employees.ndjson"),
    ),
];

/// The sample workspace directory: the source tree's copy when present,
/// otherwise the embedded copy written to a temporary directory.
pub fn sample_dir() -> Result<PathBuf> {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample");
    if source.join("veil.yaml").exists() {
        return Ok(source);
    }
    let dir = std::env::temp_dir().join(format!("veil-sample-{}", env!("CARGO_PKG_VERSION")));
    for (name, bytes) in SAMPLE_FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| VeilError::workspace(parent.display().to_string(), e.to_string()))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| VeilError::workspace(path.display().to_string(), e.to_string()))?;
    }
    Ok(dir)
}

/// The demo's queries.
pub const DEMO_QUERIES: &[(&str, &str)] = &[
    (
        "Customers",
        "SELECT id, name, email, ssn, phone, region, balance, notes FROM customers ORDER BY id",
    ),
    (
        "Orders by region",
        "SELECT region, count(*) AS orders, sum(amount) AS total FROM orders GROUP BY region ORDER BY region",
    ),
    (
        "Employees",
        "SELECT name, department, salary, manager_id FROM analytics.hr.employees ORDER BY emp_id",
    ),
];

/// The demo's personas: (user, purpose).
pub const DEMO_USERS: &[(&str, Option<&str>)] = &[
    ("CAROL", None),
    ("ALICE", Some("Fraud Analysis")),
    ("BOB", None),
    ("FRANK", None),
    ("CHARLIE", None),
    ("DAVE", None),
];

/// The demo's queries and personas for `engine`: the sample's, or, for
/// any other workspace, its first rows of every table and view as each of
/// its users.
type Plan = (Vec<(String, String)>, Vec<(String, Option<String>)>);

fn demo_plan(engine: &Engine) -> Plan {
    let ws = engine.workspace();
    if DEMO_USERS.iter().all(|(u, _)| ws.user(u).is_some()) {
        return (
            DEMO_QUERIES
                .iter()
                .map(|(t, q)| (t.to_string(), q.to_string()))
                .collect(),
            DEMO_USERS
                .iter()
                .map(|(u, p)| (u.to_string(), p.map(str::to_string)))
                .collect(),
        );
    }
    let queries = ws
        .tables
        .iter()
        .map(|t| &t.name)
        .chain(ws.snowflake.views.iter().map(|v| &v.name))
        .map(|name| {
            (
                name.table.clone(),
                format!("SELECT * FROM {name} ORDER BY 1 LIMIT 10"),
            )
        })
        .collect();
    let users = ws.users.iter().map(|u| (u.name.clone(), None)).collect();
    (queries, users)
}

/// Runs the demo on `engine` and returns the report.
pub async fn run_demo(engine: &Engine) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Veil demo — workspace {}\n",
        engine.workspace().dir.display()
    );
    let (queries, users) = demo_plan(engine);
    for (title, sql) in &queries {
        let _ = writeln!(out, "════ {title}: {sql}\n");
        for (user, purpose) in &users {
            let options = crate::enforce::SessionOptions {
                user: user.clone(),
                purpose: purpose.clone(),
                ..Default::default()
            };
            let header = match purpose {
                Some(p) => format!("── {user} (acting under purpose {p})"),
                None => format!("── {user}"),
            };
            let session = match engine.session_with(options) {
                Ok(s) => s,
                Err(e) => {
                    let _ = writeln!(out, "{header}\n   refused: {e}\n");
                    continue;
                }
            };
            let _ = writeln!(out, "{header} · role {}", session.role());
            match session.sql(sql).await {
                Ok(batches) => {
                    let _ = writeln!(out, "{}", table(&batches)?);
                    let checked = session.check(sql)?;
                    for t in &checked.tables {
                        let Some(compiled) = session.compiled_table(t) else {
                            continue;
                        };
                        let ex = explain_table(&compiled, &session.entitlements());
                        let visible = session
                            .sql(&format!("SELECT count(*) FROM {t}"))
                            .await
                            .map(|b| count(&b))
                            .unwrap_or(0);
                        let total = engine
                            .admin_sql(&format!("SELECT count(*) FROM {t}"))
                            .await
                            .map(|b| count(&b))
                            .unwrap_or(0);
                        let rules: Vec<String> = ex
                            .rows
                            .iter()
                            .filter(|r| r.applies)
                            .map(|r| r.policy.clone())
                            .collect();
                        let _ = writeln!(
                            out,
                            "   {t}: {} of {total} rows hidden; {}{}",
                            total.saturating_sub(visible),
                            ex.subscription,
                            if rules.is_empty() {
                                String::new()
                            } else {
                                format!("; row rules: {}", rules.join(", "))
                            }
                        );
                        let shown: Vec<String> = batches
                            .first()
                            .map(|b| {
                                b.schema()
                                    .fields()
                                    .iter()
                                    .map(|f| f.name().to_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        for c in ex
                            .columns
                            .iter()
                            .filter(|c| c.mask.is_some() && shown.contains(&c.column))
                        {
                            let _ = writeln!(
                                out,
                                "   {}: {} ({}{})",
                                c.column,
                                c.mask.as_deref().unwrap_or_default(),
                                c.policy.as_deref().unwrap_or_default(),
                                c.fallback
                                    .as_deref()
                                    .map(|f| format!("; {f}"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                    let _ = writeln!(out, "   ({} rows)\n", row_count(&batches));
                }
                Err(e) => {
                    let _ = writeln!(out, "   error: {e}\n");
                }
            }
        }
    }
    Ok(out)
}

fn count(batches: &[datafusion::arrow::array::RecordBatch]) -> usize {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    batches
        .first()
        .filter(|b| b.num_columns() > 0 && b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_primitive_opt::<Int64Type>()
                .map(|a| if a.is_null(0) { 0 } else { a.value(0) as usize })
        })
        .unwrap_or(0)
}
