//! Results in the shape Snowflake's connector reads: the `rowtype` column
//! descriptions, Arrow IPC streams whose fields carry Snowflake's metadata
//! (`logicalType`, `precision`, `scale`, `charLength`, `byteLength`,
//! `finalType`) and whose arrays use Snowflake's physical types (NUMBER as
//! scaled integers, TIMESTAMP_NTZ as scaled epoch integers, text as UTF-8),
//! JSON rowsets, and the split of a large result into an inline first chunk
//! and chunks the connector downloads.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Int64Type, Schema, SchemaRef, TimeUnit,
};
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};
use veil_engine::model::SnowflakeType;

use super::error::SfError;

/// The longest VARCHAR Snowflake has, and the length of text whose declared
/// length is unknown.
pub const MAX_TEXT_LENGTH: u64 = 16_777_216;

/// Snowflake's description of one result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// Column name.
    pub name: String,
    /// `FIXED`, `REAL`, `TEXT`, `BOOLEAN`, `DATE`, `TIMESTAMP_NTZ`,
    /// `TIMESTAMP_LTZ`, `TIME`, `BINARY`.
    pub logical: &'static str,
    /// NUMBER precision.
    pub precision: Option<u8>,
    /// NUMBER scale, or the fractional digits of times and timestamps.
    pub scale: Option<u8>,
    /// VARCHAR length in characters.
    pub length: Option<u64>,
    /// VARCHAR or BINARY length in bytes.
    pub byte_length: Option<u64>,
    /// What the arrays travel as.
    physical: DataType,
}

fn unit_scale(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

impl ColumnType {
    /// The Snowflake type of a result column of Arrow type `t`; `declared`
    /// is the declared type of the table column it shows, when known (for
    /// VARCHAR lengths and NUMBER precision).
    pub fn of(name: &str, t: &DataType, declared: Option<&SnowflakeType>) -> Self {
        let text_length = match declared {
            Some(SnowflakeType::Varchar(n)) => u64::from(*n),
            _ => MAX_TEXT_LENGTH,
        };
        let text = |physical: DataType| Self {
            name: name.to_string(),
            logical: "TEXT",
            precision: None,
            scale: None,
            length: Some(text_length),
            byte_length: Some((text_length * 4).min(MAX_TEXT_LENGTH)),
            physical,
        };
        let fixed = |precision: u8, scale: u8, physical: DataType| Self {
            name: name.to_string(),
            logical: "FIXED",
            precision: Some(precision),
            scale: Some(scale),
            length: None,
            byte_length: None,
            physical,
        };
        let simple = |logical: &'static str, scale: Option<u8>, physical: DataType| Self {
            name: name.to_string(),
            logical,
            precision: None,
            scale,
            length: None,
            byte_length: None,
            physical,
        };
        match t {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                let precision = match declared {
                    Some(SnowflakeType::Number {
                        precision,
                        scale: 0,
                    }) => *precision,
                    _ => 38,
                };
                fixed(precision, 0, t.clone())
            }
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => fixed(38, 0, DataType::Int64),
            DataType::UInt64 => fixed(38, 0, DataType::Decimal128(38, 0)),
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
                if *s >= 0 && *p <= 38 =>
            {
                let (p, s) = (*p, *s as u8);
                if p <= 18 {
                    fixed(p, s, DataType::Int64)
                } else {
                    fixed(p, s, DataType::Decimal128(p, s as i8))
                }
            }
            DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => simple("REAL", None, DataType::Float64),
            DataType::Boolean => simple("BOOLEAN", None, DataType::Boolean),
            DataType::Date32 | DataType::Date64 => simple("DATE", None, DataType::Date32),
            DataType::Timestamp(unit, None) => {
                simple("TIMESTAMP_NTZ", Some(unit_scale(unit)), DataType::Int64)
            }
            DataType::Timestamp(unit, Some(_)) => {
                simple("TIMESTAMP_LTZ", Some(unit_scale(unit)), DataType::Int64)
            }
            DataType::Time32(unit) | DataType::Time64(unit) => {
                simple("TIME", Some(unit_scale(unit)), DataType::Int64)
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self {
                byte_length: Some(8_388_608),
                length: Some(8_388_608),
                ..simple("BINARY", None, DataType::Binary)
            },
            DataType::FixedSizeBinary(n) => Self {
                byte_length: Some(u64::try_from(*n).unwrap_or_default()),
                length: Some(u64::try_from(*n).unwrap_or_default()),
                ..simple("BINARY", None, DataType::Binary)
            },
            _ => text(DataType::Utf8),
        }
    }

    /// The column's entry in `rowtype`.
    pub fn rowtype(&self) -> Value {
        json!({
            "name": self.name,
            "database": "",
            "schema": "",
            "table": "",
            "nullable": true,
            "type": self.logical.to_ascii_lowercase(),
            "byteLength": self.byte_length,
            "length": self.length,
            "scale": self.scale,
            "precision": self.precision,
            "collation": null,
        })
    }

    /// The Arrow field Snowflake sends: its physical type and metadata.
    fn field(&self) -> Field {
        let mut md = HashMap::new();
        md.insert("logicalType".to_string(), self.logical.to_string());
        md.insert("finalType".to_string(), self.logical.to_string());
        md.insert(
            "precision".to_string(),
            self.precision.unwrap_or(38).to_string(),
        );
        let default_scale = if self.logical.starts_with("TIME") {
            9
        } else {
            0
        };
        md.insert(
            "scale".to_string(),
            self.scale.unwrap_or(default_scale).to_string(),
        );
        md.insert(
            "charLength".to_string(),
            self.length.unwrap_or(0).to_string(),
        );
        md.insert(
            "byteLength".to_string(),
            self.byte_length.unwrap_or(0).to_string(),
        );
        Field::new(&self.name, self.physical.clone(), true).with_metadata(md)
    }
}

