//! `veil_mask_hash(value, scope, declared_type)`: salted SHA-256 in lower-case
//! hex (SPEC rule 16), fitted to the declared type.
//!
//! The salt is the workspace secret, then `/` and `scope` (the upper-cased
//! fully qualified table name) when `scope` is not empty. The secret lives in
//! the function and never appears in SQL, plans or errors.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericStringArray, OffsetSizeTrait, StringViewArray,
};
use datafusion::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sha2::{Digest, Sha256};

use crate::fit::truncate_chars;
use crate::strings::{
    apply_to_first, is_string_type, literal_str, literal_type, max_chars, string_return_type,
};

/// Hashing mask bound to a workspace secret.
#[derive(PartialEq, Eq, Hash)]
pub struct MaskHashFunc {
    signature: Signature,
    secret: Arc<str>,
}

impl fmt::Debug for MaskHashFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskHashFunc")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl MaskHashFunc {
    /// A hash mask salted with `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
            secret: Arc::from(secret),
        }
    }

    /// The hasher state after absorbing the salt for `scope`.
    fn salted(&self, scope: &str) -> Sha256 {
        let mut hasher = Sha256::new();
        hasher.update(self.secret.as_bytes());
        if !scope.is_empty() {
            hasher.update(b"/");
            hasher.update(scope.as_bytes());
        }
        hasher
    }
}

/// Writes the lower-case hex SHA-256 of the salted value into `out`, keeping at
/// most `max` characters, through a stack buffer (no allocation per value).
#[inline]
pub fn hash_hex_into(base: &Sha256, value: &[u8], max: u32, out: &mut String) {
    let mut hex = [0u8; 64];
    let keep = (max as usize).min(64);
    hash_hex_prefix(base, value, &mut hex[..keep]);
    // Hex digits are ASCII, so any prefix is valid UTF-8.
    out.push_str(std::str::from_utf8(&hex[..keep]).unwrap_or_default());
}

impl ScalarUDFImpl for MaskHashFunc {
    fn name(&self) -> &str {
        "veil_mask_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type("hash", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scope = literal_str(&args.args, 1, "scope")?;
        let max = max_chars(literal_type(&args.args, 2)?);
        let base = self.salted(&scope);
        let width = (max as usize).min(64);
        apply_to_first(&args.args, |array| hash_array(array, &base, width))
    }
}

/// Hashes every string of `array` (any layout; a dictionary's values once,
/// through the same fixed-width paths).
fn hash_array(array: &ArrayRef, base: &Sha256, width: usize) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Utf8 => hash_offsets::<i32>(array.as_string::<i32>(), base, width),
        DataType::LargeUtf8 => hash_offsets::<i64>(array.as_string::<i64>(), base, width),
        DataType::Utf8View => hash_views(array.as_string_view(), base, width),
        DataType::Dictionary(_, value) if is_string_type(value) => {
            let dictionary = array.as_any_dictionary();
            let values = hash_array(dictionary.values(), base, width)?;
            Ok(dictionary.with_values(values))
        }
        other => exec_err!("hash was applied to a {other} value"),
    }
}

/// The lower-case hex digit of a nibble (0 to 15), branch-free so that
/// encoding a digest vectorizes.
#[inline(always)]
fn hex_digit(nibble: u8) -> u8 {
    // All ones above 9, where the digit is a letter: b'a' - b'0' - 10 = 39
    // further on.
    let letter = (9i8.wrapping_sub(nibble as i8) >> 7) as u8;
    nibble + b'0' + (letter & 39)
}

/// The lower-case hex of the salted digest of `value`, built in a stack
/// buffer (the nibbles of all 32 bytes at once: no table lookups).
#[inline(always)]
fn hex_digest(base: &Sha256, value: &[u8]) -> [u8; 64] {
    let digest: [u8; 32] = base.clone().chain_update(value).finalize().into();
    let mut hex = [0u8; 64];
    for (i, byte) in digest.into_iter().enumerate() {
        hex[2 * i] = hex_digit(byte >> 4);
        hex[2 * i + 1] = hex_digit(byte & 0x0f);
    }
    hex
}

/// Writes the first `out.len()` (at most 64) hex digits of the salted digest
/// of `value` into `out`.
#[inline(always)]
fn hash_hex_prefix(base: &Sha256, value: &[u8], out: &mut [u8]) {
    let hex = hex_digest(base, value);
    let n = out.len().min(64);
    out[..n].copy_from_slice(&hex[..n]);
}

