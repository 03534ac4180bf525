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
use crate::round_kernels::{DateTruncation, StepRound64, StepRound128, truncate_dates};
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

    pub(crate) fn truncate_date(self, d: NaiveDate) -> Option<NaiveDate> {
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

/// The exact per-row path for dates (chrono): the reference the date
/// kernels are tested against, and the answer outside chrono's range.
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

/// The exact per-row path for Int64 (`fit::round_scaled` in `i128`): the
/// reference of the kernels, and the answer where they do not apply.
fn round_int64_exact(input: &Int64Array, step: (i128, u32), precision: Option<u8>) -> Int64Array {
    input.unary_opt(|v| i64::try_from(round_scaled(i128::from(v), 0, step, precision)?).ok())
}

/// The exact per-row path for Decimal128; the caller sets precision and
/// scale.
fn round_decimal_exact(
    input: &Decimal128Array,
    scale: u32,
    step: (i128, u32),
    precision: Option<u8>,
) -> Decimal128Array {
    input.unary_opt(|v| round_scaled(v, scale, step, precision))
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
            if let Some(out) =
                StepRound64::new(0, step, precision).and_then(|k| k.round_int64(input))
            {
                return Ok(Arc::new(out));
            }
            Ok(Arc::new(round_int64_exact(input, step, precision)))
        }
        DataType::Decimal128(p, s) => {
            let step = numeric_step()?;
            let scale = u32::try_from(*s).unwrap_or(0);
            let input = array.as_primitive::<Decimal128Type>();
            let precision = precision.or(Some(*p));
            let out = StepRound64::new(scale, step, precision)
                .and_then(|k| k.round_decimal(input))
                .or_else(|| {
                    StepRound128::new(scale, step, precision).and_then(|k| k.round_decimal(input))
                })
                .unwrap_or_else(|| round_decimal_exact(input, scale, step, precision));
            Ok(Arc::new(out.with_precision_and_scale(*p, *s)?))
        }
        DataType::Float64 => {
            let (mantissa, scale) = numeric_step()?;
            let step = mantissa as f64 / 10f64.powi(scale as i32);
            let input = array.as_primitive::<Float64Type>();
            let out: Float64Array = input.unary::<_, Float64Type>(|v| (v / step).round() * step);
            Ok(Arc::new(out))
        }
        DataType::Date32 => {
            let unit = temporal_unit()?;
            let input = array.as_primitive::<Date32Type>();
            let kernel = match unit {
                TimeUnitMask::Minute | TimeUnitMask::Hour | TimeUnitMask::Day => {
                    DateTruncation::Identity
                }
                TimeUnitMask::Month => DateTruncation::Month,
                TimeUnitMask::Year => DateTruncation::Year,
            };
            match truncate_dates(input, kernel) {
                Some(out) => Ok(Arc::new(out)),
                None => Ok(round_dates(input, unit)),
            }
        }
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

    /// Every value of `values` through `round_array` (kernels) and through
    /// the exact per-row path must agree, nulls included.
    fn assert_kernel_is_exact(values: Vec<Option<i128>>, p: u8, s: i8, step: &str, declared: &str) {
        let input = Decimal128Array::from(values)
            .with_precision_and_scale(p, s)
            .unwrap();
        let array: ArrayRef = Arc::new(input.clone());
        let declared = n(declared);
        let got = round_array(&array, step, declared).unwrap();
        let precision = match declared {
            SnowflakeType::Number { precision, .. } => Some(precision),
            _ => None,
        };
        let want = round_decimal_exact(&input, s as u32, parse_decimal(step).unwrap(), precision)
            .with_precision_and_scale(p, s)
            .unwrap();
        assert_eq!(got.as_primitive::<Decimal128Type>(), &want);
        // Int64 too, where the values fit.
        if s == 0
            && let Ok(ints) = input
                .iter()
                .map(|v| v.map(i64::try_from).transpose())
                .collect::<Result<Vec<_>, _>>()
        {
            let ints = Int64Array::from(ints);
            let array: ArrayRef = Arc::new(ints.clone());
            let got = round_array(&array, step, declared).unwrap();
            let want = round_int64_exact(&ints, parse_decimal(step).unwrap(), precision);
            assert_eq!(got.as_primitive::<Int64Type>(), &want);
        }
    }

    #[test]
    fn kernels_agree_with_the_exact_path_on_arrays() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        let value = prop_oneof![
            -100_000i128..100_000,
            -(1i128 << 62)..(1i128 << 62),
            any::<i64>().prop_map(i128::from),
            -10i128.pow(30)..10i128.pow(30),
            any::<i128>(),
        ];
        let strategy = (
            prop::collection::vec(prop::option::weighted(0.9, value), 0..40),
            1u8..=38,
            0i8..6,
            1u64..100_000,
            0u32..6,
            1u8..=38,
        );
        runner
            .run(
                &strategy,
                |(values, p, s, mantissa, step_scale, declared_p)| {
                    let s = s.min(p as i8);
                    let step = if step_scale == 0 {
                        mantissa.to_string()
                    } else {
                        let digits =
                            format!("{mantissa:0>width$}", width = step_scale as usize + 1);
                        let (int, frac) = digits.split_at(digits.len() - step_scale as usize);
                        format!("{int}.{frac}")
                    };
                    let declared = format!("NUMBER({declared_p},{})", (s as u8).min(declared_p));
                    assert_kernel_is_exact(values, p, s, &step, &declared);
                    Ok(())
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // The three paths on purpose: 64-bit, 128-bit, and beyond the 128-bit
        // kernel's range (the exact path).
        assert_kernel_is_exact(
            vec![Some(996), None, Some(-996)],
            18,
            0,
            "10",
            "NUMBER(3,0)",
        );
        assert_kernel_is_exact(vec![Some(10i128.pow(25) + 5)], 38, 0, "10", "NUMBER(38,0)");
        assert_kernel_is_exact(
            vec![Some(i128::MAX), Some(i128::MIN)],
            38,
            0,
            "10",
            "NUMBER(38,0)",
        );
        assert_kernel_is_exact(
            vec![Some(i128::from(i64::MAX))],
            19,
            0,
            "10",
            "NUMBER(19,0)",
        );
    }

    #[test]
    fn date_kernels_agree_with_the_exact_path_on_arrays() {
        let days: Vec<Option<i32>> = (-400_000..400_000)
            .step_by(37)
            .map(|d| (d % 11 != 0).then_some(d))
            .chain([Some(i32::MAX), Some(i32::MIN)])
            .collect();
        for unit in ["minute", "hour", "day", "month", "year"] {
            // In chrono's range (the kernels) and beyond it (the exact path).
            for values in [&days[..days.len() - 2], &days[..]] {
                let input = Date32Array::from(values.to_vec());
                let array: ArrayRef = Arc::new(input.clone());
                let got = round_array(&array, unit, SnowflakeType::Date).unwrap();
                let want = round_dates(&input, TimeUnitMask::parse(unit).unwrap());
                assert_eq!(&got, &want, "{unit}");
            }
        }
    }

    #[test]
    fn refuses_strings() {
        let input: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec!["a"]));
        assert!(round_array(&input, "10", n("VARCHAR(3)")).is_err());
    }
}
