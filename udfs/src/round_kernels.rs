//! The vectorized arithmetic behind `veil_mask_round`: rounding to a step,
//! half away from zero, and the clamp to `NUMBER(p,s)` (SPEC rule 13) over
//! whole Arrow buffers with arrow's `unary` kernel (no per-row `Option`),
//! the division by the step strength-reduced to multiplications (one
//! multiply-high and a shift in 64 bits); and date
//! truncation to a month or a year by civil-calendar arithmetic.
//!
//! A kernel applies only when every value is in the range where it is
//! exact: the check is fused into the kernel's own pass (one comparison a
//! row, chunk by chunk, giving up at the first chunk with a value outside);
//! otherwise `mask_round` takes the exact per-row path (`fit::round_scaled`,
//! chrono), which the property tests here hold every kernel to, value for
//! value.

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, Date32Array, Decimal128Array, Int64Array, PrimitiveArray};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::ArrowPrimitiveType;
use strength_reduce::StrengthReducedU128;

use crate::fit::pow10;

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

/// [`LeanRound128`] in one word, for Decimal128 values that fit in 64
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
    /// As [`LeanRound128::new`].
    pub(crate) fn new(d: u64, limit: u128) -> Option<Self> {
        let divide = DivideBelow63::new(d)?;
        let half = u128::from(d / 2);
        let even = u128::from(d.is_multiple_of(2));
        // `y < 2^bits ≤ 2^63`: what the division takes.
        for bits in (1..=63u32).rev() {
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

/// Whether every valid value of a Decimal128 array is within `±bound`.
fn decimals_within(input: &Decimal128Array, bound: i128) -> bool {
    match (min(input), max(input)) {
        (Some(low), Some(high)) => low >= -bound && high <= bound,
        _ => true,
    }
}

/// The remainder of 128-bit numerators below 2^127 by a 64-bit constant:
/// the high word by [`DivideBelow63`], then the two-word remainder by the
/// normalized divisor and its precomputed reciprocal (Möller and
/// Granlund, "Improved division by invariant integers", algorithm 4): two
/// multiply-highs and two multiplications, where a generic 128-bit division
/// by a constant needs a 256-bit product.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remainder128By64 {
    divisor: u64,
    high: DivideBelow63,
    /// The divisor shifted left until its top bit is set.
    normalized: u64,
    shift: u32,
    /// `⌊(2^128 − 1) / normalized⌋ − 2^64`.
    reciprocal: u64,
}

impl Remainder128By64 {
    /// The divisor `d`, or `None` unless `1 ≤ d < 2^63`.
    pub(crate) fn new(d: u64) -> Option<Self> {
        let high = DivideBelow63::new(d)?;
        // 1 to 63 (`DivideBelow63` takes divisors below 2^63 only); checked,
        // as `remainder` shifts by `64 - shift`.
        let shift = d.leading_zeros();
        if shift == 0 {
            return None;
        }
        let normalized = d << shift;
        let reciprocal = u64::try_from(u128::MAX / u128::from(normalized) - (1u128 << 64)).ok()?;
        Some(Self {
            divisor: d,
            high,
            normalized,
            shift,
            reciprocal,
        })
    }

    /// `n mod d` for `n < 2^127` (wrapping, never panicking, beyond).
    #[inline(always)]
    pub(crate) fn remainder(&self, n: u128) -> u64 {
        let (hi, lo) = ((n >> 64) as u64, n as u64);
        // hi < 2^63, so r1 < d and (r1, lo) / d fits in one word. Below
        // d·2^64 (every value of 20 digits or fewer, at a step of 10 or
        // more), the high word is its own remainder.
        let r1 = if hi < self.divisor {
            hi
        } else {
            hi.wrapping_sub(self.high.divide(hi).wrapping_mul(self.divisor))
        };
        // `new` takes divisors below 2^63 only: the shift is 1 to 63.
        let u1 = (r1 << self.shift) | (lo >> (64 - self.shift));
        let u0 = lo << self.shift;
        let d = self.normalized;
        let q = (u128::from(self.reciprocal) * u128::from(u1))
            .wrapping_add((u128::from(u1) << 64) | u128::from(u0));
        let (q1, q0) = (((q >> 64) as u64).wrapping_add(1), q as u64);
        let mut r = u0.wrapping_sub(q1.wrapping_mul(d));
        // The first correction is as likely as not: a conditional move
        // (LLVM made the masked form a branch).
        r = r.wrapping_add(std::hint::select_unpredictable(r > q0, d, 0));
        if r >= d {
            r = r.wrapping_sub(d);
        }
        r >> self.shift
    }
}

/// Rounding half away from zero to a step `d < 2^63` of 128-bit values of
/// magnitude up to [`Self::within`] (at least about 2^122 / d when short of
/// the clamp: nearly every `NUMBER(38, s)` value beyond 64 bits), in 64-bit
/// words with no branch, no absolute value and one [`DivideBelow63`]:
/// - `y = v + ⌊d/2⌋`, less one for a negative `v` when `d` is even, rounded
///   down to a multiple of `d` is `v` rounded half away from zero on either
///   side of zero;
/// - `B·2^64` is added, `B` a multiple of `d`'s odd part, so that
///   `B·2^64 ≡ 0 (mod d)` and the high word is not negative;
/// - then `y ≡ h·(2^62 mod d) + l (mod d)` with `h = ⌊y / 2^62⌋` and
///   `l = y mod 2^62`, below 2^63 while the high word is below `2^bits`,
///   and that high word is the range check: [`map_within`] ORs it over the
///   batch and rejects a set bit from `bits` up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeanRound128 {
    divisor: u64,
    divide: DivideBelow63,
    /// `2^62 mod d`.
    carry: u64,
    /// `⌊d/2⌋`.
    half: u64,
    /// All ones when `d` is even, else zero.
    even: u64,
    /// `B`.
    bias: u64,
    /// A value is within when its biased high word is below `2^bits`.
    bits: u32,
    /// Every value of magnitude up to this is within.
    within: u128,
}

