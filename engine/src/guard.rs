//! What one statement may cost before it reaches a parser or planner, and
//! what of a failure a user may see.
//!
//! A service embedding Veil must never go down on a user's SQL. Three kinds
//! of input would take it down or hold it for minutes, and each is bounded
//! here before it reaches sqlparser or DataFusion:
//! - deep nesting: sqlparser backtracks exponentially through some nested
//!   constructs (`CAST(CAST(...(1)))` without `AS`, `CASE(`, `POSITION(`),
//!   and unclosed parentheses; [`scan_tokens`] refuses unbalanced
//!   parentheses and bounds nesting on the tokens, before parsing;
//! - long chains: `a OR b OR ...` parses into a left-deep tree that
//!   DataFusion plans in quadratic time and recurses through;
//!   [`shape_statement`] rebalances `AND`/`OR` chains (the same operands in
//!   the same order, so the same result) and bounds expression depth,
//!   subquery nesting and CTE count with a complexity error;
//! - panics: [`on_planning_stack`] runs parsing and planning on a thread
//!   with a known, large stack and turns a panic into an error, and
//!   [`catch_panics`] does the same for execution.
//!
//! [`user_error`] is the one sanitizer between an error and a user: no plan
//! text, no policy internals, no file paths.

use std::future::Future;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, Statement, Value, ValueWithSpan, Visit, VisitMut,
    Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use futures::FutureExt;

use crate::error::{Result, VeilError};

/// Deepest parenthesis nesting a statement may have.
pub const MAX_PAREN_DEPTH: usize = 40;
/// Deepest nesting of the constructs sqlparser backtracks through
/// (`CAST(`, `TRY_CAST(`, `CASE(`, `POSITION(`, `OVERLAY(`, ...): each
/// level doubles the parse time of a malformed input.
pub const MAX_BACKTRACKING_DEPTH: usize = 10;
/// Deepest expression tree (after `AND`/`OR` chains are rebalanced).
pub const MAX_EXPR_DEPTH: usize = 256;
/// Deepest nesting of subqueries inside expressions (DataFusion's
/// decorrelation is exponential in it).
pub const MAX_SUBQUERY_DEPTH: usize = 10;
/// Longest chain of set operations (`UNION ALL` branches).
pub const MAX_SET_BRANCHES: usize = 1000;
/// Most common table expressions in one statement.
pub const MAX_CTES: usize = 256;
/// Largest `LIMIT`/`OFFSET` kept as written; a larger one is dropped (no
/// table is that big, so the result is the same).
pub const MAX_LIMIT: u64 = 1 << 40;
/// Stack size of the thread user statements are parsed and planned on.
pub const PLANNING_STACK: usize = 256 * 1024 * 1024;

/// Words after which sqlparser tries one parse and, on failure, backtracks
/// and tries another over the same tokens.
const BACKTRACKING: &[&str] = &[
    "CAST",
    "TRY_CAST",
    "SAFE_CAST",
    "CASE",
    "POSITION",
    "OVERLAY",
    "CONVERT",
    "TRY_CONVERT",
];

fn too_complex(what: String) -> VeilError {
    VeilError::Refused(format!(
        "The statement is too complex for Veil: {what}; simplify it or split it into smaller queries."
    ))
}

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

/// Rebalances long `AND`/`OR` chains, drops absurd `LIMIT`s, and refuses
/// statements deeper or larger than the limits. Run it on the planning
/// stack: it recurses as deep as the statement.
pub fn shape_statement(statement: &mut Statement) -> Result<()> {
    let _ = VisitMut::visit(statement, &mut Shape);
    let mut depth = Depth::default();
    if let ControlFlow::Break(e) = Visit::visit(&*statement, &mut depth) {
        return Err(e);
    }
    Ok(())
}

struct Shape;

impl VisitorMut for Shape {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::BinaryOp { op, .. } = expr
            && matches!(op, BinaryOperator::And | BinaryOperator::Or)
        {
            let op = op.clone();
            let mut operands = Vec::new();
            flatten(std::mem::replace(expr, placeholder()), &op, &mut operands);
            if operands.len() > 2 {
                *expr = balanced(operands, &op);
            } else {
                *expr = rebuild(operands, &op);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(limit) = &mut query.limit_clause {
            use datafusion::sql::sqlparser::ast::LimitClause;
            let absurd = |e: &Expr| match e {
                Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) => n.parse::<u64>().map_or(true, |n| n > MAX_LIMIT),
                _ => false,
            };
            if let LimitClause::LimitOffset {
                limit: l @ Some(_), ..
            } = limit
                && l.as_ref().is_some_and(absurd)
            {
                *l = None;
            }
        }
        ControlFlow::Continue(())
    }
}

