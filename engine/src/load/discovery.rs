//! `settings.discovery` (sample size, exclusions) and `discovery.classifiers:`
//! (the workspace's own classifiers) → [`DiscoverySettings`]. A regex that
//! does not compile, a dictionary file that cannot be read or a classifier
//! that could only match by column name is an error at its `file:line`.

use serde::Deserialize;

use super::yaml::{FileDoc, item_lines};
use crate::error::{Result, VeilError};
use crate::ident::parse_name_parts;
use crate::model::*;

/// `settings.discovery` in `veil.yaml`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiscoverySettingsDoc {
    sample: Option<usize>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// `discovery:` at the top level of a workspace file.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiscoveryDoc {
    #[serde(default)]
    classifiers: Vec<ClassifierDoc>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ClassifierDoc {
    name: String,
    values: Option<String>,
    columns: Option<String>,
    dictionary: Option<String>,
}

/// The 1-based line of the first line at or after the `discovery:` line of
/// `text` that contains `needle` (the `discovery:` line itself otherwise).
fn line_of(text: &str, needle: &str) -> usize {
    let start = text
        .lines()
        .position(|l| l.trim_start().starts_with("discovery:"))
        .unwrap_or(0);
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| l.contains(needle))
        .map_or(start + 1, |(i, _)| i + 1)
}

/// Builds the discovery settings from the workspace's files (the first is
/// `veil.yaml`).
pub(crate) fn settings(
    dir: &std::path::Path,
    files: &[(String, String, FileDoc)],
    default_database: &str,
) -> Result<DiscoverySettings> {
    let mut out = DiscoverySettings::default();
    let doc = files[0]
        .2
        .settings
        .as_ref()
        .and_then(|s| s.discovery.clone())
        .unwrap_or_default();
    let text = &files[0].1;
    if let Some(n) = doc.sample {
        if n == 0 {
            return Err(VeilError::workspace(
                format!("veil.yaml:{}", line_of(text, "sample")),
                "settings.discovery.sample must be at least 1 row",
            ));
        }
        out.sample = n;
    }
    for entry in &doc.exclude {
        let here = || format!("veil.yaml:{}", line_of(text, entry));
        let parts = parse_name_parts(entry).map_err(|m| {
            VeilError::workspace(
                here(),
                format!("settings.discovery.exclude entry '{entry}': {m}"),
            )
        })?;
        let rule = match parts.as_slice() {
            [schema] => DiscoveryExclude::Schema {
                database: default_database.to_string(),
                schema: schema.clone(),
            },
            [database, schema] => DiscoveryExclude::Schema {
                database: database.clone(),
                schema: schema.clone(),
            },
            [database, schema, table] => DiscoveryExclude::Table(TableName {
                database: database.clone(),
                schema: schema.clone(),
                table: table.clone(),
            }),
            _ => {
                return Err(VeilError::workspace(
                    here(),
                    format!(
                        "settings.discovery.exclude entry '{entry}' must name a schema (DB.SCHEMA) or a table (DB.SCHEMA.TABLE)"
                    ),
                ));
            }
        };
        out.exclude.push(rule);
    }
    for (file, text, doc) in files {
        let Some(discovery) = &doc.discovery else {
            continue;
        };
        let lines = item_lines(text, "discovery");
        for (i, c) in discovery.classifiers.iter().enumerate() {
            let origin = Origin {
                file: file.clone(),
                line: lines.get(i).copied().unwrap_or(0),
            };
            let fail = |m: String| {
                VeilError::workspace(origin.to_string(), format!("classifier '{}': {m}", c.name))
            };
            if c.name.trim().is_empty() || c.name.contains('.') {
                return Err(fail(
                    "the name must be non-empty and without '.' (its tag is Discovered.<name>)"
                        .into(),
                ));
            }
            if out.classifiers.iter().any(|x| x.name == c.name) {
                return Err(fail("is declared twice".into()));
            }
            for (what, pattern) in [("values", &c.values), ("columns", &c.columns)] {
                if let Some(p) = pattern {
                    regex::Regex::new(p).map_err(|e| {
                        fail(format!(
                            "{what} is not a valid regular expression: {}",
                            one_line(&e.to_string())
                        ))
                    })?;
                }
            }
            if c.values.is_none() && c.dictionary.is_none() {
                return Err(fail(
                    "needs values (a regex) or a dictionary file: column names never qualify a column alone".into(),
                ));
            }
            let dictionary = match &c.dictionary {
                None => None,
                Some(rel) => {
                    let path = dir.join(rel);
                    let words = std::fs::read_to_string(&path)
                        .map_err(|e| fail(format!("cannot read dictionary file '{rel}': {e}")))?;
                    let words: Vec<String> = words
                        .lines()
                        .map(|w| w.trim().to_lowercase())
                        .filter(|w| !w.is_empty() && !w.starts_with('#'))
                        .collect();
                    if words.is_empty() {
                        return Err(fail(format!("dictionary file '{rel}' has no words")));
                    }
                    Some((path, words))
                }
            };
            out.classifiers.push(CustomClassifier {
                name: c.name.clone(),
                values: c.values.clone(),
                columns: c.columns.clone(),
                dictionary,
                origin,
            });
        }
    }
    Ok(out)
}

/// A regex error as one sentence: the `regex` crate prints a multi-line
/// caret diagram; its last line says what is wrong.
fn one_line(message: &str) -> String {
    let last = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message);
    last.trim().trim_start_matches("error: ").to_string()
}
