//! Import resolution and go-to-definition over the index.
//!
//! Modules resolve to indexed files only, never by probing the disk for sources: what is not
//! indexed cannot be shown anyway. The one thing read from disk is which directory holds the
//! nearest `Cargo.toml` (and its package name), cached per directory.
//!
//! Python: a module name maps to files through a table built from the file set (each file is
//! named from every workspace root, from `<root>/src`, and from the top of its package chain of
//! `__init__.py` directories); relative imports walk up from the importing file. Rust: `crate`,
//! `self`, `super` and workspace crate names start a walk through `foo.rs`, `foo/mod.rs` and
//! inline `mod foo { }` declarations.
//!
//! The tables depend only on which files exist, so they are rebuilt when a file appears or
//! disappears, not when one is edited.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use super::{FileIndex, Import, SymbolKind, SymbolRef, WorkspaceIndex};
use crate::lang::Lang;

/// How many re-export hops `resolve_import` follows before giving up (cycles included).
const MAX_REEXPORT_DEPTH: usize = 8;

type ModuleTable = Arc<HashMap<String, Vec<PathBuf>>>;

/// Caches of resolution, owned by the index.
#[derive(Debug, Default)]
pub(super) struct ResolveCache {
    /// Python dotted module name → files, for a file-set generation.
    python_modules: RwLock<Option<(u64, ModuleTable)>>,
    /// Directory → the nearest ancestor directory holding a `Cargo.toml`.
    cargo_dirs: DashMap<PathBuf, Option<PathBuf>>,
    /// Crate directory → package name (hyphens as underscores).
    crate_names: DashMap<PathBuf, Option<String>>,
    /// File → the files its imports resolve to, for (file-set generation, content hash).
    import_targets: DashMap<PathBuf, (u64, u64, Arc<Vec<PathBuf>>)>,
}

