//! dbt-snowflake against the listener (see testdata/dbt).
