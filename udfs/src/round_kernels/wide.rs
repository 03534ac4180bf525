//! The 128-bit kernels: Decimal128 values beyond 64 bits and
//! `NUMBER(p > 18, s)`.

use datafusion::arrow::array::Decimal128Array;
use strength_reduce::StrengthReducedU128;

use super::{
    DivideBelow63, decimals_within, exact_bound, largest_multiple, map_within, step_units,
};

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

/// [`StepRound64`](super::StepRound64) in 128 bits, for `NUMBER(p > 18, s)` and values beyond
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
    /// As [`StepRound64::new`](super::StepRound64::new).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::round_scaled;
    use crate::round_kernels::check_lean;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

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
}