impl WorkspaceIndex {
    /// The files a module path denotes, seen from the file `from`.
    pub fn resolve_module(&self, from: &Path, module: &str) -> Vec<PathBuf> {
        match Lang::from_path(from) {
            Some(Lang::Python) => self.resolve_python_module(from, module),
            Some(Lang::Rust) => self.resolve_rust_module(from, module).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The definitions an imported name denotes, following re-exports (a Python package's
    /// `__init__.py` importing the name from a submodule, a Rust `pub use`). A glob import
    /// denotes every top-level definition of its module; `import m` denotes no definition.
    pub fn resolve_import(&self, from: &Path, import: &Import) -> Vec<SymbolRef> {
        let mut visited = HashSet::new();
        self.resolve_import_depth(from, import, 0, &mut visited)
    }

    fn resolve_import_depth(
        &self,
        from: &Path,
        import: &Import,
        depth: usize,
        visited: &mut HashSet<(PathBuf, String)>,
    ) -> Vec<SymbolRef> {
        let targets = self.resolve_module(from, &import.module);
        let mut found = Vec::new();
        for target in targets {
            let Some(file) = self.file(&target) else {
                continue;
            };
            if import.glob {
                found.extend(top_level(&file).map(|index| SymbolRef {
                    file: file.clone(),
                    index,
                }));
                continue;
            }
            let Some(name) = &import.name else { continue };
            let scope = inline_module_scope(&file, &import.module);
            found.extend(self.lookup_exported(&file, scope, name, depth, visited));
        }
        found
    }

    /// A name as seen from outside a module file: its own top-level definitions, else what
    /// its imports bring in under that name.
    fn lookup_exported(
        &self,
        file: &Arc<FileIndex>,
        scope: Option<usize>,
        name: &str,
        depth: usize,
        visited: &mut HashSet<(PathBuf, String)>,
    ) -> Vec<SymbolRef> {
        let own: Vec<SymbolRef> = members(file, scope)
            .filter(|&index| *file.symbols[index].name == *name)
            .map(|index| SymbolRef {
                file: file.clone(),
                index,
            })
            .collect();
        if !own.is_empty() || depth >= MAX_REEXPORT_DEPTH {
            return own;
        }
        if !visited.insert((file.path.clone(), name.to_string())) {
            return Vec::new();
        }
        let mut found = Vec::new();
        for import in &file.imports {
            if import.glob {
                for target in self.resolve_module(&file.path, &import.module) {
                    if let Some(target) = self.file(&target) {
                        found.extend(self.lookup_exported(&target, None, name, depth + 1, visited));
                    }
                }
            } else if import.local_name() == name && import.name.is_some() {
                found.extend(self.resolve_import_depth(&file.path, import, depth + 1, visited));
            }
        }
        found
    }

    /// Files whose imports resolve to `path`.
    pub fn importers(&self, path: &Path) -> Vec<PathBuf> {
        let mut importers: Vec<PathBuf> = self
            .files()
            .into_iter()
            .filter(|file| file.path != path && self.import_targets(file).iter().any(|t| t == path))
            .map(|file| file.path.clone())
            .collect();
        importers.sort();
        importers
    }

    /// The files the imports of `file` resolve to (the module, and for `from m import x` /
    /// `use m::x` also the submodule `m.x` when there is one).
    pub fn import_targets(&self, file: &FileIndex) -> Arc<Vec<PathBuf>> {
        let generation = self.file_set_generation.load(Ordering::SeqCst);
        if let Some(cached) = self.resolve_cache.import_targets.get(&file.path)
            && cached.0 == generation
            && cached.1 == file.content_hash
        {
            return cached.2.clone();
        }
        let separator = file.lang.path_separator();
        let mut targets: Vec<PathBuf> = Vec::new();
        for import in &file.imports {
            targets.extend(self.resolve_module(&file.path, &import.module));
            if let Some(name) = &import.name {
                let joined = if import.module.ends_with('.') {
                    format!("{}{name}", import.module)
                } else {
                    format!("{}{separator}{name}", import.module)
                };
                targets.extend(self.resolve_module(&file.path, &joined));
            }
        }
        targets.sort();
        targets.dedup();
        let targets = Arc::new(targets);
        self.resolve_cache.import_targets.insert(
            file.path.clone(),
            (generation, file.content_hash, targets.clone()),
        );
        targets
    }

    /// The definitions the identifier at `byte_offset` refers to: the definition itself when
    /// the offset is on a definition's name; for `self.x`, the members of the enclosing class
    /// or impl; else the nearest enclosing scope of the same file, then the file's imports,
    /// then the whole workspace.
    pub fn goto_definition(&self, file: &FileIndex, byte_offset: usize) -> Vec<SymbolRef> {
        // SymbolRefs need an Arc; reuse the indexed one when it is this very version.
        let file = match self.file(&file.path) {
            Some(indexed) if indexed.content_hash == file.content_hash => indexed,
            _ => Arc::new(file.clone()),
        };
        let Some((start, end)) = identifier_at(&file.text, byte_offset) else {
            return Vec::new();
        };
        let name = &file.text[start..end];
        let to_ref = |index: usize| SymbolRef {
            file: file.clone(),
            index,
        };

        if let Some(index) = file
            .symbols
            .iter()
            .position(|symbol| symbol.name_span.start_byte == start)
        {
            return vec![to_ref(index)];
        }

        let before = file.text[..start].trim_end_matches([' ', '\t']);
        let receiver = before.strip_suffix('.');
        if let Some(receiver) = receiver {
            let receiver_word = receiver
                .rsplit(|c: char| !is_identifier_char(c))
                .next()
                .unwrap_or("");
            if receiver_word == "self" {
                let members = self.members_of_enclosing_type(&file, start, name);
                if !members.is_empty() {
                    return members;
                }
            }
        }

        if receiver.is_none() {
            // Innermost scope first: definitions whose parent encloses the offset.
            let mut best: Option<(usize, Vec<usize>)> = None;
            for (index, symbol) in file.symbols.iter().enumerate() {
                if *symbol.name != *name || symbol.kind == SymbolKind::Impl {
                    continue;
                }
                let depth = match symbol.parent {
                    None => 0,
                    Some(parent) => {
                        let span = file.symbols[parent].span;
                        if !(span.start_byte..span.end_byte).contains(&start) {
                            continue;
                        }
                        depth_of(&file, parent) + 1
                    }
                };
                match &mut best {
                    Some((best_depth, indices)) if *best_depth == depth => indices.push(index),
                    Some((best_depth, _)) if *best_depth > depth => {}
                    _ => best = Some((depth, vec![index])),
                }
            }
            if let Some((_, indices)) = best {
                return indices.into_iter().map(to_ref).collect();
            }
            let imported = self.resolve_imported_name(&file, name, |_| true);
            if !imported.is_empty() {
                return imported;
            }
        }

        let mut everywhere: Vec<SymbolRef> = self
            .definitions(name)
            .into_iter()
            .filter(|r| r.symbol().kind != SymbolKind::Impl)
            .collect();
        if receiver.is_some() {
            // After a dot, members are far likelier than top-level names.
            let members: Vec<SymbolRef> = everywhere
                .iter()
                .filter(|r| r.symbol().parent.is_some())
                .cloned()
                .collect();
            if !members.is_empty() {
                everywhere = members;
            }
        }
        let imported = self.import_targets(&file);
        everywhere.sort_by_key(|r| {
            (
                r.file.path != file.path,
                !imported.contains(&r.file.path),
                r.file.path.clone(),
                r.index,
            )
        });
        everywhere
    }

    /// Members named `name` of the class / impl around `offset`; for a Rust impl, the members
    /// of every impl of the type and the type's fields.
    fn members_of_enclosing_type(
        &self,
        file: &Arc<FileIndex>,
        offset: usize,
        name: &str,
    ) -> Vec<SymbolRef> {
        let enclosing_type = file
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, symbol)| {
                matches!(
                    symbol.kind,
                    SymbolKind::Class | SymbolKind::Impl | SymbolKind::Trait
                ) && (symbol.span.start_byte..symbol.span.end_byte).contains(&offset)
            })
            .max_by_key(|(_, symbol)| symbol.span.start_byte);
        let Some((type_index, type_symbol)) = enclosing_type else {
            return Vec::new();
        };
        let local: Vec<SymbolRef> = file
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, symbol)| symbol.parent == Some(type_index) && *symbol.name == *name)
            .map(|(index, _)| SymbolRef {
                file: file.clone(),
                index,
            })
            .collect();
        if !local.is_empty() {
            return local;
        }
        match file.lang {
            Lang::Python => {
                let class = SymbolRef {
                    file: file.clone(),
                    index: type_index,
                };
                self.inherited_members(&class, name, &mut HashSet::new())
            }
            Lang::Rust => self
                .definitions(name)
                .into_iter()
                .filter(|r| r.symbol().container.as_deref() == Some(&*type_symbol.name))
                .collect(),
        }
    }

    /// Members named `name` of the base classes of the Python class `class`, nearest base
    /// first, through the bases' own bases (each class visited once).
    fn inherited_members(
        &self,
        class: &SymbolRef,
        name: &str,
        visited: &mut HashSet<(PathBuf, usize)>,
    ) -> Vec<SymbolRef> {
        if visited.len() > 32 || !visited.insert((class.file.path.clone(), class.index)) {
            return Vec::new();
        }
        for base in python_bases(&class.symbol().signature) {
            for base_class in self.resolve_class(&class.file, base) {
                let file = &base_class.file;
                let found: Vec<SymbolRef> = members(file, Some(base_class.index))
                    .filter(|&index| *file.symbols[index].name == *name)
                    .map(|index| SymbolRef {
                        file: base_class.file.clone(),
                        index,
                    })
                    .collect();
                if !found.is_empty() {
                    return found;
                }
                let inherited = self.inherited_members(&base_class, name, visited);
                if !inherited.is_empty() {
                    return inherited;
                }
            }
        }
        Vec::new()
    }

    /// What the first import of `file` that binds `name` (not a glob) resolves to, among the
    /// definitions `keep` accepts; imports that resolve to nothing kept are passed over.
    fn resolve_imported_name(
        &self,
        file: &FileIndex,
        name: &str,
        keep: impl Fn(&SymbolRef) -> bool,
    ) -> Vec<SymbolRef> {
        for import in &file.imports {
            if import.local_name() == name && !import.glob {
                let found: Vec<SymbolRef> = self
                    .resolve_import(&file.path, import)
                    .into_iter()
                    .filter(&keep)
                    .collect();
                if !found.is_empty() {
                    return found;
                }
            }
        }
        Vec::new()
    }

    /// The classes a name written in `file` refers to: defined in the file, imported, or
    /// (failing both) defined once anywhere in the workspace.
    fn resolve_class(&self, file: &Arc<FileIndex>, name: &str) -> Vec<SymbolRef> {
        let is_class = |r: &SymbolRef| r.symbol().kind == SymbolKind::Class;
        let local: Vec<SymbolRef> = top_level(file)
            .filter(|&index| *file.symbols[index].name == *name)
            .map(|index| SymbolRef {
                file: file.clone(),
                index,
            })
            .filter(is_class)
            .collect();
        if !local.is_empty() {
            return local;
        }
        let imported = self.resolve_imported_name(file, name, is_class);
        if !imported.is_empty() {
            return imported;
        }
        let everywhere: Vec<SymbolRef> = self
            .definitions(name)
            .into_iter()
            .filter(is_class)
            .collect();
        if everywhere.len() == 1 {
            everywhere
        } else {
            Vec::new()
        }
    }

    fn resolve_python_module(&self, from: &Path, module: &str) -> Vec<PathBuf> {
        let dots = module.len() - module.trim_start_matches('.').len();
        let rest = &module[dots..];
        if dots > 0 {
            let mut base = from.parent();
            for _ in 1..dots {
                base = base.and_then(Path::parent);
            }
            let Some(mut dir) = base.map(Path::to_path_buf) else {
                return Vec::new();
            };
            if rest.is_empty() {
                return self.first_indexed(&[dir.join("__init__.py"), dir.join("__init__.pyi")]);
            }
            let parts: Vec<&str> = rest.split('.').collect();
            let (last, parents) = parts.split_last().unwrap_or((&"", &[]));
            for part in parents {
                dir.push(part);
            }
            return self.python_candidates(&dir, last);
        }
        let table = self.python_module_table();
        if let Some(files) = table.get(module) {
            return files.clone();
        }
        // A script's own directory is on `sys.path`: `import helper` beside it.
        match from.parent() {
            Some(dir) if !module.contains('.') => self.python_candidates(dir, module),
            _ => Vec::new(),
        }
    }

    fn python_candidates(&self, dir: &Path, name: &str) -> Vec<PathBuf> {
        self.first_indexed(&[
            dir.join(format!("{name}.py")),
            dir.join(format!("{name}.pyi")),
            dir.join(name).join("__init__.py"),
            dir.join(name).join("__init__.pyi"),
        ])
    }

    fn first_indexed(&self, candidates: &[PathBuf]) -> Vec<PathBuf> {
        candidates
            .iter()
            .find(|path| self.files.contains_key(path.as_path()))
            .cloned()
            .into_iter()
            .collect()
    }

    fn python_module_table(&self) -> ModuleTable {
        let generation = self.file_set_generation.load(Ordering::SeqCst);
        if let Ok(cache) = self.resolve_cache.python_modules.read()
            && let Some((cached, table)) = cache.as_ref()
            && *cached == generation
        {
            return table.clone();
        }
        let table = Arc::new(self.build_python_module_table());
        if let Ok(mut cache) = self.resolve_cache.python_modules.write() {
            *cache = Some((generation, table.clone()));
        }
        table
    }

    fn build_python_module_table(&self) -> HashMap<String, Vec<PathBuf>> {
        let paths: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|entry| entry.value().lang == Lang::Python)
            .map(|entry| entry.key().clone())
            .collect();
        let mut bases: Vec<PathBuf> = Vec::new();
        for root in &self.roots() {
            bases.push(root.clone());
            bases.push(root.join("src"));
        }
        let mut table: HashMap<String, Vec<PathBuf>> = HashMap::new();
        let mut add = |name: String, path: &Path| {
            let entry = table.entry(name).or_default();
            if !entry.iter().any(|p| p == path) {
                entry.push(path.to_path_buf());
            }
        };
        for path in &paths {
            for base in &bases {
                if let Ok(relative) = path.strip_prefix(base)
                    && let Some(name) = python_module_name(relative)
                {
                    add(name, path);
                }
            }
            // The top of the package chain: the first directory upwards without `__init__`.
            let mut top = path.parent();
            while let Some(dir) = top {
                let is_package = self.files.contains_key(&dir.join("__init__.py"))
                    || self.files.contains_key(&dir.join("__init__.pyi"));
                if !is_package {
                    break;
                }
                top = dir.parent();
            }
            if let Some(top) = top
                && let Ok(relative) = path.strip_prefix(top)
                && let Some(name) = python_module_name(relative)
            {
                add(name, path);
            }
        }
        // `.py` before `.pyi` for the same module, for a stable order.
        for files in table.values_mut() {
            files.sort_by_key(|path| path.extension().is_some_and(|ext| ext == "pyi"));
        }
        table
    }

    fn resolve_rust_module(&self, from: &Path, module: &str) -> Option<PathBuf> {
        let mut segments = module.split("::").filter(|s| !s.is_empty());
        let first = segments.next()?;
        let mut current = match first {
            "crate" | "$crate" => self.rust_crate_root(from)?,
            "self" => from.to_path_buf(),
            "super" => self.rust_parent_module(from)?,
            name => match self.rust_child_module(from, name) {
                Some(child) => child,
                None => self.rust_workspace_crate(from, name)?,
            },
        };
        for segment in segments {
            current = match segment {
                "super" => self.rust_parent_module(&current)?,
                "self" => current,
                name => self.rust_child_module(&current, name)?,
            };
        }
        Some(current)
    }

    /// The crate root (`src/lib.rs`, else `src/main.rs`) of the crate that holds `from`.
    fn rust_crate_root(&self, from: &Path) -> Option<PathBuf> {
        let crate_dir = self.cargo_dir(from.parent()?)?;
        let src = crate_dir.join("src");
        self.first_indexed(&[src.join("lib.rs"), src.join("main.rs")])
            .into_iter()
            .next()
    }

    /// The file of the child module `name` of the module in `file`: `name.rs` / `name/mod.rs`
    /// in the module's directory, or `file` itself when it declares `mod name { }` inline.
    fn rust_child_module(&self, file: &Path, name: &str) -> Option<PathBuf> {
        let dir = rust_module_dir(file)?;
        let found = self.first_indexed(&[
            dir.join(format!("{name}.rs")),
            dir.join(name).join("mod.rs"),
        ]);
        if let Some(found) = found.into_iter().next() {
            return Some(found);
        }
        let indexed = self.file(file)?;
        indexed
            .symbols
            .iter()
            .any(|symbol| {
                symbol.kind == SymbolKind::Module
                    && *symbol.name == *name
                    && indexed
                        .text
                        .get(symbol.span.start_byte..symbol.span.end_byte)
                        .is_some_and(|text| text.ends_with('}'))
            })
            .then(|| file.to_path_buf())
    }

    /// The module file that declares the module in `file`.
    fn rust_parent_module(&self, file: &Path) -> Option<PathBuf> {
        let stem = file.file_stem()?.to_str()?;
        let dir = file.parent()?;
        if matches!(stem, "lib" | "main") && dir.file_name().is_some_and(|name| name == "src") {
            return None;
        }
        // `a/b.rs` and `a/b/mod.rs` are both declared by the module owning directory `a/`.
        let owner_dir = if stem == "mod" { dir.parent()? } else { dir };
        let mut candidates = vec![
            owner_dir.join("mod.rs"),
            owner_dir.join("lib.rs"),
            owner_dir.join("main.rs"),
        ];
        if let (Some(parent), Some(name)) = (owner_dir.parent(), owner_dir.file_name()) {
            let mut file_name = name.to_os_string();
            file_name.push(".rs");
            candidates.push(parent.join(file_name));
        }
        self.first_indexed(&candidates).into_iter().next()
    }

    /// The root file of a crate of the workspace named `name` (`foo_bar` for `foo-bar`), or of
    /// the current crate when it is named so.
    fn rust_workspace_crate(&self, from: &Path, name: &str) -> Option<PathBuf> {
        let own_dir = from.parent().and_then(|dir| self.cargo_dir(dir));
        let mut crate_dirs: Vec<PathBuf> = own_dir.into_iter().collect();
        for entry in self.files.iter() {
            if entry.value().lang != Lang::Rust {
                continue;
            }
            if let Some(dir) = entry.key().parent().and_then(|dir| self.cargo_dir(dir))
                && !crate_dirs.contains(&dir)
            {
                crate_dirs.push(dir);
            }
        }
        let crate_dir = crate_dirs
            .into_iter()
            .find(|dir| self.crate_name(dir).as_deref() == Some(name))?;
        self.rust_crate_root(&crate_dir.join("src").join("lib.rs"))
    }

    fn cargo_dir(&self, dir: &Path) -> Option<PathBuf> {
        if let Some(cached) = self.resolve_cache.cargo_dirs.get(dir) {
            return cached.clone();
        }
        let found = dir
            .ancestors()
            .find(|ancestor| ancestor.join("Cargo.toml").is_file())
            .map(Path::to_path_buf);
        self.resolve_cache
            .cargo_dirs
            .insert(dir.to_path_buf(), found.clone());
        found
    }

    fn crate_name(&self, crate_dir: &Path) -> Option<String> {
        if let Some(cached) = self.resolve_cache.crate_names.get(crate_dir) {
            return cached.clone();
        }
        let name = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|manifest| {
                let package = manifest.get("package")?.as_table()?;
                Some(package.get("name")?.as_str()?.replace('-', "_"))
            });
        self.resolve_cache
            .crate_names
            .insert(crate_dir.to_path_buf(), name.clone());
        name
    }
}

