//! `veil_mask_fpe(value, scope, policy, declared_type)`: format-preserving
//! encryption with NIST SP 800-38G FF1 over AES-256 (SPEC rule 22).
//!
//! The value's characters fall in three classes: ASCII digits, ASCII letters
//! and everything else. Digits are one FF1 numeral string in radix 10;
//! letters one in radix 26, case-folded, with each position's case put back
//! afterwards; everything else stays in place. So the output has the same
//! length, the same punctuation, digits where digits were and letters of the
//! same case where letters were. The FF1 tweak is the class and the value's
//! shape (`999-99-9999`, `Aaaa`): equal digits in differently shaped values
//! encrypt differently, and decryption, which sees the same shape, inverts
//! it. The key is per (table, policy), from the workspace secret by HKDF
//! ([`crate::keys`]).
//!
//! FF1 needs a domain of at least a million values: a value with 1–5 digits
//! or 1–4 letters cannot be encrypted and shows NULL (a class that is absent
//! is fine: `---` stays `---`). A value longer than its `VARCHAR(n)` shows
//! NULL (truncated, it could not be decrypted). FF1 costs microseconds per
//! value, so results go through the function's bounded [`MaskMemo`], keyed
//! by table, policy and declared type as well as the value.

use std::fmt;
use std::sync::Arc;

use aes::Aes256;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use fpe::ff1::{FF1, FlexibleNumeralString};

use crate::keys::{KeyPurpose, derive_key};
use crate::memo::MaskMemo;
use crate::strings::{
    apply_to_first, literal_str, literal_type, map_strings, max_chars, string_return_type,
};

/// The fewest digits FF1 accepts in radix 10 (10^6 ≥ 1 000 000).
pub const MIN_DIGITS: usize = 6;
/// The fewest letters FF1 accepts in radix 26 (26^5 ≥ 1 000 000).
pub const MIN_LETTERS: usize = 5;

/// The two FF1 instances of one (table, policy) key.
pub struct FpeCipher {
    digits: FF1<Aes256>,
    letters: FF1<Aes256>,
}

impl fmt::Debug for FpeCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FpeCipher(<key>)")
    }
}

impl FpeCipher {
    /// FF1 over AES-256 with `key`, radix 10 and radix 26.
    pub fn from_key(key: &[u8; 32]) -> Option<Self> {
        Some(Self {
            digits: FF1::<Aes256>::new(key, 10).ok()?,
            letters: FF1::<Aes256>::new(key, 26).ok()?,
        })
    }

    /// The cipher of one (scope, policy) under the workspace secret.
    pub fn derive(secret: &str, scope: &str, policy: &str) -> Option<Self> {
        let mut key = [0u8; 32];
        derive_key(
            secret,
            KeyPurpose::FormatPreserving,
            scope,
            policy,
            &mut key,
        );
        Self::from_key(&key)
    }

    /// The encryption of `value`, or `None` when a class is too short.
    pub fn encrypt(&self, value: &str) -> Option<String> {
        self.transform(value, true)
    }

    /// The decryption of `value` (any same-shaped string decrypts to
    /// something: FF1 is a permutation, not authenticated).
    pub fn decrypt(&self, value: &str) -> Option<String> {
        self.transform(value, false)
    }

    fn transform(&self, value: &str, encrypt: bool) -> Option<String> {
        let mut shape: Vec<u8> = Vec::with_capacity(value.len() + 1);
        let mut digits: Vec<u16> = Vec::new();
        let mut letters: Vec<u16> = Vec::new();
        for ch in value.chars() {
            match ch {
                '0'..='9' => {
                    digits.push(u16::from(ch as u8 - b'0'));
                    shape.push(b'9');
                }
                'a'..='z' => {
                    letters.push(u16::from(ch as u8 - b'a'));
                    shape.push(b'a');
                }
                'A'..='Z' => {
                    letters.push(u16::from(ch as u8 - b'A'));
                    shape.push(b'A');
                }
                other => {
                    let mut buf = [0u8; 4];
                    shape.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if short(&digits, MIN_DIGITS) || short(&letters, MIN_LETTERS) {
            return None;
        }
        let run = |ff1: &FF1<Aes256>, class: u8, numerals: Vec<u16>| -> Option<Vec<u16>> {
            if numerals.is_empty() {
                return Some(numerals);
            }
            let mut tweak = Vec::with_capacity(shape.len() + 1);
            tweak.push(class);
            tweak.extend_from_slice(&shape);
            let input = FlexibleNumeralString::from(numerals);
            let output = if encrypt {
                ff1.encrypt(&tweak, &input)
            } else {
                ff1.decrypt(&tweak, &input)
            };
            output.ok().map(Vec::from)
        };
        let digits = run(&self.digits, b'9', digits)?;
        let letters = run(&self.letters, b'a', letters)?;
        let (mut digits, mut letters) = (digits.into_iter(), letters.into_iter());
        let mut out = String::with_capacity(value.len());
        for ch in value.chars() {
            let numeral = |n: Option<u16>, base: u8, radix: u16| -> Option<char> {
                let n = n.filter(|n| *n < radix)?;
                Some(char::from(base + n as u8))
            };
            out.push(match ch {
                '0'..='9' => numeral(digits.next(), b'0', 10)?,
                'a'..='z' => numeral(letters.next(), b'a', 26)?,
                'A'..='Z' => numeral(letters.next(), b'A', 26)?,
                other => other,
            });
        }
        Some(out)
    }
}

fn short(numerals: &[u16], min: usize) -> bool {
    !numerals.is_empty() && numerals.len() < min
}

/// Format-preserving mask bound to a workspace secret, with a memo.
pub struct MaskFpeFunc {
    signature: Signature,
    secret: Arc<str>,
    memo: Option<Arc<MaskMemo>>,
}

impl fmt::Debug for MaskFpeFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskFpeFunc")
            .field("secret", &"<redacted>")
            .field("memo", &self.memo)
            .finish()
    }
}

impl PartialEq for MaskFpeFunc {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret
            && match (&self.memo, &other.memo) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for MaskFpeFunc {}

impl std::hash::Hash for MaskFpeFunc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "veil_mask_fpe".hash(state);
        self.memo.is_some().hash(state);
    }
}

