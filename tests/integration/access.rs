//! `allow: approval` subscriptions (SPEC §2, §3.4) on `testdata/approval`:
//! ORDERS is open only to users DANA (its data owner) approved. Requests,
//! approvals and denials are catalog journal events; an approval subscribes
//! the user from the next statement, on the same engine and after a
//! reload; anything pending or denied stays refused (zero rows, as any
//! unsubscribed table). Queries run in both enforcement modes. Each test
//! works on its own copy of the workspace, since the journal is written
//! under `state/`.

use std::path::Path;

use veil_engine::audit::AuditRecord;
use veil_engine::load::journal::{JOURNAL_FILE, journal_path};
use veil_engine::model::AccessState;
use veil_engine::{EnforcementMode, Engine, Session, SessionOptions};

use crate::common::{Failed, MODES, both_modes, rows, runtime, testdata};

/// A fresh copy of `testdata/approval`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = testdata("approval");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    for file in ["veil.yaml", "data/orders.csv", "data/regions.csv"] {
        std::fs::copy(from.join(file), dir.path().join(file)).expect("copy");
    }
    dir
}

fn load(dir: &Path) -> Engine {
    runtime()
        .block_on(Engine::load(dir))
        .expect("workspace loads")
}

fn session(engine: &Engine, user: &str, mode: EnforcementMode) -> Session {
    engine
        .session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user(user)
        })
        .expect("session opens")
}

/// The ORDERS ids `user` sees, in order.
fn order_ids(session: &Session) -> Result<Vec<String>, Failed> {
    let batches = runtime().block_on(session.sql("select id from orders order by id"))?;
    Ok(rows(&batches).into_iter().flatten().collect())
}

const ALL: [&str; 3] = ["1", "2", "3"];

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(journal_path(dir)).unwrap_or_default()
}

#[test]
fn a_pending_request_leaves_the_table_refused() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    both_modes(|mode| {
        let erin = session(&engine, "ERIN", mode);
        if !order_ids(&erin)?.is_empty() {
            return Err("ERIN sees ORDERS before asking".into());
        }
        // The data owner is always subscribed.
        if order_ids(&session(&engine, "DANA", mode))? != ALL {
            return Err("DANA, the data owner, should see every order".into());
        }
        Ok(())
    })?;
    let id = runtime().block_on(engine.request_access("erin", "orders", "Q3 audit"))?;
    if id != "R1" {
        return Err(format!("the first request is {id}, not R1").into());
    }
    both_modes(|mode| {
        let ids = order_ids(&session(&engine, "ERIN", mode))?;
        if ids.is_empty() {
            Ok(())
        } else {
            Err(format!("a pending request showed ERIN {ids:?}").into())
        }
    })
}

#[test]
fn an_approval_subscribes_from_the_next_statement_and_after_reload() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let id =
        runtime().block_on(engine.request_access("ERIN", "SALES.PUBLIC.ORDERS", "Q3 audit"))?;
    // Sessions opened before the approval, one per mode.
    let before: Vec<Session> = MODES.iter().map(|m| session(&engine, "ERIN", *m)).collect();
    for s in &before {
        if !order_ids(s)?.is_empty() {
            return Err("ERIN sees ORDERS before the approval".into());
        }
    }
    let decided = runtime().block_on(engine.approve_access(&id, "dana"))?;
    if !matches!(&decided.state, AccessState::Approved { by, .. } if by == "DANA") {
        return Err(format!("approval recorded as {:?}", decided.state).into());
    }
    for (s, mode) in before.iter().zip(MODES) {
        let ids = order_ids(s)?;
        if ids != ALL {
            return Err(
                format!("{mode:?}: the next statement after approval shows {ids:?}").into(),
            );
        }
    }
    // FRED asked for nothing: still refused.
    both_modes(|mode| {
        if order_ids(&session(&engine, "FRED", mode))?.is_empty() {
            Ok(())
        } else {
            Err("FRED sees ORDERS though only ERIN was approved".into())
        }
    })?;
    let reloaded = load(dir.path());
    both_modes(|mode| {
        let ids = order_ids(&session(&reloaded, "ERIN", mode))?;
        if ids == ALL {
            Ok(())
        } else {
            Err(format!("after reload ERIN sees {ids:?}").into())
        }
    })
}

#[test]
fn a_denial_keeps_the_table_refused() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let id = runtime().block_on(engine.request_access("ERIN", "ORDERS", "curious"))?;
    let decided = runtime().block_on(engine.deny_access(&id, "DANA"))?;
    if decided.state.as_str() != "denied" {
        return Err(format!("denial recorded as {:?}", decided.state).into());
    }
    for engine in [engine, load(dir.path())] {
        both_modes(|mode| {
            let ids = order_ids(&session(&engine, "ERIN", mode))?;
            if ids.is_empty() {
                Ok(())
            } else {
                Err(format!("a denied request showed ERIN {ids:?}").into())
            }
        })?;
    }
    // Denied, ERIN may ask again.
    let again = runtime().block_on(load(dir.path()).request_access("ERIN", "ORDERS", "audit"))?;
    if again != "R2" {
        return Err(format!("the second request is {again}").into());
    }
    Ok(())
}

