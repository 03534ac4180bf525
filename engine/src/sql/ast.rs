//! Small sqlparser AST builders the renderers and the function translation
//! share: the folded-or-expression boolean `B`, `AND`/`OR`/`NOT`, literals,
//! calls, `CASE`, raw and profile columns.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, UnaryOperator, Value,
};

use crate::sql::ident::quoted;

/// A rendered boolean: folded (inlined mode) or an expression. Short-lived,
/// so the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum B {
    Lit(bool),
    E(Expr),
}

impl B {
    pub(crate) fn into_expr(self) -> Expr {
        match self {
            B::Lit(b) => Expr::Value(Value::Boolean(b).with_empty_span()),
            B::E(e) => e,
        }
    }
}

/// `e` in parentheses unless it is atomic.
pub(crate) fn nested(e: Expr) -> Expr {
    match e {
        Expr::Value(_)
        | Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Function(_)
        | Expr::Nested(_) => e,
        other => Expr::Nested(Box::new(other)),
    }
}

pub(crate) fn and(parts: Vec<B>) -> B {
    let mut exprs = Vec::new();
    for p in parts {
        match p {
            B::Lit(false) => return B::Lit(false),
            B::Lit(true) => {}
            B::E(e) => exprs.push(e),
        }
    }
    fold(exprs, BinaryOperator::And).map_or(B::Lit(true), B::E)
}

pub(crate) fn or(parts: Vec<B>) -> B {
    let mut exprs = Vec::new();
    for p in parts {
        match p {
            B::Lit(true) => return B::Lit(true),
            B::Lit(false) => {}
            B::E(e) => exprs.push(e),
        }
    }
    fold(exprs, BinaryOperator::Or).map_or(B::Lit(false), B::E)
}

pub(crate) fn fold(exprs: Vec<Expr>, op: BinaryOperator) -> Option<Expr> {
    exprs
        .into_iter()
        .map(nested)
        .reduce(|left, right| Expr::BinaryOp {
            left: Box::new(left),
            op: op.clone(),
            right: Box::new(right),
        })
}

pub(crate) fn not(b: B) -> B {
    match b {
        B::Lit(v) => B::Lit(!v),
        B::E(e) => B::E(Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: Box::new(nested(e)),
        }),
    }
}

pub(crate) fn string(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).with_empty_span())
}

pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

pub(crate) fn number(n: &str) -> Expr {
    Expr::Value(Value::Number(n.to_string(), false).with_empty_span())
}

pub(crate) fn null() -> Expr {
    Expr::Value(Value::Null.with_empty_span())
}

pub(crate) fn eq(left: Expr, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::Eq,
        right: Box::new(right),
    }
}

/// `CASE WHEN condition THEN then ELSE otherwise END`.
pub(crate) fn case(condition: Expr, then: Expr, otherwise: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: then,
        }],
        else_result: Some(Box::new(otherwise)),
    }
}

/// `t."COLUMN"`: a raw column of the table inside a policy relation.
pub(crate) fn raw(column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![quoted("t"), quoted(column)])
}

pub(crate) fn profile_col(name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![quoted("p"), quoted(name)])
}
