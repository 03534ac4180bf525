//! The 64-bit kernels: Int64 and Decimal128 values that fit in 64 bits.

use datafusion::arrow::array::{Decimal128Array, Int64Array};
use datafusion::arrow::compute::{max, min};

use super::{
    DivideBelow63, decimals_within, exact_bound, largest_multiple, map_within, step_units,
};

/// Rounding of 64-bit scaled values: `sign(v) · min(⌊(|v| + ⌊s/2⌋) / s⌋ · s,
/// largest)`, which is rule 13's round-half-away-from-zero and its clamp
/// toward zero to the largest multiple of the step that fits (a multiple of
/// `s` exceeds the limit exactly when it exceeds `largest`). Exact for
/// `|v| ≤ bound`, where nothing can overflow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepRound64 {
    step: u64,
    divide: DivideBelow63,
    half: u64,
    largest: u64,
    bound: i64,
    /// The kernel for Decimal128 magnitudes whose rounding needs no clamp,
    /// tried first.
    lean: Option<LeanRound64>,
}

impl StepRound64 {
    /// The kernel for values at `scale` rounded to `step` (a decimal
    /// literal as mantissa and scale) in `NUMBER(precision, scale)`, or
    /// `None` when the step does not suit it.
    pub(crate) fn new(scale: u32, step: (i128, u32), precision: Option<u8>) -> Option<Self> {
        let step_literal = step;
        let units = step_units(scale, step)?;
        let step = u64::try_from(units)
            .ok()
            .filter(|s| *s <= i64::MAX as u64)?;
        let half = step / 2;
        let largest = match largest_multiple(units, precision)? {
            None => u64::MAX,
            Some(l) => u64::try_from(l).unwrap_or(u64::MAX),
        };
        let bound =
            i128::from(i64::MAX - i64::try_from(half).ok()?).min(exact_bound(scale, step_literal)?);
        let no_clamp = u128::from(largest.saturating_sub(half)).min(bound.unsigned_abs());
        Some(Self {
            step,
            divide: DivideBelow63::new(step)?,
            half,
            largest,
            bound: i64::try_from(bound).ok()?,
            lean: LeanRound64::new(step, no_clamp),
        })
    }

    /// One value; exact when `|v| ≤ bound` (wrapping, never panicking,
    /// outside it: the values under NULL slots are arbitrary).
    #[inline(always)]
    pub(crate) fn round(&self, v: i64) -> i64 {
        // Below 2^63 within the bound: `|v| + half ≤ i64::MAX`.
        let magnitude = self.divide.divide(v.unsigned_abs().wrapping_add(self.half));
        let rounded = magnitude.wrapping_mul(self.step).min(self.largest) as i64;
        if v < 0 {
            rounded.wrapping_neg()
        } else {
            rounded
        }
    }

    /// Whether every value in `[low, high]` is within the exact range.
    fn covers(&self, low: i64, high: i64) -> bool {
        low >= -self.bound && high <= self.bound
    }

    /// Rounds an Int64 array, or `None` when a value is outside the exact
    /// range.
    pub(crate) fn round_int64(&self, input: &Int64Array) -> Option<Int64Array> {
        let (k, bound) = (*self, self.bound.unsigned_abs());
        map_within(
            input,
            1,
            move |v| (k.round(v), u64::from(v.unsigned_abs() > bound)),
            |a| match (min(a), max(a)) {
                (Some(low), Some(high)) => self.covers(low, high),
                _ => true,
            },
        )
    }

    /// Rounds a Decimal128 array whose values all fit in 64 bits (the
    /// common `NUMBER(p ≤ 18, s)` case), or `None`. The result has the
    /// default decimal type: the caller sets precision and scale.
    pub(crate) fn round_decimal(&self, input: &Decimal128Array) -> Option<Decimal128Array> {
        if let Some(k) = self.lean
            && let Some(out) = map_within(
                input,
                u64::MAX,
                move |v| k.round(v),
                |a| i128::try_from(k.within).is_ok_and(|w| decimals_within(a, w)),
            )
        {
            return Some(out);
        }
        let (k, bound) = (*self, i128::from(self.bound));
        // Truncating `as` only reaches values the check rejects (or NULL
        // slots): the values it accepts fit in 64 bits.
        map_within(
            input,
            1,
            move |v| {
                (
                    i128::from(k.round(v as i64)),
                    u64::from(v.unsigned_abs() > bound as u128),
                )
            },
            |a| decimals_within(a, bound),
        )
    }
}

/// [`LeanRound128`](super::wide::LeanRound128) in one word, for Decimal128 values that fit in 64
/// bits (`NUMBER(p ≤ 18, s)` and most `NUMBER(38, s)` values): `y = v +
/// ⌊d/2⌋`, less one for a negative `v` when `d` is even, plus `B`, a
/// multiple of `d`, is rounded down to a multiple of `d` by one
/// [`DivideBelow63`] and `B` taken off again. A value is within when that
/// 128-bit sum has a zero high word and its low word is below `2^bits`
/// (at most 2^63): the high word and the low word's bits from `bits` up
/// are the word [`map_within`] ORs, any bit of which rejects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeanRound64 {
    divisor: u64,
    divide: DivideBelow63,
    /// `⌊d/2⌋ + B`.
    offset: u64,
    /// All ones when `d` is even, else zero.
    even: u64,
    /// `B`.
    bias: u64,
    /// The low word's bits that mark a value outside: from `bits` up.
    outside: u64,
    /// Every value of magnitude up to this is within.
    within: u128,
}

