//! Predicates on a rounded column as ranges of its raw values.
//!
//! `round` is monotone: a larger raw value never rounds to a smaller one.
//! So the raw values whose rounded value satisfies `rounded >= a` (or `>`,
//! `<=`, `<`, `=`) form one interval, and a filter on the rounded column can
//! be answered by a range on the raw column, which Parquet statistics can
//! prune on, and which is cheaper than masking every row first. The
//! interval's ends are found by binary search over the mask's own exact
//! per-value path, so they agree with the mask wherever it is monotone, and
//! [`raw_range`] is property-tested against the mask as it runs (kernels
//! included) on values at and around every end.
//!
//! What it reveals: the interval's ends are rounding boundaries, so the
//! range distinguishes two raw values only when their rounded values
//! differ; the rows it selects are exactly the rows the masked predicate
//! selects.

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::datatypes::DataType;

use crate::fit::{parse_decimal, round_scaled};
use crate::mask_round::TimeUnitMask;
use crate::sftype::SnowflakeType;

/// A comparison of a rounded value with a constant: `rounded OP constant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl Comparison {
    /// The comparison with its operands swapped (`a < x` is `x > a`).
    pub fn flipped(self) -> Self {
        match self {
            Self::Eq => Self::Eq,
            Self::Lt => Self::Gt,
            Self::LtEq => Self::GtEq,
            Self::Gt => Self::Lt,
            Self::GtEq => Self::LtEq,
        }
    }

    /// Whether `left OP right` holds.
    pub fn holds(self, left: i128, right: i128) -> bool {
        match self {
            Self::Eq => left == right,
            Self::Lt => left < right,
            Self::LtEq => left <= right,
            Self::Gt => left > right,
            Self::GtEq => left >= right,
        }
    }
}

/// The raw values whose rounded value satisfies a [`Comparison`], in the
/// raw column's own representation (Int64 values, Decimal128 unscaled
/// values at the column's scale, Date32 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawRange {
    /// No raw value: the predicate selects no row.
    Empty,
    /// `low <= raw <= high`; a missing end is unbounded (every value of
    /// the column's type on that side satisfies it).
    Within {
        /// The smallest raw value selected, if any is excluded below it.
        low: Option<i128>,
        /// The largest raw value selected, if any is excluded above it.
        high: Option<i128>,
    },
}

/// The rounding of one raw value, exactly as `veil_mask_round` computes it
/// (`None`: the mask shows NULL), over the raw type's whole domain.
struct Rounding {
    round: Box<dyn Fn(i128) -> Option<i128>>,
    min: i128,
    max: i128,
}

