//! Policies: what they target (tags, columns, tables), to whom they
//! apply, masking types, row rules and subscription rules.

use std::fmt;

use super::{Condition, Origin, TableName};

/// To whom a rule applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Applicability {
    /// Everyone.
    Everyone,
    /// Everyone except users who meet the condition.
    EveryoneExcept(Condition),
    /// Only users who meet the condition; others get `otherwise` (masking
    /// rules) or the unfiltered rows (row rules).
    EveryoneWho(Condition),
}

/// Rounding targets.
#[derive(Debug, Clone, PartialEq)]
pub enum RoundTo {
    /// Numbers to a multiple of this decimal step.
    Step(String),
    /// Dates/timestamps truncated to `minute|hour|day|month|year`.
    Unit(String),
}

/// A masking type.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSpec {
    /// Salted SHA-256.
    Hash,
    /// A constant literal.
    Constant(String),
    /// NULL.
    Nullify,
    /// Numeric bucket / date truncation.
    Round(RoundTo),
    /// Regex replacement.
    Regex {
        /// Pattern.
        pattern: String,
        /// Replacement.
        replacement: String,
    },
    /// Keep the first n characters.
    ShowFirst(u32),
    /// Keep the last n characters.
    ShowLast(u32),
    /// AES-256-SIV tokens, decrypted by `VEIL_UNMASK` for admitted users.
    Reversible,
    /// NIST FF1: same length and character classes, reversible with the key.
    FormatPreserving,
    /// Randomized response (local differential privacy), seeded per row.
    RandomizedResponse(RandomizedResponse),
    /// k-anonymity: the column is a quasi-identifier, generalized with the
    /// table's other ones until every combination the user sees occurs at
    /// least k times.
    KAnonymize(u32),
    /// A Snowflake masking policy's body, its arguments bound to the raw
    /// columns (`t."COL"`), SQL functions expanded.
    Sql {
        /// Policy name.
        policy: String,
        /// The bound body.
        expr: Box<datafusion::sql::sqlparser::ast::Expr>,
    },
}

impl fmt::Display for MaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hash => f.write_str("hash"),
            Self::Constant(c) => write!(f, "constant '{c}'"),
            Self::Nullify => f.write_str("nullify"),
            Self::Round(RoundTo::Step(s)) => write!(f, "round to {s}"),
            Self::Round(RoundTo::Unit(u)) => write!(f, "round to {u}"),
            Self::Regex {
                pattern,
                replacement,
            } => write!(f, "regex '{pattern}' -> '{replacement}'"),
            Self::ShowFirst(n) => write!(f, "show_first {n}"),
            Self::ShowLast(n) => write!(f, "show_last {n}"),
            Self::Reversible => f.write_str("reversible"),
            Self::FormatPreserving => f.write_str("format_preserving"),
            Self::RandomizedResponse(RandomizedResponse::Categorical { probability, seed }) => {
                write!(
                    f,
                    "randomized_response (probability {probability}, seed {seed})"
                )
            }
            Self::KAnonymize(k) => write!(f, "k_anonymize {k}"),
            Self::RandomizedResponse(RandomizedResponse::Laplace { epsilon, seed }) => {
                write!(
                    f,
                    "randomized_response (Laplace, epsilon {epsilon}, seed {seed})"
                )
            }
            Self::Sql { policy, .. } => write!(f, "masking policy {policy}"),
        }
    }
}

/// Randomized response's parameters: categorical (`probability`) or
/// numeric (`epsilon`), and the seed of the per-row draws.
#[derive(Debug, Clone, PartialEq)]
pub enum RandomizedResponse {
    /// Keep the value with probability 1 − `probability`, else a value drawn
    /// uniformly from the column's distinct values.
    Categorical {
        /// The replacement probability, in (0, 1].
        probability: f64,
        /// Seed of the draws.
        seed: u64,
    },
    /// Laplace noise of scale (max − min) / `epsilon`.
    Laplace {
        /// Privacy parameter, > 0.
        epsilon: f64,
        /// Seed of the draws.
        seed: u64,
    },
}

/// What a policy targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Columns carrying any of these tags (or descendants).
    Tags(Vec<String>),
    /// Named columns.
    Columns(Vec<(TableName, String)>),
    /// Whole data sources.
    DataSources(Vec<TableName>),
}

/// Time units for time-window rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
    /// Years.
    Years,
}

/// A row rule type.
#[derive(Debug, Clone, PartialEq)]
pub enum RowRule {
    /// Rows whose column value is one of the user's values for an attribute.
    MatchAttribute {
        /// Attribute key.
        key: String,
        /// Column (normalized); for tag targets, defaults to the tagged column.
        column: Option<String>,
    },
    /// Rows whose column value is one of the user's groups.
    MatchGroups {
        /// Column (normalized); for tag targets, defaults to the tagged column.
        column: Option<String>,
    },
    /// A SQL predicate with Immuta `@` functions.
    Where(String),
    /// Rows whose event time is newer than `amount` `unit`s.
    TimeWindow {
        /// How many units.
        amount: u32,
        /// Unit.
        unit: WindowUnit,
    },
    /// A deterministic percentage of rows.
    Minimize(String),
    /// Rows only for sessions acting under this purpose.
    Purpose(String),
}

/// Who may subscribe.
#[derive(Debug, Clone, PartialEq)]
pub enum Allow {
    /// Everyone.
    Anyone,
    /// Users meeting a condition (including named users).
    Condition(Condition),
    /// Users with an approved access request (`veil access request`, then
    /// `approve` by a data owner), folded from the catalog journal.
    Approval,
}

/// A policy's kind and action.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    /// A masking rule.
    Masking {
        /// Mask for those the rule applies to.
        mask: MaskSpec,
        /// Mask for the others, with `for_everyone_who`.
        otherwise: Option<MaskSpec>,
        /// To whom.
        applies: Applicability,
        /// Immuta's "mask … where": a SQL predicate over the raw row (with
        /// Immuta `@` functions); the mask applies only to rows where it is
        /// TRUE, other rows show the raw value.
        cell_where: Option<String>,
    },
    /// A row rule.
    Row {
        /// Which rows.
        rule: RowRule,
        /// To whom.
        applies: Applicability,
    },
    /// A subscription policy.
    Subscription {
        /// Who.
        allow: Allow,
        /// Guardrail policies combine with AND, grants with OR.
        guardrail: bool,
    },
}

/// An Immuta-style policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Name, unique in the workspace.
    pub name: String,
    /// Target.
    pub target: Target,
    /// Kind and action.
    pub kind: PolicyKind,
    /// Where it was declared (its order decides equal-depth conflicts).
    pub origin: Origin,
}
