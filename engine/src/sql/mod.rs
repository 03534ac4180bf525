//! Snowflake SQL as Veil reads and builds it, below everything that plans:
//! - [`ident`]: the identifier rule (SPEC rule 24) and the parser
//!   constructor every statement, expression and DDL script goes through;
//! - [`ast`]: the sqlparser AST builders the renderers and the function
//!   translation share;
//! - [`snowflake`]: Snowflake functions DataFusion lacks, translated into
//!   DataFusion's equivalents;
//! - [`gate`]: the statement gate (which statements users may run, which
//!   tables a query names, internal functions refused) and the printable
//!   rewrite `explain` shows;
//! - [`admin`]: the administrators' statement gate (`EXECUTE USING
//!   POLICY_CONTEXT`, `SHOW ... POLICIES`, `CREATE TABLE ... AS SELECT`,
//!   `INSERT INTO ... SELECT`);
//! - [`lineage`]: the column lineage of a planned query.

pub mod admin;
pub mod ast;
pub mod gate;
pub mod ident;
pub mod lineage;
pub mod snowflake;