/// The top-level definitions of a file (no parent; impls are not names).
fn top_level(file: &FileIndex) -> impl Iterator<Item = usize> + '_ {
    members(file, None)
}

/// The definitions directly inside `scope` (a symbol index; None: the top level).
fn members(file: &FileIndex, scope: Option<usize>) -> impl Iterator<Item = usize> + '_ {
    file.symbols
        .iter()
        .enumerate()
        .filter(move |(_, symbol)| symbol.parent == scope && symbol.kind != SymbolKind::Impl)
        .map(|(index, _)| index)
}

/// For a Rust module path that ends in an inline `mod name { }` of `file`, that module's
/// symbol: names are then looked up inside it rather than at the file's top level.
fn inline_module_scope(file: &FileIndex, module: &str) -> Option<usize> {
    if file.lang != Lang::Rust {
        return None;
    }
    let last = module.rsplit("::").next()?;
    file.symbols.iter().position(|symbol| {
        symbol.kind == SymbolKind::Module
            && *symbol.name == *last
            && file
                .text
                .get(symbol.span.start_byte..symbol.span.end_byte)
                .is_some_and(|text| text.ends_with('}'))
    })
}

fn depth_of(file: &FileIndex, mut index: usize) -> usize {
    let mut depth = 0;
    while let Some(parent) = file.symbols.get(index).and_then(|symbol| symbol.parent) {
        depth += 1;
        index = parent;
    }
    depth
}

