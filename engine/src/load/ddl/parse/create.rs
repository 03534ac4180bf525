//! Parsing `CREATE ...` statements (roles, tags, masking and row access
//! policies, functions, views, tables, schemas).

use datafusion::sql::sqlparser::tokenizer::Token;

use crate::model::*;

use super::*;

pub(super) fn create(p: &mut P<'_>) -> R<Ddl> {
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