/// A result, converted for the connector.
#[derive(Debug)]
pub struct SfResult {
    /// Column descriptions.
    pub columns: Vec<ColumnType>,
    /// The Arrow schema sent (physical types and metadata).
    pub schema: SchemaRef,
    /// Converted batches.
    pub batches: Vec<RecordBatch>,
    /// Rows in all batches.
    pub rows: usize,
}

impl SfResult {
    /// Describes a result of `schema` (no rows yet).
    pub fn describe(schema: &Schema, declared: &[Option<SnowflakeType>]) -> Self {
        let columns: Vec<ColumnType> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                ColumnType::of(
                    f.name(),
                    f.data_type(),
                    declared.get(i).and_then(Option::as_ref),
                )
            })
            .collect();
        let schema = Arc::new(Schema::new(
            columns.iter().map(ColumnType::field).collect::<Vec<_>>(),
        ));
        Self {
            columns,
            schema,
            batches: Vec::new(),
            rows: 0,
        }
    }

    /// `rowtype`.
    pub fn rowtype(&self) -> Value {
        Value::Array(self.columns.iter().map(ColumnType::rowtype).collect())
    }

    /// Converts and keeps one batch of the result.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), SfError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut arrays = Vec::with_capacity(batch.num_columns());
        for (column, ty) in batch.columns().iter().zip(&self.columns) {
            arrays.push(convert(column, ty)?);
        }
        let converted = RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| SfError::query_failed(format!("The result could not be encoded: {e}")))?;
        self.rows += converted.num_rows();
        self.batches.push(converted);
        Ok(())
    }

    /// Bytes the converted batches hold.
    pub fn memory_size(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    /// Splits the rows into chunks: the first of at most `first_rows`
    /// rows, the others of about `chunk_bytes` each.
    pub fn chunks(&self, first_rows: usize, chunk_bytes: usize) -> Vec<Vec<RecordBatch>> {
        if self.rows == 0 {
            return vec![Vec::new()];
        }
        let bytes_per_row = (self.memory_size() / self.rows).max(1);
        let rest_rows = (chunk_bytes / bytes_per_row).max(1);
        let mut chunks: Vec<Vec<RecordBatch>> = Vec::new();
        let mut current: Vec<RecordBatch> = Vec::new();
        let mut in_current = 0usize;
        let mut limit = first_rows.max(1);
        for batch in &self.batches {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let take = (limit - in_current).min(batch.num_rows() - offset);
                current.push(batch.slice(offset, take));
                offset += take;
                in_current += take;
                if in_current == limit {
                    chunks.push(std::mem::take(&mut current));
                    in_current = 0;
                    limit = rest_rows;
                }
            }
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    }

    /// One Arrow IPC stream of `batches` (empty bytes for no batches, as
    /// Snowflake sends an empty `rowsetBase64` for an empty result).
    pub fn ipc(&self, batches: &[RecordBatch]) -> Result<Vec<u8>, SfError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let fail = |e: datafusion::arrow::error::ArrowError| {
            SfError::query_failed(format!("The result could not be encoded: {e}"))
        };
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &self.schema).map_err(fail)?;
        for b in batches {
            writer.write(b).map_err(fail)?;
        }
        writer.finish().map_err(fail)?;
        drop(writer);
        Ok(out)
    }

    /// The rows as a JSON rowset (every value a string, as Snowflake sends
    /// them: numbers in decimal, dates as days, timestamps as seconds with
    /// a fraction, booleans as `1`/`0`).
    pub fn json_rowset(&self) -> Result<Value, SfError> {
        let mut rows = Vec::with_capacity(self.rows);
        for batch in &self.batches {
            let mut columns = Vec::with_capacity(batch.num_columns());
            for (array, ty) in batch.columns().iter().zip(&self.columns) {
                columns.push(json_strings(array, ty)?);
            }
            for r in 0..batch.num_rows() {
                rows.push(Value::Array(
                    columns
                        .iter()
                        .map(|c| c[r].clone().map_or(Value::Null, Value::String))
                        .collect(),
                ));
            }
        }
        Ok(Value::Array(rows))
    }
}

