//! `VEIL.SYSTEM.USER_PROFILE` and `VEIL.SYSTEM.USER_VALUES` as tables that
//! answer a lookup by user name with that user's rows alone: every
//! profile-join policy relation reads `WHERE "USER_NAME" = current_user()`,
//! which planning folds to a literal and pushes into this scan, so a query
//! costs the same with 100 000 users as with 1 000 (a plain in-memory table
//! would hand all rows, and their statistics, to every plan).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// The profile column a lookup filters on.
const KEY: &str = "USER_NAME";

/// Rows indexed by user name.
pub(crate) struct ProfileTable {
    all: RecordBatch,
    rows: HashMap<String, Vec<u32>>,
}

impl fmt::Debug for ProfileTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileTable")
            .field("users", &self.rows.len())
            .finish()
    }
}

impl ProfileTable {
    /// The table of `batch` (rows of users named in `USER_NAME`).
    pub(crate) fn new(batch: RecordBatch) -> Self {
        let mut rows: HashMap<String, Vec<u32>> = HashMap::with_capacity(batch.num_rows());
        if let Some(names) = batch
            .column_by_name(KEY)
            .and_then(|c| c.as_string_opt::<i32>())
        {
            for (i, name) in names.iter().enumerate() {
                if let Some(name) = name {
                    rows.entry(name.to_string()).or_default().push(i as u32);
                }
            }
        }
        Self { all: batch, rows }
    }

    /// The user name `filter` looks up (`USER_NAME = 'x'`), if that is
    /// what it is.
    fn lookup(filter: &Expr) -> Option<&str> {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = filter
        else {
            return None;
        };
        let (column, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        match value {
            ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) if column.name == KEY => {
                Some(s)
            }
            _ => None,
        }
    }
}

#[async_trait]
impl TableProvider for ProfileTable {
    fn schema(&self) -> SchemaRef {
        self.all.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match Self::lookup(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Every lookup must hold: each narrows the rows to one name.
        let mut batch = self.all.clone();
        let mut names = filters.iter().filter_map(Self::lookup);
        if let Some(first) = names.next() {
            let consistent = names.all(|n| n == first);
            batch = match self.rows.get(first) {
                Some(indices) if consistent => {
                    take_record_batch(&self.all, &UInt32Array::from(indices.clone()))?
                }
                _ => self.all.slice(0, 0),
            };
        }
        let partitions = vec![vec![batch]];
        Ok(MemorySourceConfig::try_new_exec(
            &partitions,
            self.all.schema(),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::{SessionContext, ident, lit};

    #[tokio::test]
    async fn a_lookup_reads_one_row_and_anything_else_reads_all() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(KEY, DataType::Utf8, false),
            Field::new("N", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["ANN", "BOB", "CY", "BOB"])) as ArrayRef,
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("p", Arc::new(ProfileTable::new(batch)))
            .unwrap();
        let count = |df: datafusion::dataframe::DataFrame| async move {
            df.collect()
                .await
                .unwrap()
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
        };
        let p = || async { ctx.table("p").await.unwrap() };
        let rows = |name: &'static str| async move {
            count(p().await.filter(ident(KEY).eq(lit(name))).unwrap()).await
        };
        // BOB has two rows (as in USER_VALUES), ANN one, ZED none.
        assert_eq!(rows("BOB").await, 2);
        assert_eq!(rows("ANN").await, 1);
        assert_eq!(rows("ZED").await, 0);
        assert_eq!(
            count(p().await.filter(lit("ANN").eq(ident(KEY))).unwrap()).await,
            1
        );
        let both = ident(KEY).eq(lit("BOB")).and(ident(KEY).eq(lit("ANN")));
        assert_eq!(count(p().await.filter(both).unwrap()).await, 0);
        assert_eq!(
            count(p().await.filter(ident("N").gt(lit(1))).unwrap()).await,
            3
        );
        assert_eq!(count(p().await).await, 4);
    }
}