fn placeholder() -> Expr {
    Expr::Value(Value::Null.into())
}

/// The operands of a chain of `op`, left to right (nested parentheses of
/// the same operator included: `AND`/`OR` are associative).
fn flatten(expr: Expr, op: &BinaryOperator, out: &mut Vec<Expr>) {
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if o == *op => {
                stack.push(*right);
                stack.push(*left);
            }
            Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: o, .. } if o == op) =>
            {
                stack.push(*inner);
            }
            other => out.push(other),
        }
    }
}

fn rebuild(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    let right = operands.pop().unwrap_or_else(placeholder);
    match operands.pop() {
        Some(left) => Expr::BinaryOp {
            left: Box::new(left),
            op: op.clone(),
            right: Box::new(right),
        },
        None => right,
    }
}

/// A balanced tree of `op` over `operands`, in order: depth log2(n). The
/// top is a bare operation (so the walk that built it does not rebuild it
/// again); subtrees are parenthesized, as they print.
fn balanced(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    if operands.len() <= 2 {
        return rebuild(operands, op);
    }
    let right = operands.split_off(operands.len() / 2);
    let side = |operands: Vec<Expr>| match operands.len() {
        1 => rebuild(operands, op),
        _ => Expr::Nested(Box::new(balanced(operands, op))),
    };
    Expr::BinaryOp {
        left: Box::new(side(operands)),
        op: op.clone(),
        right: Box::new(side(right)),
    }
}

#[derive(Default)]
struct Depth {
    expr: usize,
    /// Expression depth at which each enclosing query began.
    queries: Vec<usize>,
    subqueries: usize,
    ctes: usize,
}

impl Visitor for Depth {
    type Break = VeilError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<VeilError> {
        if self.expr > 0 {
            self.subqueries += 1;
        }
        self.queries.push(self.expr);
        self.expr = 0;
        if self.subqueries > MAX_SUBQUERY_DEPTH {
            return ControlFlow::Break(too_complex(format!(
                "subqueries nest more than {MAX_SUBQUERY_DEPTH} deep"
            )));
        }
        if let Some(with) = &query.with {
            if with.recursive {
                return ControlFlow::Break(VeilError::Refused(
                    "Recursive CTEs (WITH RECURSIVE) are not supported in Veil user queries."
                        .to_string(),
                ));
            }
            self.ctes += with.cte_tables.len();
            if self.ctes > MAX_CTES {
                return ControlFlow::Break(too_complex(format!(
                    "it defines more than {MAX_CTES} common table expressions"
                )));
            }
        }
        if let SetExpr::SetOperation { .. } = query.body.as_ref() {
            // Each branch of a long UNION is a level of the set-operation
            // tree; bound it like an expression.
            let branches = set_operation_depth(&query.body);
            if branches > MAX_SET_BRANCHES {
                return ControlFlow::Break(too_complex(format!(
                    "a set operation (UNION, INTERSECT, EXCEPT) chains more than {MAX_SET_BRANCHES} branches"
                )));
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<VeilError> {
        self.expr = self.queries.pop().unwrap_or_default();
        if self.expr > 0 {
            self.subqueries = self.subqueries.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<VeilError> {
        self.expr += 1;
        if self.expr > MAX_EXPR_DEPTH {
            return ControlFlow::Break(too_complex(format!(
                "an expression nests more than {MAX_EXPR_DEPTH} operations deep"
            )));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<VeilError> {
        self.expr = self.expr.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

/// Depth of a set-operation tree, without recursing through it.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut depth = 0;
    let mut stack = vec![(body, 1usize)];
    while let Some((e, d)) = stack.pop() {
        depth = depth.max(d);
        if let SetExpr::SetOperation { left, right, .. } = e {
            stack.push((left, d + 1));
            stack.push((right, d + 1));
        }
    }
    depth
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

thread_local! {
    /// Set on the threads [`on_planning_stack`] and [`on_planning_thread`]
    /// start, whose stack is [`PLANNING_STACK`] bytes.
    static ON_PLANNING_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on a thread with [`PLANNING_STACK`] bytes of stack, so deep
/// (but within the limits) statements never overflow the caller's stack; a
/// panic in `f` becomes an error.
pub fn on_planning_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    // Already on a planning thread (a statement's check inside its
    // planning): its stack is the planning stack; catch panics here too.
    if ON_PLANNING_THREAD.get() {
        return std::panic::catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|panic| Err(panicked(&panic)));
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("veil-planner".into())
            .stack_size(PLANNING_STACK)
            .spawn_scoped(scope, || {
                ON_PLANNING_THREAD.set(true);
                f()
            })
            .map_err(|e| {
                VeilError::Refused(format!("Veil could not start a planning thread: {e}."))
            })?;
        handle.join().unwrap_or_else(|panic| Err(panicked(&panic)))
    })
}

/// Runs `f` on a new thread with [`PLANNING_STACK`] bytes of stack and
/// awaits its result without blocking the caller's runtime; `f` gets the
/// caller's tokio runtime handle to drive async planning. A panic in `f`
/// becomes an error.
pub async fn on_planning_thread<T: Send + 'static>(
    f: impl FnOnce(&tokio::runtime::Handle) -> T + Send + 'static,
) -> Result<T> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| VeilError::Refused("Veil sessions run inside a tokio runtime.".to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("veil-planner".into())
        .stack_size(PLANNING_STACK)
        .spawn(move || {
            ON_PLANNING_THREAD.set(true);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&handle)));
            let _ = tx.send(result);
        })
        .map_err(|e| VeilError::Refused(format!("Veil could not start a planning thread: {e}.")))?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(panicked(&panic)),
        Err(_) => Err(VeilError::Internal(
            "the planning thread ended without a result".into(),
        )),
    }
}

/// Awaits `future`, turning a panic in it into an error.
pub async fn catch_panics<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => Err(panicked(&panic)),
    }
}

