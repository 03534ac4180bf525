//! The qualification rule (SPEC §7.2): a value classifier qualifies a
//! column when at least 90 % of its sampled non-NULL values match; among
//! the qualifying classifiers the most specific wins (ties: the first
//! listed); a column-name hint adds evidence but never qualifies a column
//! alone. Empty and all-blank values count as NULL.
//!
//! Confidence is `0.8 × matched share + 0.2 when the column name hints at
//! the type`: every value matching and a telling name give 1.0; every
//! value matching under an unrelated name gives 0.8.

use super::classifiers::Classifier;

/// The share of non-NULL values that must match.
pub const QUALIFYING_SHARE: f64 = 0.9;

/// Why a column qualified.
#[derive(Debug, Clone, PartialEq)]
pub struct Qualified {
    /// Index of the winning classifier.
    pub classifier: usize,
    /// Matched share of the non-NULL sampled values.
    pub matched: f64,
    /// Confidence.
    pub confidence: f64,
    /// Non-NULL values sampled.
    pub values: usize,
    /// Whether the column name hinted at the type.
    pub named: bool,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The winning classifier for a column named `column` with `values`.
pub fn qualify(
    column: &str,
    values: &[Option<String>],
    classifiers: &[Box<dyn Classifier>],
) -> Option<Qualified> {
    let lower = column.to_lowercase();
    let present: Vec<&str> = values
        .iter()
        .flatten()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    let n = present.len();
    if n == 0 {
        return None;
    }
    // More misses than this and a classifier cannot qualify: stop early.
    let allowed_misses = n - (QUALIFYING_SHARE * n as f64).ceil() as usize;
    let mut best: Option<Qualified> = None;
    for (i, c) in classifiers.iter().enumerate() {
        if best
            .as_ref()
            .is_some_and(|b| classifiers[b.classifier].specificity() >= c.specificity())
        {
            continue;
        }
        let named = c.name_signal(&lower);
        let mut misses = 0usize;
        for v in &present {
            if !c.matches(v, named) {
                misses += 1;
                if misses > allowed_misses {
                    break;
                }
            }
        }
        if misses > allowed_misses {
            continue;
        }
        let matched = (n - misses) as f64 / n as f64;
        let confidence = 0.8 * matched + if named { 0.2 } else { 0.0 };
        best = Some(Qualified {
            classifier: i,
            matched: round2(matched),
            confidence: round2(confidence),
            values: n,
            named,
        });
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::classifiers::builtins;

    fn values(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn ninety_percent_qualifies_and_names_only_add_evidence() {
        let cs = builtins();
        let mut v = values(&["a@example.com"; 9]);
        v.push(Some("nope".into()));
        v.push(None);
        let q = qualify("contact", &v, &cs)
            .map(|q| (cs[q.classifier].name().to_string(), q.matched, q.confidence));
        assert_eq!(q, Some(("email".into(), 0.9, 0.72)));
        let mut v = values(&["a@example.com"; 8]);
        v.extend(values(&["nope", "nope"]));
        assert_eq!(qualify("email", &v, &cs), None);
        assert_eq!(
            qualify("email_opt_in", &values(&["true", "false"]), &cs),
            None
        );
        assert_eq!(qualify("email", &[None, Some(" ".into())], &cs), None);
    }
}
