//! `VEIL.SYSTEM.USER_PROFILE` and `VEIL.SYSTEM.USER_VALUES` as tables that
//! answer a lookup by user name with that user's rows alone: every
//! profile-join policy relation reads `WHERE "USER_NAME" = current_user()`,
//! which planning folds to a literal and pushes into this scan, so a query
//! costs the same with 100 000 users as with 1 000 (a plain in-memory table
//! would hand all rows, and their statistics, to every plan).
//!
//! A lookup builds its user's rows from the workspace when it is planned;
//! every user's rows are built only when a scan without a lookup needs them
//! (an administrator reading the whole table), once per version: loading a
//! workspace of 100 000 users does not build (and zero the memory of) two
//! tables of all of them that most versions never read whole.

use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// The profile column a lookup filters on.
const KEY: &str = "USER_NAME";

/// A profile table's rows: those of the named user (`Some`), or of every
/// user (`None`); each with the table's schema.
pub(crate) type Rows = dyn Fn(Option<&str>) -> Result<RecordBatch> + Send + Sync;

/// Rows looked up by user name, built on demand.
pub(crate) struct ProfileTable {
    schema: SchemaRef,
    rows: Box<Rows>,
    all: OnceLock<RecordBatch>,
}

impl fmt::Debug for ProfileTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileTable")
            .field("schema", &self.schema)
            .finish()
    }
}

impl ProfileTable {
    /// The table of `schema` whose rows `rows` builds.
    pub(crate) fn new(schema: SchemaRef, rows: Box<Rows>) -> Self {
        Self {
            schema,
            rows,
            all: OnceLock::new(),
        }
    }

    /// Every user's rows, built by the first scan that needs them.
    fn all(&self) -> Result<RecordBatch> {
        if let Some(all) = self.all.get() {
            return Ok(all.clone());
        }
        let all = (self.rows)(None)?;
        Ok(self.all.get_or_init(|| all).clone())
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
        Arc::clone(&self.schema)
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
        let mut names = filters.iter().filter_map(Self::lookup);
        let batch = match names.next() {
            Some(first) if names.all(|n| n == first) => (self.rows)(Some(first))?,
            Some(_) => RecordBatch::new_empty(Arc::clone(&self.schema)),
            None => self.all()?,
        };
        let partitions = vec![vec![batch]];
        Ok(MemorySourceConfig::try_new_exec(
            &partitions,
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
    use datafusion::arrow::compute::filter_record_batch;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::{SessionContext, ident, lit};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_lookup_reads_one_row_and_anything_else_reads_all() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(KEY, DataType::Utf8, false),
            Field::new("N", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["ANN", "BOB", "CY", "BOB"])) as ArrayRef,
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        // The rows of a name, or all rows; counting how often all are built.
        let built_all = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&built_all);
        let rows = move |name: Option<&str>| {
            let Some(name) = name else {
                counter.fetch_add(1, Ordering::SeqCst);
                return Ok(batch.clone());
            };
            let names = batch.column(0).as_string::<i32>();
            let keep = BooleanArray::from_iter(names.iter().map(|n| Some(n == Some(name))));
            Ok(filter_record_batch(&batch, &keep)?)
        };
        let ctx = SessionContext::new();
        ctx.register_table("p", Arc::new(ProfileTable::new(schema, Box::new(rows))))
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
        // Lookups never build every row.
        assert_eq!(built_all.load(Ordering::SeqCst), 0);
        assert_eq!(
            count(p().await.filter(ident("N").gt(lit(1))).unwrap()).await,
            3
        );
        assert_eq!(count(p().await).await, 4);
        // Built once, for the first scan without a lookup.
        assert_eq!(built_all.load(Ordering::SeqCst), 1);
    }
}
