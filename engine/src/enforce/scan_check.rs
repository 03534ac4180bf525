//! The second line of defence: an analyzer rule that fails any user plan
//! scanning something other than a policy relation. It only checks, so
//! plans analyzed twice (extended protocols, distributed planners) are
//! unaffected.

use datafusion::common::config::ConfigOptions;
use datafusion::common::plan_err;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::AnalyzerRule;

use crate::session::PolicyTable;

/// Analyzer rule that fails any user plan reading a table that is not a
/// policy relation. Checks only, so running it twice changes nothing.
#[derive(Debug)]
pub struct PolicyScanCheck;

impl AnalyzerRule for PolicyScanCheck {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &ConfigOptions,
    ) -> datafusion::common::Result<LogicalPlan> {
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let provider = source_as_provider(&scan.source)?;
                if !provider.is::<PolicyTable>() {
                    return plan_err!(
                        "Veil denied the query: {} is not read through its policy relation",
                        scan.table_name
                    );
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "veil_policy_scan_check"
    }
}
