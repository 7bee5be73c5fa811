//! Snapshot tests of `analyze`: symbols, imports, docs and signatures per language.

use std::path::Path;

use expect_test::{Expect, expect};

use super::{Lang, LangQueries, analyze, parse};

fn check(lang: Lang, input: &str, expect: Expect) {
    let path = Path::new(match lang {
        Lang::Python => "/w/fixture.py",
        Lang::Rust => "/w/fixture.rs",
    });
    let tree = parse(lang, input, None).expect("tree-sitter parses any input");
    let file = analyze(path, lang, input, &tree);
    expect.assert_eq(&file.outline());
}

fn references(lang: Lang, input: &str) -> Vec<String> {
    let tree = parse(lang, input, None).expect("parses");
    analyze(Path::new("/w/f"), lang, input, &tree)
        .references
        .into_iter()
        .map(|r| format!("{}@{}", r.name, r.line + 1))
        .collect()
}

#[test]
fn python_symbols_imports_and_docs() {
    check(
        Lang::Python,
        r#""""Module doc."""
import os, sys as system
import a.b.c
from . import sibling
from ..pkg.mod import Thing as T, other
from x import *

MAX_SIZE: int = 10
"""Max size."""

@decorator
class Größe(Base, metaclass=Meta):
    """A class.

        Indented more.
    Back.
    """
    count = 0

    class Inner:
        def deep(self, x):  # comment
            return self.count

    @property
    def método(self, a: int, *args, **kw) -> "Größe":
        '''Does things.'''
        helper(a)
        self.größe = a
        self.count = a
        if a:
            self.größe, self.last = a, a
        def local():
            self.hidden = 1
        return os.path.join(a)

def helper(
    a,
    b=2,
):
    def nested():
        pass
    return Größe()
"#,
        expect![[r#"
            8:1 constant MAX_SIZE — MAX_SIZE: int = 10
                "Max size."
            12:1 class Größe — class Größe(Base, metaclass=Meta):
                "A class."
              18:5 field Größe.count — count = 0
              20:5 class Größe.Inner — class Inner:
                21:9 method Größe.Inner.deep — def deep(self, x):
              25:5 method Größe.método — def método(self, a: int, *args, **kw) -> "Größe":
                  "Does things."
              28:9 field Größe.größe — self.größe = a
              31:13 field Größe.last — self.größe, self.last = a, a
                32:9 function Größe.método.local — def local():
            36:1 function helper — def helper( a, b=2, ):
              40:5 function helper.nested — def nested():
            import 2:os module=os name=- alias=-
            import 2:system module=sys name=- alias=system
            import 3:c module=a.b.c name=- alias=-
            import 4:sibling module=. name=sibling alias=-
            import 5:T module=..pkg.mod name=Thing alias=T
            import 5:other module=..pkg.mod name=other alias=-
            import 6:x module=x name=- alias=- glob
            11 symbols, 7 imports, 18 references, 0 parse errors
        "#]],
    );
}

#[test]
fn python_docstring_is_cleaned() {
    let input = "def f():\n    \"\"\"Title.\n\n        Indented.\n    Back.\n    \"\"\"\n";
    let tree = parse(Lang::Python, input, None).expect("parses");
    let file = analyze(Path::new("/w/f.py"), Lang::Python, input, &tree);
    assert_eq!(
        file.symbols[0].doc.as_deref(),
        Some("Title.\n\n    Indented.\nBack.")
    );
}

#[test]
fn rust_symbols_imports_and_docs() {
    check(
        Lang::Rust,
        r#"//! Crate doc.
use std::collections::{HashMap, hash_map::Entry as E, self};
pub use crate::de::{self as d, Foo, bar::*};
use serde;
use super::super::x::Y;
mod inner;

/// A point.
/// Second line.
#[derive(Debug)]
pub struct Point<T> where T: Copy {
    /// x coord
    pub x: T,
    y: T,
}

pub struct Tuple(pub u8, String);

pub enum Shape { Circle(f64), Square { side: f64 } }

/// Does.
pub trait Draw {
    type Out;
    fn draw(&self) -> Self::Out;
}

impl<T: Copy> Point<T> {
    pub const ORIGIN: u8 = 0;
    /** Makes. */
    pub fn new(x: T, y: T) -> Self { Point { x, y } }
}

impl Draw for Point<f64> {
    type Out = ();
    //// not a doc
    fn draw(&self) -> () { helper(self.x); }
}

mod nested {
    //! Nested doc.
    pub fn inside() {}
}

macro_rules! my_macro { () => {} }
pub type Alias = Point<u8>;
static ÉTAT: u32 = 1;
pub(crate) async fn helper<'a>(x: &'a f64) -> Result<(), E>
where
    E: Error,
{
}
fn broken( {
"#,
        expect![[r#"
            6:1 module inner — mod inner
            11:1 struct Point — pub struct Point<T> where T: Copy
                "A point."
              13:5 field Point::x — pub x: T
                  "x coord"
              14:5 field Point::y — y: T
            17:1 struct Tuple — pub struct Tuple(pub u8, String)
            19:1 enum Shape — pub enum Shape
              19:18 constant Shape::Circle — Circle(f64)
              19:31 constant Shape::Square — Square
                19:40 field Shape::Square::side — side: f64
            22:1 trait Draw — pub trait Draw
                "Does."
              23:5 type Draw::Out — type Out
              24:5 method Draw::draw — fn draw(&self) -> Self::Out
            27:1 impl Point — impl<T: Copy> Point<T>
              28:5 constant Point::ORIGIN — pub const ORIGIN: u8 = 0
              30:5 method Point::new — pub fn new(x: T, y: T) -> Self
                  "Makes."
            33:1 impl Point — impl Draw for Point<f64>
              34:5 type Point::Out — type Out = ()
              36:5 method Point::draw — fn draw(&self) -> ()
            39:1 module nested — mod nested
                "Nested doc."
              41:5 function nested::inside — pub fn inside()
            44:1 macro my_macro — macro_rules! my_macro
            45:1 type Alias — pub type Alias = Point<u8>
            46:1 constant ÉTAT — static ÉTAT: u32 = 1
            47:1 function helper — pub(crate) async fn helper<'a>(x: &'a f64) -> Result<(), E> where E: Error,
            import 2:HashMap module=std::collections name=HashMap alias=-
            import 2:E module=std::collections::hash_map name=Entry alias=E
            import 2:collections module=std name=collections alias=-
            import 3:d module=crate name=de alias=d
            import 3:Foo module=crate::de name=Foo alias=-
            import 3:bar module=crate::de::bar name=- alias=- glob
            import 4:serde module=serde name=- alias=-
            import 5:Y module=super::super::x name=Y alias=-
            import 6:inner module=self::inner name=- alias=-
            24 symbols, 9 imports, 25 references, 1 parse errors
        "#]],
    );
}

#[test]
fn references_skip_definitions_parameters_and_imports_and_dedupe_per_scope() {
    let refs = references(
        Lang::Python,
        "import os\ndef f(a, b=1, *c, **d):\n    g(a, key=os)\n    g(a)\n    return h\ndef k():\n    g()\n",
    );
    assert_eq!(refs, ["g@3", "a@3", "os@3", "h@5", "g@7"]);
    let refs = references(
        Lang::Rust,
        "use a::B;\nfn f<T>(x: T) -> B { let y = x; g(y); g(x) }\n",
    );
    assert_eq!(refs, ["T@2", "B@2", "x@2", "g@2", "y@2"]);
}

#[test]
fn references_inside_f_strings_count_but_not_inside_plain_strings_or_comments() {
    let refs = references(
        Lang::Python,
        "def g(a):\n    s = f\"{helper(a)}\"\n    t = \"{other(a)}\"\n    # comment(named)\n    return rb\"x\" + Rf\"{third}\"\n",
    );
    assert_eq!(refs, ["s@2", "helper@2", "a@2", "t@3", "third@5"]);
    let refs = references(
        Lang::Rust,
        "fn f() {\n    // g(x)\n    let s = \"h(y)\";\n    k(s)\n}\n",
    );
    assert_eq!(refs, ["k@4", "s@4"]);
}

/// The lexers that read the uses in expressions (`lex.rs`) against the tree walk they replace,
/// on real code: the same uses at the same bytes, in every file that parses without errors
/// (error recovery is the tree's guess, not the text's). Returns the files compared.
fn lexing_agrees_with_the_walk(
    lang: Lang,
    roots: &[std::path::PathBuf],
    skip_dir: &'static str,
) -> usize {
    use rayon::prelude::*;
    let files: Vec<std::path::PathBuf> = roots
        .iter()
        .flat_map(|root| {
            ignore::WalkBuilder::new(root)
                .standard_filters(false)
                .filter_entry(move |entry| entry.file_name() != skip_dir)
                .build()
        })
        .filter_map(Result::ok)
        .map(ignore::DirEntry::into_path)
        .filter(|path| Lang::from_path(path) == Some(lang))
        .collect();
    let compared = std::sync::atomic::AtomicUsize::new(0);
    let disagreements: Vec<String> = files
        .par_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let tree = parse(lang, &text, None)?;
            if tree.root_node().has_error() {
                return None;
            }
            compared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let [lexed, walked] = super::analyze::uses_lexed_and_walked(lang, &text, &tree);
            let first = lexed.iter().zip(&walked).find(|(a, b)| a != b);
            (lexed != walked).then(|| {
                format!(
                    "{}: {} lexed, {} walked, first difference {:?}",
                    path.display(),
                    lexed.len(),
                    walked.len(),
                    first.map(|(a, b)| (&text[a.clone()], a.start, &text[b.clone()], b.start))
                )
            })
        })
        .collect();
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    compared.into_inner()
}

/// Python: every file of the machine's standard library, `test/` included (it holds the odd
/// f-strings, raw strings and numbers).
#[test]
fn lexed_python_expressions_give_the_uses_the_tree_walk_gives_on_the_stdlib() {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('stdlib'))",
        ])
        .output()
        .expect("python3 runs (CI installs it)");
    let stdlib = std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let compared =
        lexing_agrees_with_the_walk(Lang::Python, std::slice::from_ref(&stdlib), "site-packages");
    assert!(compared > 500, "{}: {compared} files", stdlib.display());
}

