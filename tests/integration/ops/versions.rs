//! Policy versions and the decision cache: changes are versioned, audited
//! and rolled back, entitlement changes invalidate cached decisions,
//! concurrent changes and sessions each see one version.

use std::collections::BTreeSet;

use veil_engine::Engine;
use veil_engine::audit::read_log;
use veil_engine::model::{User, UserStatus};

use super::{audit_path, ensure, fresh, rows_of};
use crate::common::{Failed, rows, run, runtime, testdata};

#[test]
fn policy_changes_are_versioned_audited_and_rolled_back() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let dana = engine.session("dana")?;
    let email = "SELECT email FROM customers ORDER BY id";
    let masked = run(&dana, email).map_err(Failed::from)?;
    ensure(masked[0][0].starts_with("***@"), format!("{masked:?}"))?;
    let v2 = runtime().block_on(engine.apply_dir(testdata("sample-v2")))?;
    ensure(v2 == 2 && engine.version() == 2, "apply installs version 2")?;
    // The same session's next statement runs on the new version.
    let raw = run(&dana, email).map_err(Failed::from)?;
    ensure(
        !raw[0][0].starts_with("***@") && dana.version() == 2,
        format!("{raw:?}"),
    )?;
    runtime().block_on(engine.rollback(1))?;
    let again = run(&dana, email).map_err(Failed::from)?;
    ensure(
        again == masked && engine.version() == 1,
        format!("{again:?}"),
    )?;
    let err = runtime()
        .block_on(engine.rollback(7))
        .err()
        .ok_or("no version 7")?;
    ensure(
        err.to_string().contains("there is no policy version 7"),
        err.to_string(),
    )?;
    let changes: Vec<_> = engine
        .audit_log()
        .ok_or("audit log")?
        .records()?
        .into_iter()
        .filter(|r| r.action != "QUERY")
        .collect();
    ensure(changes.len() == 2, format!("{changes:?}"))?;
    ensure(
        changes[0].action == "POLICY_CHANGE"
            && changes[0].previous_version == Some(1)
            && changes[0].policy_version == 2
            && changes[0].targets
                == vec![
                    "policy email-domain-only (changed)".to_string(),
                    "policy own-department (changed)".to_string(),
                ],
        format!("{:?}", changes[0]),
    )?;
    ensure(
        changes[1].action == "POLICY_ROLLBACK" && changes[1].policy_version == 1,
        format!("{:?}", changes[1]),
    )
}

#[test]
fn entitlement_change_invalidates_cached_decisions() -> Result<(), Failed> {
    let engine = fresh("sample");
    let bob = engine.session("bob")?;
    let sql = "SELECT email FROM customers WHERE id = 2";
    ensure(
        run(&bob, sql).map_err(Failed::from)? == vec![vec!["***@example.org".to_string()]],
        "masked before",
    )?;
    ensure(engine.cached_decisions() >= 1, "the decision is cached")?;
    runtime().block_on(engine.change(|ws| {
        if let Some(u) = ws.users.iter_mut().find(|u| u.name == "BOB") {
            u.groups.insert("Compliance".to_string());
        }
        Ok(())
    }))?;
    ensure(
        engine.cached_decisions() == 0,
        "a change drops every decision",
    )?;
    ensure(
        run(&bob, sql).map_err(Failed::from)? == vec![vec!["bob.jones@example.org".to_string()]],
        "the exemption applies to the next statement",
    )
}

#[test]
fn concurrent_changes_are_all_kept() -> Result<(), Failed> {
    // Each change copies the workspace under the change lock, so one can
    // never undo another (a revocation must not come back).
    let engine = fresh("sample");
    let (revoked, staged) = runtime().block_on(async {
        let a = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .change(|ws| {
                        if let Some(u) = ws.users.iter_mut().find(|u| u.name == "BOB") {
                            u.groups.remove("Analysts");
                        }
                        Ok(())
                    })
                    .await
            })
        };
        let b = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .change(|ws| {
                        if let Some(u) = ws.users.iter_mut().find(|u| u.name == "STAN") {
                            u.status = UserStatus::Active;
                        }
                        Ok(())
                    })
                    .await
            })
        };
        (a.await, b.await)
    });
    let (Ok(Ok(_)), Ok(Ok(_))) = (revoked, staged) else {
        return Err("both changes apply".into());
    };
    let ws = engine.workspace();
    let bob = ws.user("BOB").ok_or("BOB")?;
    let stan = ws.user("STAN").ok_or("STAN")?;
    ensure(
        !bob.groups.contains("Analysts")
            && stan.status == UserStatus::Active
            && engine.version() == 3,
        format!(
            "both changes kept: BOB {:?}, STAN {:?}",
            bob.groups, stan.status
        ),
    )?;
    let got = rows_of(&engine, "bob", "SELECT count(*) FROM customers").map_err(Failed::from)?;
    ensure(
        got == vec![vec!["0".to_string()]],
        format!("BOB unsubscribed: {got:?}"),
    )
}

