//! Shared kernel of `show_first` / `show_last` (Ranger-style partial masks):
//! kept characters pass through, the others become `X` (upper-case letters),
//! `x` (lower-case letters), `n` (digits); anything else is kept.
//!
//! A batch whose text is all ASCII and within the declared length is masked
//! as one run of bytes: every byte classified in one pass the compiler
//! vectorizes, then each value's kept characters copied back. Any other
//! batch is masked value by value into one preallocated buffer (a masked
//! value is never longer than its input): ASCII values by byte arithmetic,
//! others by the exact per-character rule ([`show_into`], also the
//! reference both fast paths are tested against). `Utf8View` values are
//! gathered into one run first and viewed in place after.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericStringArray, OffsetSizeTrait, StringBuilder, StringViewArray,
};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::strings::{
    apply_to_first, is_string_type, literal_str, literal_type, max_chars, string_return_type,
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
        let shape = Shape {
            keep,
            from_start: self.from_start,
            max: max_chars(literal_type(&args.args, 2)?) as usize,
        };
        apply_to_first(&args.args, |array| show_array(array, shape))
    }
}

/// What a partial mask keeps: `keep` characters from the start or the end,
/// at most `max` characters in all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    keep: usize,
    from_start: bool,
    max: usize,
}

/// Masks every string of `array` (any layout; a dictionary's values once).
pub(crate) fn show_array(array: &ArrayRef, shape: Shape) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Utf8 => Ok(Arc::new(show_offsets(array.as_string::<i32>(), shape)?)),
        DataType::LargeUtf8 => Ok(Arc::new(show_offsets(array.as_string::<i64>(), shape)?)),
        DataType::Utf8View => show_views(array.as_string_view(), shape),
        DataType::Dictionary(_, value) if is_string_type(value) => {
            let dictionary = array.as_any_dictionary();
            let values = show_array(dictionary.values(), shape)?;
            Ok(dictionary.with_values(values))
        }
        other => exec_err!("a string mask was applied to a {other} value"),
    }
}

/// `Utf8`/`LargeUtf8`: an ASCII batch whose values all fit the declared
/// length by [`show_ascii_run`]; any other batch value by value, the masked
/// values one after another in one buffer sized for the input's bytes
/// (NULL slots empty).
fn show_offsets<O: OffsetSizeTrait>(
    input: &GenericStringArray<O>,
    shape: Shape,
) -> Result<GenericStringArray<O>> {
    let offsets = input.value_offsets();
    let first = offsets.first().map_or(0, |o| o.as_usize());
    let last = offsets.last().map_or(0, |o| o.as_usize());
    let run = input.value_data().get(first..last).unwrap_or_default();
    let longest = offsets
        .windows(2)
        .map(|w| (w[1] - w[0]).as_usize())
        .max()
        .unwrap_or(0);
    if longest <= shape.max && run.is_ascii() {
        return show_ascii_run(input, run, shape);
    }
    let mut values = Vec::with_capacity(last - first);
    let mut out_offsets = Vec::with_capacity(input.len() + 1);
    out_offsets.push(O::usize_as(0));
    let nulls = input.nulls();
    for i in 0..input.len() {
        if nulls.is_none_or(|n| n.is_valid(i)) {
            show_bytes(input.value(i), shape, &mut values);
        }
        out_offsets.push(O::usize_as(values.len()));
    }
    Ok(GenericStringArray::<O>::try_new(
        OffsetBuffer::new(ScalarBuffer::from(out_offsets)),
        Buffer::from_vec(values),
        nulls.cloned(),
    )?)
}