impl LeanRound128 {
    /// The kernel for a step `d` (`1 ≤ d < 2^63`) where no value beyond
    /// `limit` may be accepted (the clamp and the exact path's bound), or
    /// `None` when no range of values suits both.
    pub(crate) fn new(d: u64, limit: u128) -> Option<Self> {
        let divide = DivideBelow63::new(d)?;
        let carry = (1u64 << 62) % d;
        let odd = d >> d.trailing_zeros();
        let half = u128::from(d / 2);
        let even = u128::from(d.is_multiple_of(2));
        // `h < 2^(bits + 2)` and `h·carry ≤ 2^62` keep the sum below 2^63;
        // `bits ≤ 62` keeps `y` below 2^126.
        let most = match (1u64 << 60).checked_div(carry) {
            Some(q) => q.checked_ilog2()?.min(62),
            None => 62,
        };
        for bits in (1..=most).rev() {
            let top = 1u64 << bits;
            let Some(bias) = (top / 2).div_ceil(odd).checked_mul(odd) else {
                continue;
            };
            if bias >= top {
                continue;
            }
            // Within: `y` from −B·2^64 to (2^bits − B)·2^64 − 1.
            let below = (u128::from(bias) << 64) + half - even;
            let Some(above) = ((u128::from(top - bias) << 64) - 1).checked_sub(half) else {
                continue;
            };
            if below.max(above) <= limit {
                return Some(Self {
                    divisor: d,
                    divide,
                    carry,
                    half: d / 2,
                    even: if d.is_multiple_of(2) { u64::MAX } else { 0 },
                    bias,
                    bits,
                    within: below.min(above),
                });
            }
        }
        None
    }

    /// The bits of the high word that mark a value outside.
    fn reject(&self) -> u64 {
        u64::MAX << self.bits
    }

    /// One value rounded (wrapping, never panicking, when outside) and its
    /// biased high word, below `2^bits` exactly when the value is within.
    #[inline(always)]
    pub(crate) fn round(&self, v: i128) -> (i128, u64) {
        let minus_one = ((v >> 127) as u64) & self.even;
        let biased = u128::from(self.bias) << 64;
        let y = (v as u128).wrapping_add(biased | u128::from(self.half.wrapping_add(minus_one)));
        let h = (y >> 62) as u64;
        let l = (y as u64) & ((1u64 << 62) - 1);
        let sum = h.wrapping_mul(self.carry).wrapping_add(l);
        let r = sum.wrapping_sub(self.divide.divide(sum).wrapping_mul(self.divisor));
        (
            y.wrapping_sub(biased | u128::from(r)) as i128,
            (y >> 64) as u64,
        )
    }
}

/// How [`StepRound128`] reduces by its step.
#[derive(Debug, Clone, Copy)]
enum Reduce128 {
    /// A step below 2^63 units: the remainder by two-word arithmetic.
    Narrow(Remainder128By64),
    /// Any other step: a 128-bit division by a constant.
    Wide(StrengthReducedU128),
}

