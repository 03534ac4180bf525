//! Workspace Snowflake DDL scripts (SPEC §4): every `*.sql` file at the top
//! of the workspace, applied in file-name order after `veil.yaml`.
//!
//! sqlparser 0.62 does not parse Snowflake's policy DDL, so this module
//! parses the supported subset with sqlparser's own `Parser` primitives
//! (keywords, identifiers, object names, `parse_data_type`, `parse_expr` for
//! bodies) over Veil's tokens (unquoted identifiers upper-cased):
//!
//! - `CREATE [OR REPLACE] ROLE | TAG [IF NOT EXISTS] name`
//! - `CREATE [OR REPLACE] MASKING POLICY [IF NOT EXISTS] p AS (val T [, c T2 ...])
//!   RETURNS T -> body [COMMENT = '...'] [EXEMPT_OTHER_POLICIES = TRUE|FALSE]`
//! - `CREATE [OR REPLACE] ROW ACCESS POLICY [IF NOT EXISTS] p AS (a T, ...)
//!   RETURNS BOOLEAN -> body [COMMENT = '...']`
//! - `CREATE [OR REPLACE] [SECURE] [MEMOIZABLE] FUNCTION f(a T, ...) RETURNS T
//!   [LANGUAGE SQL] AS '<expression or SELECT>'` (also `$$...$$`)
//! - `GRANT ROLE r TO USER u | ROLE r2` (a grant closing a cycle is an
//!   error), `GRANT SELECT ON [TABLE] t TO ROLE r`
//! - `GRANT USAGE ON DATABASE d | SCHEMA [d.]s | WAREHOUSE w TO ROLE r` and
//!   `GRANT APPLY MASKING POLICY | APPLY ROW ACCESS POLICY | APPLY TAG ON
//!   ACCOUNT TO ROLE r`: recorded on the role ([`Privilege`]), not enforced
//!   (`veil lint` reports a read without USAGE on the database or schema)
//! - `ALTER TABLE t MODIFY|ALTER [COLUMN] c SET MASKING POLICY p [USING (c, cond...)] [FORCE]`,
//!   `... UNSET MASKING POLICY`, `... SET TAG tag = 'v' [, ...]`, `... UNSET TAG tag [, ...]`,
//!   several in one statement: `MODIFY [(] COLUMN a SET ..., COLUMN b UNSET ... [)]`
//! - `ALTER TABLE t ADD ROW ACCESS POLICY p ON (cols)`,
//!   `ALTER TABLE t DROP ROW ACCESS POLICY p | DROP ALL ROW ACCESS POLICIES`
//! - `ALTER TAG tag SET MASKING POLICY p [, MASKING POLICY p2] [FORCE]`,
//!   `ALTER TAG tag UNSET MASKING POLICY p [, ...]`
//! - `CREATE [OR REPLACE] [SECURE] VIEW v AS <query>`, `GRANT SELECT ON VIEW v TO ROLE r`,
//!   `ALTER VIEW v MODIFY|ALTER [COLUMN] c SET|UNSET MASKING POLICY p ...`
//! - `ALTER MASKING POLICY | ROW ACCESS POLICY [IF EXISTS] p SET BODY -> body`
//!   (the policy changes in place, still attached)
//! - `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (col T, ...)` and
//!   `INSERT INTO t [(cols)] VALUES (...), ...`: mapping and entitlements
//!   tables held in memory; `CREATE SCHEMA` is accepted and ignored
//! - `USE DATABASE d`, `USE SCHEMA [d.]s`, `USE ROLE r`
//!
//! A syntax error names the file, line and column of the token the parser
//! stopped at; any other error those of the statement (or of its change,
//! in a multi-column `ALTER`). Tables and
//! masking and row access policies resolve against `USE DATABASE/SCHEMA` and
//! the workspace defaults (a policy is known by its `DB.SCHEMA.NAME`); tags
//! and functions by their last name part.

use std::path::Path;

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::error::{Result, VeilError};
use crate::ident::{
    ident_value, object_name_parts, parse_expr, resolve_table, tokens, top_level_identifiers,
};
use crate::model::*;

/// One parsed DDL statement.
#[derive(Debug, Clone, PartialEq)]
enum Ddl {
    CreateRole {
        name: String,
        replace: bool,
        if_not_exists: bool,
    },
    CreateTag {
        name: String,
        replace: bool,
        if_not_exists: bool,
    },
    CreateMasking {
        def: MaskingPolicyDef,
        name: Vec<String>,
        replace: bool,
        if_not_exists: bool,
    },
    CreateRowAccess {
        def: RowAccessPolicyDef,
        name: Vec<String>,
        replace: bool,
        if_not_exists: bool,
    },
    CreateFunction {
        def: SqlFunction,
        replace: bool,
    },
    CreateView {
        name: Vec<String>,
        query: Box<datafusion::sql::sqlparser::ast::Query>,
        secure: bool,
        replace: bool,
    },
    GrantRoleToUser {
        role: String,
        user: String,
    },
    GrantRoleToRole {
        role: String,
        to: String,
    },
    GrantSelect {
        table: Vec<String>,
        role: String,
    },
    GrantUsage {
        on: UsageOn,
        name: Vec<String>,
        role: String,
    },
    GrantApply {
        privilege: Privilege,
        role: String,
    },
    /// Several changes in one statement (`ALTER TABLE t MODIFY COLUMN a ...,
    /// COLUMN b ...`), each with the line and column it starts at.
    Each(Vec<(Location, Ddl)>),
    SetMasking {
        table: Vec<String>,
        column: String,
        policy: Vec<String>,
        using: Vec<String>,
        force: bool,
    },
    UnsetMasking {
        table: Vec<String>,
        column: String,
    },
    ViewSetMasking {
        view: Vec<String>,
        column: String,
        policy: Vec<String>,
        using: Vec<String>,
        force: bool,
    },
    ViewUnsetMasking {
        view: Vec<String>,
        column: String,
    },
    SetTags {
        table: Vec<String>,
        column: String,
        tags: Vec<(String, String)>,
    },
    UnsetTags {
        table: Vec<String>,
        column: String,
        tags: Vec<String>,
    },
    AddRowAccess {
        table: Vec<String>,
        policy: Vec<String>,
        columns: Vec<String>,
    },
    DropRowAccess {
        table: Vec<String>,
        policy: Option<Vec<String>>,
    },
    TagSetMasking {
        tag: String,
        policies: Vec<Vec<String>>,
        force: bool,
    },
    TagUnsetMasking {
        tag: String,
        policies: Vec<Vec<String>>,
    },
    CreateTable {
        name: Vec<String>,
        columns: Vec<(String, SnowflakeType)>,
        replace: bool,
        if_not_exists: bool,
    },
    Insert {
        table: Vec<String>,
        columns: Option<Vec<String>>,
        rows: Vec<Vec<Option<String>>>,
    },
    CreateSchema,
    SetBody {
        masking: bool,
        name: Vec<String>,
        body: Expr,
    },
    UseDatabase(String),
    UseSchema(Vec<String>),
    UseRole,
}

/// What `GRANT USAGE ON ...` names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum UsageOn {
    Database,
    Schema,
    Warehouse,
}

type P<'a> = Parser<'a>;
type R<T> = std::result::Result<T, String>;

/// Consumes the next token if it is the unquoted word `w`.
fn word(p: &mut P<'_>, w: &str) -> bool {
    if let Token::Word(x) = &p.peek_token().token
        && x.quote_style.is_none()
        && x.value == w
    {
        p.next_token();
        return true;
    }
    false
}

