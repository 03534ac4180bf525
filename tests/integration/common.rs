//! Shared helpers: one async runtime, cached engines, results as strings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use datafusion::arrow::array::RecordBatch;
use veil_engine::{EnforcementMode, Engine, Session, SessionOptions};

/// The shared runtime.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Path of a directory under `testdata/`.
pub(crate) fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

/// The engine for a workspace under `testdata/`, loaded once.
pub(crate) fn engine(name: &str) -> Engine {
    static ENGINES: OnceLock<Mutex<HashMap<String, Engine>>> = OnceLock::new();
    let map = ENGINES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(e) = map.lock().expect("engine cache").get(name) {
        return e.clone();
    }
    let e = runtime()
        .block_on(Engine::load(testdata(name)))
        .expect("workspace loads");
    map.lock()
        .expect("engine cache")
        .insert(name.to_string(), e.clone());
    e
}

/// The sample workspace engine.
pub(crate) fn sample() -> Engine {
    engine("sample")
}

/// A session on the sample workspace.
pub(crate) fn session(user: &str, purpose: Option<&str>, mode: EnforcementMode) -> Session {
    sample()
        .session_with(SessionOptions {
            user: user.to_string(),
            role: None,
            purpose: purpose.map(str::to_string),
            mode: Some(mode),
            secondary_roles: None,
            statement_timeout: None,
        })
        .expect("session opens")
}

/// Result rows as display strings (`NULL` for nulls).
pub(crate) fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    veil_engine::tools::test_runner::rows(batches).expect("results format")
}

/// Runs SQL and returns rows, or the error text.
pub(crate) fn run(session: &Session, sql: &str) -> Result<Vec<Vec<String>>, String> {
    runtime()
        .block_on(session.sql(sql))
        .map(|b| rows(&b))
        .map_err(|e| e.to_string())
}

/// Whether any cell of any row equals or contains `needle`.
pub(crate) fn contains_text(rows: &[Vec<String>], needle: &str) -> bool {
    rows.iter().flatten().any(|cell| cell.contains(needle))
}

/// A fresh temporary workspace built from a manifest and data files.
pub(crate) fn temp_workspace(manifest: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("veil.yaml"), manifest).expect("write manifest");
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write file");
    }
    dir
}

/// Loads a workspace directory.
pub(crate) fn load(dir: &std::path::Path) -> Result<Engine, String> {
    runtime()
        .block_on(Engine::load(dir))
        .map_err(|e| e.to_string())
}
