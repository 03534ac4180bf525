//! `veil_mask_round(value, step_or_unit, declared_type)`: numbers to the
//! nearest multiple of a step (half away from zero), fitted to
//! `NUMBER(p,s)` (SPEC rules 13, 18); dates and timestamps truncated to
//! `minute`, `hour`, `day`, `month` or `year`.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    PrimitiveArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::fit::{parse_decimal, round_scaled};
use crate::sftype::SnowflakeType;
use crate::strings::{apply_to_first, literal_str, literal_type};

/// A truncation unit for dates and timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnitMask {
    /// Seconds become zero.
    Minute,
    /// Minutes and seconds become zero.
    Hour,
    /// The time of day becomes midnight.
    Day,
    /// The first day of the month.
    Month,
    /// The first of January.
    Year,
}

impl TimeUnitMask {
    /// Parses `minute` / `hour` / `day` / `month` / `year` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "minute" => Some(Self::Minute),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    fn truncate_datetime(self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        let date = self.truncate_date(t.date())?;
        Some(match self {
            Self::Minute => date.and_hms_opt(t.hour(), t.minute(), 0)?,
            Self::Hour => date.and_hms_opt(t.hour(), 0, 0)?,
            _ => date.and_hms_opt(0, 0, 0)?,
        })
    }

    fn truncate_date(self, d: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Minute | Self::Hour | Self::Day => Some(d),
            Self::Month => d.with_day(1),
            Self::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1),
        }
    }
}

/// Rounding mask for numbers, dates and timestamps.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskRoundFunc {
    signature: Signature,
}

impl Default for MaskRoundFunc {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn round_dates(array: &Date32Array, unit: TimeUnitMask) -> ArrayRef {
    Arc::new(array.unary_opt::<_, Date32Type>(|days| {
        let date =
            NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?)?;
        Some(unit.truncate_date(date)?.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
    }))
}

fn round_timestamps<T>(array: &PrimitiveArray<T>, unit: TimeUnitMask, per_second: i64) -> ArrayRef
where
    T: datafusion::arrow::datatypes::ArrowTimestampType,
{
    let out: PrimitiveArray<T> = array.unary_opt(|v| {
        let secs = v.div_euclid(per_second);
        let sub = v.rem_euclid(per_second);
        let nanos = u32::try_from(sub.checked_mul(1_000_000_000 / per_second)?).ok()?;
        let t = DateTime::from_timestamp(secs, nanos)?.naive_utc();
        let truncated = unit.truncate_datetime(t)?.and_utc();
        truncated.timestamp().checked_mul(per_second)
    });
    Arc::new(out.with_timezone_opt(array.timezone()))
}

/// `round_scaled` for the common case, in `i64`: a step no finer than the
/// column's scale, values and results within 18 digits that need no clamp.
/// Everything else (`None`) takes the exact `i128` path; both agree
/// (property-tested).
#[derive(Debug, Clone, Copy)]
struct FastDecimalRound {
    /// The step in units of the column's scale.
    step: i64,
    /// The largest magnitude the declared precision holds.
    limit: i64,
}

impl FastDecimalRound {
    fn new(scale: u32, step: (i128, u32), precision: Option<u8>) -> Option<Self> {
        let (mantissa, step_scale) = step;
        let p = u32::from(precision?);
        if step_scale > scale || mantissa <= 0 || p > 18 {
            return None;
        }
        let step = mantissa.checked_mul(crate::fit::pow10(scale - step_scale)?)?;
        Some(Self {
            step: i64::try_from(step).ok()?,
            limit: i64::try_from(crate::fit::pow10(p)? - 1).ok()?,
        })
    }