/// One column in Snowflake's physical type.
fn convert(array: &ArrayRef, ty: &ColumnType) -> Result<ArrayRef, SfError> {
    let fail = |e: datafusion::arrow::error::ArrowError| {
        SfError::query_failed(format!(
            "Column {} could not be encoded for the connector: {e}",
            ty.name
        ))
    };
    let from = array.data_type();
    if from == &ty.physical {
        return Ok(Arc::clone(array));
    }
    match (from, &ty.physical) {
        (
            DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..),
            DataType::Int64,
        ) => {
            // Snowflake sends NUMBER(p<=18, s) as the unscaled integer; the
            // scale travels in the metadata.
            let (p, s) = (ty.precision.unwrap_or(18), ty.scale.unwrap_or(0));
            let as128 = cast(array, &DataType::Decimal128(p.max(1), s as i8)).map_err(fail)?;
            let raw = as128
                .as_primitive::<Decimal128Type>()
                .unary::<_, Int64Type>(|v| v as i64);
            Ok(Arc::new(raw))
        }
        (DataType::Timestamp(..) | DataType::Time32(_) | DataType::Time64(_), DataType::Int64) => {
            cast(array, &DataType::Int64).map_err(fail)
        }
        _ => cast(array, &ty.physical).map_err(fail),
    }
}

/// The values of one converted column as JSON rowset strings.
fn json_strings(array: &ArrayRef, ty: &ColumnType) -> Result<Vec<Option<String>>, SfError> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    match (ty.logical, array.data_type()) {
        ("FIXED", DataType::Int64)
        | ("TIMESTAMP_NTZ" | "TIMESTAMP_LTZ" | "TIME", DataType::Int64) => {
            let a = array.as_primitive::<Int64Type>();
            let scale = u32::from(ty.scale.unwrap_or(0));
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| scaled(i128::from(a.value(i)), scale)));
            }
        }
        ("FIXED", DataType::Decimal128(..)) => {
            let a = array.as_primitive::<Decimal128Type>();
            let scale = u32::from(ty.scale.unwrap_or(0));
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| scaled(a.value(i), scale)));
            }
        }
        ("BOOLEAN", DataType::Boolean) => {
            let a = array.as_boolean();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| if a.value(i) { "1" } else { "0" }.to_string()));
            }
        }
        ("DATE", DataType::Date32) => {
            let a = array.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| a.value(i).to_string()));
            }
        }
        _ => {
            let options = FormatOptions::default();
            let f = ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| {
                SfError::query_failed(format!("Column {} could not be encoded: {e}", ty.name))
            })?;
            for i in 0..n {
                out.push((!array.is_null(i)).then(|| f.value(i).to_string()));
            }
        }
    }
    Ok(out)
}

