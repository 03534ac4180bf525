//! The architecture test: the map of `veil-engine`'s layers, kept true.
//!
//! It reads every file under `engine/src`, collects the `crate::…` paths its
//! code names (`use` lines and paths in code; comments, doc links and the
//! inline `#[cfg(test)] mod tests` are skipped), and fails when a module
//! names one in a higher layer, when modules import each other in a circle,
//! when a module is in no layer, or when `veil-udfs` depends on the engine.
//!
//! The layers, lowest first (a module may use its own layer and the ones
//! below it; within a layer no two modules may import each other both ways):
//!
//! | layer     | modules                                        |
//! |-----------|------------------------------------------------|
//! | (udfs)    | the `veil-udfs` crate, below everything        |
//! | base      | `error`, `trace`, `guard`                      |
//! | model     | `model/`                                       |
//! | sql       | `sql/`                                         |
//! | load      | `load/`                                        |
//! | compile   | `compile/`                                     |
//! | render    | `render/`                                      |
//! | enforce   | `enforce/`, `audit`, `profile`, `output`, `session` |
//! | tools     | `tools/`, `shell`, `discover/`, `directory/`   |
//!
//! `lib.rs` (the crate root and its re-exports of old paths) is above all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first, each with the module paths (relative to
/// `engine/src`, `/`-separated) that belong to it. The longest matching
/// prefix decides.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["error", "trace", "guard"]),
    ("model", &["model"]),
    // `ident` and `rewrite`: old paths of `sql::ident` and `sql::gate`.
    ("sql", &["sql", "ident", "rewrite"]),
    ("load", &["load"]),
    ("compile", &["compile"]),
    ("render", &["render"]),
    (
        "enforce",
        &["enforce", "audit", "profile", "output", "session"],
    ),
    ("tools", &["tools", "shell", "discover", "directory"]),
];

/// Items the crate root re-exports, by the module that defines them.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Result", "error"),
    ("VeilError", "error"),
    ("EnforcementMode", "model"),
    ("SessionOptions", "model"),
    ("Engine", "enforce"),
    ("Session", "enforce"),
    ("PlanTimings", "enforce"),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a source file: `enforce/engine.rs` → `enforce/engine`,
/// `sql/mod.rs` → `sql`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
        if last == "mod" {
            parts.pop();
        }
    }
    parts.join("/")
}

/// The layer index of module path `module`, by longest matching prefix.
fn layer_of(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, (_, prefixes)) in LAYERS.iter().enumerate() {
        for prefix in *prefixes {
            let matches = module == *prefix || module.starts_with(&format!("{prefix}/"));
            if matches && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), index));
            }
        }
    }
    best.map(|(_, index)| index)
}

/// The code of a file without comments and without its inline test module.
fn code_of(source: &str) -> String {
    let source = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| match l.find(" // ") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths `code` names through `crate::`: `crate::a::b::C` gives
/// `a/b`, `crate::{a::x, b}` gives `a/x` and `b`, `crate::Engine` the module
/// that defines it.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i;
        at = start + "crate::".len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if bytes.get(at) == Some(&b'{') {
            let end = code[at..].find('}').map_or(code.len(), |e| at + e);
            for item in code[at + 1..end].split(',') {
                found.extend(path_module(item.trim()));
            }
            continue;
        }
        let end = code[at..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(code.len(), |e| at + e);
        found.extend(path_module(&code[at..end]));
    }
    found
}

/// The module part of a path below `crate::` (`a::b::Item` → `a/b`). A
/// lowercase item (a function) reads like a module (`a::b::f` → `a/b/f`);
/// the layers match by prefix, so that does not matter.
fn path_module(path: &str) -> Option<String> {
    let segments: Vec<&str> = path
        .split("::")
        .filter(|s| !s.is_empty() && *s != "self")
        .collect();
    let first = segments.first()?;
    if first.starts_with(|c: char| c.is_uppercase()) {
        return ROOT_ITEMS
            .iter()
            .find(|(item, _)| item == first)
            .map(|(_, module)| (*module).to_string())
            .or_else(|| Some(format!("<root item {first}>")));
    }
    let modules: Vec<&str> = segments
        .iter()
        .take_while(|s| s.starts_with(|c: char| c.is_lowercase()))
        .copied()
        .collect();
    Some(modules.join("/"))
}

