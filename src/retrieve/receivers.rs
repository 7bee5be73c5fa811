//! What the receivers in scope at the cursor denote, as the complete list of their members:
//! `self` (the enclosing class or impl), imported modules and classes, the buffer's own
//! classes, and locals and parameters whose type the code states (`v = Vector(…)`,
//! `v: Vector`, `let v = Vector::new(…)`). Index-guided decoding constrains the name written
//! after `receiver.` / `Type::` to these lists, so a list is given only where the workspace
//! holds *every* member: a class with a base from outside the workspace, a module with a `*`
//! import or a Rust type with a trait impl from outside gets none.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::rank::focus;
use super::table::{Binding, DefId, SymbolTable, is_package_file};
use crate::index::{FileIndex, SymbolKind, python_bases};
use crate::lang::Lang;

/// Receiver text as written (`self`, `v`, `os.path`, `self.session`, `Vector`) → every member
/// name, sorted.
pub type Receivers = HashMap<String, Arc<[String]>>;

/// Members every Python object has that code calls through a class (`Base.__init__(self)`).
/// The rest of `object`'s dunders are left out on purpose: allowed, they give a model that
/// was refused a made-up name an easy way out (`ledger.__dict__.get(…)`).
const PYTHON_OBJECT: &[&str] = &["__init__"];

/// Methods of the traits Rust code derives or implements from `std` without naming them in
/// an impl the index sees (`#[derive]`, blanket impls).
const RUST_COMMON: &[&str] = &[
    "as_ref",
    "borrow",
    "clone",
    "clone_from",
    "cmp",
    "default",
    "eq",
    "fmt",
    "from",
    "hash",
    "into",
    "ne",
    "partial_cmp",
    "to_owned",
    "to_string",
    "try_from",
    "try_into",
    "type_id",
];

/// std traits whose methods [`RUST_COMMON`] covers: an impl of one of these keeps a type's
/// member list complete. Any other outside trait (Iterator, Deref, Read…) brings provided
/// methods the index cannot see.
const RUST_KNOWN_TRAITS: &[&str] = &[
    "Clone",
    "Copy",
    "Debug",
    "Default",
    "Display",
    "Drop",
    "Eq",
    "Error",
    "From",
    "FromStr",
    "Hash",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Send",
    "Sync",
    "TryFrom",
];

/// How deep base classes and re-exports are followed.
const MAX_DEPTH: usize = 8;

/// The buffer analyzed as the index analyzes files (with `self.x` attributes and struct
/// fields as members, which retrieval's own parse leaves out).
pub fn analyze(path: &Path, text: &str) -> Option<FileIndex> {
    let lang = Lang::from_path(path)?;
    let tree = crate::lang::parse(lang, text, None)?;
    Some(crate::lang::analyze(path, lang, text, &tree))
}

/// The receivers in scope at `cursor` of `buffer` (the editor's text, see [`analyze`]).
pub fn receivers(table: &SymbolTable, buffer: &FileIndex, cursor: usize) -> Receivers {
    let mut out = receivers_and_types(table, buffer, cursor);
    // An instance is not called through `__init__`: only a class is (`Base.__init__(self)`).
    for (key, members) in out.iter_mut() {
        let is_class = key.starts_with(char::is_uppercase);
        if !is_class && members.iter().any(|m| m.starts_with("__")) {
            *members = members
                .iter()
                .filter(|m| !m.starts_with("__"))
                .cloned()
                .collect();
        }
    }
    out
}