    #[inline]
    fn round(&self, value: i128) -> Option<i128> {
        let v = i64::try_from(value).ok()?;
        let (q, r) = (v / self.step, v % self.step);
        let q = if r.unsigned_abs() * 2 >= self.step.unsigned_abs() {
            q + v.signum()
        } else {
            q
        };
        let rounded = q.checked_mul(self.step)?;
        (rounded.unsigned_abs() <= self.limit.unsigned_abs()).then_some(i128::from(rounded))
    }
}

/// Rounds one array. `step` is a decimal literal for numbers or a unit for
/// temporals; `declared` bounds the result.
pub fn round_array(array: &ArrayRef, step: &str, declared: SnowflakeType) -> Result<ArrayRef> {
    let precision = match declared {
        SnowflakeType::Number { precision, .. } => Some(precision),
        _ => None,
    };
    let temporal_unit = || match TimeUnitMask::parse(step) {
        Some(u) => Ok(u),
        None => exec_err!(
            "round on a date or timestamp needs minute, hour, day, month or year, got '{step}'"
        ),
    };
    let numeric_step = || match parse_decimal(step) {
        Some(s) if s.0 > 0 => Ok(s),
        _ => exec_err!("round on a number needs a positive step, got '{step}'"),
    };
    match array.data_type() {
        DataType::Int64 => {
            let step = numeric_step()?;
            let input = array.as_primitive::<Int64Type>();
            let out: Int64Array = input.unary_opt(|v| {
                i64::try_from(round_scaled(i128::from(v), 0, step, precision)?).ok()
            });
            Ok(Arc::new(out))
        }
        DataType::Decimal128(p, s) => {
            let step = numeric_step()?;
            let scale = u32::try_from(*s).unwrap_or(0);
            let input = array.as_primitive::<Decimal128Type>();
            let precision = precision.or(Some(*p));
            let out: Decimal128Array = match FastDecimalRound::new(scale, step, precision) {
                Some(fast) => input.unary_opt(|v| {
                    fast.round(v)
                        .or_else(|| round_scaled(v, scale, step, precision))
                }),
                None => input.unary_opt(|v| round_scaled(v, scale, step, precision)),
            };
            Ok(Arc::new(out.with_precision_and_scale(*p, *s)?))
        }
        DataType::Float64 => {
            let (mantissa, scale) = numeric_step()?;
            let step = mantissa as f64 / 10f64.powi(scale as i32);
            let input = array.as_primitive::<Float64Type>();
            let out: Float64Array = input.unary::<_, Float64Type>(|v| (v / step).round() * step);
            Ok(Arc::new(out))
        }
        DataType::Date32 => Ok(round_dates(
            array.as_primitive::<Date32Type>(),
            temporal_unit()?,
        )),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Ok(round_timestamps(
            array.as_primitive::<TimestampNanosecondType>(),
            temporal_unit()?,
            1_000_000_000,
        )),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(round_timestamps(
            array.as_primitive::<TimestampMicrosecondType>(),
            temporal_unit()?,
            1_000_000,
        )),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(round_timestamps(
            array.as_primitive::<TimestampMillisecondType>(),
            temporal_unit()?,
            1_000,
        )),
        DataType::Timestamp(TimeUnit::Second, _) => Ok(round_timestamps(
            array.as_primitive::<TimestampSecondType>(),
            temporal_unit()?,
            1,
        )),
        other => exec_err!("round cannot mask a {other} value"),
    }
}

impl ScalarUDFImpl for MaskRoundFunc {
    fn name(&self) -> &str {
        "veil_mask_round"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => Ok(t.clone()),
            None => exec_err!("veil_mask_round needs a value argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let step = literal_str(&args.args, 1, "step")?;
        let declared = literal_type(&args.args, 2)?;
        apply_to_first(&args.args, |array| round_array(array, &step, declared))
    }
}

/// The `veil_mask_round` UDF.
pub fn mask_round() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskRoundFunc::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampNanosecondArray;

    fn n(text: &str) -> SnowflakeType {
        SnowflakeType::parse(text).unwrap()
    }

