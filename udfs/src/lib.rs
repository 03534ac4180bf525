//! Veil's DataFusion scalar functions: the masks that policies apply and the
//! session context functions that policy bodies read.
//!
//! Masks take the value, literal parameters, and the column's declared
//! Snowflake type, and always return a value that fits that type (SPEC
//! §3.3–3.4). They accept every Arrow string layout (`Utf8`, `LargeUtf8`,
//! `Utf8View`, dictionaries — masking a dictionary's values once), arrays and
//! scalars, and keep NULL as NULL (except `constant`).
//!
//! ```
//! use datafusion::prelude::SessionContext;
//! # tokio_test_block(async {
//! let ctx = SessionContext::new();
//! veil_udfs::register_all(&ctx, "secret", veil_udfs::DEFAULT_MEMO_CAPACITY);
//! let batches = ctx
//!     .sql("SELECT veil_mask_constant('x', 'REDACTED', 'VARCHAR(5)') AS v")
//!     .await?
//!     .collect()
//!     .await?;
//! let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
//! assert!(text.contains("REDAC"));
//! # Ok::<(), datafusion::error::DataFusionError>(())
//! # });
//! # fn tokio_test_block<F: std::future::Future<Output = Result<(), datafusion::error::DataFusionError>>>(f: F) {
//! #     tokio::runtime::Runtime::new().unwrap().block_on(f).unwrap();
//! # }
//! ```
#![deny(missing_docs)]
// Module docs are the map of their private rooms and link them: read them
// with `cargo doc --document-private-items` (as `.ci/run` builds them).
#![allow(rustdoc::private_intra_doc_links)]

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

pub mod context;
pub mod fit;
pub mod keys;
pub mod mask_constant;
pub mod mask_fpe;
pub mod mask_hash;
pub mod mask_null;
pub mod mask_regex;
pub mod mask_reversible;
pub mod mask_round;
pub mod mask_rr;
pub mod mask_show;
pub mod mask_show_first;
pub mod mask_show_last;
pub mod memo;
mod round_kernels;
pub mod round_range;
pub mod sftype;
mod strings;
pub mod unmask;

#[cfg(test)]
mod proptests;

pub use context::{SessionIdentity, context_functions, normalize_identifier, normalize_role_name};
pub use memo::DEFAULT_MEMO_CAPACITY;
pub use sftype::SnowflakeType;

/// Every mask function, with hashing salted and encryption keyed by
/// `secret`, and regex and FF1 memos of `memo_capacity` values (0 disables
/// them). `VEIL_UNMASK` is per session: see [`unmask::veil_unmask`].
pub fn all_functions(secret: &str, memo_capacity: usize) -> Vec<Arc<ScalarUDF>> {
    vec![
        mask_hash::mask_hash(secret),
        mask_constant::mask_constant(),
        mask_null::mask_null(),
        mask_round::mask_round(),
        mask_regex::mask_regex(memo_capacity),
        mask_show_first::mask_show_first(),
        mask_show_last::mask_show_last(),
        mask_reversible::mask_reversible(secret),
        mask_fpe::mask_fpe(secret, memo_capacity),
        // The engine registers it again with each version's domains.
        mask_rr::mask_rr(secret, Default::default()),
    ]
}

/// Registers [`all_functions`] on a context.
pub fn register_all(ctx: &SessionContext, secret: &str, memo_capacity: usize) {
    for f in all_functions(secret, memo_capacity) {
        ctx.register_udf(f.as_ref().clone());
    }
}
