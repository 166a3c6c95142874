//! The house rule: imports point only down. Every `crate::…` path in `src/**/*.rs` is mapped
//! to the layer of what it names, and an edge to a higher layer, or to a feature of the same
//! or a higher rank, fails with the file, the line and the import. Exceptions are listed in
//! `ALLOWED` with their reason; a new one is a design decision, not a shortcut.

use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use its own layer's modules only where the layer is
/// a toolbox (kernel, web); features are strictly ordered, each using only those before it.
const LAYERS: &[(&str, &[&str])] = &[
    // Errors, db, schema, pagination, history, text, versions, actors, the calendar.
    ("kernel", &["common"]),
    // Extractors, preconditions, responses, the caller, JWT, throttling, routes.
    ("web", &["web"]),
    // Features, in the order they may use each other.
    ("users", &["users"]),
    // API tokens of users, for scripts.
    ("tokens", &["tokens"]),
    ("auth", &["auth"]),
    ("catalog", &["catalog"]),
    ("board", &["board"]),
    ("sla", &["sla"]),
    ("items", &["items"]),
    ("demands", &["demands"]),
    ("incidents", &["incidents"]),
    // Rollout of services to the municipal administrations (catalogue, items as blockers).
    ("rollout", &["rollout"]),
    // The changes feed reads every entity's history (and the items' shape).
    ("changes", &["changes"]),
    // Webhooks send the feed's change events to subscribed receivers.
    ("webhooks", &["webhooks"]),
    // Flow metrics, charts and forecasts: read boards, items and SLA clocks; a feature, not a
    // workflow, since it writes only its own derived data (through the history's hook).
    ("reports", &["reports"]),
    // What combines features: deactivation with hand-over, the board view, the demo.
    ("workflows", &["workflows"]),
    // The app: lib.rs, main.rs, start-up, configuration, the OpenAPI document, the probes.
    (
        "app",
        &["lib", "main", "startup", "config", "openapi", "health"],
    ),
];

/// Layers whose modules may use each other freely (a toolbox, not a feature).
const TOOLBOXES: &[&str] = &["kernel", "web", "app"];

/// Edges that point up or sideways on purpose: `(from file, to module, why)`.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// Items of the crate root and the layer they belong to (macros exported at the root, the
/// re-exports kept for the binary and the tests).
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("keyset_order", "kernel"),
    ("versioned_write", "kernel"),
    ("versioned_delete", "kernel"),
    ("load_for_ids", "kernel"),
    ("first_locked", "kernel"),
    ("prepared_statement", "kernel"),
    ("db", "kernel"),
    ("error", "kernel"),
    ("AppState", "app"),
    ("build_app", "app"),
    ("openapi_document", "app"),
    ("register_hooks", "app"),
];

fn layer_of_module(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
        .or_else(|| {
            ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == module)
                .and_then(|(_, layer)| LAYERS.iter().position(|(name, _)| name == layer))
        })
}