pub(crate) fn panicked(panic: &Box<dyn std::any::Any + Send>) -> VeilError {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    VeilError::Internal(detail)
}

/// Markers of text a user must never see in an error: plan and policy
/// internals, Veil's internal function and column names, data file paths.
const INTERNAL_MARKERS: &[&str] = &[
    "Exec:",
    "Exec ",
    "PolicyBarrier",
    "veil_",
    "VEIL_MASK",
    "__veil",
    "file_groups",
    "projection=[",
    "predicate=",
    ".csv",
    ".parquet",
    ".json",
    ".arrow",
    "LogicalPlan",
    "TableScan",
    "Projection:",
    "Filter:",
];

/// The error as a user may see it: DataFusion's text only when it carries
/// no plan text, policy internals or paths; otherwise one sentence saying
/// what kind of failure it was. The full text is for the audit record.
pub fn user_error(e: VeilError) -> VeilError {
    match e {
        VeilError::DataFusion(inner) => {
            let text = inner.to_string();
            if leaks(&text) {
                VeilError::QueryFailed(
                    "The query failed inside Veil's enforcement; the details are in the audit record for administrators."
                        .to_string(),
                )
            } else {
                VeilError::DataFusion(inner)
            }
        }
        VeilError::Internal(_) => VeilError::QueryFailed(
            "The query hit an internal error in Veil and was stopped; the details are in the audit record for administrators."
                .to_string(),
        ),
        other => other,
    }
}

/// Whether error text shows something a user must not see.
pub fn leaks(text: &str) -> bool {
    let bytes = text.as_bytes();
    let path_or_column = bytes.windows(2).any(|w| {
        // `/work/...`, `./data`: a path; `name@3`: a physical column.
        (w[0] == b'/' && (w[1].is_ascii_alphanumeric() || w[1] == b'_' || w[1] == b'.'))
            || (w[0] == b'@' && w[1].is_ascii_digit())
    });
    INTERNAL_MARKERS.iter().any(|m| text.contains(m)) || path_or_column
}

/// Optimizer rule, last in every Veil session state: rebalances long
/// `AND`/`OR` chains in the plan's expressions. DataFusion's filter
/// pushdown splits conjunctions and joins them again left-deep, and
/// evaluating a 1 000-deep `AND` recurses 1 000 frames on whichever thread
/// runs the query; balanced, it is 10.
#[derive(Debug, Default)]
pub struct RebalanceBooleanChains;

impl datafusion::optimizer::OptimizerRule for RebalanceBooleanChains {
    fn name(&self) -> &str {
        "veil_rebalance_boolean_chains"
    }

