//! The test server, the Python runner, and comparisons with the library's
//! own results.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use veil_engine::Engine;
use veil_engine::arrow::array::Array;
use veil_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use veil_serve::snowflake::{Authentication, SnowflakeLimits, SnowflakeServer};
use veil_serve::{Credentials, ScramVerifier};

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Each sample user's password in these tests.
pub(crate) fn password(user: &str) -> String {
    format!("{}-pw", user.to_lowercase())
}

/// A running listener; stops when dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) engine: Engine,
    pub(crate) server: SnowflakeServer,
    pub(crate) rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a listener over the sample workspace with passwords for ALICE,
/// BOB, CAROL, ERIN and DAVE (disabled).
pub(crate) fn start(limits: SnowflakeLimits) -> TestServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let engine = rt
        .block_on(Engine::load(root().join("testdata/sample")))
        .expect("the sample workspace loads");
    let mut creds = Credentials::empty();
    for user in ["ALICE", "BOB", "CAROL", "ERIN", "DAVE", "FRANK"] {
        creds.insert(user, ScramVerifier::new(&password(user)));
    }
    let server = SnowflakeServer::with_limits(
        engine.clone(),
        Authentication::Passwords(std::sync::Arc::new(creds)),
        limits,
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let s = server.clone();
    rt.spawn(async move {
        let _ = s
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    TestServer {
        addr,
        engine,
        server,
        rt,
        stop: Some(stop),
    }
}

/// The virtual environment's Python: `VEIL_PYTHON`, else `veil-venv` under
/// the target directory. Fails (never skips) when it is missing.
pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("VEIL_PYTHON") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let p = target.join("veil-venv/bin/python");
    assert!(
        p.exists(),
        "No Python environment with snowflake-connector-python at {}: run scripts/test, which creates it (or set VEIL_PYTHON).",
        p.display()
    );
    p
}

/// Runs `serve/tests/python/<script>` with `input` on stdin; returns its
/// stdout lines as JSON.
pub(crate) fn run_python(script: &str, args: &[&str], input: &Value) -> Vec<Value> {
    let path = root().join("serve/tests/python").join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start Python for {script} (run scripts/test): {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.to_string().as_bytes())
            .expect("write the plan");
    }
    let out = child.wait_with_output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{script}: {e}: {l}")))
        .collect()
}

/// Runs statements as `user` through the connector.
pub(crate) fn connector(
    server: &TestServer,
    user: &str,
    extra: Value,
    steps: Vec<Value>,
) -> Vec<Value> {
    let mut plan = json!({
        "host": "127.0.0.1",
        "port": server.addr.port(),
        "user": user.to_lowercase(),
        "password": password(user),
        "steps": steps,
    });
    if let (Some(p), Some(e)) = (plan.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let out = run_python("sf_client.py", &[], &plan);
    assert_eq!(
        out.len(),
        plan["steps"].as_array().map_or(0, Vec::len),
        "one line per step: {out:?}"
    );
    out
}

/// A fetchall step.
pub(crate) fn all(sql: &str) -> Value {
    json!({"sql": sql, "fetch": "all"})
}

/// The library's own result for `user`, as display strings (NULL as None).
pub(crate) fn library_rows(server: &TestServer, user: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let session = server.engine.session(user).expect("session");
    let batches = server
        .rt
        .block_on(session.sql(sql))
        .unwrap_or_else(|e| panic!("{user}: {sql}: {e}"));
    let mut rows = Vec::new();
    let options = FormatOptions::default();
    for b in &batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for r in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .zip(&fmts)
                    .map(|(c, f)| (!c.is_null(r)).then(|| f.value(r).to_string()))
                    .collect(),
            );
        }
    }
    rows
}

/// Rows of a connector step.
pub(crate) fn rows(step: &Value) -> Vec<Vec<Option<String>>> {
    assert_eq!(step["ok"], true, "the step failed: {step}");
    step["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|vs| vs.iter().map(|v| v.as_str().map(str::to_string)).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether any value of `rows` contains `text`.
pub(crate) fn contains(rows: &[Vec<Option<String>>], text: &str) -> bool {
    rows.iter().flatten().flatten().any(|v| v.contains(text))
}
