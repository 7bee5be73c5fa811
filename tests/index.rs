//! Integration tests of the workspace index: maps, import resolution, go-to-definition,
//! symbol search and the workspace scan, on tempdir workspaces.

use std::path::{Path, PathBuf};

use pith::index::{IndexOptions, SymbolKind, SymbolRef, WorkspaceIndex};

/// Writes `files` (path, text) under a fresh tempdir and indexes them one by one.
fn workspace(files: &[(&str, &str)]) -> (tempfile::TempDir, WorkspaceIndex) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    let index = WorkspaceIndex::new(vec![root.clone()], IndexOptions::default());
    for (path, text) in files {
        index.update_file(&root.join(path), text);
    }
    (dir, index)
}

fn root(index: &WorkspaceIndex) -> PathBuf {
    index.roots()[0].clone()
}

fn rel(index: &WorkspaceIndex, paths: Vec<PathBuf>) -> Vec<String> {
    let root = root(index);
    paths
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
        .collect()
}

/// `file:qualified_name` of each result.
fn names(index: &WorkspaceIndex, refs: &[SymbolRef]) -> Vec<String> {
    let root = root(index);
    refs.iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.file
                    .path
                    .strip_prefix(&root)
                    .unwrap_or(&r.file.path)
                    .display(),
                r.symbol().qualified_name
            )
        })
        .collect()
}

fn resolve_named(index: &WorkspaceIndex, from: &str, local: &str) -> Vec<String> {
    let path = root(index).join(from);
    let file = index.file(&path).expect("indexed");
    let import = file
        .imports
        .iter()
        .find(|i| i.local_name() == local)
        .unwrap_or_else(|| panic!("no import binds {local} in {from}"));
    names(index, &index.resolve_import(&path, import))
}

fn goto(index: &WorkspaceIndex, file: &str, needle: &str) -> Vec<String> {
    let file = index.file(&root(index).join(file)).expect("indexed");
    let offset = file.text.find(needle).expect("needle in file");
    names(index, &index.goto_definition(&file, offset))
}

const PYTHON: &[(&str, &str)] = &[
    (
        "src/shop/__init__.py",
        "from .models import Order\nfrom .util import *\n",
    ),
    (
        "src/shop/models.py",
        "from . import util\nfrom .util import money as m\n\nclass Order:\n    total = 0\n    def add(self, x):\n        self.total += m(x)\n        return self.add\n",
    ),
    (
        "src/shop/util.py",
        "def money(x):\n    return x\n\ndef _private():\n    pass\n",
    ),
    ("src/shop/sub/__init__.py", ""),
    (
        "src/shop/sub/deep.py",
        "from ..models import Order\nfrom ... import nowhere\n",
    ),
    (
        "app.py",
        "import shop.models\nfrom shop import Order, money\nimport helper\n\nOrder()\n",
    ),
    ("helper.py", "def help_me():\n    pass\n"),
];

#[test]
fn python_modules_resolve_through_src_layout_packages_and_relative_imports() {
    let (_dir, index) = workspace(PYTHON);
    let app = root(&index).join("app.py");
    let deep = root(&index).join("src/shop/sub/deep.py");
    assert_eq!(
        rel(&index, index.resolve_module(&app, "shop.models")),
        ["src/shop/models.py"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&app, "shop")),
        ["src/shop/__init__.py"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&app, "helper")),
        ["helper.py"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&deep, "..models")),
        ["src/shop/models.py"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&deep, ".")),
        ["src/shop/sub/__init__.py"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&deep, "..")),
        ["src/shop/__init__.py"]
    );
    assert!(index.resolve_module(&app, "os.path").is_empty());
}

#[test]
fn python_imports_follow_package_reexports() {
    let (_dir, index) = workspace(PYTHON);
    assert_eq!(
        resolve_named(&index, "app.py", "Order"),
        ["src/shop/models.py:Order"]
    );
    // `money` reaches the package through `from .util import *`.
    assert_eq!(
        resolve_named(&index, "app.py", "money"),
        ["src/shop/util.py:money"]
    );
    assert_eq!(
        resolve_named(&index, "src/shop/models.py", "m"),
        ["src/shop/util.py:money"]
    );
    assert!(resolve_named(&index, "src/shop/sub/deep.py", "nowhere").is_empty());
}

