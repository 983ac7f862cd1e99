//! The rooms of `src/` and the one way data flows through them, checked from
//! the code itself: every reference to another room (`crate::room…` in the
//! library, `agentd::room…` in the binary) must point to a lower layer, and
//! the scripted model — the one simulated part — is used by the command line's
//! scripted verbs alone. Test code (`#[cfg(test)]` modules, `tests.rs`,
//! `*_tests.rs`) may reach anywhere.
//!
//! The layers, lowest first (the README's architecture section draws them):
//! the domain and shared low rooms, the store, the rooms that each do one
//! thing (agent adapters, engine, git, gateway), the image builder and the
//! scripted model, the runner, the supervisor, the API, the API client, the
//! command line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each room and its layer.
const LAYERS: &[(&str, u32)] = &[
    ("execution", 0),
    ("wire", 0),
    ("metrics", 0),
    ("open_files", 0),
    ("tenancy", 1),
    ("store", 2),
    ("results", 2),
    ("agent", 3),
    ("engine", 3),
    ("git", 3),
    ("gateway", 3),
    ("image", 4),
    ("scripted", 4),
    ("runner", 5),
    ("supervisor", 6),
    ("api", 7),
    ("client", 8),
    ("cli", 9),
];

/// Rooms only the command line may use.
const CLI_ONLY: &[&str] = &["scripted"];

fn layer(room: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == room)
        .map(|(_, l)| *l)
}

/// The room a source file belongs to (`main.rs` is the command line's).
fn room_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    match first.as_ref() {
        "main.rs" => "cli".into(),
        name => name.trim_end_matches(".rs").to_string(),
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Files that are test code as a whole: named so, or declared `#[cfg(test)] mod x;`.
fn test_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut tests = BTreeSet::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs"
            || name.ends_with("_tests.rs")
            || file.components().any(|c| c.as_os_str() == "tests")
        {
            tests.insert(file.clone());
        }
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let declared = pair[1]
                .trim()
                .strip_prefix("mod ")
                .and_then(|m| m.strip_suffix(';'));
            if pair[0].trim() == "#[cfg(test)]"
                && let Some(module) = declared
            {
                let dir = if matches!(name.as_ref(), "mod.rs" | "lib.rs" | "main.rs") {
                    file.parent().unwrap().to_path_buf()
                } else {
                    file.with_extension("")
                };
                tests.insert(dir.join(format!("{module}.rs")));
                tests.insert(dir.join(module).join("mod.rs"));
            }
        }
    }
    tests
}

/// The code of a file without its inline test module (by convention the last
/// item: everything from `#[cfg(test)]` followed by `mod … {`) and without
/// comments.
fn production_code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|pair| {
            pair[0].trim() == "#[cfg(test)]"
                && pair[1].trim_start().starts_with("mod ")
                && pair[1].trim_end().ends_with('{')
        })
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .filter(|line| !line.trim_start().starts_with("//"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rooms a piece of code names through `prefix` (`crate::` or `agentd::`),
/// including inside grouped imports (`use crate::{a::x, b}`).
fn rooms_named(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let room: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !room.is_empty() {
                    named.insert(room);
                }
            }
        } else {
            let room: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !room.is_empty() {
                named.insert(room);
            }
        }
        rest = after;
    }
    named
}

/// Every production dependency between rooms: (from, to) → the files making it.
fn dependencies() -> BTreeMap<(String, String), BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let tests = test_files(&files);
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !tests.contains(*f)) {
        let room = room_of(&src, file);
        if room == "lib" {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(file).unwrap());
        let prefix = if room == "cli" { "agentd::" } else { "crate::" };
        for target in rooms_named(&code, prefix) {
            if target != room && layer(&target).is_some() {
                let shown = file.strip_prefix(&src).unwrap().display().to_string();
                found
                    .entry((room.clone(), target))
                    .or_default()
                    .insert(shown);
            }
        }
    }
    found
}

#[test]
fn every_room_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for file in rust_files(&src) {
        let room = room_of(&src, &file);
        assert!(
            room == "lib" || layer(&room).is_some(),
            "{} is in room `{room}`, which has no layer in tests/architecture.rs (add it, and to the README's map)",
            file.display()
        );
    }
}

/// The dependencies that go against the flow.
fn violations(dependencies: &BTreeMap<(String, String), BTreeSet<String>>) -> Vec<String> {
    let mut wrong = Vec::new();
    for ((from, to), files) in dependencies {
        let (low, high) = (layer(to).unwrap(), layer(from).unwrap());
        if low >= high {
            wrong.push(format!(
                "{from} (layer {high}) uses {to} (layer {low}) in {files:?}"
            ));
        }
        if CLI_ONLY.contains(&to.as_str()) && from != "cli" {
            wrong.push(format!(
                "{from} uses {to}, which only the command line may use, in {files:?}"
            ));
        }
    }
    wrong
}

#[test]
fn data_flows_one_way_through_the_rooms() {
    let wrong = violations(&dependencies());
    assert!(
        wrong.is_empty(),
        "dependencies against the flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_dependency_upwards_a_cycle_or_a_use_of_the_scripted_model_is_caught() {
    let edge = |from: &str, to: &str| {
        (
            (from.to_string(), to.to_string()),
            BTreeSet::from(["x.rs".to_string()]),
        )
    };
    let fine = BTreeMap::from([
        edge("runner", "store"),
        edge("cli", "scripted"),
        edge("api", "execution"),
    ]);
    assert!(violations(&fine).is_empty());
    let cycle = BTreeMap::from([edge("store", "execution"), edge("execution", "store")]);
    assert_eq!(violations(&cycle).len(), 1);
    assert_eq!(
        violations(&BTreeMap::from([edge("gateway", "engine")])).len(),
        1,
        "same layer"
    );
    assert_eq!(
        violations(&BTreeMap::from([edge("supervisor", "scripted")])).len(),
        1
    );
}

#[test]
fn the_reader_sees_grouped_imports_and_ignores_tests_and_comments() {
    let code = "use crate::{store::Store, execution::Event};\n// crate::api is mentioned here\nfn f() { crate::metrics::global(); }\n#[cfg(test)]\nmod tests {\n    use crate::scripted::ScriptedModel;\n}\n";
    let rooms = rooms_named(&production_code(code), "crate::");
    assert_eq!(
        rooms,
        ["execution", "metrics", "store"].map(String::from).into()
    );
}
