//! Snowflake's connector protocol, tested with the real
//! `snowflake-connector-python` (pandas and pyarrow extras) from the
//! virtual environment `scripts/test` creates: each test starts a Veil
//! Snowflake listener on 127.0.0.1 (port 0) over the sample workspace and
//! runs a Python script against it. A missing environment fails the test,
//! naming `scripts/test`.

mod common;
mod connector;
mod dbt;
mod http;
mod leaks;
mod throughput;
