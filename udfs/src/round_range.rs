//! Predicates on a rounded column as ranges of its raw values.
//!
//! `round` is monotone: a larger raw value never rounds to a smaller one.
//! So the raw values whose rounded value satisfies `rounded >= a` (or `>`,
//! `<=`, `<`, `=`) form one interval, and a filter on the rounded column can
//! be answered by a range on the raw column, which Parquet statistics can
//! prune on, and which is cheaper than masking every row first. The
//! interval's ends are found by binary search over the mask's own exact
//! per-value path, so they agree with the mask wherever it is monotone, and
//! [`Rounding::range`] is property-tested against the mask as it runs
//! (kernels included) on values at and around every end.
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

/// What `veil_mask_round` does to one raw value of a type.
#[derive(Debug, Clone, Copy)]
enum Mask {
    Int64 {
        step: (i128, u32),
        precision: Option<u8>,
    },
    Decimal {
        scale: u32,
        step: (i128, u32),
        precision: Option<u8>,
    },
    Date(TimeUnitMask),
}

/// `veil_mask_round(raw, step, declared)` over a raw type's whole domain,
/// with the values it shows as a value (not NULL) worked out once, so each
/// [`Rounding::range`] is two binary searches.
#[derive(Debug, Clone, Copy)]
pub struct Rounding {
    mask: Mask,
    /// The raw type's domain.
    min: i128,
    max: i128,
    /// The values the mask shows as a value: NULL comes only from
    /// overflow, at the ends of the domain, never around zero.
    low: i128,
    high: i128,
}

impl Rounding {
    /// The rounding of a raw column of `value_type`, or `None` when this
    /// does not apply (numbers: Int64 and Decimal128; dates: Date32) or the
    /// mask does not behave monotonically at the ends checked.
    pub fn new(value_type: &DataType, step: &str, declared: SnowflakeType) -> Option<Self> {
        let precision = match declared {
            SnowflakeType::Number { precision, .. } => Some(precision),
            _ => None,
        };
        let numeric_step = || parse_decimal(step).filter(|s| s.0 > 0);
        let (mask, min, max) = match value_type {
            DataType::Int64 => (
                Mask::Int64 {
                    step: numeric_step()?,
                    precision,
                },
                i128::from(i64::MIN),
                i128::from(i64::MAX),
            ),
            DataType::Decimal128(p, s) => {
                // The values Decimal128(p, s) holds. A file may carry larger
                // ones; the mask clamps those to what it gives at the ends,
                // so the range (unbounded on a side whose end it selects)
                // treats them the same.
                let limit = crate::fit::pow10(u32::from(*p))? - 1;
                let mask = Mask::Decimal {
                    scale: u32::try_from(*s).ok()?,
                    step: numeric_step()?,
                    precision: precision.or(Some(*p)),
                };
                (mask, -limit, limit)
            }
            DataType::Date32 => (
                Mask::Date(TimeUnitMask::parse(step)?),
                i128::from(i32::MIN),
                i128::from(i32::MAX),
            ),
            _ => return None,
        };
        let mut rounding = Self {
            mask,
            min,
            max,
            low: min,
            high: max,
        };
        rounding.round(0)?;
        if rounding.round(min).is_none() {
            rounding.low = first(min, 0, |v| rounding.round(v).is_some());
        }
        if rounding.round(max).is_none() {
            // The last defined value: the first one past it is undefined.
            rounding.high = first(0, max, |v| rounding.round(v).is_none()) - 1;
        }
        (rounding.round(rounding.low)? <= rounding.round(rounding.high)?).then_some(rounding)
    }

    /// One raw value rounded, exactly as `veil_mask_round` computes it
    /// (`None`: the mask shows NULL).
    fn round(&self, v: i128) -> Option<i128> {
        match self.mask {
            Mask::Int64 { step, precision } => {
                round_scaled(v, 0, step, precision).filter(|r| i64::try_from(*r).is_ok())
            }
            Mask::Decimal {
                scale,
                step,
                precision,
            } => round_scaled(v, scale, step, precision),
            Mask::Date(unit) => {
                const EPOCH_FROM_CE: i32 = 719_163;
                let days = i32::try_from(v).ok()?;
                let date = NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_FROM_CE)?)?;
                let truncated = unit.truncate_date(date)?;
                Some(i128::from(truncated.num_days_from_ce() - EPOCH_FROM_CE))
            }
        }
    }

    /// The first defined value rounding to more than `bound` (`strict`) or
    /// to at least `bound`; `None`: none does.
    fn first_beyond(&self, bound: i128, strict: bool) -> Option<i128> {
        let beyond = |r: i128| if strict { r > bound } else { r >= bound };
        beyond(self.round(self.high)?)
            .then(|| first(self.low, self.high, |v| self.round(v).is_some_and(beyond)))
    }

    /// The raw values this rounds to a value `v` with `v OP bound`: one
    /// interval, since rounding is monotone.
    pub fn range(&self, op: Comparison, bound: i128) -> RawRange {
        // Everything before the first value beyond: its predecessor, or
        // every defined value when none is beyond.
        let before = |first: Option<i128>| match first {
            Some(v) => v.checked_sub(1),
            None => Some(self.high),
        };
        let (from, to) = match op {
            Comparison::GtEq => (self.first_beyond(bound, false), Some(self.high)),
            Comparison::Gt => (self.first_beyond(bound, true), Some(self.high)),
            Comparison::LtEq => (Some(self.low), before(self.first_beyond(bound, true))),
            Comparison::Lt => (Some(self.low), before(self.first_beyond(bound, false))),
            Comparison::Eq => (
                self.first_beyond(bound, false),
                before(self.first_beyond(bound, true)),
            ),
        };
        match (from, to) {
            (Some(from), Some(to)) if from <= to => RawRange::Within {
                low: (from > self.min).then_some(from),
                high: (to < self.max).then_some(to),
            },
            _ => RawRange::Empty,
        }
    }

    /// The rounding bucket of raw value `value`: every raw value that rounds
    /// to what it rounds to (`None`: the mask shows it as NULL). Its ends
    /// are rounding boundaries.
    pub fn bucket(&self, value: i128) -> Option<RawRange> {
        Some(self.range(Comparison::Eq, self.round(value)?))
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

    fn raw_range(
        value_type: &DataType,
        step: &str,
        declared: SnowflakeType,
        op: Comparison,
        bound: i128,
    ) -> Option<RawRange> {
        Some(Rounding::new(value_type, step, declared)?.range(op, bound))
    }

    fn bucket(
        value_type: &DataType,
        step: &str,
        declared: SnowflakeType,
        value: i128,
    ) -> Option<RawRange> {
        Rounding::new(value_type, step, declared)?.bucket(value)
    }

    fn holds(op: Comparison, left: i128, right: i128) -> bool {
        match op {
            Comparison::Eq => left == right,
            Comparison::Lt => left < right,
            Comparison::LtEq => left <= right,
            Comparison::Gt => left > right,
            Comparison::GtEq => left >= right,
        }
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
            let expected = masked.is_valid(i) && holds(op, rounded(masked, i), bound);
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
