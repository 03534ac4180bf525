//! What workspace administrators (the logins listed in
//! `settings.administrators`) can run over a server connection, whatever
//! the protocol:
//!
//! - `SHOW VEIL VERSIONS`: every policy version the server has installed,
//!   which is in force, and what changed from the version before;
//! - `CALL VEIL.ROLLBACK(n)`: makes version `n` current again (atomically;
//!   running statements finish on their version);
//! - the administrator SQL of `veil query --admin`
//!   ([`veil_engine::Engine::admin_sql`]): `EXECUTE USING POLICY_CONTEXT(...)
//!   AS <query>`, `SHOW MASKING POLICIES`, `SHOW ROW ACCESS POLICIES` at any
//!   time, and any SQL on the raw tables (the audit log as `veil.audit`)
//!   after `SET VEIL.ADMIN = ON` — until `SET VEIL.ADMIN = OFF`, the
//!   administrator's statements run without policies, as with `--admin`.
//!
//! Any other login gets an error naming it for the first three kinds; its
//! `EXECUTE USING` and `SHOW ... POLICIES` go to its own session as usual.
//! Every administrator statement, allowed or refused, is audited under the
//! login with role `ADMINISTRATOR`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use veil_engine::audit::{AuditRecord, QueryAudit};
use veil_engine::{Engine, RecordBatch, VeilError};

/// What an administrator statement returns.
#[derive(Debug)]
pub enum AdminReply {
    /// Rows, as a query returns them.
    Rows(Vec<RecordBatch>),
    /// A command with no rows; the text is its PostgreSQL command tag
    /// (`CALL`, `SET`).
    Done(&'static str),
}

/// One connection's administrator mode (`SET VEIL.ADMIN = ON|OFF`).
#[derive(Debug, Default)]
pub struct AdminMode(AtomicBool);

impl AdminMode {
    /// Whether the connection's statements run as administrator SQL.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The statements this module answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Statement {
    ShowVersions,
    Rollback(u64),
    SetAdmin(bool),
    /// A statement of `veil query --admin` that is one for administrators
    /// by its form (`EXECUTE USING POLICY_CONTEXT`, `SHOW ... POLICIES`).
    AdminForm,
    /// Anything else.
    Other,
}

/// The words and numbers of `sql`, upper-cased, without whitespace,
/// comments and trailing semicolons; `None` when it does not tokenize (the
/// session reports that as a syntax error).
fn words(sql: &str) -> Option<Vec<String>> {
    let tokens = Tokenizer::new(&SnowflakeDialect {}, sql).tokenize().ok()?;
    let mut out: Vec<String> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            other => other.to_string(),
        })
        .collect();
    while out.last().is_some_and(|t| t == ";") {
        out.pop();
    }
    Some(out)
}

fn classify(sql: &str) -> Result<Statement, VeilError> {
    let Some(words) = words(sql) else {
        return Ok(Statement::Other);
    };
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    Ok(match w.as_slice() {
        ["SHOW", "VEIL", "VERSIONS"] => Statement::ShowVersions,
        ["CALL", "VEIL", ".", "ROLLBACK", "(", n, ")"] => {
            Statement::Rollback(n.parse().map_err(|_| {
                VeilError::Parse(format!(
                    "CALL VEIL.ROLLBACK takes a policy version number (see SHOW VEIL VERSIONS), not '{n}'"
                ))
            })?)
        }
        ["CALL", "VEIL", ".", "ROLLBACK", ..] => {
            return Err(VeilError::Parse(
                "CALL VEIL.ROLLBACK takes one policy version number: CALL VEIL.ROLLBACK(3)".into(),
            ));
        }
        ["SET", "VEIL", ".", "ADMIN", "=" | "TO", value] => match *value {
            "ON" | "TRUE" | "'ON'" | "'TRUE'" => Statement::SetAdmin(true),
            "OFF" | "FALSE" | "'OFF'" | "'FALSE'" => Statement::SetAdmin(false),
            other => {
                return Err(VeilError::Parse(format!(
                    "SET VEIL.ADMIN takes ON or OFF, not {other}"
                )));
            }
        },
        ["EXECUTE", "USING", ..] | ["SHOW", "MASKING", "POLICIES"] => Statement::AdminForm,
        ["SHOW", "ROW", "ACCESS", "POLICIES"] => Statement::AdminForm,
        _ => Statement::Other,
    })
}

