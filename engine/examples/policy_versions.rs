//! Policy changes as versions, from a Rust service's point of view: a
//! session keeps querying while a change is applied, rolled back, and an
//! entitlement changes; the audit log records every statement and change.
//!
//! Run with `cargo run -p veil-engine --example policy_versions`.

use veil_engine::output::table;
use veil_engine::{Engine, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let engine = Engine::load(testdata.join("sample")).await?;
    let audit = std::env::temp_dir().join("veil-policy-versions-audit.jsonl");
    let _ = std::fs::remove_file(&audit);
    engine.set_audit_log(&audit)?;

    // DANA owns CUSTOMERS: subscribed, but emails are masked for her.
    let dana = engine.session("dana")?;
    let sql = "SELECT id, email FROM customers ORDER BY id";
    println!(
        "version {}:\n{}",
        engine.version(),
        table(&dana.sql(sql).await?)?
    );

    // A reviewed change (e.g. the next Git commit) becomes version 2,
    // atomically: DANA's next statement sees it.
    let v2 = engine.apply_dir(testdata.join("sample-v2")).await?;
    println!("version {v2}:\n{}", table(&dana.sql(sql).await?)?);

    // It locked nobody out, but say it did: roll back.
    engine.rollback(1).await?;
    println!(
        "rolled back to version {}:\n{}",
        engine.version(),
        table(&dana.sql(sql).await?)?
    );

    // Entitlement changes are versions too, and drop every cached decision.
    let v3 = engine
        .change(|ws| {
            if let Some(dana) = ws.users.iter_mut().find(|u| u.name == "DANA") {
                dana.groups.insert("Compliance".to_string());
            }
            Ok(())
        })
        .await?;
    println!(
        "version {v3} (DANA joins Compliance):\n{}",
        table(&dana.sql(sql).await?)?
    );

    println!("audit log {}:", audit.display());
    if let Some(log) = engine.audit_log() {
        for r in log.records()? {
            println!(
                "  {:<15} {:<8} {:<7} version {} {}",
                r.action,
                r.actor.name,
                r.action_status,
                r.policy_version,
                r.targets.join(", ")
            );
        }
    }
    Ok(())
}
