//! The statements a session identity has checked, by SQL text: a dashboard,
//! a BI tool or a PostgreSQL client re-running a statement skips its parse,
//! shaping and statement check, as a database's statement cache would.
//!
//! What is cached depends on the SQL text alone (and on the workspace's
//! default database and schema, fixed for the [`super::catalog::SessionCore`]
//! that holds the cache): the access check, which depends on the identity's
//! grants, runs on every statement, hit or miss. The cache lives in one
//! identity's core, so whether a statement is cached (and how fast it
//! plans) says nothing about what other users ran. Refused statements are
//! not cached.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::output::SnowflakeNames;
use crate::sql::gate::CheckedStatement;

/// A checked statement and the Snowflake names of its result columns
/// (worked out from its text before shaping).
pub(crate) type Checked = (CheckedStatement, Arc<SnowflakeNames>);

/// Statements cached per identity and version.
const CAPACITY: usize = 64;
/// Longer statements are checked every time: their parse trees would hold
/// the cache's memory for little gain (the parse is a small part of
/// planning them).
const LONGEST: usize = 4096;

/// A bounded map from SQL text to its checked statement.
pub(crate) struct Statements {
    cache: Cache<Box<str>, Arc<Checked>>,
}

impl Default for Statements {
    fn default() -> Self {
        Self {
            cache: Cache::new(CAPACITY),
        }
    }
}

impl Statements {
    /// `sql`'s checked statement: the cached one, or `check(sql)`, cached
    /// when it passed and `sql` is short enough.
    pub(crate) fn checked(
        &self,
        sql: &str,
        check: impl FnOnce(&str) -> crate::error::Result<Checked>,
    ) -> crate::error::Result<Checked> {
        if let Some(hit) = self.cache.get(sql) {
            return Ok(Checked::clone(&hit));
        }
        let checked = check(sql)?;
        if sql.len() <= LONGEST {
            self.cache.insert(sql.into(), Arc::new(checked.clone()));
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::VeilError;
    use crate::sql::gate::StatementKind;
    use datafusion::sql::sqlparser::ast::Statement;
    use std::cell::Cell;

    fn parsed(sql: &str) -> crate::error::Result<Checked> {
        let statement: Statement = crate::sql::ident::parse_statements(sql)?.remove(0);
        let names = Arc::new(SnowflakeNames::of(sql, &statement));
        let checked = CheckedStatement {
            statement,
            kind: StatementKind::Query,
            tables: Vec::new(),
        };
        Ok((checked, names))
    }

    #[test]
    fn a_statement_is_checked_once_and_a_refused_one_every_time() {
        let statements = Statements::default();
        let checks = Cell::new(0);
        let check = |sql: &str| {
            checks.set(checks.get() + 1);
            parsed(sql)
        };
        for _ in 0..3 {
            let got = statements.checked("SELECT 1", check);
            assert_eq!(
                got.map(|(c, _)| c.statement.to_string()).ok().as_deref(),
                Some("SELECT 1")
            );
        }
        assert_eq!(checks.get(), 1);
        let refuse = |_: &str| {
            checks.set(checks.get() + 1);
            Err(VeilError::NotAuthorized("T".into()))
        };
        for _ in 0..2 {
            assert!(statements.checked("SELECT * FROM T", refuse).is_err());
        }
        assert_eq!(checks.get(), 3);
    }

    #[test]
    fn long_statements_are_not_kept() {
        let statements = Statements::default();
        let checks = Cell::new(0);
        let long = format!("SELECT 1 {}", " ".repeat(LONGEST));
        for _ in 0..2 {
            let got = statements.checked(&long, |sql| {
                checks.set(checks.get() + 1);
                parsed(sql)
            });
            assert!(got.is_ok());
        }
        assert_eq!(checks.get(), 2);
    }
}