#[test]
fn only_a_data_owner_may_approve_or_deny() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let id = runtime().block_on(engine.request_access("ERIN", "ORDERS", "Q3 audit"))?;
    let before = journal(dir.path());
    for by in ["FRED", "ERIN"] {
        let Err(e) = runtime().block_on(engine.approve_access(&id, by)) else {
            return Err(format!("{by}, not a data owner, approved {id}").into());
        };
        let e = e.to_string();
        if !(e.contains(&format!(
            "user {by} is not a data owner of SALES.PUBLIC.ORDERS"
        )) && e.contains("approve request R1"))
        {
            return Err(format!("unclear refusal: {e}").into());
        }
        if runtime().block_on(engine.deny_access(&id, by)).is_ok() {
            return Err(format!("{by}, not a data owner, denied {id}").into());
        }
    }
    if journal(dir.path()) != before {
        return Err("a refused decision changed the journal".into());
    }
    both_modes(|mode| {
        if order_ids(&session(&engine, "ERIN", mode))?.is_empty() {
            Ok(())
        } else {
            Err("a refused approval subscribed ERIN".into())
        }
    })
}

#[test]
fn bad_requests_and_decisions_are_refused_and_write_nothing() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let id = runtime().block_on(engine.request_access("ERIN", "ORDERS", "Q3 audit"))?;
    let before = journal(dir.path());
    // (what, user, table, reason, the error's words)
    let requests = [
        (
            "unknown user",
            "NOBODY",
            "ORDERS",
            "x",
            "user NOBODY is not declared",
        ),
        (
            "unknown table",
            "FRED",
            "NOPE",
            "x",
            "table SALES.PUBLIC.NOPE is not declared",
        ),
        (
            "table no approval policy covers",
            "FRED",
            "REGIONS",
            "x",
            "no allow: approval subscription policy covers table SALES.PUBLIC.REGIONS",
        ),
        ("empty reason", "FRED", "ORDERS", "  ", "needs a reason"),
        (
            "a second open request",
            "ERIN",
            "ORDERS",
            "again",
            "user ERIN already has request R1 for SALES.PUBLIC.ORDERS, pending",
        ),
    ];
    let mut cases: Vec<(&str, veil_engine::Result<String>, &str)> = requests
        .into_iter()
        .map(|(what, user, table, reason, expected)| {
            let result = runtime().block_on(engine.request_access(user, table, reason));
            (what, result, expected)
        })
        .collect();
    cases.push((
        "unknown request",
        runtime()
            .block_on(engine.approve_access("R9", "DANA"))
            .map(|r| r.id),
        "there is no access request R9",
    ));
    for (what, result, expected) in cases {
        match result {
            Ok(v) => return Err(format!("{what}: accepted ({v})").into()),
            Err(e) if e.to_string().contains(expected) => {}
            Err(e) => return Err(format!("{what}: unclear error: {e}").into()),
        }
    }
    if journal(dir.path()) != before {
        return Err("a refused request changed the journal".into());
    }
    runtime().block_on(engine.approve_access(&id, "DANA"))?;
    let after = journal(dir.path());
    for (what, result) in [
        (
            "approving twice",
            runtime().block_on(engine.approve_access(&id, "DANA")),
        ),
        (
            "denying an approved request",
            runtime().block_on(engine.deny_access(&id, "DANA")),
        ),
    ] {
        match result {
            Ok(_) => return Err(format!("{what} was accepted").into()),
            Err(e) if e.to_string().contains("request R1 is already approved") => {}
            Err(e) => return Err(format!("{what}: unclear error: {e}").into()),
        }
    }
    if journal(dir.path()) != after {
        return Err("a refused second decision changed the journal".into());
    }
    Ok(())
}

#[test]
fn access_events_round_trip_through_the_journal_and_audit() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let r1 = runtime().block_on(engine.request_access("ERIN", "ORDERS", "Q3 audit"))?;
    let r2 = runtime().block_on(engine.request_access("FRED", "ORDERS", "just looking"))?;
    runtime().block_on(engine.approve_access(&r1, "DANA"))?;
    runtime().block_on(engine.deny_access(&r2, "DANA"))?;
    let text = journal(dir.path());
    let kinds: Vec<&str> = [
        "access_requested",
        "access_requested",
        "access_approved",
        "access_denied",
    ]
    .into_iter()
    .collect();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != kinds.len()
        || !lines.iter().zip(&kinds).all(|(l, k)| {
            l.contains(&format!("\"kind\":\"{k}\""))
                && l.contains("\"table\":\"SALES.PUBLIC.ORDERS\"")
        })
    {
        return Err(format!("{JOURNAL_FILE} holds:\n{text}").into());
    }
    let folded = engine.workspace().journal.access.clone();
    let reloaded = load(dir.path()).workspace().journal.access.clone();
    if folded != reloaded || folded.0.len() != 2 {
        return Err(format!("folded {folded:?}\nreloaded {reloaded:?}").into());
    }
    let r = &reloaded.0[0];
    if (r.user.as_str(), r.reason.as_str(), r.state.as_str()) != ("ERIN", "Q3 audit", "approved") {
        return Err(format!("R1 reloaded as {r:?}").into());
    }
    // Each event is one audit record naming the table, request and user.
    let events = veil_engine::load::journal::read_events(text.as_bytes(), 0)?.events;
    let actions: Vec<String> = events
        .iter()
        .filter_map(|e| AuditRecord::catalog_change(e, 1))
        .map(|a| format!("{} {} {}", a.action, a.actor.name, a.targets.join(" / ")))
        .collect();
    let want = [
        "ACCESS_REQUESTED ERIN SALES.PUBLIC.ORDERS / request R1 / user ERIN / reason Q3 audit",
        "ACCESS_REQUESTED FRED SALES.PUBLIC.ORDERS / request R2 / user FRED / reason just looking",
        "ACCESS_APPROVED DANA SALES.PUBLIC.ORDERS / request R1 / user ERIN",
        "ACCESS_DENIED DANA SALES.PUBLIC.ORDERS / request R2 / user FRED",
    ];
    if actions != want {
        return Err(format!("audit records: {actions:#?}").into());
    }
    Ok(())
}

