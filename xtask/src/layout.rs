//! `cargo xtask layout`: the shape rules of `STYLE.md` that a compiler does
//! not check, checked on the host's crates, the test kit and the SDK:
//!
//! - no import circle: two modules of one crate that name each other,
//!   directly or around a loop (through `use` or a path in code);
//! - no source file over [`MAX_LINES`] lines (tests and benches aside).
//!
//! Module edges come from `use` items (braces expanded) and `crate::`,
//! `super::` and `self::` paths in code, each resolved to the deepest module
//! it names; an inline `#[cfg(test)] mod tests` is left out. So a module
//! should name the module that defines an item, not a parent that
//! re-exports it: the edge then says what really depends on what.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Longest source file, in lines.
pub(crate) const MAX_LINES: usize = 500;

/// The crates whose `src/` is checked.
const CRATES: [&str; 8] =
    ["host/routes", "host/runtime", "host/storage", "host/cluster", "host/server", "host/cli", "testkit", "sdk"];

/// What the check found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Each circle: the modules on it, in one crate.
    pub(crate) circles: Vec<(String, Vec<String>)>,
    /// Files over the limit, with their length.
    pub(crate) long_files: Vec<(PathBuf, usize)>,
}

impl Report {
    pub(crate) fn is_clean(&self) -> bool {
        self.circles.is_empty() && self.long_files.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (krate, circle) in &self.circles {
            writeln!(f, "import circle in {krate}: {}", circle.join(" -> "))?;
        }
        for (file, lines) in &self.long_files {
            writeln!(f, "{} has {lines} lines (at most {MAX_LINES}: is it two ideas?)", file.display())?;
        }
        Ok(())
    }
}

/// Checks every crate of [`CRATES`] that exists under `root`.
pub(crate) fn check(root: &Path) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for krate in CRATES {
        let src = root.join(krate).join("src");
        if !src.is_dir() {
            continue;
        }
        let modules = modules(&src)?;
        for (file, text) in modules.values() {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                report.long_files.push((file.strip_prefix(root).unwrap_or(file).to_path_buf(), lines));
            }
        }
        let edges = edges(&modules);
        for circle in circles(&edges) {
            report.circles.push((krate.to_string(), circle));
        }
    }
    Ok(report)
}

/// Module path (`""` for the crate root, `a::b`) → its file and text.
type Modules = BTreeMap<String, (PathBuf, String)>;

fn modules(src: &Path) -> anyhow::Result<Modules> {
    let mut out = Modules::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src)?.with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            out.insert(parts.join("::"), (path, text));
        }
    }
    Ok(out)
}

/// Every module → the modules it names.
fn edges(modules: &Modules) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, (_, text)) in modules {
        let code = code_of(text);
        let mut named = BTreeSet::new();
        for path in paths(&code) {
            let Some(absolute) = absolute(module, &path) else { continue };
            let target = deepest(modules, &absolute);
            if target != *module {
                named.insert(target);
            }
        }
        edges.insert(module.clone(), named);
    }
    edges
}

/// The code of a file without comments, string literals and its inline
/// `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("\"\"");
            }
            c => out.push(c),
        }
    }
    out
}

/// Every path the code names from `crate`, `super` or `self`: `use` items
/// expanded, and paths in expressions and types.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    // `use` items are expanded, then left out of the paths-in-code scan.
    let mut without_uses = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        expand(after[..end].trim(), &mut Vec::new(), &mut found);
        without_uses.push_str(&rest[..at]);
        rest = &after[end..];
    }
    without_uses.push_str(rest);
    let words: Vec<char> = without_uses.chars().collect();
    let mut i = 0;
    while i < words.len() {
        let starts_word = i == 0 || !(words[i - 1].is_alphanumeric() || words[i - 1] == '_' || words[i - 1] == ':');
        if starts_word {
            for root in ["crate::", "super::", "self::"] {
                let candidate: String = words[i..words.len().min(i + root.len())].iter().collect();
                if candidate == root {
                    let mut j = i;
                    while j < words.len() && (words[j].is_alphanumeric() || words[j] == '_' || words[j] == ':') {
                        j += 1;
                    }
                    let path: String = words[i..j].iter().collect();
                    found.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect());
                    i = j;
                    break;
                }
            }
        }
        i += 1;
    }
    found.retain(|p: &Vec<String>| matches!(p.first().map(String::as_str), Some("crate" | "super" | "self")));
    found
}

/// The position of `word` as a whole word in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + word.len()).copied();
        let boundary = |b: Option<u8>| b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        if boundary(before) && after.is_some_and(|b| b.is_ascii_whitespace()) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Expands a use tree (`a::{b, c::{d, e as f}}`) into its paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> =
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
        let Some(close) = tree.rfind('}') else { return };
        let depth = prefix.len();
        prefix.extend(head);
        for part in split_top(&tree[open + 1..close]) {
            expand(part, prefix, out);
        }
        prefix.truncate(depth);
        return;
    }
    let path = tree.split(" as ").next().unwrap_or(tree);
    let mut full = prefix.clone();
    full.extend(path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "*").map(str::to_string));
    if full.last().is_some_and(|s| s == "self") {
        full.pop();
    }
    out.push(full);
}

/// Splits on the commas of the outermost level.
fn split_top(list: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// A path from `crate`, `super` or `self`, as seen from `module`, made
/// absolute (without `crate`). `super` means the parent module whether the
/// module is `a.rs` or `a/mod.rs`.
fn absolute(module: &str, path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut segments = path.iter().peekable();
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            base.clear();
            segments.next();
        }
        Some("self") => {
            segments.next();
        }
        Some("super") => {
            while segments.peek().is_some_and(|s| *s == "super") {
                segments.next();
                base.pop()?;
            }
        }
        _ => return None,
    }
    base.extend(segments.cloned());
    Some(base)
}

/// The deepest module a path names (an item's module, or the module itself).
fn deepest(modules: &Modules, path: &[String]) -> String {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| modules.contains_key(candidate))
        .unwrap_or_default()
}

/// The circles of a directed graph: its strongly connected components of
/// more than one module (Tarjan), each listed from its smallest module.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.edges.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(if top.is_empty() { "(crate root)".to_string() } else { top.to_string() });
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in pairs {
            edges.entry(from.to_string()).or_default().insert(to.to_string());
            edges.entry(to.to_string()).or_default();
        }
        edges
    }

    #[test]
    fn finds_circles_and_only_circles() {
        assert!(circles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
        assert_eq!(circles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])), [["a", "b", "c"]]);
    }

    #[test]
    fn use_trees_expand_to_paths() {
        let code = "use crate::a::{b::{C, D}, e as f, self};\nuse super::g;\nfn x() { crate::h::i(); }";
        let found = paths(code);
        let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
        assert_eq!(joined, ["crate::a::b::C", "crate::a::b::D", "crate::a::e", "crate::a", "super::g", "crate::h::i"]);
    }

    #[test]
    fn comments_strings_and_tests_name_nothing() {
        let code = code_of("// use crate::x;\nlet s = \"crate::y\";\n#[cfg(test)]\nmod tests {\n use crate::z;\n}\n");
        assert!(paths(&code).is_empty(), "{code}");
    }

    #[test]
    fn the_repository_keeps_its_shape() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let report = check(root).unwrap();
        assert!(report.is_clean(), "{report}");
    }
}
