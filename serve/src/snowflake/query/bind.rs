//! Bindings spliced in as SQL literals: the tokenizer finds the
//! placeholders (`?`, `:1`, `:name`), so text inside strings and comments
//! is never touched.

use super::*;

/// Splices bindings into `sql` as literals: `?` placeholders in order, `:N`
/// by position, `:name` by name.
pub fn bind(sql: &str, bindings: &Json) -> Result<String, SfError> {
    let Json::Object(map) = bindings else {
        return Err(SfError::binding("Bindings must be an object."));
    };
    if map.is_empty() {
        return Ok(sql.to_string());
    }
    let dialect = SnowflakeDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SfError::syntax(format!("SQL compilation error: {e}")))?;
    let lines = line_starts(sql);
    let offset = |loc: datafusion::sql::sqlparser::tokenizer::Location| -> Option<usize> {
        let line_start = *lines.get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
        let col = usize::try_from(loc.column).ok()?.checked_sub(1)?;
        let rest = sql.get(line_start..)?;
        Some(line_start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i))
    };
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0usize;
    let mut next_positional = 1usize;
    let mut i = 0;
    let significant = |j: usize| !matches!(tokens[j].token, Token::Whitespace(_));
    while i < tokens.len() {
        let t = &tokens[i];
        let replacement: Option<(String, usize)> = match &t.token {
            Token::Placeholder(p) if p == "?" => {
                let key = next_positional.to_string();
                next_positional += 1;
                Some((key, i))
            }
            Token::Colon => {
                let prev_is_value = (0..i).rev().find(|j| significant(*j)).is_some_and(|j| {
                    // A name or a closing bracket before `:` makes it a path
                    // (`v:path`); a keyword (`SELECT :1`) does not.
                    match &tokens[j].token {
                        Token::Word(w) => w.keyword == Keyword::NoKeyword,
                        Token::RParen | Token::RBracket | Token::Number(..) => true,
                        _ => false,
                    }
                });
                match tokens.get(i + 1).map(|n| &n.token) {
                    Some(Token::Number(n, _)) if !prev_is_value => Some((n.clone(), i + 1)),
                    Some(Token::Word(w)) if !prev_is_value && w.quote_style.is_none() => {
                        Some((w.value.clone(), i + 1))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((key, last)) = replacement {
            let value = map
                .get(&key)
                .or_else(|| {
                    map.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                        .map(|(_, v)| v)
                })
                .ok_or_else(|| SfError::binding(format!("Bind variable {key} not set.")))?;
            let (Some(start), Some(end)) = (offset(t.span.start), offset(tokens[last].span.end))
            else {
                return Err(SfError::binding(
                    "The statement's placeholders could not be located.",
                ));
            };
            out.push_str(&sql[copied..start]);
            out.push_str(&literal(&key, value)?);
            copied = end;
            i = last + 1;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

pub(super) fn line_starts(sql: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    starts
}

/// One binding `{"type": "FIXED", "value": "10"}` as a SQL literal.
pub(super) fn literal(key: &str, binding: &Json) -> Result<String, SfError> {
    let ty = binding
        .get("type")
        .and_then(Json::as_str)
        .unwrap_or("TEXT")
        .to_ascii_uppercase();
    let value = match binding.get("value") {
        None | Some(Json::Null) => return Ok("NULL".to_string()),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Array(_)) => {
            return Err(SfError::unsupported(
                "Array bindings (executemany) are not supported: Veil user queries are read-only.",
            ));
        }
        Some(Json::Object(_)) => {
            return Err(SfError::binding(format!(
                "Bind variable {key} has an object value."
            )));
        }
    };
    let bad = || {
        SfError::binding(format!(
            "Bind variable {key} is not a valid {ty}: '{value}'."
        ))
    };
    match ty.as_str() {
        "FIXED" | "REAL" => {
            if !is_number(&value) {
                return Err(bad());
            }
            Ok(if value.starts_with('-') {
                format!("({value})")
            } else {
                value
            })
        }
        "BOOLEAN" => match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok("TRUE".into()),
            "false" | "0" => Ok("FALSE".into()),
            _ => Err(bad()),
        },
        "DATE" => {
            // Milliseconds since the epoch.
            let ms: i64 = value.parse().map_err(|_| bad())?;
            let d = chrono::DateTime::from_timestamp_millis(ms).ok_or_else(bad)?;
            Ok(format!("DATE '{}'", d.format("%Y-%m-%d")))
        }
        "TIMESTAMP_NTZ" | "TIMESTAMP_LTZ" | "TIMESTAMP_TZ" | "TIMESTAMP" => {
            // Nanoseconds since the epoch (a time zone offset may follow).
            let nanos: i128 = value
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|_| bad())?;
            let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| bad())?;
            let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| bad())?;
            let d = chrono::DateTime::from_timestamp(secs, sub).ok_or_else(bad)?;
            Ok(format!(
                "TIMESTAMP '{}'",
                d.naive_utc().format("%Y-%m-%d %H:%M:%S%.9f")
            ))
        }
        "TIME" => {
            let nanos: i64 = value.parse().map_err(|_| bad())?;
            let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| bad())?;
            let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| bad())?;
            let t =
                chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, sub).ok_or_else(bad)?;
            Ok(format!("'{}'", t.format("%H:%M:%S%.9f")))
        }
        "TEXT" | "ANY" | "VARIANT" | "CHAR" => Ok(quote(&value)),
        "BINARY" => {
            if !value.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            Ok(format!("X'{value}'"))
        }
        _ => Err(SfError::binding(format!(
            "Bind variable {key} has type {ty}, which Veil does not bind."
        ))),
    }
}

/// A Snowflake string literal: quotes doubled, backslashes escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub(super) fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => (digits(int) || int.is_empty()) && (digits(f) || (f.is_empty() && digits(int))),
        None => digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        digits(e)
    });
    mantissa_ok && exponent_ok
}

// ---- SHOW and DESCRIBE: only what the login may see ----
