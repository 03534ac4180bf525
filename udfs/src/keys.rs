//! Keys for the encrypting masks (`reversible`, `format_preserving`), derived
//! from the workspace secret with HKDF-SHA256 (RFC 5869).
//!
//! One key per (mask kind, key scope, policy): the scope is the upper-cased
//! fully qualified table name (empty with `salt_scope: global`, as for
//! `hash`), and the policy name keeps one policy's tokens from being
//! decrypted under another policy's exception (`VEIL_UNMASK` names a column,
//! and admits by that column's policy). Every part is length-prefixed in the
//! HKDF `info`, so no two (kind, scope, policy) triples share a key.

use hkdf::Hkdf;
use sha2::Sha256;

/// Which mask a key is for: the two kinds never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// AES-256-SIV for `reversible` (64 bytes: MAC key, then CTR key).
    Reversible,
    /// AES-256 for FF1 `format_preserving` (32 bytes).
    FormatPreserving,
    /// A check value cluster processes compare, so an executor keyed with
    /// another secret refuses work instead of masking differently. One-way:
    /// it reveals no more about the secret than a `hash` mask's output.
    SecretCheck,
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Reversible => b"reversible/aes-256-siv",
            Self::FormatPreserving => b"format_preserving/ff1-aes-256",
            Self::SecretCheck => b"cluster/secret-check",
        }
    }
}

/// HKDF salt: fixed, and versioned with the token format.
const SALT: &[u8] = b"veil/mask-keys/v1";

/// Fills `out` with the key for `purpose` under `scope` and `policy`.
/// HKDF-SHA256 can expand up to 8160 bytes; the masks ask for 32 or 64.
pub fn derive_key(secret: &str, purpose: KeyPurpose, scope: &str, policy: &str, out: &mut [u8]) {
    let hkdf = Hkdf::<Sha256>::new(Some(SALT), secret.as_bytes());
    let mut info = Vec::with_capacity(64 + scope.len() + policy.len());
    for part in [purpose.label(), scope.as_bytes(), policy.as_bytes()] {
        info.extend_from_slice(&(part.len() as u64).to_be_bytes());
        info.extend_from_slice(part);
    }
    // Only an output longer than 255 × 32 bytes fails; ours are 32 or 64.
    if hkdf.expand(&info, out).is_err() {
        out.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str, purpose: KeyPurpose, scope: &str, policy: &str) -> [u8; 32] {
        let mut k = [0u8; 32];
        derive_key(secret, purpose, scope, policy, &mut k);
        k
    }

    #[test]
    fn keys_differ_by_every_input() {
        let base = key("s", KeyPurpose::Reversible, "DB.S.T", "p");
        assert_ne!(base, key("t", KeyPurpose::Reversible, "DB.S.T", "p"));
        assert_ne!(base, key("s", KeyPurpose::FormatPreserving, "DB.S.T", "p"));
        assert_ne!(base, key("s", KeyPurpose::Reversible, "DB.S.U", "p"));
        assert_ne!(base, key("s", KeyPurpose::Reversible, "DB.S.T", "q"));
        // Length prefixes: moving a character between parts changes the key.
        assert_ne!(
            key("s", KeyPurpose::Reversible, "ab", "c"),
            key("s", KeyPurpose::Reversible, "a", "bc")
        );
        assert_eq!(base, key("s", KeyPurpose::Reversible, "DB.S.T", "p"));
    }

    #[test]
    fn hkdf_matches_rfc_5869_case_1() {
        // RFC 5869 A.1, to pin the primitive under the derivation.
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