/// Rust: the sources of every crate in pith's `Cargo.lock`, from the cargo registry (the same
/// files on every machine that builds pith).
#[test]
fn lexed_rust_expressions_give_the_uses_the_tree_walk_gives_on_pith_dependencies() {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    let registry = cargo_home.join("registry").join("src");
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock");
    let mut crates = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(name)) = (line.strip_prefix("version = "), name.take()) {
            crates.push(format!("{name}-{}", value.trim_matches('"')));
        }
    }
    let indexes: Vec<std::path::PathBuf> = std::fs::read_dir(&registry)
        .expect("the cargo registry holds pith's dependencies")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .collect();
    let roots: Vec<std::path::PathBuf> = indexes
        .iter()
        .flat_map(|index| crates.iter().map(move |krate| index.join(krate)))
        .filter(|dir| dir.is_dir())
        .collect();
    assert!(
        roots.len() > 100,
        "{}: {} crates",
        registry.display(),
        roots.len()
    );
    let compared = lexing_agrees_with_the_walk(Lang::Rust, &roots, "");
    assert!(compared > 500, "{}: {compared} files", registry.display());
}

#[test]
fn parse_errors_are_counted_and_never_fatal() {
    let input = "def f(:\n  pass\nclass\n";
    let tree = parse(Lang::Python, input, None).expect("parses");
    let file = analyze(Path::new("/w/f.py"), Lang::Python, input, &tree);
    assert!(file.parse_errors > 0);
}