fn receivers_and_types(table: &SymbolTable, buffer: &FileIndex, cursor: usize) -> Receivers {
    let mut out = Receivers::new();
    let resolver = Resolver {
        table,
        buffer,
        module: table.module_for(&buffer.path, buffer.lang),
        is_package: is_package_file(&buffer.path),
    };
    let focus = focus(buffer, cursor);
    let text: &str = &buffer.text;
    let cursor = cursor.min(text.len());

    // `self` / `Self` / `cls`: the enclosing class or impl.
    if let Some(container) = focus.container_symbol {
        let symbol = &buffer.symbols[container];
        let members = match symbol.kind {
            SymbolKind::Class => resolver.class_members(Place::Buffer, container, 0),
            SymbolKind::Impl | SymbolKind::Trait => resolver.rust_type_members(&symbol.name),
            _ => None,
        };
        if let Some(members) = members {
            let keys: &[&str] = match buffer.lang {
                Lang::Python => &["self", "cls"],
                Lang::Rust => &["self", "Self"],
            };
            for key in keys {
                out.insert(key.to_string(), members.clone());
            }
            if buffer.lang == Lang::Python {
                resolver.self_fields(container, &mut out);
            }
        }
    }

    // Imported modules and types.
    for import in &buffer.imports {
        if import.glob {
            continue;
        }
        let local = import.local_name();
        if local.is_empty() || out.contains_key(local) {
            continue;
        }
        let binding =
            table.resolve_import(import, &resolver.module, buffer.lang, resolver.is_package);
        let members = match binding {
            Some(Binding::Module(file)) => resolver.module_members(file),
            Some(Binding::Defs(defs)) if defs.len() == 1 => resolver.type_members(defs[0]),
            _ => None,
        };
        if let Some(members) = members {
            out.insert(local.to_string(), members);
        }
    }

    // The buffer's own top-level types.
    for (index, symbol) in buffer.symbols.iter().enumerate() {
        if symbol.parent.is_some() || out.contains_key(&*symbol.name) {
            continue;
        }
        let members = match symbol.kind {
            SymbolKind::Class => resolver.class_members(Place::Buffer, index, 0),
            SymbolKind::Struct | SymbolKind::Enum => resolver.rust_type_members(&symbol.name),
            _ => None,
        };
        if let Some(members) = members {
            out.insert(symbol.name.to_string(), members);
        }
    }

    // Locals and parameters of the focus function whose type is written out.
    let start = focus.function.0.min(cursor);
    for (name, type_name) in typed_locals(&text[start..cursor], buffer.lang) {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(members) = resolver.named_type_members(&type_name, &out) {
            out.insert(name, members);
        }
    }
    out
}

/// Where a class definition lives: the buffer (not in the table while edited) or a table file.
#[derive(Clone, Copy)]
enum Place {
    Buffer,
    Table(usize),
}

struct Resolver<'a> {
    table: &'a SymbolTable,
    buffer: &'a FileIndex,
    module: String,
    is_package: bool,
}

