//! The SQL side of enforcement: which statements users may run (SPEC rule
//! 10), which tables a query references (honouring CTE scopes), refusal of
//! internal functions (rule 11), and the printable rewrite used by `explain`:
//! every reference to a protected table replaced by its policy relation as a
//! derived table under the user's alias.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Query, Statement, TableAlias, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut,
};

use crate::error::{Result, VeilError};
use crate::model::TableName;
use crate::sql::ident::{ident_value, object_name_parts, resolve_table};

/// What a permitted statement does.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    /// `SELECT`, `WITH`, `VALUES`.
    Query,
    /// `EXPLAIN <query>`.
    Explain,
    /// `SHOW TABLES`.
    ShowTables,
    /// `DESCRIBE [TABLE] t`.
    Describe(TableName),
}

/// A statement that passed the checks.
#[derive(Debug, Clone)]
pub struct CheckedStatement {
    /// The statement.
    pub statement: Statement,
    /// What it does.
    pub kind: StatementKind,
    /// Tables it references (CTE names excluded), in first-use order.
    pub tables: Vec<TableName>,
}

/// The statement kind for error messages, from SQL text: `INSERT`,
/// `CREATE TABLE`, `SET`, ...
pub fn statement_kind_of_text(sql: &str) -> String {
    let skip = [
        "OR",
        "REPLACE",
        "TEMP",
        "TEMPORARY",
        "SECURE",
        "IF",
        "NOT",
        "EXISTS",
        "MEMOIZABLE",
        "TRANSIENT",
        "GLOBAL",
        "LOCAL",
    ];
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| w.to_uppercase())
        .collect();
    let Some(first) = words.first() else {
        return "EMPTY".to_string();
    };
    if [
        "CREATE", "ALTER", "DROP", "SHOW", "UNDROP", "DESCRIBE", "DESC",
    ]
    .contains(&first.as_str())
    {
        let mut kind = first.clone();
        let mut rest = words[1..].iter().filter(|w| !skip.contains(&w.as_str()));
        if let Some(object) = rest.next() {
            kind.push(' ');
            kind.push_str(object);
            if ["MASKING", "ROW", "MATERIALIZED", "EXTERNAL"].contains(&object.as_str()) {
                for w in rest.by_ref().take(if object == "ROW" { 2 } else { 1 }) {
                    kind.push(' ');
                    kind.push_str(w);
                }
            }
        }
        return kind;
    }
    if first == "COPY" || first == "INSERT" || first == "MERGE" {
        return first.clone();
    }
    first.clone()
}

/// Whether raw SQL text starts like a read statement.
pub fn looks_like_read(sql: &str) -> bool {
    let kind = statement_kind_of_text(sql);
    let first = kind.split(' ').next().unwrap_or_default();
    matches!(
        first,
        "SELECT" | "WITH" | "VALUES" | "EXPLAIN" | "SHOW" | "DESCRIBE" | "DESC" | "("
    ) || sql.trim_start().starts_with('(')
}

/// The CTE names visible at each point of a walk over a statement, as
/// DataFusion resolves them: a query's CTEs are visible in its body, and
/// each CTE's body sees only the CTEs defined before it (a non-recursive
/// WITH), so `WITH customers AS (SELECT * FROM customers)` reads the table.
#[derive(Default)]
struct CteScopes {
    frames: Vec<CteFrame>,
}

struct CteFrame {
    names: Vec<String>,
    /// The CTE bodies of this frame's query, to recognise them on entry.
    bodies: Vec<*const Query>,
    /// How many of `names` are visible here.
    visible: usize,
}

impl CteScopes {
    fn enter(&mut self, query: &Query) {
        let ptr = query as *const Query;
        if let Some(frame) = self.frames.last_mut()
            && let Some(i) = frame.bodies.iter().position(|b| *b == ptr)
        {
            frame.visible = i;
        }
        let bodies = query
            .with
            .as_ref()
            .map(|w| {
                w.cte_tables
                    .iter()
                    .map(|c| &*c.query as *const Query)
                    .collect()
            })
            .unwrap_or_default();
        let names = cte_names(query);
        let visible = names.len();
        self.frames.push(CteFrame {
            names,
            bodies,
            visible,
        });
    }