impl LeanRound64 {
    /// As [`LeanRound128::new`](super::wide::LeanRound128::new).
    pub(crate) fn new(d: u64, limit: u128) -> Option<Self> {
        let divide = DivideBelow63::new(d)?;
        let half = u128::from(d / 2);
        let even = u128::from(d.is_multiple_of(2));
        // `y < 2^bits ≤ 2^63`: what the division takes. `B ≥ 2^(bits−1)`,
        // so below zero a wider range would accept values beyond `limit`:
        // those widths are not tried (a kernel built per batch).
        let widest = limit.checked_ilog2().map_or(0, |l| (l + 1).min(63));
        for bits in (1..=widest).rev() {
            let top = 1u128 << bits;
            let bias = (top / 2).div_ceil(u128::from(d)) * u128::from(d);
            if bias >= top {
                continue;
            }
            // Within: `y` from −B to 2^bits − B − 1.
            let below = bias + half - even;
            let Some(above) = (top - 1 - bias).checked_sub(half) else {
                continue;
            };
            if below.max(above) <= limit {
                return Some(Self {
                    divisor: d,
                    divide,
                    offset: u64::try_from(bias + half).ok()?,
                    even: if d.is_multiple_of(2) { u64::MAX } else { 0 },
                    bias: u64::try_from(bias).ok()?,
                    outside: u64::MAX << bits,
                    within: below.min(above),
                });
            }
        }
        None
    }

    /// One value rounded (wrapping, never panicking, when outside) and the
    /// word that is zero exactly when the value is within.
    #[inline(always)]
    pub(crate) fn round(&self, v: i128) -> (i128, u64) {
        let minus_one = ((v >> 127) as u64) & self.even;
        let y = (v as u128).wrapping_add(u128::from(self.offset.wrapping_add(minus_one)));
        let (low, high) = (y as u64, (y >> 64) as u64);
        let rounded = self
            .divide
            .divide(low)
            .wrapping_mul(self.divisor)
            .wrapping_sub(self.bias) as i64;
        (i128::from(rounded), high | (low & self.outside))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::round_scaled;
    use crate::round_kernels::check_lean;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn lean_round_64_equals_half_away_rounding(
            d in prop_oneof![1u64..1_000, 1u64..=i64::MAX as u64, (0u32..63).prop_map(|k| 1u64 << k)],
            limit in prop_oneof![Just(i64::MAX as u128), 0u128..(1u128 << 50), 0u128..(1u128 << 70)],
            v in prop_oneof![-1_000i128..1_000, -10i128.pow(19)..10i128.pow(19), any::<i128>()],
        ) {
            if let Some(k) = LeanRound64::new(d, limit) {
                let round = |v| {
                    let (rounded, word) = k.round(v);
                    (rounded, word == 0)
                };
                check_lean(round, d, limit, k.within, &[v, v >> 64, v / 1_000])?;
            }
        }

        #[test]
        fn step_round_64_equals_the_exact_path(
            value in prop_oneof![-10_000i64..10_000, any::<i64>()],
            scale in 0u32..6,
            mantissa in prop_oneof![1i128..1_000, 1i128..1_000_000_000_000],
            step_scale in 0u32..8,
            precision in prop::option::of(1u8..=38),
        ) {
            let step = (mantissa, step_scale);
            if let Some(k) = StepRound64::new(scale, step, precision)
                && k.covers(value, value)
            {
                let exact = round_scaled(i128::from(value), scale, step, precision)
                    .and_then(|r| i64::try_from(r).ok());
                prop_assert_eq!(Some(k.round(value)), exact);
            }
        }
    }

    #[test]
    fn the_lean_64_bit_kernel_takes_number_15_prices() {
        // Cents to whole hundreds in NUMBER(15,2), as TPC-H's prices in the
        // benchmark: the lean kernel, half away from zero on both sides.
        let k = StepRound64::new(2, (100, 0), Some(15)).and_then(|k| k.lean);
        let k = k.unwrap_or_else(|| panic!("no lean kernel for NUMBER(15,2)"));
        assert!(k.within >= 10u128.pow(14), "within {}", k.within);
        for (v, rounded) in [
            (123_456_789i128, 123_460_000),
            (-123_465_000, -123_470_000),
            (-123_464_999, -123_460_000),
            (-5_000, -10_000),
            (-4_999, 0),
            (0, 0),
            (14_999, 10_000),
        ] {
            assert_eq!(k.round(v), (rounded, 0), "{v}");
        }
        // Beyond the clamp of NUMBER(15,2), and beyond 64 bits: not taken.
        for v in [
            10i128.pow(15),
            -(10i128.pow(15)),
            1 << 64,
            -(1 << 64),
            i128::MIN,
        ] {
            assert_ne!(k.round(v).1, 0, "{v}");
        }
    }

    #[test]
    fn kernels_cover_the_usual_cases() {
        // Rule 13's example: 996 to the nearest 10 in NUMBER(3,0) shows 990.
        let k = StepRound64::new(0, (10, 0), Some(3));
        assert_eq!(k.map(|k| k.round(996)), Some(990));
        assert_eq!(k.map(|k| k.round(-995)), Some(-990));
        assert_eq!(k.map(|k| k.round(994)), Some(990));
        assert_eq!(k.map(|k| k.round(-5)), Some(-10));
        // A step finer than the scale but a whole number of units: 10.0 on an integer.
        assert_eq!(
            StepRound64::new(0, (100, 1), None).map(|k| k.round(15)),
            Some(20)
        );
        // Not a whole number of units: the exact path.
        assert!(StepRound64::new(0, (5, 1), None).is_none());
    }
}
