//! The statement parser: Veil's tokens of a script → parsed [`Ddl`]
//! statements on sqlparser's `Parser` primitives, each with its location;
//! a syntax error names the file, line and column the parser stopped at.
//! `CREATE` is parsed in `parse/create.rs`, `ALTER` in `parse/alter.rs`.

mod alter;
mod create;

use alter::alter;
use create::create;

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ident::{ident_value, object_name_parts, parse_expr, parser, tokens};

use super::{Ddl, UsageOn};

pub(super) type P<'a> = Parser<'a>;
pub(super) type R<T> = std::result::Result<T, String>;

/// Consumes the next token if it is the unquoted word `w`.
pub(super) fn word(p: &mut P<'_>, w: &str) -> bool {
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
pub(super) fn words(p: &mut P<'_>, ws: &[&str]) -> bool {
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

pub(super) fn expect_word(p: &mut P<'_>, w: &str) -> R<()> {
    if word(p, w) {
        Ok(())
    } else {
        Err(format!("expected {w}, found {}", p.peek_token().token))
    }
}

pub(super) fn expect_token(p: &mut P<'_>, t: Token) -> R<()> {
    if p.peek_token().token == t {
        p.next_token();
        Ok(())
    } else {
        Err(format!("expected {t}, found {}", p.peek_token().token))
    }
}

pub(super) fn object_name(p: &mut P<'_>) -> R<Vec<String>> {
    let at = p.peek_token().span.start;
    let name = p.parse_object_name(false).map_err(|e| e.to_string())?;
    object_name_parts(&name).ok_or_else(|| located(format!("'{name}' is not a valid name"), at))
}

/// The last part of a schema-level object name (policy, tag, function).
pub(super) fn short_name(p: &mut P<'_>) -> R<String> {
    object_name(p)?
        .pop()
        .ok_or_else(|| "expected a name".to_string())
}

pub(super) fn ident(p: &mut P<'_>) -> R<String> {
    p.parse_identifier()
        .map(|i| ident_value(&i))
        .map_err(|e| e.to_string())
}

pub(super) fn data_type(p: &mut P<'_>) -> R<SnowflakeType> {
    let at = p.peek_token().span.start;
    let t = p.parse_data_type().map_err(|e| e.to_string())?;
    SnowflakeType::parse(&t.to_string()).map_err(|e| located(e, at))
}

pub(super) fn ident_list(p: &mut P<'_>) -> R<Vec<String>> {
    expect_token(p, Token::LParen)?;
    let mut out = vec![ident(p)?];
    while p.peek_token().token == Token::Comma {
        p.next_token();
        out.push(ident(p)?);
    }
    expect_token(p, Token::RParen)?;
    Ok(out)
}

pub(super) fn params(p: &mut P<'_>) -> R<Vec<SqlParam>> {
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

pub(super) fn string_literal(p: &mut P<'_>) -> R<String> {
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
pub(super) fn located(message: impl Into<String>, at: Location) -> String {
    let message = message.into();
    match split_location(&message) {
        (_, Some(_)) => message,
        (_, None) => format!("{message}{at}"),
    }
}

/// A message without sqlparser's prefix and trailing location, and the
/// location.
pub(super) fn split_location(message: &str) -> (String, Option<Location>) {
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
pub(super) fn policy_options(p: &mut P<'_>) -> R<bool> {
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

pub(super) fn body(p: &mut P<'_>) -> R<Expr> {
    expect_token(p, Token::Arrow)?;
    p.parse_expr().map_err(|e| e.to_string())
}

/// A function body: an expression, or a `SELECT` used as a scalar subquery.
/// Errors are located in `text` (leading blanks kept, so locations hold).
pub(super) fn function_body(text: &str) -> R<Expr> {
    let body = text.trim_end().trim_end_matches(';');
    let upper = body.trim_start().to_ascii_uppercase();
    let fail = |e: String| format!("the function body does not parse: {e}");
    let syntax = |e: VeilError| match e {
        VeilError::Parse(m) => fail(m),
        other => fail(other.to_string()),
    };
    if upper.starts_with("SELECT") || upper.starts_with("WITH") {
        let tokens = tokens(body).map_err(syntax)?;
        let query = parser(tokens)
            .parse_query()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Expr::Subquery(query))
    } else {
        parse_expr(body).map_err(syntax)
    }
}

/// An error located inside the text of string literal `literal` (a function
/// body parsed on its own), located in the script instead.
pub(super) fn in_literal(message: &str, literal: &TokenWithSpan) -> String {
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

pub(super) fn grant(p: &mut P<'_>) -> R<Ddl> {
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

/// A literal of `INSERT ... VALUES` as text (`NULL` as `None`).
pub(super) fn literal(p: &mut P<'_>) -> R<Option<String>> {
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
pub(super) fn insert(p: &mut P<'_>) -> R<Ddl> {
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

pub(super) fn statement(p: &mut P<'_>) -> R<Ddl> {
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
pub(super) fn parse_script(text: &str, file: &str) -> Result<Vec<(Origin, usize, Ddl)>> {
    let located_error = |message: &str, fallback: Location| {
        let (message, at) = split_location(message);
        let at = at.unwrap_or(fallback);
        VeilError::workspace(format!("{file}:{}:{}", at.line, at.column), message)
    };
    let tokens = tokens(text).map_err(|e| match e {
        VeilError::Parse(m) => located_error(&m, Location::new(1, 1)),
        other => VeilError::workspace(file, other.to_string()),
    })?;
    let mut p = parser(tokens);
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
pub(super) fn stop(p: &P<'_>) -> Location {
    let next = p.peek_token_ref().span.start;
    if next.line > 0 {
        next
    } else {
        p.get_current_token().span.end
    }
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