    fn apply_order(&self) -> Option<datafusion::optimizer::ApplyOrder> {
        Some(datafusion::optimizer::ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &dyn datafusion::optimizer::OptimizerConfig,
    ) -> datafusion::common::Result<
        datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
    > {
        plan.map_expressions(rebalance_expr)
    }
}

/// Chains shorter than this are left as they are.
const REBALANCE_AT: usize = 8;

fn rebalance_expr(
    expr: datafusion::logical_expr::Expr,
) -> datafusion::common::Result<
    datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr>,
> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{BinaryExpr, Expr as DfExpr, Operator};
    fn chain_len(e: &DfExpr, op: Operator) -> usize {
        let mut n = 0;
        let mut stack = vec![e];
        while let Some(e) = stack.pop() {
            match e {
                DfExpr::BinaryExpr(b) if b.op == op => {
                    stack.push(&b.right);
                    stack.push(&b.left);
                }
                _ => n += 1,
            }
        }
        n
    }
    fn flatten(e: DfExpr, op: Operator, out: &mut Vec<DfExpr>) {
        let mut stack = vec![e];
        while let Some(e) = stack.pop() {
            match e {
                DfExpr::BinaryExpr(b) if b.op == op => {
                    stack.push(*b.right);
                    stack.push(*b.left);
                }
                other => out.push(other),
            }
        }
    }
    fn build(mut operands: Vec<DfExpr>, op: Operator) -> DfExpr {
        if operands.len() == 1 {
            return operands.remove(0);
        }
        let right = operands.split_off(operands.len() / 2);
        DfExpr::BinaryExpr(BinaryExpr::new(
            Box::new(build(operands, op)),
            op,
            Box::new(build(right, op)),
        ))
    }
    fn is_balanced(e: &DfExpr, op: Operator, n: usize) -> bool {
        // Depth of the chain's leftmost spine: log2(n) + 1 when balanced.
        let mut depth = 0;
        let mut cur = e;
        while let DfExpr::BinaryExpr(b) = cur {
            if b.op != op {
                break;
            }
            depth += 1;
            cur = &b.left;
        }
        depth <= (usize::BITS - n.leading_zeros()) as usize
    }
    expr.transform_down(|e| match &e {
        DfExpr::BinaryExpr(b) if matches!(b.op, Operator::And | Operator::Or) => {
            let op = b.op;
            let n = chain_len(&e, op);
            if n < REBALANCE_AT || is_balanced(&e, op, n) {
                return Ok(Transformed::no(e));
            }
            let mut operands = Vec::with_capacity(n);
            flatten(e, op, &mut operands);
            Ok(Transformed::yes(build(operands, op)))
        }
        _ => Ok(Transformed::no(e)),
    })
}

/// Physical optimizer rule, last in every Veil session state: the same
/// rebalancing for filter predicates, after DataFusion's physical filter
/// pushdown has joined conjunctions again.
#[derive(Debug, Default)]
pub struct RebalanceFilterPredicates;

