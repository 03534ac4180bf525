//! `veil_mask_reversible(value, scope, policy, declared_type)`: deterministic
//! authenticated encryption (AES-256-SIV, RFC 5297) of the value's UTF-8
//! bytes, emitted as a token `v1.` + base64url without padding (SPEC rule
//! 21).
//!
//! The key comes from the workspace secret by HKDF ([`crate::keys`]) with
//! the table (`scope`) and the policy as context, so equal values give equal
//! tokens within a table (they join and group), and differ across tables.
//! A token is 3 + ⌈4·(bytes + 16) / 3⌉ characters. It is fitted to
//! `VARCHAR(n)` only when it fits: a truncated token could not be decrypted,
//! so a token longer than *n* characters shows NULL (and `explain`/`lint`
//! say so). [`crate::unmask`] decrypts tokens for users the column policy's
//! exception admits.

use std::fmt;
use std::sync::Arc;

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::keys::{KeyPurpose, derive_key};
use crate::strings::{
    apply_to_first, literal_str, literal_type, map_strings, max_chars, string_return_type,
};

/// The version prefix of every token.
pub const TOKEN_PREFIX: &str = "v1.";

/// AES-SIV's synthetic IV (the tag), prepended to the ciphertext.
const TAG_BYTES: usize = 16;

/// Characters of the token of a value of `plaintext_bytes` UTF-8 bytes.
pub fn token_chars(plaintext_bytes: usize) -> usize {
    let sealed = plaintext_bytes + TAG_BYTES;
    TOKEN_PREFIX.len() + (sealed * 4).div_ceil(3)
}

/// The longest value (in UTF-8 bytes) whose token fits `max_chars`
/// characters, or `None` when not even the empty string's does.
pub fn max_plaintext_bytes(max_chars: u32) -> Option<usize> {
    let max = max_chars as usize;
    if token_chars(0) > max {
        return None;
    }
    // token_chars is increasing: from the unpadded length, step back.
    let mut n = ((max - TOKEN_PREFIX.len()) * 3 / 4).saturating_sub(TAG_BYTES);
    while token_chars(n + 1) <= max {
        n += 1;
    }
    while n > 0 && token_chars(n) > max {
        n -= 1;
    }
    Some(n)
}

/// The AES-256-SIV cipher of one (scope, policy).
pub fn reversible_cipher(secret: &str, scope: &str, policy: &str) -> Aes256Siv {
    let mut key = [0u8; 64];
    derive_key(secret, KeyPurpose::Reversible, scope, policy, &mut key);
    Aes256Siv::new(&key.into())
}

/// Appends the token of `value` to `out`; `false` when encryption fails
/// (it cannot for AES-SIV without headers, but the caller shows NULL then).
pub fn encrypt_token(cipher: &mut Aes256Siv, value: &str, out: &mut String) -> bool {
    match cipher.encrypt(std::iter::empty::<&[u8]>(), value.as_bytes()) {
        Ok(sealed) => {
            out.push_str(TOKEN_PREFIX);
            URL_SAFE_NO_PAD.encode_string(sealed, out);
            true
        }
        Err(_) => false,
    }
}

/// The plaintext of a token, or `None` for anything that is not a token
/// of this key (wrong prefix, bad base64, failed authentication, not UTF-8).
pub fn decrypt_token(cipher: &mut Aes256Siv, token: &str) -> Option<String> {
    let body = token.strip_prefix(TOKEN_PREFIX)?;
    let sealed = URL_SAFE_NO_PAD.decode(body).ok()?;
    if sealed.len() < TAG_BYTES {
        return None;
    }
    let plain = cipher.decrypt(std::iter::empty::<&[u8]>(), &sealed).ok()?;
    String::from_utf8(plain).ok()
}

/// Reversible-token mask bound to a workspace secret.
#[derive(PartialEq, Eq, Hash)]
pub struct MaskReversibleFunc {
    signature: Signature,
    secret: Arc<str>,
}

impl fmt::Debug for MaskReversibleFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskReversibleFunc")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl MaskReversibleFunc {
    /// A reversible mask keyed from `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            signature: Signature::any(4, Volatility::Immutable),
            secret: Arc::from(secret),
        }
    }
}

