//! The `mask:` of a masking policy in YAML: a name (`hash`, `reversible`,
//! ...) or a map with its parameters (`round`, `regex`, `randomized_response`,
//! `k_anonymize`, ...).

use serde_norway::Value;

use crate::error::Result;
use crate::model::*;

use super::{PolicyContext, scalar_text};

pub(super) fn mask(v: &Value, policy: &str, ctx: &PolicyContext<'_>) -> Result<MaskSpec> {
    let unsupported = |kind: &str| {
        ctx.err(
            policy,
            format!("mask type '{kind}' is not supported by this version of Veil"),
        )
    };
    match v {
        Value::String(s) => match s.as_str() {
            "hash" => Ok(MaskSpec::Hash),
            "nullify" => Ok(MaskSpec::Nullify),
            "reversible" => Ok(MaskSpec::Reversible),
            "format_preserving" => Ok(MaskSpec::FormatPreserving),
            "randomized_response" => Err(ctx.err(policy, "randomized_response needs its parameters: {randomized_response: {probability: 0.2, seed: 7}} (categorical) or {randomized_response: {epsilon: 1.0, seed: 7}} (numbers)")),
            other => Err(ctx.err(policy, format!("unknown mask '{other}' (hash, nullify, reversible, format_preserving, constant, round, regex, show_first, show_last)"))),
        },
        Value::Null => Err(ctx.err(policy, "a bare null is YAML's null; write `mask: nullify`")),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().ok_or_else(|| ctx.err(policy, "empty mask"))?;
            let key = k.as_str().unwrap_or_default();
            match key {
                "constant" => match v {
                    Value::Null => Ok(MaskSpec::Constant(String::new())),
                    other => scalar_text(other)
                        .map(MaskSpec::Constant)
                        .ok_or_else(|| ctx.err(policy, "constant needs a scalar value")),
                },
                "round" => {
                    let text = scalar_text(v).ok_or_else(|| ctx.err(policy, "round needs a step or a unit"))?;
                    if veil_udfs::mask_round::TimeUnitMask::parse(&text).is_some() {
                        Ok(MaskSpec::Round(RoundTo::Unit(text.to_ascii_lowercase())))
                    } else if matches!(veil_udfs::fit::parse_decimal(&text), Some((m, _)) if m > 0) {
                        Ok(MaskSpec::Round(RoundTo::Step(text)))
                    } else {
                        Err(ctx.err(policy, format!("round '{text}' must be a positive number or minute, hour, day, month, year")))
                    }
                }
                "regex" => {
                    let pattern = v.get("pattern").and_then(scalar_text);
                    let replacement = v.get("replacement").and_then(scalar_text).unwrap_or_default();
                    let Some(pattern) = pattern else {
                        return Err(ctx.err(policy, "regex needs {pattern: ..., replacement: ...}"));
                    };
                    regex::Regex::new(&pattern)
                        .map_err(|e| ctx.err(policy, format!("regex pattern '{pattern}' is invalid: {e}")))?;
                    Ok(MaskSpec::Regex { pattern, replacement })
                }
                "show_first" | "show_last" => {
                    let n = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| ctx.err(policy, format!("{key} needs a non-negative character count")))?;
                    Ok(if key == "show_first" { MaskSpec::ShowFirst(n) } else { MaskSpec::ShowLast(n) })
                }
                "reversible" | "format_preserving" => Err(ctx.err(policy, format!("{key} takes no parameters; write `mask: {key}`"))),
                "randomized_response" => randomized_response(v, policy, ctx),
                "k_anonymize" => v
                    .as_u64()
                    .and_then(|k| u32::try_from(k).ok())
                    .filter(|k| (2..=1_000_000).contains(k))
                    .map(MaskSpec::KAnonymize)
                    .ok_or_else(|| ctx.err(policy, "k_anonymize needs a k between 2 and 1000000, like {k_anonymize: 5}")),
                "mask_where" => Err(unsupported(key)),
                other => Err(ctx.err(policy, format!("unknown mask '{other}'"))),
            }
        }
        _ => Err(ctx.err(policy, "mask must be a name (hash, nullify) or a one-key mapping like {constant: REDACTED}")),
    }
}

/// `{probability: P, seed: S}` or `{epsilon: E, seed: S}`.
fn randomized_response(v: &Value, policy: &str, ctx: &PolicyContext<'_>) -> Result<MaskSpec> {
    let usage = "randomized_response takes {probability: P, seed: S} (0 < P <= 1) or {epsilon: E, seed: S} (E > 0)";
    let Value::Mapping(m) = v else {
        return Err(ctx.err(policy, usage));
    };
    let number = |key: &str| -> Result<Option<f64>> {
        match m.get(Value::String(key.to_string())) {
            None => Ok(None),
            Some(x) => x
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| ctx.err(policy, format!("{key} must be a number; {usage}"))),
        }
    };
    for k in m.keys() {
        let k = k.as_str().unwrap_or_default();
        if !["probability", "epsilon", "seed"].contains(&k) {
            return Err(ctx.err(
                policy,
                format!("unknown randomized_response key '{k}'; {usage}"),
            ));
        }
    }
    let seed = match m.get(Value::String("seed".to_string())) {
        None => 0,
        Some(s) => s.as_u64().ok_or_else(|| {
            ctx.err(
                policy,
                format!("seed must be a non-negative integer; {usage}"),
            )
        })?,
    };
    match (number("probability")?, number("epsilon")?) {
        (Some(p), None) if p > 0.0 && p <= 1.0 => Ok(MaskSpec::RandomizedResponse(
            RandomizedResponse::Categorical {
                probability: p,
                seed,
            },
        )),
        (None, Some(e)) if e > 0.0 => {
            Ok(MaskSpec::RandomizedResponse(RandomizedResponse::Laplace {
                epsilon: e,
                seed,
            }))
        }
        _ => Err(ctx.err(policy, usage)),
    }
}