    fn leave(&mut self, query: &Query) {
        self.frames.pop();
        let ptr = query as *const Query;
        if let Some(frame) = self.frames.last_mut()
            && frame.bodies.contains(&ptr)
        {
            frame.visible = frame.names.len();
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.frames
            .iter()
            .any(|f| f.names[..f.visible].iter().any(|c| c == name))
    }
}

struct Collect<'a> {
    default_db: &'a str,
    default_schema: &'a str,
    cte_scopes: CteScopes,
    tables: Vec<TableName>,
    error: Option<VeilError>,
}

impl Collect<'_> {
    fn in_cte_scope(&self, name: &str) -> bool {
        self.cte_scopes.contains(name)
    }
}

/// The normalized CTE names a query defines.
fn cte_names(query: &Query) -> Vec<String> {
    query
        .with
        .as_ref()
        .map(|w| {
            w.cte_tables
                .iter()
                .map(|c| ident_value(&c.alias.name))
                .collect()
        })
        .unwrap_or_default()
}

impl Visitor for Collect<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.cte_scopes.enter(query);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.cte_scopes.leave(query);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = factor {
            if args.is_some() {
                self.error = Some(VeilError::Refused(format!(
                    "Table function {name} is not available to Veil user queries."
                )));
                return ControlFlow::Break(());
            }
            let Some(parts) = object_name_parts(name) else {
                self.error = Some(VeilError::Refused(format!(
                    "Table name {name} is not supported."
                )));
                return ControlFlow::Break(());
            };
            if parts.len() == 1 && self.in_cte_scope(&parts[0]) {
                return ControlFlow::Continue(());
            }
            match resolve_table(&parts, self.default_db, self.default_schema) {
                Some(t) => {
                    if !self.tables.contains(&t) {
                        self.tables.push(t);
                    }
                }
                None => {
                    self.error = Some(VeilError::NotAuthorized(parts.join(".")));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            let name = f.name.to_string();
            let bare = name.trim_matches('"').to_ascii_lowercase();
            // VEIL_UNMASK is the one Veil function users call (SPEC rule 21).
            if (bare.starts_with("veil_") || bare.contains(".veil_")) && bare != "veil_unmask" {
                self.error = Some(VeilError::Refused(format!(
                    "Function {name} is internal to Veil and cannot be called from user SQL."
                )));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// Checks one parsed statement: only reads, no internal functions; returns
/// the tables it references.
pub fn check_statement(
    statement: Statement,
    default_db: &str,
    default_schema: &str,
) -> Result<CheckedStatement> {
    let kind = match &statement {
        Statement::Query(_) => StatementKind::Query,
        Statement::Explain { analyze: true, .. } => {
            // Its metrics count the rows inside policy relations, hidden
            // rows included.
            return Err(VeilError::StatementNotAllowed("EXPLAIN ANALYZE".into()));
        }
        Statement::Explain {
            statement: inner, ..
        } if matches!(inner.as_ref(), Statement::Query(_)) => StatementKind::Explain,
        Statement::ShowTables { .. } => StatementKind::ShowTables,
        Statement::ExplainTable { table_name, .. } => {
            let parts = object_name_parts(table_name).unwrap_or_default();
            let t = resolve_table(&parts, default_db, default_schema)
                .ok_or_else(|| VeilError::NotAuthorized(table_name.to_string()))?;
            StatementKind::Describe(t)
        }
        other => {
            return Err(VeilError::StatementNotAllowed(statement_kind_of_text(
                &other.to_string(),
            )));
        }
    };
    let mut statement = statement;
    super::snowflake::rewrite_snowflake(&mut statement)?;
    let mut collect = Collect {
        default_db,
        default_schema,
        cte_scopes: CteScopes::default(),
        tables: Vec::new(),
        error: None,
    };
    let _ = statement.visit(&mut collect);
    if let Some(e) = collect.error {
        return Err(e);
    }
    let mut tables = collect.tables;
    if let StatementKind::Describe(t) = &kind {
        tables = vec![t.clone()];
    }
    Ok(CheckedStatement {
        statement,
        kind,
        tables,
    })
}

struct Replace<'a> {
    default_db: &'a str,
    default_schema: &'a str,
    policies: &'a HashMap<TableName, Query>,
    cte_scopes: CteScopes,
}

impl VisitorMut for Replace<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.cte_scopes.enter(query);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.cte_scopes.leave(query);
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let Some(parts) = object_name_parts(name) else {
            return ControlFlow::Continue(());
        };
        if parts.len() == 1 && self.cte_scopes.contains(&parts[0]) {
            return ControlFlow::Continue(());
        }
        let Some(table) = resolve_table(&parts, self.default_db, self.default_schema) else {
            return ControlFlow::Continue(());
        };
        let Some(policy) = self.policies.get(&table) else {
            return ControlFlow::Continue(());
        };
        let alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: true,
            name: Ident::with_quote('"', last_part(name)),
            columns: vec![],
            at: None,
        });
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(policy.clone()),
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(ident_value)
        .unwrap_or_default()
}