/// [`StepRound64`] in 128 bits, for `NUMBER(p > 18, s)` and values beyond
/// 64 bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepRound128 {
    step: u128,
    reduce: Reduce128,
    half: u128,
    largest: u128,
    bound: i128,
    /// With a step below 2^63 units: the kernel for magnitudes whose
    /// rounding needs no clamp, tried first.
    lean: Option<LeanRound128>,
}

impl StepRound128 {
    /// As [`StepRound64::new`].
    pub(crate) fn new(scale: u32, step: (i128, u32), precision: Option<u8>) -> Option<Self> {
        let step_literal = step;
        let units = step_units(scale, step)?;
        let step = u128::try_from(units).ok()?;
        let half = step / 2;
        let largest = match largest_multiple(units, precision)? {
            None => u128::MAX,
            Some(l) => u128::try_from(l).ok()?,
        };
        // The exact path doubles a remainder below the step.
        if units > i128::MAX / 2 {
            return None;
        }
        let reduce = match u64::try_from(step).ok().and_then(Remainder128By64::new) {
            Some(narrow) => Reduce128::Narrow(narrow),
            None => Reduce128::Wide(StrengthReducedU128::new(step)),
        };
        let bound = (i128::MAX - i128::try_from(half).ok()?).min(exact_bound(scale, step_literal)?);
        let no_clamp = largest.saturating_sub(half).min(bound.unsigned_abs());
        let lean = u64::try_from(step)
            .ok()
            .and_then(|d| LeanRound128::new(d, no_clamp));
        Some(Self {
            step,
            reduce,
            half,
            largest,
            bound,
            lean,
        })
    }

    /// One value, with `rounded(n)` the largest multiple of the step not
    /// above `n` (`n < 2^127`); exact when `|v| ≤ bound`.
    #[inline(always)]
    fn round_with(&self, v: i128, rounded: impl Fn(u128) -> u128) -> i128 {
        let magnitude = rounded(v.unsigned_abs().wrapping_add(self.half));
        let clamped = magnitude.min(self.largest) as i128;
        if v < 0 {
            clamped.wrapping_neg()
        } else {
            clamped
        }
    }

    /// One value; exact when `|v| ≤ bound`.
    #[cfg(test)]
    fn round(&self, v: i128) -> i128 {
        match self.reduce {
            Reduce128::Narrow(k) => {
                self.round_with(v, |n| n.wrapping_sub(u128::from(k.remainder(n))))
            }
            Reduce128::Wide(k) => self.round_with(v, |n| (n / k).wrapping_mul(self.step)),
        }
    }

    /// Rounds a Decimal128 array, or `None` when a value is outside the
    /// exact range. The caller sets precision and scale.
    pub(crate) fn round_decimal(&self, input: &Decimal128Array) -> Option<Decimal128Array> {
        let this = *self;
        if let Some(k) = self.lean
            && let Some(out) = map_within(
                input,
                k.reject(),
                move |v| k.round(v),
                |a| i128::try_from(k.within).is_ok_and(|w| decimals_within(a, w)),
            )
        {
            return Some(out);
        }
        let bound = self.bound.unsigned_abs();
        let covers = |a: &Decimal128Array| decimals_within(a, self.bound);
        // One loop per reduction, so that each inlines its own arithmetic.
        match self.reduce {
            Reduce128::Narrow(k) => map_within(
                input,
                1,
                move |v| {
                    let r = this.round_with(v, |n| n.wrapping_sub(u128::from(k.remainder(n))));
                    (r, u64::from(v.unsigned_abs() > bound))
                },
                covers,
            ),
            Reduce128::Wide(k) => map_within(
                input,
                1,
                move |v| {
                    let r = this.round_with(v, |n| (n / k).wrapping_mul(this.step));
                    (r, u64::from(v.unsigned_abs() > bound))
                },
                covers,
            ),
        }
    }
}

/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const EPOCH_FROM_MARCH_0000: i64 = 719_468;
/// Days in a 400-year era.
const ERA_DAYS: i64 = 146_097;
/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_FROM_CE: i64 = 719_163;

/// Whether every day in `[low, high]` (days since 1970-01-01) is a date the
/// exact path (chrono) represents; outside that it shows NULL.
fn chrono_holds(low: i32, high: i32) -> bool {
    let first = i64::from(NaiveDate::MIN.num_days_from_ce()) - EPOCH_FROM_CE;
    let last = i64::from(NaiveDate::MAX.num_days_from_ce()) - EPOCH_FROM_CE;
    i64::from(low) >= first && i64::from(high) <= last
}