#[test]
fn invalid_changes_are_not_applied() -> Result<(), Failed> {
    let engine = fresh("sample");
    let err = runtime()
        .block_on(engine.change(|ws| {
            if let Some(u) = ws.users.iter_mut().find(|u| u.name == "BOB") {
                u.roles.push("NOPE".to_string());
            }
            Ok(())
        }))
        .err()
        .ok_or("a role that does not exist is refused")?;
    ensure(
        err.to_string()
            .contains("user BOB is granted role NOPE, which is not declared")
            && engine.version() == 1
            && engine.versions().len() == 1,
        err.to_string(),
    )
}

#[test]
fn staged_users_query_once_activated() -> Result<(), Failed> {
    let engine = fresh("sample");
    let user = User {
        name: "newbie".to_string(),
        status: UserStatus::Active,
        roles: vec!["ANALYST".to_string()],
        groups: BTreeSet::from(["Analysts".to_string()]),
        attributes: [("Region".to_string(), BTreeSet::from(["EU".to_string()]))]
            .into_iter()
            .collect(),
        purposes: BTreeSet::new(),
        origin: Default::default(),
    };
    runtime().block_on(engine.stage_user(user))?;
    let err = engine
        .session("newbie")
        .err()
        .ok_or("staged users cannot query")?;
    ensure(err.to_string().contains("is staged"), err.to_string())?;
    runtime().block_on(engine.activate_user("NEWBIE"))?;
    let got = rows_of(&engine, "newbie", "SELECT count(*) FROM customers").map_err(Failed::from)?;
    ensure(got == vec![vec!["3".to_string()]], format!("{got:?}"))
}

/// Many sessions of different users query while versions are swapped and
/// rolled back: every result equals that user's result under exactly one
/// version, no user ever sees another's, and the audit log holds exactly
/// one complete record per statement.
#[test]
fn concurrent_sessions_see_one_version_each() -> Result<(), Failed> {
    const USERS: [&str; 5] = ["BOB", "ALICE", "DANA", "FRANK", "CAROL"];
    const QUERIES: [&str; 2] = [
        "SELECT id, email, balance FROM customers ORDER BY id",
        "SELECT emp_id, name, salary FROM analytics.hr.employees ORDER BY emp_id",
    ];
    const ROUNDS: usize = 12;
    let v1 = fresh("sample");
    let v2 = fresh("sample-v2");
    let expect = |engine: &Engine| -> Vec<Vec<Result<Vec<Vec<String>>, String>>> {
        USERS
            .iter()
            .map(|u| QUERIES.iter().map(|q| rows_of(engine, u, q)).collect())
            .collect()
    };
    let (e1, e2) = (expect(&v1), expect(&v2));
    // The versions differ for some users, and users differ from each other.
    ensure(e1 != e2, "the two versions must give different results")?;
    for (i, a) in e1.iter().enumerate() {
        for b in e1.iter().skip(i + 1) {
            ensure(a != b, "every user must see something different")?;
        }
    }
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let swaps = runtime().block_on(async {
        let mut tasks = Vec::new();
        for (ui, user) in USERS.iter().enumerate() {
            let engine = engine.clone();
            let (e1, e2) = (e1[ui].clone(), e2[ui].clone());
            tasks.push(tokio::spawn(async move {
                let session = engine.session(user).map_err(|e| e.to_string())?;
                for round in 0..ROUNDS {
                    for (qi, q) in QUERIES.iter().enumerate() {
                        let got = session
                            .sql(q)
                            .await
                            .map(|b| rows(&b))
                            .map_err(|e| e.to_string());
                        if got != e1[qi] && got != e2[qi] {
                            return Err(format!(
                                "{user} round {round}: {q} gave {got:?}, which is neither version's result"
                            ));
                        }
                    }
                    tokio::task::yield_now().await;
                }
                Ok::<usize, String>(ROUNDS * QUERIES.len())
            }));
        }
        let swapper = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let v2 = Engine::load(testdata("sample-v2")).await.map_err(|e| e.to_string())?;
                engine.apply(v2.workspace()).await.map_err(|e| e.to_string())?;
                let mut swaps = 1;
                for i in 0..20 {
                    engine
                        .rollback(if i % 2 == 0 { 1 } else { 2 })
                        .await
                        .map_err(|e| e.to_string())?;
                    swaps += 1;
                    tokio::task::yield_now().await;
                }
                Ok::<usize, String>(swaps)
            })
        };
        let mut queries = 0;
        for t in tasks {
            queries += t.await.map_err(|e| e.to_string())??;
        }
        let swaps = swapper.await.map_err(|e| e.to_string())??;
        Ok::<(usize, usize), String>((queries, swaps))
    });
    let (queries, swaps) = swaps.map_err(Failed::from)?;
    let (records, torn) = read_log(&audit_path(dir.path()))?;
    let query_records = records.iter().filter(|r| r.action == "QUERY").count();
    let change_records = records.iter().filter(|r| r.action != "QUERY").count();
    ensure(
        torn == 0 && query_records == queries && change_records == swaps,
        format!(
            "{queries} statements and {swaps} swaps, but {query_records} query records, {change_records} change records, {torn} torn lines"
        ),
    )?;
    let ids: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    ensure(ids.len() == records.len(), "audit ids are unique")
}
