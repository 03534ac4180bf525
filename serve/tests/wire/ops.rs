//! The operators' side over the wire: TLS logins, and workspace
//! administrators who see the installed policy versions and roll back to
//! one while the server watches the workspace.

use std::sync::Arc;
use std::time::Duration;

use pgwire::tokio::tokio_rustls::rustls;
use tokio_postgres::Client;
use veil_engine::Engine;
use veil_serve::ops::Operations;
use veil_serve::options::{Authentication, ServeOptions};
use veil_serve::pg::PgServer;
use veil_serve::reload::{WatchOptions, WorkspaceWatcher};
use veil_serve::server::ServerState;
use veil_serve::{Credentials, ScramVerifier};

use super::common::{Answer, answer, connect, copy_dir, testdata, wait_applied, write_version};

const USERS: [&str; 6] = ["ALICE", "BOB", "CAROL", "DANA", "ERIN", "FRANK"];
const QUERIES: [&str; 2] = [
    "SELECT id, name, email, ssn, region, balance FROM customers ORDER BY id",
    "SELECT emp_id, name, department, salary FROM hr.employees ORDER BY emp_id",
];

/// Every user's answer to every query.
async fn answers(addr: std::net::SocketAddr) -> Vec<Answer> {
    let mut out = Vec::new();
    for user in USERS {
        let c = connect(addr, user).await;
        for sql in QUERIES {
            out.push(answer(&c, sql).await);
        }
    }
    out
}

fn row_count(a: &Answer) -> usize {
    a.as_ref().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_versions_and_roll_back_over_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    copy_dir(&testdata("sample"), &ws);
    // DANA (a data owner, a workspace user) administers this copy.
    let manifest = ws.join("veil.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("administrators: [ADMIN]", "administrators: [ADMIN, DANA]"),
    )
    .unwrap();
    let engine = Engine::load(&ws).await.unwrap();
    let state = ServerState::new(engine.clone(), ServeOptions::new(Authentication::Trust));
    let server = PgServer::bind_to(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    let watcher = WorkspaceWatcher::start(
        engine.clone(),
        &ws,
        None,
        WatchOptions {
            debounce: Duration::from_millis(50),
        },
    )
    .unwrap();
    let mut reloads = watcher.state();

    let admin: Client = connect(addr, "DANA").await;
    let first = engine.version();
    let before = answers(addr).await;
    assert_eq!(row_count(&answer(&admin, "SHOW VEIL VERSIONS").await), 1);

    write_version(&ws, 1);
    wait_applied(&mut reloads, 1).await;
    let changed = answers(addr).await;
    assert_ne!(changed, before, "sample-v2 changes some user's answer");
    assert_eq!(row_count(&answer(&admin, "SHOW VEIL VERSIONS").await), 2);

    // Not an administrator: refused, naming the login, and nothing rolls back.
    let bob = connect(addr, "BOB").await;
    let refused = answer(&bob, &format!("CALL VEIL.ROLLBACK({first})")).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("BOB") && e.contains("not a workspace administrator")),
        "{refused:?}"
    );
    assert_eq!(answers(addr).await, changed);

    let rolled = answer(&admin, &format!("CALL VEIL.ROLLBACK({first})")).await;
    assert!(rolled.is_ok(), "{rolled:?}");
    assert_eq!(
        answers(addr).await,
        before,
        "every answer is version {first}'s again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_logins_use_scram_inside_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_file = dir.path().join("server.crt");
    let key_file = dir.path().join("server.key");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();

    let engine = Engine::load(testdata("sample")).await.unwrap();
    let mut credentials = Credentials::empty();
    credentials.insert("ALICE", ScramVerifier::new("pw-alice"));
    let options = ServeOptions::new(Authentication::Credentials(Arc::new(credentials)));
    let operations = Operations {
        tls: Some(veil_serve::tls::acceptor(&cert_file, &key_file).unwrap()),
        ..Operations::default()
    };
    let state = ServerState::with_operations(engine.clone(), options, operations);
    let server = PgServer::bind_to(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let conninfo = |pw: &str| {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=alice password={pw} dbname=analytics sslmode=require",
            addr.port()
        )
    };
    let (client, connection) = tokio_postgres::connect(&conninfo("pw-alice"), tls.clone())
        .await
        .expect("a TLS login with the right password");
    tokio::spawn(connection);
    let over_tls = answer(&client, QUERIES[0]).await;
    assert!(row_count(&over_tls) > 0, "{over_tls:?}");
    let wrong = tokio_postgres::connect(&conninfo("wrong"), tls).await;
    assert!(wrong.is_err(), "a wrong password over TLS is refused");
}