/// Consumes the unquoted words `ws` if they are exactly the next tokens.
fn words(p: &mut P<'_>, ws: &[&str]) -> bool {
    let all = ws.iter().enumerate().all(|(i, w)| {
        matches!(&p.peek_nth_token(i).token, Token::Word(x) if x.quote_style.is_none() && x.value == *w)
    });
    if all {
        for _ in ws {
            p.next_token();
        }
    }
    all
}

fn expect_word(p: &mut P<'_>, w: &str) -> R<()> {
    if word(p, w) {
        Ok(())
    } else {
        Err(format!("expected {w}, found {}", p.peek_token().token))
    }
}

fn expect_token(p: &mut P<'_>, t: Token) -> R<()> {
    if p.peek_token().token == t {
        p.next_token();
        Ok(())
    } else {
        Err(format!("expected {t}, found {}", p.peek_token().token))
    }
}

fn object_name(p: &mut P<'_>) -> R<Vec<String>> {
    let at = p.peek_token().span.start;
    let name = p.parse_object_name(false).map_err(|e| e.to_string())?;
    object_name_parts(&name).ok_or_else(|| located(format!("'{name}' is not a valid name"), at))
}

/// The last part of a schema-level object name (policy, tag, function).
fn short_name(p: &mut P<'_>) -> R<String> {
    object_name(p)?
        .pop()
        .ok_or_else(|| "expected a name".to_string())
}

fn ident(p: &mut P<'_>) -> R<String> {
    p.parse_identifier()
        .map(|i| ident_value(&i))
        .map_err(|e| e.to_string())
}

fn data_type(p: &mut P<'_>) -> R<SnowflakeType> {
    let at = p.peek_token().span.start;
    let t = p.parse_data_type().map_err(|e| e.to_string())?;
    SnowflakeType::parse(&t.to_string()).map_err(|e| located(e, at))
}

fn ident_list(p: &mut P<'_>) -> R<Vec<String>> {
    expect_token(p, Token::LParen)?;
    let mut out = vec![ident(p)?];
    while p.peek_token().token == Token::Comma {
        p.next_token();
        out.push(ident(p)?);
    }
    expect_token(p, Token::RParen)?;
    Ok(out)
}

fn params(p: &mut P<'_>) -> R<Vec<SqlParam>> {
    expect_token(p, Token::LParen)?;
    let mut out = Vec::new();
    if p.peek_token().token == Token::RParen {
        p.next_token();
        return Ok(out);
    }
    loop {
        let name = ident(p)?;
        let declared = data_type(p)?;
        out.push(SqlParam { name, declared });
        match p.peek_token().token {
            Token::Comma => p.next_token(),
            Token::RParen => {
                p.next_token();
                return Ok(out);
            }
            other => return Err(format!("expected , or ) in the signature, found {other}")),
        };
    }
}

fn string_literal(p: &mut P<'_>) -> R<String> {
    let text = match p.peek_token().token {
        Token::SingleQuotedString(s) => s,
        Token::DollarQuotedString(d) => d.value,
        other => return Err(format!("expected a quoted string, found {other}")),
    };
    p.next_token();
    Ok(text)
}

/// Appends `at` to `message` as sqlparser locates its own errors (" at
/// Line: L, Column: C"), unless the message is located already: the
/// script's parser reports the first location in a message, else the token
/// it stopped at.
fn located(message: impl Into<String>, at: Location) -> String {
    let message = message.into();
    match split_location(&message) {
        (_, Some(_)) => message,
        (_, None) => format!("{message}{at}"),
    }
}

/// A message without sqlparser's prefix and trailing location, and the
/// location.
fn split_location(message: &str) -> (String, Option<Location>) {
    let message = message.replace("sql parser error: ", "");
    const AT: &str = " at Line: ";
    if let Some(i) = message.rfind(AT)
        && let Some((line, column)) = message[i + AT.len()..].split_once(", Column: ")
        && let (Ok(line), Ok(column)) = (line.parse::<u64>(), column.parse::<u64>())
        && line > 0
    {
        return (message[..i].to_string(), Some(Location::new(line, column)));
    }
    (message, None)
}

/// `COMMENT = '...'` and `EXEMPT_OTHER_POLICIES = TRUE|FALSE`, in any order.
fn policy_options(p: &mut P<'_>) -> R<bool> {
    let mut exempt = false;
    loop {
        if word(p, "COMMENT") {
            expect_token(p, Token::Eq)?;
            string_literal(p)?;
        } else if word(p, "EXEMPT_OTHER_POLICIES") {
            expect_token(p, Token::Eq)?;
            exempt = if word(p, "TRUE") {
                true
            } else if word(p, "FALSE") {
                false
            } else {
                return Err("EXEMPT_OTHER_POLICIES must be TRUE or FALSE".into());
            };
        } else {
            return Ok(exempt);
        }
    }
}

fn body(p: &mut P<'_>) -> R<Expr> {
    expect_token(p, Token::Arrow)?;
    p.parse_expr().map_err(|e| e.to_string())
}

/// A function body: an expression, or a `SELECT` used as a scalar subquery.
/// Errors are located in `text` (leading blanks kept, so locations hold).
fn function_body(text: &str) -> R<Expr> {
    let body = text.trim_end().trim_end_matches(';');
    let upper = body.trim_start().to_ascii_uppercase();
    let fail = |e: String| format!("the function body does not parse: {e}");
    let syntax = |e: VeilError| match e {
        VeilError::Parse(m) => fail(m),
        other => fail(other.to_string()),
    };
    if upper.starts_with("SELECT") || upper.starts_with("WITH") {
        let tokens = tokens(body).map_err(syntax)?;
        let query = Parser::new(&SnowflakeDialect {})
            .with_tokens_with_locations(tokens)
            .parse_query()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Expr::Subquery(query))
    } else {
        parse_expr(body).map_err(syntax)
    }
}

/// An error located inside the text of string literal `literal` (a function
/// body parsed on its own), located in the script instead.
fn in_literal(message: &str, literal: &TokenWithSpan) -> String {
    let start = literal.span.start;
    // The body starts after the opening quote: ' or $$ (or $tag$). (A ''
    // escape earlier on the same line shifts the column by one.)
    let quote = match &literal.token {
        Token::DollarQuotedString(d) => 2 + d.tag.as_ref().map_or(0, |t| t.chars().count() as u64),
        _ => 1,
    };
    let (message, at) = split_location(message);
    let at = match at {
        Some(at) if at.line == 1 => Location::new(start.line, start.column + quote + at.column - 1),
        Some(at) => Location::new(start.line + at.line - 1, at.column),
        // The body ended too soon: at its closing quote.
        None if message.ends_with("EOF") => {
            let end = literal.span.end;
            Location::new(end.line, end.column.saturating_sub(quote).max(1))
        }
        None => start,
    };
    located(message, at)
}