/// Answers `sql` if it is an administrator statement (or the connection
/// is in administrator mode); `None` hands it to the login's session.
/// `login` is the authenticated user the connection is bound to.
pub async fn intercept(
    engine: &Engine,
    login: &str,
    mode: &AdminMode,
    sql: &str,
) -> Option<veil_engine::Result<AdminReply>> {
    let statement = match classify(sql) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let is_admin = veil_engine::tools::admin::administrator(engine.current().workspace(), login);
    let what = match &statement {
        Statement::Other if mode.is_on() => "administrator SQL",
        Statement::AdminForm if is_admin.is_ok() || mode.is_on() => "administrator SQL",
        Statement::Other | Statement::AdminForm => return None,
        Statement::ShowVersions => "SHOW VEIL VERSIONS",
        Statement::Rollback(_) => "CALL VEIL.ROLLBACK",
        Statement::SetAdmin(_) => "SET VEIL.ADMIN",
    };
    let started = Instant::now();
    let name = match is_admin {
        Ok(name) => name,
        Err(_) => {
            // Listed no longer (a reload removed the login): plain again.
            mode.0.store(false, Ordering::Relaxed);
            let name = veil_engine::ident::normalize_ident(login);
            let e = VeilError::Refused(format!(
                "User '{name}' is not a workspace administrator: only the users listed in settings.administrators of veil.yaml may run {what}."
            ));
            audit(engine, &name, sql, Err(&e), started);
            return Some(Err(e));
        }
    };
    let result = match statement {
        Statement::ShowVersions => versions(engine).map(AdminReply::Rows),
        Statement::Rollback(n) => engine.rollback(n).await.map(|()| AdminReply::Done("CALL")),
        Statement::SetAdmin(on) => {
            mode.0.store(on, Ordering::Relaxed);
            Ok(AdminReply::Done("SET"))
        }
        // run_as_administrator audits these itself.
        Statement::AdminForm | Statement::Other => {
            return Some(
                veil_engine::tools::admin::run_as_administrator(engine, &name, sql)
                    .await
                    .map(AdminReply::Rows),
            );
        }
    };
    let rows = result.as_ref().map(|r| match r {
        AdminReply::Rows(b) => veil_engine::output::row_count(b),
        AdminReply::Done(_) => 0,
    });
    audit(engine, &name, sql, rows, started);
    Some(result)
}

fn audit(
    engine: &Engine,
    name: &str,
    sql: &str,
    result: Result<usize, &VeilError>,
    started: Instant,
) {
    let Some(log) = engine.audit_log() else {
        return;
    };
    let record = AuditRecord::query(QueryAudit {
        user: name,
        role: "ADMINISTRATOR",
        purpose: None,
        sql,
        tables: &[],
        policies: Vec::new(),
        result,
        duration: started.elapsed(),
        version: engine.version(),
        simulated_by: None,
    });
    if let Err(e) = log.append(&record) {
        eprintln!("veil serve: {e}");
    }
}

