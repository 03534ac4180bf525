//! Arrow results as PostgreSQL rows: each Arrow type maps to one PostgreSQL
//! type (`RowDescription`), and each batch becomes `DataRow`s in the text
//! or binary format the client asked for. A column whose Arrow type has no
//! direct PostgreSQL counterpart travels as `text`, formatted by Arrow.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use rust_decimal::Decimal;

use super::errors;

/// The largest decimal precision `numeric` carries here (rust_decimal's).
const MAX_NUMERIC_PRECISION: u8 = 28;

/// How one Arrow type travels: the PostgreSQL type and the Arrow type the
/// column is cast to before encoding (`None`: formatted as text by Arrow).
fn wire_type(dt: &DataType) -> (Type, Option<DataType>) {
    match dt {
        DataType::Boolean => (Type::BOOL, Some(DataType::Boolean)),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Type::INT2, Some(DataType::Int16)),
        DataType::Int32 | DataType::UInt16 => (Type::INT4, Some(DataType::Int32)),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            (Type::INT8, Some(DataType::Int64))
        }
        DataType::Float16 | DataType::Float32 => (Type::FLOAT4, Some(DataType::Float32)),
        DataType::Float64 => (Type::FLOAT8, Some(DataType::Float64)),
        DataType::Decimal128(p, s) if *p <= MAX_NUMERIC_PRECISION && *s >= 0 => {
            (Type::NUMERIC, Some(dt.clone()))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            (Type::TEXT, Some(DataType::Utf8))
        }
        DataType::Dictionary(_, v) => wire_type(v),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            (Type::BYTEA, Some(DataType::Binary))
        }
        DataType::Date32 | DataType::Date64 => (Type::DATE, Some(DataType::Date32)),
        DataType::Timestamp(_, None) => (
            Type::TIMESTAMP,
            Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        ),
        DataType::Timestamp(_, Some(_)) => (
            Type::TIMESTAMPTZ,
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into()),
            )),
        ),
        _ => (Type::TEXT, None),
    }
}

/// The row description of `schema`, each column in the format `format`
/// asks for (`None`: text, as the simple protocol sends).
pub(crate) fn fields(schema: &Schema, format: Option<&Format>) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let field_format = format.map(|f| f.format_for(i)).unwrap_or(FieldFormat::Text);
            let (t, _) = wire_type(f.data_type());
            let size = match t {
                Type::BOOL => 1,
                Type::INT2 => 2,
                Type::INT4 | Type::FLOAT4 | Type::DATE => 4,
                Type::INT8 | Type::FLOAT8 | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
                _ => -1,
            };
            FieldInfo::new(f.name().clone(), None, None, t, field_format).with_type_size(size)
        })
        .collect()
}

/// One column ready to encode.
enum Cells {
    Bool(BooleanArray),
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Numeric(Decimal128Array, u32),
    Text(StringArray),
    Bytes(BinaryArray),
    Date(Date32Array),
    Timestamp(TimestampMicrosecondArray),
    TimestampTz(TimestampMicrosecondArray),
    Formatted(Vec<Option<String>>),
}

fn downcast<T: Clone + 'static>(a: &ArrayRef) -> PgWireResult<T> {
    a.as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| errors::error(errors::INTERNAL, "a result column has an unexpected type."))
}