fn create(p: &mut P<'_>) -> R<Ddl> {
    let replace = words(p, &["OR", "REPLACE"]);
    let secure = word(p, "SECURE");
    let memoizable = word(p, "MEMOIZABLE");
    let if_not_exists = |p: &mut P<'_>| words(p, &["IF", "NOT", "EXISTS"]);
    if !secure && !memoizable && word(p, "ROLE") {
        let if_not_exists = if_not_exists(p);
        return Ok(Ddl::CreateRole {
            name: ident(p)?,
            replace,
            if_not_exists,
        });
    }
    if !secure && !memoizable && word(p, "TAG") {
        let if_not_exists = if_not_exists(p);
        let name = short_name(p)?;
        // ALLOWED_VALUES and COMMENT do not change enforcement.
        while word(p, "ALLOWED_VALUES") || word(p, "COMMENT") {
            let _ = p.consume_token(&Token::Eq);
            string_literal(p)?;
            while p.peek_token().token == Token::Comma {
                p.next_token();
                string_literal(p)?;
            }
        }
        return Ok(Ddl::CreateTag {
            name,
            replace,
            if_not_exists,
        });
    }
    if !secure && !memoizable && words(p, &["MASKING", "POLICY"]) {
        let if_not_exists = if_not_exists(p);
        let parts = object_name(p)?;
        let name = parts.last().cloned().unwrap_or_default();
        expect_word(p, "AS")?;
        let params = params(p)?;
        expect_word(p, "RETURNS")?;
        let returns = data_type(p)?;
        let body = body(p)?;
        let exempt_other_policies = policy_options(p)?;
        return Ok(Ddl::CreateMasking {
            def: MaskingPolicyDef {
                name,
                params,
                returns,
                body,
                exempt_other_policies,
                origin: Origin::default(),
            },
            name: parts,
            replace,
            if_not_exists,
        });
    }
    if !secure && !memoizable && words(p, &["ROW", "ACCESS", "POLICY"]) {
        let if_not_exists = if_not_exists(p);
        let parts = object_name(p)?;
        let name = parts.last().cloned().unwrap_or_default();
        expect_word(p, "AS")?;
        let params = params(p)?;
        expect_word(p, "RETURNS")?;
        let at = p.peek_token().span.start;
        let returns = p.parse_data_type().map_err(|e| e.to_string())?;
        if !returns.to_string().eq_ignore_ascii_case("BOOLEAN") {
            return Err(located(
                format!("a row access policy returns BOOLEAN, not {returns}"),
                at,
            ));
        }
        let body = body(p)?;
        policy_options(p)?;
        return Ok(Ddl::CreateRowAccess {
            def: RowAccessPolicyDef {
                name,
                params,
                body,
                origin: Origin::default(),
            },
            name: parts,
            replace,
            if_not_exists,
        });
    }
    if !secure && !memoizable && word(p, "SCHEMA") {
        // Schemas need no declaration in Veil: accepted and ignored.
        if_not_exists(p);
        object_name(p)?;
        return Ok(Ddl::CreateSchema);
    }
    if !secure && !memoizable && word(p, "TABLE") {
        let if_not_exists = if_not_exists(p);
        let name = object_name(p)?;
        expect_token(p, Token::LParen)?;
        let mut columns = Vec::new();
        loop {
            let column = ident(p)?;
            let declared = data_type(p)?;
            words(p, &["NOT", "NULL"]);
            columns.push((column, declared));
            match p.peek_token().token {
                Token::Comma => p.next_token(),
                Token::RParen => {
                    p.next_token();
                    break;
                }
                other => return Err(format!("expected , or ) in the column list, found {other}")),
            };
        }
        return Ok(Ddl::CreateTable {
            name,
            columns,
            replace,
            if_not_exists,
        });
    }
    if !memoizable && word(p, "VIEW") {
        words(p, &["IF", "NOT", "EXISTS"]);
        let name = object_name(p)?;
        if p.peek_token().token == Token::LParen {
            return Err(
                "CREATE VIEW with a column list is not supported by Veil; alias the columns in the query instead".into(),
            );
        }
        while word(p, "COMMENT") {
            expect_token(p, Token::Eq)?;
            string_literal(p)?;
        }
        expect_word(p, "AS")?;
        let query = p.parse_query().map_err(|e| e.to_string())?;
        return Ok(Ddl::CreateView {
            name,
            query,
            secure,
            replace,
        });
    }
    if word(p, "FUNCTION") {
        let name = short_name(p)?;
        let params = params(p)?;
        expect_word(p, "RETURNS")?;
        // The return type only documents the body (ARRAY, VARIANT ... allowed).
        p.parse_data_type().map_err(|e| e.to_string())?;
        if word(p, "LANGUAGE") {
            expect_word(p, "SQL")?;
        }
        while word(p, "COMMENT") {
            expect_token(p, Token::Eq)?;
            string_literal(p)?;
        }
        expect_word(p, "AS")?;
        let literal = p.peek_token();
        let body = function_body(&string_literal(p)?).map_err(|e| in_literal(&e, &literal))?;
        return Ok(Ddl::CreateFunction {
            def: SqlFunction {
                name,
                params,
                body,
                memoizable,
                secure,
                origin: Origin::default(),
            },
            replace,
        });
    }
    Err(format!(
        "CREATE {} is not supported in workspace DDL scripts (ROLE, TAG, MASKING POLICY, ROW ACCESS POLICY, FUNCTION, VIEW, TABLE)",
        p.peek_token().token
    ))
}

fn grant(p: &mut P<'_>) -> R<Ddl> {
    if word(p, "ROLE") {
        let role = ident(p)?;
        expect_word(p, "TO")?;
        if word(p, "USER") {
            return Ok(Ddl::GrantRoleToUser {
                role,
                user: ident(p)?,
            });
        }
        expect_word(p, "ROLE")?;
        return Ok(Ddl::GrantRoleToRole {
            role,
            to: ident(p)?,
        });
    }
    if word(p, "SELECT") {
        expect_word(p, "ON")?;
        let _ = word(p, "TABLE") || word(p, "VIEW");
        let table = object_name(p)?;
        expect_word(p, "TO")?;
        expect_word(p, "ROLE")?;
        return Ok(Ddl::GrantSelect {
            table,
            role: ident(p)?,
        });
    }
    if word(p, "USAGE") {
        expect_word(p, "ON")?;
        let on = if word(p, "DATABASE") {
            UsageOn::Database
        } else if word(p, "SCHEMA") {
            UsageOn::Schema
        } else if word(p, "WAREHOUSE") {
            UsageOn::Warehouse
        } else {
            return Err(format!(
                "expected DATABASE, SCHEMA or WAREHOUSE, found {}",
                p.peek_token().token
            ));
        };
        let name = object_name(p)?;
        expect_word(p, "TO")?;
        expect_word(p, "ROLE")?;
        return Ok(Ddl::GrantUsage {
            on,
            name,
            role: ident(p)?,
        });
    }
    if word(p, "APPLY") {
        let privilege = if words(p, &["MASKING", "POLICY"]) {
            Privilege::ApplyMaskingPolicy
        } else if words(p, &["ROW", "ACCESS", "POLICY"]) {
            Privilege::ApplyRowAccessPolicy
        } else if word(p, "TAG") {
            Privilege::ApplyTag
        } else {
            return Err(format!(
                "expected MASKING POLICY, ROW ACCESS POLICY or TAG, found {}",
                p.peek_token().token
            ));
        };
        expect_word(p, "ON")?;
        expect_word(p, "ACCOUNT")?;
        expect_word(p, "TO")?;
        expect_word(p, "ROLE")?;
        return Ok(Ddl::GrantApply {
            privilege,
            role: ident(p)?,
        });
    }
    Err(
        "only GRANT ROLE ... TO USER|ROLE, GRANT SELECT ON [TABLE|VIEW] ..., GRANT USAGE ON DATABASE|SCHEMA|WAREHOUSE ... and GRANT APPLY MASKING POLICY|ROW ACCESS POLICY|TAG ON ACCOUNT ... TO ROLE are supported"
            .into(),
    )
}

/// Whether the next tokens start another item of a multi-column `ALTER
/// TABLE t MODIFY`: `, [COLUMN] c SET|UNSET ...`.
fn another_column(p: &P<'_>) -> bool {
    let is = |n: usize, words: &[&str]| match &p.peek_nth_token(n).token {
        Token::Word(x) => x.quote_style.is_none() && words.contains(&x.value.as_str()),
        _ => false,
    };
    p.peek_token().token == Token::Comma && (is(1, &["COLUMN"]) || is(2, &["SET", "UNSET"]))
}