/// Replaces every reference to a table in `policies` with its policy query.
pub fn rewrite_statement(
    statement: &Statement,
    policies: &HashMap<TableName, Query>,
    default_db: &str,
    default_schema: &str,
) -> Statement {
    let mut out = statement.clone();
    let mut replace = Replace {
        default_db,
        default_schema,
        policies,
        cte_scopes: CteScopes::default(),
    };
    let _ = VisitMut::visit(&mut out, &mut replace);
    out
}

/// Distinct tables, for reporting.
pub fn table_set(tables: &[TableName]) -> BTreeSet<TableName> {
    tables.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ident::parse_statements;

    fn check(sql: &str) -> Result<CheckedStatement> {
        let stmt = parse_statements(sql)?.remove(0);
        check_statement(stmt, "DB", "S")
    }

    #[test]
    fn ctes_shadow_tables() {
        let c = check("with customers as (select 1 as x) select * from customers, orders").unwrap();
        let names: Vec<String> = c.tables.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, vec!["DB.S.ORDERS"]);
    }

    #[test]
    fn a_cte_body_reads_the_table_it_is_named_after() {
        for sql in [
            "with customers as (select * from customers) select id from customers",
            "with a as (select * from customers), customers as (select 1 as x) select * from a",
        ] {
            let c = check(sql).unwrap();
            let names: Vec<String> = c.tables.iter().map(|t| t.to_string()).collect();
            assert_eq!(names, vec!["DB.S.CUSTOMERS"], "{sql}");
        }
        // A later CTE sees an earlier one, and the body sees them all.
        let c =
            check("with a as (select 1 as x), b as (select * from a) select * from b, a").unwrap();
        assert!(c.tables.is_empty(), "{:?}", c.tables);
    }

    #[test]
    fn subqueries_and_unions_are_found() {
        let c = check("select * from a where x in (select y from b) union all select * from c.d")
            .unwrap();
        let names: Vec<String> = c.tables.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, vec!["DB.S.A", "DB.S.B", "DB.C.D"]);
    }

    #[test]
    fn writes_are_refused_by_kind() {
        for (sql, kind) in [
            ("insert into t values (1)", "INSERT"),
            ("create or replace table t (a int)", "CREATE TABLE"),
            ("drop table t", "DROP TABLE"),
            ("set x = 1", "SET"),
            ("delete from t", "DELETE"),
            ("update t set a = 1", "UPDATE"),
        ] {
            let e = check(sql).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{kind} statements are not allowed: Veil user queries are read-only."),
                "{sql}"
            );
        }
    }

    #[test]
    fn internal_functions_are_refused() {
        let e = check("select VEIL_MASK_HASH('guess', '', 'VARCHAR(64)')").unwrap_err();
        assert!(e.to_string().contains("internal to Veil"), "{e}");
    }

    #[test]
    fn statement_kinds_from_text() {
        assert_eq!(
            statement_kind_of_text("CREATE OR REPLACE MASKING POLICY p AS"),
            "CREATE MASKING POLICY"
        );
        assert_eq!(
            statement_kind_of_text("alter table t add row access policy p on (a)"),
            "ALTER TABLE"
        );
        assert_eq!(statement_kind_of_text("copy into t from @s"), "COPY");
    }
}
