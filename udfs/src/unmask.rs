//! `VEIL_UNMASK(token, 'DB.S.T.COL')`: the one Veil function user SQL may
//! call (SPEC rule 21). It returns the plaintext of a `reversible` token or a
//! `format_preserving` value of that column — to a user the column policy's
//! exception admits — and NULL to everyone else, for every input: never an
//! error that carries the value.
//!
//! Each session gets its own instance, built with the columns its user is
//! admitted to (decided by the engine from the compiled policies and the
//! user's entitlements); a column not in that list, an unknown column, a
//! token of another key or junk all give NULL.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::new_null_array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::mask_fpe::FpeCipher;
use crate::mask_reversible::{decrypt_token, reversible_cipher};
use crate::strings::{apply_to_first, is_string_type, map_strings};

/// Which mask produced the column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnmaskKind {
    /// AES-256-SIV tokens (`reversible`).
    Reversible,
    /// FF1 values (`format_preserving`).
    FormatPreserving,
}

/// One column a session may unmask: how its values were keyed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnmaskGrant {
    /// The mask.
    pub kind: UnmaskKind,
    /// Key scope (the table, or empty for `salt_scope: global`).
    pub scope: String,
    /// The policy whose key encrypted the column.
    pub policy: String,
}

/// `veil_unmask` for one session.
pub struct VeilUnmaskFunc {
    signature: Signature,
    secret: Arc<str>,
    /// Upper-cased `DB.S.T.COL` → grant.
    grants: HashMap<String, UnmaskGrant>,
}

impl fmt::Debug for VeilUnmaskFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VeilUnmaskFunc")
            .field("secret", &"<redacted>")
            .field("columns", &self.grants.len())
            .finish()
    }
}

impl PartialEq for VeilUnmaskFunc {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret && self.grants == other.grants
    }
}

impl Eq for VeilUnmaskFunc {}

impl std::hash::Hash for VeilUnmaskFunc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "veil_unmask".hash(state);
        self.grants.len().hash(state);
    }
}

/// The grant key of a column: its four name parts joined by NUL (which no
/// part can hold ambiguously, unlike `.` inside a quoted name).
pub fn column_key(database: &str, schema: &str, table: &str, column: &str) -> String {
    [database, schema, table, column].join("\u{0}")
}

/// `DB.S.T.COL` as written by a user, with Snowflake's identifier rule per
/// part (unquoted upper-cased, `"quoted"` exact), as a [`column_key`];
/// `None` unless it has four parts.
pub fn normalize_column_path(text: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut part = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        part.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    part.push(c);
                }
            }
            parts.push(part);
            rest = &quoted[end?..];
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let part = rest[..end].trim();
            if part.is_empty() {
                return None;
            }
            parts.push(part.to_uppercase());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        if let Some(next) = rest.strip_prefix('.') {
            rest = next.trim_start();
            if rest.is_empty() {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
    }
    (parts.len() == 4).then(|| parts.join("\u{0}"))
}

impl VeilUnmaskFunc {
    /// `VEIL_UNMASK` admitting `grants` (keyed by [`column_key`]), keyed
    /// from `secret`.
    pub fn new(secret: &str, grants: HashMap<String, UnmaskGrant>) -> Self {
        Self {
            signature: Signature::any(2, Volatility::Stable),
            secret: Arc::from(secret),
            grants,
        }
    }

    /// The columns this session may unmask, by [`column_key`] (what a
    /// cluster client sends its executors; the secret stays behind).
    pub fn grants(&self) -> &HashMap<String, UnmaskGrant> {
        &self.grants
    }

    fn grant(&self, args: &[ColumnarValue]) -> Option<&UnmaskGrant> {
        let column = match args.get(1) {
            Some(ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)),
            )) => s,
            _ => return None,
        };
        self.grants.get(&normalize_column_path(column)?)
    }
}

impl ScalarUDFImpl for VeilUnmaskFunc {
    fn name(&self) -> &str {
        "veil_unmask"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) if is_string_type(t) => Ok(match t {
                DataType::Dictionary(_, v) => v.as_ref().clone(),
                other => other.clone(),
            }),
            Some(DataType::Null) => Ok(DataType::Utf8),
            Some(other) => exec_err!("VEIL_UNMASK takes a string token, not {other}"),
            None => exec_err!("VEIL_UNMASK takes a token and a column name"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_field.data_type().clone();
        let is_null = args
            .args
            .first()
            .is_none_or(|a| a.data_type() == DataType::Null);
        let grant = self.grant(&args.args).filter(|_| !is_null);
        let Some(grant) = grant else {
            // Not admitted (or not a column): NULL for every row.
            return Ok(match args.args.first() {
                Some(ColumnarValue::Array(a)) => {
                    ColumnarValue::Array(new_null_array(&return_type, a.len()))
                }
                _ => ColumnarValue::Scalar(ScalarValue::try_from(&return_type)?),
            });
        };
        let out = match grant.kind {
            UnmaskKind::Reversible => {
                let mut cipher = reversible_cipher(&self.secret, &grant.scope, &grant.policy);
                apply_to_first(&args.args, |array| {
                    map_strings(
                        array,
                        &mut |token, out| match decrypt_token(&mut cipher, token) {
                            Some(plain) => {
                                out.push_str(&plain);
                                true
                            }
                            None => false,
                        },
                    )
                })?
            }
            UnmaskKind::FormatPreserving => {
                let cipher = FpeCipher::derive(&self.secret, &grant.scope, &grant.policy);
                apply_to_first(&args.args, |array| {
                    map_strings(array, &mut |value, out| match cipher
                        .as_ref()
                        .and_then(|c| c.decrypt(value))
                    {
                        Some(plain) => {
                            out.push_str(&plain);
                            true
                        }
                        None => false,
                    })
                })?
            }
        };
        // A dictionary input comes back as a dictionary: flatten it to the
        // declared return type.
        Ok(match out {
            ColumnarValue::Array(a) if a.data_type() != &return_type => {
                ColumnarValue::Array(datafusion::arrow::compute::cast(&a, &return_type)?)
            }
            other => other,
        })
    }
}