/// The top-level module a file belongs to: `src/items/model.rs` → `items`, `src/lib.rs` →
/// `lib`.
fn module_of_file(path: &Path, src: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap_or(path);
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first path segment of every `crate::…` reference on a line, including each member of
/// a `use crate::{a::…, b::…}` group.
fn crate_references(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for member in group[..end].split(',') {
                let name: String = member
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        rest = after;
    }
    found
}

/// Every edge that breaks the rule, as `file:line: import (from layer → to layer)`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let module = module_of_file(&file, src);
        let Some(from) = layer_of_module(&module) else {
            found.push(format!(
                "{}: module `{module}` is in no layer; add it to LAYERS",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let shown = file
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(&file);
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for target in crate_references(code) {
                if target == module {
                    continue;
                }
                let Some(to) = layer_of_module(&target) else {
                    found.push(format!(
                        "{}:{}: `crate::{target}` is in no layer: {}",
                        shown.display(),
                        number + 1,
                        line.trim()
                    ));
                    continue;
                };
                let same_toolbox = from == to && TOOLBOXES.contains(&LAYERS[from].0);
                let allowed = ALLOWED
                    .iter()
                    .any(|(f, t, _)| shown.ends_with(f) && *t == target);
                if to < from || same_toolbox || allowed {
                    continue;
                }
                found.push(format!(
                    "{}:{}: {} imports `crate::{target}` ({} → {}): {}",
                    shown.display(),
                    number + 1,
                    module,
                    LAYERS[from].0,
                    LAYERS[to].0,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn imports_point_only_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "{} import(s) point up or sideways; move the code down to where both sides can see \
         it, or up into a workflow (see the layers in tests/layering.rs):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn a_planted_upward_import_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("common")).expect("dirs");
    std::fs::create_dir_all(src.join("items")).expect("dirs");
    std::fs::write(
        src.join("common/error.rs"),
        "use crate::items::model::Item; // the kernel must not see a feature\n",
    )
    .expect("write");
    std::fs::write(
        src.join("items/model.rs"),
        "use crate::common::error::ApiError;\nuse crate::{common::db, web::auth};\n",
    )
    .expect("write");
    std::fs::write(src.join("lib.rs"), "pub use crate::items::model::Item;\n").expect("write");
    let found = violations(&src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("src/common/error.rs:1") && found[0].contains("kernel → items"),
        "{found:?}"
    );
}

/// Crate-root names that live in a file of their own: re-exports and exported macros.
const ROOT_FILES: &[(&str, &str)] = &[
    ("db", "common/db/mod.rs"),
    ("error", "common/error.rs"),
    ("keyset_order", "common/pagination.rs"),
    ("versioned_write", "common/version.rs"),
    ("versioned_delete", "common/version.rs"),
    ("load_for_ids", "common/db/mod.rs"),
    ("first_locked", "common/db/mod.rs"),
    ("prepared_statement", "common/db/mod.rs"),
];

/// The module path of a file: `src/items/model.rs` → `[items, model]`, `src/items/mod.rs` →
/// `[items]`, `src/lib.rs` → `[]`.
fn module_path_of(file: &Path, src: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let mut path: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if let Some(last) = path.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            path.push(stem.to_string());
        }
    }
    path
}

/// The file that a module path names: the longest prefix of `path` that is a file of `src`.
fn file_of(path: &[String], src: &Path) -> Option<PathBuf> {
    if let Some((_, file)) = path
        .first()
        .and_then(|first| ROOT_FILES.iter().find(|(name, _)| name == first))
    {
        return Some(src.join(file));
    }
    (1..=path.len()).rev().find_map(|k| {
        let joined = path[..k].join("/");
        [
            src.join(format!("{joined}.rs")),
            src.join(&joined).join("mod.rs"),
        ]
        .into_iter()
        .find(|candidate| candidate.is_file())
    })
}

/// The module paths a line refers to through `crate::…` or `super::…`, groups expanded one
/// level (`crate::common::{db::Lock, error}` gives both).
fn referenced_paths(line: &str, own: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (marker, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            // `super` of `items/model.rs` is `items`; of `items/mod.rs` it is the crate root.
            let mut parent = own.to_vec();
            parent.pop();
            if is_mod_file {
                parent.pop();
            }
            parent
        }),
    ] {
        let mut rest = line;
        while let Some(at) = rest.find(marker) {
            // `crate::` inside `$crate::` or a longer name is no reference of this file's.
            let before = rest[..at].chars().last();
            let after = &rest[at + marker.len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let mut prefix = base.clone();
            let head: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            prefix.extend(
                head.split("::")
                    .filter(|s| !s.is_empty() && *s != "super")
                    .map(str::to_string),
            );
            if head.ends_with("::") && after[head.len()..].starts_with('{') {
                let group = &after[head.len() + 1..];
                let end = group.find('}').unwrap_or(group.len());
                for member in group[..end].split(',') {
                    let mut path = prefix.clone();
                    path.extend(
                        member
                            .trim()
                            .split("::")
                            .map(|s| {
                                s.chars()
                                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                                    .collect::<String>()
                            })
                            .filter(|s| !s.is_empty() && s != "self"),
                    );
                    found.push(path);
                }
            } else {
                found.push(prefix);
            }
        }
    }
    found
}

/// The import cycles between files of `src`: each strongly connected set of two or more
/// files, as their paths.
fn file_cycles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let index: std::collections::HashMap<PathBuf, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.clone(), i))
        .collect();
    let mut edges: Vec<std::collections::BTreeSet<usize>> = vec![Default::default(); files.len()];
    for (from, file) in files.iter().enumerate() {
        let own = module_path_of(file, src);
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for path in referenced_paths(code, &own, is_mod_file) {
                if let Some(to) = file_of(&path, src).and_then(|f| index.get(&f).copied())
                    && to != from
                {
                    edges[from].insert(to);
                }
            }
        }
    }
    // Tarjan's strongly connected components.
    struct Walk<'a> {
        edges: &'a [std::collections::BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    fn visit(walk: &mut Walk<'_>, v: usize) {
        walk.index[v] = Some(walk.next);
        walk.low[v] = walk.next;
        walk.next += 1;
        walk.stack.push(v);
        walk.on_stack[v] = true;
        for &w in walk.edges[v].iter() {
            match walk.index[w] {
                None => {
                    visit(walk, w);
                    walk.low[v] = walk.low[v].min(walk.low[w]);
                }
                Some(i) if walk.on_stack[w] => walk.low[v] = walk.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(walk.low[v]) == walk.index[v] {
            let mut component = Vec::new();
            while let Some(w) = walk.stack.pop() {
                walk.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges: &edges,
        index: vec![None; files.len()],
        low: vec![0; files.len()],
        on_stack: vec![false; files.len()],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..files.len() {
        if walk.index[v].is_none() {
            visit(&mut walk, v);
        }
    }
    walk.found
        .into_iter()
        .map(|component| {
            let mut names: Vec<String> = component
                .into_iter()
                .map(|i| {
                    files[i]
                        .strip_prefix(src)
                        .unwrap_or(&files[i])
                        .display()
                        .to_string()
                })
                .collect();
            names.sort();
            names
        })
        .collect()
}

#[test]
fn no_two_files_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let cycles = file_cycles(&src);
    assert!(
        cycles.is_empty(),
        "files that import each other, directly or round a circle; move what both need into \
         a file below them:\n{}",
        cycles
            .iter()
            .map(|c| c.join(" ↔ "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_planted_file_cycle_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("items")).expect("dirs");
    std::fs::write(src.join("lib.rs"), "pub mod items;\n").expect("write");
    std::fs::write(
        src.join("items/mod.rs"),
        "pub mod a;\npub mod b;\npub mod c;\n",
    )
    .expect("write");
    std::fs::write(src.join("items/a.rs"), "use crate::items::b::B;\n").expect("write");
    std::fs::write(src.join("items/b.rs"), "use super::c::C;\n").expect("write");
    std::fs::write(src.join("items/c.rs"), "use crate::items::{a::A, b};\n").expect("write");
    let cycles = file_cycles(&src);
    assert_eq!(
        cycles,
        [["items/a.rs", "items/b.rs", "items/c.rs"]],
        "{cycles:?}"
    );
}
