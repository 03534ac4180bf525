//! Snowflake-native policy objects, as workspace DDL scripts create them:
//! masking and row access policies with SQL bodies, SQL functions, tags
//! with their masking policies, the attachments to columns and tables, and
//! which DDL masking policies reach a column (`ddl_masks`: used by the
//! loader's both-layer check and by `compile/`, which decides).

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{Expr, Query};

use super::{Column, Origin, SnowflakeType, TableName, Workspace};

/// A named, typed argument of a policy or function signature.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlParam {
    /// Normalized name.
    pub name: String,
    /// Declared type.
    pub declared: SnowflakeType,
}

/// `CREATE MASKING POLICY p AS (val T, cond T2 ...) RETURNS T -> body`.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskingPolicyDef {
    /// Normalized name.
    pub name: String,
    /// Arguments: the masked value first, then conditional columns.
    pub params: Vec<SqlParam>,
    /// Return type (the first argument's type).
    pub returns: SnowflakeType,
    /// Body, over the argument names.
    pub body: Expr,
    /// `EXEMPT_OTHER_POLICIES = TRUE`.
    pub exempt_other_policies: bool,
    /// Where it was created.
    pub origin: Origin,
}

/// `CREATE ROW ACCESS POLICY p AS (a T, ...) RETURNS BOOLEAN -> body`.
#[derive(Debug, Clone, PartialEq)]
pub struct RowAccessPolicyDef {
    /// Normalized name.
    pub name: String,
    /// Arguments, bound by position to the columns of `ADD ROW ACCESS POLICY
    /// ... ON (cols)`.
    pub params: Vec<SqlParam>,
    /// Body, over the argument names.
    pub body: Expr,
    /// Where it was created.
    pub origin: Origin,
}

/// `CREATE [MEMOIZABLE] FUNCTION f(args) RETURNS T AS 'expr'`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFunction {
    /// Normalized name.
    pub name: String,
    /// Arguments.
    pub params: Vec<SqlParam>,
    /// The body expression (a scalar subquery for `SELECT` bodies).
    pub body: Expr,
    /// `MEMOIZABLE`: evaluated once per statement for equal arguments.
    pub memoizable: bool,
    /// `SECURE`: its body is never shown (`explain` prints the call).
    pub secure: bool,
    /// Where it was created.
    pub origin: Origin,
}

/// A masking policy attached to a column (`SET MASKING POLICY`).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPolicy {
    /// Policy name.
    pub policy: String,
    /// `USING (col, cond...)`: the column itself first, then conditional
    /// columns of the same table. Empty means just the column.
    pub using: Vec<String>,
    /// Where it was attached.
    pub origin: Origin,
}

/// A row access policy attached to a table (`ADD ROW ACCESS POLICY`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRowAccess {
    /// Policy name.
    pub policy: String,
    /// Columns bound to the policy's arguments, by position.
    pub columns: Vec<String>,
    /// Where it was attached.
    pub origin: Origin,
}

/// A Snowflake object tag (`CREATE TAG`) and its masking policies
/// (`ALTER TAG ... SET MASKING POLICY`), at most one per data type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagDef {
    /// Masking policies, by name.
    pub masking_policies: Vec<String>,
    /// Where it was created.
    pub origin: Origin,
}

/// `CREATE [SECURE] VIEW v AS <query>`: nameable like a table. Its base
/// tables are read with the view owner's rights, through the querying
/// user's policies; then the view's own column masking policies apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDef {
    /// Fully qualified name.
    pub name: TableName,
    /// The view's query.
    pub query: Box<Query>,
    /// `SECURE`.
    pub secure: bool,
    /// Masking policies set on view columns (`ALTER VIEW ... SET MASKING
    /// POLICY`), by column name.
    pub column_policies: Vec<(String, ColumnPolicy)>,
    /// Where it was created.
    pub origin: Origin,
}

/// Every Snowflake-native object of a workspace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SnowflakeObjects {
    /// Masking policies.
    pub masking_policies: Vec<MaskingPolicyDef>,
    /// Row access policies.
    pub row_access_policies: Vec<RowAccessPolicyDef>,
    /// SQL functions.
    pub functions: Vec<SqlFunction>,
    /// Tags, by normalized name.
    pub tags: BTreeMap<String, TagDef>,
    /// Views.
    pub views: Vec<ViewDef>,
}

