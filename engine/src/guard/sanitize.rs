//! The one sanitizer between an error and a user: no plan text, policy
//! internals or file paths; the full text is for the audit record.

use crate::error::VeilError;

/// Markers of text a user must never see in an error: plan and policy
/// internals, Veil's internal function and column names, data file paths.
const INTERNAL_MARKERS: &[&str] = &[
    "Exec:",
    "Exec ",
    "PolicyBarrier",
    "veil_",
    "VEIL_MASK",
    "__veil",
    "file_groups",
    "projection=[",
    "predicate=",
    ".csv",
    ".parquet",
    ".json",
    ".arrow",
    "LogicalPlan",
    "TableScan",
    "Projection:",
    "Filter:",
];

/// The error as a user may see it: DataFusion's text only when it carries
/// no plan text, policy internals or paths; otherwise one sentence saying
/// what kind of failure it was. The full text is for the audit record.
pub fn user_error(e: VeilError) -> VeilError {
    match e {
        VeilError::DataFusion(inner) => {
            let text = inner.to_string();
            if leaks(&text) {
                VeilError::QueryFailed(
                    "The query failed inside Veil's enforcement; the details are in the audit record for administrators."
                        .to_string(),
                )
            } else {
                VeilError::DataFusion(inner)
            }
        }
        VeilError::Internal(_) => VeilError::QueryFailed(
            "The query hit an internal error in Veil and was stopped; the details are in the audit record for administrators."
                .to_string(),
        ),
        other => other,
    }
}

/// Whether error text shows something a user must not see.
pub fn leaks(text: &str) -> bool {
    let bytes = text.as_bytes();
    let path_or_column = bytes.windows(2).any(|w| {
        // `/work/...`, `./data`: a path; `name@3`: a physical column.
        (w[0] == b'/' && (w[1].is_ascii_alphanumeric() || w[1] == b'_' || w[1] == b'.'))
            || (w[0] == b'@' && w[1].is_ascii_digit())
    });
    INTERNAL_MARKERS.iter().any(|m| text.contains(m)) || path_or_column
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_text_and_paths_never_reach_users() {
        for text in [
            "SanityCheckPlan\n  PolicyBarrierExec: table=X",
            "error reading /data/customers.csv",
            "veil_mask_hash(NAME, ...)",
        ] {
            assert!(leaks(text), "{text}");
        }
        assert!(!leaks("Schema error: No field named FOO."));
    }
}
