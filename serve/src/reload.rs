//! Policy versions while serving (SPEC §9 "Policy versions"): when files in
//! the workspace change, the workspace is loaded again, validated and built,
//! then swapped in atomically through [`Engine::apply_as`]. Statements
//! already running finish on the version they started on; a broken change
//! keeps the version in force and is logged with its file:line.
//!
//! Changes are noticed with the `notify` crate (inotify on Linux, FSEvents,
//! ReadDirectoryChangesW, kqueue): a reload starts within the debounce
//! period of the last write instead of a polling interval later, and an
//! idle server does no work. Events only wake the watcher; what decides a
//! reload is a fingerprint (path, size, modification time) of the
//! workspace's files, so a burst of writes (an editor's save, a `git
//! checkout`) is one reload, and events that change nothing (the server's
//! own reads, the audit log, editor swap files) are none. Veil's runtime
//! state (`state/`), hidden files and editor backups are not part of the
//! workspace; nor is the audit log, wherever it is.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use veil_engine::{Engine, VeilError};

use crate::metrics::Metrics;

/// The actor policy changes made by the watcher are audited under.
pub const RELOAD_ACTOR: &str = "VEIL_SERVE_RELOAD";

/// How the watcher behaves.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Quiet time after the last change before the workspace is reloaded.
    pub debounce: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(300),
        }
    }
}

/// What the watcher has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadState {
    /// Reloads that installed a new version.
    pub applied: u64,
    /// Reloads refused (the version in force stayed).
    pub failed: u64,
    /// The error of the last refused reload, with its file:line.
    pub last_error: Option<String>,
}

/// Watches a workspace and reloads it into an engine; stops when dropped.
#[derive(Debug)]
pub struct WorkspaceWatcher {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
    state: watch::Receiver<ReloadState>,
}

impl Drop for WorkspaceWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WorkspaceWatcher {
    /// Starts watching `dir` (the directory `engine` was loaded from).
    /// Must be called inside a tokio runtime.
    pub fn start(
        engine: Engine,
        dir: &Path,
        metrics: Option<Metrics>,
        options: WatchOptions,
    ) -> veil_engine::Result<Self> {
        let cannot = |e: &dyn std::fmt::Display| {
            VeilError::workspace(
                dir.display().to_string(),
                format!("cannot watch the workspace for changes: {e}"),
            )
        };
        let dir = dir.canonicalize().map_err(|e| cannot(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only when the watcher is being dropped.
            let _ = tx.send(event);
        })
        .map_err(|e| cannot(&e))?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|e| cannot(&e))?;
        let (state_tx, state) = watch::channel(ReloadState::default());
        let ignore = Ignore::new(&dir, &engine);
        // Taken before returning, so a change right after `start` counts.
        let seen = fingerprint_now(&dir, &ignore);
        let task = tokio::spawn(run(
            seen,
            Reloader {
                engine,
                dir,
                ignore,
                metrics,
                state: state_tx,
            },
            rx,
            options,
        ));
        Ok(Self {
            _watcher: watcher,
            task,
            state,
        })
    }

    /// What the watcher has done so far; `changed()` on it wakes after each
    /// reload, applied or refused.
    pub fn state(&self) -> watch::Receiver<ReloadState> {
        self.state.clone()
    }
}

/// What is not part of the workspace.
#[derive(Debug, Clone)]
struct Ignore {
    state_dir: PathBuf,
    audit_log: Option<PathBuf>,
}

impl Ignore {
    fn new(dir: &Path, engine: &Engine) -> Self {
        let audit_log = engine.audit_log().map(|log| {
            let p = log.path();
            p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
        });
        Self {
            state_dir: dir.join("state"),
            audit_log,
        }
    }

    fn ignores(&self, dir: &Path, path: &Path) -> bool {
        if path.starts_with(&self.state_dir) || self.audit_log.as_deref() == Some(path) {
            return true;
        }
        let inside = path.strip_prefix(dir).unwrap_or(path);
        inside.components().any(|c| {
            let name = c.as_os_str().to_string_lossy();
            name.starts_with('.')
                || name.ends_with('~')
                || name.ends_with(".swp")
                || name.ends_with(".swx")
                || name.ends_with(".tmp")
        })
    }
}

