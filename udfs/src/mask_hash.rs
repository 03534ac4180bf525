//! `veil_mask_hash(value, scope, declared_type)`: salted SHA-256 in lower-case
//! hex (SPEC rule 16), fitted to the declared type.
//!
//! The salt is the workspace secret, then `/` and `scope` (the upper-cased
//! fully qualified table name) when `scope` is not empty. The secret lives in
//! the function and never appears in SQL, plans or errors.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericStringArray, OffsetSizeTrait};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sha2::{Digest, Sha256};

use crate::fit::truncate_chars;
use crate::strings::{
    apply_to_first, literal_str, literal_type, map_strings_sized, max_chars, string_return_type,
};

const HEX: &[u8; 16] = b"0123456789abcdef";

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
    let digest = base.clone().chain_update(value).finalize();
    let mut hex = [0u8; 64];
    for (i, byte) in digest.iter().enumerate() {
        hex[2 * i] = HEX[usize::from(byte >> 4)];
        hex[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    let keep = (max as usize).min(64);
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
        apply_to_first(&args.args, |array| {
            let width = (max as usize).min(64);
            match array.data_type() {
                DataType::Utf8 => {
                    return hash_offsets::<i32>(array.as_string::<i32>(), &base, width);
                }
                DataType::LargeUtf8 => {
                    return hash_offsets::<i64>(array.as_string::<i64>(), &base, width);
                }
                _ => {}
            }
            map_strings_sized(array, Some(width), &mut |value, out| {
                hash_hex_into(&base, value.as_bytes(), max, out);
                true
            })
        })
    }
}

/// Fast path for `Utf8`/`LargeUtf8`: hex digits go from a stack buffer
/// straight into one preallocated values buffer; the input's null mask is
/// reused. Hashes have a fixed width, so offsets are known up front.
fn hash_offsets<O: OffsetSizeTrait>(
    input: &GenericStringArray<O>,
    base: &Sha256,
    width: usize,
) -> Result<ArrayRef> {
    let len = input.len();
    let mut values: Vec<u8> = Vec::with_capacity(len * width);
    let mut offsets: Vec<O> = Vec::with_capacity(len + 1);
    offsets.push(O::usize_as(0));
    let mut hex = [0u8; 64];
    for i in 0..len {
        if input.is_valid(i) {
            let digest = base
                .clone()
                .chain_update(input.value(i).as_bytes())
                .finalize();
            for (j, byte) in digest.iter().enumerate() {
                hex[2 * j] = HEX[usize::from(byte >> 4)];
                hex[2 * j + 1] = HEX[usize::from(byte & 0x0f)];
            }
            values.extend_from_slice(&hex[..width]);
        }
        offsets.push(O::usize_as(values.len()));
    }
    let array = GenericStringArray::<O>::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        input.nulls().cloned(),
    )?;
    Ok(Arc::new(array))
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
    fn debug_never_shows_the_secret() {
        let f = MaskHashFunc::new("topsecret");
        assert!(!format!("{f:?}").contains("topsecret"));
    }
}