#[test]
fn importers_are_the_files_whose_imports_resolve_to_a_file() {
    let (_dir, index) = workspace(PYTHON);
    let models = root(&index).join("src/shop/models.py");
    assert_eq!(
        rel(&index, index.importers(&models)),
        ["app.py", "src/shop/__init__.py", "src/shop/sub/deep.py"]
    );
    let util = root(&index).join("src/shop/util.py");
    assert_eq!(
        rel(&index, index.importers(&util)),
        ["src/shop/__init__.py", "src/shop/models.py"]
    );
    // A new importer is seen without re-indexing the others.
    index.update_file(
        &root(&index).join("late.py"),
        "from shop.util import money\n",
    );
    assert!(rel(&index, index.importers(&util)).contains(&"late.py".to_string()));
}

#[test]
fn python_self_member_is_an_attribute_or_found_in_base_classes_through_imports() {
    let (_dir, index) = workspace(&[
        (
            "pkg/base.py",
            "class Base:\n    def send(self, data):\n        pass\n\nclass Mixin(Base):\n    def close(self):\n        pass\n",
        ),
        (
            "pkg/other.py",
            "class Unrelated:\n    def send(self, data):\n        pass\n",
        ),
        (
            "pkg/http.py",
            "from .base import Mixin as M\n\nclass Adapter(M, metaclass=type):\n    def __init__(self):\n        self.pool = []\n\n    def run(self):\n        self.send(1)\n        self.close()\n        self.missing()\n        return self.pool\n",
        ),
    ]);
    // Two classes define `send`; the base class chain picks the right one.
    assert_eq!(
        goto(&index, "pkg/http.py", "send(1)"),
        ["pkg/base.py:Base.send"]
    );
    assert_eq!(
        goto(&index, "pkg/http.py", "close()"),
        ["pkg/base.py:Mixin.close"]
    );
    assert!(goto(&index, "pkg/http.py", "missing()").is_empty());
    // An attribute assigned in `__init__` is a member of the class.
    assert_eq!(
        goto(&index, "pkg/http.py", "pool\n"),
        ["pkg/http.py:Adapter.pool"]
    );
}

#[test]
fn python_goto_definition_prefers_scope_then_imports_then_workspace() {
    let (_dir, index) = workspace(PYTHON);
    assert_eq!(
        goto(&index, "app.py", "Order()"),
        ["src/shop/models.py:Order"]
    );
    assert_eq!(
        goto(&index, "src/shop/models.py", "total +="),
        ["src/shop/models.py:Order.total"]
    );
    assert_eq!(
        goto(&index, "src/shop/models.py", "add\n"),
        ["src/shop/models.py:Order.add"]
    );
    assert_eq!(
        goto(&index, "src/shop/models.py", "m(x)"),
        ["src/shop/util.py:money"]
    );
    assert_eq!(
        goto(&index, "src/shop/util.py", "money"),
        ["src/shop/util.py:money"]
    );
    assert!(
        goto(&index, "app.py", "\n\nOrder").is_empty(),
        "whitespace is no identifier"
    );
}

const RUST: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[package]\nname = \"my-crate\"\nversion = \"0.1.0\"\n",
    ),
    (
        "src/lib.rs",
        "pub mod de;\nmod inline { pub struct Inline; }\npub use de::Deserializer;\npub use crate::inline::Inline as Renamed;\n",
    ),
    (
        "src/de/mod.rs",
        "mod read;\npub use self::read::{Read, SliceRead};\npub struct Deserializer { depth: u8 }\nimpl Deserializer {\n    pub fn new() -> Self { todo!() }\n    fn bump(&mut self) { self.depth += 1; self.peek(); }\n}\nimpl Deserializer { fn peek(&self) {} }\n",
    ),
    (
        "src/de/read.rs",
        "use super::Deserializer;\nuse super::super::Renamed;\npub trait Read {}\npub struct SliceRead;\nfn f() -> Deserializer { Deserializer::new() }\n",
    ),
    (
        "src/main.rs",
        "use my_crate::{de::Read, Deserializer};\nuse std::io;\nfn main() {}\n",
    ),
];

