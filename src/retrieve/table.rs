//! The retrieval view of a workspace: files, a name → definitions map, each file's module path
//! and each name's document frequency, plus import resolution over them (Python packages with
//! `__init__.py` and relative imports; Rust `crate::`/`super::`/`self::` paths, `mod.rs`, and
//! re-exports followed a few hops).
//!
//! Built once per batch by the CLI, or from a `WorkspaceIndex` when its files change.
//!
//! Why this resolver is not `WorkspaceIndex::resolve_import`/`resolve_module` (yet): ranking
//! needs (1) the binding *kind* of each import (a module for `from pkg import sub`, definitions,
//! or a glob), where the index returns definitions or files; (2) results over this table's
//! files, whose symbols include the definitions `extract::with_recovered_definitions` recovered
//! from syntax errors, which the index's `SymbolRef`s never point at; (3) a fallback to the
//! name's top-level definitions anywhere when a path cannot be followed (inline modules,
//! macro-made re-exports), where the index returns nothing; (4) a module's exported names
//! following re-exports for qualifiers (`utils.f`, `super::ser::f`), which the index keeps
//! private (`lookup_exported`). Merging needs those from the index first.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};
use std::sync::Arc;

use crate::index::{FileIndex, Import, SymbolKind};
use crate::lang::Lang;

/// A definition: (file number, symbol number in that file).
pub type DefId = (usize, usize);

/// What an import binds in the importing file.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A module: `import x.y as z`, `from . import utils`, `use crate::de`.
    Module(usize),
    /// Definitions (more than one only when the name is ambiguous).
    Defs(Vec<DefId>),
    /// An internal module's `*`.
    Glob(usize),
}

#[derive(Debug, Default)]
pub struct SymbolTable {
    pub files: Vec<Arc<FileIndex>>,
    by_path: HashMap<std::path::PathBuf, usize>,
    by_name: HashMap<String, Vec<DefId>>,
    /// Module path (`requests.models`, `crate::de`) → file.
    modules: HashMap<String, usize>,
    module_of: Vec<String>,
    /// First segments of internal module paths (`requests`, `crate`).
    roots: HashSet<String>,
    /// Name → number of files referencing it.
    doc_freq: HashMap<String, u32>,
    /// Container name (class, impl'd type, trait) → its members.
    by_container: HashMap<String, Vec<DefId>>,
    /// Last segment of a module path (`ser` for `crate::ser`) → files.
    by_module_leaf: HashMap<String, Vec<usize>>,
}

impl SymbolTable {
    pub fn new(mut files: Vec<Arc<FileIndex>>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut table = SymbolTable::default();
        let python_dirs: HashSet<&Path> = files
            .iter()
            .filter(|f| f.path.file_name().is_some_and(|n| n == "__init__.py"))
            .filter_map(|f| f.path.parent())
            .collect();
        let mut module_of = Vec::with_capacity(files.len());
        for (number, file) in files.iter().enumerate() {
            table.by_path.insert(file.path.clone(), number);
            let module = match file.lang {
                Lang::Python => python_module(&file.path, &python_dirs),
                Lang::Rust => rust_module(&file.path),
            };
            if let Some(first) = module.split(['.', ':']).next() {
                table.roots.insert(first.to_string());
            }
            table.modules.entry(module.clone()).or_insert(number);
            if let Some(leaf) = module.rsplit(['.', ':']).next() {
                table
                    .by_module_leaf
                    .entry(leaf.to_string())
                    .or_default()
                    .push(number);
            }
            module_of.push(module);
            for (index, symbol) in file.symbols.iter().enumerate() {
                // Fields and enum variants are shown through their type's definition.
                let in_enum = symbol
                    .parent
                    .and_then(|p| file.symbols.get(p))
                    .is_some_and(|p| p.kind == SymbolKind::Enum);
                if in_enum
                    || matches!(
                        symbol.kind,
                        SymbolKind::Impl | SymbolKind::Module | SymbolKind::Field
                    )
                {
                    continue;
                }
                table
                    .by_name
                    .entry(symbol.name.to_string())
                    .or_default()
                    .push((number, index));
                if let Some(container) = &symbol.container {
                    table
                        .by_container
                        .entry(container.to_string())
                        .or_default()
                        .push((number, index));
                }
            }
            let mut seen = HashSet::new();
            for reference in &file.references {
                if seen.insert(&*reference.name) {
                    match table.doc_freq.get_mut(&*reference.name) {
                        Some(count) => *count += 1,
                        None => {
                            table.doc_freq.insert(reference.name.to_string(), 1);
                        }
                    }
                }
            }
        }
        table.module_of = module_of;
        table.files = files;
        table
    }

