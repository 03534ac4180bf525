//! Names as PostgreSQL clients write them, read with Snowflake's rules.
//!
//! Veil's catalog shows an all-upper-case Snowflake name lower-case
//! ([`super::catalog::pg_name`]: `CUSTOMERS` is `customers`, as PostgreSQL
//! folds unquoted names), and tools that quote every identifier they read
//! from the catalog then send `"public"."customers"`. In Snowflake a quoted
//! name is exact, so before a statement goes to Veil's statement path a
//! quoted, all-lower-case identifier becomes the upper-case name it shows
//! (`"customers"` → `"CUSTOMERS"`); a name with any upper-case letter stays
//! exact, as the catalog shows it. Column aliases (`AS "count"`) keep their
//! text: they name the result, not an object.

use std::borrow::Cow;

use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// `sql` with quoted all-lower-case identifiers upper-cased (see above);
/// unchanged when there is none or it does not tokenize.
pub(crate) fn from_postgres(sql: &str) -> Cow<'_, str> {
    let Ok(mut tokens) = Tokenizer::new(&SnowflakeDialect {}, sql).tokenize() else {
        return Cow::Borrowed(sql);
    };
    let mut changed = false;
    let mut previous: Option<usize> = None;
    for i in 0..tokens.len() {
        let after_as = previous.is_some_and(|p| {
            matches!(&tokens[p], Token::Word(w) if w.keyword == Keyword::AS && w.quote_style.is_none())
        });
        if let Token::Word(w) = &mut tokens[i]
            && w.quote_style == Some('"')
            && !after_as
            && !w.value.is_empty()
            && !w.value.chars().any(|c| c.is_uppercase())
            && w.value.chars().any(|c| c.is_lowercase())
        {
            w.value = w.value.to_uppercase();
            changed = true;
        }
        if !matches!(tokens[i], Token::Whitespace(_)) {
            previous = Some(i);
        }
    }
    if !changed {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(tokens.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lower_case_names_are_the_upper_case_objects() {
        assert_eq!(
            from_postgres(
                r#"SELECT "public"."customers"."name" AS "name_1" FROM "public"."customers" LIMIT 10"#
            ),
            r#"SELECT "PUBLIC"."CUSTOMERS"."NAME" AS "name_1" FROM "PUBLIC"."CUSTOMERS" LIMIT 10"#
        );
        assert_eq!(
            from_postgres(r#"SELECT "MixedCase", 'it''s "x"' FROM t -- "c""#),
            r#"SELECT "MixedCase", 'it''s "x"' FROM t -- "c""#
        );
        assert!(matches!(
            from_postgres("SELECT id FROM customers"),
            Cow::Borrowed(_)
        ));
    }
}