impl ScalarUDFImpl for MaskReversibleFunc {
    fn name(&self) -> &str {
        "veil_mask_reversible"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type("reversible", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scope = literal_str(&args.args, 1, "scope")?;
        let policy = literal_str(&args.args, 2, "policy")?;
        let max = max_chars(literal_type(&args.args, 3)?) as usize;
        let mut cipher = reversible_cipher(&self.secret, &scope, &policy);
        apply_to_first(&args.args, |array| {
            map_strings(array, &mut |value, out| {
                // A token that does not fit is NULL, never truncated.
                token_chars(value.len()) <= max && encrypt_token(&mut cipher, value, out)
            })
        })
    }
}

/// The `veil_mask_reversible` UDF keyed from `secret`.
pub fn mask_reversible(secret: &str) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskReversibleFunc::new(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::{all_layouts, check_all_layouts, invoke, strings};
    use datafusion::common::ScalarValue;

    fn lit(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn token(secret: &str, scope: &str, policy: &str, value: &str) -> String {
        let mut out = String::new();
        assert!(encrypt_token(
            &mut reversible_cipher(secret, scope, policy),
            value,
            &mut out
        ));
        out
    }

    #[test]
    fn aes_siv_reproduces_rfc_5297_vectors() {
        use aes_siv::siv::Aes128Siv;
        // RFC 5297 A.1: deterministic authenticated encryption.
        let mut siv = Aes128Siv::new_from_slice(&hex(
            "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        ))
        .unwrap();
        let ad = hex("101112131415161718191a1b1c1d1e1f2021222324252627");
        let out = siv
            .encrypt([&ad[..]], &hex("112233445566778899aabbccddee"))
            .unwrap();
        assert_eq!(
            out,
            hex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")
        );
        // RFC 5297 A.2: nonce-based, three header components (the nonce last).
        let mut siv = Aes128Siv::new_from_slice(&hex(
            "7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f",
        ))
        .unwrap();
        let headers = [
            hex("00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100"),
            hex("102030405060708090a0"),
            hex("09f911029d74e35bd84156c5635688c0"),
        ];
        let plain = hex(
            "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553",
        );
        let sealed = siv.encrypt(&headers, &plain).unwrap();
        assert_eq!(
            sealed,
            hex(
                "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
            )
        );
        assert_eq!(siv.decrypt(&headers, &sealed).unwrap(), plain);
    }

    #[test]
    fn reversible_tokens_round_trip_and_are_deterministic() {
        let a = token("k", "DB.S.T", "p", "alice@example.com");
        assert!(a.starts_with("v1."));
        assert_eq!(a.chars().count(), token_chars("alice@example.com".len()));
        assert_eq!(a, token("k", "DB.S.T", "p", "alice@example.com"));
        assert_ne!(a, token("k", "DB.S.U", "p", "alice@example.com"));
        assert_ne!(a, token("k", "DB.S.T", "q", "alice@example.com"));
        assert_ne!(a, token("other", "DB.S.T", "p", "alice@example.com"));
        let mut cipher = reversible_cipher("k", "DB.S.T", "p");
        assert_eq!(
            decrypt_token(&mut cipher, &a).as_deref(),
            Some("alice@example.com")
        );
        // Another key, a tampered token, or junk: None, never an error.
        let mut other = reversible_cipher("k", "DB.S.U", "p");
        assert_eq!(decrypt_token(&mut other, &a), None);
        let mut tampered = a.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(decrypt_token(&mut cipher, &tampered), None);
        for junk in ["", "v1.", "v1.!!", "v2.abc", "v1.AAAA", "日本"] {
            assert_eq!(decrypt_token(&mut cipher, junk), None, "{junk}");
        }
    }

    #[test]
    fn reversible_masks_every_layout_and_keeps_nulls() {
        let udf = mask_reversible("k");
        let scope = "DB.S.T";
        let a = token("k", scope, "p", "alice");
        let b = token("k", scope, "p", "日本");
        let empty = token("k", scope, "p", "");
        check_all_layouts(
            &udf,
            &[Some("alice"), None, Some("日本"), Some(""), Some("alice")],
            &[lit(scope), lit("p"), lit("STRING")],
            &[Some(&a), None, Some(&b), Some(&empty), Some(&a)],
        );
    }

    #[test]
    fn reversible_token_too_long_for_varchar_is_null_not_truncated() {
        let udf = mask_reversible("k");
        // VARCHAR(30) holds tokens of values up to 4 bytes.
        assert_eq!(max_plaintext_bytes(30), Some(4));
        assert_eq!(max_plaintext_bytes(24), None);
        let short = token("k", "DB.S.T", "p", "abcd");
        assert!(short.chars().count() <= 30);
        check_all_layouts(
            &udf,
            &[Some("abcd"), Some("abcde"), None],
            &[lit("DB.S.T"), lit("p"), lit("VARCHAR(30)")],
            &[Some(&short), None, None],
        );
        // A column too short for any token is all NULL.
        check_all_layouts(
            &udf,
            &[Some(""), Some("a")],
            &[lit("DB.S.T"), lit("p"), lit("VARCHAR(10)")],
            &[None, None],
        );
    }

    #[test]
    fn max_plaintext_bytes_is_exact() {
        for n in 0u32..200 {
            match max_plaintext_bytes(n) {
                None => assert!(token_chars(0) > n as usize),
                Some(b) => {
                    assert!(token_chars(b) <= n as usize);
                    assert!(token_chars(b + 1) > n as usize);
                }
            }
        }
    }

    #[test]
    fn reversible_dictionary_masks_values_once() {
        let udf = mask_reversible("k");
        let layouts = all_layouts(&[Some("x"), Some("x"), Some("y")]);
        let dict = &layouts[3];
        let out = invoke(
            &udf,
            ColumnarValue::Array(Arc::clone(dict)),
            &[lit("DB.S.T"), lit("p"), lit("STRING")],
        )
        .unwrap()
        .into_array(3)
        .unwrap();
        let s = strings(&out);
        assert_eq!(s[0], s[1]);
        assert_ne!(s[0], s[2]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let f = MaskReversibleFunc::new("topsecret");
        assert!(!format!("{f:?}").contains("topsecret"));
    }
}
