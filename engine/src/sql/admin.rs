//! The administrators' statement gate: which statements
//! [`crate::Engine::admin_sql`] treats specially — `EXECUTE USING
//! POLICY_CONTEXT(...) AS <query>` (run as another principal) and `SHOW
//! MASKING POLICIES` / `SHOW ROW ACCESS POLICIES` (read a policy catalog
//! table) — recognized before anything is planned. Everything else is plain
//! SQL on the raw tables.

use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Result, VeilError};
use crate::model::SessionOptions;
use crate::sql::ident::{parser, tokens};

/// An administrative statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AdminStatement {
    /// Run `query` as another principal.
    PolicyContext {
        /// Who.
        options: SessionOptions,
        /// The query text.
        query: String,
    },
    /// Read one of the administrators' catalog tables.
    Show(&'static str),
    /// Plain SQL on the raw tables.
    Sql,
}

fn upper_words(sql: &str, n: usize) -> Vec<String> {
    sql.split_whitespace()
        .take(n)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect()
}

fn policy_context(sql: &str) -> Result<AdminStatement> {
    let bad = |m: String| VeilError::Parse(format!("EXECUTE USING POLICY_CONTEXT: {m}"));
    let mut p = parser(tokens(sql)?);
    for w in ["EXECUTE", "USING", "POLICY_CONTEXT"] {
        match p.next_token().token {
            Token::Word(x) if x.value == w => {}
            other => return Err(bad(format!("expected {w}, found {other}"))),
        }
    }
    p.expect_token(&Token::LParen)
        .map_err(|e| bad(e.to_string()))?;
    let mut options = SessionOptions::default();
    loop {
        let key = p.parse_identifier().map_err(|e| bad(e.to_string()))?;
        p.expect_token(&Token::RArrow)
            .map_err(|e| bad(e.to_string()))?;
        let values: Vec<String> = if p.consume_token(&Token::LParen) {
            let mut v = Vec::new();
            loop {
                v.push(p.parse_literal_string().map_err(|e| bad(e.to_string()))?);
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            p.expect_token(&Token::RParen)
                .map_err(|e| bad(e.to_string()))?;
            v
        } else {
            p.parse_literal_string()
                .map_err(|e| bad(e.to_string()))?
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        match key.value.to_ascii_uppercase().as_str() {
            "CURRENT_USER" => options.user = values.join(","),
            "CURRENT_ROLE" => options.role = Some(values.join(",")),
            "SNOWFLAKE$SESSION_ACTIVATED_ROLES" => options.secondary_roles = Some(values),
            other => {
                return Err(bad(format!(
                    "'{other}' is not CURRENT_USER, CURRENT_ROLE or SNOWFLAKE$SESSION_ACTIVATED_ROLES"
                )));
            }
        }
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    p.expect_token(&Token::RParen)
        .map_err(|e| bad(e.to_string()))?;
    match p.next_token().token {
        Token::Word(x) if x.value == "AS" => {}
        other => return Err(bad(format!("expected AS <query>, found {other}"))),
    }
    let query = p.parse_query().map_err(|e| bad(e.to_string()))?;
    if options.user.is_empty() {
        return Err(bad("CURRENT_USER => '...' is required".into()));
    }
    Ok(AdminStatement::PolicyContext {
        options,
        query: query.to_string(),
    })
}

/// Recognizes the administrative statements.
pub(crate) fn parse_admin(sql: &str) -> Result<AdminStatement> {
    let words = upper_words(sql, 4);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["EXECUTE", "USING", ..] => policy_context(sql),
        ["SHOW", "MASKING", "POLICIES", ..] => Ok(AdminStatement::Show(MASKING_POLICIES)),
        ["SHOW", "ROW", "ACCESS", "POLICIES"] => Ok(AdminStatement::Show(ROW_ACCESS_POLICIES)),
        _ => Ok(AdminStatement::Sql),
    }
}

/// `VEIL.SYSTEM.MASKING_POLICIES`.
pub const MASKING_POLICIES: &str = "MASKING_POLICIES";
/// `VEIL.SYSTEM.ROW_ACCESS_POLICIES`.
pub const ROW_ACCESS_POLICIES: &str = "ROW_ACCESS_POLICIES";
/// `VEIL.SYSTEM.POLICY_REFERENCES`.
pub const POLICY_REFERENCES: &str = "POLICY_REFERENCES";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_context_parses() {
        let AdminStatement::PolicyContext { options, query } = parse_admin(
            "execute using policy_context(current_user => 'joe', current_role => 'SALES_MANAGER_EU', snowflake$session_activated_roles => 'A, B') as select * from sales",
        )
        .unwrap() else {
            panic!("not a policy context")
        };
        assert_eq!(options.user, "joe");
        assert_eq!(options.role.as_deref(), Some("SALES_MANAGER_EU"));
        assert_eq!(
            options.secondary_roles,
            Some(vec!["A".to_string(), "B".to_string()])
        );
        assert_eq!(query, "SELECT * FROM SALES");
        assert!(
            parse_admin("execute using policy_context(current_role => 'R') as select 1").is_err()
        );
        assert_eq!(
            parse_admin("show masking policies").unwrap(),
            AdminStatement::Show(MASKING_POLICIES)
        );
    }
}
