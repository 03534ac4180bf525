//! Shared helpers: the failure type every test returns, both enforcement
//! modes, one async runtime, cached engines, results as strings.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use datafusion::arrow::array::RecordBatch;
use veil_engine::{EnforcementMode, Engine, Session, SessionOptions};

/// Why a test failed. Tests return `Result<(), Failed>`: `?` turns any
/// error or message into one, and the harness prints the message as written
/// (not quoted and escaped, as it would a `Box<dyn Error>`).
pub(crate) struct Failed(String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.to_string())
    }
}

impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Veil's two enforcement modes.
pub(crate) const MODES: [EnforcementMode; 2] =
    [EnforcementMode::Inlined, EnforcementMode::ProfileJoin];

/// Runs `test` in each enforcement mode, every mode to its end (a failure
/// in one does not skip the other), and fails with each mode's failure
/// named by its mode.
pub(crate) fn both_modes(
    test: impl Fn(EnforcementMode) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let failures: Vec<String> = MODES
        .into_iter()
        .filter_map(|mode| test(mode).err().map(|e| format!("{mode:?}: {}", e.0)))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failed(failures.join("\n")))
    }
}

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

pub(crate) use veil_tests::testdata;

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
