//! SCIM 2.0 (RFC 7643/7644) `ListResponse` exports of `User` resources, as
//! Entra ID and Active Directory tools write them, → Veil users.
//!
//! - `userName` → the user's name (normalized by Snowflake identifier rules);
//! - `active: false` → status `disabled` (absent or `true`: `active`);
//! - `groups[].display` (else `.value`) → groups;
//! - `roles[].value` → Snowflake roles (each must be declared in the
//!   workspace);
//! - the enterprise extension
//!   (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`) and any
//!   other extension schema's attributes → attributes, the key capitalised
//!   (`department` → `Department`, `costCenter` → `CostCenter`,
//!   `manager.displayName` → `Manager`); strings, numbers and booleans are
//!   values, arrays of them several values.
//!
//! Every error names the resource index (`Resources[3]`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Result, VeilError};
use crate::load::synced_users::SyncedUserDoc;
use crate::sql::ident::normalize_ident;

/// The SCIM list response message schema.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The SCIM core user schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise user extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    #[serde(default)]
    schemas: Vec<String>,
    total_results: Option<u64>,
    #[serde(rename = "Resources", default)]
    resources: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimUser {
    #[serde(default)]
    schemas: Vec<String>,
    user_name: String,
    active: Option<bool>,
    #[serde(default)]
    groups: Vec<MultiValued>,
    #[serde(default)]
    roles: Vec<MultiValued>,
}

#[derive(Deserialize)]
struct MultiValued {
    value: Option<String>,
    display: Option<String>,
}

/// `costCenter` → `CostCenter`.
fn attribute_key(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the attributes of one extension object into `out`.
fn extension(
    object: &serde_json::Map<String, Value>,
    out: &mut BTreeMap<String, BTreeSet<String>>,
) -> std::result::Result<(), String> {
    for (name, value) in object {
        let key = attribute_key(name);
        if key.contains('=') {
            return Err(format!("attribute '{name}' may not contain '='"));
        }
        let values: Vec<String> = match value {
            Value::Array(items) => items
                .iter()
                .filter_map(|i| match i {
                    Value::Object(o) => o.get("value").and_then(scalar),
                    other => scalar(other),
                })
                .collect(),
            // A complex attribute such as `manager`: its display name, else its value.
            Value::Object(o) => o
                .get("displayName")
                .and_then(scalar)
                .or_else(|| o.get("value").and_then(scalar))
                .into_iter()
                .collect(),
            other => scalar(other).into_iter().collect(),
        };
        if !values.is_empty() {
            out.entry(key).or_default().extend(values);
        }
    }
    Ok(())
}

/// Parses a SCIM `ListResponse` (the file `file`, for messages) into
/// users, sorted by name. Nothing is returned unless every resource reads.
pub fn parse_list_response(text: &str, file: &str) -> Result<Vec<SyncedUserDoc>> {
    let fail = |m: String| VeilError::workspace(file, m);
    let list: ListResponse = serde_json::from_str(text).map_err(|e| {
        VeilError::workspace(
            format!("{file}:{}", e.line()),
            format!("is not a SCIM ListResponse: {e}"),
        )
    })?;
    if !list.schemas.is_empty() && !list.schemas.iter().any(|s| s == LIST_RESPONSE) {
        return Err(fail(format!(
            "is not a SCIM ListResponse: its schemas do not include {LIST_RESPONSE}"
        )));
    }
    if let Some(total) = list.total_results
        && total > list.resources.len() as u64
    {
        return Err(fail(format!(
            "holds {} of {total} users (one page of a paged export); export every page into one file",
            list.resources.len()
        )));
    }
    let mut users: Vec<SyncedUserDoc> = Vec::with_capacity(list.resources.len());
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, resource) in list.resources.iter().enumerate() {
        let at = |m: String| fail(format!("Resources[{i}]: {m}"));
        let user: ScimUser = ScimUser::deserialize(resource).map_err(|e| at(e.to_string()))?;
        if !user.schemas.is_empty() && !user.schemas.iter().any(|s| s == USER_SCHEMA) {
            return Err(at(format!(
                "is not a User resource (its schemas do not include {USER_SCHEMA})"
            )));
        }
        let name = normalize_ident(&user.user_name);
        if name.is_empty() {
            return Err(at("userName is empty".into()));
        }
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(at(format!("user {name} is also Resources[{first}]")));
        }
        let mut groups = BTreeSet::new();
        for g in &user.groups {
            match g.display.as_ref().or(g.value.as_ref()) {
                Some(n) if !n.trim().is_empty() => {
                    groups.insert(n.trim().to_string());
                }
                _ => {
                    return Err(at(format!(
                        "user {name}: a group has neither display nor value"
                    )));
                }
            }
        }
        let mut roles = Vec::new();
        for r in &user.roles {
            match r.value.as_ref().or(r.display.as_ref()) {
                Some(n) if !n.trim().is_empty() => roles.push(normalize_ident(n)),
                _ => return Err(at(format!("user {name}: a role has no value"))),
            }
        }
        let mut attributes = BTreeMap::new();
        if let Value::Object(fields) = resource {
            for (key, value) in fields {
                if !key.starts_with("urn:") {
                    continue;
                }
                match value {
                    Value::Object(o) => extension(o, &mut attributes)
                        .map_err(|m| at(format!("user {name}: {key}: {m}")))?,
                    _ => return Err(at(format!("user {name}: extension {key} is not an object"))),
                }
            }
        }
        users.push(SyncedUserDoc {
            name,
            status: if user.active == Some(false) {
                "disabled"
            } else {
                "active"
            }
            .into(),
            roles,
            groups,
            attributes,
        });
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprise_and_custom_extensions_become_attributes() {
        let text = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,
          "Resources":[{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com",
          "active":true,"groups":[{"value":"g1","display":"Analysts"}],
          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Finance","costCenter":"4711","manager":{"value":"m1","displayName":"Bo"}},
          "urn:ietf:params:scim:schemas:extension:acme:2.0:User":{"region":["US","EU"],"clearance":3}}]}"#;
        let users = parse_list_response(text, "scim.json").unwrap_or_default();
        assert_eq!(users.len(), 1);
        let u = &users[0];
        assert_eq!(u.name, "ANN@EXAMPLE.COM");
        assert_eq!(u.groups.iter().collect::<Vec<_>>(), ["Analysts"]);
        let attr = |k: &str| {
            u.attributes
                .get(k)
                .map(|v| v.iter().cloned().collect::<Vec<_>>())
        };
        assert_eq!(attr("Department"), Some(vec!["Finance".into()]));
        assert_eq!(attr("CostCenter"), Some(vec!["4711".into()]));
        assert_eq!(attr("Manager"), Some(vec!["Bo".into()]));
        assert_eq!(attr("Region"), Some(vec!["EU".into(), "US".into()]));
        assert_eq!(attr("Clearance"), Some(vec!["3".into()]));
    }

    #[test]
    fn a_bad_resource_is_named_by_index() {
        let text = r#"{"Resources":[{"userName":"a"},{"active":true}]}"#;
        let e = parse_list_response(text, "scim.json")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("Resources[1]") && e.contains("userName"), "{e}");
    }
}
