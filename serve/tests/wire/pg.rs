//! `veil serve` over the PostgreSQL wire protocol, driven by real clients:
//! the `psql` binary and `tokio-postgres`. Each test starts a server on
//! 127.0.0.1 on a port the system picks, over the sample workspace; the
//! server stops with the test's runtime. Results over the wire are compared
//! with what the library returns for the same user, never with hard-coded
//! values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use veil_engine::Engine;
use veil_serve::options::{Authentication, ServeOptions};
use veil_serve::pg::PgServer;
use veil_serve::server::ServerState;
use veil_serve::{Credentials, ScramVerifier};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
}

/// Users with a password each (`pw-<user>`); DAVE is disabled and STAN
/// staged in the workspace, and have verifiers all the same.
const USERS: &[&str] = &["alice", "bob", "erin", "carol", "dave", "stan"];

fn password(user: &str) -> String {
    format!("pw-{user}")
}

pub(crate) struct Served {
    addr: SocketAddr,
    engine: Engine,
}

async fn serve_with(max_connections: usize, timeout: Duration) -> Served {
    let engine = Engine::load(sample())
        .await
        .expect("the sample workspace loads");
    let mut credentials = Credentials::empty();
    for u in USERS {
        credentials.insert(u, ScramVerifier::new(&password(u)));
    }
    let mut options = ServeOptions::new(Authentication::Credentials(Arc::new(credentials)));
    options.max_connections = max_connections;
    options.statement_timeout = timeout;
    let state = ServerState::new(engine.clone(), options);
    let server = PgServer::bind_to(state, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds a loopback port");
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    Served { addr, engine }
}

pub(crate) async fn serve() -> Served {
    serve_with(16, Duration::from_secs(120)).await
}

async fn connect(s: &Served, user: &str, pw: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host(s.addr.ip().to_string())
        .port(s.addr.port())
        .user(user)
        .password(pw)
        .dbname("analytics")
        .connect(NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

pub(crate) async fn login(s: &Served, user: &str) -> Client {
    connect(s, user, &password(user)).await.expect("logs in")
}

/// The rows of a simple query as text (NULL as `NULL`).
async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// What the library returns for `user` and `sql`, as text rows.
async fn library_rows(engine: &Engine, user: &str, sql: &str) -> Vec<Vec<String>> {
    use veil_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
    let batches = engine.session(user).unwrap().sql(sql).await.unwrap();
    let mut out = Vec::new();
    let options = FormatOptions::default().with_null("NULL");
    for b in batches {
        let f: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(f.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    out
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_see_their_own_rows_and_masks() {
    let s = serve().await;
    let sql = "SELECT name, email, ssn, region FROM customers ORDER BY id";
    let alice = rows(&login(&s, "alice").await, sql).await;
    let bob = rows(&login(&s, "bob").await, sql).await;
    assert_eq!(alice, library_rows(&s.engine, "ALICE", sql).await);
    assert_eq!(bob, library_rows(&s.engine, "BOB", sql).await);
    assert_ne!(
        alice, bob,
        "two users with different policies see the same rows"
    );
    // Raw values of masked columns never come back to a masked user.
    let raw = library_rows(&s.engine, "CAROL", sql).await;
    for r in alice.iter().chain(&bob) {
        for carol in &raw {
            assert_ne!(r[2], carol[2], "a raw SSN reached a masked user");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_unknown_disabled_and_staged_users_are_refused_alike() {
    let s = serve().await;
    let attempts = [
        ("alice", "not-her-password".to_string()),
        ("mallory", password("mallory")),
        ("dave", password("dave")),
        ("stan", password("stan")),
    ];
    for (user, pw) in attempts {
        let e = connect(&s, user, &pw)
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} logged in"));
        assert_eq!(code(&e), Some(&SqlState::INVALID_PASSWORD), "{user}: {e}");
        let text = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert_eq!(
            text,
            format!("password authentication failed for user \"{user}\"")
        );
    }
    // The same users with the right password and an active status log in.
    login(&s, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_statements_answer_with_sqlstate_and_the_session_goes_on() {
    let s = serve().await;
    let bob = login(&s, "bob").await;
    let cases = [
        (
            "INSERT INTO customers (id) VALUES (1)",
            SqlState::FEATURE_NOT_SUPPORTED,
        ),
        ("CREATE TABLE t (a INT)", SqlState::FEATURE_NOT_SUPPORTED),
        ("SET search_path = hr", SqlState::FEATURE_NOT_SUPPORTED),
        (
            "SELECT * FROM analytics.hr.salaries",
            SqlState::INSUFFICIENT_PRIVILEGE,
        ),
        ("SELEC 1", SqlState::SYNTAX_ERROR),
    ];
    for (sql, want) in cases {
        let e = bob.simple_query(sql).await.expect_err(sql);
        assert_eq!(code(&e), Some(&want), "{sql}: {e}");
        // Still usable after every error.
        let n = rows(&bob, "SELECT count(*) FROM orders").await;
        assert_eq!(
            n,
            library_rows(&s.engine, "BOB", "SELECT count(*) FROM orders").await
        );
    }
    // Harmless client settings are accepted.
    bob.simple_query("SET extra_float_digits = 3")
        .await
        .unwrap();
    bob.simple_query("SET application_name = 'test'")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_authorized_text_is_veils_for_missing_and_ungranted_tables() {
    let s = serve().await;
    let erin = login(&s, "erin").await;
    for table in [
        "analytics.public.customers",
        "analytics.public.nothing_here",
    ] {
        let e = erin
            .simple_query(&format!("SELECT * FROM {table}"))
            .await
            .expect_err(table);
        let db = e.as_db_error().expect("a server error");
        assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE);
        assert_eq!(
            db.message(),
            format!(
                "Object '{}' does not exist or not authorized.",
                table.to_uppercase()
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_with_a_parameter_returns_masked_values() {
    let s = serve().await;
    let alice = login(&s, "alice").await;
    let stmt = alice
        .prepare("SELECT name, email FROM customers WHERE region = $1 ORDER BY id")
        .await
        .unwrap();
    let got: Vec<Vec<String>> = alice
        .query(&stmt, &[&"US"])
        .await
        .unwrap()
        .iter()
        .map(|r| vec![r.get::<_, String>(0), r.get::<_, String>(1)])
        .collect();
    let want = library_rows(
        &s.engine,
        "ALICE",
        "SELECT name, email FROM customers WHERE region = 'US' ORDER BY id",
    )
    .await;
    assert!(!got.is_empty());
    assert_eq!(got, want);
    // A parameter cannot break out of its literal.
    let none = alice.query(&stmt, &[&"US' OR 1=1 --"]).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_a_long_query() {
    let s = serve().await;
    let carol = login(&s, "carol").await;
    let token = carol.cancel_token();
    let long = "SELECT count(*) FROM customers a, customers b, customers c, customers d, \
                customers e, customers f, customers g, customers h, customers i, customers j, \
                customers k, customers l";
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await
    });
    let e = carol
        .simple_query(long)
        .await
        .expect_err("the query was cancelled");
    assert_eq!(code(&e), Some(&SqlState::QUERY_CANCELED), "{e}");
    canceller.await.unwrap().unwrap();
    // The connection goes on.
    rows(&carol, "SELECT count(*) FROM orders").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_timeout_cancels_with_57014() {
    let s = serve_with(4, Duration::from_millis(300)).await;
    let carol = login(&s, "carol").await;
    let long = "SELECT count(*) FROM customers a, customers b, customers c, customers d, \
                customers e, customers f, customers g, customers h, customers i, customers j, \
                customers k, customers l";
    let e = carol.simple_query(long).await.expect_err("timed out");
    assert_eq!(code(&e), Some(&SqlState::QUERY_CANCELED), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_too_many_is_refused_with_53300() {
    let s = serve_with(1, Duration::from_secs(60)).await;
    let first = login(&s, "alice").await;
    let Err(e) = connect(&s, "bob", &password("bob")).await else {
        panic!("a second connection over the limit of one was accepted");
    };
    assert_eq!(code(&e), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
    drop(first);
    // The slot frees when the first connection ends.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = connect(&s, "bob", &password("bob")).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the slot never came back");
}

/// Runs the real `psql` binary with `input` on stdin as `user`.
/// `psql` as `user` fed `input`, on a blocking thread (it waits on a
/// child process) beside the server's tasks; its stdout and stderr.
async fn psql(s: &Served, user: &str, input: &str) -> String {
    let (addr, user, input) = (s.addr, user.to_string(), input.to_string());
    tokio::task::spawn_blocking(move || psql_blocking(addr, &user, &input))
        .await
        .expect("the psql thread ends")
}

fn psql_blocking(addr: std::net::SocketAddr, user: &str, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("psql")
        .args([
            "-X",
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-U",
            user,
            "-d",
            "analytics",
        ])
        .env("PGPASSWORD", password(user))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run psql ({e}): run scripts/test, which installs postgresql-client")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_lists_only_granted_tables() {
    let s = serve().await;
    let erin = psql(&s, "erin", "\\dt\n\\dn\n\\d employees\n").await;
    assert!(erin.contains("employees"), "{erin}");
    assert!(
        !erin.contains("customers"),
        "erin is not granted CUSTOMERS:\n{erin}"
    );
    assert!(
        !erin.contains("orders"),
        "erin is not granted ORDERS:\n{erin}"
    );
    assert!(
        erin.contains("salary"),
        "\\d employees lists its columns:\n{erin}"
    );
    assert!(!erin.contains("ERROR"), "{erin}");
    let bob = psql(&s, "bob", "\\dt\n").await;
    assert!(bob.contains("customers") && bob.contains("orders"), "{bob}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_lists_the_database_and_the_login_role() {
    let s = serve().await;
    let out = psql(&s, "erin", "\\l\n\\du\n").await;
    assert!(!out.contains("ERROR"), "{out}");
    assert!(
        out.contains("List of databases") && out.contains("analytics"),
        "\\l lists the workspace's database:\n{out}"
    );
    assert!(
        out.contains("List of roles") && out.contains("erin") && !out.contains("bob"),
        "\\du lists the login only:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_session_refuses_and_goes_on() {
    let s = serve().await;
    let out = psql(
        &s,
        "bob",
        "INSERT INTO orders VALUES (1);\nSET search_path = hr;\nSELECT count(*) AS n FROM orders;\n",
    )
    .await;
    assert!(out.contains("INSERT statements are not allowed"), "{out}");
    assert!(out.contains("SET statements are not allowed"), "{out}");
    let n = library_rows(&s.engine, "BOB", "SELECT count(*) AS n FROM orders").await;
    assert!(out.contains(&format!("\n {}\n", n[0][0])), "{out}");
}