/// Year (March-based: January and February count to the year before), day
/// of that year (0 = March 1st) of a day since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, all divisions by constants).
#[inline(always)]
fn march_year(days: i32) -> (i64, i64) {
    let z = i64::from(days) + EPOCH_FROM_MARCH_0000;
    let era = if z >= 0 { z } else { z - (ERA_DAYS - 1) } / ERA_DAYS;
    let day_of_era = z - era * ERA_DAYS;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    (year_of_era + era * 400, day_of_year)
}

/// The first day of the month of `days` (days since 1970-01-01).
#[inline(always)]
pub(crate) fn month_start(days: i32) -> i32 {
    let (_, day_of_year) = march_year(days);
    let month_index = (5 * day_of_year + 2) / 153;
    let day_of_month = day_of_year - (153 * month_index + 2) / 5;
    (i64::from(days) - day_of_month) as i32
}

/// January 1st of the year of `days` (days since 1970-01-01).
#[inline(always)]
pub(crate) fn year_start(days: i32) -> i32 {
    let (march_year, day_of_year) = march_year(days);
    // March..December (day of year < 306) belong to the civil year
    // `march_year`; January and February to the next one. Its January 1st
    // is day 306 of March-year (civil year − 1).
    let civil = march_year + i64::from(day_of_year >= 306);
    let y = civil - 1;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let year_of_era = y - era * 400;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + 306;
    (era * ERA_DAYS + day_of_era - EPOCH_FROM_MARCH_0000) as i32
}

/// A date truncation kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateTruncation {
    /// Dates are already whole days: the input is the answer.
    Identity,
    /// The first of the month.
    Month,
    /// The first of January.
    Year,
}

