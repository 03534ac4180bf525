//! Veil's integration tests in one binary (each test binary links all of
//! DataFusion): per-user golden files, the security suite, semantics and
//! error texts, property tests, and the policy-as-code loop (test, diff,
//! lint, audit, versions). Run with `cargo test`.

mod common;
mod data;
mod embed;
mod export;
mod functions;
mod fuzz;
mod golden;
mod hardening;
mod lineage;
mod ops;
mod props;
mod security;
mod semantics;
mod snowflake;

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(golden::trials());
    trials.extend(security::trials());
    trials.extend(semantics::trials());
    trials.extend(props::trials());
    trials.extend(ops::trials());
    trials.extend(functions::trials());
    trials.extend(snowflake::trials());
    trials.extend(export::trials());
    trials.extend(data::trials());
    trials.extend(hardening::trials());
    trials.extend(embed::trials());
    trials.extend(fuzz::trials());
    trials.extend(lineage::trials());
    libtest_mimic::run(&args, trials).exit();
}