#[test]
fn a_bad_override_falls_back_to_the_built_in_query_and_a_good_one_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = dir.path().join("python");
    std::fs::create_dir_all(&python).expect("mkdir");
    std::fs::write(python.join("tags.scm"), "(this is not a query").expect("write");
    std::fs::write(
        python.join("imports.scm"),
        "(import_statement name: (dotted_name) @import.module) @import",
    )
    .expect("write");
    let queries = LangQueries::load(Lang::Python, Some(dir.path()));
    assert_eq!(queries.tags.origin, "built-in");
    assert!(queries.imports.origin.ends_with("imports.scm"));
    assert_eq!(queries.imports.query.pattern_count(), 1);
}

#[test]
fn language_registry() {
    assert_eq!(Lang::from_path(Path::new("a/b.pyi")), Some(Lang::Python));
    assert_eq!(Lang::from_path(Path::new("a/b.rs")), Some(Lang::Rust));
    assert_eq!(Lang::from_path(Path::new("a/b.txt")), None);
    assert_eq!(Lang::from_name("rust"), Some(Lang::Rust));
}

#[test]
fn queries_run_only_at_pattern_roots_unless_a_pattern_starts_otherwise() {
    for lang in Lang::ALL {
        assert!(lang.queries().combined.root_kinds.is_some(), "{lang:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let python = dir.path().join("python");
    std::fs::create_dir_all(&python).expect("mkdir");
    std::fs::write(
        python.join("tags.scm"),
        "[(class_definition name: (identifier) @name) @definition.class\n (function_definition name: (identifier) @name) @definition.function]\n(call function: (attribute attribute: (identifier) @reference))",
    )
    .expect("write");
    let queries = LangQueries::load(Lang::Python, Some(dir.path()));
    assert!(queries.combined.root_kinds.is_none());
    let input = "class A:\n    def f(self):\n        self.g()\n";
    let tree = parse(Lang::Python, input, None).expect("parses");
    let file = super::analyze::analyze_with(
        Path::new("/w/f.py"),
        Lang::Python,
        input,
        &tree,
        &queries.combined,
    );
    expect![[r#"
        1:1 class A — class A:
          2:5 method A.f — def f(self):
        2 symbols, 0 imports, 1 references, 0 parse errors
    "#]]
    .assert_eq(&file.outline());
}

pub(super) mod incremental {
    use std::path::Path;

    use proptest::prelude::*;

    use crate::index::FileIndex;
    use crate::lang::{Lang, analyze, reanalyze};
    use crate::text::{Change, Document, PositionEncoding, position_at};

    const PYTHON_PARTS: &[&str] = &[
        "def f(a, b=1):\n    \"\"\"Doc.\"\"\"\n    return g(a)\n",
        "class C(B):\n    x: int = 1\n    \"\"\"Field doc.\"\"\"\n    def m(self):\n        return self.x\n",
        "X = 1\n",
        "\"\"\"Doc of X.\"\"\"\n",
        "import os\n",
        "from a import b as c\n",
        "if x:\n    y = z(x)\n",
        "@dec\ndef h(): pass\n",
        "# comment\n",
        "\n",
        "x = 1; import q; y = w\n",
    ];
    const PYTHON_INSERTS: &[&str] = &[
        "",
        "x",
        " ",
        "\n",
        ":",
        "(",
        ")",
        "\"\"\"",
        "def ",
        "class ",
        "    ",
        "import y\n",
        "#",
        "=",
        "\"",
    ];
    pub(super) const RUST_PARTS: &[&str] = &[
        "/// Doc.\n",
        "#[derive(Debug)]\n",
        "pub struct S { a: u8 }\n",
        "impl S {\n    fn new() -> Self { S { a: 0 } }\n}\n",
        "use a::{b, c as d};\n",
        "mod m;\n",
        "fn f(x: u8) -> u8 { let y = x; g(y) }\n",
        "// plain\n",
        "const C: u8 = 1;\n",
        "enum E { A, B }\n",
        "use x::y; fn k() { use z::w; }\n",
        "\n",
    ];
    pub(super) const RUST_INSERTS: &[&str] = &[
        "", "x", "\n", "{", "}", "///", "//", " ", ";", "fn ", "use z;", "/*", "*/", "(",
    ];

    fn same(lang: Lang, incremental: &FileIndex, full: &FileIndex) -> Result<(), TestCaseError> {
        prop_assert_eq!(&incremental.symbols, &full.symbols, "{:?} symbols", lang);
        prop_assert_eq!(&incremental.imports, &full.imports, "{:?} imports", lang);
        prop_assert_eq!(&incremental.references, &full.references, "{:?} refs", lang);
        prop_assert_eq!(incremental.parse_errors, full.parse_errors);
        prop_assert_eq!(&*incremental.text, &*full.text);
        Ok(())
    }

    /// Applies rounds of random edits through a `Document`, re-analyzing incrementally after
    /// each round, and compares with a full analysis of the same tree.
    fn check_edits(
        lang: Lang,
        parts: &[usize],
        rounds: &[Vec<(usize, usize, usize)>],
    ) -> Result<(), TestCaseError> {
        let (fragments, inserts, path) = match lang {
            Lang::Python => (PYTHON_PARTS, PYTHON_INSERTS, Path::new("/w/f.py")),
            Lang::Rust => (RUST_PARTS, RUST_INSERTS, Path::new("/w/f.rs")),
        };
        let text: String = parts
            .iter()
            .map(|&i| fragments[i % fragments.len()])
            .collect();
        let mut document = Document::new(&text, Some(lang));
        let tree = document.tree().expect("tree").clone();
        let mut previous = analyze(path, lang, &text, &tree);
        document.mark_analyzed();
        for round in rounds {
            let mut changes = Vec::new();
            let mut shadow = document.text();
            for &(at, delete, insert) in round {
                let start = at % (shadow.len() + 1);
                let end = (start + delete % 6).min(shadow.len());
                let insert = inserts[insert % inserts.len()];
                changes.push(Change {
                    range: Some((
                        position_at(&shadow, start, PositionEncoding::Utf16),
                        position_at(&shadow, end, PositionEncoding::Utf16),
                    )),
                    text: insert.to_string(),
                });
                shadow.replace_range(start..end, insert);
            }
            document
                .apply_changes(&changes, PositionEncoding::Utf16)
                .expect("valid edits");
            let text = document.text();
            prop_assert_eq!(&text, &shadow);
            let tree = document.tree().expect("tree");
            let (old_tree, edits) = document.edits_since_analysis().expect("tracked");
            let incremental = reanalyze(&previous, old_tree, edits, &text, tree);
            let full = analyze(path, lang, &text, tree);
            same(lang, &incremental, &full)?;
            previous = incremental;
            document.mark_analyzed();
        }
        Ok(())
    }

    fn rounds() -> impl Strategy<Value = Vec<Vec<(usize, usize, usize)>>> {
        prop::collection::vec(
            prop::collection::vec((0usize..2000, 0usize..12, 0usize..20), 1..4),
            1..5,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn python_reanalysis_equals_full_analysis(
            parts in prop::collection::vec(0usize..20, 0..12),
            rounds in rounds(),
        ) {
            check_edits(Lang::Python, &parts, &rounds)?;
        }

        #[test]
        fn rust_reanalysis_equals_full_analysis(
            parts in prop::collection::vec(0usize..20, 0..12),
            rounds in rounds(),
        ) {
            check_edits(Lang::Rust, &parts, &rounds)?;
        }
    }
}