/// `[(] [COLUMN] c <change> [, [COLUMN] c2 <change> ...] [)]` after `ALTER
/// TABLE t MODIFY|ALTER`: one change, or [`Ddl::Each`] for several.
fn alter_columns(p: &mut P<'_>, table: Vec<String>) -> R<Ddl> {
    let parenthesised = p.consume_token(&Token::LParen);
    let mut changes = Vec::new();
    loop {
        let start = p.peek_token().span.start;
        changes.push((start, alter_column(p, table.clone())?));
        if !another_column(p) {
            break;
        }
        p.next_token();
    }
    if parenthesised {
        expect_token(p, Token::RParen)?;
    }
    Ok(match changes.len() {
        1 => changes.remove(0).1,
        _ => Ddl::Each(changes),
    })
}

fn alter_column(p: &mut P<'_>, table: Vec<String>) -> R<Ddl> {
    word(p, "COLUMN");
    let column = ident(p)?;
    if words(p, &["SET", "MASKING", "POLICY"]) {
        let policy = object_name(p)?;
        let using = if word(p, "USING") {
            ident_list(p)?
        } else {
            Vec::new()
        };
        let force = word(p, "FORCE");
        return Ok(Ddl::SetMasking {
            table,
            column,
            policy,
            using,
            force,
        });
    }
    if words(p, &["UNSET", "MASKING", "POLICY"]) {
        return Ok(Ddl::UnsetMasking { table, column });
    }
    if words(p, &["SET", "TAG"]) {
        let mut tags = Vec::new();
        loop {
            let tag = short_name(p)?;
            expect_token(p, Token::Eq)?;
            tags.push((tag, string_literal(p)?));
            if p.peek_token().token != Token::Comma || another_column(p) {
                break;
            }
            p.next_token();
        }
        return Ok(Ddl::SetTags {
            table,
            column,
            tags,
        });
    }
    if words(p, &["UNSET", "TAG"]) {
        let mut tags = vec![short_name(p)?];
        while p.peek_token().token == Token::Comma && !another_column(p) {
            p.next_token();
            tags.push(short_name(p)?);
        }
        return Ok(Ddl::UnsetTags {
            table,
            column,
            tags,
        });
    }
    Err("expected SET MASKING POLICY, UNSET MASKING POLICY, SET TAG or UNSET TAG".into())
}

fn alter(p: &mut P<'_>) -> R<Ddl> {
    if word(p, "TABLE") {
        words(p, &["IF", "EXISTS"]);
        let table = object_name(p)?;
        if word(p, "MODIFY") || word(p, "ALTER") {
            return alter_columns(p, table);
        }
        if words(p, &["ADD", "ROW", "ACCESS", "POLICY"]) {
            let policy = object_name(p)?;
            expect_word(p, "ON")?;
            let columns = ident_list(p)?;
            return Ok(Ddl::AddRowAccess {
                table,
                policy,
                columns,
            });
        }
        if words(p, &["DROP", "ALL", "ROW", "ACCESS", "POLICIES"]) {
            return Ok(Ddl::DropRowAccess {
                table,
                policy: None,
            });
        }
        if words(p, &["DROP", "ROW", "ACCESS", "POLICY"]) {
            return Ok(Ddl::DropRowAccess {
                table,
                policy: Some(object_name(p)?),
            });
        }
        return Err(
            "expected MODIFY COLUMN, ADD ROW ACCESS POLICY or DROP ROW ACCESS POLICY".into(),
        );
    }
    if word(p, "VIEW") {
        let view = object_name(p)?;
        if !(word(p, "MODIFY") || word(p, "ALTER")) {
            return Err("expected ALTER VIEW v MODIFY COLUMN c SET|UNSET MASKING POLICY".into());
        }
        return on_view(alter_columns(p, view)?);
    }
    for (masking, kind) in [
        (true, &["MASKING", "POLICY"][..]),
        (false, &["ROW", "ACCESS", "POLICY"][..]),
    ] {
        if words(p, kind) {
            words(p, &["IF", "EXISTS"]);
            let name = object_name(p)?;
            if !words(p, &["SET", "BODY"]) {
                return Err(format!(
                    "expected ALTER {} ... SET BODY -> <body>",
                    kind.join(" ")
                ));
            }
            return Ok(Ddl::SetBody {
                masking,
                name,
                body: body(p)?,
            });
        }
    }
    if word(p, "TAG") {
        let tag = short_name(p)?;
        let set = if word(p, "SET") {
            true
        } else if word(p, "UNSET") {
            false
        } else {
            return Err("expected SET or UNSET MASKING POLICY".into());
        };
        let mut policies = Vec::new();
        loop {
            expect_word(p, "MASKING")?;
            expect_word(p, "POLICY")?;
            policies.push(object_name(p)?);
            if p.peek_token().token != Token::Comma {
                break;
            }
            p.next_token();
        }
        let force = word(p, "FORCE");
        return Ok(if set {
            Ddl::TagSetMasking {
                tag,
                policies,
                force,
            }
        } else {
            Ddl::TagUnsetMasking { tag, policies }
        });
    }
    Err("only ALTER TABLE, ALTER VIEW, ALTER TAG, ALTER MASKING POLICY and ALTER ROW ACCESS POLICY are supported".into())
}

/// A column change parsed for a table, made a change to the view of that name.
fn on_view(change: Ddl) -> R<Ddl> {
    match change {
        Ddl::SetMasking {
            table,
            column,
            policy,
            using,
            force,
        } => Ok(Ddl::ViewSetMasking {
            view: table,
            column,
            policy,
            using,
            force,
        }),
        Ddl::UnsetMasking { table, column } => Ok(Ddl::ViewUnsetMasking {
            view: table,
            column,
        }),
        Ddl::Each(changes) => Ok(Ddl::Each(
            changes
                .into_iter()
                .map(|(at, c)| on_view(c).map(|c| (at, c)).map_err(|e| located(e, at)))
                .collect::<R<_>>()?,
        )),
        _ => Err("views take masking policies on columns, not tags".into()),
    }
}

/// A literal of `INSERT ... VALUES` as text (`NULL` as `None`).
fn literal(p: &mut P<'_>) -> R<Option<String>> {
    use datafusion::sql::sqlparser::ast::{UnaryOperator, Value};
    let e = p.parse_expr().map_err(|e| e.to_string())?;
    let text = match &e {
        Expr::Value(v) => match &v.value {
            Value::Null => return Ok(None),
            Value::SingleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) if matches!(v.value, Value::Number(..)) => Some(format!("-{}", v.value)),
            _ => None,
        },
        _ => None,
    };
    text.map(Some).ok_or_else(|| {
        format!(
            "INSERT ... VALUES takes literals only (strings, numbers, TRUE/FALSE, NULL), not {e}"
        )
    })
}

/// `INSERT INTO t [(cols)] VALUES (...), (...)`.
fn insert(p: &mut P<'_>) -> R<Ddl> {
    expect_word(p, "INTO")?;
    let table = object_name(p)?;
    let columns = if p.peek_token().token == Token::LParen {
        Some(ident_list(p)?)
    } else {
        None
    };
    expect_word(p, "VALUES")?;
    let mut rows = Vec::new();
    loop {
        expect_token(p, Token::LParen)?;
        let mut row = vec![literal(p)?];
        while p.consume_token(&Token::Comma) {
            row.push(literal(p)?);
        }
        expect_token(p, Token::RParen)?;
        rows.push(row);
        if !p.consume_token(&Token::Comma) {
            return Ok(Ddl::Insert {
                table,
                columns,
                rows,
            });
        }
    }
}

