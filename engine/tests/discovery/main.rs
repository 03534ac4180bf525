//! Tests of sensitive data discovery (`veil discover`) and identity sync
//! and staging (`veil users ...`) through the library, over workspaces the
//! tests generate: labelled fixtures in CSV and Parquet ([`fixture`]),
//! SCIM exports, and the catalog journal they write to.

mod discover;
mod fixture;
mod perf;
mod users;