    pub fn file_number(&self, path: &Path) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    pub fn definitions(&self, name: &str) -> &[DefId] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Members (methods, fields) of every class/impl/trait called `container`.
    pub fn members(&self, container: &str) -> &[DefId] {
        self.by_container
            .get(container)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Files whose module path ends in `leaf` (`ser` → `src/ser.rs`).
    pub fn modules_named(&self, leaf: &str) -> &[usize] {
        self.by_module_leaf
            .get(leaf)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Top-level definitions named `name` in module file `file`, or reached from it through
    /// its re-exports.
    pub fn member_of_module(&self, file: usize, name: &str) -> Vec<DefId> {
        let lang = self.files[file].lang;
        self.follow(Some(file), name, lang, 3)
    }

    pub fn doc_freq(&self, name: &str) -> u32 {
        self.doc_freq.get(name).copied().unwrap_or(0)
    }

    /// The module path `path` would have (for a buffer not in the table).
    pub fn module_for(&self, path: &Path, lang: Lang) -> String {
        if let Some(number) = self.file_number(path) {
            return self.module_of[number].clone();
        }
        match lang {
            Lang::Python => {
                let dirs: HashSet<&Path> = self
                    .files
                    .iter()
                    .filter(|f| f.path.file_name().is_some_and(|n| n == "__init__.py"))
                    .filter_map(|f| f.path.parent())
                    .collect();
                python_module(path, &dirs)
            }
            Lang::Rust => rust_module(path),
        }
    }

    /// Resolves the module an import names, seen from a file whose module path is `from`.
    /// Returns the absolute module path and whether it is internal to the workspace.
    fn absolute_module(&self, module: &str, from: &str, lang: Lang, is_package: bool) -> String {
        match lang {
            Lang::Python => {
                let dots = module.chars().take_while(|c| *c == '.').count();
                if dots == 0 {
                    return module.to_string();
                }
                let mut parts: Vec<&str> = from.split('.').collect();
                if !is_package {
                    parts.pop();
                }
                for _ in 1..dots {
                    parts.pop();
                }
                let rest = &module[dots..];
                if !rest.is_empty() {
                    parts.push(rest);
                }
                parts.join(".")
            }
            Lang::Rust => {
                let mut segments = module.split("::");
                let mut base: Vec<String> = from.split("::").map(str::to_string).collect();
                let mut out: Vec<String> = Vec::new();
                let mut first = true;
                for segment in segments.by_ref() {
                    match segment {
                        "crate" if first => out = vec!["crate".to_string()],
                        "self" if first => out = base.clone(),
                        "super" => {
                            if first {
                                out = std::mem::take(&mut base);
                            }
                            if out.len() > 1 {
                                out.pop();
                            }
                        }
                        other => {
                            if first && !self.roots.contains(other) {
                                // 2018 paths: a sibling module in scope, else an external crate.
                                let local = format!("{from}::{other}");
                                if self.modules.contains_key(&local) {
                                    out = from.split("::").map(str::to_string).collect();
                                } else if self.modules.contains_key(&format!("crate::{other}")) {
                                    out = vec!["crate".to_string()];
                                }
                            }
                            out.push(other.to_string());
                        }
                    }
                    first = false;
                }
                out.join("::")
            }
        }
    }

    fn join(lang: Lang, module: &str, name: &str) -> String {
        match lang {
            Lang::Python => format!("{module}.{name}"),
            Lang::Rust => format!("{module}::{name}"),
        }
    }

    fn is_internal(&self, module: &str) -> bool {
        module
            .split(['.', ':'])
            .next()
            .is_some_and(|first| self.roots.contains(first))
    }

    /// What `import` binds in a file of language `lang` with module path `from`.
    pub fn resolve_import(
        &self,
        import: &Import,
        from: &str,
        lang: Lang,
        is_package: bool,
    ) -> Option<Binding> {
        let module = self.absolute_module(&import.module, from, lang, is_package);
        if !self.is_internal(&module) {
            return None;
        }
        let module_file = self.modules.get(&module).copied();
        if import.glob {
            return module_file.map(Binding::Glob);
        }
        let Some(name) = &import.name else {
            return module_file.map(Binding::Module);
        };
        if let Some(&file) = self.modules.get(&Self::join(lang, &module, name)) {
            return Some(Binding::Module(file));
        }
        let defs = self.follow(module_file, name, lang, 3);
        if !defs.is_empty() {
            return Some(Binding::Defs(defs));
        }
        // A path the table cannot follow (inline module, macro-made re-export): the name's
        // top-level definitions anywhere.
        let top: Vec<DefId> = self
            .definitions(name)
            .iter()
            .copied()
            .filter(|&(f, s)| self.files[f].symbols[s].parent.is_none())
            .collect();
        (!top.is_empty()).then_some(Binding::Defs(top))
    }

    /// Top-level definitions of `name` in `file`, following its re-exports up to `hops` deep.
    fn follow(&self, file: Option<usize>, name: &str, lang: Lang, hops: u32) -> Vec<DefId> {
        let Some(file) = file else {
            return Vec::new();
        };
        let index = &self.files[file];
        let own: Vec<DefId> = index
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.parent.is_none() && *s.name == *name && !matches!(s.kind, SymbolKind::Impl)
            })
            .map(|(i, _)| (file, i))
            .collect();
        if !own.is_empty() || hops == 0 {
            return own;
        }
        let is_package = is_package_file(&index.path);
        for import in &index.imports {
            let binds = import.local_name() == name && import.name.is_some();
            if !binds && !import.glob {
                continue;
            }
            let module =
                self.absolute_module(&import.module, &self.module_of[file], lang, is_package);
            let target = self.modules.get(&module).copied();
            let wanted = if import.glob {
                name
            } else {
                import.name.as_deref().unwrap_or(name)
            };
            let found = self.follow(target, wanted, lang, hops - 1);
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }
}

/// `__init__.py`, `mod.rs`, `lib.rs`, `main.rs`: files whose module is their directory.
pub fn is_package_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| matches!(n, "__init__.py" | "mod.rs" | "lib.rs" | "main.rs"))
}

