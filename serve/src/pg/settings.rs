//! The client settings PostgreSQL drivers send (`SET client_encoding`,
//! `SET extra_float_digits`, `SHOW server_version`, `BEGIN`, ...), answered
//! here as no-ops or constants. Anything else — `SET search_path`, session
//! variables, every other statement — goes to Veil's statement path, which
//! refuses what SPEC rule 10 refuses, with its own text.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::auth::SERVER_VERSION;

/// Settings a client may `SET` without effect: Veil always sends UTF-8,
/// ISO dates and full-precision floats, and these change nothing a policy
/// decides.
const HARMLESS: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "client_min_messages",
    "bytea_output",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "timezone",
];

/// What the server reports for `SHOW` and `pg_settings`.
pub(crate) fn reported() -> Vec<(&'static str, String)> {
    vec![
        ("server_version", SERVER_VERSION.to_string()),
        ("server_version_num", "150000".into()),
        ("server_encoding", "UTF8".into()),
        ("client_encoding", "UTF8".into()),
        ("datestyle", "ISO, YMD".into()),
        ("intervalstyle", "postgres".into()),
        ("timezone", "Etc/UTC".into()),
        ("extra_float_digits", "1".into()),
        ("integer_datetimes", "on".into()),
        ("standard_conforming_strings", "on".into()),
        ("transaction_isolation", "read committed".into()),
        ("default_transaction_isolation", "read committed".into()),
        ("transaction_read_only", "on".into()),
        ("default_transaction_read_only", "on".into()),
        ("is_superuser", "off".into()),
        ("max_identifier_length", "255".into()),
        ("search_path", "public".into()),
        ("lc_collate", "C".into()),
        ("lc_ctype", "C".into()),
        ("bytea_output", "hex".into()),
        ("client_min_messages", "notice".into()),
        ("max_connections", "100".into()),
    ]
}

/// A statement answered here.
#[derive(Debug, PartialEq)]
pub(crate) enum Local {
    /// A harmless `SET`/`RESET`/`DISCARD`: completes with this tag. The
    /// optional pair is an `application_name` to record.
    Done(&'static str, Option<(String, String)>),
    /// `SHOW name`: one row.
    Show(String, String),
    /// `BEGIN`/`START TRANSACTION`: Veil sessions are read-only, so a
    /// transaction changes nothing.
    Begin,
    /// `COMMIT`/`END`/`ROLLBACK`/`ABORT`.
    End(&'static str),
    /// A `SET client_encoding` Veil cannot honour.
    BadEncoding(String),
}

/// The words of a statement, lower-cased, without whitespace, comments or
/// a final `;`; quoted strings and identifiers keep their text.
fn words(sql: &str) -> Option<Vec<String>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut out: Vec<String> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_lowercase(),
            Token::Word(w) => w.value,
            Token::SingleQuotedString(s) => s,
            other => other.to_string(),
        })
        .collect();
    while out.last().is_some_and(|w| w == ";") {
        out.pop();
    }
    Some(out)
}