#[test]
fn an_approval_guardrail_also_needs_a_grant() -> Result<(), Failed> {
    let dir = workspace();
    // Grant to ERIN only, and require an approval on top (AND).
    let manifest = std::fs::read_to_string(dir.path().join("veil.yaml"))?.replace(
        "    allow: approval\n",
        "    allow: approval\n    guardrail: true\n  - name: orders-for-erin\n    type: subscription\n    on: {data_sources: [SALES.PUBLIC.ORDERS]}\n    allow: {users: [ERIN]}\n",
    );
    std::fs::write(dir.path().join("veil.yaml"), manifest)?;
    let engine = load(dir.path());
    let erin = runtime().block_on(engine.request_access("ERIN", "ORDERS", "audit"))?;
    let fred = runtime().block_on(engine.request_access("FRED", "ORDERS", "audit"))?;
    both_modes(|mode| {
        // Granted, not yet approved: refused.
        if !order_ids(&session(&engine, "ERIN", mode))?.is_empty() {
            return Err("the guardrail let ERIN in before the approval".into());
        }
        Ok(())
    })?;
    runtime().block_on(engine.approve_access(&erin, "DANA"))?;
    runtime().block_on(engine.approve_access(&fred, "DANA"))?;
    both_modes(|mode| {
        let erin = order_ids(&session(&engine, "ERIN", mode))?;
        // Approved but granted by no policy: still refused.
        let fred = order_ids(&session(&engine, "FRED", mode))?;
        if erin == ALL && fred.is_empty() {
            Ok(())
        } else {
            Err(format!("ERIN sees {erin:?}, FRED sees {fred:?}").into())
        }
    })
}

#[test]
fn only_an_approval_by_a_current_data_owner_subscribes() -> Result<(), Failed> {
    // A hand-edited journal: FRED (not an owner of ORDERS) "approves"
    // ERIN's request, DANA (the owner) approves FRED's.
    let dir = workspace();
    std::fs::create_dir_all(dir.path().join("state")).map_err(|e| e.to_string())?;
    let line = |actor: &str, kind: &str, request: &str, user: &str| {
        let reason = if kind == "access_requested" {
            ",\"reason\":\"audit\""
        } else {
            ""
        };
        format!(
            "{{\"time\":\"2026-12-03T10:00:00Z\",\"actor\":\"{actor}\",\"kind\":\"{kind}\",\"table\":\"SALES.PUBLIC.ORDERS\",\"request\":\"{request}\",\"user\":\"{user}\"{reason}}}\n"
        )
    };
    let text = [
        line("ERIN", "access_requested", "R1", "ERIN"),
        line("FRED", "access_approved", "R1", "ERIN"),
        line("FRED", "access_requested", "R2", "FRED"),
        line("DANA", "access_approved", "R2", "FRED"),
    ]
    .concat();
    std::fs::write(journal_path(dir.path()), text).map_err(|e| e.to_string())?;
    let engine = load(dir.path());
    both_modes(|mode| {
        let erin = order_ids(&session(&engine, "ERIN", mode))?;
        let fred = order_ids(&session(&engine, "FRED", mode))?;
        if !erin.is_empty() || fred != ALL {
            return Err(
                format!("ERIN (approved by a non-owner) sees {erin:?}, FRED {fred:?}").into(),
            );
        }
        Ok(())
    })?;
    // DANA is no longer a data owner: her approval no longer counts.
    let manifest = dir.path().join("veil.yaml");
    let yaml = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(&manifest, yaml.replace("owners: [DANA]", "owners: [ERIN]"))
        .map_err(|e| e.to_string())?;
    let engine = load(dir.path());
    both_modes(|mode| {
        let fred = order_ids(&session(&engine, "FRED", mode))?;
        if fred.is_empty() {
            Ok(())
        } else {
            Err(format!("FRED, approved by a former owner, sees {fred:?}").into())
        }
    })
}
