//! `veil_mask_rr(value, row_key, column_id, kind, parameter, seed,
//! declared_type)`: randomized response, local differential privacy per
//! value (SPEC rule 23).
//!
//! - `kind = 'categorical'`, `parameter` = *p*: the value is kept with
//!   probability 1 − *p*; otherwise it is replaced by a value drawn
//!   uniformly from the column's domain (its distinct non-NULL values,
//!   computed once per policy version by the engine and handed to this
//!   function in [`RrDomains`]). With *k* values in the domain the report
//!   is ε-differentially private for ε = ln(1 + *k*(1 − *p*)/*p*).
//! - `kind = 'laplace'`, `parameter` = ε: numbers get Laplace noise of
//!   scale Δ/ε, where Δ = max − min of the column (again from the domain),
//!   then are rounded and clamped to `NUMBER(p,s)` (rule 13).
//!
//! Every draw comes from SHA-256 of (workspace secret, seed, column,
//! row key): repeated queries give the same answer (no averaging the noise
//! away), and without the secret nobody can replay the coin flips. `row_key`
//! identifies the row (the engine passes the table name and every raw
//! column's text). NULL stays NULL (rule 15). A column without a domain
//! (none computed, or no non-NULL values) shows NULL: fail closed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sha2::{Digest, Sha256};

use crate::sftype::SnowflakeType;
use crate::strings::{literal_str, literal_type};

/// The domains of the randomized-response columns of one policy version,
/// by column id (`DB.S.T.COL`, as the engine renders it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RrDomains {
    /// Distinct values of categorical columns, sorted.
    pub categorical: HashMap<String, Arc<Vec<String>>>,
    /// (min, max) of numeric columns.
    pub numeric: HashMap<String, (f64, f64)>,
}

/// One row's coin flips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Uniform in [0, 1): keep the value when below 1 − p.
    pub keep: f64,
    /// Uniform 64-bit: the replacement's index.
    pub pick: u64,
    /// Uniform in (−½, ½): Laplace noise's inverse-CDF input.
    pub noise: f64,
}

/// The hasher state after absorbing the secret, seed and column.
pub fn draw_base(secret: &str, seed: u64, column_id: &str) -> Sha256 {
    let mut h = Sha256::new();
    for part in [
        b"veil/randomized_response/v1".as_slice(),
        secret.as_bytes(),
        &seed.to_le_bytes(),
        column_id.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h
}

/// The draws of the row identified by `row_key`.
pub fn draw(base: &Sha256, row_key: &str) -> Draw {
    let digest = base.clone().chain_update(row_key.as_bytes()).finalize();
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&digest[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let unit = |w: u64| (w >> 11) as f64 / (1u64 << 53) as f64;
    Draw {
        keep: unit(word(0)),
        pick: word(1),
        // (−½, ½) without the endpoints, so ln(1 − 2|u|) is finite.
        noise: (unit(word(2)) - 0.5).clamp(-0.5 + f64::EPSILON, 0.5 - f64::EPSILON),
    }
}

/// Categorical randomized response of one value.
pub fn respond<'a>(value: &'a str, d: Draw, p: f64, domain: &'a [String]) -> Option<&'a str> {
    if domain.is_empty() {
        return None;
    }
    if d.keep < 1.0 - p {
        return Some(value);
    }
    // Multiply-shift: uniform over the domain without a modulo's bias.
    let i = ((u128::from(d.pick) * domain.len() as u128) >> 64) as usize;
    domain.get(i).map(String::as_str)
}

/// Laplace noise of scale `b` from a draw.
pub fn laplace(d: Draw, b: f64) -> f64 {
    let u = d.noise;
    -b * u.signum() * (1.0 - 2.0 * u.abs()).ln()
}

/// Randomized-response mask bound to a secret and one version's domains.
pub struct MaskRrFunc {
    signature: Signature,
    secret: Arc<str>,
    domains: Arc<RrDomains>,
}

impl fmt::Debug for MaskRrFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskRrFunc")
            .field("secret", &"<redacted>")
            .field("columns", &self.domains.categorical.len())
            .finish()
    }
}

impl PartialEq for MaskRrFunc {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret && Arc::ptr_eq(&self.domains, &other.domains)
    }
}

impl Eq for MaskRrFunc {}

impl std::hash::Hash for MaskRrFunc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "veil_mask_rr".hash(state);
    }
}

impl MaskRrFunc {
    /// Randomized response keyed from `secret` over `domains`.
    pub fn new(secret: &str, domains: Arc<RrDomains>) -> Self {
        Self {
            signature: Signature::any(7, Volatility::Immutable),
            secret: Arc::from(secret),
            domains,
        }
    }

    /// The domains this function draws replacements from (what a cluster
    /// client sends its executors; the secret stays behind).
    pub fn domains(&self) -> &Arc<RrDomains> {
        &self.domains
    }
}

fn to_array(value: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    value.to_array(rows)
}

