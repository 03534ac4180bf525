//! Rewrites before a statement runs: Snowflake's context functions
//! (`CURRENT_ROLE()`, `CURRENT_WAREHOUSE()`, ...) as the session's values,
//! and unqualified names under `USE DATABASE/SCHEMA`.

use super::*;

/// Replaces context functions Veil's engine does not know
/// (`CURRENT_DATABASE()`, `CURRENT_SCHEMA()`, `CURRENT_WAREHOUSE()`,
/// `CURRENT_VERSION()`, ...) by the session's values; a bare call in the
/// select list keeps Snowflake's column name.
pub(super) struct ContextFunctions {
    pub(super) database: String,
    pub(super) schema: String,
    pub(super) warehouse: Option<String>,
    pub(super) changed: bool,
}

impl ContextFunctions {
    fn value(&self, expr: &Expr) -> Option<(String, Option<String>)> {
        let Expr::Function(f) = expr else {
            return None;
        };
        if f.name.0.len() != 1 {
            return None;
        }
        let name = f.name.to_string().to_ascii_uppercase();
        let args_empty = matches!(
            &f.args,
            datafusion::sql::sqlparser::ast::FunctionArguments::List(l) if l.args.is_empty()
        ) || matches!(
            &f.args,
            datafusion::sql::sqlparser::ast::FunctionArguments::None
        );
        if !args_empty {
            return None;
        }
        let value = match name.as_str() {
            "CURRENT_DATABASE" => Some(self.database.clone()),
            "CURRENT_SCHEMA" => Some(self.schema.clone()),
            "CURRENT_WAREHOUSE" => self.warehouse.clone(),
            "CURRENT_VERSION" => Some(VERSION.to_string()),
            "CURRENT_ACCOUNT" | "CURRENT_ACCOUNT_NAME" => Some("VEIL".to_string()),
            "CURRENT_REGION" => Some("LOCAL".to_string()),
            "CURRENT_CLIENT" => Some(VERSION.to_string()),
            _ => return None,
        };
        Some((format!("{name}()"), value))
    }

    fn literal(value: Option<String>) -> Expr {
        match value {
            Some(v) => Expr::value(Value::SingleQuotedString(v)),
            None => Expr::Cast {
                kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                expr: Box::new(Expr::value(Value::Null)),
                data_type: datafusion::sql::sqlparser::ast::DataType::Varchar(None),
                format: None,
                array: false,
            },
        }
    }
}

impl VisitorMut for ContextFunctions {
    type Break = ();

    fn pre_visit_query(
        &mut self,
        query: &mut datafusion::sql::sqlparser::ast::Query,
    ) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) = item
                    && let Some((name, value)) = self.value(expr)
                {
                    *item = SelectItem::ExprWithAlias {
                        expr: Self::literal(value),
                        alias: Ident::with_quote('"', name),
                    };
                    self.changed = true;
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some((_, value)) = self.value(expr) {
            *expr = Self::literal(value);
            self.changed = true;
        }
        ControlFlow::Continue(())
    }
}

/// Qualifies table names with the session's database and schema after
/// `USE DATABASE` / `USE SCHEMA` (Veil's engine resolves unqualified names
/// against the workspace's defaults). Names of CTEs stay as written.
pub(super) struct Qualify {
    database: String,
    schema: String,
    ctes: HashSet<String>,
    pub(super) changed: bool,
}

impl Qualify {
    pub(super) fn new(statement: &Statement, database: &str, schema: &str) -> Self {
        struct Ctes(HashSet<String>);
        impl datafusion::sql::sqlparser::ast::Visitor for Ctes {
            type Break = ();
            fn pre_visit_query(
                &mut self,
                q: &datafusion::sql::sqlparser::ast::Query,
            ) -> ControlFlow<()> {
                if let Some(with) = &q.with {
                    for c in &with.cte_tables {
                        self.0.insert(ident_text(&c.alias.name));
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut ctes = Ctes(HashSet::new());
        let _ = datafusion::sql::sqlparser::ast::Visit::visit(statement, &mut ctes);
        Self {
            database: database.to_string(),
            schema: schema.to_string(),
            ctes: ctes.0,
            changed: false,
        }
    }
}

impl VisitorMut for Qualify {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = factor
            && args.is_none()
        {
            let quoted = |s: &str| ObjectNamePart::Identifier(Ident::with_quote('"', s));
            match name.0.len() {
                1 => {
                    let bare = object_parts(name).join("");
                    if !self.ctes.contains(&bare) {
                        name.0.insert(0, quoted(&self.schema));
                        name.0.insert(0, quoted(&self.database));
                        self.changed = true;
                    }
                }
                2 => {
                    name.0.insert(0, quoted(&self.database));
                    self.changed = true;
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}