/// The `veil_unmask` UDF of one session.
pub fn veil_unmask(secret: &str, grants: HashMap<String, UnmaskGrant>) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(VeilUnmaskFunc::new(
        secret, grants,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask_reversible::encrypt_token;
    use crate::strings::test_util::{all_layouts, invoke, strings};

    fn lit(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    fn grants() -> HashMap<String, UnmaskGrant> {
        HashMap::from([
            (
                column_key("DB", "S", "T", "EMAIL"),
                UnmaskGrant {
                    kind: UnmaskKind::Reversible,
                    scope: "DB.S.T".into(),
                    policy: "p".into(),
                },
            ),
            (
                column_key("DB", "S", "T", "SSN"),
                UnmaskGrant {
                    kind: UnmaskKind::FormatPreserving,
                    scope: "DB.S.T".into(),
                    policy: "f".into(),
                },
            ),
        ])
    }

    fn token(value: &str) -> String {
        let mut out = String::new();
        encrypt_token(&mut reversible_cipher("k", "DB.S.T", "p"), value, &mut out);
        out
    }

    fn run(udf: &ScalarUDF, tokens: &[Option<&str>], column: &str) -> Vec<Vec<Option<String>>> {
        all_layouts(tokens)
            .into_iter()
            .map(|a| {
                let out = invoke(udf, ColumnarValue::Array(a), &[lit(column)])
                    .unwrap()
                    .into_array(tokens.len())
                    .unwrap();
                strings(&out)
            })
            .collect()
    }

    #[test]
    fn unmask_returns_plaintext_to_admitted_columns_only() {
        let udf = veil_unmask("k", grants());
        let t = token("alice@x.com");
        let want = vec![Some("alice@x.com".to_string()), None, None];
        for got in run(&udf, &[Some(&t), None, Some("junk")], "db.s.t.email") {
            assert_eq!(got, want);
        }
        // Another column, an unknown one, a partial name: NULL.
        for column in [
            "DB.S.T.NAME",
            "DB.S.U.EMAIL",
            "T.EMAIL",
            "",
            "DB.S.T.\"email\"",
        ] {
            for got in run(&udf, &[Some(&t)], column) {
                assert_eq!(got, vec![None], "{column}");
            }
        }
        // No grants at all: NULL.
        let none = veil_unmask("k", HashMap::new());
        for got in run(&none, &[Some(&t)], "DB.S.T.EMAIL") {
            assert_eq!(got, vec![None]);
        }
        // Another secret: NULL.
        let wrong = veil_unmask("other", grants());
        for got in run(&wrong, &[Some(&t)], "DB.S.T.EMAIL") {
            assert_eq!(got, vec![None]);
        }
    }

    #[test]
    fn unmask_decrypts_format_preserving_values() {
        let udf = veil_unmask("k", grants());
        let c = FpeCipher::derive("k", "DB.S.T", "f").unwrap();
        let e = c.encrypt("123-45-6789").unwrap();
        for got in run(&udf, &[Some(&e), None], "DB.S.T.SSN") {
            assert_eq!(got, vec![Some("123-45-6789".to_string()), None]);
        }
    }

    #[test]
    fn unmask_scalars_and_non_literal_columns() {
        let udf = veil_unmask("k", grants());
        let t = token("bob");
        let out = invoke(&udf, ColumnarValue::Scalar(lit(&t)), &[lit("DB.S.T.EMAIL")]).unwrap();
        assert!(matches!(out, ColumnarValue::Scalar(ScalarValue::Utf8(Some(ref s))) if s == "bob"));
        let out = invoke(
            &udf,
            ColumnarValue::Scalar(lit(&t)),
            &[ScalarValue::Utf8(None)],
        )
        .unwrap();
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Utf8(None))
        ));
    }

    #[test]
    fn column_paths_follow_identifier_rules() {
        assert_eq!(
            normalize_column_path("db.s.t.col"),
            Some(column_key("DB", "S", "T", "COL"))
        );
        assert_eq!(
            normalize_column_path("\"db\".S.T.\"a.b\""),
            Some(column_key("db", "S", "T", "a.b"))
        );
        assert_eq!(normalize_column_path("s.t.col"), None);
        assert_eq!(normalize_column_path("a..b.c"), None);
        assert_eq!(normalize_column_path("a.b.c.d."), None);
        assert_eq!(normalize_column_path("\"unclosed"), None);
    }
}
