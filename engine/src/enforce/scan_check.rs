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

use crate::enforce::PolicyTable;

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::common::config::ConfigOptions;
    use datafusion::datasource::{MemTable, provider_as_source};
    use datafusion::logical_expr::LogicalPlanBuilder;
    use datafusion::optimizer::AnalyzerRule;

    use super::*;
    use crate::enforce::Engine;

    fn sample() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
    }

    #[tokio::test]
    async fn policy_scan_check_rejects_raw_scans() {
        let batch =
            RecordBatch::try_from_iter(vec![("A", Arc::new(Int64Array::from(vec![1])) as _)])
                .unwrap();
        let raw = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        let plan = LogicalPlanBuilder::scan("RAW", provider_as_source(Arc::new(raw)), None)
            .unwrap()
            .build()
            .unwrap();
        let err = PolicyScanCheck
            .analyze(plan, &ConfigOptions::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("is not read through its policy relation"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn policy_scan_check_passes_policy_relations_twice() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let plan = bob
            .logical_plan("SELECT c.ssn FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id IN (SELECT id FROM customers)")
            .await
            .unwrap();
        let once = PolicyScanCheck
            .analyze(plan.clone(), &ConfigOptions::default())
            .unwrap();
        let twice = PolicyScanCheck
            .analyze(once.clone(), &ConfigOptions::default())
            .unwrap();
        assert_eq!(plan, twice);
    }
}
