//! Type fitting (SPEC rules 12–15): every masked value is made to fit the
//! column's declared Snowflake type, deterministically and without errors.

/// Appends to `out` the first `max_chars` Unicode scalar values of `value`
/// (never splitting a UTF-8 sequence).
#[inline]
pub fn push_truncated(out: &mut String, value: &str, max_chars: u32) {
    out.push_str(truncate_chars(value, max_chars));
}

/// The longest prefix of `value` with at most `max_chars` characters.
#[inline]
pub fn truncate_chars(value: &str, max_chars: u32) -> &str {
    let max = max_chars as usize;
    if value.len() <= max {
        // Fewer bytes than the limit means fewer characters too.
        return value;
    }
    match value.char_indices().nth(max) {
        Some((byte, _)) => &value[..byte],
        None => value,
    }
}

/// `10^exp` as `i128`, or `None` past `10^38`.
pub fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// Rounds `value / divisor` to the nearest integer, half away from zero.
pub fn div_round_half_away(value: i128, divisor: i128) -> Option<i128> {
    if divisor == 0 {
        return None;
    }
    let q = value / divisor;
    let r = value % divisor;
    // |2r| >= |divisor| means the remainder is at least half.
    if r.checked_abs()?.checked_mul(2)? >= divisor.checked_abs()? {
        if (value < 0) != (divisor < 0) {
            q.checked_sub(1)
        } else {
            q.checked_add(1)
        }
    } else {
        Some(q)
    }
}

/// Fits a scaled integer (value × 10^`scale`) into `NUMBER(precision, scale)`:
/// if it needs more than `precision − scale` integer digits it is clamped
/// toward zero to the largest value of the same sign that fits and is a
/// multiple of `step` (also at `scale`; `1` when there is no step).
pub fn clamp_to_precision(value: i128, precision: u8, step: i128) -> Option<i128> {
    let limit = pow10(u32::from(precision))? - 1;
    if value.checked_abs()? <= limit {
        return Some(value);
    }
    let step = step.checked_abs()?.max(1);
    let largest = (limit / step) * step;
    Some(if value < 0 { -largest } else { largest })
}

/// A decimal literal such as `10`, `-2.5` or `0.05` as (mantissa, scale).
pub fn parse_decimal(text: &str) -> Option<(i128, u32)> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.chars().chain(frac_part.chars()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c as u8 - b'0'))?;
    }
    let scale = u32::try_from(frac_part.len()).ok()?;
    if scale > 38 {
        return None;
    }
    Some((if negative { -mantissa } else { mantissa }, scale))
}

/// Rounds a scaled value (`value` × 10^-`scale`) to the nearest multiple of
/// `step` (half away from zero), then fits it to `NUMBER(precision, scale)`.
/// Returns the result at `scale`, or `None` when it cannot be represented
/// (the caller shows NULL: never an error, never the raw value).
pub fn round_scaled(
    value: i128,
    scale: u32,
    step: (i128, u32),
    precision: Option<u8>,
) -> Option<i128> {
    let (step_mantissa, step_scale) = step;
    if step_mantissa <= 0 {
        return None;
    }
    let common = scale.max(step_scale);
    let v = value.checked_mul(pow10(common - scale)?)?;
    let s = step_mantissa.checked_mul(pow10(common - step_scale)?)?;
    let rounded = div_round_half_away(v, s)?.checked_mul(s)?;
    let at_scale = div_round_half_away(rounded, pow10(common - scale)?)?;
    match precision {
        None => Some(at_scale),
        Some(p) => {
            // The step expressed at the column's scale (at least one unit).
            let step_at_scale = (s / pow10(common - scale)?).max(1);
            let fitted = clamp_to_precision(at_scale, p, step_at_scale)?;
            // Keep a multiple of the step when the clamp moved the value.
            if fitted != at_scale && (fitted * pow10(common - scale)?) % s != 0 {
                let limit_common = fitted.checked_abs()?.checked_mul(pow10(common - scale)?)?;
                let largest = (limit_common / s) * s / pow10(common - scale)?;
                Some(if fitted < 0 { -largest } else { largest })
            } else {
                Some(fitted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_characters_not_bytes() {
        assert_eq!(truncate_chars("REDACTED", 5), "REDAC");
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("日本語テキスト", 3), "日本語");
        assert_eq!(truncate_chars("abc", 10), "abc");
        assert_eq!(truncate_chars("", 3), "");
        assert_eq!(truncate_chars("🦀🦀🦀", 1), "🦀");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(15, 10), Some(2));
        assert_eq!(div_round_half_away(-15, 10), Some(-2));
        assert_eq!(div_round_half_away(14, 10), Some(1));
        assert_eq!(div_round_half_away(-14, 10), Some(-1));
    }

    #[test]
    fn rounding_clamps_toward_zero_to_a_step_multiple() {
        let ten = (10, 0);
        assert_eq!(round_scaled(994, 0, ten, Some(3)), Some(990));
        assert_eq!(round_scaled(754, 0, ten, Some(3)), Some(750));
        assert_eq!(round_scaled(376, 0, ten, Some(3)), Some(380));
        assert_eq!(round_scaled(996, 0, ten, Some(3)), Some(990));
        assert_eq!(round_scaled(-996, 0, ten, Some(3)), Some(-990));
        assert_eq!(round_scaled(995, 0, ten, None), Some(1000));
    }

    #[test]
    fn rounding_respects_scale() {
        // 12.345 in NUMBER(6,3) to the nearest 0.05 -> 12.350
        assert_eq!(round_scaled(12_345, 3, (5, 2), Some(6)), Some(12_350));
        // 1.25 to the nearest 0.5 in NUMBER(2,0): 1.5 then scale 0 -> 2
        assert_eq!(round_scaled(125, 2, (5, 1), Some(4)), Some(150));
        // 99.99 to step 1 in NUMBER(4,2): 100.00 needs 3 integer digits -> 99.00
        assert_eq!(round_scaled(9_999, 2, (1, 0), Some(4)), Some(9_900));
    }

    #[test]
    fn parses_decimal_literals() {
        assert_eq!(parse_decimal("10"), Some((10, 0)));
        assert_eq!(parse_decimal("-2.5"), Some((-25, 1)));
        assert_eq!(parse_decimal("0.05"), Some((5, 2)));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
    }
}