impl Resolver<'_> {
    fn file(&self, place: Place) -> &FileIndex {
        match place {
            Place::Buffer => self.buffer,
            Place::Table(number) => &self.table.files[number],
        }
    }

    /// Members of a Python class, through its bases; None when a base is not in the workspace.
    fn class_members(&self, place: Place, class: usize, depth: usize) -> Option<Arc<[String]>> {
        let mut names = BTreeSet::new();
        self.collect_class(place, class, depth, &mut names)?;
        names.extend(PYTHON_OBJECT.iter().map(|s| s.to_string()));
        Some(names.into_iter().collect())
    }

    fn collect_class(
        &self,
        place: Place,
        class: usize,
        depth: usize,
        names: &mut BTreeSet<String>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let file = self.file(place);
        let symbol = file.symbols.get(class)?;
        for member in file.symbols.iter().filter(|s| s.parent == Some(class)) {
            names.insert(member.name.to_string());
        }
        for base in python_bases(&symbol.signature) {
            if base == "object" {
                continue;
            }
            let (base_place, base_class) = self.python_class_named(place, base)?;
            self.collect_class(base_place, base_class, depth + 1, names)?;
        }
        Some(())
    }

    /// The class `name` written in the file at `place` refers to: defined there, imported
    /// there, or defined once in the workspace.
    fn python_class_named(&self, place: Place, name: &str) -> Option<(Place, usize)> {
        let file = self.file(place);
        let is_class = |f: &FileIndex, i: usize| f.symbols[i].kind == SymbolKind::Class;
        if let Some(index) = file
            .symbols
            .iter()
            .position(|s| s.parent.is_none() && *s.name == *name && s.kind == SymbolKind::Class)
        {
            return Some((place, index));
        }
        let from = match place {
            Place::Buffer => self.module.clone(),
            Place::Table(number) => self
                .table
                .module_for(&self.table.files[number].path, file.lang),
        };
        for import in file
            .imports
            .iter()
            .filter(|i| i.local_name() == name && !i.glob)
        {
            if let Some(Binding::Defs(defs)) =
                self.table
                    .resolve_import(import, &from, file.lang, is_package_file(&file.path))
            {
                let classes: Vec<DefId> = defs
                    .into_iter()
                    .filter(|&(f, i)| is_class(&self.table.files[f], i))
                    .collect();
                if let [(f, i)] = classes[..] {
                    return Some((Place::Table(f), i));
                }
            }
        }
        let everywhere: Vec<DefId> = self
            .table
            .definitions(name)
            .iter()
            .copied()
            .filter(|&(f, i)| is_class(&self.table.files[f], i))
            .collect();
        match everywhere[..] {
            [(f, i)] => Some((Place::Table(f), i)),
            _ => None,
        }
    }

    /// Members of the definition an import names, when it is a type.
    fn type_members(&self, (file, index): DefId) -> Option<Arc<[String]>> {
        let symbol = &self.table.files[file].symbols[index];
        match symbol.kind {
            SymbolKind::Class => self.class_members(Place::Table(file), index, 0),
            SymbolKind::Struct | SymbolKind::Enum | SymbolKind::Trait => {
                self.rust_type_members(&symbol.name)
            }
            _ => None,
        }
    }

    /// A module's names: its top-level definitions and what its imports bind; for a package,
    /// its submodules too. None when it imports `*`.
    fn module_members(&self, file: usize) -> Option<Arc<[String]>> {
        let index = &self.table.files[file];
        if index.imports.iter().any(|i| i.glob) {
            return None;
        }
        let mut names: BTreeSet<String> = index
            .symbols
            .iter()
            .filter(|s| s.parent.is_none() && s.kind != SymbolKind::Impl)
            .map(|s| s.name.to_string())
            .collect();
        names.extend(index.imports.iter().map(|i| i.local_name().to_string()));
        if is_package_file(&index.path)
            && let Some(dir) = index.path.parent()
        {
            for other in &self.table.files {
                let Some(parent) = other.path.parent() else {
                    continue;
                };
                let sub = if parent == dir {
                    other.path.file_stem()
                } else if parent.parent() == Some(dir) && is_package_file(&other.path) {
                    parent.file_name()
                } else {
                    None
                };
                if let Some(sub) = sub.and_then(|s| s.to_str()) {
                    names.insert(sub.to_string());
                }
            }
            names.remove("__init__");
            names.remove("mod");
        }
        if index.lang == Lang::Python {
            names.extend(
                ["__name__", "__file__", "__doc__", "__all__", "__path__"].map(String::from),
            );
        }
        Some(names.into_iter().collect())
    }

    /// Fields, variants, associated items and methods of the Rust type `name`, when no trait
    /// from outside the workspace (beyond the common ones) is implemented for it.
    fn rust_type_members(&self, name: &str) -> Option<Arc<[String]>> {
        let mut names: BTreeSet<String> = RUST_COMMON.iter().map(|s| s.to_string()).collect();
        // The buffer replaces its own indexed copy.
        let files = self
            .table
            .files
            .iter()
            .map(|f| &**f)
            .filter(|f| f.path != self.buffer.path)
            .chain(std::iter::once(self.buffer));
        let mut found = false;
        for file in files {
            if file.lang != Lang::Rust {
                continue;
            }
            for (index, symbol) in file.symbols.iter().enumerate() {
                let is_type = matches!(
                    symbol.kind,
                    SymbolKind::Struct | SymbolKind::Enum | SymbolKind::Trait
                ) && *symbol.name == *name;
                if is_type {
                    found = true;
                    for member in file.symbols.iter().filter(|s| s.parent == Some(index)) {
                        names.insert(member.name.to_string());
                    }
                }
                if symbol.kind == SymbolKind::Impl && *symbol.name == *name {
                    found = true;
                    if let Some(trait_name) = impl_trait(&symbol.signature) {
                        let known_std = RUST_KNOWN_TRAITS.contains(&trait_name);
                        let in_workspace = !self.table.members(trait_name).is_empty();
                        if in_workspace {
                            for &(f, i) in self.table.members(trait_name) {
                                names.insert(self.table.files[f].symbols[i].name.to_string());
                            }
                        } else if !known_std {
                            return None;
                        }
                    }
                    for member in file.symbols.iter().filter(|s| s.parent == Some(index)) {
                        names.insert(member.name.to_string());
                    }
                }
            }
        }
        found.then(|| names.into_iter().collect())
    }

    /// `self.x` for the fields of `class` assigned a class instance (`self.x = Session()`).
    fn self_fields(&self, class: usize, out: &mut Receivers) {
        let text: &str = &self.buffer.text;
        for field in self
            .buffer
            .symbols
            .iter()
            .filter(|s| s.parent == Some(class) && s.kind == SymbolKind::Field)
        {
            let line_end = text[field.span.start_byte..]
                .find('\n')
                .map_or(text.len(), |i| field.span.start_byte + i);
            let statement = &text[field.span.start_byte.min(line_end)..line_end];
            let Some((_, type_name)) = typed_binding(statement, Lang::Python) else {
                continue;
            };
            if let Some(members) = self.named_type_members(&type_name, out) {
                out.insert(format!("self.{}", field.name), members);
            }
        }
    }

    /// Members of the type written `type_name` in the buffer (`Vector`, `geometry.Vector`,
    /// `Vec3`), resolved through what is already known.
    fn named_type_members(&self, type_name: &str, known: &Receivers) -> Option<Arc<[String]>> {
        match self.buffer.lang {
            Lang::Python => {
                if let Some((module, class)) = type_name.rsplit_once('.') {
                    // `mod.Class`: the module must be known and hold the class.
                    let members = known.get(module)?;
                    members.binary_search_by(|m| m.as_str().cmp(class)).ok()?;
                    let (place, index) = self.python_class_named(Place::Buffer, class)?;
                    return self.class_members(place, index, 0);
                }
                let (place, index) = self.python_class_named(Place::Buffer, type_name)?;
                self.class_members(place, index, 0)
            }
            Lang::Rust => {
                let name = type_name.rsplit("::").next().unwrap_or(type_name);
                self.rust_type_members(name)
            }
        }
    }
}