/// An ASCII batch none of whose values is longer than the declared length
/// (one byte per character, nothing truncated): every byte of the run is
/// classified in one pass the compiler vectorizes, then each valid value's
/// kept characters are copied back from the input. The offsets are the
/// input's, rebased to zero. Bytes under a NULL slot are classified too,
/// and never read.
fn show_ascii_run<O: OffsetSizeTrait>(
    input: &GenericStringArray<O>,
    run: &[u8],
    shape: Shape,
) -> Result<GenericStringArray<O>> {
    let mut values: Vec<u8> = run.iter().map(|&b| class_of_ascii(b)).collect();
    let offsets = input.value_offsets();
    let first = offsets.first().copied().unwrap_or_else(O::zero);
    let nulls = input.nulls();
    for (i, w) in offsets.windows(2).enumerate() {
        if nulls.is_some_and(|n| n.is_null(i)) {
            continue;
        }
        let (start, end) = ((w[0] - first).as_usize(), (w[1] - first).as_usize());
        restore_kept(&mut values, run, start..end, shape);
    }
    let offsets: Vec<O> = offsets.iter().map(|&o| o - first).collect();
    Ok(GenericStringArray::<O>::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        nulls.cloned(),
    )?)
}

/// Copies the kept characters of the ASCII value at `value` back from
/// `run` over their classified bytes in `out`. The usual case (a few kept
/// characters of a value of 8 bytes or more) is one 8-byte blend rather
/// than a call to `memcpy` per value.
#[inline(always)]
fn restore_kept(out: &mut [u8], run: &[u8], value: std::ops::Range<usize>, shape: Shape) {
    let keep = shape.keep.min(value.len());
    if keep == 0 {
        return;
    }
    if value.len() >= 8 && keep <= 8 {
        // Little-endian: the first `keep` bytes of the word are its low
        // bytes, the last `keep` its high ones (a shift of 0 to 56 bits).
        let (window, mask) = if shape.from_start {
            (value.start..value.start + 8, u64::MAX >> (8 * (8 - keep)))
        } else {
            (value.end - 8..value.end, u64::MAX << (8 * (8 - keep)))
        };
        let word = |bytes: Option<&[u8]>| {
            bytes
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        };
        if let (Some(masked), Some(raw)) =
            (word(out.get(window.clone())), word(run.get(window.clone())))
            && let Some(slot) = out.get_mut(window)
        {
            slot.copy_from_slice(&((masked & !mask) | (raw & mask)).to_le_bytes());
        }
        return;
    }
    let kept = if shape.from_start {
        value.start..value.start + keep
    } else {
        value.end - keep..value.end
    };
    if let (Some(slot), Some(raw)) = (out.get_mut(kept.clone()), run.get(kept)) {
        slot.copy_from_slice(raw);
    }
}

/// `Utf8View`: the values are gathered into one contiguous `Utf8` array
/// (one copy each), masked there as [`show_offsets`] masks, and viewed in
/// place: arrow makes `Utf8` views without validating the text again, where
/// views built by hand are validated value by value.
fn show_views(input: &StringViewArray, shape: Shape) -> Result<ArrayRef> {
    let total: usize = input.lengths().map(|l| l as usize).sum();
    if i32::try_from(total).is_err() {
        return exec_err!("a string batch of {total} bytes is too large to mask in one piece");
    }
    let mut contiguous = StringBuilder::with_capacity(input.len(), total);
    for value in input.iter() {
        contiguous.append_option(value);
    }
    let masked = show_offsets(&contiguous.finish(), shape)?;
    Ok(Arc::new(StringViewArray::from(&masked)))
}

