//! The workspace's own classifiers (`discovery.classifiers:`): a regular
//! expression over values (RE2 syntax, matched against the whole value), a
//! dictionary of words, and a regular expression over column names that
//! adds evidence. Loading has already checked that the expressions compile
//! and the dictionary was read.

use std::collections::HashSet;

use regex::{Regex, RegexBuilder};

use super::Classifier;
use crate::error::{Result, VeilError};
use crate::model::CustomClassifier;

/// A compiled custom classifier.
pub struct Custom {
    name: String,
    values: Option<Regex>,
    columns: Option<Regex>,
    dictionary: HashSet<String>,
}

impl Custom {
    /// Compiles `c`; errors name its `file:line`.
    pub fn new(c: &CustomClassifier) -> Result<Self> {
        let fail = |what: &str, e: regex::Error| {
            VeilError::workspace(
                c.origin.to_string(),
                format!(
                    "classifier '{}': {what} is not a valid regular expression: {e}",
                    c.name
                ),
            )
        };
        let values = c
            .values
            .as_ref()
            .map(|p| Regex::new(&format!("^(?:{p})$")).map_err(|e| fail("values", e)))
            .transpose()?;
        let columns = c
            .columns
            .as_ref()
            .map(|p| {
                RegexBuilder::new(p)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| fail("columns", e))
            })
            .transpose()?;
        Ok(Self {
            name: c.name.clone(),
            values,
            columns,
            dictionary: c
                .dictionary
                .as_ref()
                .map(|(_, words)| words.iter().cloned().collect())
                .unwrap_or_default(),
        })
    }
}

impl Classifier for Custom {
    fn name(&self) -> &str {
        &self.name
    }
    fn tag(&self) -> String {
        format!("Discovered.{}", self.name)
    }
    /// A workspace's own classifier is narrower than any built-in.
    fn specificity(&self) -> u32 {
        100
    }
    fn name_signal(&self, column: &str) -> bool {
        self.columns.as_ref().is_some_and(|r| r.is_match(column))
    }
    fn matches(&self, value: &str, _named: bool) -> bool {
        self.values.as_ref().is_some_and(|r| r.is_match(value))
            || (!self.dictionary.is_empty() && self.dictionary.contains(&value.to_lowercase()))
    }
}
