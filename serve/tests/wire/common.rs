//! What the wire tests share: the sample workspaces, a scratch copy whose
//! policy files switch between two versions, trusted logins over
//! `tokio-postgres`, and answers as a client sees them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// The policy files that differ between `sample` and `sample-v2`.
const POLICY_FILES: [&str; 2] = ["policies/masking.yaml", "policies/rows.yaml"];

/// Rows as text (`None` for NULL).
pub(crate) type Rows = Vec<Vec<Option<String>>>;
/// A statement's outcome as the client sees it: rows or an error text.
pub(crate) type Answer = Result<Rows, String>;

pub(crate) fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Writes version `v` (0: the sample's policies, 1: sample-v2's) into `ws`.
pub(crate) fn write_version(ws: &Path, v: u64) {
    let from = if v.is_multiple_of(2) {
        testdata("sample")
    } else {
        testdata("sample-v2")
    };
    for f in POLICY_FILES {
        std::fs::copy(from.join(f), ws.join(f)).unwrap();
    }
}

pub(crate) async fn connect(addr: std::net::SocketAddr, user: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={user} dbname=ANALYTICS",
            addr.ip(),
            addr.port()
        ),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

pub(crate) async fn answer(client: &Client, sql: &str) -> Answer {
    match client.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()),
        Err(e) => Err(e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string())),
    }
}

pub(crate) async fn wait_applied(
    state: &mut tokio::sync::watch::Receiver<veil_serve::reload::ReloadState>,
    n: u64,
) {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let s = state.borrow_and_update().clone();
            assert_eq!(s.failed, 0, "a reload failed: {:?}", s.last_error);
            if s.applied >= n {
                return;
            }
            state.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("reload {n} did not happen within 120 s"));
}

/// A server over the workspace at `dir` where logins are trusted (no
/// passwords; loopback only); its address.
pub(crate) async fn serve_trusted(dir: &Path) -> std::net::SocketAddr {
    let engine = veil_engine::Engine::load(dir)
        .await
        .expect("the workspace loads");
    let state = veil_serve::server::ServerState::new(
        engine,
        veil_serve::options::ServeOptions::new(veil_serve::options::Authentication::Trust),
    );
    let server = veil_serve::pg::PgServer::bind_to(state, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds a loopback port");
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    addr
}