fn statement(p: &mut P<'_>) -> R<Ddl> {
    if word(p, "INSERT") {
        return insert(p);
    }
    if word(p, "CREATE") {
        return create(p);
    }
    if word(p, "GRANT") {
        return grant(p);
    }
    if word(p, "ALTER") {
        return alter(p);
    }
    if word(p, "USE") {
        if word(p, "DATABASE") {
            return Ok(Ddl::UseDatabase(ident(p)?));
        }
        if word(p, "SCHEMA") {
            return Ok(Ddl::UseSchema(object_name(p)?));
        }
        if word(p, "ROLE") {
            ident(p)?;
            return Ok(Ddl::UseRole);
        }
        return Err("expected USE DATABASE, USE SCHEMA or USE ROLE".into());
    }
    Err(format!(
        "{} is not a statement workspace DDL scripts support (CREATE, GRANT, ALTER, INSERT, USE)",
        p.peek_token().token
    ))
}

/// Parses a script into statements with their `line:column`. A syntax
/// error names the line and column of the token the parser stopped at.
fn parse_script(text: &str, file: &str) -> Result<Vec<(Origin, usize, Ddl)>> {
    let located_error = |message: &str, fallback: Location| {
        let (message, at) = split_location(message);
        let at = at.unwrap_or(fallback);
        VeilError::workspace(format!("{file}:{}:{}", at.line, at.column), message)
    };
    let tokens = tokens(text).map_err(|e| match e {
        VeilError::Parse(m) => located_error(&m, Location::new(1, 1)),
        other => VeilError::workspace(file, other.to_string()),
    })?;
    let mut p = Parser::new(&SnowflakeDialect {}).with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while p.consume_token(&Token::SemiColon) {}
        let start = p.peek_token();
        if start.token == Token::EOF {
            return Ok(out);
        }
        let line = start.span.start.line as usize;
        let column = start.span.start.column as usize;
        let stmt = statement(&mut p).map_err(|e| located_error(&e, stop(&p)))?;
        let next = p.peek_token().token;
        if next != Token::SemiColon && next != Token::EOF {
            return Err(located_error(
                &format!("unexpected {next} after the statement (missing ';'?)"),
                stop(&p),
            ));
        }
        out.push((
            Origin {
                file: file.to_string(),
                line,
            },
            column,
            stmt,
        ));
    }
}

/// Where the parser stopped: the next token, or at the end of the script
/// the end of the last one.
fn stop(p: &P<'_>) -> Location {
    let next = p.peek_token_ref().span.start;
    if next.line > 0 {
        next
    } else {
        p.get_current_token().span.end
    }
}

/// Applies the workspace's `*.sql` scripts, in file-name order, then checks
/// that no column is masked by both layers.
pub fn apply_workspace_scripts(ws: &mut Workspace) -> Result<()> {
    let listing_error = |e: std::io::Error| {
        VeilError::workspace(
            ws.dir.display().to_string(),
            format!("cannot list DDL scripts: {e}"),
        )
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&ws.dir).map_err(listing_error)? {
        let path = entry.map_err(listing_error)?.path();
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    for path in files {
        apply_script(ws, &path)?;
    }
    check_layer_conflicts(ws)
}

/// Applies one DDL script to `ws`.
pub fn apply_script(ws: &mut Workspace, path: &Path) -> Result<()> {
    let rel = path
        .strip_prefix(&ws.dir)
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        VeilError::workspace(rel.clone(), format!("cannot read the DDL script: {e}"))
    })?;
    let mut state = Scope {
        database: ws.settings.default_database.clone(),
        schema: ws.settings.default_schema.clone(),
    };
    for (origin, column, stmt) in parse_script(&text, &rel)? {
        apply(ws, &mut state, stmt, &origin).map_err(|e| {
            // A change of a multi-change statement is located at its start.
            let (message, at) = split_location(&e);
            let (line, column) = match at {
                Some(at) => (at.line as usize, at.column as usize),
                None => (origin.line, column),
            };
            VeilError::workspace(format!("{}:{line}:{column}", origin.file), message)
        })?;
    }
    Ok(())
}

struct Scope {
    database: String,
    schema: String,
}

/// The fully qualified name of a schema-level policy (`DB.SCHEMA.NAME`),
/// resolved like a table name against `USE DATABASE/SCHEMA`: policies in two
/// schemas may share a name.
fn qualify(scope: &Scope, parts: &[String]) -> R<String> {
    resolve_table(parts, &scope.database, &scope.schema)
        .map(|n| n.to_string())
        .ok_or_else(|| format!("'{}' is not a policy name", parts.join(".")))
}

fn table_mut<'a>(ws: &'a mut Workspace, scope: &Scope, parts: &[String]) -> R<&'a mut Table> {
    let name = resolve_table(parts, &scope.database, &scope.schema)
        .ok_or_else(|| format!("'{}' is not a table name", parts.join(".")))?;
    ws.tables
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("Table '{name}' does not exist or not authorized."))
}

fn view_mut<'a>(ws: &'a mut Workspace, scope: &Scope, parts: &[String]) -> R<&'a mut ViewDef> {
    let name = resolve_table(parts, &scope.database, &scope.schema)
        .ok_or_else(|| format!("'{}' is not a view name", parts.join(".")))?;
    ws.snowflake
        .views
        .iter_mut()
        .find(|v| v.name == name)
        .ok_or_else(|| format!("View '{name}' does not exist or not authorized."))
}

fn column_mut<'a>(table: &'a mut Table, column: &str) -> R<&'a mut Column> {
    let t = table.name.clone();
    table
        .columns
        .iter_mut()
        .find(|c| c.name == column)
        .ok_or_else(|| format!("invalid identifier '{column}': table {t} has no such column"))
}

/// Snowflake's error 003529.
pub const ERROR_003529: &str = "003529 (42601): SQL compilation error: Specified column already attached to another masking policy. A column cannot be attached to multiple masking policies. Please drop the current association in order to attach a new masking policy.";

/// The first identifier of a policy body (outside subqueries) that is not
/// one of the policy's arguments: Snowflake refuses such a policy at CREATE.
fn unknown_identifier(body: &Expr, params: &[SqlParam]) -> Option<String> {
    top_level_identifiers(body)
        .into_iter()
        .find(|name| !params.iter().any(|p| p.name == *name))
}

