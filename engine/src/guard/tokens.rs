//! Before parsing: parentheses must balance, and nesting is bounded on the
//! tokens (sqlparser backtracks exponentially through nested `CAST(`,
//! `CASE(`, `POSITION(` ...); and which words may start a statement.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::{BACKTRACKING, MAX_BACKTRACKING_DEPTH, MAX_PAREN_DEPTH, too_complex};
use crate::error::{Result, VeilError};

/// Refuses, before parsing, token streams whose parentheses do not balance
/// or nest deeper than the limits.
pub fn scan_tokens(tokens: &[TokenWithSpan]) -> Result<()> {
    check_balance(tokens)?;
    // Open parentheses, each with whether a backtracking word precedes it.
    let mut open: Vec<(&TokenWithSpan, bool)> = Vec::new();
    let mut backtracking = 0usize;
    let mut previous: Option<&Token> = None;
    for t in tokens {
        match &t.token {
            Token::LParen => {
                let risky = matches!(previous, Some(Token::Word(w))
                    if w.quote_style.is_none()
                        && BACKTRACKING.iter().any(|k| w.value.eq_ignore_ascii_case(k)));
                open.push((t, risky));
                if risky {
                    backtracking += 1;
                }
                if open.len() > MAX_PAREN_DEPTH {
                    return Err(too_complex(format!(
                        "parentheses nest more than {MAX_PAREN_DEPTH} deep at line {}, column {}",
                        t.span.start.line, t.span.start.column
                    )));
                }
                if backtracking > MAX_BACKTRACKING_DEPTH {
                    return Err(too_complex(format!(
                        "CAST, CASE, POSITION and similar calls nest more than {MAX_BACKTRACKING_DEPTH} deep at line {}, column {}",
                        t.span.start.line, t.span.start.column
                    )));
                }
            }
            Token::RParen => {
                if let Some((_, true)) = open.pop() {
                    backtracking -= 1;
                }
            }
            Token::Whitespace(_) => continue,
            _ => {}
        }
        previous = Some(&t.token);
    }
    Ok(())
}

/// Parentheses balance, or a syntax error naming the first that does not.
fn check_balance(tokens: &[TokenWithSpan]) -> Result<()> {
    let mut open: Vec<&TokenWithSpan> = Vec::new();
    for t in tokens {
        match &t.token {
            Token::LParen => open.push(t),
            Token::RParen if open.pop().is_none() => {
                return Err(VeilError::Parse(format!(
                    "unbalanced parentheses: ')' at line {}, column {} closes nothing",
                    t.span.start.line, t.span.start.column
                )));
            }
            _ => {}
        }
    }
    match open.first() {
        Some(t) => Err(VeilError::Parse(format!(
            "unbalanced parentheses: '(' at line {}, column {} is never closed",
            t.span.start.line, t.span.start.column
        ))),
        None => Ok(()),
    }
}

/// Words a statement can start with (Snowflake's statement kinds), so a
/// statement starting with any other word is a syntax error, not a refused
/// statement kind.
pub fn is_statement_word(word: &str) -> bool {
    const WORDS: &[&str] = &[
        "SELECT",
        "WITH",
        "VALUES",
        "EXPLAIN",
        "SHOW",
        "DESCRIBE",
        "DESC",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "CREATE",
        "ALTER",
        "DROP",
        "UNDROP",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "SET",
        "UNSET",
        "USE",
        "COPY",
        "PUT",
        "GET",
        "REMOVE",
        "LIST",
        "CALL",
        "EXECUTE",
        "BEGIN",
        "START",
        "COMMIT",
        "ROLLBACK",
        "COMMENT",
        "UNLOAD",
        "ANALYZE",
        "CACHE",
        "DECLARE",
        "PREPARE",
        "DEALLOCATE",
        "LOAD",
        "KILL",
        "REPLACE",
        "UPSERT",
        "RENAME",
        "LOCK",
        "VACUUM",
        "OPTIMIZE",
        "REFRESH",
        "MSCK",
        "ATTACH",
        "DETACH",
        "PRAGMA",
        "INSTALL",
        "RESET",
        "SAVEPOINT",
        "RELEASE",
        "DISCARD",
        "FLUSH",
        "CLOSE",
        "FETCH",
        "DEFAULT",
        "RETURN",
        "RAISE",
        "ASSERT",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "TABLE",
        "FROM",
    ];
    let upper = word.to_ascii_uppercase();
    WORDS.contains(&upper.as_str())
}

#[cfg(test)]
mod tests {
    use crate::sql::ident::parse_statements;

    #[test]
    fn unbalanced_parentheses_are_syntax_errors_before_parsing() {
        let e = parse_statements(&format!("select {}1", "exists (".repeat(30))).unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
        let e = parse_statements("select 1)").unwrap_err();
        assert!(e.to_string().contains("closes nothing"), "{e}");
    }

    #[test]
    fn backtracking_constructs_are_bounded() {
        let sql = format!("select {}1{}", "cast(".repeat(20), ")".repeat(20));
        let started = std::time::Instant::now();
        let e = parse_statements(&sql).unwrap_err();
        assert!(e.to_string().contains("too complex"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