/// `(name, type)` for each local binding or parameter in `code` whose type is written out.
fn typed_locals(code: &str, lang: Lang) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in code.lines() {
        if let Some(binding) = typed_binding(line, lang) {
            out.push(binding);
        }
        // Parameters: `name: Type` inside the header's parentheses.
        let header = match lang {
            Lang::Python => line.trim_start().starts_with("def ") || line.contains("async def "),
            Lang::Rust => line.contains("fn "),
        };
        if header && let Some(open) = line.find('(') {
            let params = &line[open + 1..];
            for param in params.split(',') {
                let Some((name, ty)) = param.split_once(':') else {
                    continue;
                };
                let name = name.trim().trim_start_matches("mut ").trim();
                let ty = ty
                    .trim()
                    .trim_start_matches('&')
                    .trim_start_matches("mut ")
                    .trim_start();
                let end = ty
                    .find(|c: char| {
                        !(c.is_alphanumeric()
                            || c == '_'
                            || c == '.'
                            || (c == ':' && lang == Lang::Rust))
                    })
                    .unwrap_or(ty.len());
                let ty = ty[..end].trim_end_matches([':', '.']);
                if is_identifier(name) && is_type_path(ty) {
                    out.push((name.to_string(), ty.to_string()));
                }
            }
        }
    }
    out
}