/// Hashes have a fixed width, so every slot (NULL ones too, left as zero
/// bytes under the reused null mask) is `width` bytes: offsets are known up
/// front and each value's hex digits are appended from the stack buffer to
/// one preallocated values buffer.
fn hash_fixed_width<'a, O: OffsetSizeTrait>(
    len: usize,
    nulls: Option<&NullBuffer>,
    value: impl Fn(usize) -> &'a str,
    base: &Sha256,
    width: usize,
) -> Result<GenericStringArray<O>> {
    let mut values = Vec::with_capacity(len * width);
    for i in 0..len {
        if nulls.is_some_and(|n| n.is_null(i)) {
            values.extend_from_slice(&[0u8; 64][..width]);
        } else {
            let hex = hex_digest(base, value(i).as_bytes());
            // The whole digest (a `VARCHAR` of 64 or more) is a copy of a
            // known size, inlined; a prefix is a call to `memcpy`.
            match hex.get(..width) {
                Some(prefix) if width < hex.len() => values.extend_from_slice(prefix),
                _ => values.extend_from_slice(&hex),
            }
        }
    }
    let offsets: Vec<O> = (0..=len).map(|i| O::usize_as(i * width)).collect();
    Ok(GenericStringArray::<O>::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        nulls.cloned(),
    )?)
}

/// `Utf8`/`LargeUtf8`: [`hash_fixed_width`] in the input's layout.
fn hash_offsets<O: OffsetSizeTrait>(
    input: &GenericStringArray<O>,
    base: &Sha256,
    width: usize,
) -> Result<ArrayRef> {
    let out = hash_fixed_width::<O>(input.len(), input.nulls(), |i| input.value(i), base, width)?;
    Ok(Arc::new(out))
}

/// `Utf8View`: [`hash_fixed_width`], viewed in place (arrow makes `Utf8`
/// views without validating the text again, where views built by hand are
/// validated value by value).
fn hash_views(input: &StringViewArray, base: &Sha256, width: usize) -> Result<ArrayRef> {
    let out = hash_fixed_width::<i32>(input.len(), input.nulls(), |i| input.value(i), base, width)?;
    Ok(Arc::new(StringViewArray::from(&out)))
}

/// Reference implementation used by tests and benches:
/// `lower(hex(sha256(salt || value)))` truncated to `max` characters.
pub fn reference_hash(secret: &str, scope: &str, value: &str, max: u32) -> String {
    let salt = if scope.is_empty() {
        secret.to_string()
    } else {
        format!("{secret}/{scope}")
    };
    let digest = Sha256::digest(format!("{salt}{value}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    truncate_chars(&hex, max).to_string()
}

/// The `veil_mask_hash` UDF salted with `secret`.
pub fn mask_hash(secret: &str) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskHashFunc::new(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::check_all_layouts;
    use datafusion::common::ScalarValue;

    fn lit(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    #[test]
    fn hash_truncates_to_varchar_length() {
        let udf = mask_hash("s3cret");
        let scope = "ANALYTICS.PUBLIC.CUSTOMERS";
        let a = reference_hash("s3cret", scope, "alice@x.com", 6);
        let b = reference_hash("s3cret", scope, "日本", 6);
        assert_eq!(a.len(), 6);
        check_all_layouts(
            &udf,
            &[Some("alice@x.com"), None, Some("日本")],
            &[lit(scope), lit("VARCHAR(6)")],
            &[Some(&a), None, Some(&b)],
        );
    }

    #[test]
    fn hash_odd_width_keeps_a_prefix_and_nulls() {
        let udf = mask_hash("s3cret");
        let a = reference_hash("s3cret", "DB.S.T", "", 5);
        let b = reference_hash("s3cret", "DB.S.T", "ünï", 5);
        assert_eq!(a.chars().count(), 5);
        check_all_layouts(
            &udf,
            &[None, Some(""), None, Some("ünï")],
            &[lit("DB.S.T"), lit("VARCHAR(5)")],
            &[None, Some(&a), None, Some(&b)],
        );
    }

    #[test]
    fn hash_is_salted_per_scope() {
        let per_table = reference_hash("k", "DB.S.T1", "v", 64);
        let other_table = reference_hash("k", "DB.S.T2", "v", 64);
        let global = reference_hash("k", "", "v", 64);
        assert_ne!(per_table, other_table);
        assert_ne!(per_table, global);
        // Global scope salts with the secret alone: sha256("k" || "v").
        let expected: String = Sha256::digest(b"kv")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(global, expected);
    }

    #[test]
    fn hash_full_length_for_long_varchar() {
        let udf = mask_hash("k");
        let full = reference_hash("k", "", "x", 64);
        assert_eq!(full.len(), 64);
        check_all_layouts(
            &udf,
            &[Some("x")],
            &[lit(""), lit("STRING")],
            &[Some(&full)],
        );
    }

    #[test]
    fn hex_digits_equal_format_for_every_byte() {
        for byte in 0..=255u8 {
            let pair = [hex_digit(byte >> 4), hex_digit(byte & 0x0f)];
            assert_eq!(pair.as_slice(), format!("{byte:02x}").as_bytes(), "{byte}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let f = MaskHashFunc::new("topsecret");
        assert!(!format!("{f:?}").contains("topsecret"));
    }
}