/// `pkg/sub/mod.py` → `pkg.sub.mod`; `pkg/__init__.py` → `pkg`.
fn python_module_name(relative: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in relative.components() {
        parts.push(component.as_os_str().to_str()?);
    }
    let file = parts.pop()?;
    let stem = file
        .strip_suffix(".py")
        .or_else(|| file.strip_suffix(".pyi"))?;
    if stem != "__init__" {
        parts.push(stem);
    }
    if parts.is_empty()
        || parts
            .iter()
            .any(|part| part.contains('.') || part.is_empty())
    {
        return None;
    }
    Some(parts.join("."))
}

/// The directory holding the child modules of the module in `file`.
fn rust_module_dir(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    let stem = file.file_stem()?.to_str()?;
    Some(match stem {
        "mod" | "lib" | "main" => dir.to_path_buf(),
        _ => dir.join(stem),
    })
}

pub(crate) fn is_identifier_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The byte range of the identifier touching `offset` (the cursor may be right after it).
pub(crate) fn identifier_at(text: &str, offset: usize) -> Option<(usize, usize)> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_identifier_char(c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|&(_, c)| !is_identifier_char(c))
        .map_or(text.len(), |(i, _)| offset + i);
    let word = &text[start..end];
    let first = word.chars().next()?;
    (!first.is_numeric()).then_some((start, end))
}

/// The base class names of a Python class header (`class A(B, mod.C, metaclass=M):` gives
/// `B`, `C`): the last segment of each, keyword arguments and generics left out.
pub(crate) fn python_bases(signature: &str) -> Vec<&str> {
    let Some(open) = signature.find('(') else {
        return Vec::new();
    };
    let Some(close) = signature.rfind(')') else {
        return Vec::new();
    };
    if close <= open {
        return Vec::new();
    }
    signature[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|base| !base.is_empty() && !base.contains('='))
        .map(|base| base.split('[').next().unwrap_or(base))
        .filter_map(|base| base.rsplit('.').next())
        .filter(|base| base.chars().all(is_identifier_char) && !base.is_empty())
        .collect()
}
