//! The YAML documents of a workspace and their translation into the model.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_norway::Value;

use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ident::{normalize_ident, parse_name_parts, resolve_table};

mod mask;
use mask::mask;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDoc {
    #[serde(default)]
    pub(crate) settings: Option<SettingsDoc>,
    #[serde(default)]
    pub(crate) include: Vec<String>,
    #[serde(default)]
    pub(crate) tables: Vec<TableDoc>,
    #[serde(default)]
    pub(crate) roles: Vec<RoleDoc>,
    #[serde(default, deserialize_with = "users_field")]
    pub(crate) users: Vec<UserDoc>,
    #[serde(default)]
    pub(crate) policies: Vec<PolicyDoc>,
    #[serde(default)]
    pub(crate) lint: Option<LintDoc>,
    #[serde(default)]
    pub(crate) discovery: Option<super::discovery::DiscoveryDoc>,
}

/// `lint: {allow: [rule, ...]}` in `veil.yaml`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct LintDoc {
    #[serde(default)]
    pub(crate) allow: Vec<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsDoc {
    pub(crate) default_database: Option<String>,
    pub(crate) default_schema: Option<String>,
    pub(crate) secret_env: Option<String>,
    pub(crate) salt_scope: Option<String>,
    pub(crate) enforcement: Option<String>,
    pub(crate) secondary_roles: Option<String>,
    pub(crate) memo_capacity: Option<usize>,
    pub(crate) access: Option<String>,
    #[serde(default)]
    pub(crate) administrators: Vec<String>,
    pub(crate) audit: Option<Value>,
    pub(crate) discovery: Option<super::discovery::DiscoverySettingsDoc>,
    pub(crate) lineage: Option<LineageDoc>,
}

