//! Optimizer rules, last in every Veil session state, that rebalance long
//! `AND`/`OR` chains again after DataFusion's optimizers (logical and
//! physical) have joined conjunctions left-deep.

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