/// `SHOW VEIL VERSIONS`: one row per installed version, oldest first.
fn versions(engine: &Engine) -> veil_engine::Result<Vec<RecordBatch>> {
    let current = engine.version();
    let history = engine.versions();
    let mut ids = Vec::new();
    let mut in_force = Vec::new();
    let mut tables = Vec::new();
    let mut policies = Vec::new();
    let mut users = Vec::new();
    let mut changes = Vec::new();
    for (i, v) in history.iter().enumerate() {
        let ws = v.workspace();
        ids.push(i64::try_from(v.id()).unwrap_or(i64::MAX));
        in_force.push(v.id() == current);
        tables.push(ws.tables.len() as i64);
        policies.push(
            (ws.policies.len()
                + ws.snowflake.masking_policies.len()
                + ws.snowflake.row_access_policies.len()) as i64,
        );
        users.push(ws.users.len() as i64);
        changes.push(match i.checked_sub(1).and_then(|p| history.get(p)) {
            None => "the workspace as loaded".to_string(),
            Some(prev) => {
                let c = veil_engine::audit::describe_changes(prev.workspace(), ws);
                if c.is_empty() {
                    "no policy change".to_string()
                } else {
                    c.join("; ")
                }
            }
        });
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("VERSION", DataType::Int64, false),
        Field::new("IN_FORCE", DataType::Boolean, false),
        Field::new("TABLES", DataType::Int64, false),
        Field::new("POLICIES", DataType::Int64, false),
        Field::new("USERS", DataType::Int64, false),
        Field::new("CHANGES", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(BooleanArray::from(in_force)),
        Arc::new(Int64Array::from(tables)),
        Arc::new(Int64Array::from(policies)),
        Arc::new(Int64Array::from(users)),
        Arc::new(StringArray::from(changes)),
    ];
    Ok(vec![RecordBatch::try_new(schema, columns)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
    }

    fn rows(reply: Option<veil_engine::Result<AdminReply>>) -> Vec<RecordBatch> {
        match reply {
            Some(Ok(AdminReply::Rows(b))) => b,
            other => panic!("expected rows, got {other:?}"),
        }
    }

    #[test]
    fn statements_are_recognized_in_any_case_with_comments() {
        assert_eq!(
            classify("show veil versions;").unwrap(),
            Statement::ShowVersions
        );
        assert_eq!(
            classify("/* ops */ CALL veil.rollback( 2 )").unwrap(),
            Statement::Rollback(2)
        );
        assert_eq!(
            classify("set veil.admin to off").unwrap(),
            Statement::SetAdmin(false)
        );
        assert!(classify("CALL VEIL.ROLLBACK('x')").is_err());
        assert!(classify("CALL VEIL.ROLLBACK(-1)").is_err());
        assert!(classify("SET VEIL.ADMIN = maybe").is_err());
        assert_eq!(
            classify("SELECT 'SHOW VEIL VERSIONS'").unwrap(),
            Statement::Other
        );
        assert_eq!(
            classify("SHOW \"VEIL\" VERSIONS").unwrap(),
            Statement::Other
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn administrators_list_versions_and_roll_back() {
        let engine = Engine::load(sample()).await.unwrap();
        let v2 = Engine::load(sample().join("../sample-v2")).await.unwrap();
        engine.apply(v2.workspace()).await.unwrap();
        assert_eq!(engine.version(), 2);
        let mode = AdminMode::default();
        let shown = rows(intercept(&engine, "admin", &mode, "SHOW VEIL VERSIONS").await);
        let text = veil_engine::output::table(&shown).unwrap();
        assert_eq!(shown[0].num_rows(), 2, "{text}");
        assert!(text.contains("the workspace as loaded"), "{text}");
        assert!(text.contains("(changed)"), "{text}");
        let reply = intercept(&engine, "ADMIN", &mode, "CALL VEIL.ROLLBACK(1)").await;
        assert!(matches!(reply, Some(Ok(AdminReply::Done("CALL")))));
        assert_eq!(engine.version(), 1);
        let reply = intercept(&engine, "ADMIN", &mode, "CALL VEIL.ROLLBACK(9)").await;
        assert!(matches!(reply, Some(Err(_))));
        assert_eq!(engine.version(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_logins_are_refused_and_nothing_changes() {
        let engine = Engine::load(sample()).await.unwrap();
        let v2 = Engine::load(sample().join("../sample-v2")).await.unwrap();
        engine.apply(v2.workspace()).await.unwrap();
        let mode = AdminMode::default();
        for sql in [
            "SHOW VEIL VERSIONS",
            "CALL VEIL.ROLLBACK(1)",
            "SET VEIL.ADMIN = ON",
        ] {
            match intercept(&engine, "alice", &mode, sql).await {
                Some(Err(e)) => assert!(
                    e.to_string()
                        .contains("User 'ALICE' is not a workspace administrator"),
                    "{e}"
                ),
                other => panic!("{sql}: expected a refusal, got {other:?}"),
            }
        }
        assert_eq!(engine.version(), 2);
        assert!(!mode.is_on());
        // Her ordinary statements, and the administrators' statement forms,
        // stay with her own session.
        assert!(
            intercept(&engine, "alice", &mode, "SELECT * FROM customers")
                .await
                .is_none()
        );
        assert!(
            intercept(&engine, "alice", &mode, "SHOW MASKING POLICIES")
                .await
                .is_none()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admin_mode_runs_sql_without_policies_until_turned_off() {
        let engine = Engine::load(sample()).await.unwrap();
        let mode = AdminMode::default();
        let ssn = "SELECT ssn FROM customers ORDER BY id LIMIT 1";
        assert!(intercept(&engine, "ADMIN", &mode, ssn).await.is_none());
        let reply = intercept(&engine, "ADMIN", &mode, "SET VEIL.ADMIN = ON").await;
        assert!(matches!(reply, Some(Ok(AdminReply::Done("SET")))));
        let raw = rows(intercept(&engine, "ADMIN", &mode, ssn).await);
        let raw = veil_engine::output::table(&raw).unwrap();
        let expected = engine.admin_sql(ssn).await.unwrap();
        assert_eq!(raw, veil_engine::output::table(&expected).unwrap());
        let reply = intercept(&engine, "ADMIN", &mode, "SET VEIL.ADMIN = OFF").await;
        assert!(matches!(reply, Some(Ok(AdminReply::Done("SET")))));
        assert!(intercept(&engine, "ADMIN", &mode, ssn).await.is_none());
        // The administrators' statement forms need no mode.
        let shown = rows(intercept(&engine, "ADMIN", &mode, "SHOW MASKING POLICIES").await);
        assert_eq!(shown[0].num_columns(), 8);
    }
}
