//! The entitlement table `VEIL.SYSTEM.USER_PROFILE`: one row per user with
//! groups, attributes (`key=value`), purposes, roles and subscriptions, as
//! Immuta's `IMMUTA_SYSTEM.USER_PROFILE`. Policies in profile-join mode read
//! the current user's row; a user may read their own row and no other.
//! Built into each version's internal catalog by `enforce/system_tables.rs`
//! (enforce layer); whether a user is subscribed is decided in `compile/`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::compile::CompiledWorkspace;
use crate::error::Result;
use crate::model::Entitlements;
use crate::model::{User, UserStatus, Workspace};

/// The profile table's schema.
pub fn profile_schema() -> SchemaRef {
    let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("USER_NAME", DataType::Utf8, false),
        Field::new("STATUS", DataType::Utf8, false),
        Field::new("ROLES", list(), false),
        Field::new("GROUPS", list(), false),
        Field::new("ATTRIBUTES", list(), false),
        Field::new("PURPOSES", list(), false),
        Field::new("SUBSCRIPTIONS", list(), false),
    ]))
}

fn list_column<I, S>(rows: impl Iterator<Item = I>) -> ArrayRef
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut b = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for v in row {
            b.values().append_value(v.as_ref());
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

pub use crate::compile::subscribed;

/// The profile rows of `users` (of `ws`), in that order: the profile table
/// is every user's rows, a lookup one user's.
pub fn profile_rows(
    ws: &Workspace,
    compiled: &CompiledWorkspace,
    users: &[&User],
) -> Result<RecordBatch> {
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        users.iter().map(|u| u.name.clone()),
    ));
    let status: ArrayRef =
        Arc::new(StringArray::from_iter_values(users.iter().map(
            |u| match u.status {
                UserStatus::Active => "active",
                UserStatus::Staged => "staged",
                UserStatus::Disabled => "disabled",
            },
        )));
    let subscriptions = users.iter().map(|u| {
        let e = Entitlements {
            user: u.name.clone(),
            groups: u.groups.clone(),
            attributes: u.attributes.clone(),
            purposes: u.purposes.clone(),
            current_purpose: None,
            roles_in_session: ws.role_closure(&u.roles),
        };
        compiled
            .tables
            .values()
            .filter(|t| subscribed(t, &e))
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
    });
    let columns: Vec<ArrayRef> = vec![
        names,
        status,
        list_column(users.iter().map(|u| u.roles.clone())),
        list_column(
            users
                .iter()
                .map(|u| u.groups.iter().cloned().collect::<Vec<_>>()),
        ),
        list_column(users.iter().map(|u| {
            u.attributes
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                .collect::<Vec<_>>()
        })),
        list_column(
            users
                .iter()
                .map(|u| u.purposes.iter().cloned().collect::<Vec<_>>()),
        ),
        list_column(subscriptions),
    ];
    Ok(RecordBatch::try_new(profile_schema(), columns)?)
}

/// The schema of `VEIL.SYSTEM.USER_VALUES`.
pub fn user_values_schema() -> SchemaRef {
    Arc::new(Schema::new(
        ["USER_NAME", "KIND", "KEY", "VALUE"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ))
}

/// `VEIL.SYSTEM.USER_VALUES`: one row per value of a user's groups
/// (`KIND` `group`, empty `KEY`) and attributes (`KIND` `attribute`), the
/// relation profile-join policies probe for `match_attribute` and
/// `match_groups` row rules (a hash join on the value, not a scan of a list
/// per row).
///
/// These are the rows of `of` (users of a workspace), user by user.
pub fn user_values_rows(of: &[&User]) -> Result<RecordBatch> {
    let mut users = Vec::new();
    let mut kinds = Vec::new();
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for u in of {
        for g in &u.groups {
            users.push(u.name.as_str());
            kinds.push("group");
            keys.push("");
            values.push(g.as_str());
        }
        for (k, vs) in &u.attributes {
            for v in vs {
                users.push(u.name.as_str());
                kinds.push("attribute");
                keys.push(k.as_str());
                values.push(v.as_str());
            }
        }
    }
    let column = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
    Ok(RecordBatch::try_new(
        user_values_schema(),
        vec![column(users), column(kinds), column(keys), column(values)],
    )?)
}