#[test]
fn rust_modules_resolve_through_crate_self_super_and_mod_files() {
    let (_dir, index) = workspace(RUST);
    let read = root(&index).join("src/de/read.rs");
    let lib = root(&index).join("src/lib.rs");
    assert_eq!(
        rel(&index, index.resolve_module(&read, "crate")),
        ["src/lib.rs"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&read, "super")),
        ["src/de/mod.rs"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&read, "super::super")),
        ["src/lib.rs"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&read, "crate::de::read")),
        ["src/de/read.rs"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&lib, "self::de")),
        ["src/de/mod.rs"]
    );
    assert_eq!(
        rel(&index, index.resolve_module(&lib, "crate::inline")),
        ["src/lib.rs"]
    );
    assert!(index.resolve_module(&lib, "std::io").is_empty());
}

#[test]
fn rust_imports_follow_pub_use_reexports() {
    let (_dir, index) = workspace(RUST);
    assert_eq!(
        resolve_named(&index, "src/main.rs", "Deserializer"),
        ["src/de/mod.rs:Deserializer"]
    );
    assert_eq!(
        resolve_named(&index, "src/main.rs", "Read"),
        ["src/de/read.rs:Read"]
    );
    assert_eq!(
        resolve_named(&index, "src/de/read.rs", "Renamed"),
        ["src/lib.rs:inline::Inline"]
    );
    assert!(resolve_named(&index, "src/main.rs", "io").is_empty());
}

#[test]
fn rust_goto_definition_finds_members_of_every_impl() {
    let (_dir, index) = workspace(RUST);
    assert_eq!(
        goto(&index, "src/de/mod.rs", "peek();"),
        ["src/de/mod.rs:Deserializer::peek"]
    );
    assert_eq!(
        goto(&index, "src/de/mod.rs", "depth +="),
        ["src/de/mod.rs:Deserializer::depth"]
    );
    assert_eq!(
        goto(&index, "src/de/read.rs", "new()"),
        ["src/de/mod.rs:Deserializer::new"]
    );
    assert_eq!(
        goto(&index, "src/de/read.rs", "Deserializer {"),
        ["src/de/mod.rs:Deserializer"]
    );
}

#[test]
fn updates_and_removals_keep_the_name_map_in_step() {
    let (_dir, index) = workspace(PYTHON);
    let util = root(&index).join("src/shop/util.py");
    assert_eq!(index.definitions("money").len(), 1);
    index.update_file(&util, "def cash(x):\n    return x\n");
    assert!(index.definitions("money").is_empty());
    assert_eq!(
        names(&index, &index.definitions("cash")),
        ["src/shop/util.py:cash"]
    );
    index.remove_file(&util);
    assert!(index.definitions("cash").is_empty());
    assert!(index.file(&util).is_none());
    assert_eq!(index.files().len(), PYTHON.len() - 1);
    assert!(
        index
            .update_file(Path::new("/nowhere/notes.txt"), "text")
            .is_none()
    );
}

#[test]
fn symbol_search_is_fuzzy_and_ranked() {
    let (_dir, index) = workspace(PYTHON);
    let found = names(&index, &index.search_symbols("ordr", 5));
    assert_eq!(
        found.first().map(String::as_str),
        Some("src/shop/models.py:Order")
    );
    assert!(index.search_symbols("", 5).is_empty());
    assert!(index.search_symbols("zzzzqqq", 5).is_empty());
    assert_eq!(index.search_symbols("m", 2).len(), 2);
}

#[test]
fn a_function_in_a_class_is_a_method() {
    let (_dir, index) = workspace(PYTHON);
    let add = index.definitions("add");
    assert_eq!(add[0].symbol().kind, SymbolKind::Method);
}