/// `settings.lineage`: which tags propagate through lineage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineageDoc {
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableDoc {
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) format: Option<String>,
    pub(crate) event_time: Option<String>,
    #[serde(default)]
    pub(crate) owners: Vec<String>,
    pub(crate) columns: Vec<ColumnDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnDoc {
    pub(crate) name: String,
    pub(crate) r#type: String,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleDoc {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) grants: Vec<String>,
    #[serde(default)]
    pub(crate) inherits: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn values(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// A user, or (with `location:`) a table of users (see
/// [`crate::load::user_table`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserDoc {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) location: Option<String>,
    pub(crate) format: Option<String>,
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    #[serde(default)]
    pub(crate) attributes: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    pub(crate) purposes: Vec<String>,
    pub(crate) status: Option<String>,
}

/// `users:` is a list of users and users tables, or one users table
/// (`users: {location: users.parquet}`).
fn users_field<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<UserDoc>, D::Error> {
    struct Users;
    impl<'de> serde::de::Visitor<'de> for Users {
        type Value = Vec<UserDoc>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of users, or {location: FILE} for a users table")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let one = UserDoc::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(vec![one])
        }
        fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    deserializer.deserialize_any(Users)
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionDoc {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    operator: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnDoc {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    data_sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OtherwiseDoc {
    mask: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyDoc {
    pub(crate) name: String,
    r#type: String,
    on: OnDoc,
    #[serde(default, deserialize_with = "present")]
    mask: Option<Value>,
    rule: Option<Value>,
    allow: Option<Value>,
    #[serde(default)]
    guardrail: bool,
    except: Option<ConditionDoc>,
    for_everyone_who: Option<ConditionDoc>,
    otherwise: Option<OtherwiseDoc>,
    #[serde(rename = "where")]
    cell_where: Option<Value>,
}

/// A field that is present, even as YAML's `null`, is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Parses one YAML file, naming the file and line of a syntax or shape error.
pub(crate) fn parse_doc(text: &str, file: &str) -> Result<FileDoc> {
    if text.trim().is_empty() {
        return Ok(FileDoc::default());
    }
    // `{name: ID, type: NUMBER(10,0)}` is the documented form, but in a YAML
    // flow mapping the comma would split the type: quote parenthesised types.
    // Compiled once per process: every included file is parsed with it.
    static QUOTE_TYPES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(\btype:\s*)([A-Za-z_][A-Za-z_0-9 ]*\([^)'"]*\))"#)
            .unwrap_or_else(|_| unreachable!("static regex"))
    });
    let text = QUOTE_TYPES.replace_all(text, "$1'$2'");
    serde_norway::from_str(&text).map_err(|e| {
        let location = match e.location() {
            Some(l) => format!("{file}:{}", l.line()),
            None => file.to_string(),
        };
        let message = e.to_string();
        // serde_norway appends " at line X column Y"; the location says it already.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        VeilError::workspace(location, message)
    })
}

/// The 1-based line of each block-style list item of top-level `section`.
pub fn item_lines(text: &str, section: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut inside = false;
    let mut indent: Option<usize> = None;
    let header = format!("{section}:");
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - trimmed.len();
        if this_indent == 0 && !trimmed.starts_with('-') {
            inside = trimmed.starts_with(&header);
            indent = None;
            continue;
        }
        if !inside {
            continue;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            match indent {
                None => {
                    indent = Some(this_indent);
                    lines.push(i + 1);
                }
                Some(n) if n == this_indent => lines.push(i + 1),
                _ => {}
            }
        }
    }
    lines
}

pub(crate) struct PolicyContext<'a> {
    pub(crate) origin: &'a Origin,
    pub(crate) tables: &'a [Table],
    pub(crate) users: &'a [User],
    pub(crate) default_database: &'a str,
    pub(crate) default_schema: &'a str,
}

impl PolicyContext<'_> {
    pub(super) fn err(&self, policy: &str, message: impl std::fmt::Display) -> VeilError {
        VeilError::workspace(
            self.origin.to_string(),
            format!("policy '{policy}': {message}"),
        )
    }

    fn table(&self, policy: &str, text: &str) -> Result<TableName> {
        let parts = parse_name_parts(text).map_err(|m| self.err(policy, m))?;
        let name = resolve_table(&parts, self.default_database, self.default_schema)
            .ok_or_else(|| self.err(policy, format!("'{text}' is not a table name")))?;
        if !self.tables.iter().any(|t| t.name == name) {
            return Err(self.err(policy, format!("data source {name} is not declared")));
        }
        Ok(name)
    }
}

fn condition(doc: &ConditionDoc, policy: &str, ctx: &PolicyContext<'_>) -> Result<Condition> {
    let operator = match doc.operator.as_deref() {
        None | Some("any") => Operator::Any,
        Some("all") => Operator::All,
        Some(o) => {
            return Err(ctx.err(
                policy,
                format!("condition operator '{o}' must be any or all"),
            ));
        }
    };
    let users: Vec<String> = doc.users.iter().map(|u| normalize_ident(u)).collect();
    for u in &users {
        if !ctx.users.iter().any(|x| x.name == *u) {
            return Err(ctx.err(
                policy,
                format!("condition names user {u}, who is not declared"),
            ));
        }
    }
    // Roles may come from DDL scripts: `validate` checks them afterwards.
    let roles: Vec<String> = doc.roles.iter().map(|r| normalize_ident(r)).collect();
    let mut attributes = Vec::new();
    for (k, v) in &doc.attributes {
        for value in v.values() {
            attributes.push((k.clone(), value));
        }
    }
    let c = Condition {
        groups: doc.groups.clone(),
        attributes,
        purposes: doc.purposes.clone(),
        users,
        roles,
        operator,
    };
    if c.is_empty() {
        return Err(ctx.err(
            policy,
            "a condition needs at least one group, attribute, purpose, user or role",
        ));
    }
    Ok(c)
}

pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn row_rule(v: &Value, policy: &str, ctx: &PolicyContext<'_>) -> Result<RowRule> {
    let Value::Mapping(m) = v else {
        return Err(ctx.err(
            policy,
            "rule must be a mapping like {match_attribute: Region, column: REGION}",
        ));
    };
    let get = |k: &str| m.get(Value::String(k.to_string()));
    let column = get("column")
        .and_then(scalar_text)
        .map(|c| normalize_ident(&c));
    let allowed_keys = [
        "match_attribute",
        "match_groups",
        "column",
        "where",
        "time_window",
        "minimize",
        "purpose",
    ];
    for k in m.keys() {
        let k = k.as_str().unwrap_or_default();
        if !allowed_keys.contains(&k) {
            return Err(ctx.err(policy, format!("unknown rule key '{k}'")));
        }
    }
    if let Some(key) = get("match_attribute") {
        let key = scalar_text(key)
            .ok_or_else(|| ctx.err(policy, "match_attribute needs an attribute key"))?;
        return Ok(RowRule::MatchAttribute { key, column });
    }
    if let Some(g) = get("match_groups") {
        let column = match g {
            Value::String(c) => Some(normalize_ident(c)),
            _ => column,
        };
        return Ok(RowRule::MatchGroups { column });
    }
    if column.is_some() {
        return Err(ctx.err(policy, "column goes with match_attribute or match_groups"));
    }
    if let Some(w) = get("where") {
        let text = scalar_text(w).ok_or_else(|| ctx.err(policy, "where needs a SQL predicate"))?;
        return Ok(RowRule::Where(text));
    }
    if let Some(w) = get("time_window") {
        let text = scalar_text(w).unwrap_or_default();
        let mut parts = text.split_whitespace();
        let amount = parts.next().and_then(|a| a.parse::<u32>().ok());
        let unit = match parts.next().map(|u| u.to_ascii_lowercase()) {
            Some(u) if u.starts_with("minute") => Some(WindowUnit::Minutes),
            Some(u) if u.starts_with("hour") => Some(WindowUnit::Hours),
            Some(u) if u.starts_with("day") => Some(WindowUnit::Days),
            Some(u) if u.starts_with("year") => Some(WindowUnit::Years),
            _ => None,
        };
        return match (amount, unit) {
            (Some(amount), Some(unit)) if amount > 0 => Ok(RowRule::TimeWindow { amount, unit }),
            _ => Err(ctx.err(
                policy,
                format!(
                    "time_window '{text}' must look like '30 days' (minutes, hours, days, years)"
                ),
            )),
        };
    }
    if let Some(p) = get("minimize") {
        let text = scalar_text(p).unwrap_or_default();
        return match veil_udfs::fit::parse_decimal(&text) {
            Some((m, s)) if m >= 0 && m <= 100 * 10i128.pow(s) => Ok(RowRule::Minimize(text)),
            _ => Err(ctx.err(
                policy,
                format!("minimize '{text}' must be a percentage between 0 and 100"),
            )),
        };
    }
    if let Some(p) = get("purpose") {
        let text = scalar_text(p).ok_or_else(|| ctx.err(policy, "purpose needs a purpose name"))?;
        return Ok(RowRule::Purpose(text));
    }
    Err(ctx.err(
        policy,
        "rule needs one of match_attribute, match_groups, where, time_window, minimize, purpose",
    ))
}

fn target(on: &OnDoc, policy: &str, ctx: &PolicyContext<'_>) -> Result<Target> {
    let kinds = [
        !on.tags.is_empty(),
        !on.columns.is_empty(),
        !on.data_sources.is_empty(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(ctx.err(
            policy,
            "on: needs exactly one of tags, columns or data_sources",
        ));
    }
    if !on.tags.is_empty() {
        return Ok(Target::Tags(on.tags.clone()));
    }
    if !on.columns.is_empty() {
        let mut columns = Vec::new();
        for c in &on.columns {
            let parts = parse_name_parts(c).map_err(|m| ctx.err(policy, m))?;
            let (table_parts, column) = match parts.split_last() {
                Some((col, rest)) if !rest.is_empty() => (rest.to_vec(), col.clone()),
                _ => {
                    return Err(ctx.err(
                        policy,
                        format!("column '{c}' must be written DB.SCHEMA.TABLE.COLUMN"),
                    ));
                }
            };
            let table = resolve_table(&table_parts, ctx.default_database, ctx.default_schema)
                .ok_or_else(|| {
                    ctx.err(
                        policy,
                        format!("column '{c}' must be written DB.SCHEMA.TABLE.COLUMN"),
                    )
                })?;
            let Some(t) = ctx.tables.iter().find(|t| t.name == table) else {
                return Err(ctx.err(policy, format!("data source {table} is not declared")));
            };
            if t.column(&column).is_none() {
                return Err(ctx.err(policy, format!("table {table} has no column {column}")));
            }
            columns.push((table, column));
        }
        return Ok(Target::Columns(columns));
    }
    let tables = on
        .data_sources
        .iter()
        .map(|t| ctx.table(policy, t))
        .collect::<Result<Vec<_>>>()?;
    Ok(Target::DataSources(tables))
}

pub(crate) fn policy(doc: &PolicyDoc, ctx: &PolicyContext<'_>) -> Result<Policy> {
    let name = doc.name.as_str();
    let target = target(&doc.on, name, ctx)?;
    let applies = match (&doc.except, &doc.for_everyone_who) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(name, "use either except or for_everyone_who, not both"));
        }
        (Some(c), None) => Applicability::EveryoneExcept(condition(c, name, ctx)?),
        (None, Some(c)) => Applicability::EveryoneWho(condition(c, name, ctx)?),
        (None, None) => Applicability::Everyone,
    };
    let only = |field: &str, present: bool| {
        if present {
            Err(ctx.err(
                name,
                format!("{field} does not belong in a {} policy", doc.r#type),
            ))
        } else {
            Ok(())
        }
    };
    let kind = match doc.r#type.as_str() {
        "masking" => {
            only("rule", doc.rule.is_some())?;
            only("allow", doc.allow.is_some())?;
            let Some(m) = &doc.mask else {
                return Err(ctx.err(name, "a masking policy needs mask:"));
            };
            let otherwise = match (&doc.otherwise, &applies) {
                (Some(o), Applicability::EveryoneWho(_)) => Some(mask(&o.mask, name, ctx)?),
                (Some(_), _) => return Err(ctx.err(name, "otherwise goes with for_everyone_who")),
                (None, _) => None,
            };
            let cell_where = match &doc.cell_where {
                None => None,
                Some(w) => {
                    let text = scalar_text(w)
                        .filter(|t| !t.trim().is_empty())
                        .ok_or_else(|| ctx.err(name, "where needs a SQL predicate over the table's columns, like \"STATE = 'CA'\""))?;
                    // The `@` functions parse as calls; compile checks them
                    // against each table.
                    crate::sql::ident::parse_expr(&text.replace('@', "veil_at_")).map_err(|e| {
                        ctx.err(name, format!("the where predicate does not parse: {e}"))
                    })?;
                    Some(text)
                }
            };
            PolicyKind::Masking {
                mask: mask(m, name, ctx)?,
                otherwise,
                applies,
                cell_where,
            }
        }
        "row" => {
            only("mask", doc.mask.is_some())?;
            only("where (beside mask:)", doc.cell_where.is_some())?;
            only("allow", doc.allow.is_some())?;
            only("otherwise", doc.otherwise.is_some())?;
            if matches!(target, Target::Columns(_)) {
                return Err(ctx.err(name, "row policies target data_sources or tags"));
            }
            let Some(r) = &doc.rule else {
                return Err(ctx.err(name, "a row policy needs rule:"));
            };
            PolicyKind::Row {
                rule: row_rule(r, name, ctx)?,
                applies,
            }
        }
        "subscription" => {
            only("mask", doc.mask.is_some())?;
            only("where", doc.cell_where.is_some())?;
            only("rule", doc.rule.is_some())?;
            only("except", doc.except.is_some())?;
            only("for_everyone_who", doc.for_everyone_who.is_some())?;
            if matches!(target, Target::Columns(_)) {
                return Err(ctx.err(name, "subscription policies target data_sources or tags"));
            }
            let allow = match &doc.allow {
                Some(Value::String(s)) if s == "anyone" => Allow::Anyone,
                Some(Value::String(s)) if s == "approval" => Allow::Approval,
                Some(v @ Value::Mapping(_)) => {
                    let c: ConditionDoc =
                        serde_norway::from_value(v.clone()).map_err(|e| ctx.err(name, e))?;
                    Allow::Condition(condition(&c, name, ctx)?)
                }
                _ => {
                    return Err(ctx.err(
                        name,
                        "allow must be anyone, approval or a condition like {groups: [Analysts]}",
                    ));
                }
            };
            PolicyKind::Subscription {
                allow,
                guardrail: doc.guardrail,
            }
        }
        other => {
            return Err(ctx.err(
                name,
                format!("type '{other}' must be masking, row or subscription"),
            ));
        }
    };
    Ok(Policy {
        name: name.to_string(),
        target,
        kind,
        origin: ctx.origin.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_lines_find_block_list_items() {
        let text = "settings:\n  a: 1\ntables:\n  - name: A\n    columns:\n      - {name: X}\n  - name: B\nusers:\n  - name: U\n";
        assert_eq!(item_lines(text, "tables"), vec![4, 7]);
        assert_eq!(item_lines(text, "users"), vec![9]);
        assert!(item_lines(text, "policies").is_empty());
    }

    #[test]
    fn flow_mapping_types_with_commas_parse() {
        let doc = parse_doc("tables:\n  - name: A\n    location: a.csv\n    columns:\n      - {name: ID, type: NUMBER(10,0), tags: [X]}\n", "veil.yaml").unwrap();
        assert_eq!(doc.tables[0].columns[0].r#type, "NUMBER(10,0)");
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let e = parse_doc("tables:\n  - name: A\n    bogus: 1\n", "veil.yaml").unwrap_err();
        assert!(e.to_string().starts_with("veil.yaml:"), "{e}");
    }

    #[test]
    fn yaml_errors_name_file_line_and_path_once() {
        let shape = parse_doc("tables:\n  - name: A\n    colums: []\n", "veil.yaml").unwrap_err();
        let shape = shape.to_string();
        assert!(
            shape.starts_with(
                "veil.yaml:3: tables[0]: unknown field `colums`, expected one of `name`"
            ),
            "{shape}"
        );
        let syntax =
            parse_doc("tables:\n  - name: A\n    location: a: b\n", "veil.yaml").unwrap_err();
        let syntax = syntax.to_string();
        assert!(
            syntax.starts_with("veil.yaml:3: mapping values are not allowed"),
            "{syntax}"
        );
        assert!(!syntax.contains(" at line "), "{syntax}");
    }
}
