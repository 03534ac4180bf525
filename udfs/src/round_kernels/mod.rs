//! The vectorized arithmetic behind `veil_mask_round`: rounding to a step,
//! half away from zero, and the clamp to `NUMBER(p,s)` (SPEC rule 13) over
//! whole Arrow buffers, each output written once with no per-row `Option`,
//! the division by the step strength-reduced to multiplications; and date
//! truncation to a month or a year by civil-calendar arithmetic. `word`
//! holds the 64-bit kernels, `wide` the 128-bit ones, `dates` the date
//! truncation; here is what they share: the step and its bounds,
//! [`map_within`] and [`DivideBelow63`].
//!
//! A kernel applies only when every value is in the range where it is
//! exact: the check is fused into the kernel's own pass (one comparison or
//! OR a row, chunk by chunk, giving up at the first chunk with a value
//! outside); otherwise `mask_round` takes the exact per-row path
//! (`fit::round_scaled`, chrono), which the property tests hold every
//! kernel to, value for value.

use datafusion::arrow::array::{Array, Decimal128Array, PrimitiveArray};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::ArrowPrimitiveType;

use crate::fit::pow10;

mod dates;
mod wide;
mod word;

pub(crate) use dates::{DateTruncation, truncate_dates};
pub(crate) use wide::StepRound128;
pub(crate) use word::StepRound64;

/// The step of a `round` at a column's scale, in units of that scale, when
/// it is a positive whole number of units (a step finer than the column's
/// scale that is not a whole number of units takes the exact path).
fn step_units(scale: u32, step: (i128, u32)) -> Option<i128> {
    let (mantissa, step_scale) = step;
    if mantissa <= 0 {
        return None;
    }
    let units = if step_scale <= scale {
        mantissa.checked_mul(pow10(scale - step_scale)?)?
    } else {
        let divisor = pow10(step_scale - scale)?;
        if mantissa % divisor != 0 {
            return None;
        }
        mantissa / divisor
    };
    (units > 0).then_some(units)
}

/// The largest magnitude the exact path rounds without overflowing: it
/// works at the finer of the two scales, so a step finer than the column's
/// scale multiplies the value by `10^k` first, and the rounded value may
/// exceed it by half a step.
fn exact_bound(scale: u32, step: (i128, u32)) -> Option<i128> {
    let (mantissa, step_scale) = step;
    let k = step_scale.saturating_sub(scale);
    Some((i128::MAX - mantissa / 2) / pow10(k)?)
}

/// The largest multiple of `units` that `NUMBER(precision, ·)` holds (the
/// clamp target of rule 13), or `None` without a declared precision.
fn largest_multiple(units: i128, precision: Option<u8>) -> Option<Option<i128>> {
    match precision {
        None => Some(None),
        Some(p) => {
            let limit = pow10(u32::from(p))?.checked_sub(1)?;
            Some(Some((limit / units) * units))
        }
    }
}

/// Rows a kernel maps before it looks whether one of them was outside its
/// exact range (and gives up, leaving the batch to the next path): first
/// [`FIRST_CHUNK`], so that a batch for a wider kernel (a `NUMBER(38, s)`
/// column beyond 64 bits) costs the narrower one little, then [`CHUNK`].
const CHUNK: usize = 1024;
/// See [`CHUNK`].
const FIRST_CHUNK: usize = 64;

/// Maps every value of `input` by `kernel`, which returns the mapped value
/// and a word with a bit of `reject` set when the input was outside the
/// kernel's exact range; `None` when a valid value was. The words are
/// OR-ed, so the check costs one instruction a row. The slots under NULLs
/// hold arbitrary values: when one of those alone is outside, `covers` (a
/// min/max over the valid values) decides, and what the kernel wrote under
/// a NULL is never read.
fn map_within<T: ArrowPrimitiveType>(
    input: &PrimitiveArray<T>,
    reject: u64,
    kernel: impl Fn(T::Native) -> (T::Native, u64),
    covers: impl Fn(&PrimitiveArray<T>) -> bool,
) -> Option<PrimitiveArray<T>> {
    let values = input.values();
    // Filled by `extend` from a mapped slice iterator: written once, with
    // no zeroing pass first.
    let mut out = Vec::with_capacity(values.len());
    let mut seen = 0u64;
    let (first, rest) = values.split_at(values.len().min(FIRST_CHUNK));
    for chunk in std::iter::once(first).chain(rest.chunks(CHUNK)) {
        out.extend(chunk.iter().map(|&v| {
            let (m, word) = kernel(v);
            seen |= word;
            m
        }));
        if seen & reject != 0 && input.null_count() == 0 {
            return None;
        }
    }
    // A value outside under a NULL alone does not count.
    if seen & reject != 0 && !covers(input) {
        return None;
    }
    Some(PrimitiveArray::new(out.into(), input.nulls().cloned()))
}

