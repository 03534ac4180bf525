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
use crate::model::{UserStatus, Workspace};

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

/// Builds the profile table for every user.
pub fn profile_batch(ws: &Workspace, compiled: &CompiledWorkspace) -> Result<RecordBatch> {
    let users = &ws.users;
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