/// One finding: a file naming a module it may not name.
#[derive(Debug)]
struct Violation {
    file: String,
    target: String,
    message: String,
}

/// Checks one file's code; `module` is its module path.
fn check_file(module: &str, file: &str, code: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(own) = layer_of(module) else {
        out.push(Violation {
            file: file.to_string(),
            target: String::new(),
            message: format!(
                "module {module} is in no layer: place it in LAYERS in engine/tests/architecture.rs and in the README's Design section"
            ),
        });
        return out;
    };
    for target in crate_paths(code) {
        let Some(theirs) = layer_of(&target) else {
            out.push(Violation {
                file: file.to_string(),
                target: target.clone(),
                message: format!("crate::{} is in no layer", target.replace('/', "::")),
            });
            continue;
        };
        if theirs > own {
            out.push(Violation {
                file: file.to_string(),
                target: target.clone(),
                message: format!(
                    "imports crate::{} (layer {}) from layer {}: nothing may import upward ({})",
                    target.replace('/', "::"),
                    LAYERS[theirs].0,
                    LAYERS[own].0,
                    LAYERS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(" ← ")
                ),
            });
        }
    }
    out
}

/// The component a module belongs to for the circle check: its top-level
/// module, or the longest `LAYERS` prefix when that is deeper.
fn component(module: &str) -> String {
    let mut best = module.split('/').next().unwrap_or_default().to_string();
    for (_, prefixes) in LAYERS {
        for prefix in *prefixes {
            let matches = module == *prefix || module.starts_with(&format!("{prefix}/"));
            if matches && prefix.len() > best.len() {
                best = (*prefix).to_string();
            }
        }
    }
    best
}

/// A circle in `edges`, if there is one.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut circle = path[i..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn engine_modules_import_only_downward_and_in_no_circle() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut violations = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap_or(path);
        let module = module_of(relative);
        if module == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let code = code_of(&source);
        let file = format!("engine/src/{}", relative.display());
        violations.extend(check_file(&module, &file, &code));
        let from = component(&module);
        for target in crate_paths(&code) {
            let to = component(&target);
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    let report: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.file, v.message))
        .collect();
    assert!(
        violations.is_empty(),
        "{} import(s) against the layer order:\n{}",
        violations.len(),
        report.join("\n")
    );
    if let Some(circle) = find_circle(&edges) {
        panic!(
            "modules import each other in a circle: {}",
            circle.join(" → ")
        );
    }
}

#[test]
fn udfs_do_not_depend_on_the_engine() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../udfs/Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    assert!(
        !text.contains("veil-engine"),
        "veil-udfs must sit below the engine, but its Cargo.toml names veil-engine"
    );
}

#[test]
fn the_check_catches_an_upward_import_and_reads_grouped_paths() {
    let code = code_of(
        "use crate::model::Workspace;\n// use crate::tools::lint; (a comment)\nuse crate::{error::Result, tools::explain::meets};\n",
    );
    let found = crate_paths(&code);
    assert!(found.contains("model"), "{found:?}");
    assert!(found.contains("error"), "{found:?}");
    // A function's name reads like a module's; only the prefix matters.
    assert!(found.contains("tools/explain/meets"), "{found:?}");
    assert!(
        !found.contains("tools/lint"),
        "comments are skipped: {found:?}"
    );
    let violations = check_file("model/catalog", "engine/src/model/catalog.rs", &code);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].target, "tools/explain/meets");
    assert!(
        violations[0]
            .message
            .contains("layer tools) from layer model"),
        "{}",
        violations[0].message
    );
    // Render may use compile; compile may not use render.
    assert!(check_file("render/masks", "m.rs", "use crate::compile::AppliedMask;").is_empty());
    assert_eq!(
        check_file("compile/decisions", "d.rs", "use crate::render::fit;").len(),
        1
    );
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(find_circle(&edges).is_some());
    edges.remove("b");
    assert!(find_circle(&edges).is_none());
}