struct Reloader {
    engine: Engine,
    dir: PathBuf,
    ignore: Ignore,
    metrics: Option<Metrics>,
    state: watch::Sender<ReloadState>,
}

async fn run(
    mut seen: u64,
    r: Reloader,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    options: WatchOptions,
) {
    loop {
        // Wait for a change that may concern the workspace ...
        loop {
            match events.recv().await {
                None => return,
                Some(event) if r.relevant(&event) => break,
                Some(_) => {}
            }
        }
        // ... then for the debounce period without one.
        loop {
            match tokio::time::timeout(options.debounce, events.recv()).await {
                Ok(None) => return,
                Ok(Some(_)) => {}
                Err(_) => break,
            }
        }
        let now = fingerprint(&r.dir, &r.ignore).await;
        if now == seen {
            continue;
        }
        seen = now;
        r.reload().await;
    }
}

impl Reloader {
    fn relevant(&self, event: &notify::Result<notify::Event>) -> bool {
        match event {
            // An error may mean lost events: look at the files.
            Err(_) => true,
            Ok(e) if e.need_rescan() => true,
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => false,
            Ok(e) => e.paths.iter().any(|p| !self.ignore.ignores(&self.dir, p)),
        }
    }

    async fn reload(&self) {
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || veil_engine::load::load_workspace(&dir))
            .await
            .unwrap_or_else(|e| {
                Err(VeilError::Internal(format!(
                    "loading the workspace stopped: {e}"
                )))
            });
        let result = match loaded {
            Ok(ws) => self.engine.apply_as(ws, RELOAD_ACTOR).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(version) => {
                eprintln!(
                    "veil serve: policy version {version} installed from {}",
                    self.dir.display()
                );
                if let Some(m) = &self.metrics {
                    m.reload_applied();
                }
                self.state.send_modify(|s| s.applied += 1);
            }
            Err(e) => {
                let message = e.to_string();
                eprintln!(
                    "veil serve: the workspace change was refused; policy version {} stays in force: {message}",
                    self.engine.version()
                );
                if let Some(m) = &self.metrics {
                    m.reload_failed();
                }
                self.state.send_modify(|s| {
                    s.failed += 1;
                    s.last_error = Some(message);
                });
            }
        }
    }
}

/// Size and modification time of every file of the workspace, hashed.
async fn fingerprint(dir: &Path, ignore: &Ignore) -> u64 {
    let dir = dir.to_path_buf();
    let ignore = ignore.clone();
    tokio::task::spawn_blocking(move || fingerprint_now(&dir, &ignore))
        .await
        .unwrap_or_default()
}

fn fingerprint_now(dir: &Path, ignore: &Ignore) -> u64 {
    let mut files = Vec::new();
    walk(dir, dir, ignore, &mut files);
    files.sort();
    let mut h = DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}

type FileStamp = (PathBuf, u64, Option<std::time::SystemTime>);