/// Truncates a Date32 array, or `None` when a date lies outside the range
/// the exact path represents (it shows NULL there).
pub(crate) fn truncate_dates(input: &Date32Array, unit: DateTruncation) -> Option<Date32Array> {
    let covers = |a: &Date32Array| match (min(a), max(a)) {
        (Some(low), Some(high)) => chrono_holds(low, high),
        _ => true,
    };
    match unit {
        DateTruncation::Identity => covers(input).then(|| input.clone()),
        DateTruncation::Month => map_within(
            input,
            1,
            |d| (month_start(d), u64::from(!chrono_holds(d, d))),
            covers,
        ),
        DateTruncation::Year => map_within(
            input,
            1,
            |d| (year_start(d), u64::from(!chrono_holds(d, d))),
            covers,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::round_scaled;
    use proptest::prelude::*;

    fn exact_date(days: i32, month: bool) -> i32 {
        let date = NaiveDate::from_num_days_from_ce_opt(days + EPOCH_FROM_CE as i32)
            .unwrap_or_else(|| panic!("day {days} in range"));
        let first = if month {
            date.with_day(1)
        } else {
            NaiveDate::from_ymd_opt(date.year(), 1, 1)
        };
        first
            .unwrap_or_else(|| panic!("first of {date}"))
            .num_days_from_ce()
            - EPOCH_FROM_CE as i32
    }

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
    ) -> Result<(), TestCaseError> {
        let w = i128::try_from(within).unwrap_or(i128::MAX);
        let ends = [
            w,
            -w,
            w.saturating_add(1),
            w.saturating_add(1).saturating_neg(),
        ];
        for &v in values.iter().chain(&ends) {
            let (rounded, inside) = round(v);
            prop_assert!(inside || v.unsigned_abs() > within, "{v} rejected");
            if inside {
                prop_assert!(v.unsigned_abs() <= limit, "{v} beyond {limit}");
                let d = u128::from(d);
                let magnitude = (v.unsigned_abs() + d / 2) / d * d;
                let exact = if v < 0 {
                    -(magnitude as i128)
                } else {
                    magnitude as i128
                };
                prop_assert_eq!(rounded, exact, "{}", v);
            }
        }
        Ok(())
    }

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

        #[test]
        fn remainder_128_by_64_equals_the_remainder(
            d in prop_oneof![1u64..1_000, 1u64..=i64::MAX as u64, (0u32..63).prop_map(|k| 1u64 << k)],
            n in prop_oneof![0u128..1_000_000, 0u128..(1u128 << 127), (0u128..1_000).prop_map(|k| (1u128 << 127) - 1 - k)],
        ) {
            let k = Remainder128By64::new(d).unwrap_or_else(|| panic!("divisor {d}"));
            prop_assert_eq!(u128::from(k.remainder(n)), n % u128::from(d));
            // Either side of the multiple of d below n.
            let multiple = n - n % u128::from(d);
            prop_assert_eq!(k.remainder(multiple), 0);
            if multiple > 0 {
                prop_assert_eq!(u128::from(k.remainder(multiple - 1)), (multiple - 1) % u128::from(d));
            }
        }

        #[test]
        fn lean_round_128_equals_half_away_rounding(
            d in prop_oneof![1u64..1_000, 1u64..=i64::MAX as u64, (0u32..63).prop_map(|k| 1u64 << k)],
            limit in prop_oneof![Just(i128::MAX as u128 / 2), 0u128..(1u128 << 80), 0u128..(i128::MAX as u128 / 2)],
            v in prop_oneof![-1_000i128..1_000, -10i128.pow(25)..10i128.pow(25), any::<i128>()],
        ) {
            if let Some(k) = LeanRound128::new(d, limit) {
                let round = |v| {
                    let (rounded, high) = k.round(v);
                    (rounded, high & k.reject() == 0)
                };
                check_lean(round, d, limit, k.within, &[v, v / 1_000_000])?;
            }
        }

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

        #[test]
        fn step_round_128_equals_the_exact_path(
            value in prop_oneof![-10i128.pow(20)..10i128.pow(20), any::<i128>()],
            scale in 0u32..10,
            mantissa in prop_oneof![1i128..1_000, 1i128..10i128.pow(30)],
            step_scale in 0u32..12,
            precision in prop::option::of(1u8..=38),
        ) {
            let step = (mantissa, step_scale);
            if let Some(k) = StepRound128::new(scale, step, precision)
                && value >= -k.bound && value <= k.bound
            {
                prop_assert_eq!(Some(k.round(value)), round_scaled(value, scale, step, precision));
                // The lean kernel on the values it accepts, at both ends of
                // its range too.
                if let Some(lean) = k.lean {
                    let within = i128::try_from(lean.within).unwrap_or(i128::MAX);
                    for v in [value, within, -within] {
                        let (rounded, high) = lean.round(v);
                        if high & lean.reject() == 0 {
                            prop_assert_eq!(Some(rounded), round_scaled(v, scale, step, precision));
                        }
                    }
                }
            }
        }

        #[test]
        fn date_kernels_equal_chrono(days in prop_oneof![-800_000i32..800_000, -95_000_000i32..95_000_000]) {
            prop_assume!(chrono_holds(days, days));
            prop_assert_eq!(month_start(days), exact_date(days, true));
            prop_assert_eq!(year_start(days), exact_date(days, false));
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
    fn the_lean_kernel_takes_number_38_values_beyond_64_bits() {
        // Cents to whole units in NUMBER(38,2): the lean kernel, up to
        // 10^36 at least, half away from zero on both sides.
        let k = StepRound128::new(2, (1, 0), Some(38)).and_then(|k| k.lean);
        let k = k.unwrap_or_else(|| panic!("no lean kernel for NUMBER(38,2)"));
        assert!(k.within >= 10u128.pow(36), "within {}", k.within);
        for (v, rounded) in [
            (
                6_000_000_000_000_000_000_050i128,
                6_000_000_000_000_000_000_100,
            ),
            (
                -6_000_000_000_000_000_000_050,
                -6_000_000_000_000_000_000_100,
            ),
            (
                -6_000_000_000_000_000_000_049,
                -6_000_000_000_000_000_000_000,
            ),
            (-50, -100),
            (-49, 0),
            (149, 100),
        ] {
            let (got, high) = k.round(v);
            assert_eq!((got, high & k.reject()), (rounded, 0), "{v}");
        }
        // Beyond the declared precision's clamp: not taken.
        let (_, high) = k.round(10i128.pow(38));
        assert_ne!(high & k.reject(), 0);
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
        // Every date edge chrono knows.
        for days in [
            i64::from(NaiveDate::MIN.num_days_from_ce()) - EPOCH_FROM_CE,
            i64::from(NaiveDate::MAX.num_days_from_ce()) - EPOCH_FROM_CE,
            -1,
            0,
            59,
            -719_162,
        ] {
            let days = days as i32;
            assert_eq!(month_start(days), exact_date(days, true), "day {days}");
            assert_eq!(year_start(days), exact_date(days, false), "day {days}");
        }
    }
}