/// Appends the masked form of `value` to `out`: the ASCII fast path (one
/// byte per character: copy, then classify the hidden bytes in place) or
/// the exact per-character path.
#[inline]
fn show_bytes(value: &str, shape: Shape, out: &mut Vec<u8>) {
    let bytes = value.as_bytes();
    if !bytes.is_ascii() {
        let mut text = String::with_capacity(bytes.len());
        show_into(value, shape.keep, shape.from_start, shape.max, &mut text);
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let shown = bytes.len().min(shape.max);
    // The hidden characters, as a range of the (truncated) value.
    let hidden = if shape.from_start {
        shape.keep.min(shown)..shown
    } else {
        0..bytes.len().saturating_sub(shape.keep).min(shown)
    };
    let start = out.len();
    out.extend_from_slice(&bytes[..shown]);
    for b in &mut out[start + hidden.start..start + hidden.end] {
        *b = class_of_ascii(*b);
    }
}

/// [`class_of`] for an ASCII byte, branch-free so loops over bytes
/// vectorize.
#[inline(always)]
fn class_of_ascii(b: u8) -> u8 {
    if b.wrapping_sub(b'A') < 26 {
        b'X'
    } else if b.wrapping_sub(b'a') < 26 {
        b'x'
    } else if b.wrapping_sub(b'0') < 10 {
        b'n'
    } else {
        b
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
/// characters masked, at most `max` characters in all: the exact rule, one
/// character at a time.
pub(crate) fn show_into(value: &str, keep: usize, from_start: bool, max: usize, out: &mut String) {
    let total = value.chars().count();
    let hidden_before = if from_start {
        0
    } else {
        total.saturating_sub(keep)
    };
    for (i, c) in value.chars().take(max).enumerate() {
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
        show_into(v, keep, first, usize::MAX, &mut out);
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

    /// The masked arrays of `values` in every layout (and sliced) against
    /// the exact rule, value by value.
    fn check_against_the_exact_rule(
        values: &[Option<String>],
        shape: Shape,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        use crate::strings::test_util::{all_layouts, strings};
        use proptest::prelude::*;
        let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        let want: Vec<Option<String>> = values
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
                    let mut out = String::new();
                    show_into(v, shape.keep, shape.from_start, shape.max, &mut out);
                    out
                })
            })
            .collect();
        for array in all_layouts(&refs) {
            let got = show_array(&array, shape).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got.data_type(), array.data_type());
            prop_assert_eq!(strings(&got), want.clone());
        }
        // A slice of the array (offsets not starting at zero).
        if refs.len() > 2 {
            for array in all_layouts(&refs) {
                let sliced = array.slice(1, refs.len() - 2);
                let got =
                    show_array(&sliced, shape).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(strings(&got), want[1..refs.len() - 1].to_vec());
            }
        }
        Ok(())
    }

    /// Runs [`check_against_the_exact_rule`] over generated batches, keep
    /// counts, directions and length limits.
    fn run_against_the_exact_rule(
        strategy: impl proptest::strategy::Strategy<Value = (Vec<Option<String>>, usize, bool, usize)>,
    ) {
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&strategy, |(values, keep, from_start, max)| {
                let shape = Shape {
                    keep,
                    from_start,
                    max,
                };
                check_against_the_exact_rule(&values, shape)
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The kernels against the exact rule, value by value, in every layout:
    /// ASCII and Unicode text, NULLs, any keep and length limit.
    #[test]
    fn kernel_equals_the_exact_rule() {
        use proptest::prelude::*;
        let value = prop_oneof!["[ -~]{0,40}", "\\PC{0,20}", "[a-zA-Z0-9@.é日-]{0,30}"];
        run_against_the_exact_rule((
            prop::collection::vec(prop::option::weighted(0.85, value), 0..30),
            0usize..12,
            any::<bool>(),
            prop_oneof![1usize..16, Just(crate::sftype::MAX_VARCHAR as usize)],
        ));
    }

    /// Batches that take the whole-run ASCII path (every value ASCII and
    /// within the declared length) and batches just over it, against the
    /// exact rule.
    #[test]
    fn ascii_run_equals_the_exact_rule() {
        use proptest::prelude::*;
        run_against_the_exact_rule((
            prop::collection::vec(prop::option::weighted(0.85, "[ -~]{0,40}"), 0..40),
            0usize..45,
            any::<bool>(),
            prop_oneof![38usize..42, Just(crate::sftype::MAX_VARCHAR as usize)],
        ));
    }
}