/// `x = Type(…)` / `x: Type = …` (Python), `let x = Type::new(…)` / `let x: Type = …` (Rust).
fn typed_binding(line: &str, lang: Lang) -> Option<(String, String)> {
    let line = line.trim();
    let line = match lang {
        Lang::Python => line,
        Lang::Rust => line.strip_prefix("let ")?.trim_start_matches("mut "),
    };
    let (left, right) = line.split_once('=')?;
    if right.starts_with('=') || left.ends_with(['!', '<', '>']) {
        return None;
    }
    let (name, annotation) = match left.split_once(':') {
        Some((name, ty)) => (name.trim(), Some(ty.trim())),
        None => (left.trim(), None),
    };
    let name = name.strip_prefix("self.").unwrap_or(name);
    if !is_identifier(name) {
        return None;
    }
    if let Some(ty) = annotation
        && is_type_path(ty)
    {
        return Some((name.to_string(), ty.to_string()));
    }
    let right = right.trim();
    let callee = &right[..right.find('(')?];
    let callee = match lang {
        Lang::Python => callee,
        // `Type::new(…)`, `Type::from(…)`: the type is the path before the last segment.
        Lang::Rust => callee.rsplit_once("::").map(|(ty, _)| ty)?,
    };
    let last = callee.rsplit(['.', ':']).next().unwrap_or(callee);
    let looks_like_type = last.chars().next().is_some_and(char::is_uppercase);
    (is_type_path(callee) && looks_like_type).then(|| (name.to_string(), callee.to_string()))
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `Vector`, `geometry.Vector`, `crate::geo::Vector`.
fn is_type_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .split(['.', ':'])
            .filter(|s| !s.is_empty())
            .all(is_identifier)
}