impl Rounding {
    fn new(value_type: &DataType, step: &str, declared: SnowflakeType) -> Option<Self> {
        let precision = match declared {
            SnowflakeType::Number { precision, .. } => Some(precision),
            _ => None,
        };
        match value_type {
            DataType::Int64 => {
                let step = parse_decimal(step).filter(|s| s.0 > 0)?;
                Some(Self {
                    round: Box::new(move |v| {
                        round_scaled(v, 0, step, precision).filter(|r| i64::try_from(*r).is_ok())
                    }),
                    min: i128::from(i64::MIN),
                    max: i128::from(i64::MAX),
                })
            }
            DataType::Decimal128(p, s) => {
                let step = parse_decimal(step).filter(|s| s.0 > 0)?;
                let scale = u32::try_from(*s).ok()?;
                let precision = precision.or(Some(*p));
                // The values Decimal128(p, s) holds. A file may carry larger
                // ones; the mask clamps those to what it gives at the ends,
                // so the range (unbounded on a side whose end it selects)
                // treats them the same.
                let limit = crate::fit::pow10(u32::from(*p))? - 1;
                Some(Self {
                    round: Box::new(move |v| round_scaled(v, scale, step, precision)),
                    min: -limit,
                    max: limit,
                })
            }
            DataType::Date32 => {
                let unit = TimeUnitMask::parse(step)?;
                const EPOCH_FROM_CE: i32 = 719_163;
                Some(Self {
                    round: Box::new(move |v| {
                        let days = i32::try_from(v).ok()?;
                        let date =
                            NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_FROM_CE)?)?;
                        let truncated = unit.truncate_date(date)?;
                        Some(i128::from(truncated.num_days_from_ce() - EPOCH_FROM_CE))
                    }),
                    min: i128::from(i32::MIN),
                    max: i128::from(i32::MAX),
                })
            }
            _ => None,
        }
    }

    /// The smallest value in `low..=high` where `pred` holds, given that it
    /// holds at `high` and, once it holds, holds for every larger value.
    fn first(low: i128, high: i128, pred: impl Fn(i128) -> bool) -> i128 {
        let (mut low, mut high) = (low, high);
        while low < high {
            // The floor of the mean, without overflow at the ends of i128.
            let mid = (low >> 1) + (high >> 1) + (low & high & 1);
            if pred(mid) {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        high
    }

    /// The values the mask shows as a value (not NULL): NULL comes only from
    /// overflow, at the ends of the domain, never around zero.
    fn defined(&self) -> Option<(i128, i128)> {
        (self.round)(0)?;
        let low = if (self.round)(self.min).is_some() {
            self.min
        } else {
            Self::first(self.min, 0, |v| (self.round)(v).is_some())
        };
        // The last defined value: the first one past it is undefined.
        let high = if (self.round)(self.max).is_some() {
            self.max
        } else {
            Self::first(0, self.max, |v| (self.round)(v).is_none()) - 1
        };
        Some((low, high))
    }
}

/// The raw values of a column of `value_type` that `veil_mask_round(raw,
/// step, declared)` rounds to a value `v` with `v OP bound`, or `None` when
/// the mask is not one this applies to (numbers: Int64 and Decimal128;
/// dates: Date32) or does not behave monotonically at the ends checked.
pub fn raw_range(
    value_type: &DataType,
    step: &str,
    declared: SnowflakeType,
    op: Comparison,
    bound: i128,
) -> Option<RawRange> {
    let rounding = Rounding::new(value_type, step, declared)?;
    let (low, high) = rounding.defined()?;
    let f = |v: i128| (rounding.round)(v);
    let (at_low, at_high) = (f(low)?, f(high)?);
    if at_low > at_high {
        return None;
    }
    // The first defined value rounding to at least / more than `bound`
    // (`None`: none does).
    let first_at_least = |b: i128| {
        (at_high >= b).then(|| Rounding::first(low, high, |v| f(v).is_some_and(|r| r >= b)))
    };
    let first_above = |b: i128| {
        (at_high > b).then(|| Rounding::first(low, high, |v| f(v).is_some_and(|r| r > b)))
    };
    let (from, to) = match op {
        Comparison::GtEq => (first_at_least(bound), Some(high)),
        Comparison::Gt => (first_above(bound), Some(high)),
        Comparison::LtEq => (
            Some(low),
            match first_above(bound) {
                Some(v) => v.checked_sub(1),
                None => Some(high),
            },
        ),
        Comparison::Lt => (
            Some(low),
            match first_at_least(bound) {
                Some(v) => v.checked_sub(1),
                None => Some(high),
            },
        ),
        Comparison::Eq => (
            first_at_least(bound),
            match first_above(bound) {
                Some(v) => v.checked_sub(1),
                None => Some(high),
            },
        ),
    };
    Some(match (from, to) {
        (Some(from), Some(to)) if from <= to && from >= low && to <= high => RawRange::Within {
            low: (from > rounding.min).then_some(from),
            high: (to < rounding.max).then_some(to),
        },
        _ => RawRange::Empty,
    })
}

/// The rounding bucket of raw value `value`: every raw value that rounds to
/// what it rounds to (`None`: as for [`raw_range`], or the mask shows it as
/// NULL). Its ends are rounding boundaries.
pub fn bucket(
    value_type: &DataType,
    step: &str,
    declared: SnowflakeType,
    value: i128,
) -> Option<RawRange> {
    let rounded = (Rounding::new(value_type, step, declared)?.round)(value)?;
    raw_range(value_type, step, declared, Comparison::Eq, rounded)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Array, ArrayRef, AsArray, Date32Array, Decimal128Array, Int64Array,
    };
    use datafusion::arrow::datatypes::{Date32Type, Decimal128Type, Int64Type};
    use proptest::prelude::*;

    use super::*;
    use crate::mask_round::round_array;

    fn ops() -> impl Strategy<Value = Comparison> {
        prop_oneof![
            Just(Comparison::Eq),
            Just(Comparison::Lt),
            Just(Comparison::LtEq),
            Just(Comparison::Gt),
            Just(Comparison::GtEq),
        ]
    }

    fn within(range: RawRange, v: i128) -> bool {
        match range {
            RawRange::Empty => false,
            RawRange::Within { low, high } => {
                low.is_none_or(|l| v >= l) && high.is_none_or(|h| v <= h)
            }
        }
    }

    /// Raw values to try: the samples, the range's ends and their
    /// neighbours, and the type's extremes.
    fn probes(range: RawRange, samples: &[i128], min: i128, max: i128) -> Vec<i128> {
        let mut probes: Vec<i128> = samples.to_vec();
        if let RawRange::Within { low, high } = range {
            for end in [low, high].into_iter().flatten() {
                probes.extend([end.saturating_sub(1), end, end.saturating_add(1)]);
            }
        }
        probes.extend([min, min + 1, -1, 0, 1, max - 1, max]);
        probes.retain(|v| (min..=max).contains(v));
        probes
    }

    /// Checks the range against the mask as it runs: each probe is in the
    /// range exactly when its rounded value (NULL: never) satisfies `op`.
    fn check(
        masked: &ArrayRef,
        raw: &[i128],
        range: RawRange,
        op: Comparison,
        bound: i128,
        rounded: impl Fn(&ArrayRef, usize) -> i128,
    ) -> Result<(), TestCaseError> {
        for (i, v) in raw.iter().enumerate() {
            let expected = masked.is_valid(i) && op.holds(rounded(masked, i), bound);
            prop_assert_eq!(
                within(range, *v),
                expected,
                "raw {} {:?} {} ({:?})",
                v,
                op,
                bound,
                range
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn a_decimal_range_selects_what_the_rounded_predicate_selects(
            precision in 1u8..=38,
            scale_seed in 0u8..=38,
            step in prop_oneof![Just("100"), Just("1"), Just("0.05"), Just("25"), Just("1000000")],
            declared_precision in prop_oneof![Just(None), (1u8..=38).prop_map(Some)],
            op in ops(),
            bound in prop_oneof![-1_000_000i128..1_000_000, any::<i64>().prop_map(i128::from)],
            samples in proptest::collection::vec(
                prop_oneof![-10_000_000i128..10_000_000, any::<i64>().prop_map(i128::from)], 16),
        ) {
            let scale = scale_seed % (precision + 1);
            let ty = DataType::Decimal128(precision, scale as i8);
            let declared = match declared_precision {
                Some(p) => SnowflakeType::Number { precision: p.max(scale), scale },
                None => SnowflakeType::Number { precision, scale },
            };
            let Some(range) = raw_range(&ty, step, declared, op, bound) else {
                return Ok(());
            };
            let limit = 10i128.pow(u32::from(precision)) - 1;
            let raw = probes(range, &samples, -limit, limit);
            let input: ArrayRef = Arc::new(
                Decimal128Array::from(raw.clone()).with_precision_and_scale(precision, scale as i8)?,
            );
            let masked = round_array(&input, step, declared)?;
            check(&masked, &raw, range, op, bound, |a, i| a.as_primitive::<Decimal128Type>().value(i))?;
        }

        #[test]
        fn an_integer_range_selects_what_the_rounded_predicate_selects(
            step in prop_oneof![Just("100"), Just("7"), Just("0.5"), Just("1000000000000000000")],
            precision in prop_oneof![Just(18u8), Just(38u8), 1u8..=19],
            op in ops(),
            bound in prop_oneof![-1_000_000i128..1_000_000, any::<i64>().prop_map(i128::from)],
            samples in proptest::collection::vec(
                prop_oneof![-10_000_000i128..10_000_000, any::<i64>().prop_map(i128::from)], 16),
        ) {
            let declared = SnowflakeType::Number { precision, scale: 0 };
            let Some(range) = raw_range(&DataType::Int64, step, declared, op, bound) else {
                return Ok(());
            };
            let raw = probes(range, &samples, i128::from(i64::MIN), i128::from(i64::MAX));
            let input: ArrayRef = Arc::new(Int64Array::from(
                raw.iter().map(|v| i64::try_from(*v).unwrap_or_default()).collect::<Vec<_>>(),
            ));
            let masked = round_array(&input, step, declared)?;
            check(&masked, &raw, range, op, bound, |a, i| i128::from(a.as_primitive::<Int64Type>().value(i)))?;
        }

        #[test]
        fn a_date_range_selects_what_the_truncated_predicate_selects(
            unit in prop_oneof![Just("day"), Just("month"), Just("year")],
            op in ops(),
            bound in prop_oneof![-100_000i128..100_000, any::<i32>().prop_map(i128::from)],
            samples in proptest::collection::vec(
                prop_oneof![-100_000i128..100_000, any::<i32>().prop_map(i128::from)], 16),
        ) {
            let Some(range) = raw_range(&DataType::Date32, unit, SnowflakeType::Date, op, bound) else {
                return Ok(());
            };
            let raw = probes(range, &samples, i128::from(i32::MIN), i128::from(i32::MAX));
            let input: ArrayRef = Arc::new(Date32Array::from(
                raw.iter().map(|v| i32::try_from(*v).unwrap_or_default()).collect::<Vec<_>>(),
            ));
            let masked = round_array(&input, unit, SnowflakeType::Date)?;
            check(&masked, &raw, range, op, bound, |a, i| i128::from(a.as_primitive::<Date32Type>().value(i)))?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn a_bucket_holds_exactly_the_values_rounding_alike(
            step in prop_oneof![Just("100"), Just("7"), Just("0.05")],
            scale in 0u8..=4,
            value in -10_000_000i128..10_000_000,
            offsets in proptest::collection::vec(-1_000i128..1_000, 16),
        ) {
            let ty = DataType::Decimal128(18, scale as i8);
            let declared = SnowflakeType::Number { precision: 18, scale };
            let range = bucket(&ty, step, declared, value);
            prop_assert!(range.is_some());
            let range = range.unwrap_or(RawRange::Empty);
            prop_assert!(within(range, value));
            // The value first: what it rounds to is masked.value(0).
            let mut raw = vec![value];
            raw.extend(offsets.iter().map(|o| value + o));
            if let RawRange::Within { low, high } = range {
                raw.extend(low.into_iter().flat_map(|l| [l - 1, l]));
                raw.extend(high.into_iter().flat_map(|h| [h, h + 1]));
            }
            let input: ArrayRef = Arc::new(
                Decimal128Array::from(raw.clone()).with_precision_and_scale(18, scale as i8)?,
            );
            let masked = round_array(&input, step, declared)?;
            let masked = masked.as_primitive::<Decimal128Type>();
            let own = masked.value(0);
            for (i, v) in raw.iter().enumerate() {
                prop_assert_eq!(within(range, *v), masked.value(i) == own, "raw {} in {:?}", v, range);
            }
        }
    }

    #[test]
    fn prices_rounded_to_hundreds_become_a_range_of_cents() {
        // NUMBER(15,2) rounded to 100: 100000.00 <= rounded <= 200000.00
        // holds from 99950.00 (rounds up to 100000) to 200049.99.
        let ty = DataType::Decimal128(15, 2);
        let declared = SnowflakeType::Number {
            precision: 15,
            scale: 2,
        };
        let at_least = raw_range(&ty, "100", declared, Comparison::GtEq, 10_000_000);
        assert_eq!(
            at_least,
            Some(RawRange::Within {
                low: Some(9_995_000),
                high: None
            })
        );
        let at_most = raw_range(&ty, "100", declared, Comparison::LtEq, 20_000_000);
        assert_eq!(
            at_most,
            Some(RawRange::Within {
                low: None,
                high: Some(20_004_999)
            })
        );
        // Between two multiples: no rounded value equals it.
        assert_eq!(
            raw_range(&ty, "100", declared, Comparison::Eq, 10_005_000),
            Some(RawRange::Empty)
        );
        // Floats and timestamps are not rewritten.
        assert_eq!(
            raw_range(&DataType::Float64, "100", declared, Comparison::Eq, 0),
            None
        );
    }
}