impl SnowflakeObjects {
    /// The masking policy called `name`.
    pub fn masking_policy(&self, name: &str) -> Option<&MaskingPolicyDef> {
        self.masking_policies.iter().find(|p| p.name == name)
    }

    /// The row access policy called `name`.
    pub fn row_access_policy(&self, name: &str) -> Option<&RowAccessPolicyDef> {
        self.row_access_policies.iter().find(|p| p.name == name)
    }

    /// The view called `name`.
    pub fn view(&self, name: &TableName) -> Option<&ViewDef> {
        self.views.iter().find(|v| v.name == *name)
    }

    /// The function called `name`.
    pub fn function(&self, name: &str) -> Option<&SqlFunction> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// The broad kind of a type, which is what Snowflake matches between a
/// masking policy's signature and a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeFamily {
    /// `VARCHAR`, `STRING`, `TEXT`, `CHAR`.
    Text,
    /// `NUMBER`, `DECIMAL`, `INT`.
    Number,
    /// `FLOAT`.
    Float,
    /// `BOOLEAN`.
    Boolean,
    /// `DATE`.
    Date,
    /// `TIMESTAMP_NTZ`.
    Timestamp,
}

impl TypeFamily {
    /// The family of `t`.
    pub fn of(t: SnowflakeType) -> Self {
        match t {
            SnowflakeType::Varchar(_) => Self::Text,
            SnowflakeType::Number { .. } => Self::Number,
            SnowflakeType::Float => Self::Float,
            SnowflakeType::Boolean => Self::Boolean,
            SnowflakeType::Date => Self::Date,
            SnowflakeType::TimestampNtz => Self::Timestamp,
        }
    }
}

impl std::fmt::Display for TypeFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "VARCHAR",
            Self::Number => "NUMBER",
            Self::Float => "FLOAT",
            Self::Boolean => "BOOLEAN",
            Self::Date => "DATE",
            Self::Timestamp => "TIMESTAMP_NTZ",
        })
    }
}

/// The parts of a qualified object name as [`super::TableName`] prints it
/// (`DB.SCHEMA."my policy"` → `DB`, `SCHEMA`, `my policy`).
pub fn split_object_name(qualified: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut chars = qualified.chars().peekable();
    while let Some(c) = chars.next() {
        let Some(last) = parts.last_mut() else { break };
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                last.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            c => last.push(c),
        }
    }
    parts
}

/// The last part of a qualified object name: how `DESCRIBE` and `SHOW`
/// name a policy.
pub fn short_object_name(qualified: &str) -> String {
    split_object_name(qualified).pop().unwrap_or_default()
}

/// The DDL masking policy reaching `column`: the one set on it, else the
/// tag-based ones whose type matches the column's. More than one tag-based
/// policy is returned as is (queries on the column then fail).
pub fn ddl_masks(ws: &Workspace, column: &Column) -> Vec<(String, String)> {
    if let Some(p) = &column.masking_policy {
        return vec![(
            p.policy.clone(),
            format!(
                "masking policy {} is set on column {} ({})",
                p.policy, column.name, p.origin
            ),
        )];
    }
    let family = TypeFamily::of(column.declared);
    let mut out: Vec<(String, String)> = Vec::new();
    for tag in &column.tags {
        let Some(def) = ws.snowflake.tags.get(&tag.name) else {
            continue;
        };
        for p in &def.masking_policies {
            let matches = ws
                .snowflake
                .masking_policy(p)
                .is_some_and(|d| TypeFamily::of(d.returns) == family);
            if matches && !out.iter().any(|(q, _)| q == p) {
                out.push((
                    p.clone(),
                    format!(
                        "column {} is tagged {}{} and the tag's {family} masking policy is {p}",
                        column.name,
                        tag.name,
                        tag.value
                            .as_ref()
                            .map(|v| format!(" = '{v}'"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_unquote_the_last_part() {
        assert_eq!(short_object_name("DB.S.EMAIL_MASK"), "EMAIL_MASK");
        assert_eq!(short_object_name("DB.\"a.b\".\"hash-pii\""), "hash-pii");
        assert_eq!(short_object_name("DB.S.\"say \"\"hi\"\"\""), "say \"hi\"");
    }
}