fn python_module(path: &Path, package_dirs: &HashSet<&Path>) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let mut parts = Vec::new();
    if stem != "__init__" {
        parts.push(stem.to_string());
    }
    let mut dir = path.parent();
    while let Some(current) = dir {
        if !package_dirs.contains(current) {
            break;
        }
        if let Some(name) = current.file_name().and_then(|n| n.to_str()) {
            parts.push(name.to_string());
        }
        dir = current.parent();
    }
    parts.reverse();
    parts.join(".")
}

fn rust_module(path: &Path) -> String {
    let components: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect();
    let start = components
        .iter()
        .rposition(|c| c == "src")
        .map(|i| i + 1)
        .unwrap_or(components.len().saturating_sub(1));
    let mut parts = vec!["crate".to_string()];
    let tail = &components[start.min(components.len())..];
    for (i, part) in tail.iter().enumerate() {
        let last = i + 1 == tail.len();
        if last {
            let stem = part.strip_suffix(".rs").unwrap_or(part);
            if !(matches!(stem, "mod" | "lib" | "main") || (i == 0 && stem == "main")) {
                parts.push(stem.to_string());
            }
        } else {
            parts.push(part.clone());
        }
    }
    parts.join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths() {
        let dirs: HashSet<&Path> = [Path::new("/r/pkg"), Path::new("/r/pkg/sub")]
            .into_iter()
            .collect();
        assert_eq!(
            python_module(Path::new("/r/pkg/sub/m.py"), &dirs),
            "pkg.sub.m"
        );
        assert_eq!(python_module(Path::new("/r/pkg/__init__.py"), &dirs), "pkg");
        assert_eq!(rust_module(Path::new("/r/src/lib.rs")), "crate");
        assert_eq!(rust_module(Path::new("/r/src/de/mod.rs")), "crate::de");
        assert_eq!(
            rust_module(Path::new("/r/src/de/read.rs")),
            "crate::de::read"
        );
    }
}