#[test]
fn scan_honours_ignore_rules_and_counts_skipped_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    let outside = tempfile::tempdir().expect("tempdir");
    let write = |path: &str, bytes: &[u8]| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    write("keep.py", b"def kept():\n    pass\n");
    write("lib/keep.rs", b"pub fn kept() {}\n");
    write(".gitignore", b"ignored.py\n");
    write("ignored.py", b"def gone(): pass\n");
    write(".pith/ignore", b"gen/\n");
    write("gen/out.py", b"def gone(): pass\n");
    write("excluded/x.py", b"def gone(): pass\n");
    write("target/debug/x.rs", b"fn gone() {}\n");
    write("node_modules/x.py", b"def gone(): pass\n");
    write(".hidden/x.py", b"def gone(): pass\n");
    write("binary.py", b"def a():\x00\n");
    write("latin1.py", b"# caf\xe9\n");
    write("big.py", &vec![b'#'; 2048]);
    write("notes.txt", b"not source");
    std::fs::write(outside.path().join("far.py"), "def gone(): pass\n").expect("write");
    std::os::unix::fs::symlink(outside.path().join("far.py"), root.join("link.py"))
        .expect("symlink");

    let options = IndexOptions {
        max_file_bytes: 1024,
        exclude: vec!["excluded/".into()],
    };
    let index = WorkspaceIndex::new(vec![root.clone()], options);
    let reports = std::cell::RefCell::new(Vec::new());
    let summary = index.scan(
        &|done, total| reports.borrow_mut().push((done, total)),
        &std::sync::atomic::AtomicBool::new(false),
    );
    let mut indexed = rel(
        &index,
        index.files().iter().map(|f| f.path.clone()).collect(),
    );
    indexed.sort();
    assert_eq!(indexed, ["keep.py", "lib/keep.rs"]);
    assert!(index.definitions("gone").is_empty());
    let skipped: Vec<(&str, usize)> = summary
        .skipped
        .iter()
        .map(|(reason, count)| (reason.name(), *count))
        .collect();
    assert_eq!(
        skipped,
        [
            ("binary", 1),
            ("too large", 1),
            ("not UTF-8", 1),
            ("symlink out of root", 1)
        ]
    );
    assert_eq!(summary.files, 2);
    assert_eq!(summary.symbols(), 2);
    assert_eq!(reports.borrow().last(), Some(&(5, 5)));
}

#[test]
fn a_cancelled_scan_stops_early() {
    let (_dir, index) = workspace(PYTHON);
    let fresh = WorkspaceIndex::new(index.roots(), IndexOptions::default());
    let summary = fresh.scan(&|_, _| {}, &std::sync::atomic::AtomicBool::new(true));
    assert!(summary.cancelled);
    assert!(fresh.is_empty());
}

#[test]
fn roots_can_be_added_and_removed_at_runtime() {
    let write = |dir: &Path, name: &str, text: &str| {
        std::fs::write(dir.join(name), text).expect("write");
    };
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    write(first.path(), "a.py", "def in_first(): pass\n");
    write(second.path(), "b.py", "def in_second(): pass\n");
    let nested = second.path().join("inner");
    std::fs::create_dir(&nested).expect("mkdir");
    write(&nested, "c.py", "def in_nested(): pass\n");
    let no_cancel = std::sync::atomic::AtomicBool::new(false);

    let index = WorkspaceIndex::new(vec![first.path().to_path_buf()], IndexOptions::default());
    index.scan(&|_, _| {}, &no_cancel);
    assert_eq!(index.len(), 1);

    // Only the new root is scanned; the path is stored canonical, and only once.
    let added = index.add_root(second.path()).expect("a new root");
    assert_eq!(
        added,
        std::fs::canonicalize(second.path()).expect("canonical")
    );
    assert_eq!(index.add_root(second.path()), None);
    let summary = index.scan_roots(std::slice::from_ref(&added), &|_, _| {}, &no_cancel);
    assert_eq!(summary.files, 2);
    assert_eq!(index.roots().len(), 2);
    assert_eq!(index.definitions("in_second").len(), 1);
    assert!(index.in_roots(&added.join("b.py")));

    // A root nested in a removed one keeps its files.
    assert!(index.add_root(&nested).is_some());
    let forgotten = index.remove_root(second.path());
    assert_eq!(forgotten, [added.join("b.py")]);
    assert!(index.definitions("in_second").is_empty());
    assert_eq!(index.definitions("in_nested").len(), 1);
    assert!(!index.in_roots(&added.join("b.py")));
    assert!(index.remove_root(second.path()).is_empty());

    // A scan of a root removed meanwhile keeps nothing of it.
    index.remove_root(&nested);
    let summary = index.scan_roots(&[added], &|_, _| {}, &no_cancel);
    assert_eq!(summary.files, 0);
    assert!(index.definitions("in_nested").is_empty());
    assert_eq!(index.len(), 1);
}
