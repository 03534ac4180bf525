//! Snowflake SQL as Veil builds it. So far: the sqlparser AST builders the
//! renderers and the Snowflake-to-DataFusion function translation share
//! ([`ast`]). The parser constructor and the identifier rule
//! ([`crate::ident`]) and the statement gate with the function translation
//! ([`crate::rewrite`]) sit in this same layer and move in here next.

pub mod ast;
