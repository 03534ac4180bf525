//! Veil on a Ballista cluster: a scheduler and two executors in this
//! process on loopback (`veil_cluster::LocalCluster`), fed by an engine
//! whose statements are planned here and run there. Every golden query of
//! every sample user returns what the single-node engine returns, in both
//! modes; BOB's leak battery holds through the cluster; no plan sent to the
//! scheduler carries the workspace secret; an executor keyed with another
//! secret refuses the work.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

use veil_cluster::{ClusterClient, LocalCluster};
use veil_engine::{EnforcementMode, Engine, SessionOptions};

use crate::common::{Failed, both_modes, runtime, testdata};

use crate::security::leak_battery;

/// A secret no test data contains, so finding it in a plan means it leaked.
const SECRET: &str = "cluster-test-secret-7f3a9c1e5b";

/// The loopback cluster the tests share: one scheduler, two executors of
/// one task slot each, keyed with [`SECRET`].
fn cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<LocalCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        runtime()
            .block_on(LocalCluster::start(2, 1, SECRET))
            .expect("the loopback cluster starts")
    })
}

/// The sample workspace with [`SECRET`] as its secret, run on `address`,
/// and every plan its client sent.
fn cluster_engine(address: &str) -> (Engine, Arc<Mutex<Vec<Vec<u8>>>>) {
    workspace_on_cluster("sample", address)
}

/// The workspace `name` under `testdata/` with [`SECRET`], run on `address`.
fn workspace_on_cluster(name: &str, address: &str) -> (Engine, Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut ws = veil_engine::load::load_workspace(&testdata(name)).expect("workspace loads");
    ws.settings.secret = SECRET.to_string();
    let engine = runtime()
        .block_on(Engine::from_workspace(ws))
        .expect("engine builds");
    let (client, sent) = ClusterClient::new(address, SECRET)
        .expect("address parses")
        .record_plans();
    engine.set_plan_executor(Some(Arc::new(client)));
    (engine, sent)
}

/// The sample workspace with [`SECRET`], run in this process.
fn local_engine() -> Engine {
    workspace_here("sample")
}

/// The workspace `name` under `testdata/` with [`SECRET`], run here.
fn workspace_here(name: &str) -> Engine {
    let mut ws = veil_engine::load::load_workspace(&testdata(name)).expect("workspace loads");
    ws.settings.secret = SECRET.to_string();
    runtime()
        .block_on(Engine::from_workspace(ws))
        .expect("engine builds")
}

fn options(user: &str, purpose: Option<String>, mode: EnforcementMode) -> SessionOptions {
    SessionOptions {
        user: user.to_string(),
        role: None,
        purpose,
        mode: Some(mode),
        secondary_roles: None,
        // A cluster that loses a job reports nothing; fail instead of wait.
        statement_timeout: Some(std::time::Duration::from_secs(60)),
    }
}

/// A statement's answer as a comparable value: its rows (as a sorted
/// multiset, since a cluster may deliver partitions in another order) or
/// its error.
fn answer(engine: &Engine, options: SessionOptions, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let session = engine.session_with(options).map_err(|e| e.to_string())?;
    runtime()
        .block_on(session.sql(sql))
        .map(|b| {
            let mut rows = crate::common::rows(&b);
            rows.sort();
            rows
        })
        .map_err(|e| e.to_string())
}

/// Runs `sql` for `options` on both engines; the rows compared, or how
/// the answers differ.
fn same_answer(
    local: &Engine,
    remote: &Engine,
    options: SessionOptions,
    sql: &str,
    workspace: &str,
) -> Result<usize, Failed> {
    let user = options.user.clone();
    let here = answer(local, options.clone(), sql);
    let there = answer(remote, options, sql);
    if here != there {
        return Err(format!(
            "{workspace}: {user} differs on the cluster for {sql}\nlocal:   {here:?}\ncluster: {there:?}"
        )
        .into());
    }
    Ok(here.map(|r| r.len()).unwrap_or(0))
}