    #[test]
    fn rounds_to_step_and_clamps_to_precision() {
        let input: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(994),
            Some(754),
            Some(376),
            Some(996),
            None,
            Some(-996),
        ]));
        let out = round_array(&input, "10", n("NUMBER(3,0)")).unwrap();
        let out = out.as_primitive::<Int64Type>();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            vec![Some(990), Some(750), Some(380), Some(990), None, Some(-990)]
        );
    }

    #[test]
    fn rounds_decimals_at_their_scale() {
        let input: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(12_345), Some(-12_355)])
                .with_precision_and_scale(6, 3)
                .unwrap(),
        );
        let out = round_array(&input, "0.05", n("NUMBER(6,3)")).unwrap();
        let out = out.as_primitive::<Decimal128Type>();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            vec![Some(12_350), Some(-12_350)]
        );
        assert_eq!(out.scale(), 3);
    }

    #[test]
    fn truncates_dates_to_units() {
        // 2024-03-17 is day 19799 since the epoch.
        let d = NaiveDate::from_ymd_opt(2024, 3, 17)
            .unwrap()
            .num_days_from_ce()
            - UNIX_EPOCH_DAYS_FROM_CE;
        let input: ArrayRef = Arc::new(Date32Array::from(vec![Some(d), None]));
        let month = round_array(&input, "month", SnowflakeType::Date).unwrap();
        let first = NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .num_days_from_ce()
            - UNIX_EPOCH_DAYS_FROM_CE;
        assert_eq!(
            month
                .as_primitive::<Date32Type>()
                .iter()
                .collect::<Vec<_>>(),
            vec![Some(first), None]
        );
        let year = round_array(&input, "YEAR", SnowflakeType::Date).unwrap();
        let jan = NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .num_days_from_ce()
            - UNIX_EPOCH_DAYS_FROM_CE;
        assert_eq!(year.as_primitive::<Date32Type>().value(0), jan);
        assert!(round_array(&input, "10", SnowflakeType::Date).is_err());
    }

    #[test]
    fn truncates_timestamps_to_units() {
        let t = NaiveDate::from_ymd_opt(2024, 3, 17)
            .unwrap()
            .and_hms_nano_opt(13, 45, 12, 5)
            .unwrap()
            .and_utc();
        let ns = t.timestamp_nanos_opt().unwrap();
        let input: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![ns, -1]));
        let hour = round_array(&input, "hour", SnowflakeType::TimestampNtz).unwrap();
        let want = NaiveDate::from_ymd_opt(2024, 3, 17)
            .unwrap()
            .and_hms_opt(13, 0, 0)
            .unwrap()
            .and_utc();
        let got = hour.as_primitive::<TimestampNanosecondType>();
        assert_eq!(got.value(0), want.timestamp_nanos_opt().unwrap());
        // One nanosecond before the epoch truncates to 1969-12-31 23:00.
        assert_eq!(got.value(1), -3_600_000_000_000);
        let minute = round_array(&input, "minute", SnowflakeType::TimestampNtz).unwrap();
        let want = NaiveDate::from_ymd_opt(2024, 3, 17)
            .unwrap()
            .and_hms_opt(13, 45, 0)
            .unwrap()
            .and_utc();
        assert_eq!(
            minute.as_primitive::<TimestampNanosecondType>().value(0),
            want.timestamp_nanos_opt().unwrap()
        );
    }

    #[test]
    fn rounds_floats_half_away_from_zero() {
        let input: ArrayRef = Arc::new(Float64Array::from(vec![2.5, -2.5, 12.3]));
        let out = round_array(&input, "5", SnowflakeType::Float).unwrap();
        assert_eq!(
            out.as_primitive::<Float64Type>().values().to_vec(),
            vec![5.0, -5.0, 10.0]
        );
    }

    #[test]
    fn fast_decimal_round_agrees_with_the_exact_path() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        let strategy = (
            -10i128.pow(20)..10i128.pow(20),
            0u32..6,
            1i128..100_000,
            0u32..6,
            1u8..20,
        );
        runner
            .run(
                &strategy,
                |(value, scale, mantissa, step_scale, precision)| {
                    let step = (mantissa, step_scale);
                    if let Some(fast) = FastDecimalRound::new(scale, step, Some(precision))
                        && let Some(got) = fast.round(value)
                    {
                        prop_assert_eq!(
                            Some(got),
                            round_scaled(value, scale, step, Some(precision))
                        );
                    }
                    Ok(())
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // The common case takes the fast path.
        let fast = FastDecimalRound::new(2, (100, 0), Some(15));
        assert_eq!(fast.and_then(|f| f.round(1_234_567)), Some(1_230_000));
        assert_eq!(fast.and_then(|f| f.round(-1_235_000)), Some(-1_240_000));
    }

    #[test]
    fn refuses_strings() {
        let input: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec!["a"]));
        assert!(round_array(&input, "10", n("VARCHAR(3)")).is_err());
    }
}