impl datafusion::physical_optimizer::PhysicalOptimizerRule for RebalanceFilterPredicates {
    fn optimize(
        &self,
        plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> datafusion::common::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>
    {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            match rebalance_physical(filter.predicate()) {
                None => Ok(Transformed::no(node)),
                Some(predicate) => {
                    let rebuilt = FilterExecBuilder::from(filter)
                        .with_predicate(predicate)
                        .build()?;
                    Ok(Transformed::yes(std::sync::Arc::new(rebuilt) as _))
                }
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "veil_rebalance_filter_predicates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

type PhysExpr = std::sync::Arc<dyn datafusion::physical_plan::PhysicalExpr>;

/// `predicate` with every long `AND`/`OR` chain balanced, or `None` when
/// nothing changed.
fn rebalance_physical(predicate: &PhysExpr) -> Option<PhysExpr> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::BinaryExpr;
    fn chain_op(e: &PhysExpr) -> Option<Operator> {
        let b = e.downcast_ref::<BinaryExpr>()?;
        matches!(b.op(), Operator::And | Operator::Or).then_some(*b.op())
    }
    fn flatten(e: &PhysExpr, op: Operator) -> Vec<PhysExpr> {
        let mut out = Vec::new();
        let mut stack = vec![std::sync::Arc::clone(e)];
        while let Some(e) = stack.pop() {
            match e.downcast_ref::<BinaryExpr>() {
                Some(b) if *b.op() == op => {
                    stack.push(std::sync::Arc::clone(b.right()));
                    stack.push(std::sync::Arc::clone(b.left()));
                }
                _ => out.push(e),
            }
        }
        out
    }
    fn spine(e: &PhysExpr, op: Operator) -> usize {
        let mut depth = 0;
        let mut cur = std::sync::Arc::clone(e);
        loop {
            let next = match cur.downcast_ref::<BinaryExpr>() {
                Some(b) if *b.op() == op => std::sync::Arc::clone(b.left()),
                _ => return depth,
            };
            depth += 1;
            cur = next;
        }
    }
    fn build(mut operands: Vec<PhysExpr>, op: Operator) -> PhysExpr {
        if operands.len() == 1 {
            return operands.remove(0);
        }
        let right = operands.split_off(operands.len() / 2);
        std::sync::Arc::new(BinaryExpr::new(build(operands, op), op, build(right, op)))
    }
    let rewritten = std::sync::Arc::clone(predicate)
        .transform_down(|e| {
            let Some(op) = chain_op(&e) else {
                return Ok(Transformed::no(e));
            };
            let operands = flatten(&e, op);
            let n = operands.len();
            let balanced_depth = (usize::BITS - n.leading_zeros()) as usize;
            if n < REBALANCE_AT || spine(&e, op) <= balanced_depth {
                return Ok(Transformed::no(e));
            }
            Ok(Transformed::yes(build(operands, op)))
        })
        .ok()?;
    rewritten.transformed.then_some(rewritten.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::parse_statements;

    #[test]
    fn unbalanced_parentheses_are_syntax_errors_before_parsing() {
        let e = parse_statements(&format!("select {}1", "exists (".repeat(30))).unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
        let e = parse_statements("select 1)").unwrap_err();
        assert!(e.to_string().contains("closes nothing"), "{e}");
    }

    #[test]
    fn planning_stack_is_reused_on_a_planning_thread() {
        let outer = on_planning_stack(|| {
            let here = std::thread::current().id();
            let inner = on_planning_stack(|| Ok(std::thread::current().id()))?;
            // A panic in the nested call is still an error, not an unwind.
            let panicked = on_planning_stack::<()>(|| panic!("nested"));
            Ok((here, inner, panicked.is_err()))
        })
        .unwrap();
        assert_eq!(outer.0, outer.1, "a second planning thread was started");
        assert!(outer.2);
        assert_ne!(outer.0, std::thread::current().id());
    }

    #[test]
    fn backtracking_constructs_are_bounded() {
        let sql = format!("select {}1{}", "cast(".repeat(20), ")".repeat(20));
        let started = std::time::Instant::now();
        let e = parse_statements(&sql).unwrap_err();
        assert!(e.to_string().contains("too complex"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn or_chains_are_rebalanced_in_order() {
        let sql = format!(
            "select 1 where {}",
            (0..1000)
                .map(|i| format!("a = {i}"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
        let mut stmt = parse_statements(&sql).unwrap().remove(0);
        on_planning_stack(move || {
            shape_statement(&mut stmt)?;
            let text = stmt.to_string();
            let order: Vec<usize> = text
                .split("A = ")
                .skip(1)
                .map(|s| {
                    s.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!(order, (0..1000).collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn deep_expressions_are_refused() {
        let sql = format!("select {}", vec!["1"; 10_000].join("+"));
        let mut stmt = parse_statements(&sql).unwrap().remove(0);
        let e = on_planning_stack(move || shape_statement(&mut stmt)).unwrap_err();
        assert!(e.to_string().contains("expression nests more than"), "{e}");
    }

    #[test]
    fn absurd_limits_are_dropped() {
        let mut stmt = parse_statements("select a from t order by a limit 9223372036854775807")
            .unwrap()
            .remove(0);
        shape_statement(&mut stmt).unwrap();
        assert!(!stmt.to_string().contains("LIMIT"), "{stmt}");
        let mut stmt = parse_statements("select a from t limit 10")
            .unwrap()
            .remove(0);
        shape_statement(&mut stmt).unwrap();
        assert!(stmt.to_string().contains("LIMIT 10"), "{stmt}");
    }

    #[test]
    fn panics_become_errors() {
        let e = on_planning_stack::<()>(|| panic!("boom")).unwrap_err();
        assert!(
            matches!(e, VeilError::Internal(ref d) if d == "boom"),
            "{e:?}"
        );
    }

    #[test]
    fn plan_text_and_paths_never_reach_users() {
        for text in [
            "SanityCheckPlan\n  PolicyBarrierExec: table=X",
            "error reading /data/customers.csv",
            "veil_mask_hash(NAME, ...)",
        ] {
            assert!(leaks(text), "{text}");
        }
        assert!(!leaks("Schema error: No field named FOO."));
    }
}
