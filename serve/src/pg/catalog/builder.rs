//! Building a catalog table row by row.

use super::*;

/// Columns of one catalog table, built row by row.
pub(super) struct TableBuilder {
    fields: Vec<Field>,
    columns: Vec<Vec<ScalarValue>>,
}

impl TableBuilder {
    pub(super) fn new(fields: &[(&str, DataType)]) -> Self {
        Self {
            fields: fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect(),
            columns: vec![Vec::new(); fields.len()],
        }
    }

    pub(super) fn row(&mut self, values: Vec<ScalarValue>) {
        for (c, v) in self.columns.iter_mut().zip(values) {
            c.push(v);
        }
    }

    pub(super) fn build(self) -> DfResult<Arc<MemTable>> {
        let schema = Arc::new(Schema::new(self.fields));
        let arrays = self
            .columns
            .into_iter()
            .zip(schema.fields())
            .map(|(values, f)| {
                if values.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(f.data_type()))
                } else {
                    ScalarValue::iter_to_array(values)
                }
            })
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

pub(super) fn s(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.to_string()))
}
pub(super) fn i8v(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}
pub(super) fn i4v(v: i32) -> ScalarValue {
    ScalarValue::Int32(Some(v))
}
pub(super) fn i2v(v: i16) -> ScalarValue {
    ScalarValue::Int16(Some(v))
}
pub(super) fn b(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}
/// A PostgreSQL array of text (`text[]`, `aclitem[]`).
pub(super) fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

pub(super) fn null_s() -> ScalarValue {
    ScalarValue::Utf8(None)
}