/// Classifies a statement answered here; `None`: it goes to Veil.
pub(crate) fn classify(sql: &str) -> Option<Local> {
    let w = words(sql)?;
    let first = w.first()?.as_str();
    match first {
        "begin" | "start" => {
            let rest_ok = w.iter().skip(1).all(|x| {
                matches!(
                    x.as_str(),
                    "transaction"
                        | "work"
                        | "read"
                        | "only"
                        | "isolation"
                        | "level"
                        | "committed"
                        | "repeatable"
                        | "serializable"
                        | "uncommitted"
                        | ","
                )
            });
            (first != "start" || w.get(1).is_some_and(|x| x == "transaction"))
                .then_some(())
                .filter(|_| rest_ok)
                .map(|_| Local::Begin)
        }
        "commit" | "end" if w.len() <= 2 => Some(Local::End("COMMIT")),
        "rollback" | "abort" if w.len() <= 2 => Some(Local::End("ROLLBACK")),
        "discard" if w.get(1).is_some_and(|x| x == "all") && w.len() == 2 => {
            Some(Local::Done("DISCARD ALL", None))
        }
        "reset" if w.len() == 2 && (HARMLESS.contains(&w[1].as_str()) || w[1] == "all") => {
            Some(Local::Done("RESET", None))
        }
        // pgjdbc's `setTransactionIsolation` (Metabase sets READ
        // UNCOMMITTED on every checkout): sessions are read-only, so every
        // isolation level reads the same data.
        "set"
            if w[1..].starts_with(&[
                "session".into(),
                "characteristics".into(),
                "as".into(),
                "transaction".into(),
                "isolation".into(),
                "level".into(),
            ]) && w.len() <= 9
                && w[7..].iter().all(|x| {
                    matches!(
                        x.as_str(),
                        "read" | "committed" | "uncommitted" | "repeatable" | "serializable"
                    )
                }) =>
        {
            Some(Local::Done("SET", None))
        }
        // pgjdbc's `getTransactionIsolation`.
        "show"
            if w.len() == 4 && w[1] == "transaction" && w[2] == "isolation" && w[3] == "level" =>
        {
            Some(Local::Show(
                "transaction_isolation".into(),
                "read committed".into(),
            ))
        }
        "set" => {
            let mut i = 1;
            if w.get(i).is_some_and(|x| x == "session") {
                i += 1;
            }
            let name = w.get(i)?.clone();
            if name == "time" && w.get(i + 1).is_some_and(|x| x == "zone") {
                let value = w.get(i + 2)?.to_lowercase();
                return ["utc", "etc/utc", "gmt", "z", "local", "default"]
                    .contains(&value.as_str())
                    .then_some(Local::Done("SET", None));
            }
            if !HARMLESS.contains(&name.as_str()) {
                return None;
            }
            if !w.get(i + 1).is_some_and(|x| x == "=" || x == "to") {
                return None;
            }
            let value = w[i + 2..].join(" ");
            if name == "timezone"
                && !["utc", "etc/utc", "gmt", "z", "default"]
                    .contains(&value.to_lowercase().as_str())
            {
                return None;
            }
            if name == "client_encoding"
                && !["utf8", "utf-8", "unicode", "default"].contains(&value.to_lowercase().as_str())
            {
                return Some(Local::BadEncoding(value));
            }
            let record = (name == "application_name").then(|| (name.clone(), value.clone()));
            Some(Local::Done("SET", record))
        }
        "show" if w.len() == 2 => {
            let name = w[1].to_lowercase();
            reported()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(n, v)| Local::Show(n.to_string(), v))
                .or_else(|| {
                    (name == "application_name").then(|| Local::Show(name.clone(), String::new()))
                })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmless_settings_are_no_ops() {
        assert_eq!(
            classify("SET extra_float_digits = 3"),
            Some(Local::Done("SET", None))
        );
        assert_eq!(
            classify("set DateStyle to 'ISO'"),
            Some(Local::Done("SET", None))
        );
        assert_eq!(
            classify("SET application_name = 'psql'"),
            Some(Local::Done(
                "SET",
                Some(("application_name".into(), "psql".into()))
            ))
        );
        assert_eq!(
            classify("SET client_encoding TO 'UTF8';"),
            Some(Local::Done("SET", None))
        );
        assert_eq!(
            classify("SET client_encoding = 'LATIN1'"),
            Some(Local::BadEncoding("LATIN1".into()))
        );
        assert_eq!(
            classify("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"),
            Some(Local::Done("SET", None))
        );
        assert_eq!(
            classify("SHOW TRANSACTION ISOLATION LEVEL"),
            Some(Local::Show(
                "transaction_isolation".into(),
                "read committed".into()
            ))
        );
        assert_eq!(classify("BEGIN"), Some(Local::Begin));
        assert_eq!(classify("commit;"), Some(Local::End("COMMIT")));
    }

    #[test]
    fn everything_else_goes_to_veil() {
        assert_eq!(classify("SET search_path = secret"), None);
        assert_eq!(classify("SET veil.user = 'ALICE'"), None);
        assert_eq!(classify("SET role = admin"), None);
        assert_eq!(
            classify("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"),
            None
        );
        assert_eq!(classify("SELECT 1"), None);
        assert_eq!(classify("SHOW TABLES"), None);
        assert_eq!(classify("SET timezone = 'Europe/Paris'"), None);
    }

    #[test]
    fn show_reports_constants() {
        assert_eq!(
            classify("SHOW server_version"),
            Some(Local::Show("server_version".into(), SERVER_VERSION.into()))
        );
    }
}
