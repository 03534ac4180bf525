//! Parsing `ALTER TABLE | VIEW | TAG | MASKING POLICY | ROW ACCESS POLICY`
//! statements, including several column changes in one statement.

use datafusion::sql::sqlparser::tokenizer::Token;

use super::*;

/// Whether the next tokens start another item of a multi-column `ALTER
/// TABLE t MODIFY`: `, [COLUMN] c SET|UNSET ...`.
pub(super) fn another_column(p: &P<'_>) -> bool {
    let is = |n: usize, words: &[&str]| match &p.peek_nth_token(n).token {
        Token::Word(x) => x.quote_style.is_none() && words.contains(&x.value.as_str()),
        _ => false,
    };
    p.peek_token().token == Token::Comma && (is(1, &["COLUMN"]) || is(2, &["SET", "UNSET"]))
}

/// `[(] [COLUMN] c <change> [, [COLUMN] c2 <change> ...] [)]` after `ALTER
/// TABLE t MODIFY|ALTER`: one change, or [`Ddl::Each`] for several.
pub(super) fn alter_columns(p: &mut P<'_>, table: Vec<String>) -> R<Ddl> {
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

pub(super) fn alter_column(p: &mut P<'_>, table: Vec<String>) -> R<Ddl> {
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

pub(super) fn alter(p: &mut P<'_>) -> R<Ddl> {
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
pub(super) fn on_view(change: Ddl) -> R<Ddl> {
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