/// The trait of `impl<T> Trait<X> for Type` → `Trait`; None for an inherent impl.
fn impl_trait(signature: &str) -> Option<&str> {
    let (head, _) = signature.split_once(" for ")?;
    let head = head.trim_start_matches("unsafe ").strip_prefix("impl")?;
    let head = if head.starts_with('<') {
        let mut depth = 0usize;
        let mut end = head.len();
        for (i, c) in head.char_indices() {
            match c {
                '<' => depth += 1,
                '>' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        &head[end..]
    } else {
        head
    };
    let path = head.trim().split('<').next()?.trim();
    path.rsplit("::").next().filter(|s| !s.is_empty())
}

/// Names that the buffer binds, imports or defines, for the soft bias at a bare identifier.
pub fn names_in_scope(buffer: &FileIndex) -> Vec<String> {
    let mut names: HashSet<String> = HashSet::new();
    for import in &buffer.imports {
        names.insert(import.local_name().to_string());
    }
    for symbol in &buffer.symbols {
        names.insert(symbol.name.to_string());
    }
    for reference in &buffer.references {
        names.insert(reference.name.to_string());
    }
    let mut names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Builds a table from `(path, source)` files and returns the receivers at `$0` in the
    /// first file, which plays the buffer.
    fn receivers_at(files: &[(&str, &str)]) -> Receivers {
        let root = PathBuf::from("/ws");
        let (buffer_path, buffer_source) = files[0];
        let cursor = buffer_source.find("$0").expect("fixture has $0");
        let buffer_text = buffer_source.replace("$0", "");
        let indexed = files
            .iter()
            .map(|(path, source)| {
                Arc::new(analyze(&root.join(path), &source.replace("$0", "")).expect("parse"))
            })
            .collect();
        let table = SymbolTable::new(indexed);
        let buffer = analyze(&root.join(buffer_path), &buffer_text).expect("parse buffer");
        receivers(&table, &buffer, cursor)
    }

    fn names(receivers: &Receivers, key: &str) -> Vec<String> {
        receivers
            .get(key)
            .map(|m| m.iter().filter(|n| !n.starts_with("__")).cloned().collect())
            .unwrap_or_default()
    }

    const GEOMETRY: &str = "class Vector:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n    def norm(self):\n        return 0\n\n    def scaled(self, k):\n        return Vector(self.x * k, self.y * k)\n";

    #[test]
    fn python_locals_imports_and_self() {
        let report = "from pkg.geometry import Vector\nfrom pkg import geometry\n\nclass Report:\n    def __init__(self):\n        self.origin = Vector(0, 0)\n\n    def total(self, w: Vector):\n        v = Vector(1, 2)\n        u = geometry.Vector(3, 4)\n        $0\n";
        let found = receivers_at(&[
            ("pkg/report.py", report),
            ("pkg/geometry.py", GEOMETRY),
            ("pkg/__init__.py", ""),
        ]);
        let vector = ["norm", "scaled", "x", "y"];
        assert_eq!(names(&found, "v"), vector);
        assert_eq!(names(&found, "u"), vector);
        assert_eq!(names(&found, "w"), vector);
        assert_eq!(names(&found, "Vector"), vector);
        assert_eq!(names(&found, "self.origin"), vector);
        assert_eq!(names(&found, "self"), ["origin", "total"]);
        assert_eq!(names(&found, "geometry"), ["Vector"]);
    }

    #[test]
    fn a_base_from_outside_the_workspace_gives_no_list() {
        let found = receivers_at(&[(
            "m.py",
            "class E(Exception):\n    def f(self):\n        $0\n\nclass B:\n    def g(self): pass\n\nclass C(B):\n    pass\n",
        )]);
        assert!(!found.contains_key("self"), "{found:?}");
        assert!(!found.contains_key("E"));
        assert_eq!(names(&found, "C"), ["g"]);
    }

    #[test]
    fn rust_types_self_and_locals() {
        let lib = "pub struct Vec2 { pub x: f32, pub y: f32 }\nimpl Vec2 {\n    pub fn new(x: f32, y: f32) -> Self { Vec2 { x, y } }\n    pub fn norm(&self) -> f32 { $0 }\n}\npub enum Shape { Dot, Line(u8) }\nfn f(v: &Vec2) { let w = Vec2::new(1.0, 2.0); }\n";
        let found = receivers_at(&[("src/lib.rs", lib)]);
        let mine: Vec<String> = names(&found, "self")
            .into_iter()
            .filter(|n| !RUST_COMMON.contains(&n.as_str()))
            .collect();
        assert_eq!(mine, ["new", "norm", "x", "y"]);
        assert!(names(&found, "Shape").contains(&"Line".to_string()));
        let iter = "struct It;\nimpl Iterator for It { type Item = u8; fn next(&mut self) -> Option<u8> { None } }\nfn g() { $0 }\n";
        let found = receivers_at(&[("src/it.rs", iter)]);
        assert!(
            !found.contains_key("It"),
            "Iterator's provided methods are unknown"
        );
    }

    #[test]
    fn typed_bindings() {
        assert_eq!(
            typed_binding("    v = geometry.Vector(1, 2)", Lang::Python),
            Some(("v".into(), "geometry.Vector".into()))
        );
        assert_eq!(typed_binding("x = compute(1)", Lang::Python), None);
        assert_eq!(typed_binding("if a == B(1):", Lang::Python), None);
        assert_eq!(
            typed_binding("let mut w = Vec2::new(1.0, 2.0);", Lang::Rust),
            Some(("w".into(), "Vec2".into()))
        );
        assert_eq!(
            impl_trait("impl<T: Clone> fmt::Display for S<T>"),
            Some("Display")
        );
        assert_eq!(impl_trait("impl S"), None);
    }
}