/// The column `array` encoded as PostgreSQL type `t` (the type its row
/// description announced): cast to the Arrow type that type is written from.
fn cells(array: &ArrayRef, t: &Type) -> PgWireResult<Cells> {
    let target = match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => match array.data_type() {
            DataType::Decimal128(p, s) if *p <= MAX_NUMERIC_PRECISION && *s >= 0 => {
                array.data_type().clone()
            }
            _ => DataType::Decimal128(MAX_NUMERIC_PRECISION, 6),
        },
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => match wire_type(array.data_type()) {
            (Type::TEXT, Some(_)) => DataType::Utf8,
            _ => return formatted(array),
        },
    };
    let a = if *array.data_type() == target {
        Arc::clone(array)
    } else {
        cast(array, &target).map_err(|e| errors::error(errors::DATA_EXCEPTION, e.to_string()))?
    };
    Ok(match *t {
        Type::BOOL => Cells::Bool(downcast(&a)?),
        Type::INT2 => Cells::I16(downcast(&a)?),
        Type::INT4 => Cells::I32(downcast(&a)?),
        Type::INT8 => Cells::I64(downcast(&a)?),
        Type::FLOAT4 => Cells::F32(downcast(&a)?),
        Type::FLOAT8 => Cells::F64(downcast(&a)?),
        Type::NUMERIC => {
            let scale = match a.data_type() {
                DataType::Decimal128(_, s) => u32::try_from(*s).unwrap_or(0),
                _ => 0,
            };
            Cells::Numeric(downcast(&a)?, scale)
        }
        Type::BYTEA => Cells::Bytes(downcast(&a)?),
        Type::DATE => Cells::Date(downcast(&a)?),
        Type::TIMESTAMP => Cells::Timestamp(downcast(&a)?),
        Type::TIMESTAMPTZ => Cells::TimestampTz(downcast(&a)?),
        _ => Cells::Text(downcast(&a)?),
    })
}

fn formatted(array: &ArrayRef) -> PgWireResult<Cells> {
    let options = FormatOptions::default();
    let f = ArrayFormatter::try_new(array.as_ref(), &options)
        .map_err(|e| errors::error(errors::DATA_EXCEPTION, e.to_string()))?;
    Ok(Cells::Formatted(
        (0..array.len())
            .map(|i| (!array.is_null(i)).then(|| f.value(i).to_string()))
            .collect(),
    ))
}

fn opt<A: Array, T>(a: &A, i: usize, v: impl FnOnce() -> T) -> Option<T> {
    if a.is_null(i) { None } else { Some(v()) }
}

impl Cells {
    fn encode(&self, enc: &mut DataRowEncoder, i: usize) -> PgWireResult<()> {
        match self {
            Cells::Bool(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::I16(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::I32(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::I64(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::F32(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::F64(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::Numeric(a, scale) => {
                let v = match opt(a, i, || a.value(i)) {
                    Some(raw) => {
                        Some(Decimal::try_from_i128_with_scale(raw, *scale).map_err(|e| {
                            errors::error(errors::DATA_EXCEPTION, format!("numeric value: {e}"))
                        })?)
                    }
                    None => None,
                };
                enc.encode_field(&v)
            }
            Cells::Text(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::Bytes(a) => enc.encode_field(&opt(a, i, || a.value(i))),
            Cells::Date(a) => {
                let v: Option<NaiveDate> = opt(a, i, || a.value_as_date(i)).flatten();
                enc.encode_field(&v)
            }
            Cells::Timestamp(a) => {
                let v: Option<NaiveDateTime> = opt(a, i, || a.value_as_datetime(i)).flatten();
                enc.encode_field(&v)
            }
            Cells::TimestampTz(a) => {
                let v: Option<DateTime<Utc>> =
                    opt(a, i, || DateTime::<Utc>::from_timestamp_micros(a.value(i))).flatten();
                enc.encode_field(&v)
            }
            Cells::Formatted(v) => enc.encode_field(&v.get(i).cloned().flatten()),
        }
    }
}

/// The rows of one batch, encoded as `fields` describes them.
pub(crate) fn encode_batch(
    batch: &RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
) -> PgWireResult<Vec<DataRow>> {
    if batch.num_columns() != fields.len() {
        return Err(PgWireError::UserError(Box::new(
            pgwire::error::ErrorInfo::new(
                "ERROR".into(),
                errors::INTERNAL.into(),
                "a result batch does not match its row description.".into(),
            ),
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(a, f)| cells(a, f.datatype()))
        .collect::<PgWireResult<Vec<_>>>()?;
    let mut encoder = DataRowEncoder::new(Arc::clone(fields));
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        for c in &columns {
            c.encode(&mut encoder, i)?;
        }
        rows.push(encoder.take_row());
    }
    Ok(rows)
}