/// Division by a constant of numerators below 2^63 (every magnitude the
/// 64-bit kernel divides): one 64×64-bit multiply-high and a shift, by the
/// round-up method of Granlund and Montgomery. With `l = ⌈log2 d⌉` and
/// `m = ⌈2^(63+l) / d⌉`, `m·d − 2^(63+l) < d ≤ 2^l`, so
/// `⌊n/d⌋ = ⌊n·m / 2^(63+l)⌋` for every `n < 2^63`; and `m < 2^64` (it is
/// exactly 2^63 for a power of two). `2n` fits in 64 bits, so the quotient
/// is `mulhi(2n, m) >> l`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DivideBelow63 {
    multiplier: u64,
    shift: u32,
}

impl DivideBelow63 {
    /// The divisor `d`, or `None` unless `1 ≤ d < 2^63`.
    pub(crate) fn new(d: u64) -> Option<Self> {
        if d == 0 || d > i64::MAX as u64 {
            return None;
        }
        let shift = 64 - (d - 1).leading_zeros();
        let p = 63 + shift;
        let multiplier = (1u128 << p).div_ceil(u128::from(d));
        Some(Self {
            multiplier: u64::try_from(multiplier).ok()?,
            shift,
        })
    }

    /// `⌊n / d⌋` for `n < 2^63` (wrapping, never panicking, beyond).
    #[inline(always)]
    pub(crate) fn divide(&self, n: u64) -> u64 {
        let high = (u128::from(n << 1) * u128::from(self.multiplier)) >> 64;
        (high as u64) >> self.shift
    }
}

/// Whether every valid value of a Decimal128 array is within `±bound`.
fn decimals_within(input: &Decimal128Array, bound: i128) -> bool {
    match (min(input), max(input)) {
        (Some(low), Some(high)) => low >= -bound && high <= bound,
        _ => true,
    }
}

#[cfg(test)]
/// A lean kernel (`round` gives the rounded value and whether it was
/// within) on `values` and both ends of its range: every value up to
/// `within` is within, none beyond `limit`, and a value within is
/// rounded half away from zero to `d`.
fn check_lean(
    round: impl Fn(i128) -> (i128, bool),
    d: u64,
    limit: u128,
    within: u128,
    values: &[i128],
) -> Result<(), proptest::test_runner::TestCaseError> {
    let w = i128::try_from(within).unwrap_or(i128::MAX);
    let ends = [
        w,
        -w,
        w.saturating_add(1),
        w.saturating_add(1).saturating_neg(),
    ];
    for &v in values.iter().chain(&ends) {
        let (rounded, inside) = round(v);
        proptest::prop_assert!(inside || v.unsigned_abs() > within, "{v} rejected");
        if inside {
            proptest::prop_assert!(v.unsigned_abs() <= limit, "{v} beyond {limit}");
            let d = u128::from(d);
            let magnitude = (v.unsigned_abs() + d / 2) / d * d;
            let exact = if v < 0 {
                -(magnitude as i128)
            } else {
                magnitude as i128
            };
            proptest::prop_assert_eq!(rounded, exact, "{}", v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::round_scaled;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn divide_below_63_equals_division(
            d in prop_oneof![1u64..1_000, 1u64..=i64::MAX as u64, (0u32..63).prop_map(|k| 1u64 << k)],
            n in prop_oneof![0u64..1_000_000, 0u64..=i64::MAX as u64],
        ) {
            let k = DivideBelow63::new(d).unwrap_or_else(|| panic!("divisor {d}"));
            prop_assert_eq!(k.divide(n), n / d);
            // The edges: the largest numerator and its neighbours of a multiple.
            prop_assert_eq!(k.divide(i64::MAX as u64), i64::MAX as u64 / d);
            let multiple = (n / d) * d;
            prop_assert_eq!(k.divide(multiple), n / d);
            if multiple > 0 {
                prop_assert_eq!(k.divide(multiple - 1), (multiple - 1) / d);
            }
        }
    }

    proptest! {
        // Whole batches across chunk boundaries: fewer, larger cases.
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_kernel_pass_equals_the_exact_path_with_nulls_anywhere(
            values in prop::collection::vec(prop_oneof![-10i128.pow(20)..10i128.pow(20), -1_000i128..1_000, any::<i128>()], 0..3000),
            nulls in prop::collection::vec(any::<bool>(), 0..3000),
            mantissa in prop_oneof![1i128..1_000, 1i128..10i128.pow(30)],
            precision in prop::option::of(1u8..=38),
        ) {
            // A NULL may hide any value, in range or not: the answer depends
            // on the valid values only.
            let input: Decimal128Array = values
                .iter()
                .enumerate()
                .map(|(i, v)| (!nulls.get(i).copied().unwrap_or(false)).then_some(*v))
                .collect();
            let input = Decimal128Array::new(
                input.values().clone(),
                input.nulls().cloned(),
            );
            let step = (mantissa, 0);
            let exact: Vec<Option<i128>> = input
                .iter()
                .map(|v| v.and_then(|v| round_scaled(v, 2, step, precision)))
                .collect();
            for kernel in [
                StepRound64::new(2, step, precision).and_then(|k| k.round_decimal(&input)),
                StepRound128::new(2, step, precision).and_then(|k| k.round_decimal(&input)),
            ]
            .into_iter()
            .flatten()
            {
                let got: Vec<Option<i128>> = kernel.iter().collect();
                prop_assert_eq!(&got, &exact);
            }
        }
    }
}