impl MaskFpeFunc {
    /// An FF1 mask keyed from `secret`; `memo_capacity == 0` disables the memo.
    pub fn new(secret: &str, memo_capacity: usize) -> Self {
        Self {
            signature: Signature::any(4, Volatility::Immutable),
            secret: Arc::from(secret),
            memo: (memo_capacity > 0).then(|| Arc::new(MaskMemo::new(memo_capacity))),
        }
    }
}

impl ScalarUDFImpl for MaskFpeFunc {
    fn name(&self) -> &str {
        "veil_mask_fpe"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type("format_preserving", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scope = literal_str(&args.args, 1, "scope")?;
        let policy = literal_str(&args.args, 2, "policy")?;
        let max = max_chars(literal_type(&args.args, 3)?);
        let cipher = FpeCipher::derive(&self.secret, &scope, &policy);
        // The memo's policy identity: table, policy and fitting.
        let identity: Arc<str> = Arc::from(format!("{scope}\u{0}{policy}\u{0}{max}"));
        let compute = |v: &str| -> Option<String> {
            // Same length or nothing: a cut value could not be decrypted.
            if v.chars().count() > max as usize {
                return None;
            }
            cipher.as_ref()?.encrypt(v)
        };
        apply_to_first(&args.args, |array| {
            map_strings(array, &mut |value, out| {
                let masked = match &self.memo {
                    Some(memo) => memo.get_or_compute(&identity, value, compute),
                    None => compute(value).map(Arc::from),
                };
                match masked {
                    Some(m) => {
                        out.push_str(&m);
                        true
                    }
                    None => false,
                }
            })
        })
    }
}

/// The `veil_mask_fpe` UDF keyed from `secret`, memoizing up to
/// `memo_capacity` values.
pub fn mask_fpe(secret: &str, memo_capacity: usize) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskFpeFunc::new(
        secret,
        memo_capacity,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::check_all_layouts;
    use datafusion::common::ScalarValue;

    fn lit(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    const NIST_KEY: [u8; 32] = [
        0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F,
        0x3C, 0xEF, 0x43, 0x59, 0xD8, 0xD5, 0x80, 0xAA, 0x4F, 0x7F, 0x03, 0x6D, 0x6F, 0x04, 0xFC,
        0x6A, 0x94,
    ];

    fn ff1(radix: u32, tweak: &[u8], pt: &[u16]) -> Vec<u16> {
        let f = FF1::<Aes256>::new(&NIST_KEY, radix).unwrap();
        let ct = f
            .encrypt(tweak, &FlexibleNumeralString::from(pt.to_vec()))
            .unwrap();
        let back = f.decrypt(tweak, &ct).unwrap();
        assert_eq!(Vec::from(back), pt);
        Vec::from(ct)
    }

    #[test]
    fn ff1_reproduces_nist_sp_800_38g_aes_256_samples() {
        let digits: Vec<u16> = (0..10).collect();
        // Sample 7: radix 10, empty tweak.
        assert_eq!(ff1(10, &[], &digits), [6, 6, 5, 7, 6, 6, 7, 0, 0, 9]);
        // Sample 8: radix 10, tweak 39383736353433323130.
        assert_eq!(
            ff1(10, b"9876543210", &digits),
            [1, 0, 0, 1, 6, 2, 3, 4, 6, 3]
        );
        // Sample 9: radix 36, tweak 3737373770717273373737.
        let pt: Vec<u16> = (0..19).collect();
        assert_eq!(
            ff1(36, b"7777pqrs777", &pt),
            [
                33, 28, 8, 10, 0, 10, 35, 17, 2, 10, 31, 34, 10, 21, 34, 35, 30, 32, 13
            ]
        );
    }

    #[test]
    fn ff1_reproduces_nist_aes_128_samples() {
        use aes::Aes128;
        let key = &NIST_KEY[..16];
        let f = FF1::<Aes128>::new(key, 10).unwrap();
        let digits = FlexibleNumeralString::from((0..10).collect::<Vec<u16>>());
        // Sample 1 and 2.
        let c1 = Vec::from(f.encrypt(&[], &digits).unwrap());
        assert_eq!(c1, [2, 4, 3, 3, 4, 7, 7, 4, 8, 4]);
        let digits = FlexibleNumeralString::from((0..10).collect::<Vec<u16>>());
        let c2 = Vec::from(f.encrypt(b"9876543210", &digits).unwrap());
        assert_eq!(c2, [6, 1, 2, 4, 2, 0, 0, 7, 7, 3]);
    }

    #[test]
    fn fpe_keeps_shape_and_round_trips() {
        let c = FpeCipher::derive("k", "DB.S.T", "p").unwrap();
        for v in [
            "123-45-6789",
            "4111 1111 1111 1111",
            "Alice.Smith@Example.com",
            "ÄBCDEF 123456",
            "---",
            "",
        ] {
            let e = c.encrypt(v).unwrap();
            assert_eq!(e.chars().count(), v.chars().count(), "{v} -> {e}");
            for (a, b) in v.chars().zip(e.chars()) {
                assert_eq!(a.is_ascii_digit(), b.is_ascii_digit(), "{v} -> {e}");
                assert_eq!(a.is_ascii_lowercase(), b.is_ascii_lowercase(), "{v} -> {e}");
                assert_eq!(a.is_ascii_uppercase(), b.is_ascii_uppercase(), "{v} -> {e}");
                if !a.is_ascii_alphanumeric() {
                    assert_eq!(a, b);
                }
            }
            assert_eq!(c.decrypt(&e).as_deref(), Some(v));
        }
        assert_ne!(c.encrypt("123-45-6789"), Some("123-45-6789".to_string()));
        // Deterministic, and per key.
        assert_eq!(c.encrypt("123456"), c.encrypt("123456"));
        let other = FpeCipher::derive("k", "DB.S.U", "p").unwrap();
        assert_ne!(c.encrypt("123456789"), other.encrypt("123456789"));
    }

    #[test]
    fn fpe_short_classes_are_null() {
        let c = FpeCipher::derive("k", "DB.S.T", "p").unwrap();
        assert_eq!(c.encrypt("12345"), None);
        assert!(c.encrypt("123456").is_some());
        assert_eq!(c.encrypt("abcd"), None);
        assert!(c.encrypt("abcde").is_some());
        // Enough letters but too few digits.
        assert_eq!(c.encrypt("alice42"), None);
    }

    #[test]
    fn fpe_masks_every_layout_with_and_without_memo() {
        let c = FpeCipher::derive("k", "DB.S.T", "p").unwrap();
        let ssn = c.encrypt("123-45-6789").unwrap();
        let word = c.encrypt("Hello").unwrap();
        for memo in [0, 100] {
            check_all_layouts(
                &mask_fpe("k", memo),
                &[
                    Some("123-45-6789"),
                    None,
                    Some("12"),
                    Some("Hello"),
                    Some("123-45-6789"),
                ],
                &[lit("DB.S.T"), lit("p"), lit("VARCHAR(11)")],
                &[Some(&ssn), None, None, Some(&word), Some(&ssn)],
            );
        }
        // Longer than the declared VARCHAR: NULL, not cut.
        check_all_layouts(
            &mask_fpe("k", 10),
            &[Some("123-45-6789")],
            &[lit("DB.S.T"), lit("p"), lit("VARCHAR(10)")],
            &[None],
        );
    }

    /// Rows per second of the FF1 mask on 8 192 repeated values (64
    /// distinct), memoized and not, in whatever profile the tests run (the
    /// criterion bench `encrypting_masks` measures release builds):
    /// `cargo test -p veil-udfs fpe_memo_speedup -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn fpe_memo_speedup() {
        use datafusion::arrow::array::{ArrayRef, StringArray};
        let values: Vec<String> = (0..8192)
            .map(|i| format!("{:03}-{:02}-{:04}", 100 + i % 64, 10 + i % 7, 1000 + i % 64))
            .collect();
        let array: ArrayRef = Arc::new(StringArray::from(
            values.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
        let params = [lit("DB.S.T"), lit("p"), lit("VARCHAR(11)")];
        let rate = |udf: &ScalarUDF| {
            let _ = crate::strings::test_util::invoke(
                udf,
                ColumnarValue::Array(Arc::clone(&array)),
                &params,
            );
            let start = std::time::Instant::now();
            let rounds = 5;
            for _ in 0..rounds {
                let _ = crate::strings::test_util::invoke(
                    udf,
                    ColumnarValue::Array(Arc::clone(&array)),
                    &params,
                );
            }
            (rounds * 8192) as f64 / start.elapsed().as_secs_f64()
        };
        let memo = rate(&mask_fpe("k", 100_000));
        let plain = rate(&mask_fpe("k", 0));
        println!(
            "fpe repeated values: memoized {memo:.0} rows/s, unmemoized {plain:.0} rows/s, {:.1}x",
            memo / plain
        );
        assert!(memo > plain);
    }
}