/// An unscaled integer with `scale` fractional digits, as decimal text.
fn scaled(v: i128, scale: u32) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    let pow = 10u128.pow(scale);
    format!(
        "{sign}{}.{:0width$}",
        abs / pow,
        abs % pow,
        width = scale as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, StringViewArray, TimestampMicrosecondArray};

    #[test]
    fn number_travels_as_scaled_integer_with_scale_metadata() {
        let schema = Schema::new(vec![Field::new(
            "AMOUNT",
            DataType::Decimal128(10, 2),
            true,
        )]);
        let mut r = SfResult::describe(
            &schema,
            &[Some(SnowflakeType::Number {
                precision: 10,
                scale: 2,
            })],
        );
        let values = Decimal128Array::from(vec![Some(12345), None, Some(-5)])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(values)]).unwrap();
        r.push(&batch).unwrap();
        let field = r.schema.field(0);
        assert_eq!(field.data_type(), &DataType::Int64);
        assert_eq!(field.metadata()["logicalType"], "FIXED");
        assert_eq!(field.metadata()["scale"], "2");
        assert_eq!(field.metadata()["precision"], "10");
        let rows = r.json_rowset().unwrap();
        assert_eq!(rows, json!([["123.45"], [null], ["-0.05"]]));
        assert_eq!(r.rowtype()[0]["type"], "fixed");
    }

    #[test]
    fn text_carries_the_declared_length() {
        let schema = Schema::new(vec![Field::new("EMAIL", DataType::Utf8View, true)]);
        let mut r = SfResult::describe(&schema, &[Some(SnowflakeType::Varchar(30))]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(StringViewArray::from(vec!["a@b.c"]))],
        )
        .unwrap();
        r.push(&batch).unwrap();
        assert_eq!(r.schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(r.schema.field(0).metadata()["charLength"], "30");
        assert_eq!(r.rowtype()[0]["length"], 30);
    }

    #[test]
    fn timestamps_travel_as_scaled_epoch_integers() {
        let schema = Schema::new(vec![Field::new(
            "TS",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]);
        let mut r = SfResult::describe(&schema, &[]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(TimestampMicrosecondArray::from(vec![-1_500_000]))],
        )
        .unwrap();
        r.push(&batch).unwrap();
        assert_eq!(r.schema.field(0).metadata()["logicalType"], "TIMESTAMP_NTZ");
        assert_eq!(r.schema.field(0).metadata()["scale"], "6");
        assert_eq!(r.json_rowset().unwrap(), json!([["-1.500000"]]));
    }

    #[test]
    fn chunks_cover_every_row_once() {
        let schema = Schema::new(vec![Field::new("N", DataType::Int64, false)]);
        let mut r = SfResult::describe(&schema, &[]);
        for start in [0i64, 1000] {
            let values: Vec<i64> = (start..start + 1000).collect();
            let batch = RecordBatch::try_new(
                Arc::new(schema.clone()),
                vec![Arc::new(datafusion::arrow::array::Int64Array::from(values))],
            )
            .unwrap();
            r.push(&batch).unwrap();
        }
        let chunks = r.chunks(10, 800);
        let counts: Vec<usize> = chunks
            .iter()
            .map(|c| c.iter().map(RecordBatch::num_rows).sum())
            .collect();
        assert_eq!(counts[0], 10);
        assert_eq!(counts.iter().sum::<usize>(), 2000);
        assert!(counts[1..].iter().all(|c| *c <= 100));
    }
}