/// The users of the golden files, with their purposes.
fn golden_sessions() -> Vec<(String, Option<String>)> {
    let mut sessions = BTreeSet::new();
    for entry in std::fs::read_dir(veil_tests::golden_dir()).expect("golden folder") {
        let path = entry.expect("golden entry").path();
        if path.extension().is_none_or(|e| e != "slt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("golden file");
        let header = text
            .lines()
            .find_map(|l| l.strip_prefix("# veil-session:"))
            .expect("session header");
        let o = veil_engine::tools::test_runner::parse_session_header(header).expect("header");
        sessions.insert((o.user, o.purpose));
    }
    sessions.into_iter().collect()
}

#[test]
fn every_golden_query_answers_the_same_on_the_cluster() -> Result<(), Failed> {
    let (remote, sent) = cluster_engine(&cluster().address());
    let local = local_engine();
    let sessions = golden_sessions();
    assert!(sessions.len() >= 8, "{sessions:?}");
    both_modes(|mode| {
        let mut rows_compared = 0;
        for (user, purpose) in &sessions {
            for sql in veil_tests::shared_queries() {
                let o = options(user, purpose.clone(), mode);
                rows_compared += same_answer(&local, &remote, o, &sql, "sample")?;
            }
        }
        assert!(rows_compared > 50, "only {rows_compared} rows compared");
        Ok(())
    })?;
    // The statements really went to the scheduler.
    assert!(!sent.lock().map_err(|e| e.to_string())?.is_empty());
    Ok(())
}

#[test]
fn every_mask_and_ddl_policy_answers_the_same_on_the_cluster() -> Result<(), Failed> {
    // The encrypting, cell-level, randomized and k-anonymity masks
    // (`masks`), Snowflake DDL policies with mapping tables (`snowflake`):
    // every granted table of every user, whole, and VEIL_UNMASK.
    for name in ["masks", "snowflake"] {
        let (remote, _) = workspace_on_cluster(name, &cluster().address());
        let local = workspace_here(name);
        let users: Vec<String> = local
            .workspace()
            .users
            .iter()
            .map(|u| u.name.clone())
            .collect();
        both_modes(|mode| {
            let mut compared = 0;
            for user in &users {
                let Ok(session) = local.session_with(options(user, None, mode)) else {
                    continue;
                };
                let mut queries: Vec<String> = session
                    .granted_tables()
                    .iter()
                    .map(|t| format!("SELECT * FROM {t}"))
                    .collect();
                if name == "masks" {
                    queries.push(
                        "SELECT id, VEIL_UNMASK(email, 'CLINIC.PUBLIC.PATIENTS.EMAIL') FROM patients"
                            .to_string(),
                    );
                }
                for sql in queries {
                    compared +=
                        same_answer(&local, &remote, options(user, None, mode), &sql, name)?;
                }
            }
            assert!(compared > 10, "{name}: only {compared} rows compared");
            Ok(())
        })?;
    }
    Ok(())
}

#[test]
fn the_leak_battery_holds_through_the_cluster() -> Result<(), Failed> {
    let (remote, _) = cluster_engine(&cluster().address());
    both_modes(|mode| {
        let bob = remote.session_with(options("BOB", None, mode))?;
        for (name, sql, expect) in leak_battery::ATTACKS {
            let answer = runtime()
                .block_on(bob.sql(sql))
                .map(|b| {
                    crate::common::rows(&b)
                        .into_iter()
                        .map(|r| r.into_iter().map(|v| (v != "NULL").then_some(v)).collect())
                        .collect()
                })
                .map_err(|e| e.to_string());
            leak_battery::judge(answer, *expect).map_err(|e| format!("{name}: {sql}: {e}"))?;
        }
        Ok(())
    })
}

#[test]
fn no_plan_sent_to_the_scheduler_carries_the_secret() -> Result<(), Failed> {
    let (remote, sent) = cluster_engine(&cluster().address());
    // Every masking function of the sample, the profile relation and the
    // context functions: BOB's and ALICE's golden queries in both modes.
    both_modes(|mode| {
        for user in ["BOB", "ALICE", "DANA"] {
            for sql in veil_tests::shared_queries() {
                let _ = answer(&remote, options(user, None, mode), &sql);
            }
        }
        Ok(())
    })?;
    let plans = sent.lock().map_err(|e| e.to_string())?;
    assert!(plans.len() > 20, "only {} plans were sent", plans.len());
    let functions = plans
        .iter()
        .filter(|p| contains(p, b"veil-fn/1") && contains(p, b"veil_mask_hash"))
        .count();
    assert!(functions > 0, "no plan carried a hash mask");
    for plan in plans.iter() {
        assert!(
            !contains(plan, SECRET.as_bytes()),
            "a plan sent to the scheduler contains the workspace secret"
        );
    }
    Ok(())
}

#[test]
fn an_executor_keyed_with_another_secret_refuses_the_work() -> Result<(), Failed> {
    let other = runtime().block_on(LocalCluster::start(1, 1, "another-secret"))?;
    let (remote, _) = cluster_engine(&other.address());
    let err = answer(
        &remote,
        options("BOB", None, EnforcementMode::Inlined),
        "SELECT name FROM customers",
    )
    .expect_err("a differently keyed executor must not answer");
    assert!(err.contains("VEIL_SECRET"), "{err}");
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_streamed_statement_runs_on_the_cluster_too() -> Result<(), Failed> {
    // `sql_stream` is what `veil serve` answers psql and Snowflake clients
    // with: the same plan goes to the cluster.
    use futures::StreamExt;
    let (remote, sent) = cluster_engine(&cluster().address());
    let sql = "SELECT id, name, ssn FROM customers ORDER BY id";
    both_modes(|mode| {
        let before = sent.lock().map_err(|e| e.to_string())?.len();
        let bob = remote.session_with(options("BOB", None, mode))?;
        let streamed = runtime().block_on(async {
            let mut stream = bob.sql_stream(sql).await?;
            let mut batches = Vec::new();
            while let Some(b) = stream.next().await {
                batches.push(b?);
            }
            Ok::<_, veil_engine::VeilError>(batches)
        })?;
        let collected = runtime().block_on(bob.sql(sql))?;
        assert_eq!(
            crate::common::rows(&streamed),
            crate::common::rows(&collected)
        );
        assert_eq!(crate::common::rows(&streamed).len(), 3);
        let after = sent.lock().map_err(|e| e.to_string())?.len();
        assert_eq!(after, before + 2, "both statements went to the scheduler");
        Ok(())
    })
}
