//! Shared kernel of `show_first` / `show_last` (Ranger-style partial masks):
//! kept characters pass through, the others become `X` (upper-case letters),
//! `x` (lower-case letters), `n` (digits); anything else is kept.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::strings::{
    apply_to_first, literal_str, literal_type, map_strings, max_chars, string_return_type,
};

/// Partial mask that shows the first or last *n* characters.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskShowFunc {
    signature: Signature,
    from_start: bool,
}

impl MaskShowFunc {
    /// `show_first` when `from_start`, else `show_last`.
    pub(crate) fn new(from_start: bool) -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
            from_start,
        }
    }
}

impl ScalarUDFImpl for MaskShowFunc {
    fn name(&self) -> &str {
        if self.from_start {
            "veil_mask_show_first"
        } else {
            "veil_mask_show_last"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let keep_text = literal_str(&args.args, 1, "character count")?;
        let Ok(keep) = keep_text.parse::<usize>() else {
            return exec_err!(
                "{} needs a non-negative character count, got '{keep_text}'",
                self.name()
            );
        };
        let max = max_chars(literal_type(&args.args, 2)?);
        let from_start = self.from_start;
        apply_to_first(&args.args, |array| {
            map_strings(array, &mut |value, out| {
                show_into(value, keep, from_start, max, out);
                true
            })
        })
    }
}

/// The partial-mask class of a hidden character.
#[inline]
pub(crate) fn class_of(c: char) -> char {
    if c.is_uppercase() {
        'X'
    } else if c.is_alphabetic() {
        // Lower-case and caseless letters (CJK, Arabic, combining signs...):
        // a caseless letter kept as-is would be revealed.
        'x'
    } else if c.is_numeric() {
        'n'
    } else {
        c
    }
}

/// Writes `value` with all but the first (`from_start`) or last `keep`
/// characters masked, at most `max` characters in all.
pub(crate) fn show_into(value: &str, keep: usize, from_start: bool, max: u32, out: &mut String) {
    let total = value.chars().count();
    let hidden_before = if from_start {
        0
    } else {
        total.saturating_sub(keep)
    };
    for (i, c) in value.chars().take(max as usize).enumerate() {
        let shown = if from_start {
            i < keep
        } else {
            i >= hidden_before
        };
        out.push(if shown { c } else { class_of(c) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(v: &str, keep: usize, first: bool) -> String {
        let mut out = String::new();
        show_into(v, keep, first, u32::MAX, &mut out);
        out
    }

    #[test]
    fn show_last_keeps_the_tail() {
        assert_eq!(show("111-11-1111", 4, false), "nnn-nn-1111");
        assert_eq!(show("Ab1", 10, false), "Ab1");
        assert_eq!(show("Ab1-é", 0, false), "Xxn-x");
        // Caseless letters are hidden too.
        assert_eq!(show("日本-12", 1, false), "xx-n2");
    }

    #[test]
    fn show_first_keeps_the_head() {
        assert_eq!(show("alice@x.com", 2, true), "alxxx@x.xxx");
    }
}