/// Refuses a policy body that names anything but its arguments.
fn check_body(kind: &str, name: &str, body: &Expr, params: &[SqlParam]) -> R<()> {
    match unknown_identifier(body, params) {
        None => Ok(()),
        Some(unknown) => Err(format!(
            "invalid identifier '{unknown}': the body of {kind} {name} may use only its arguments ({})",
            params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `CREATE [OR REPLACE] ... [IF NOT EXISTS]` of a named object in `list`.
fn create_named<T>(
    list: &mut Vec<T>,
    def: T,
    name: &str,
    kind: &str,
    replace: bool,
    if_not_exists: bool,
    name_of: impl Fn(&T) -> &str,
) -> R<()> {
    match list.iter_mut().find(|x| name_of(x) == name) {
        Some(_) if if_not_exists => Ok(()),
        Some(x) if replace => {
            *x = def;
            Ok(())
        }
        Some(_) => Err(format!("{kind} '{name}' already exists.")),
        None => {
            list.push(def);
            Ok(())
        }
    }
}

/// The masking policy `policy`, checked against the column it is being set
/// on: `USING` names the column first, then one column per further argument.
fn masking_for(
    ws: &Workspace,
    policy: &str,
    column: &str,
    using: &[String],
) -> R<MaskingPolicyDef> {
    let def = ws
        .snowflake
        .masking_policy(policy)
        .cloned()
        .ok_or_else(|| format!("Masking policy '{policy}' does not exist or not authorized."))?;
    let bound = if using.is_empty() { 1 } else { using.len() };
    if using.first().is_some_and(|u| u != column) || bound != def.params.len() {
        return Err(format!(
            "Masking policy {policy} takes {} argument(s): USING must list the masked column {column} first, then {} conditional column(s).",
            def.params.len(),
            def.params.len().saturating_sub(1)
        ));
    }
    Ok(def)
}

/// Records `privilege` on `role`.
fn grant_privilege(ws: &mut Workspace, role: &str, privilege: Privilege) -> R<()> {
    let r = ws
        .roles
        .iter_mut()
        .find(|r| r.name == role)
        .ok_or_else(|| format!("Role '{role}' does not exist or not authorized."))?;
    if !r.privileges.contains(&privilege) {
        r.privileges.push(privilege);
    }
    Ok(())
}

fn apply(ws: &mut Workspace, scope: &mut Scope, stmt: Ddl, origin: &Origin) -> R<()> {
    let exists = |kind: &str, name: &str| format!("{kind} '{name}' already exists.");
    match stmt {
        Ddl::UseDatabase(d) => scope.database = d,
        Ddl::UseSchema(parts) => match parts.as_slice() {
            [s] => scope.schema = s.clone(),
            [d, s] => {
                scope.database = d.clone();
                scope.schema = s.clone();
            }
            _ => return Err("USE SCHEMA takes [database.]schema".into()),
        },
        Ddl::UseRole | Ddl::CreateSchema => {}
        Ddl::Each(changes) => {
            for (at, change) in changes {
                apply(ws, scope, change, origin).map_err(|e| located(e, at))?;
            }
        }
        Ddl::GrantUsage { on, name, role } => {
            let privilege = match (on, name.as_slice()) {
                (UsageOn::Database, [d]) => Privilege::UsageOnDatabase(d.clone()),
                (UsageOn::Schema, [s]) => Privilege::UsageOnSchema {
                    database: scope.database.clone(),
                    schema: s.clone(),
                },
                (UsageOn::Schema, [d, s]) => Privilege::UsageOnSchema {
                    database: d.clone(),
                    schema: s.clone(),
                },
                (UsageOn::Warehouse, [w]) => Privilege::UsageOnWarehouse(w.clone()),
                (UsageOn::Schema, _) => {
                    return Err(format!(
                        "'{}' is not a schema name ([database.]schema)",
                        name.join(".")
                    ));
                }
                (on, _) => {
                    return Err(format!(
                        "'{}' is not a {} name",
                        name.join("."),
                        if on == UsageOn::Database {
                            "database"
                        } else {
                            "warehouse"
                        }
                    ));
                }
            };
            grant_privilege(ws, &role, privilege)?;
        }
        Ddl::GrantApply { privilege, role } => grant_privilege(ws, &role, privilege)?,
        Ddl::SetBody {
            masking,
            name,
            body,
        } => {
            let name = qualify(scope, &name)?;
            if masking {
                let def = ws
                    .snowflake
                    .masking_policies
                    .iter_mut()
                    .find(|p| p.name == name)
                    .ok_or_else(|| {
                        format!("Masking policy '{name}' does not exist or not authorized.")
                    })?;
                check_body("masking policy", &name, &body, &def.params)?;
                def.body = body;
            } else {
                let def = ws
                    .snowflake
                    .row_access_policies
                    .iter_mut()
                    .find(|p| p.name == name)
                    .ok_or_else(|| {
                        format!("Row access policy '{name}' does not exist or not authorized.")
                    })?;
                check_body("row access policy", &name, &body, &def.params)?;
                def.body = body;
            }
        }
        Ddl::CreateTable {
            name,
            columns,
            replace,
            if_not_exists,
        } => {
            let name = resolve_table(&name, &scope.database, &scope.schema)
                .ok_or_else(|| format!("'{}' is not a table name", name.join(".")))?;
            if ws.snowflake.view(&name).is_some() {
                return Err(exists("View", &name.to_string()));
            }
            let columns: Vec<Column> = columns
                .into_iter()
                .map(|(c, declared)| Column {
                    name: c,
                    declared,
                    tags: Vec::new(),
                    masking_policy: None,
                })
                .collect();
            match ws.tables.iter_mut().find(|t| t.name == name) {
                Some(_) if if_not_exists => {}
                Some(t) if replace && t.rows.is_some() => {
                    t.columns = columns;
                    t.rows = Some(Vec::new());
                    t.row_access_policy = None;
                    t.origin = origin.clone();
                }
                Some(t) if replace => {
                    return Err(format!(
                        "table {name} is read from {}; a DDL script cannot replace it",
                        t.origin
                    ));
                }
                Some(_) => return Err(exists("Table", &name.to_string())),
                None => ws.tables.push(Table {
                    name,
                    location: ws.dir.clone(),
                    format: FileFormat::Csv,
                    event_time: None,
                    owners: Vec::new(),
                    columns,
                    row_access_policy: None,
                    rows: Some(Vec::new()),
                    origin: origin.clone(),
                }),
            }
        }
        Ddl::Insert {
            table,
            columns,
            rows,
        } => {
            let t = table_mut(ws, scope, &table)?;
            let name = t.name.clone();
            let positions: Vec<usize> = match &columns {
                None => (0..t.columns.len()).collect(),
                Some(cs) => cs
                    .iter()
                    .map(|c| {
                        t.columns.iter().position(|x| x.name == *c).ok_or_else(|| {
                            format!("invalid identifier '{c}': table {name} has no such column")
                        })
                    })
                    .collect::<R<_>>()?,
            };
            let width = t.columns.len();
            let Some(stored) = t.rows.as_mut() else {
                return Err(format!(
                    "INSERT goes only into tables a DDL script created; {name} is read from its data files"
                ));
            };
            let mut added = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                if row.len() != positions.len() {
                    return Err(format!(
                        "row {} of the INSERT into {name} has {} value(s) but {} column(s) are listed",
                        i + 1,
                        row.len(),
                        positions.len()
                    ));
                }
                let mut full = vec![None; width];
                for (value, &at) in row.into_iter().zip(&positions) {
                    full[at] = value;
                }
                added.push(full);
            }
            stored.extend(added);
        }
        Ddl::CreateRole {
            name,
            replace,
            if_not_exists,
        } => match ws.roles.iter_mut().find(|r| r.name == name) {
            Some(_) if if_not_exists => {}
            Some(r) if replace => {
                // DROP + CREATE: the old role's grants and memberships go.
                r.grants.clear();
                r.inherits.clear();
                r.privileges.clear();
                for u in &mut ws.users {
                    u.roles.retain(|x| *x != name);
                }
                for other in &mut ws.roles {
                    other.inherits.retain(|x| *x != name);
                }
            }
            Some(_) => return Err(exists("Role", &name)),
            None => ws.roles.push(Role {
                name,
                grants: Vec::new(),
                inherits: Vec::new(),
                privileges: Vec::new(),
                origin: origin.clone(),
            }),
        },
        Ddl::CreateTag {
            name,
            replace,
            if_not_exists,
        } => match ws.snowflake.tags.get_mut(&name) {
            Some(_) if if_not_exists => {}
            Some(t) if replace => t.origin = origin.clone(),
            Some(_) => return Err(exists("Tag", &name)),
            None => {
                ws.snowflake.tags.insert(
                    name,
                    TagDef {
                        masking_policies: Vec::new(),
                        origin: origin.clone(),
                    },
                );
            }
        },
        Ddl::CreateMasking {
            mut def,
            name,
            replace,
            if_not_exists,
        } => {
            def.name = qualify(scope, &name)?;
            let Some(first) = def.params.first() else {
                return Err(format!(
                    "Masking policy {} needs at least one argument (the masked value).",
                    def.name
                ));
            };
            if TypeFamily::of(first.declared) != TypeFamily::of(def.returns) {
                return Err(format!(
                    "Masking policy {} returns {} but its first argument {} is {}: the return type must be the type of the value it masks.",
                    def.name,
                    TypeFamily::of(def.returns),
                    first.name,
                    TypeFamily::of(first.declared)
                ));
            }
            check_body("masking policy", &def.name, &def.body, &def.params)?;
            def.origin = origin.clone();
            let name = def.name.clone();
            create_named(
                &mut ws.snowflake.masking_policies,
                def,
                &name,
                "Masking policy",
                replace,
                if_not_exists,
                |p| &p.name,
            )?;
        }
        Ddl::CreateRowAccess {
            mut def,
            name,
            replace,
            if_not_exists,
        } => {
            def.name = qualify(scope, &name)?;
            check_body("row access policy", &def.name, &def.body, &def.params)?;
            def.origin = origin.clone();
            let name = def.name.clone();
            create_named(
                &mut ws.snowflake.row_access_policies,
                def,
                &name,
                "Row access policy",
                replace,
                if_not_exists,
                |p| &p.name,
            )?;
        }
        Ddl::CreateFunction { mut def, replace } => {
            def.origin = origin.clone();
            let name = def.name.clone();
            create_named(
                &mut ws.snowflake.functions,
                def,
                &name,
                "Function",
                replace,
                false,
                |f| &f.name,
            )?;
        }
        Ddl::CreateView {
            name,
            query,
            secure,
            replace,
        } => {
            let name = resolve_table(&name, &scope.database, &scope.schema)
                .ok_or_else(|| format!("'{}' is not a view name", name.join(".")))?;
            if ws.table(&name).is_some() {
                return Err(exists("Table", &name.to_string()));
            }
            let def = ViewDef {
                name: name.clone(),
                query,
                secure,
                column_policies: Vec::new(),
                origin: origin.clone(),
            };
            let views = &mut ws.snowflake.views;
            match views.iter_mut().find(|v| v.name == name) {
                Some(v) if replace => {
                    // DROP + CREATE: grants on the old view go.
                    *v = def;
                    for r in &mut ws.roles {
                        r.grants.retain(|g| *g != name);
                    }
                }
                Some(_) => return Err(exists("View", &name.to_string())),
                None => views.push(def),
            }
        }
        Ddl::ViewSetMasking {
            view,
            column,
            policy,
            using,
            force,
        } => {
            let policy = qualify(scope, &policy)?;
            masking_for(ws, &policy, &column, &using)?;
            let v = view_mut(ws, scope, &view)?;
            if v.column_policies.iter().any(|(c, _)| *c == column) {
                if !force {
                    return Err(ERROR_003529.to_string());
                }
                v.column_policies.retain(|(c, _)| *c != column);
            }
            v.column_policies.push((
                column,
                ColumnPolicy {
                    policy,
                    using,
                    origin: origin.clone(),
                },
            ));
        }
        Ddl::ViewUnsetMasking { view, column } => {
            view_mut(ws, scope, &view)?
                .column_policies
                .retain(|(c, _)| *c != column);
        }
        Ddl::GrantRoleToUser { role, user } => {
            if role != "PUBLIC" && ws.role(&role).is_none() {
                return Err(format!("Role '{role}' does not exist or not authorized."));
            }
            let u = ws
                .users
                .iter_mut()
                .find(|u| u.name == user)
                .ok_or_else(|| format!("User '{user}' does not exist or not authorized."))?;
            if !u.roles.contains(&role) {
                u.roles.push(role);
            }
        }
        Ddl::GrantRoleToRole { role, to } => {
            if ws.role(&role).is_none() {
                return Err(format!("Role '{role}' does not exist or not authorized."));
            }
            let r = ws
                .roles
                .iter_mut()
                .find(|r| r.name == to)
                .ok_or_else(|| format!("Role '{to}' does not exist or not authorized."))?;
            if !r.inherits.contains(&role) {
                r.inherits.push(role.clone());
            }
            // Snowflake refuses a grant that closes a cycle; so does Veil.
            if let Some(mut path) = inheritance_path(&ws.roles, &role, &to) {
                path.insert(0, to);
                return Err(crate::load::role_cycle_message(&path));
            }
        }
        Ddl::GrantSelect { table, role } => {
            let name = match resolve_table(&table, &scope.database, &scope.schema) {
                Some(v) if ws.snowflake.view(&v).is_some() => v,
                _ => table_mut(ws, scope, &table)?.name.clone(),
            };
            let r = ws
                .roles
                .iter_mut()
                .find(|r| r.name == role)
                .ok_or_else(|| format!("Role '{role}' does not exist or not authorized."))?;
            if !r.grants.contains(&name) {
                r.grants.push(name);
            }
        }
        Ddl::SetMasking {
            table,
            column,
            policy,
            using,
            force,
        } => {
            let policy = qualify(scope, &policy)?;
            let def = masking_for(ws, &policy, &column, &using)?;
            let t = table_mut(ws, scope, &table)?;
            let table_name = t.name.clone();
            for u in using.iter().skip(1) {
                column_mut(t, u)?;
            }
            let c = column_mut(t, &column)?;
            if TypeFamily::of(c.declared) != TypeFamily::of(def.returns) {
                return Err(format!(
                    "Specified column {table_name}.{column} is {} but masking policy {policy} masks {}: the types must match.",
                    c.declared,
                    TypeFamily::of(def.returns)
                ));
            }
            if c.masking_policy.is_some() && !force {
                return Err(ERROR_003529.to_string());
            }
            c.masking_policy = Some(ColumnPolicy {
                policy,
                using,
                origin: origin.clone(),
            });
        }
        Ddl::UnsetMasking { table, column } => {
            let t = table_mut(ws, scope, &table)?;
            column_mut(t, &column)?.masking_policy = None;
        }
        Ddl::SetTags {
            table,
            column,
            tags,
        } => {
            let known: Vec<String> = ws.snowflake.tags.keys().cloned().collect();
            let t = table_mut(ws, scope, &table)?;
            let c = column_mut(t, &column)?;
            for (tag, value) in tags {
                if !known.contains(&tag) {
                    return Err(format!("Tag '{tag}' does not exist or not authorized."));
                }
                c.tags.retain(|x| x.name != tag);
                c.tags.push(ColumnTag {
                    name: tag,
                    source: TagSource::Snowflake,
                    value: Some(value),
                });
            }
        }
        Ddl::UnsetTags {
            table,
            column,
            tags,
        } => {
            let t = table_mut(ws, scope, &table)?;
            let c = column_mut(t, &column)?;
            c.tags
                .retain(|x| !(x.source == TagSource::Snowflake && tags.contains(&x.name)));
        }
        Ddl::AddRowAccess {
            table,
            policy,
            columns,
        } => {
            let policy = qualify(scope, &policy)?;
            let def = ws
                .snowflake
                .row_access_policy(&policy)
                .cloned()
                .ok_or_else(|| {
                    format!("Row access policy '{policy}' does not exist or not authorized.")
                })?;
            let t = table_mut(ws, scope, &table)?;
            for c in &columns {
                column_mut(t, c)?;
            }
            if let Some(existing) = &t.row_access_policy {
                return Err(format!(
                    "Object '{}' already has a ROW_ACCESS_POLICY ({}). Only one ROW_ACCESS_POLICY is allowed at a time.",
                    t.name, existing.policy
                ));
            }
            if columns.len() != def.params.len() {
                return Err(format!(
                    "Row access policy {policy} takes {} argument(s) but ON names {} column(s).",
                    def.params.len(),
                    columns.len()
                ));
            }
            t.row_access_policy = Some(TableRowAccess {
                policy,
                columns,
                origin: origin.clone(),
            });
        }
        Ddl::DropRowAccess { table, policy } => {
            let policy = policy.map(|p| qualify(scope, &p)).transpose()?;
            let t = table_mut(ws, scope, &table)?;
            match (&t.row_access_policy, policy) {
                (Some(_), None) => t.row_access_policy = None,
                (Some(existing), Some(p)) if existing.policy == p => t.row_access_policy = None,
                (_, Some(p)) => {
                    return Err(format!(
                        "Row access policy '{p}' is not attached to table {}.",
                        t.name
                    ));
                }
                (None, None) => {}
            }
        }
        Ddl::TagSetMasking {
            tag,
            policies,
            force,
        } => {
            let policies: Vec<String> = policies
                .iter()
                .map(|p| qualify(scope, p))
                .collect::<R<_>>()?;
            let defs: Vec<MaskingPolicyDef> = policies
                .iter()
                .map(|p| {
                    ws.snowflake.masking_policy(p).cloned().ok_or_else(|| {
                        format!("Masking policy '{p}' does not exist or not authorized.")
                    })
                })
                .collect::<R<_>>()?;
            let family_of = |name: &str, ws: &Workspace| {
                ws.snowflake
                    .masking_policy(name)
                    .map(|d| TypeFamily::of(d.returns))
            };
            let current: Vec<(String, Option<TypeFamily>)> = ws
                .snowflake
                .tags
                .get(&tag)
                .ok_or_else(|| format!("Tag '{tag}' does not exist or not authorized."))?
                .masking_policies
                .iter()
                .map(|p| (p.clone(), family_of(p, ws)))
                .collect();
            let mut next = current;
            for def in defs {
                let family = Some(TypeFamily::of(def.returns));
                if let Some(pos) = next.iter().position(|(_, f)| *f == family) {
                    if !force {
                        return Err(format!(
                            "Tag {tag} already has masking policy {} for data type {}: a tag takes one masking policy per data type (use FORCE to replace it).",
                            next[pos].0,
                            TypeFamily::of(def.returns)
                        ));
                    }
                    next.remove(pos);
                }
                next.push((def.name.clone(), family));
            }
            if let Some(t) = ws.snowflake.tags.get_mut(&tag) {
                t.masking_policies = next.into_iter().map(|(p, _)| p).collect();
            }
        }
        Ddl::TagUnsetMasking { tag, policies } => {
            let policies: Vec<String> = policies
                .iter()
                .map(|p| qualify(scope, p))
                .collect::<R<_>>()?;
            let t = ws
                .snowflake
                .tags
                .get_mut(&tag)
                .ok_or_else(|| format!("Tag '{tag}' does not exist or not authorized."))?;
            t.masking_policies.retain(|p| !policies.contains(p));
        }
    }
    Ok(())
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

/// Both layers in one workspace: a column masked by DDL (directly or
/// through a tag) and by an Immuta-style masking policy is a load error
/// naming both.
fn check_layer_conflicts(ws: &Workspace) -> Result<()> {
    for t in &ws.tables {
        for c in &t.columns {
            let Some((ddl, why)) = ddl_masks(ws, c).into_iter().next() else {
                continue;
            };
            for p in &ws.policies {
                if !matches!(p.kind, PolicyKind::Masking { .. }) {
                    continue;
                }
                let reaches = match &p.target {
                    Target::Columns(cs) => cs.iter().any(|(tn, cn)| *tn == t.name && *cn == c.name),
                    Target::Tags(tags) => tags
                        .iter()
                        .any(|target| c.tags.iter().any(|ct| tag_is_under(&ct.name, target))),
                    Target::DataSources(ts) => ts.contains(&t.name),
                };
                if reaches {
                    return Err(VeilError::workspace(
                        p.origin.to_string(),
                        format!(
                            "column {}.{} is masked both by Snowflake masking policy {ddl} ({why}) and by policy '{}'; a column takes one mask, so remove one of them",
                            t.name, c.name, p.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Vec<Ddl> {
        parse_script(sql, "t.sql")
            .unwrap()
            .into_iter()
            .map(|(_, _, d)| d)
            .collect()
    }

    #[test]
    fn policy_ddl_parses() {
        let stmts = parse(
            "create or replace masking policy email_mask as (val string, vis varchar) returns string ->
               case when current_role() in ('ANALYST') then val else '***' end
               comment = 'x' exempt_other_policies = true;
             create row access policy gov.p.sales as (r varchar) returns boolean -> r = 'EU';
             alter table customers modify column email set masking policy email_mask using (email, vis) force;
             alter table t add row access policy sales on (region);
             alter tag pii set masking policy a, masking policy b;
             create memoizable function regions() returns array as 'select array_agg(r) from m';",
        );
        assert_eq!(stmts.len(), 6);
        let Ddl::CreateMasking { def, replace, .. } = &stmts[0] else {
            panic!("{:?}", stmts[0])
        };
        assert!(*replace && def.exempt_other_policies);
        assert_eq!(def.name, "EMAIL_MASK");
        assert!(
            matches!(&stmts[1], Ddl::CreateRowAccess { name, .. } if name.join(".") == "GOV.P.SALES")
        );
        assert_eq!(def.params[1].name, "VIS");
        assert!(matches!(&stmts[1], Ddl::CreateRowAccess { def, .. } if def.name == "SALES"));
        assert!(matches!(
            &stmts[2],
            Ddl::SetMasking { using, force: true, .. } if using == &["EMAIL".to_string(), "VIS".to_string()]
        ));
        assert!(matches!(&stmts[4], Ddl::TagSetMasking { policies, .. } if policies.len() == 2));
        assert!(
            matches!(&stmts[5], Ddl::CreateFunction { def, .. } if def.memoizable && matches!(def.body, Expr::Subquery(_)))
        );
    }

    #[test]
    fn several_column_changes_parse_as_one_statement() {
        let stmts = parse(
            "alter table t modify column a set masking policy p using (a, b) force, column b unset masking policy;
             alter table t alter (c set tag x = '1', y = '2', d unset tag x, y);
             alter view v modify column a set masking policy p, column b unset masking policy;
             grant usage on schema d.s to role r; grant apply tag on account to role r;",
        );
        let Ddl::Each(changes) = &stmts[0] else {
            panic!("{:?}", stmts[0])
        };
        assert!(
            matches!(&changes[0].1, Ddl::SetMasking { force: true, using, .. } if using.len() == 2)
        );
        assert!(matches!(&changes[1].1, Ddl::UnsetMasking { column, .. } if column == "B"));
        assert_eq!((changes[1].0.line, changes[1].0.column), (1, 72));
        let Ddl::Each(changes) = &stmts[1] else {
            panic!("{:?}", stmts[1])
        };
        assert!(matches!(&changes[0].1, Ddl::SetTags { tags, .. } if tags.len() == 2));
        assert!(matches!(&changes[1].1, Ddl::UnsetTags { tags, .. } if tags.len() == 2));
        assert!(
            matches!(&stmts[2], Ddl::Each(c) if matches!(c[1].1, Ddl::ViewUnsetMasking { .. }))
        );
        assert!(
            matches!(&stmts[3], Ddl::GrantUsage { on: UsageOn::Schema, name, .. } if name.len() == 2)
        );
        assert!(matches!(
            &stmts[4],
            Ddl::GrantApply {
                privilege: Privilege::ApplyTag,
                ..
            }
        ));
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse_script("create role a;\n  drop table x;", "roles.sql").unwrap_err();
        assert!(err.to_string().starts_with("roles.sql:2:3: "), "{err}");
        let err = parse_script("create role a\ncreate role b;", "r.sql").unwrap_err();
        assert!(err.to_string().contains("missing ';'"), "{err}");
    }
}