fn walk(root: &Path, dir: &Path, ignore: &Ignore, out: &mut Vec<FileStamp>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if ignore.ignores(root, &path) {
            continue;
        }
        // Followed symlinks: a workspace mounted as a Kubernetes ConfigMap
        // swaps a symlinked directory.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            // Bounded: symlink loops end at the OS's path length limit.
            if path.components().count() < 64 {
                walk(root, &path, ignore, out);
            }
        } else {
            out.push((path, meta.len(), meta.modified().ok()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_dir(from: &Path, to: &Path) {
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

    fn sample() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ws");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample");
        copy_dir(&src, &dir);
        (tmp, dir)
    }

    /// Waits (bounded) until the watcher has done `n` reloads in all.
    async fn reloads(state: &mut watch::Receiver<ReloadState>, n: u64) -> ReloadState {
        let wait = async {
            loop {
                let s = state.borrow_and_update().clone();
                if s.applied + s.failed >= n {
                    return s;
                }
                if state.changed().await.is_err() {
                    return state.borrow().clone();
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("the watcher did not reload {n} time(s) within 60 s"))
    }

    fn edit(path: &Path, from: &str, to: &str) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(from), "{} has no {from:?}", path.display());
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    const WIDENED_EXCEPTION: (&str, &str) = (
        "except: {groups: [Compliance]}",
        "except: {groups: [Compliance, Data Owners]}",
    );

    async fn emails(engine: &Engine, user: &str) -> String {
        let batches = engine
            .session(user)
            .unwrap()
            .sql("SELECT email FROM customers ORDER BY id")
            .await
            .unwrap();
        veil_engine::output::table(&batches).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edit_installs_a_new_version_atomically() {
        let (_tmp, dir) = sample();
        let engine = Engine::load(&dir).await.unwrap();
        let metrics = Metrics::new();
        metrics.attach(&engine);
        let before = emails(&engine, "DANA").await;
        // A statement that started on version 1 streams after the swap.
        let running = engine
            .session("DANA")
            .unwrap()
            .sql_stream("SELECT email FROM customers ORDER BY id")
            .await
            .unwrap();
        let watcher = WorkspaceWatcher::start(
            engine.clone(),
            &dir,
            Some(metrics.clone()),
            WatchOptions::default(),
        )
        .unwrap();
        let mut state = watcher.state();
        let (from, to) = WIDENED_EXCEPTION;
        edit(&dir.join("policies/masking.yaml"), from, to);
        let s = reloads(&mut state, 1).await;
        assert_eq!((s.applied, s.failed), (1, 0), "{:?}", s.last_error);
        assert_eq!(engine.version(), 2);
        assert_eq!(metrics.policy_version(), Some(2));
        // Dana owns customers: the widened exception unmasks her emails.
        let after = emails(&engine, "DANA").await;
        assert_ne!(before, after);
        let old: Vec<_> = futures::TryStreamExt::try_collect(running).await.unwrap();
        assert_eq!(veil_engine::output::table(&old).unwrap(), before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_edit_keeps_the_version_in_force_and_names_the_line() {
        let (_tmp, dir) = sample();
        let engine = Engine::load(&dir).await.unwrap();
        let metrics = Metrics::new();
        let before = emails(&engine, "BOB").await;
        let watcher = WorkspaceWatcher::start(
            engine.clone(),
            &dir,
            Some(metrics.clone()),
            WatchOptions::default(),
        )
        .unwrap();
        let mut state = watcher.state();
        let rows = dir.join("policies/rows.yaml");
        let text = std::fs::read_to_string(&rows).unwrap();
        std::fs::write(&rows, format!("{text}\n  - name: [unclosed\n")).unwrap();
        let s = reloads(&mut state, 1).await;
        assert_eq!((s.applied, s.failed), (0, 1));
        let error = s.last_error.unwrap();
        assert!(
            error.contains("policies/rows.yaml:"),
            "the error names the file and line: {error}"
        );
        assert_eq!(engine.version(), 1);
        assert_eq!(metrics.reload_failures(), 1);
        assert_eq!(emails(&engine, "BOB").await, before);
        // Fixing the file installs the next version.
        std::fs::write(&rows, text).unwrap();
        let s = reloads(&mut state, 2).await;
        assert_eq!((s.applied, s.failed), (1, 1));
        assert_eq!(engine.version(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_writes_is_one_reload_and_runtime_state_is_none() {
        let (_tmp, dir) = sample();
        let engine = Engine::load(&dir).await.unwrap();
        let original = emails(&engine, "DANA").await;
        let watcher =
            WorkspaceWatcher::start(engine.clone(), &dir, None, WatchOptions::default()).unwrap();
        let mut state = watcher.state();
        let masking = dir.join("policies/masking.yaml");
        let (from, to) = WIDENED_EXCEPTION;
        for i in 0..5 {
            let (a, b) = if i % 2 == 0 { (from, to) } else { (to, from) };
            edit(&masking, a, b);
        }
        let s = reloads(&mut state, 1).await;
        assert_eq!((s.applied, s.failed), (1, 0));
        assert_eq!(engine.version(), 2);
        assert_ne!(emails(&engine, "DANA").await, original);
        // The server's runtime state and editor files are not policy: well
        // past the debounce period after writing them, the next reload is
        // the real edit's.
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("state/audit.jsonl"), "{}\n").unwrap();
        std::fs::write(dir.join("policies/.masking.yaml.swp"), "x").unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        edit(&masking, to, from);
        let s = reloads(&mut state, 2).await;
        assert_eq!((s.applied, s.failed), (2, 0));
        assert_eq!(emails(&engine, "DANA").await, original);
        assert_eq!(engine.version(), 3);
    }
}