impl ScalarUDFImpl for MaskRrFunc {
    fn name(&self) -> &str {
        "veil_mask_rr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::Null) => Ok(DataType::Utf8),
            Some(t) => Ok(t.clone()),
            None => exec_err!("randomized_response needs a value argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let column_id = literal_str(&args.args, 2, "column")?;
        let kind = literal_str(&args.args, 3, "kind")?;
        let parameter: f64 = match literal_str(&args.args, 4, "parameter")?.parse() {
            Ok(p) => p,
            Err(_) => return exec_err!("randomized_response needs a numeric parameter"),
        };
        let seed: u64 = literal_str(&args.args, 5, "seed")?.parse().unwrap_or(0);
        let declared = literal_type(&args.args, 6)?;
        let rows = args.number_rows;
        let scalar = matches!(args.args.first(), Some(ColumnarValue::Scalar(_)));
        let (Some(value), Some(key)) = (args.args.first(), args.args.get(1)) else {
            return exec_err!("randomized_response needs a value and a row key");
        };
        let value = to_array(value, rows)?;
        let keys = cast(&to_array(key, rows)?, &DataType::Utf8)?;
        let keys = keys.as_string::<i32>();
        let base = draw_base(&self.secret, seed, &column_id);
        let out_type = value.data_type().clone();
        let out: ArrayRef = match kind.as_str() {
            "categorical" => {
                let p = parameter.clamp(0.0, 1.0);
                let domain = self.domains.categorical.get(&column_id);
                let text = cast(&value, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                let masked: StringArray = (0..text.len())
                    .map(|i| {
                        if text.is_null(i) {
                            return None;
                        }
                        let d = draw(&base, if keys.is_null(i) { "" } else { keys.value(i) });
                        respond(text.value(i), d, p, domain?.as_slice()).map(str::to_string)
                    })
                    .collect();
                cast(&masked, &out_type)?
            }
            "laplace" => {
                let range = self.domains.numeric.get(&column_id).copied();
                let numbers = cast(&value, &DataType::Float64)?;
                let numbers = numbers.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                let noisy: Float64Array = (0..numbers.len())
                    .map(|i| {
                        // A NaN or non-positive epsilon shows NULL.
                        if numbers.is_null(i) || parameter.is_nan() || parameter <= 0.0 {
                            return None;
                        }
                        let (lo, hi) = range?;
                        let d = draw(&base, if keys.is_null(i) { "" } else { keys.value(i) });
                        let v = numbers.value(i) + laplace(d, (hi - lo).max(0.0) / parameter);
                        fit_number(v, declared)
                    })
                    .collect();
                cast(&noisy, &out_type)?
            }
            other => return exec_err!("randomized_response kind '{other}' is unknown"),
        };
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// A noisy number rounded to the declared scale and clamped to its
/// precision (SPEC rule 13); `None` if it is not finite.
pub fn fit_number(v: f64, declared: SnowflakeType) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    match declared {
        SnowflakeType::Number { precision, scale } => {
            let factor = 10f64.powi(i32::from(scale));
            let rounded = (v * factor).round();
            let limit = 10f64.powi(i32::from(precision)) - 1.0;
            Some(rounded.clamp(-limit, limit) / factor)
        }
        _ => Some(v),
    }
}

/// The `veil_mask_rr` UDF over `domains`.
pub fn mask_rr(secret: &str, domains: Arc<RrDomains>) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskRrFunc::new(secret, domains)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::{all_layouts, invoke, strings};
    use datafusion::arrow::array::Int64Array;

    fn lit(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    fn domains() -> Arc<RrDomains> {
        let values = ["asthma", "diabetes", "flu", "migraine"];
        Arc::new(RrDomains {
            categorical: HashMap::from([(
                "DB.S.T.DX".to_string(),
                Arc::new(values.iter().map(|s| s.to_string()).collect()),
            )]),
            numeric: HashMap::from([("DB.S.T.AGE".to_string(), (20.0, 70.0))]),
        })
    }

    fn params(kind: &str, parameter: &str, column: &str, ty: &str) -> Vec<ScalarValue> {
        vec![lit(column), lit(kind), lit(parameter), lit("7"), lit(ty)]
    }

    #[test]
    fn keep_rate_over_100_000_rows_is_within_one_percent() {
        let p = 0.25;
        let domain: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let base = draw_base("k", 7, "DB.S.T.DX");
        let n = 100_000;
        let (mut kept, mut same) = (0usize, 0usize);
        for i in 0..n {
            let d = draw(&base, &format!("DB.S.T|{i}"));
            if d.keep < 1.0 - p {
                kept += 1;
            }
            if respond("a", d, p, &domain) == Some("a") {
                same += 1;
            }
        }
        let keep_rate = kept as f64 / n as f64;
        assert!(
            (keep_rate - (1.0 - p)).abs() < 0.01,
            "keep rate {keep_rate}"
        );
        // Reported = true: kept, or replaced by itself (p / k).
        let same_rate = same as f64 / n as f64;
        let expected = 1.0 - p + p / 4.0;
        assert!((same_rate - expected).abs() < 0.01, "same rate {same_rate}");
    }

    #[test]
    fn laplace_noise_has_the_stated_scale() {
        let base = draw_base("k", 7, "DB.S.T.AGE");
        let b = 5.0;
        let n = 100_000;
        let mean_abs: f64 = (0..n)
            .map(|i| laplace(draw(&base, &i.to_string()), b).abs())
            .sum::<f64>()
            / n as f64;
        // E|X| = b for Laplace(0, b).
        assert!((mean_abs - b).abs() < 0.1, "mean |noise| {mean_abs}");
    }

    #[test]
    fn categorical_response_every_layout_is_deterministic_and_in_domain() {
        let udf = mask_rr("k", domains());
        let values = [Some("flu"), None, Some("asthma"), Some("flu")];
        let keys = Arc::new(StringArray::from(vec!["r1", "r2", "r3", "r4"])) as ArrayRef;
        let mut first: Option<Vec<Option<String>>> = None;
        for array in all_layouts(&values) {
            let mut args = vec![ColumnarValue::Array(Arc::clone(&keys))];
            args.extend(
                params("categorical", "0.5", "DB.S.T.DX", "VARCHAR(20)")
                    .into_iter()
                    .map(ColumnarValue::Scalar),
            );
            let out = run_with_key(&udf, array.clone(), &args);
            assert_eq!(out.data_type(), array.data_type());
            let s = strings(&out);
            assert_eq!(s[1], None, "NULL stays NULL");
            for v in s.iter().flatten() {
                assert!(domains().categorical["DB.S.T.DX"].contains(v));
            }
            match &first {
                None => first = Some(s),
                Some(f) => assert_eq!(f, &s, "layouts agree"),
            }
        }
        // Unknown column: no domain, NULL (fail closed).
        let args: Vec<ColumnarValue> = std::iter::once(ColumnarValue::Array(Arc::clone(&keys)))
            .chain(
                params("categorical", "0.5", "DB.S.T.OTHER", "VARCHAR(20)")
                    .into_iter()
                    .map(ColumnarValue::Scalar),
            )
            .collect();
        let out = run_with_key(&udf, all_layouts(&values)[0].clone(), &args);
        assert!(strings(&out).iter().all(Option::is_none));
    }

    fn run_with_key(udf: &ScalarUDF, value: ArrayRef, rest: &[ColumnarValue]) -> ArrayRef {
        let n = value.len();
        let mut params = Vec::new();
        let key = match &rest[0] {
            ColumnarValue::Array(a) => Arc::clone(a),
            ColumnarValue::Scalar(s) => s.to_array_of_size(n).unwrap(),
        };
        for r in &rest[1..] {
            if let ColumnarValue::Scalar(s) = r {
                params.push(s.clone());
            }
        }
        // `invoke` takes literal parameters after the value: put the key
        // array in by hand.
        let mut args = vec![ColumnarValue::Array(value), ColumnarValue::Array(key)];
        args.extend(params.into_iter().map(ColumnarValue::Scalar));
        let arg_fields = args
            .iter()
            .map(|a| {
                Arc::new(datafusion::arrow::datatypes::Field::new(
                    "a",
                    a.data_type(),
                    true,
                ))
            })
            .collect::<Vec<_>>();
        let return_type = udf.return_type(&[args[0].data_type()]).unwrap();
        udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: n,
            return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                "r",
                return_type,
                true,
            )),
            config_options: Arc::new(datafusion::common::config::ConfigOptions::default()),
        })
        .unwrap()
        .into_array(n)
        .unwrap()
    }

    #[test]
    fn laplace_fits_number_and_keeps_nulls() {
        let udf = mask_rr("k", domains());
        let ages: ArrayRef = Arc::new(Int64Array::from(vec![Some(34), None, Some(999)]));
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        let rest: Vec<ColumnarValue> = std::iter::once(ColumnarValue::Array(keys))
            .chain(
                params("laplace", "1.0", "DB.S.T.AGE", "NUMBER(3,0)")
                    .into_iter()
                    .map(ColumnarValue::Scalar),
            )
            .collect();
        let out = run_with_key(&udf, ages, &rest);
        let out = out.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        assert!(out.is_null(1));
        for i in [0, 2] {
            assert!(out.value(i).abs() <= 999, "{}", out.value(i));
        }
        let again = run_with_key(
            &udf,
            Arc::new(Int64Array::from(vec![Some(34), None, Some(999)])),
            &rest,
        );
        assert_eq!(
            again.as_primitive::<datafusion::arrow::datatypes::Int64Type>(),
            out,
            "repeated queries agree"
        );
        // The scalar path through the common helper.
        let _ = invoke;
    }
}
